// Follows a publish directory (models/model_versions.h) for `tessera
// serve`: loads the latest version (without optimizer state), then polls
// and applies each new version, publishing every one into a ModelSlot.
//
// Hot swap by double buffering. Two copies of the model are kept at the
// same version: the active one (published, read by requests) and a standby.
// A new delta is read and verified once, applied to the standby (O(delta)),
// the standby is published (an atomic shared_ptr swap), the follower waits
// until no request holds the previous active copy (the lease's deleter
// signals it: no polling) and applies the same delta to it, which becomes
// the standby. Requests never wait and never see a half-applied version.
// When the next version is not a delta on the current one (a gap: versions
// were removed, or a full snapshot comes next), the latest version is
// reloaded through its chain (O(model)) and published the same way.
//
// Errors (a corrupt or half-removed version, an unreadable directory) are
// logged when they change, counted, and retried at the next poll; nothing
// is published from a version that failed. If a delta keeps failing while a
// newer full snapshot exists, the follower reloads past it.
//
// Metrics, labelled {arm}: tessera_serving_model_version (gauge),
// tessera_serving_version_lag_seconds (gauge: now - the served version's
// created_unix_ms, updated at every poll),
// tessera_serving_version_freshness_seconds (histogram: the same age when a
// version starts being served), tessera_serving_deltas_applied_total,
// tessera_serving_reloads_total, tessera_serving_apply_errors_total.
//
// Thread safety: Start/Stop/PollOnce from one controlling thread; the
// polling thread is owned (started by Start, joined by Stop and the
// destructor); version() and WaitForVersion are thread-safe.
//
// Example:
//   ModelFollower follower({.publish_dir = "runs/ctr/publish"}, &slot,
//   &metrics); follower.Start();
//   ... requests use slot.Get() ...
//   follower.Stop();
#ifndef TESSERA_SERVING_MODEL_FOLLOWER_H_
#define TESSERA_SERVING_MODEL_FOLLOWER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/status.h"
#include "serving/model_slot.h"
#include "serving/served_model.h"

namespace tessera::serving {

struct FollowerOptions {
  std::string publish_dir;        // required
  std::string catalog_path = "";  // optional items.tsv (serving/item_catalog.h)
  std::string arm = "default";    // the metrics' arm label
  std::chrono::milliseconds poll_interval{100};
  // Wall-clock milliseconds since the epoch (lag and freshness). Null: the
  // system clock.
  std::function<int64_t()> unix_ms = nullptr;
  // The id salt the versions were trained with: a version with another salt
  // fingerprint is refused (logged, counted and retried like any bad
  // version; models::CheckIdSalt).
  models::FeatureHasher id_hasher = {};
};

class ModelFollower {
 public:
  // `slot` and `metrics` are borrowed and must outlive this object.
  ModelFollower(FollowerOptions options, ModelSlot* slot, MetricsRegistry* metrics);
  ~ModelFollower();  // Stop()
  ModelFollower(const ModelFollower&) = delete;
  ModelFollower& operator=(const ModelFollower&) = delete;

  // One poll: the first load, the next deltas, or a reload. Returns the
  // first error (already counted and logged); OK if there was nothing new.
  // REQUIRES: the polling thread is not running (Start not called, or Stop).
  Status PollOnce();

  // Starts the thread that calls PollOnce every poll_interval until Stop.
  void Start();
  // Stops and joins the thread. Idempotent. A model already published stays
  // in the slot (kept alive by its lease).
  void Stop();

  // The version served (0 before the first load).
  uint64_t version() const;
  // Blocks until version() >= `version` or `timeout` passes; returns whether
  // it got there.
  bool WaitForVersion(uint64_t version, absl::Duration timeout) const;

 private:
  // A published copy and the notification its lease's deleter fires.
  struct Active {
    std::shared_ptr<ServedModel> model;
    std::shared_ptr<absl::Notification> released;
  };

  Status Step();
  // Applies delta `version` (on the current version) to both copies.
  Status ApplyNext(uint64_t version);
  // Loads `version` through its chain and serves it.
  Status Reload(uint64_t version);
  // Publishes `next`; returns the previous active copy once no request
  // holds it (null if there was none, or if Stop came first).
  std::shared_ptr<ServedModel> Publish(std::shared_ptr<ServedModel> next);
  void OnError(const Status& s);
  void UpdateLag();
  int64_t NowUnixMs() const;

  const FollowerOptions options_;
  ModelSlot* const slot_;
  MetricsRegistry* const metrics_;
  absl::Notification stop_;
  std::thread thread_;

  // Confined to the polling thread (or the PollOnce caller).
  Active active_;
  std::shared_ptr<ServedModel> standby_;  // null until needed after a reload
  std::shared_ptr<const ItemCatalog> catalog_;
  std::string catalog_schema_;  // the schema catalog_ was loaded for
  std::string last_error_;      // the last error logged

  mutable absl::Mutex mu_;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_MODEL_FOLLOWER_H_
