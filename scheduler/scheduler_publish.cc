// SchedulerNode's publishing of model versions: the publish thread, the
// consistent cut and the calls to the servers (see scheduler_node.h and
// cut_gate.h).
#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>

#include "common/deadline.h"
#include "common/logging.h"
#include "scheduler/scheduler_node.h"

namespace tessera::scheduler {
namespace {

using protocol::DecodedMessage;
using protocol::Header;

// Workers reach a step boundary within one step; a cut not reached in this
// time fails the version (training goes on).
constexpr std::chrono::seconds kCutTimeout(120);
constexpr std::chrono::seconds kCaptureTimeout(300);
constexpr std::chrono::minutes kFlushTimeout(30);

double SecondsSince(SteadyTime start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Status SchedulerNode::RestoreDataPlan(const std::string& training_state_json) {
  nlohmann::json state = nlohmann::json::parse(training_state_json, nullptr, false);
  if (state.is_discarded() || !state.is_object() || !state.contains("data")) {
    return InvalidArgumentError("training_state: not an object with a \"data\" key");
  }
  TESSERA_ASSIGN_OR_RETURN(DataAssignerState data,
                           DataAssignerStateFromJson(state["data"].dump()));
  MutexLock lock(&mu_);
  TESSERA_RETURN_IF_ERROR(data_.Restore(data));
  chunks_total_.Set(static_cast<double>(data_.total()));
  return OkStatus();
}

uint64_t SchedulerNode::last_published_version() const {
  MutexLock lock(&mu_);
  return published_;
}

void SchedulerNode::PublishLoop() {
  const auto interval = std::max(options_.publish.interval, std::chrono::milliseconds(10));
  auto next = std::chrono::steady_clock::now() + interval;
  while (true) {
    bool final = false;
    {
      MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return final_due_ || shutdown_; };
      mu_.AwaitWithDeadline(absl::Condition(&wake), ToAbslTime(next));
      if (shutdown_ || final_published_) return;
      final = final_due_;
      if (!running_ && !final) {
        next = std::chrono::steady_clock::now() + interval;
        continue;
      }
    }
    if (std::chrono::steady_clock::now() < next && !final) continue;
    // A version every `interval` from the first, not `interval` after the
    // previous one finished: publishing time does not stretch the period.
    next += interval;
    StatusOr<uint64_t> v = PublishVersion(final);
    if (!v.ok()) {
      publish_errors_.Increment();
      TESSERA_LOG(kError) << "publishing a version failed: " << v.status();
      if (final) {
        // Let the workers finish anyway; the job reports the failure.
        MutexLock lock(&mu_);
        final_published_ = true;
        ReplyClock(final_waiters_);
        final_waiters_.clear();
        return;
      }
    }
    // Behind by a whole period (a slow version): skip the missed ones.
    if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now() + interval;
  }
}

StatusOr<uint64_t> SchedulerNode::PublishNow() { return PublishVersion(false); }

Status SchedulerNode::CallServers(const std::function<Frame(const Header&)>& encode,
                                  std::chrono::milliseconds timeout) {
  std::vector<protocol::NodeInfo> servers;
  {
    MutexLock lock(&mu_);
    if (!view_) return FailedPreconditionError("publish: the cluster is not assembled");
    const std::vector<bool> live = view_->LiveServers();
    for (const protocol::NodeInfo& server : view_->servers) {
      if (live[server.id.rank]) servers.push_back(server);  // dead: promoted backups hold theirs
    }
  }
  struct Calls {
    Mutex mu;
    size_t left TESSERA_GUARDED_BY(mu) = 0;
    Status first TESSERA_GUARDED_BY(mu);
  };
  auto calls = std::make_shared<Calls>();
  {
    MutexLock lock(&calls->mu);
    calls->left = servers.size();
  }
  auto done = [calls](NodeId server, Status s) {
    MutexLock lock(&calls->mu);
    if (!s.ok() && calls->first.ok()) {
      calls->first = Status(s.code(), server.ToString() + ": " + std::string(s.message()));
    }
    --calls->left;
  };
  std::vector<uint64_t> ids;
  for (const protocol::NodeInfo& server : servers) {
    NodeId id = server.id;
    StatusOr<uint64_t> sent = messenger_.SendRequest(
        id, [&](const Header& h) { return encode(h); },
        [done, id](StatusOr<DecodedMessage> reply) {
          done(id, reply.ok() ? reply->header().status : reply.status());
        });
    if (sent.ok()) {
      ids.push_back(*sent);
    } else {
      done(id, sent.status());
    }
  }
  MutexLock lock(&calls->mu);
  auto finished = [&calls]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(calls->mu) { return calls->left == 0; };
  if (!calls->mu.AwaitWithTimeout(absl::Condition(&finished), absl::FromChrono(timeout))) {
    for (uint64_t id : ids) messenger_.Cancel(id);
    return DeadlineExceededError("publish: servers did not answer within " +
                                 std::to_string(timeout.count()) + " ms");
  }
  return calls->first;
}

StatusOr<uint64_t> SchedulerNode::PublishVersion(bool final) {
  if (options_.publish.model_dir.empty()) {
    return FailedPreconditionError("publish: no publish.model_dir");
  }
  MutexLock one_at_a_time(&publish_mu_);
  const SteadyTime start = std::chrono::steady_clock::now();
  PublishedVersion v;
  {
    // 1. The cut: every running worker stops at a step boundary.
    MutexLock lock(&mu_);
    if (final_published_) return FailedPreconditionError("publish: the final version is out");
    cut_.Request();
    auto reached = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return cut_.reached() || shutdown_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&reached), absl::FromChrono(kCutTimeout)) ||
        shutdown_) {
      SendClockReplies(cut_.Release());
      return shutdown_ ? CancelledError("publish: shutting down")
                       : DeadlineExceededError("publish: workers did not reach a step boundary");
    }
    v.version = next_version_;
    v.full = full_version_due_ || versions_this_run_ % options_.publish.full_every == 0;
    if (v.full) full_version_due_ = false;  // set again below if this one fails
    v.base_version = v.full ? 0 : published_;
    v.dir = options_.publish.model_dir + "/" + std::to_string(v.version);
    v.training_state_json = "{\"data\": " + DataAssignerStateToJson(data_.Export()) + "}";
    v.num_servers = options_.num_servers;
    const std::vector<bool> live = view_->LiveServers();
    for (int32_t r = 0; r < static_cast<int32_t>(live.size()); ++r) {
      if (live[r]) v.server_ranks.push_back(r);
    }
  }
  // 2. The servers copy their rows into memory (workers still paused).
  Status captured = CallServers(
      [&](const Header& h) {
        return protocol::EncodeSnapshotRequest(h, {v.version, v.dir, v.full});
      },
      kCaptureTimeout);
  v.created_unix_ms = clock_->UnixMillis();
  {
    // 3. Training resumes while the servers write.
    MutexLock lock(&mu_);
    ReplyClock(cut_.Release());
    if (captured.ok()) ++next_version_;
  }
  const double paused = SecondsSince(start);
  publish_pause_seconds_.Observe(paused);
  // From here a failure leaves the servers' change sets unknown: some may
  // have captured (and reset theirs) for a version that never completes.
  auto failed = [this](Status status) {
    MutexLock lock(&mu_);
    full_version_due_ = true;
    return status;
  };
  if (!captured.ok()) return failed(captured);
  // 4. Files, then the manifest that makes the version complete.
  if (Status flushed = CallServers(
          [&](const Header& h) { return protocol::EncodeSnapshotFlushRequest(h, v.version); },
          kFlushTimeout);
      !flushed.ok()) {
    return failed(flushed);
  }
  if (Status written = options_.publish.write_manifest(v); !written.ok()) return failed(written);
  {
    MutexLock lock(&mu_);
    published_ = v.version;
    published_unix_ms_ = v.created_unix_ms;
    ++versions_this_run_;
    if (final) {
      final_published_ = true;
      ReplyClock(final_waiters_);
      final_waiters_.clear();
    }
  }
  versions_published_.Increment();
  published_version_.Set(static_cast<double>(v.version));
  publish_seconds_.Observe(SecondsSince(start));
  // The publish lag an alert watches: time() minus this (docs/metrics.md).
  metrics_
      ->GetGauge("tessera_scheduler_last_publish_timestamp_seconds",
                 "Creation time (unix seconds) of the last model version published.")
      .Set(static_cast<double>(v.created_unix_ms) / 1000.0);
  TESSERA_LOG(kInfo)
      << "published version " << v.version << (v.full ? " (full)" : " (delta)") << " in "
      << SecondsSince(start) << " s, training paused " << paused * 1000 << " ms"
      << (final ? ": the last of this run" : "");
  if (options_.publish.after_publish) options_.publish.after_publish(v);
  return v.version;
}

}  // namespace tessera::scheduler
