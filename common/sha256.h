#pragma once
// SHA-256 as lowercase hex: how tokens and keys are stored and compared, and how cached
// snapshots are checked.

#include <string>
#include <string_view>

namespace apim {

std::string Sha256Hex(std::string_view bytes);

}  // namespace apim
