#include "tests/testing/temp_dir.h"

#include <stdlib.h>

#include <system_error>

namespace tessera::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tessera-test-XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  path_ = made != nullptr ? std::filesystem::path(made) : std::filesystem::path(tmpl);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace tessera::testing
