// A fresh temporary directory per test, removed when the object dies.
#ifndef TESSERA_TESTS_TESTING_TEMP_DIR_H_
#define TESSERA_TESTS_TESTING_TEMP_DIR_H_

#include <filesystem>
#include <string>

namespace tessera::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_TEMP_DIR_H_
