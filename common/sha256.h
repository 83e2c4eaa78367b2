#pragma once
// SHA-256 and hex encoding: how tokens and keys are stored and compared, and how cached
// snapshots are checked.

#include <array>
#include <string>
#include <string_view>

namespace apim {

std::array<unsigned char, 32> Sha256(std::string_view bytes);
std::string Sha256Hex(std::string_view bytes);

// Bytes as lowercase hex (two digits a byte).
std::string HexEncode(std::string_view bytes);

}  // namespace apim
