#include "server/server_main.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/deadline.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/shutdown_signals.h"
#include "common/zmq_transport.h"

namespace tessera::server {
namespace {

constexpr std::chrono::hours kForever(24);

Status Run(const ServerMainArgs& args) {
  SetLogNodeLabel("server");
  RealClock clock;
  MetricsRegistry metrics;
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Transport> transport,
                           NewNodeTransport(&metrics, args.curve));

  // The node needs the metrics port (it registers it) and the HTTP routes
  // need the node, so the routes read it through `live`, set once it exists.
  // Declared before `http`, so the server stops before the node goes away.
  std::unique_ptr<ServerNode> node;
  std::atomic<ServerNode*> live{nullptr};
  HttpServer http;
  AddObservabilityRoutes(&http, &metrics, [&live] {
    ServerNode* n = live.load();
    return n != nullptr && n->ready();
  });
  TESSERA_ASSIGN_OR_RETURN(int metrics_port, http.Start(args.metrics_host, args.metrics_port));

  ServerOptions options = args.node;
  options.member.metrics_port = metrics_port;
  node = std::make_unique<ServerNode>(options, transport.get(), &clock, &metrics);
  live.store(node.get());

  std::atomic<bool> started{false};
  ShutdownSignalWatcher watcher(
      protocol::MemberSignalHandler("server", &started, args.first_signal_drains, &node->member()));

  TESSERA_RETURN_IF_ERROR(node->Start(DeadlineIn(args.startup_timeout)));
  started.store(true);
  TESSERA_LOG(kInfo) << node->id().ToString() << " at " << node->endpoint() << ", metrics on port "
                     << metrics_port;
  while (absl::IsDeadlineExceeded(node->WaitForShutdown(DeadlineIn(kForever)))) {
  }
  http.Stop();
  node->Stop();
  return OkStatus();
}

}  // namespace

int RunServer(const ServerMainArgs& args) { return LogExit("server", Run(args)); }

}  // namespace tessera::server
