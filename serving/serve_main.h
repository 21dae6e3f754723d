// `tessera serve`: loads a saved model and serves it over HTTP
// (serving/rest_api.h) until SIGINT or SIGTERM.
#ifndef TESSERA_SERVING_SERVE_MAIN_H_
#define TESSERA_SERVING_SERVE_MAIN_H_

#include <string>

#include "common/status.h"

namespace tessera::serving {

struct ServeOptions {
  std::string model_dir;  // <output_dir>/model of `tessera train`; required
  std::string host = "127.0.0.1";
  int port = 8501;               // 0: any free port (logged)
  std::string name = "default";  // NAME in /v1/models/NAME
  std::string catalog;           // optional items.tsv (serving/item_catalog.h)
};

// Binds first (so /healthz answers and /readyz says "not ready" while the
// model loads), loads the model, serves until a shutdown signal. REQUIRES:
// the caller blocked the shutdown signals (common/shutdown_signals.h).
// Errors: binding (Unavailable), loading the model or the catalogue.
Status RunServe(const ServeOptions& options);

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_SERVE_MAIN_H_
