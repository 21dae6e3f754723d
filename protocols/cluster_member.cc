#include "protocols/cluster_member.h"

#include <unistd.h>

#include <memory>
#include <utility>

#include "common/logging.h"
#include "common/shutdown_signals.h"

namespace tessera::protocol {

std::string AdvertisedEndpoint(const std::string& bound, const std::string& host) {
  for (const char* wildcard : {"://0.0.0.0:", "://*:", "://[::]:"}) {
    size_t pos = bound.find(wildcard);
    if (pos != std::string::npos) {
      size_t port = pos + std::string(wildcard).size();
      return bound.substr(0, pos) + "://" + host + ":" + bound.substr(port);
    }
  }
  return bound;
}

ClusterMember::ClusterMember(MemberOptions options, Messenger* messenger)
    : options_(std::move(options)), messenger_(messenger) {}

ClusterMember::~ClusterMember() { Stop(); }

void ClusterMember::Stop() {
  if (!stop_heartbeats_.HasBeenNotified()) stop_heartbeats_.Notify();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

StatusOr<std::string> ClusterMember::Bind() {
  TESSERA_ASSIGN_OR_RETURN(std::string bound, messenger_->transport()->Bind(options_.bind_endpoint));
  endpoint_ = AdvertisedEndpoint(bound, options_.advertise_host);
  return endpoint_;
}

StatusOr<DecodedMessage> ClusterMember::Call(NodeId to, HeaderEncoder encode,
                                             SteadyTime deadline) {
  struct Result {
    bool done = false;
    StatusOr<DecodedMessage> reply = UnknownError("no reply");
  };
  auto result = std::make_shared<Result>();
  TESSERA_ASSIGN_OR_RETURN(uint64_t request_id,
                           messenger_->SendRequest(to, encode, [this, result](StatusOr<DecodedMessage> r) {
                             MutexLock lock(&mu_);
                             result->reply = std::move(r);
                             result->done = true;
                           }));
  bool done;
  bool shutdown;
  {
    // Wakes on the reply, on the scheduler's shutdown order, or at the deadline.
    MutexLock lock(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result->done || shutdown_; };
    mu_.AwaitWithDeadline(absl::Condition(&ready), ToAbslTime(deadline));
    done = result->done;
    shutdown = shutdown_;
  }
  if (!done) {
    messenger_->Cancel(request_id);
    MutexLock lock(&mu_);
    if (!result->done) {
      return shutdown ? CancelledError("cluster shutting down: no reply from " + to.ToString())
                      : DeadlineExceededError("no reply from " + to.ToString() +
                                              " before the deadline");
    }
  }
  if (!result->reply.ok()) return result->reply.status();
  if (!result->reply->header().status.ok()) return result->reply->header().status;
  return std::move(result->reply);
}

StatusOr<NodeId> ClusterMember::Register(SteadyTime deadline) {
  TESSERA_RETURN_IF_ERROR(messenger_->transport()->Connect(kSchedulerId, options_.scheduler_endpoint));
  messenger_->set_self(NodeId{options_.role, kUnassignedRank});
  RegisterRequest request;
  request.role = options_.role;
  request.requested_rank = options_.requested_rank;
  request.endpoint = endpoint_;
  request.metrics_port = options_.metrics_port;
  request.pid = ::getpid();
  request.host = options_.advertise_host;
  TESSERA_ASSIGN_OR_RETURN(
      DecodedMessage reply,
      Call(kSchedulerId, [&](const Header& h) { return EncodeRegisterRequest(h, request); },
           deadline));
  TESSERA_ASSIGN_OR_RETURN(NodeId id, reply.AsRegisterReply());
  if (id.role != options_.role) {
    return InternalError("scheduler assigned " + id.ToString() + " to a " +
                         std::string(RoleName(options_.role)));
  }
  messenger_->set_self(id);
  return id;
}

void ClusterMember::OnClusterView(ClusterView view) {
  // The view may overtake the registration reply's processing on the
  // registering thread: learn our id from the view itself.
  for (const auto* nodes : {&view.servers, &view.workers}) {
    for (const NodeInfo& node : *nodes) {
      if (node.endpoint == endpoint_ && node.id.role == options_.role) messenger_->set_self(node.id);
    }
  }
  for (const auto* nodes : {&view.servers, &view.workers}) {
    for (const NodeInfo& node : *nodes) {
      if (node.id == id()) continue;
      if (Status s = messenger_->transport()->Connect(node.id, node.endpoint); !s.ok()) {
        TESSERA_LOG(kError) << "cannot connect to " << node.id.ToString() << " at "
                            << node.endpoint << ": " << s;
      }
    }
  }
  bool first = false;
  std::chrono::milliseconds interval(view.heartbeat_interval_ms);
  {
    MutexLock lock(&mu_);
    first = !view_.has_value();
    view_ = std::move(view);
  }
  if (first && options_.heartbeat_thread && interval.count() > 0) {
    heartbeat_thread_ = std::thread([this, interval] { HeartbeatLoop(interval); });
  }
}

void ClusterMember::OnShutdown(const std::string& reason) {
  MutexLock lock(&mu_);
  if (shutdown_) return;
  shutdown_ = true;
  shutdown_reason_ = reason;
  TESSERA_LOG(kInfo) << "shutting down: " << reason;
}

StatusOr<ClusterView> ClusterMember::WaitForView(SteadyTime deadline) const {
  MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return view_.has_value() || shutdown_;
  };
  if (!mu_.AwaitWithDeadline(absl::Condition(&ready), ToAbslTime(deadline))) {
    return DeadlineExceededError("no cluster view from the scheduler before the deadline");
  }
  if (!view_.has_value()) return CancelledError("cluster shut down: " + shutdown_reason_);
  return *view_;
}

std::optional<ClusterView> ClusterMember::view() const {
  MutexLock lock(&mu_);
  return view_;
}

Status ClusterMember::WaitForShutdown(SteadyTime deadline) const {
  MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&done), ToAbslTime(deadline))) {
    return DeadlineExceededError("no shutdown before the deadline");
  }
  return OkStatus();
}

bool ClusterMember::shutdown_requested() const {
  MutexLock lock(&mu_);
  return shutdown_;
}

void ClusterMember::SetStatsProvider(std::function<NodeStats()> provider) {
  MutexLock lock(&stats_mu_);
  stats_provider_ = std::move(provider);
}

Frame ClusterMember::EncodeBeat(const Header& header) {
  MutexLock lock(&stats_mu_);
  if (!stats_provider_) return EncodeHeartbeat(header);
  return EncodeHeartbeat(header, stats_provider_());
}

Status ClusterMember::SendHeartbeat() {
  return messenger_
      ->SendRequest(
          kSchedulerId, [this](const Header& h) { return EncodeBeat(h); },
          [](StatusOr<DecodedMessage>) {})
      .status();
}

Status ClusterMember::HeartbeatAndWait(SteadyTime deadline) {
  return Call(kSchedulerId, [this](const Header& h) { return EncodeBeat(h); }, deadline)
      .status();
}

void ClusterMember::HeartbeatLoop(std::chrono::milliseconds interval) {
  uint64_t previous = 0;
  do {
    // An unanswered heartbeat is abandoned when the next one goes out, so a
    // dead scheduler does not make pending requests pile up.
    if (previous != 0) messenger_->Cancel(previous);
    StatusOr<uint64_t> sent = messenger_->SendRequest(
        kSchedulerId, [this](const Header& h) { return EncodeBeat(h); },
        [](StatusOr<DecodedMessage>) {});
    if (sent.ok()) {
      previous = *sent;
    } else {
      TESSERA_LOG(kWarning) << "heartbeat not sent: " << sent.status();
    }
  } while (!stop_heartbeats_.WaitForNotificationWithTimeout(absl::FromChrono(interval)));
}

Status ClusterMember::Barrier(BarrierGroup group, SteadyTime deadline) {
  return Call(kSchedulerId, [&](const Header& h) { return EncodeBarrierRequest(h, group); },
              deadline)
      .status();
}

Status ClusterMember::RequestClusterShutdown(const std::string& reason, SteadyTime deadline) {
  return Call(kSchedulerId, [&](const Header& h) { return EncodeShutdownRequest(h, reason); },
              deadline)
      .status();
}

std::function<void(int signo, bool insist)> MemberSignalHandler(const std::string& role,
                                                                const std::atomic<bool>* started,
                                                                bool first_signal_drains,
                                                                ClusterMember* member) {
  auto signals = std::make_shared<std::atomic<int>>(0);
  return [role, started, first_signal_drains, member, signals](int signo, bool insist) {
    if (!started->load() || insist) {
      TESSERA_LOG(kWarning) << ShutdownSignalName(signo) << ": exiting now";
      _exit(128 + signo);
    }
    if (first_signal_drains && signals->fetch_add(1) == 0) {
      TESSERA_LOG(kInfo) << ShutdownSignalName(signo)
                         << ": the scheduler drains the stream and stops the cluster (again to "
                            "stop this node now)";
      return;
    }
    member->OnShutdown(role + " received " + ShutdownSignalName(signo));
  };
}

}  // namespace tessera::protocol
