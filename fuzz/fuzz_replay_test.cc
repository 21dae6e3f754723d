// Runs a fuzz target's entry function (LLVMFuzzerTestOneInput, linked in from
// fuzz/<name>_fuzzer.cc) over every file of fuzz/corpus/<name>/ and
// fuzz/regressions/<name>/, so the seeds and every input that once crashed
// stay tested in the ordinary build, without clang or libFuzzer. A crash or
// abort fails the test; run under TESSERA_SANITIZE=address for memory errors.
// TESSERA_FUZZ_NAME and TESSERA_FUZZ_ROOT come from fuzz/CMakeLists.txt.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace tessera::fuzz {
namespace {

namespace fs = std::filesystem;

// The regular, non-hidden files under `dir` (none if it does not exist), sorted.
std::vector<fs::path> InputsUnder(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && !entry.path().filename().string().starts_with(".")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

size_t ReplayAll(const fs::path& dir) {
  size_t n = 0;
  for (const fs::path& file : InputsUnder(dir)) {
    SCOPED_TRACE(file.string());
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
              0);
    ++n;
  }
  return n;
}

const fs::path kRoot = TESSERA_FUZZ_ROOT;

TEST(FuzzReplayTest, Corpus) {
  EXPECT_GT(ReplayAll(kRoot / "corpus" / TESSERA_FUZZ_NAME), 0u) << "no seeds";
}

TEST(FuzzReplayTest, Regressions) { ReplayAll(kRoot / "regressions" / TESSERA_FUZZ_NAME); }

TEST(FuzzReplayTest, EmptyAndTinyInputs) {
  for (size_t size = 0; size <= 4; ++size) {
    const std::string zeros(size, '\0');
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(zeros.data()), size), 0);
  }
}

}  // namespace
}  // namespace tessera::fuzz
