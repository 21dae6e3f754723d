#include "tests/testing/in_proc_cluster.h"

#include <thread>
#include <utility>

#include "common/zmq_transport.h"

namespace tessera::testing {
namespace {
constexpr std::chrono::seconds kWait(10);
}  // namespace

InProcCluster::InProcCluster(InProcClusterOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock) {}

InProcCluster::~InProcCluster() { Stop(); }

std::unique_ptr<Transport> InProcCluster::NewTransport() {
  if (options_.transport == ClusterTransport::kInProc) return network_.NewTransport();
  StatusOr<std::unique_ptr<Transport>> t = NewZmqTransport(ZmqTransportOptions{});
  return t.ok() ? std::move(t).value() : nullptr;
}

Status InProcCluster::Start(std::chrono::milliseconds timeout) {
  const std::string bind =
      options_.transport == ClusterTransport::kInProc ? "mem://" : "tcp://127.0.0.1:0";
  const SteadyTime deadline = DeadlineIn(timeout);

  scheduler::SchedulerOptions so;
  so.bind_endpoint = bind;
  so.num_servers = options_.num_servers;
  so.num_workers = options_.num_workers;
  so.replication = options_.replication;
  so.tables = options_.tables;
  so.token = options_.token;
  so.heartbeat_interval = options_.heartbeat_interval;
  so.heartbeat_timeout = options_.heartbeat_timeout;
  so.liveness_thread = options_.heartbeat_threads;
  so.data_chunks = options_.data_chunks;
  so.epochs = options_.epochs;
  so.static_data_order = options_.static_data_order;
  so.staleness = options_.staleness;
  so.async = options_.async;
  so.streaming = options_.streaming;
  so.publish = options_.publish;
  so.resume = options_.resume;
  so.request_timeout = options_.request_timeout;
  transports_.push_back(NewTransport());
  scheduler_ = std::make_unique<scheduler::SchedulerNode>(so, transports_.back().get(), clock_,
                                                          &scheduler_metrics_);
  TESSERA_ASSIGN_OR_RETURN(std::string scheduler_endpoint, scheduler_->Start());
  scheduler_endpoint_ = scheduler_endpoint;

  protocol::MemberOptions member;
  member.bind_endpoint = bind;
  member.scheduler_endpoint = scheduler_endpoint;
  member.heartbeat_thread = options_.heartbeat_threads;
  member_ = member;
  for (int i = 0; i < options_.num_servers; ++i) {
    server_metrics_.push_back(std::make_unique<MetricsRegistry>());
    transports_.push_back(NewTransport());
    if (options_.faulty_servers || options_.server_faults) {
      auto faulty = std::make_unique<FaultyTransport>(std::move(transports_.back()),
                                                      static_cast<uint64_t>(2000 + i));
      server_faulty_.push_back(faulty.get());
      transports_.back() = std::move(faulty);
    }
    member.requested_rank = i;
    servers_.push_back(std::make_unique<server::ServerNode>(
        server::ServerOptions{member, options_.token}, transports_.back().get(), clock_,
        server_metrics_.back().get()));
    server_alive_.push_back(true);
  }
  for (int i = 0; i < options_.num_workers; ++i) {
    worker_metrics_.push_back(std::make_unique<MetricsRegistry>());
    transports_.push_back(NewTransport());
    if (options_.worker_faults) {
      auto faulty = std::make_unique<FaultyTransport>(std::move(transports_.back()),
                                                      static_cast<uint64_t>(1000 + i));
      worker_faulty_.push_back(faulty.get());
      transports_.back() = std::move(faulty);
    }
    member.requested_rank = i;
    workers_.push_back(std::make_unique<worker::WorkerNode>(
        worker::WorkerOptions{member, options_.token}, transports_.back().get(), clock_,
        worker_metrics_.back().get()));
  }
  // Workers block in Start() until every node registered: start all at once.
  std::vector<Status> results(servers_.size() + workers_.size());
  std::vector<std::thread> starters;
  for (size_t i = 0; i < servers_.size(); ++i) {
    starters.emplace_back([&, i] { results[i] = servers_[i]->Start(deadline); });
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    starters.emplace_back(
        [&, i] { results[servers_.size() + i] = workers_[i]->Start(deadline); });
  }
  for (std::thread& t : starters) t.join();
  for (const Status& s : results) TESSERA_RETURN_IF_ERROR(s);
  TESSERA_RETURN_IF_ERROR(scheduler_->WaitRunning(deadline));
  // Faults start once the cluster is assembled (registration is not retried).
  for (FaultyTransport* f : worker_faulty_) f->set_faults(*options_.worker_faults);
  if (options_.server_faults) {
    for (FaultyTransport* f : server_faulty_) f->set_faults(*options_.server_faults);
  }
  return OkStatus();
}

void InProcCluster::Stop() {
  for (auto& w : workers_) w->Stop();
  for (auto& s : servers_) s->Stop();
  if (scheduler_) scheduler_->Stop();
}

void InProcCluster::PartitionServers(int a, int b) {
  server_faulty_.at(a)->Partition({Role::kServer, b});
  server_faulty_.at(b)->Partition({Role::kServer, a});
}

void InProcCluster::HealFaults() {
  for (auto* list : {&worker_faulty_, &server_faulty_}) {
    for (FaultyTransport* f : *list) {
      f->set_faults(FaultConfig{});
      f->ReleaseDelayed();
    }
  }
}

FaultCounters InProcCluster::fault_counters() const {
  FaultCounters sum;
  for (const auto* list : {&worker_faulty_, &server_faulty_}) {
    for (const FaultyTransport* f : *list) {
      const FaultCounters c = f->counters();
      sum.forwarded += c.forwarded;
      sum.dropped += c.dropped;
      sum.duplicated += c.duplicated;
      sum.delayed += c.delayed;
      sum.reordered += c.reordered;
      sum.partitioned_sends += c.partitioned_sends;
      sum.partitioned_receives += c.partitioned_receives;
    }
  }
  return sum;
}

void InProcCluster::KillServer(int i) {
  servers_[i]->Stop();
  server_alive_[i] = false;
}

void InProcCluster::PartitionServerFromScheduler(int i) {
  server_faulty_.at(i)->Partition(kSchedulerId);
  server_alive_[i] = false;
}

Status InProcCluster::ReplaceServer(int i) {
  servers_[i]->Stop();
  servers_[i].reset();
  server_metrics_[i] = std::make_unique<MetricsRegistry>();
  transports_.push_back(NewTransport());
  protocol::MemberOptions member = member_;
  member.requested_rank = i;
  servers_[i] = std::make_unique<server::ServerNode>(server::ServerOptions{member, options_.token},
                                                     transports_.back().get(), clock_,
                                                     server_metrics_[i].get());
  TESSERA_RETURN_IF_ERROR(servers_[i]->Start(DeadlineIn(kWait)));
  server_alive_[i] = true;
  return OkStatus();
}

void InProcCluster::SendHeartbeats() {
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (server_alive_[i]) (void)servers_[i]->member().HeartbeatAndWait(DeadlineIn(kWait));
  }
  for (auto& w : workers_) (void)w->member().HeartbeatAndWait(DeadlineIn(kWait));
}

}  // namespace tessera::testing
