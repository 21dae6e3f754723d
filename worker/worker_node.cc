#include "worker/worker_node.h"

#include <utility>

#include "common/logging.h"

namespace tessera::worker {

using protocol::DecodedMessage;
using protocol::MessageType;

WorkerNode::WorkerNode(WorkerOptions options, Transport* transport, const Clock* clock,
                       MetricsRegistry* metrics)
    : options_([&] {
        options.member.role = Role::kWorker;
        return std::move(options);
      }()),
      clock_(clock),
      metrics_(metrics),
      messenger_({transport, options_.token, metrics, "worker"},
                 [this](DecodedMessage msg) { Handle(std::move(msg)); }),
      member_(options_.member, &messenger_) {}

WorkerNode::~WorkerNode() { Stop(); }

Status WorkerNode::Start(SteadyTime deadline) {
  TESSERA_RETURN_IF_ERROR(member_.Bind().status());
  messenger_.Start();
  TESSERA_ASSIGN_OR_RETURN(NodeId id, member_.Register(deadline));
  SetLogNodeLabel(id.ToString());
  TESSERA_ASSIGN_OR_RETURN(protocol::ClusterView view, member_.WaitForView(deadline));
  const size_t servers = view.servers.size();
  {
    MutexLock lock(&kv_mu_);
    kv_ = std::make_unique<KvClient>(&messenger_, std::move(view), metrics_);
    // A view that arrived meanwhile (a failover) is not lost.
    if (std::optional<protocol::ClusterView> latest = member_.view()) kv_->UpdateView(*latest);
  }
  kv_ready_ = true;
  TESSERA_LOG(kInfo) << "registered as " << id.ToString() << "; cluster has " << servers
                     << " servers";
  return OkStatus();
}

void WorkerNode::Stop() {
  member_.Stop();
  {
    MutexLock lock(&kv_mu_);
    kv_ready_ = false;
    kv_.reset();
  }
  messenger_.Stop();
}

int WorkerNode::num_workers() const {
  auto view = member_.view();
  return view ? static_cast<int>(view->workers.size()) : 0;
}

void WorkerNode::Handle(DecodedMessage msg) {
  switch (msg.type()) {
    case MessageType::kClusterView: {
      StatusOr<protocol::ClusterView> view = msg.AsClusterView();
      if (!view.ok()) {
        TESSERA_LOG(kError) << "bad cluster view: " << view.status();
        return;
      }
      member_.OnClusterView(*view);
      MutexLock lock(&kv_mu_);
      if (kv_ != nullptr) kv_->UpdateView(std::move(view).value());
      return;
    }
    case MessageType::kShutdownRequest: {
      StatusOr<std::string> reason = msg.AsShutdownRequest();
      const std::string why = reason.ok() ? *reason : "requested";
      {
        // The servers stop too: nothing in flight will be answered.
        MutexLock lock(&kv_mu_);
        if (kv_ != nullptr) kv_->FailAll(CancelledError("cluster shutting down: " + why));
      }
      member_.OnShutdown(why);
      return;
    }
    default:
      (void)messenger_.ReplyError(
          msg, InvalidArgumentError("worker: unexpected " +
                                    std::string(protocol::MessageTypeName(msg.type()))));
  }
}

}  // namespace tessera::worker
