#include "tools/cli/id_salt.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"

namespace tessera::cli {

StatusOr<models::FeatureHasher> ReadIdSaltHasher() {
  const char* salt = std::getenv(kIdSaltEnv);
  const char* file = std::getenv(kIdSaltFileEnv);
  const bool have_salt = salt != nullptr && salt[0] != '\0';
  const bool have_file = file != nullptr && file[0] != '\0';
  if (have_salt && have_file) {
    return InvalidArgumentError(std::string("both ") + kIdSaltEnv + " and " + kIdSaltFileEnv +
                                " are set: set one");
  }
  if (have_salt) return models::FeatureHasher::FromSalt(salt);
  if (!have_file) return models::FeatureHasher();
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFoundError(std::string("cannot read id salt file ") + file);
  std::stringstream text;
  text << in.rdbuf();
  std::string trimmed(absl::StripAsciiWhitespace(text.str()));
  if (trimmed.empty()) return InvalidArgumentError(std::string("id salt file ") + file + " is empty");
  return models::FeatureHasher::FromSalt(trimmed);
}

}  // namespace tessera::cli
