// The scheduler: membership, the shard map, table configuration, barriers,
// heartbeats and orderly shutdown.
//
// Protocol (see protocols/README.md): nodes register; once every expected
// server and worker has registered, the scheduler sends the ClusterView to the
// servers, then ConfigureTables; when every server acknowledged its tables it
// sends the ClusterView to the workers, and the cluster is running.
//
// Threading: all protocol work runs on the Messenger's receive thread; a
// liveness thread (optional) checks heartbeats. Public methods are
// thread-safe.
#ifndef TESSERA_SCHEDULER_SCHEDULER_NODE_H_
#define TESSERA_SCHEDULER_SCHEDULER_NODE_H_

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/table_config.h"
#include "common/transport.h"
#include "protocols/codec.h"
#include "protocols/messenger.h"
#include "scheduler/barrier.h"
#include "scheduler/cluster_status.h"
#include "scheduler/cut_gate.h"
#include "scheduler/data_assigner.h"
#include "scheduler/step_clock.h"
#include "scheduler/failure_detector.h"
#include "scheduler/membership.h"

namespace tessera::scheduler {

// One published version, as the scheduler hands it to the manifest writer.
struct PublishedVersion {
  uint64_t version = 0;
  bool full = false;
  uint64_t base_version = 0;  // deltas: the version before it
  std::string dir;            // <publish model_dir>/<version>
  // {"data": <DataAssignerStateToJson>}: what is left to train at the cut.
  std::string training_state_json;
  int64_t created_unix_ms = 0;
  int num_servers = 0;
  std::vector<int32_t> server_ranks;  // the servers that wrote files (live ones)
};

struct PublishOptions {
  std::string model_dir;  // empty: no versions are published
  std::chrono::milliseconds interval{5000};
  uint32_t full_every = 20;  // >= 1
  uint64_t first_version = 1;  // after a resume: the resumed version + 1
  // Writes <dir>/manifest.json once every server wrote its files (the CLI
  // wires models::WriteManifest). Required when model_dir is set.
  std::function<Status(const PublishedVersion&)> write_manifest;
  // Runs after each version is complete (the CLI wires removing old
  // versions). May be empty.
  std::function<void(const PublishedVersion&)> after_publish;
};

// Resuming a job from a published version: the servers load `files` (a full
// snapshot, then deltas) before any worker starts, and the data plan is
// what `training_state_json` says is left.
struct ResumeOptions {
  uint64_t version = 0;
  std::vector<protocol::RestoreTable> files;
  std::string training_state_json;
};

// Where a streaming job's input comes from (scheduler/stream_input.h runs
// it; SchedulerNode itself only takes the chunks).
struct StreamInputOptions {
  // "": none. A directory (follow_directory), "-" (stdin) or
  // "zmq+tcp://HOST:PORT" (a bound PULL socket).
  std::string source;
  bool follow_directory = false;
  std::string spool_dir;  // stdin and ZeroMQ: where segments are written
  uint64_t max_lines = 1024;                   // train.batch_size
  std::chrono::milliseconds max_delay{200};    // train.max_batch_delay_ms
  std::chrono::milliseconds poll_interval{50};  // directory polling
  // Resuming: the "data" object of the version's training_state.
  std::string resume_data_state_json;
};

struct SchedulerOptions {
  // Data-plane endpoint to bind ("tcp://0.0.0.0:0" picks a port).
  std::string bind_endpoint = "tcp://127.0.0.1:0";
  int num_servers = 1;
  int num_workers = 1;
  // Copies of every shard (cluster.replication): 1 = no backups (a server's
  // death ends the job); 2 = each shard has a backup on the next server, and
  // a dead server's backup is promoted (scheduler_failover.cc).
  uint32_t replication = 1;
  uint32_t num_slots = kDefaultNumSlots;
  std::vector<TableConfig> tables;
  std::string token;
  // Nodes send a heartbeat every interval; a node silent for `timeout` is
  // reported dead.
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{5000};
  // Data-plane requests (pulls, pushes, replication) unanswered this long are
  // sent again, with backoff (ClusterView.request_timeout_ms). 0: twice the
  // heartbeat interval, at least 100 ms.
  std::chrono::milliseconds request_timeout{0};
  // Run a thread that checks liveness every heartbeat_interval/2. Tests that
  // drive a SimulatedClock turn it off and call CheckLiveness() themselves.
  bool liveness_thread = true;
  // Training data handed to workers as they ask (empty: workers are told
  // there is none), for `epochs` passes; static order makes the assignment
  // a function of the worker count (reproducible sync runs).
  std::vector<DataChunk> data_chunks;
  uint32_t epochs = 1;
  bool static_data_order = false;
  // ssp/sync: a worker may start step t+1 once every running worker finished
  // step t - staleness (sync: 0).
  uint32_t staleness = 0;
  // Async consistency: workers do not wait for each other; their clock
  // reports (sent when publishing, for positions and cuts) are answered at
  // once.
  bool async = false;
  // Streaming input: chunks also come through AddStreamChunks until
  // CloseStream; meanwhile a worker with nothing to do waits in its data
  // request (answered "retry" after kDataWaitLimit).
  bool streaming = false;
  StreamInputOptions stream_input;  // run by the scheduler process's main
  PublishOptions publish;
  std::optional<ResumeOptions> resume;
};

// The request timeout the cluster views carry (options.request_timeout, or
// its default).
inline std::chrono::milliseconds RequestTimeout(const SchedulerOptions& options) {
  if (options.request_timeout.count() > 0) return options.request_timeout;
  return std::max(std::chrono::milliseconds(100), 2 * options.heartbeat_interval);
}

class SchedulerNode {
 public:
  // `transport`, `clock` and `metrics` are borrowed and must outlive this.
  SchedulerNode(SchedulerOptions options, Transport* transport, const Clock* clock,
                MetricsRegistry* metrics);
  ~SchedulerNode();  // Stop()s.

  // Binds and starts serving. Returns the bound endpoint.
  StatusOr<std::string> Start();
  void Stop();

  // True once every node registered and the servers acknowledged the tables.
  bool running() const;
  // Blocks until the cluster is running or the deadline passes.
  Status WaitRunning(SteadyTime deadline) const;
  // Blocks until a node asked for shutdown (all nodes were told) or deadline.
  Status WaitForShutdown(SteadyTime deadline) const;
  // Why the cluster was told to shut down (empty before).
  std::string shutdown_reason() const;
  // Orders every node to stop.
  void ShutdownCluster(const std::string& reason);

  // Checks heartbeats now; returns the nodes newly declared dead.
  std::vector<NodeId> CheckLiveness();

  // Streaming input (options.streaming): appends chunks (files of a followed
  // directory, spooled segments) and wakes workers waiting for data.
  Status AddStreamChunks(std::vector<DataChunk> chunks);
  // No more stream input: workers finish what is queued, the last version is
  // published, and the job ends as a file job does.
  void CloseStream();

  // Publishes a version now (a consistent cut; see PublishVersion). For
  // tests driving a SimulatedClock; the publish thread calls it every
  // publish.interval. Returns the version number.
  StatusOr<uint64_t> PublishNow();
  // The last version published (0: none yet).
  uint64_t last_published_version() const;
  std::optional<protocol::ClusterView> cluster_view() const;
  std::vector<protocol::NodeInfo> nodes() const;
  std::vector<NodeId> dead_nodes() const;
  // The status document's figures (scheduler/cluster_status.h): every
  // registered node, shards, workers, progress and the last version. The
  // caller adds the scheduler's own row (its address is known to main).
  ClusterStatus GetClusterStatus() const;

 private:
  void Handle(protocol::DecodedMessage msg);
  void HandleRegister(const protocol::DecodedMessage& msg);
  void HandleBarrier(protocol::DecodedMessage msg);
  void HandleShutdown(const protocol::DecodedMessage& msg);
  void HandleDataRequest(const protocol::DecodedMessage& msg);
  void HandleClock(protocol::DecodedMessage msg);
  // scheduler_forget.cc: a client's ForgetRequest, fanned out to the servers.
  void HandleForget(protocol::DecodedMessage msg);
  void ReplyClock(const std::vector<protocol::DecodedMessage>& waiters)
      TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnAllRegistered() TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnTablesAcked(NodeId server, Status status);
  void OnRestored(NodeId server, Status status);
  void StartWorkers() TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers data requests waiting for stream input: with a chunk when one
  // is queued, "done" once the stream is closed and drained, "retry" after
  // kDataWaitLimit (all, with `expire_all`).
  void ServeDataWaiters(bool expire_all) TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers one data request; false if it must wait for stream input.
  bool AnswerDataRequest(const protocol::DecodedMessage& msg, std::optional<uint64_t> completed,
                         bool retry_if_waiting) TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends clock replies, except those a pending cut holds.
  void SendClockReplies(std::vector<protocol::DecodedMessage> waiters)
      TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // scheduler_publish.cc: the publish thread and one version.
  Status RestoreDataPlan(const std::string& training_state_json);
  void PublishLoop();
  StatusOr<uint64_t> PublishVersion(bool final);
  Status CallServers(const std::function<Frame(const protocol::Header&)>& encode,
                     std::chrono::milliseconds timeout);
  void BroadcastShutdown(const std::string& reason) TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LivenessLoop();
  // scheduler_failover.cc: a server declared dead. With replication, its
  // backup is promoted: a new view goes to the servers, and once every live
  // server applied it, to the workers (which retry what was in flight).
  void OnServerDead(NodeId server) TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The replica_sync_epoch of `server`'s last heartbeat (0: none).
  uint64_t SyncedEpoch(NodeId server) const TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnFailoverViewApplied(uint64_t epoch, NodeId server, Status status);
  // Servers not declared dead.
  int LiveServers() const TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A replacement server (scheduler_failover.cc): registration takes a dead
  // rank; the handoff then makes it a backup of the server holding that
  // rank's slots, waits for its full copy and moves the slots to it.
  StatusOr<NodeId> AcceptReplacement(const protocol::RegisterRequest& request)
      TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartHandoff(int32_t rank) TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One acknowledgement of the handoff's current stage.
  void AdvanceHandoff(uint64_t epoch, NodeId from, Status status);
  // Sends view_ to the live servers except `skip` as requests; returns how
  // many were sent. Their acks go to AdvanceHandoff.
  int SendHandoffView(int32_t skip) TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SchedulerOptions options_;
  Status init_status_;  // a resume's data plan that failed to load: Start() fails
  Transport* const transport_;
  const Clock* const clock_;
  MetricsRegistry* const metrics_;
  protocol::Messenger messenger_;
  Counter& heartbeats_;
  Counter& declared_dead_;
  Gauge& alive_nodes_;
  Gauge& chunks_completed_;
  Gauge& chunks_total_;
  Notification stop_liveness_;
  std::thread liveness_thread_;

  mutable Mutex mu_;
  // protected by mu_
  Membership membership_ TESSERA_GUARDED_BY(mu_);
  FailureDetector detector_ TESSERA_GUARDED_BY(mu_);
  Barrier<protocol::DecodedMessage> worker_barrier_ TESSERA_GUARDED_BY(mu_);
  Barrier<protocol::DecodedMessage> all_barrier_ TESSERA_GUARDED_BY(mu_);
  DataAssigner data_ TESSERA_GUARDED_BY(mu_);
  StepClock<protocol::DecodedMessage> step_clock_ TESSERA_GUARDED_BY(mu_);
  std::optional<protocol::ClusterView> view_ TESSERA_GUARDED_BY(mu_);
  int servers_configured_ TESSERA_GUARDED_BY(mu_) = 0;
  bool running_ TESSERA_GUARDED_BY(mu_) = false;
  bool shutdown_ TESSERA_GUARDED_BY(mu_) = false;
  std::string shutdown_reason_ TESSERA_GUARDED_BY(mu_);
  std::vector<NodeId> dead_ TESSERA_GUARDED_BY(mu_);
  // What nodes report in their heartbeats (`tessera status`).
  NodeReports reports_ TESSERA_GUARDED_BY(mu_);
  // A failover in progress: servers yet to apply view `failover_epoch_`,
  // and how long the dead server had been silent plus when it was declared.
  uint64_t failover_epoch_ TESSERA_GUARDED_BY(mu_) = 0;
  // The last view that changed servers' backups (a failover or a handoff):
  // a server that has not reported replica_sync_epoch >= this since may
  // have backups without a complete copy (0: no such view yet).
  uint64_t resync_epoch_ TESSERA_GUARDED_BY(mu_) = 0;
  int failover_pending_ TESSERA_GUARDED_BY(mu_) = 0;
  Clock::Duration failover_silence_ TESSERA_GUARDED_BY(mu_){};
  Clock::TimePoint failover_declared_ TESSERA_GUARDED_BY(mu_);
  struct Handoff {
    int stage = 0;  // 0: none; 1: configuring `to`; 2: view to the others;
                    // 3: `from` syncing its copy to `to`; 4: the view moving the slots
    int32_t to = -1;
    int32_t from = -1;
    uint64_t epoch = 0;  // of the view the stage waits on
    int pending = 0;
  };
  Handoff handoff_ TESSERA_GUARDED_BY(mu_);
  int servers_restored_ TESSERA_GUARDED_BY(mu_) = 0;
  // Data requests waiting for stream input, with when they arrived.
  std::vector<std::pair<protocol::DecodedMessage, SteadyTime>> data_waiters_
      TESSERA_GUARDED_BY(mu_);

  // Publishing (scheduler_publish.cc).
  CutGate<protocol::DecodedMessage> cut_ TESSERA_GUARDED_BY(mu_);
  // Done reports of the last workers, answered after the final version.
  std::vector<protocol::DecodedMessage> final_waiters_ TESSERA_GUARDED_BY(mu_);
  bool final_due_ TESSERA_GUARDED_BY(mu_) = false;
  bool final_published_ TESSERA_GUARDED_BY(mu_) = false;
  uint64_t next_version_ TESSERA_GUARDED_BY(mu_) = 1;
  uint64_t published_ TESSERA_GUARDED_BY(mu_) = 0;  // last version published
  int64_t published_unix_ms_ TESSERA_GUARDED_BY(mu_) = 0;  // its created_unix_ms
  uint64_t versions_this_run_ TESSERA_GUARDED_BY(mu_) = 0;
  // The next version must be full, not a delta: a version failed after its
  // capture was asked for (servers that captured have reset their change
  // sets, so a delta on the last published version would miss what changed
  // in between), or a handoff gave slots to a replacement server, whose
  // tables track no changes before their first capture.
  bool full_version_due_ TESSERA_GUARDED_BY(mu_) = false;
  Mutex publish_mu_;  // one version at a time (thread vs. PublishNow)
  Notification stop_publish_;
  std::thread publish_thread_;
  Counter& versions_published_;
  Counter& publish_errors_;
  Gauge& published_version_;
  Histogram& publish_pause_seconds_;
  Histogram& publish_seconds_;
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_SCHEDULER_NODE_H_
