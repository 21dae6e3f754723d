#include "scheduler/scheduler_node.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "common/deadline.h"
#include "common/logging.h"

namespace tessera::scheduler {

// A data request waiting for stream input is answered "retry" after this, so
// the worker's call never times out.
constexpr std::chrono::seconds kDataWaitLimit(5);

using protocol::DecodedMessage;
using protocol::Header;
using protocol::MessageType;

namespace {

// Workers declared dead: barriers wait for the others only.
int DeadWorkers(const std::vector<NodeId>& dead) {
  return static_cast<int>(
      std::count_if(dead.begin(), dead.end(), [](NodeId n) { return n.role == Role::kWorker; }));
}

// The answer to a worker declared dead that was only slow: its chunks went
// to the others, so whatever it trained from now on would be trained twice.
// Its trainer stops at this error, and the worker exits without stopping the
// cluster (worker/worker_main.cc).
Status Fenced(NodeId worker) {
  return AbortedError(worker.ToString() +
                      " was declared dead: its data went to the other workers");
}

}  // namespace

SchedulerNode::SchedulerNode(SchedulerOptions options, Transport* transport, const Clock* clock,
                             MetricsRegistry* metrics)
    : options_(std::move(options)),
      transport_(transport),
      clock_(clock),
      metrics_(metrics),
      messenger_({transport, options_.token, metrics, "scheduler"},
                 [this](DecodedMessage msg) { Handle(std::move(msg)); }),
      heartbeats_(metrics->GetCounter("tessera_scheduler_heartbeats_received_total",
                                      "Heartbeats received from nodes.")),
      declared_dead_(metrics->GetCounter(
          "tessera_scheduler_nodes_declared_dead_total",
          "Nodes declared dead after missing heartbeats for the timeout.")),
      alive_nodes_(metrics->GetGauge("tessera_scheduler_alive_nodes",
                                     "Registered nodes not declared dead.")),
      chunks_completed_(metrics->GetGauge("tessera_scheduler_data_chunks_completed",
                                          "Training data chunks finished by workers.")),
      chunks_total_(metrics->GetGauge("tessera_scheduler_data_chunks",
                                      "Training data chunks of the whole job (all epochs).")),
      membership_(options_.num_servers, options_.num_workers),
      detector_(clock, options_.heartbeat_timeout),
      data_(DataAssignerOptions{.chunks = options_.data_chunks,
                                .epochs = options_.epochs,
                                .num_workers = std::max(options_.num_workers, 1),
                                .static_order = options_.static_data_order,
                                .streaming = options_.streaming}),
      step_clock_(options_.num_workers, options_.staleness),
      cut_(options_.num_workers,
           /*lockstep=*/!options_.async && options_.staleness == 0),
      versions_published_(metrics->GetCounter("tessera_scheduler_versions_published_total",
                                              "Model versions published (full and delta).")),
      publish_errors_(metrics->GetCounter("tessera_scheduler_publish_errors_total",
                                          "Versions that failed to publish.")),
      published_version_(metrics->GetGauge("tessera_scheduler_published_version",
                                           "The last model version published.")),
      publish_pause_seconds_(metrics->GetHistogram(
          "tessera_scheduler_publish_pause_seconds",
          "Training paused for a version: from the cut request until workers resume.",
          {0.001, 0.005, 0.02, 0.05, 0.1, 0.5, 2, 10})),
      publish_seconds_(metrics->GetHistogram(
          "tessera_scheduler_publish_seconds",
          "From the cut request until the version's manifest is written.",
          {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 20})) {
  chunks_total_.Set(static_cast<double>(data_.total()));
  messenger_.set_self(kSchedulerId);
  next_version_ = std::max<uint64_t>(options_.publish.first_version, 1);
  if (options_.resume) {
    init_status_ = RestoreDataPlan(options_.resume->training_state_json);
  }
}

SchedulerNode::~SchedulerNode() { Stop(); }

StatusOr<std::string> SchedulerNode::Start() {
  if (!init_status_.ok()) {
    return Status(init_status_.code(),
                  "scheduler: cannot resume the data plan: " + std::string(init_status_.message()));
  }
  TESSERA_ASSIGN_OR_RETURN(std::string endpoint, transport_->Bind(options_.bind_endpoint));
  messenger_.Start();
  if (options_.liveness_thread) {
    liveness_thread_ = std::thread([this] { LivenessLoop(); });
  }
  if (!options_.publish.model_dir.empty()) {
    publish_thread_ = std::thread([this] { PublishLoop(); });
  }
  TESSERA_LOG(kInfo) << "scheduler listening on " << endpoint << ", waiting for "
                     << options_.num_servers << " servers and " << options_.num_workers
                     << " workers";
  return endpoint;
}

void SchedulerNode::Stop() {
  if (!stop_liveness_.HasBeenNotified()) stop_liveness_.Notify();
  if (liveness_thread_.joinable()) liveness_thread_.join();
  if (!stop_publish_.HasBeenNotified()) stop_publish_.Notify();
  {
    MutexLock lock(&mu_);
    shutdown_ = true;  // wakes a publish waiting for a cut
  }
  if (publish_thread_.joinable()) publish_thread_.join();
  messenger_.Stop();
}

bool SchedulerNode::running() const {
  MutexLock lock(&mu_);
  return running_;
}

Status SchedulerNode::WaitRunning(SteadyTime deadline) const {
  MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ || shutdown_; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&ready), ToAbslTime(deadline))) {
    return DeadlineExceededError(
        "scheduler: cluster not complete: " +
        std::to_string(membership_.registered(Role::kServer)) + "/" +
        std::to_string(options_.num_servers) + " servers, " +
        std::to_string(membership_.registered(Role::kWorker)) + "/" +
        std::to_string(options_.num_workers) + " workers registered");
  }
  return running_ ? OkStatus() : CancelledError("scheduler: cluster shut down");
}

Status SchedulerNode::WaitForShutdown(SteadyTime deadline) const {
  MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&done), ToAbslTime(deadline))) {
    return DeadlineExceededError("scheduler: no shutdown before the deadline");
  }
  return OkStatus();
}

std::string SchedulerNode::shutdown_reason() const {
  MutexLock lock(&mu_);
  return shutdown_reason_;
}

void SchedulerNode::ShutdownCluster(const std::string& reason) {
  MutexLock lock(&mu_);
  BroadcastShutdown(reason);
}

std::optional<protocol::ClusterView> SchedulerNode::cluster_view() const {
  MutexLock lock(&mu_);
  return view_;
}

std::vector<protocol::NodeInfo> SchedulerNode::nodes() const {
  MutexLock lock(&mu_);
  return membership_.all();
}

std::vector<NodeId> SchedulerNode::dead_nodes() const {
  MutexLock lock(&mu_);
  return dead_;
}

ClusterStatus SchedulerNode::GetClusterStatus() const {
  ClusterStatus status;
  status.now_unix_ms = clock_->UnixMillis();
  status.chunks_completed = static_cast<uint64_t>(chunks_completed_.Value());
  status.chunks_total = static_cast<uint64_t>(chunks_total_.Value());
  MutexLock lock(&mu_);
  status.running = running_;
  status.model_version = published_;
  status.model_created_unix_ms = published_unix_ms_;
  std::vector<uint32_t> slots(static_cast<size_t>(std::max(options_.num_servers, 0)), 0);
  if (view_.has_value()) {
    status.epoch = view_->epoch;
    status.replication = view_->replication;
    status.num_slots = view_->shard_map.num_slots();
    for (int32_t owner : view_->shard_map.slot_owner()) {
      if (owner >= 0 && static_cast<size_t>(owner) < slots.size()) ++slots[owner];
    }
  }
  const auto late_after = 2 * options_.heartbeat_interval;
  for (const protocol::NodeInfo& info : membership_.all()) {
    NodeStatusRow row{.info = info, .health = NodeHealth::kAlive, .heartbeat_age_s = {}};
    const Clock::Duration age = detector_.SinceLastBeat(info.id);
    row.heartbeat_age_s = std::chrono::duration<double>(age).count();
    if (detector_.IsDead(info.id)) {
      row.health = NodeHealth::kDead;
    } else if (age > late_after) {
      row.health = NodeHealth::kLate;
    }
    status.nodes.push_back(row);
    const NodeReport* report = reports_.Find(info.id);
    if (info.id.role == Role::kServer) {
      ShardStatusRow shard{.server = info.id.rank,
                           .slots = static_cast<size_t>(info.id.rank) < slots.size()
                                        ? slots[info.id.rank]
                                        : 0,
                           .reported = false, .rows = 0, .bytes = 0, .keys_per_s = 0};
      if (report != nullptr && report->stats.has_server_stats) {
        shard.reported = true;
        shard.rows = report->stats.rows;
        shard.bytes = report->stats.bytes;
        shard.keys_per_s = report->keys_per_s;
      }
      status.shards.push_back(shard);
    } else if (info.id.role == Role::kWorker) {
      WorkerStatusRow worker{.worker = info.id.rank, .reported = false, .examples = 0,
                             .steps = 0, .samples_per_s = 0, .staleness = 0};
      if (report != nullptr && report->stats.has_worker_stats) {
        worker.reported = true;
        worker.examples = report->stats.examples_total;
        worker.steps = report->stats.steps_total;
        worker.samples_per_s = report->samples_per_s;
        worker.staleness = report->stats.staleness;
      }
      status.workers.push_back(worker);
    }
  }
  return status;
}

std::vector<NodeId> SchedulerNode::CheckLiveness() {
  MutexLock lock(&mu_);
  std::vector<NodeId> newly_dead = detector_.CheckNewlyDead();
  for (NodeId node : newly_dead) {
    dead_.push_back(node);
    declared_dead_.Increment();
    if (shutdown_) {
      // Nodes stop beating as they exit: expected, not an error.
      TESSERA_LOG(kInfo) << node.ToString() << " went silent during the shutdown";
    } else {
      TESSERA_LOG(kError) << node.ToString() << " missed heartbeats for "
                          << options_.heartbeat_timeout.count() << " ms: declared dead";
    }
    if (node.role == Role::kServer) OnServerDead(node);
    if (node.role == Role::kWorker && node.rank < options_.num_workers) {
      // Its unfinished data goes to the others; it no longer holds them back.
      data_.Requeue(node.rank);
      for (const DecodedMessage& held : cut_.Remove(node.rank)) {
        (void)messenger_.ReplyError(held, UnavailableError("worker declared dead"));
      }
      SendClockReplies(step_clock_.Remove(node.rank));
      ServeDataWaiters(false);
      // Barriers wait for the live workers only (its own arrival is void).
      auto from_node = [node](const DecodedMessage& m) { return m.header().sender == node; };
      worker_barrier_.RemoveIf(from_node);
      all_barrier_.RemoveIf(from_node);
      const int live = options_.num_workers - DeadWorkers(dead_);
      std::vector<DecodedMessage> released = worker_barrier_.Release(live);
      for (DecodedMessage& m : all_barrier_.Release(live + LiveServers())) {
        released.push_back(std::move(m));
      }
      for (const DecodedMessage& waiter : released) {
        (void)messenger_.Reply(waiter, [](const Header& h) { return protocol::EncodeAck(h); });
      }
      if (node.rank == 0 && running_) {
        // Worker 0 writes train.json, the model and eval.json at the end:
        // without it the job cannot finish (it would wait forever).
        BroadcastShutdown("worker/0 was declared dead (it writes the final model): resume the job "
                          "from its last published version with `tessera train --resume`");
      }
    }
  }
  alive_nodes_.Set(static_cast<double>(membership_.all().size() - dead_.size()));
  return newly_dead;
}

void SchedulerNode::LivenessLoop() {
  const auto period = std::max(options_.heartbeat_interval / 2, std::chrono::milliseconds(10));
  while (!stop_liveness_.WaitForNotificationWithTimeout(absl::FromChrono(period))) {
    CheckLiveness();
    MutexLock lock(&mu_);
    ServeDataWaiters(false);
  }
}

void SchedulerNode::Handle(DecodedMessage msg) {
  switch (msg.type()) {
    case MessageType::kRegisterRequest:
      HandleRegister(msg);
      return;
    case MessageType::kHeartbeat: {
      heartbeats_.Increment();
      StatusOr<std::optional<protocol::NodeStats>> stats = msg.AsHeartbeat();
      {
        MutexLock lock(&mu_);
        detector_.Beat(msg.header().sender);
        const NodeId sender = msg.header().sender;
        // Only members' figures (a forget client's rank is no member's).
        if (stats.ok() && stats->has_value() && sender.rank >= 0 &&
            sender.rank < protocol::kForgetClientMinRank && !detector_.IsDead(sender)) {
          reports_.Record(sender, **stats, clock_->Now());
        }
      }
      (void)messenger_.Reply(msg, [](const Header& h) { return protocol::EncodeAck(h); });
      return;
    }
    case MessageType::kBarrierRequest:
      HandleBarrier(std::move(msg));
      return;
    case MessageType::kShutdownRequest:
      HandleShutdown(msg);
      return;
    case MessageType::kDataRequest:
      HandleDataRequest(msg);
      return;
    case MessageType::kClockRequest:
      HandleClock(std::move(msg));
      return;
    case MessageType::kForgetRequest:
      HandleForget(std::move(msg));
      return;
    default:
      (void)messenger_.ReplyError(
          msg, InvalidArgumentError("scheduler: unexpected " +
                                    std::string(protocol::MessageTypeName(msg.type()))));
  }
}

void SchedulerNode::HandleRegister(const DecodedMessage& msg) {
  StatusOr<protocol::RegisterRequest> request = msg.AsRegisterRequest();
  if (!request.ok()) {
    TESSERA_LOG(kWarning) << "bad register request: " << request.status();
    return;  // cannot route a reply to a node without a valid endpoint
  }
  MutexLock lock(&mu_);
  // Once running, only a server may join: a replacement for a dead one.
  const bool replacing = running_ && request->role == Role::kServer;
  StatusOr<NodeId> id =
      !running_  ? membership_.Register(*request)
      : replacing ? AcceptReplacement(*request)
                  : StatusOr<NodeId>(FailedPreconditionError(
                        "scheduler: the cluster is already running; only a server replacing a "
                        "dead one can join"));
  // Route the reply through the endpoint the node gave: it has no id yet.
  NodeId route = id.ok() ? *id : NodeId{request->role, kUnassignedRank};
  if (Status s = transport_->Connect(route, request->endpoint); !s.ok()) {
    TESSERA_LOG(kWarning) << "cannot connect to registering node at " << request->endpoint
                          << ": " << s;
    return;
  }
  NodeId assigned = id.ok() ? *id : route;
  Header reply = protocol::ReplyHeader(msg.header(), kSchedulerId, options_.token, id.status());
  (void)transport_->Send(Message{kSchedulerId, route, {protocol::EncodeRegisterReply(reply, assigned)}});
  if (!id.ok()) {
    TESSERA_LOG(kWarning) << "refused registration from " << request->endpoint << ": "
                          << id.status();
    (void)transport_->Disconnect(route);
    return;
  }
  detector_.Watch(*id);
  TESSERA_LOG(kInfo) << "registered " << id->ToString() << " at " << request->endpoint << " ("
                     << membership_.registered(Role::kServer) << "/" << options_.num_servers
                     << " servers, " << membership_.registered(Role::kWorker) << "/"
                     << options_.num_workers << " workers)";
  alive_nodes_.Set(static_cast<double>(membership_.all().size() - dead_.size()));
  if (replacing) StartHandoff(id->rank);
  if (membership_.complete() && !view_.has_value()) OnAllRegistered();
}

void SchedulerNode::OnAllRegistered() {
  protocol::ClusterView view;
  view.epoch = 1;
  view.shard_map = ShardMap::Uniform(options_.num_slots, options_.num_servers);
  view.servers = membership_.nodes(Role::kServer);
  view.workers = membership_.nodes(Role::kWorker);
  view.tables = options_.tables;
  view.heartbeat_interval_ms = static_cast<uint32_t>(options_.heartbeat_interval.count());
  view.request_timeout_ms = static_cast<uint32_t>(RequestTimeout(options_).count());
  view.replication = std::min<uint32_t>(options_.replication, std::max(1, options_.num_servers));
  view_ = view;
  for (const protocol::NodeInfo& server : view.servers) {
    // Servers acknowledge views (failover waits for them); this one is
    // followed by ConfigureTables, whose ack is what startup waits for.
    (void)messenger_.SendRequest(
        server.id, [&](const Header& h) { return protocol::EncodeClusterView(h, view); },
        [id = server.id](StatusOr<DecodedMessage> reply) {
          Status s = reply.ok() ? reply->header().status : reply.status();
          if (!s.ok()) TESSERA_LOG(kError) << id.ToString() << " refused the cluster view: " << s;
        });
    NodeId id = server.id;
    StatusOr<uint64_t> sent = messenger_.SendRequest(
        id, [&](const Header& h) { return protocol::EncodeConfigureTables(h, view.tables); },
        [this, id](StatusOr<DecodedMessage> reply) {
          OnTablesAcked(id, reply.ok() ? reply->header().status : reply.status());
        });
    if (!sent.ok()) TESSERA_LOG(kError) << "cannot configure " << id.ToString() << ": " << sent.status();
  }
  if (view.servers.empty()) {
    running_ = true;
    for (const protocol::NodeInfo& w : view.workers) {
      (void)messenger_.SendOneWay(w.id, [&](const Header& h) { return protocol::EncodeClusterView(h, view); });
    }
  }
}

void SchedulerNode::OnTablesAcked(NodeId server, Status status) {
  MutexLock lock(&mu_);
  if (!status.ok()) {
    TESSERA_LOG(kError) << server.ToString() << " rejected the table configuration: " << status;
    BroadcastShutdown("table configuration rejected by " + server.ToString());
    return;
  }
  if (++servers_configured_ != options_.num_servers) return;
  if (!options_.resume) {
    StartWorkers();
    return;
  }
  TESSERA_LOG(kInfo) << "all " << options_.num_servers << " servers configured; restoring version "
                     << options_.resume->version;
  for (const protocol::NodeInfo& server : view_->servers) {
    NodeId id = server.id;
    StatusOr<uint64_t> sent = messenger_.SendRequest(
        id,
        [&](const Header& h) { return protocol::EncodeRestoreRequest(h, options_.resume->files); },
        [this, id](StatusOr<DecodedMessage> reply) {
          OnRestored(id, reply.ok() ? reply->header().status : reply.status());
        });
    if (!sent.ok()) BroadcastShutdown("cannot send the restore request to " + id.ToString());
  }
}

void SchedulerNode::OnRestored(NodeId server, Status status) {
  MutexLock lock(&mu_);
  if (!status.ok()) {
    TESSERA_LOG(kError) << server.ToString() << " could not restore: " << status;
    BroadcastShutdown("restore failed on " + server.ToString() + ": " +
                      std::string(status.message()));
    return;
  }
  if (++servers_restored_ == options_.num_servers) StartWorkers();
}

void SchedulerNode::StartWorkers() {
  running_ = true;
  TESSERA_LOG(kInfo) << "all " << options_.num_servers
                     << " servers configured; cluster running with " << options_.num_workers
                     << " workers";
  const protocol::ClusterView& view = *view_;
  for (const protocol::NodeInfo& w : view.workers) {
    (void)messenger_.SendOneWay(w.id, [&](const Header& h) { return protocol::EncodeClusterView(h, view); });
  }
}

void SchedulerNode::HandleBarrier(DecodedMessage msg) {
  StatusOr<protocol::BarrierGroup> group = msg.AsBarrierRequest();
  if (!group.ok()) {
    (void)messenger_.ReplyError(msg, group.status());
    return;
  }
  MutexLock lock(&mu_);
  const int workers = options_.num_workers - DeadWorkers(dead_);
  std::vector<DecodedMessage> released =
      *group == protocol::BarrierGroup::kWorkers
          ? worker_barrier_.Arrive(workers, std::move(msg))
          : all_barrier_.Arrive(workers + LiveServers(), std::move(msg));
  for (const DecodedMessage& waiter : released) {
    (void)messenger_.Reply(waiter, [](const Header& h) { return protocol::EncodeAck(h); });
  }
}

void SchedulerNode::HandleDataRequest(const DecodedMessage& msg) {
  StatusOr<std::optional<uint64_t>> completed = msg.AsDataRequest();
  const NodeId from = msg.header().sender;
  if (!completed.ok() || from.role != Role::kWorker || from.rank < 0 ||
      from.rank >= options_.num_workers) {
    (void)messenger_.ReplyError(
        msg, completed.ok() ? InvalidArgumentError("data request from " + from.ToString())
                            : completed.status());
    return;
  }
  MutexLock lock(&mu_);
  if (detector_.IsDead(from)) {
    (void)messenger_.ReplyError(msg, Fenced(from));
    return;
  }
  // `completed` was read, not necessarily trained: training is known from
  // the workers' position reports (HandleClock) only.
  if (!AnswerDataRequest(msg, *completed, /*retry_if_waiting=*/false)) {
    data_waiters_.emplace_back(msg, clock_->Now());
  }
}

bool SchedulerNode::AnswerDataRequest(const DecodedMessage& msg, std::optional<uint64_t> completed,
                                      bool retry_if_waiting) {
  protocol::DataChunkInfo info;
  NextChunk next = data_.Next(msg.header().sender.rank, completed);
  if (next.kind == NextChunk::Kind::kNotYet && !retry_if_waiting) return false;
  info.done = next.kind == NextChunk::Kind::kFinished;
  info.retry = next.kind == NextChunk::Kind::kNotYet;
  if (next.has_chunk()) {
    info.id = next.assignment.id;
    info.epoch = next.assignment.epoch;
    info.path = next.assignment.chunk.path;
    info.begin = next.assignment.chunk.begin;
    info.end = next.assignment.chunk.end;
  }
  info.chunks_total = data_.total();
  info.chunks_completed = data_.completed();
  chunks_completed_.Set(static_cast<double>(data_.completed()));
  chunks_total_.Set(static_cast<double>(data_.total()));
  (void)messenger_.Reply(msg, [&](const Header& h) { return protocol::EncodeDataChunkReply(h, info); });
  return true;
}

void SchedulerNode::ServeDataWaiters(bool expire_all) {
  const SteadyTime now = clock_->Now();
  std::vector<std::pair<DecodedMessage, SteadyTime>> still;
  for (auto& [msg, since] : data_waiters_) {
    const bool expired = expire_all || now - since >= kDataWaitLimit;
    // The completed chunk was noted when the request arrived.
    if (!AnswerDataRequest(msg, std::nullopt, expired)) still.emplace_back(std::move(msg), since);
  }
  data_waiters_ = std::move(still);
}

Status SchedulerNode::AddStreamChunks(std::vector<DataChunk> chunks) {
  MutexLock lock(&mu_);
  TESSERA_RETURN_IF_ERROR(data_.AddChunks(std::move(chunks)));
  ServeDataWaiters(false);
  return OkStatus();
}

void SchedulerNode::CloseStream() {
  MutexLock lock(&mu_);
  if (data_.closed()) return;
  TESSERA_LOG(kInfo) << "input stream closed: finishing what is queued";
  data_.Close();
  ServeDataWaiters(false);
}

void SchedulerNode::HandleClock(DecodedMessage msg) {
  StatusOr<protocol::ClockInfo> clock = msg.AsClockRequest();
  const NodeId from = msg.header().sender;
  if (!clock.ok() || from.role != Role::kWorker || from.rank < 0 ||
      from.rank >= options_.num_workers) {
    (void)messenger_.ReplyError(
        msg, clock.ok() ? InvalidArgumentError("clock request from " + from.ToString())
                        : clock.status());
    return;
  }
  MutexLock lock(&mu_);
  if (detector_.IsDead(from)) {
    (void)messenger_.ReplyError(msg, Fenced(from));
    return;
  }
  if (clock->position && !clock->turn) {
    data_.Trained(from.rank, clock->position->chunk, clock->position->offset);
    chunks_completed_.Set(static_cast<double>(data_.completed()));
  }
  if (clock->done) {
    // A finished worker never waits: it only stops holding others back.
    // The last one's reply waits for the final version, when publishing.
    for (DecodedMessage& held : cut_.Remove(from.rank)) final_waiters_.push_back(std::move(held));
    SendClockReplies(step_clock_.Remove(from.rank));
    if (options_.publish.model_dir.empty() || final_published_) {
      ReplyClock({std::move(msg)});
      return;
    }
    final_waiters_.push_back(std::move(msg));
    if (step_clock_.all_done()) {
      final_due_ = true;  // the publish thread (or PublishNow) publishes it
    } else {
      ReplyClock(final_waiters_);
      final_waiters_.clear();
    }
    return;
  }
  if (clock->turn) {
    SendClockReplies(step_clock_.RequestTurn(from.rank, clock->step, std::move(msg)));
    return;
  }
  if (options_.async || clock->idle) {
    // Idle reports repeat a finished step: nothing for the step clock.
    SendClockReplies({std::move(msg)});
    return;
  }
  SendClockReplies(step_clock_.Report(from.rank, clock->step, false, std::move(msg)));
}

void SchedulerNode::SendClockReplies(std::vector<DecodedMessage> waiters) {
  std::vector<DecodedMessage> now;
  for (DecodedMessage& waiter : waiters) {
    StatusOr<protocol::ClockInfo> clock = waiter.AsClockRequest();
    if (clock.ok() && !clock->turn && !clock->done &&
        cut_.Hold(waiter.header().sender.rank, clock->step, waiter, clock->idle)) {
      continue;
    }
    now.push_back(std::move(waiter));
  }
  ReplyClock(now);
}

void SchedulerNode::ReplyClock(const std::vector<DecodedMessage>& waiters) {
  const protocol::ClockReplyInfo info{step_clock_.all_done(), step_clock_.spread()};
  for (const DecodedMessage& waiter : waiters) {
    (void)messenger_.Reply(waiter, [&](const Header& h) { return protocol::EncodeClockReply(h, info); });
  }
}

void SchedulerNode::HandleShutdown(const DecodedMessage& msg) {
  StatusOr<std::string> reason = msg.AsShutdownRequest();
  (void)messenger_.Reply(msg, [](const Header& h) { return protocol::EncodeAck(h); });
  MutexLock lock(&mu_);
  BroadcastShutdown(reason.ok() ? *reason : "requested");
}

void SchedulerNode::BroadcastShutdown(const std::string& reason) {
  if (shutdown_) return;
  shutdown_ = true;
  shutdown_reason_ = reason;
  TESSERA_LOG(kInfo) << "shutting the cluster down: " << reason;
  for (const protocol::NodeInfo& node : membership_.all()) {
    (void)messenger_.SendOneWay(node.id, [&](const Header& h) {
      return protocol::EncodeShutdownRequest(h, reason);
    });
  }
}

}  // namespace tessera::scheduler
