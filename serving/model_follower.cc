#include "serving/model_follower.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "models/model_versions.h"

namespace tessera::serving {

ModelFollower::ModelFollower(FollowerOptions options, ModelSlot* slot, MetricsRegistry* metrics)
    : options_(std::move(options)), slot_(slot), metrics_(metrics) {}

ModelFollower::~ModelFollower() { Stop(); }

void ModelFollower::Start() {
  thread_ = std::thread([this] {
    const absl::Duration interval = absl::FromChrono(options_.poll_interval);
    do {
      (void)PollOnce();  // errors are counted and logged there
    } while (!stop_.WaitForNotificationWithTimeout(interval));
  });
}

void ModelFollower::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

uint64_t ModelFollower::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

bool ModelFollower::WaitForVersion(uint64_t version, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return version_ >= version; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

int64_t ModelFollower::NowUnixMs() const {
  if (options_.unix_ms) return options_.unix_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status ModelFollower::PollOnce() {
  Status s = Step();
  UpdateLag();
  if (!s.ok()) OnError(s);
  return s;
}

Status ModelFollower::Step() {
  const std::string& dir = options_.publish_dir;
  TESSERA_ASSIGN_OR_RETURN(std::vector<uint64_t> versions, models::ListVersionNumbers(dir));
  if (versions.empty()) return OkStatus();  // nothing published yet
  if (active_.model == nullptr) return Reload(versions.back());
  for (uint64_t v : versions) {
    const uint64_t current = active_.model->version_number();
    if (v <= current) continue;
    if (stop_.HasBeenNotified()) break;
    TESSERA_ASSIGN_OR_RETURN(models::VersionInfo info, models::ReadVersionInfo(dir, v));
    if (info.full || info.base_version != current) return Reload(versions.back());  // a gap
    Status s = ApplyNext(v);
    if (s.ok()) continue;
    // A delta that fails: reload past it if a newer full snapshot exists,
    // else retry at the next poll.
    for (auto it = versions.rbegin(); it != versions.rend() && *it > v; ++it) {
      StatusOr<models::VersionInfo> later = models::ReadVersionInfo(dir, *it);
      if (later.ok() && later->full) {
        OnError(s);
        return Reload(versions.back());
      }
    }
    return s;
  }
  return OkStatus();
}

Status ModelFollower::ApplyNext(uint64_t version) {
  if (standby_ == nullptr) standby_ = active_.model->Clone();  // after a failed reload
  TESSERA_ASSIGN_OR_RETURN(models::ModelDelta delta,
                           models::ReadDelta(models::VersionDir(options_.publish_dir, version),
                                             /*with_state=*/false, standby_->saved()));
  standby_->ApplyDelta(delta);
  std::shared_ptr<ServedModel> previous = Publish(std::move(standby_));
  if (previous != nullptr) {  // null if stopping: it may still be read
    previous->ApplyDelta(delta);
    standby_ = std::move(previous);
  }
  metrics_
      ->GetCounter("tessera_serving_deltas_applied_total", "Deltas applied to the served model",
                   {{"arm", options_.arm}})
      .Increment();
  return OkStatus();
}

Status ModelFollower::Reload(uint64_t version) {
  standby_.reset();  // at most two copies in memory (plus the one loading)
  TESSERA_ASSIGN_OR_RETURN(models::SavedModel saved,
                           models::LoadModelVersion(options_.publish_dir, version,
                                                    /*with_state=*/false));
  TESSERA_RETURN_IF_ERROR(models::UseIdSalt(
      options_.id_hasher, models::VersionDir(options_.publish_dir, version), &saved));
  if (!options_.catalog_path.empty() && saved.manifest.schema_yaml != catalog_schema_) {
    TESSERA_ASSIGN_OR_RETURN(catalog_,
                             ServedModel::LoadCatalog(options_.catalog_path, saved.schema));
    catalog_schema_ = saved.manifest.schema_yaml;
  }
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<ServedModel> loaded,
                           ServedModel::Create(std::move(saved), catalog_));
  std::shared_ptr<ServedModel> fresh = std::move(loaded);
  TESSERA_LOG(kInfo) << "serve: arm '" << options_.arm << "' loaded version " << version << " of "
                     << options_.publish_dir;
  Publish(fresh);  // the previous copy is dropped once unused
  if (!stop_.HasBeenNotified()) standby_ = fresh->Clone();
  metrics_
      ->GetCounter("tessera_serving_reloads_total", "Versions loaded whole (first load or a gap)",
                   {{"arm", options_.arm}})
      .Increment();
  return OkStatus();
}

std::shared_ptr<ServedModel> ModelFollower::Publish(std::shared_ptr<ServedModel> next) {
  Active previous = std::move(active_);
  active_.model = next;
  active_.released = std::make_shared<absl::Notification>();
  // The lease keeps the copy alive (even past this object) and signals when
  // the slot and every request have let go of it.
  std::shared_ptr<const ServedModel> lease(
      next.get(), [keep = next, released = active_.released](const ServedModel*) mutable {
        keep.reset();
        released->Notify();
      });
  slot_->Set(std::move(lease));
  const int64_t age_ms = NowUnixMs() - next->saved().manifest.created_unix_ms;
  metrics_
      ->GetHistogram("tessera_serving_version_freshness_seconds",
                     "Age of a version when it starts being served", LatencyBuckets(),
                     {{"arm", options_.arm}})
      .Observe(static_cast<double>(age_ms) / 1000.0);
  metrics_->GetGauge("tessera_serving_model_version", "The version served", {{"arm", options_.arm}})
      .Set(static_cast<double>(next->version_number()));
  {
    absl::MutexLock lock(&mu_);
    version_ = next->version_number();
  }
  if (previous.model == nullptr) return nullptr;
  // Requests are short; this wait is what keeps them from ever waiting.
  while (!previous.released->WaitForNotificationWithTimeout(absl::Seconds(1))) {
    if (stop_.HasBeenNotified()) return nullptr;
    TESSERA_LOG(kWarning) << "serve: arm '" << options_.arm << "': a request has held version "
                          << previous.model->version() << " for over a second";
  }
  return std::move(previous.model);
}

void ModelFollower::UpdateLag() {
  if (active_.model == nullptr) return;
  const int64_t age_ms = NowUnixMs() - active_.model->saved().manifest.created_unix_ms;
  metrics_
      ->GetGauge("tessera_serving_version_lag_seconds",
                 "Age of the served version (now - its manifest's created_unix_ms)",
                 {{"arm", options_.arm}})
      .Set(static_cast<double>(age_ms) / 1000.0);
}

void ModelFollower::OnError(const Status& s) {
  metrics_
      ->GetCounter("tessera_serving_apply_errors_total",
                   "Failed polls, loads or delta applications (retried)", {{"arm", options_.arm}})
      .Increment();
  if (s.ToString() == last_error_) return;
  last_error_ = s.ToString();
  TESSERA_LOG(kWarning) << "serve: arm '" << options_.arm << "': " << s.message()
                        << " (retrying every " << options_.poll_interval.count() << " ms)";
}

}  // namespace tessera::serving
