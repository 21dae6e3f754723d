// Flags shared by the subcommands that start nodes, and the cluster token.
//
// The cluster token is a shared secret every message carries. It comes from
// the environment (TESSERA_CLUSTER_TOKEN) or a file (--token-file), never
// from a command-line value (which `ps` would show to every user).
//
// CurveZMQ (optional): --curve-dir (env TESSERA_CURVE_DIR) names a key
// directory written by `tessera keygen` (common/curve_keys.h); with it every
// ZeroMQ link of the node is encrypted and only peers holding the same
// cluster key can connect. The flag carries a path, never key material.
#ifndef TESSERA_TOOLS_CLI_NODE_FLAGS_H_
#define TESSERA_TOOLS_CLI_NODE_FLAGS_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "common/curve_keys.h"
#include "common/status.h"

namespace tessera::cli {

inline constexpr char kTokenEnv[] = "TESSERA_CLUSTER_TOKEN";
inline constexpr char kSchedulerEnv[] = "TESSERA_SCHEDULER";
inline constexpr char kCurveDirEnv[] = "TESSERA_CURVE_DIR";

// Where a node listens and how it presents itself. Defaults suit a
// container: bind every interface on a free port.
struct NodeFlags {
  std::string scheduler;  // data-plane address of the scheduler
  int rank = -1;          // requested rank within the role; -1: any
  std::string bind = "tcp://0.0.0.0:0";
  std::string host = "127.0.0.1";  // advertised to peers in place of 0.0.0.0
  std::string metrics_host = "0.0.0.0";
  int metrics_port = 0;  // 0 picks a free port
  std::string token_file;
  std::string curve_dir;  // empty: plaintext ZeroMQ
  int startup_timeout_s = 300;
};

// --log-level (debug|info|warning|error).
void AddLogLevelFlag(CLI::App* app, std::string* level);
// Sets the process's log level. InvalidArgument for an unknown name.
Status ApplyLogLevel(const std::string& level);

// --bind, --host, --metrics-host, --metrics-port, --token-file,
// --curve-dir (env TESSERA_CURVE_DIR), --startup-timeout-s; with `member_flags` also --scheduler (env
// TESSERA_SCHEDULER) and --rank.
void AddNodeFlags(CLI::App* app, NodeFlags* flags, bool member_flags);

// The token from TESSERA_CLUSTER_TOKEN or, if unset, from `token_file`
// (surrounding whitespace trimmed). NotFound if neither gives one.
StatusOr<std::string> ReadClusterToken(const std::string& token_file);
// ReadClusterToken(), or a fresh random token when none is configured.
StatusOr<std::string> ReadOrGenerateClusterToken(const std::string& token_file);
// 32 hex characters from /dev/urandom.
StatusOr<std::string> GenerateClusterToken();

// The Curve key directory to use: `curve_dir`, else TESSERA_CURVE_DIR, else
// "" (Curve off). A directory is checked (its keys are read and validated)
// and returned as an absolute path, so child processes can inherit it.
// FailedPrecondition if libzmq lacks CURVE; the errors of ReadCurveKeys().
StatusOr<std::string> ResolveCurveDir(const std::string& curve_dir);
// ResolveCurveDir(), then the directory's keys: what a main puts into its
// role's MainArgs::curve (or ZmqTransportOptions::curve) so every link of
// the node is encrypted. std::nullopt when Curve is off (no directory).
StatusOr<std::optional<CurveKeys>> LoadCurveKeys(const std::string& curve_dir);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_NODE_FLAGS_H_
