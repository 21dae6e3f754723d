#include "serving/serve_main.h"

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/shutdown_signals.h"
#include "models/saved_model.h"
#include "serving/feedback/event_log_writer.h"
#include "serving/feedback_service.h"
#include "serving/model_follower.h"
#include "serving/rest_api.h"
#include "serving/served_model.h"

namespace tessera::serving {
namespace {

// The arms to serve: --arm flags, or --model-dir as the one arm "default".
StatusOr<std::vector<ArmSpec>> Arms(const ServeOptions& options) {
  if (options.arms.empty() == options.model_dir.empty()) {
    return InvalidArgumentError("give either --model-dir or --arm (one or more), not both");
  }
  if (options.poll_ms < 1) return InvalidArgumentError("--poll-ms must be >= 1");
  std::vector<ArmSpec> arms = options.arms;
  if (arms.empty()) arms.push_back({"default", options.model_dir, 1.0});
  std::vector<ArmWeight> weights;
  for (const ArmSpec& a : arms) weights.push_back({a.name, a.weight});
  TESSERA_RETURN_IF_ERROR(ArmSplit::Create(weights).status());
  return arms;
}

bool IsSavedModel(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir) / models::kManifestFileName, ec);
}

}  // namespace

Status RunServe(const ServeOptions& options) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<ArmSpec> arms, Arms(options));
  for (const ArmSpec& a : arms) {
    std::error_code ec;
    if (!std::filesystem::is_directory(a.dir, ec)) {
      return NotFoundError(absl::StrCat(a.dir, ": no such directory (arm '", a.name, "')"));
    }
    // A saved model of another id salt is refused before anything starts.
    if (IsSavedModel(a.dir)) {
      TESSERA_ASSIGN_OR_RETURN(models::ModelManifest manifest, models::ReadManifest(a.dir));
      TESSERA_RETURN_IF_ERROR(models::CheckIdSalt(manifest, options.id_hasher, a.dir));
    }
  }
  MetricsRegistry metrics;
  RestApiOptions api_options;
  api_options.name = options.name;
  api_options.arm_field = options.arm_field;
  api_options.arms.clear();
  for (const ArmSpec& a : arms) api_options.arms.push_back({a.name, a.weight});
  RestApi api(api_options, &metrics);
  RealClock clock;
  std::unique_ptr<feedback::EventLogWriter> event_log;
  if (!options.impression_dir.empty()) {
    feedback::EventLogWriterOptions log_options;
    log_options.dir = options.impression_dir;
    log_options.max_file_bytes = options.impression_max_file_mb << 20;
    log_options.max_file_age = std::chrono::seconds(options.impression_max_file_s);
    log_options.fsync_interval = std::chrono::milliseconds(options.impression_fsync_ms);
    log_options.queue_capacity = options.impression_queue;
    TESSERA_ASSIGN_OR_RETURN(event_log,
                             feedback::EventLogWriter::Open(log_options, &clock, &metrics));
    TESSERA_LOG(kInfo) << "serve: logging impressions and feedback to " << options.impression_dir;
  }
  std::vector<std::string> arm_names;
  for (const ArmSpec& a : arms) arm_names.push_back(a.name);
  FeedbackService feedback_service({.max_requests = options.feedback_max_requests,
                                    .max_body_bytes = 64 << 10},
                                   arm_names, event_log.get(), &clock, &metrics);
  api.set_feedback(&feedback_service);
  HttpServer server;
  api.Register(&server);
  feedback_service.Register(&server);
  TESSERA_ASSIGN_OR_RETURN(int port, server.Start(options.host, options.port));
  TESSERA_LOG(kInfo) << "serve: listening on http://" << options.host << ":" << port
                     << "/v1/models/" << options.name;
  std::vector<std::unique_ptr<ModelFollower>> followers;
  for (size_t i = 0; i < arms.size(); ++i) {
    const ArmSpec& a = arms[i];
    if (IsSavedModel(a.dir)) {
      TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<ServedModel> model,
                               ServedModel::Load(a.dir, options.catalog, options.id_hasher));
      TESSERA_LOG(kInfo) << "serve: arm '" << a.name << "': saved model " << a.dir << " version "
                         << model->version();
      api.slot(i)->Set(std::move(model));
      continue;
    }
    TESSERA_LOG(kInfo) << "serve: arm '" << a.name << "': following publish directory " << a.dir
                       << " every " << options.poll_ms << " ms";
    FollowerOptions follow;
    follow.publish_dir = a.dir;
    follow.catalog_path = options.catalog;
    follow.arm = a.name;
    follow.poll_interval = std::chrono::milliseconds(options.poll_ms);
    follow.id_hasher = options.id_hasher;
    followers.push_back(std::make_unique<ModelFollower>(follow, api.slot(i), &metrics));
    followers.back()->Start();
  }
  absl::Notification stop;
  ShutdownSignalWatcher watcher([&](int signo, bool insist) {
    if (insist) _exit(128 + signo);
    TESSERA_LOG(kInfo) << "serve: " << ShutdownSignalName(signo) << ", stopping";
    if (!stop.HasBeenNotified()) stop.Notify();
  });
  stop.WaitForNotification();
  server.Stop();
  for (auto& f : followers) f->Stop();
  if (event_log != nullptr) event_log->Stop();  // writes what is queued
  return OkStatus();
}

}  // namespace tessera::serving
