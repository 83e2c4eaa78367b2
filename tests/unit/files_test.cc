// common/files: the one reading of a token file and the one atomic write.
#include "common/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/process.h"

namespace apim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  // Writes `contents` to a file of the test's directory, byte for byte, and returns its path.
  std::string Saved(std::string_view contents) {
    const std::filesystem::path path = dir_.path() / "token";
    std::ofstream(path, std::ios::binary) << contents;
    return path.string();
  }

  std::vector<std::string> FileNames() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  testing::TempDir dir_;
};

TEST_F(FilesTest, ReadFirstLineDropsTheCarriageReturnOfACrlfFile) {
  EXPECT_EQ(ReadFirstLine(Saved("TOKEN\r\n")).value(), "TOKEN");
}

TEST_F(FilesTest, ReadFirstLineDropsSurroundingWhitespaceAndLaterLines) {
  EXPECT_EQ(ReadFirstLine(Saved(" \tTOKEN \r\nsecond line\n")).value(), "TOKEN");
  EXPECT_EQ(ReadFirstLine(Saved("TOKEN")).value(), "TOKEN");
}

TEST_F(FilesTest, ReadFirstLineKeepsSpacesInsideTheLine) {
  EXPECT_EQ(ReadFirstLine(Saved("a b\n")).value(), "a b");
}

TEST_F(FilesTest, ReadFirstLineRefusesAnEmptyFileNamingIt) {
  const std::string path = Saved("");
  absl::StatusOr<std::string> line = ReadFirstLine(path);
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(line.status().message(), "the first line of " + path + " is empty");
}

TEST_F(FilesTest, ReadFirstLineRefusesAFirstLineOfWhitespaceEvenIfALaterLineHasText) {
  EXPECT_EQ(ReadFirstLine(Saved(" \r\nTOKEN\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FilesTest, ReadFirstLineRefusesAMissingFileNamingIt) {
  const std::string path = (dir_.path() / "missing").string();
  absl::StatusOr<std::string> line = ReadFirstLine(path);
  EXPECT_EQ(line.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(line.status().message(), HasSubstr("cannot read " + path));
}

TEST_F(FilesTest, WriteFileAtomicallyCreatesThenReplacesTheFileAndLeavesNoTemporaryFile) {
  const std::string path = (dir_.path() / "port").string();
  ASSERT_TRUE(WriteFileAtomically(path, "a much longer first content\n").ok());
  EXPECT_EQ(testing::ReadFile(path), "a much longer first content\n");
  ASSERT_TRUE(WriteFileAtomically(path, "short\n").ok());
  EXPECT_EQ(testing::ReadFile(path), "short\n");
  EXPECT_THAT(FileNames(), ElementsAre("port"));
}

TEST_F(FilesTest, WriteFileAtomicallyMakesTheFileReadableByItsOwnerOnly) {
  const std::string path = (dir_.path() / "snapshot").string();
  ASSERT_TRUE(WriteFileAtomically(path, "secret").ok());
  EXPECT_EQ(std::filesystem::status(path).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(FilesTest, WriteFileAtomicallyNamesTheFileItCannotWrite) {
  const std::string path = (dir_.path() / "no-such-directory" / "port").string();
  absl::Status written = WriteFileAtomically(path, "8080\n");
  EXPECT_EQ(written.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(written.message(), HasSubstr("cannot write " + path));
}

TEST_F(FilesTest, WriteFileAtomicallyLeavesNoTemporaryFileWhenTheRenameFails) {
  // A directory in the way: the temporary file is written, the rename over it fails.
  const std::filesystem::path path = dir_.path() / "occupied";
  std::filesystem::create_directories(path / "inside");
  absl::Status written = WriteFileAtomically(path.string(), "8080\n");
  EXPECT_FALSE(written.ok());
  EXPECT_THAT(written.message(), HasSubstr("cannot write " + path.string()));
  EXPECT_THAT(FileNames(), ElementsAre("occupied"));
}

TEST(SecretFromEnvironmentTest, TrimsWhatSurroundsTheSecretAndIsEmptyWhenUnset) {
  setenv("APIM_TEST_SECRET", "  s3cret\r\n", 1);
  EXPECT_EQ(SecretFromEnvironment("APIM_TEST_SECRET"), "s3cret");
  unsetenv("APIM_TEST_SECRET");
  EXPECT_EQ(SecretFromEnvironment("APIM_TEST_SECRET"), "");
}

}  // namespace
}  // namespace apim
