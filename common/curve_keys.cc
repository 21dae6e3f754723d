#include "common/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <zmq.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

// The first line that is neither blank nor a '#' comment, trimmed.
std::string KeyLine(const std::string& text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty() && line[0] != '#') return std::string(line);
  }
  return "";
}

Status CheckZ85Key(const std::string& key, const char* what) {
  uint8_t binary[32];
  if (key.size() != kCurveKeyZ85Chars || zmq_z85_decode(binary, key.c_str()) == nullptr) {
    return InvalidArgumentError(
        absl::StrCat("the Curve ", what, " key is not 40 Z85 characters"));
  }
  return OkStatus();
}

// Writes `text` to `path` with `mode`, atomically (temporary file, rename),
// so a reader never sees a secret file with looser permissions or half a key.
Status WriteKeyFile(const fs::path& path, const std::string& text, mode_t mode) {
  const std::string tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return UnavailableError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  // open() applies the umask; the mode must be exact (0600 for secrets).
  bool ok = ::fchmod(fd, mode) == 0;
  ok = ok && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(ok ? errno : saved);
    ::unlink(tmp.c_str());
    return UnavailableError(absl::StrCat("cannot write ", path.string(), ": ", reason));
  }
  return OkStatus();
}

StatusOr<std::string> ReadKeyFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError(absl::StrCat("cannot read Curve key file ", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  return KeyLine(text.str());
}

}  // namespace

Status CurveAvailable() {
  if (zmq_has("curve")) return OkStatus();
  return FailedPreconditionError(
      "this libzmq was built without CURVE (libsodium): CurveZMQ encryption is unavailable; "
      "install a libzmq with CURVE support (Debian's libzmq5 has it)");
}

StatusOr<CurveKeys> GenerateCurveKeys() {
  TESSERA_RETURN_IF_ERROR(CurveAvailable());
  char public_key[kCurveKeyZ85Chars + 1];
  char secret_key[kCurveKeyZ85Chars + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return InternalError(absl::StrCat("zmq_curve_keypair: ", zmq_strerror(zmq_errno())));
  }
  return CurveKeys{public_key, secret_key};
}

Status ValidateCurveKeys(const CurveKeys& keys) {
  TESSERA_RETURN_IF_ERROR(CheckZ85Key(keys.public_key, "public"));
  TESSERA_RETURN_IF_ERROR(CheckZ85Key(keys.secret_key, "secret"));
  char derived[kCurveKeyZ85Chars + 1];
  if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0) {
    return FailedPreconditionError(
        absl::StrCat("zmq_curve_public: ", zmq_strerror(zmq_errno())));
  }
  if (keys.public_key != derived) {
    return InvalidArgumentError("the Curve public key does not match the secret key");
  }
  return OkStatus();
}

Status WriteCurveKeys(const CurveKeys& keys, const std::string& dir, bool overwrite) {
  TESSERA_RETURN_IF_ERROR(ValidateCurveKeys(keys));
  const fs::path root(dir);
  std::error_code error;
  if (fs::create_directories(root, error)) {
    fs::permissions(root, fs::perms::owner_all, error);
  } else if (error) {
    return UnavailableError(absl::StrCat("cannot create ", dir, ": ", error.message()));
  }
  const fs::path pub = root / kCurvePublicKeyFile;
  const fs::path key = root / kCurveSecretKeyFile;
  if (!overwrite) {
    for (const fs::path& path : {pub, key}) {
      if (fs::exists(path, error)) {
        return AlreadyExistsError(absl::StrCat(path.string(), " exists (overwrite to replace)"));
      }
    }
  }
  // The secret first: a directory never holds a public key without its pair.
  TESSERA_RETURN_IF_ERROR(WriteKeyFile(
      key, absl::StrCat("# Tessera cluster CurveZMQ secret key: keep private\n", keys.secret_key,
                        "\n"),
      0600));
  return WriteKeyFile(
      pub, absl::StrCat("# Tessera cluster CurveZMQ public key\n", keys.public_key, "\n"), 0644);
}

StatusOr<CurveKeys> ReadCurveKeys(const std::string& dir) {
  const fs::path root(dir);
  const fs::path key = root / kCurveSecretKeyFile;
  struct stat st;
  if (::stat(key.c_str(), &st) != 0) {
    return NotFoundError(absl::StrCat("cannot read Curve secret key ", key.string(), ": ",
                                      std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return FailedPreconditionError(
        absl::StrCat(key.string(), " is readable by other users (chmod 600 it)"));
  }
  CurveKeys keys;
  TESSERA_ASSIGN_OR_RETURN(keys.secret_key, ReadKeyFile(key));
  TESSERA_ASSIGN_OR_RETURN(keys.public_key, ReadKeyFile(root / kCurvePublicKeyFile));
  Status valid = ValidateCurveKeys(keys);
  if (!valid.ok()) {
    return Status(valid.code(), absl::StrCat(dir, ": ", valid.message()));
  }
  return keys;
}

}  // namespace tessera
