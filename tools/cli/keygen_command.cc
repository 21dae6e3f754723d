#include "tools/cli/keygen_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "common/curve_keys.h"
#include "tools/cli/node_flags.h"

namespace tessera::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kTokenFile[] = "token";

struct KeygenFlags {
  std::string out;
  bool force = false;
  bool no_token = false;
};

// Creates `path` with mode 0600 and writes `text`; O_EXCL unless `force`.
Status WritePrivateFile(const fs::path& path, const std::string& text, bool force) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
  const int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    const std::string reason = std::strerror(errno);
    if (errno == EEXIST) return AlreadyExistsError(path.string() + " exists (--force to replace)");
    return UnavailableError("cannot create " + path.string() + ": " + reason);
  }
  bool ok = ::fchmod(fd, 0600) == 0;
  ok = ok && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok) return UnavailableError("cannot write " + path.string());
  return OkStatus();
}

Status Keygen(const KeygenFlags& flags) {
  TESSERA_ASSIGN_OR_RETURN(CurveKeys keys, GenerateCurveKeys());
  const fs::path dir(flags.out);
  if (!flags.no_token && !flags.force && fs::exists(dir / kTokenFile)) {
    return AlreadyExistsError((dir / kTokenFile).string() + " exists (--force to replace)");
  }
  TESSERA_RETURN_IF_ERROR(WriteCurveKeys(keys, flags.out, flags.force));
  std::cout << "wrote " << (dir / kCurveSecretKeyFile).string() << " (secret, mode 0600) and "
            << (dir / kCurvePublicKeyFile).string() << "\n";
  if (!flags.no_token) {
    TESSERA_ASSIGN_OR_RETURN(std::string token, GenerateClusterToken());
    TESSERA_RETURN_IF_ERROR(WritePrivateFile(dir / kTokenFile, token + "\n", flags.force));
    std::cout << "wrote " << (dir / kTokenFile).string() << " (cluster token, mode 0600)\n";
  }
  std::cout << "cluster key " << keys.public_key << "\n"
            << "Give every node this directory, e.g. --curve-dir " << flags.out
            << (flags.no_token ? "" : " --token-file " + (dir / kTokenFile).string())
            << "\n(or env " << kCurveDirEnv << "=" << flags.out << ")\n";
  return OkStatus();
}

}  // namespace

void AddKeygenCommand(CLI::App* app, Command* selected) {
  auto flags = std::make_shared<KeygenFlags>();
  CLI::App* cmd = app->add_subcommand(
      "keygen", "Create a cluster's secrets: a CurveZMQ keypair and a cluster token");
  cmd->add_option("--out", flags->out, "Directory to write curve.pub, curve.key and token into")
      ->required();
  cmd->add_flag("--force", flags->force, "Replace existing files");
  cmd->add_flag("--no-token", flags->no_token, "Write only the Curve keypair");
  cmd->footer(
      "Every node of a cluster uses the same directory: --curve-dir DIR (or TESSERA_CURVE_DIR)\n"
      "encrypts every ZeroMQ link and admits only peers holding DIR/curve.key;\n"
      "--token-file DIR/token sets the cluster token. Copy DIR to each host (or mount it as a\n"
      "Kubernetes Secret); keep curve.key and token private.");
  cmd->callback([flags, selected] {
    *selected = [flags] {
      Status s = Keygen(*flags);
      if (s.ok()) return 0;
      std::cerr << "tessera keygen: " << s.message() << "\n";
      return absl::IsAlreadyExists(s) ? kExitUsage : 1;
    };
  });
}

}  // namespace tessera::cli
