#include "tools/cli/node_flags.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "common/curve_keys.h"
#include "common/logging.h"

namespace tessera::cli {

void AddLogLevelFlag(CLI::App* app, std::string* level) {
  app->add_option("--log-level", *level, "debug | info | warning | error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
}

Status ApplyLogLevel(const std::string& level) {
  LogLevel parsed;
  if (!ParseLogLevel(level, &parsed)) {
    return InvalidArgumentError("unknown log level '" + level + "'");
  }
  SetLogLevel(parsed);
  return OkStatus();
}

void AddNodeFlags(CLI::App* app, NodeFlags* flags, bool member_flags) {
  if (member_flags) {
    app->add_option("--scheduler", flags->scheduler,
                    "Scheduler address, e.g. tcp://10.0.0.5:7000 (env TESSERA_SCHEDULER)")
        ->envname(kSchedulerEnv)
        ->required();
    app->add_option("--rank", flags->rank,
                    "Requested rank within the role (e.g. the pod ordinal); -1 takes any")
        ->capture_default_str();
  }
  app->add_option("--bind", flags->bind, "Data-plane endpoint to bind (port 0 picks one)")
      ->capture_default_str();
  app->add_option("--host", flags->host, "Host advertised to peers in place of 0.0.0.0")
      ->capture_default_str();
  app->add_option("--metrics-host", flags->metrics_host,
                  "Interface of the /metrics /healthz /readyz HTTP server")
      ->capture_default_str();
  app->add_option("--metrics-port", flags->metrics_port, "Port of that server (0 picks one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app->add_option("--token-file", flags->token_file,
                  "File holding the cluster token (env TESSERA_CLUSTER_TOKEN wins)");
  app->add_option("--curve-dir", flags->curve_dir,
                  "CurveZMQ key directory from `tessera keygen`: encrypt every link and admit "
                  "only peers with the same key")
      ->envname(kCurveDirEnv);
  app->add_option("--startup-timeout-s", flags->startup_timeout_s,
                  "Seconds allowed for the cluster to assemble")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

StatusOr<std::string> ReadClusterToken(const std::string& token_file) {
  if (const char* env = std::getenv(kTokenEnv); env != nullptr && env[0] != '\0') {
    return std::string(env);
  }
  if (token_file.empty()) {
    return NotFoundError(std::string("no cluster token: set ") + kTokenEnv +
                         " or pass --token-file");
  }
  std::ifstream in(token_file);
  if (!in) return NotFoundError("cannot read token file " + token_file);
  std::stringstream text;
  text << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) return InvalidArgumentError("token file " + token_file + " is empty");
  return token;
}

StatusOr<std::string> ReadOrGenerateClusterToken(const std::string& token_file) {
  StatusOr<std::string> token = ReadClusterToken(token_file);
  if (token.ok() || !token_file.empty()) return token;
  return GenerateClusterToken();
}

StatusOr<std::string> GenerateClusterToken() {
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[16];
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof(bytes))) {
    return UnavailableError("cannot read /dev/urandom");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 15]);
  }
  return token;
}

StatusOr<std::string> ResolveCurveDir(const std::string& curve_dir) {
  std::string dir = curve_dir;
  if (dir.empty()) {
    if (const char* env = std::getenv(kCurveDirEnv); env != nullptr) dir = env;
  }
  if (dir.empty()) return std::string();
  TESSERA_RETURN_IF_ERROR(CurveAvailable());
  TESSERA_RETURN_IF_ERROR(ReadCurveKeys(dir).status());
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(dir, error);
  return error ? dir : absolute.lexically_normal().string();
}

StatusOr<std::optional<CurveKeys>> LoadCurveKeys(const std::string& curve_dir) {
  TESSERA_ASSIGN_OR_RETURN(std::string dir, ResolveCurveDir(curve_dir));
  if (dir.empty()) return std::optional<CurveKeys>();
  TESSERA_ASSIGN_OR_RETURN(CurveKeys keys, ReadCurveKeys(dir));
  TESSERA_LOG(kInfo) << "CurveZMQ on: cluster key " << keys.public_key << " from " << dir;
  return std::optional<CurveKeys>(std::move(keys));
}

}  // namespace tessera::cli
