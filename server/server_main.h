// Entry function of a parameter-server process. The CLI (tools/cli) parses
// flags and the environment into ServerMainArgs; this builds the real pieces
// (RealClock, MetricsRegistry, the /metrics /healthz /readyz HTTP server,
// ZmqTransport), runs a ServerNode until the scheduler orders shutdown or
// SIGINT/SIGTERM arrives, and returns the process exit code.
#ifndef TESSERA_SERVER_SERVER_MAIN_H_
#define TESSERA_SERVER_SERVER_MAIN_H_

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "common/curve_keys.h"
#include "common/status.h"
#include "server/server_node.h"

namespace tessera::server {

struct ServerMainArgs {
  // Bind endpoint, advertised host, scheduler endpoint, requested rank and
  // token. member.metrics_port is filled in with the bound metrics port.
  ServerOptions node;
  // Interface and port of the HTTP observability server (0 picks a port).
  std::string metrics_host = "0.0.0.0";
  int metrics_port = 0;
  // CurveZMQ keys of the cluster (common/curve_keys.h), read by the CLI from
  // --curve-dir / TESSERA_CURVE_DIR. Unset: plaintext ZeroMQ.
  std::optional<CurveKeys> curve;
  // Registration with the scheduler must finish within this time.
  std::chrono::seconds startup_timeout{300};
  // A streaming job under mpirun (or Kubernetes): every rank gets the
  // signal, but the scheduler drains the stream and then stops the cluster;
  // so the first SIGINT/SIGTERM after registration is only logged, and a
  // second one stops this node.
  bool first_signal_drains = false;
};

// Returns 0 after an orderly shutdown, 1 on failure, 128+signo when
// interrupted before it registered.
// REQUIRES: BlockShutdownSignals() was called before any thread started.
int RunServer(const ServerMainArgs& args);

}  // namespace tessera::server

#endif  // TESSERA_SERVER_SERVER_MAIN_H_
