#include "serving/serve_main.h"

#include <unistd.h>

#include <memory>
#include <utility>

#include "absl/synchronization/notification.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/shutdown_signals.h"
#include "serving/rest_api.h"
#include "serving/served_model.h"

namespace tessera::serving {

Status RunServe(const ServeOptions& options) {
  MetricsRegistry metrics;
  RestApi api({.name = options.name}, &metrics);
  HttpServer server;
  api.Register(&server);
  TESSERA_ASSIGN_OR_RETURN(int port, server.Start(options.host, options.port));
  TESSERA_LOG(kInfo) << "serve: listening on http://" << options.host << ":" << port << ", loading "
                     << options.model_dir;
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<ServedModel> model,
                           ServedModel::Load(options.model_dir, options.catalog));
  TESSERA_LOG(kInfo) << "serve: model '" << options.name << "' version " << model->version()
                     << " ready at http://" << options.host << ":" << port << "/v1/models/"
                     << options.name
                     << (model->catalog() ? " (catalog of " +
                                                std::to_string(model->catalog()->size()) + " items)"
                                          : "");
  api.SetModel(std::move(model));
  absl::Notification stop;
  ShutdownSignalWatcher watcher([&](int signo, bool insist) {
    if (insist) _exit(128 + signo);
    TESSERA_LOG(kInfo) << "serve: " << ShutdownSignalName(signo) << ", stopping";
    if (!stop.HasBeenNotified()) stop.Notify();
  });
  stop.WaitForNotification();
  server.Stop();
  return OkStatus();
}

}  // namespace tessera::serving
