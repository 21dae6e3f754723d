// `tessera serve`: serves saved models over HTTP (serving/rest_api.h) until
// SIGINT or SIGTERM.
//
// A model directory is either one saved model (DIR/manifest.json exists:
// served as is) or a publish directory (models/model_versions.h): its
// latest version is loaded and every new one applied as it appears
// (serving/model_follower.h). --arm NAME=DIR:WEIGHT (repeated) serves
// several directories side by side as A/B arms (serving/arm_split.h).
#ifndef TESSERA_SERVING_SERVE_MAIN_H_
#define TESSERA_SERVING_SERVE_MAIN_H_

#include <string>
#include <vector>

#include "common/status.h"
#include "models/feature_hash.h"
#include "serving/arm_split.h"

namespace tessera::serving {

struct ServeOptions {
  // <output_dir>/model of `tessera train`, or a publish directory. Exactly
  // one of model_dir and arms is given.
  std::string model_dir;
  std::vector<ArmSpec> arms;          // --arm NAME=DIR:WEIGHT
  std::string arm_field = "user_id";  // the request field that picks the arm
  std::string host = "127.0.0.1";
  int port = 8501;               // 0: any free port (logged)
  std::string name = "default";  // NAME in /v1/models/NAME
  std::string catalog;           // optional items.tsv (serving/item_catalog.h)
  int poll_ms = 100;             // how often publish directories are polled
  // The id salt of the models (from the environment: tools/cli/id_salt.h);
  // a model trained with another salt is refused.
  models::FeatureHasher id_hasher = {};
  // Impression and feedback log (issue 8, docs/feedback_loop.md); "": off.
  std::string impression_dir;
  uint64_t impression_max_file_mb = 64;              // rotate past this size (MiB)
  int impression_max_file_s = 60;                    // or after this long
  int impression_fsync_ms = 1000;                    // fsync period (0: every batch)
  size_t impression_queue = 65536;                   // records queued; more are dropped
  size_t feedback_max_requests = 100000;             // requests remembered for feedback
};

// Binds first (so /healthz answers and /readyz says "not ready" while the
// models load), loads the saved models and starts following the publish
// directories, serves until a shutdown signal. REQUIRES: the caller blocked
// the shutdown signals (common/shutdown_signals.h). Errors: bad options
// (InvalidArgument), binding (Unavailable), loading a saved model or the
// catalogue, a directory that does not exist (NotFound). A publish
// directory's errors are logged and retried instead. With impression_dir,
// impressions and feedback are logged there (serving/feedback_service.h);
// POST /v1/feedback and GET /v1/ab are served either way.
Status RunServe(const ServeOptions& options);

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_SERVE_MAIN_H_
