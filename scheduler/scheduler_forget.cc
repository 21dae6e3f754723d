// SchedulerNode's part of `tessera forget` (privacy): a client's
// ForgetRequest is sent to every live server, and once each has answered,
// the client gets every server's confirmation in one ForgetReply.
//
// Nothing blocks the receive thread: the servers' replies arrive on it and
// the last one sends the client's reply. A server that never answers leaves
// the client waiting until its own deadline (`tessera forget --timeout-s`);
// erasing is idempotent, so the client may simply ask again.
#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "scheduler/scheduler_node.h"

namespace tessera::scheduler {

using protocol::DecodedMessage;
using protocol::Header;

namespace {

// One server's confirmation, from its answer (or the error instead of one).
protocol::ForgetResult ResultOf(NodeId server, const StatusOr<DecodedMessage>& answer) {
  protocol::ForgetResult result;
  if (!answer.ok()) {
    result.status = answer.status();
  } else if (StatusOr<protocol::ForgetReplyInfo> info = answer->AsForgetReply();
             info.ok() && info->results.size() == 1) {
    result = info->results[0];
    if (result.status.ok()) result.status = answer->header().status;
  } else {
    result.status = answer->header().status.ok()
                        ? InvalidArgumentError("unexpected reply to a forget request")
                        : answer->header().status;
  }
  result.server = server.rank;
  return result;
}

}  // namespace

void SchedulerNode::HandleForget(DecodedMessage msg) {
  StatusOr<protocol::ForgetView> request = msg.AsForgetRequest();
  const NodeId client = msg.header().sender;
  if (!request.ok() || client.role != Role::kWorker ||
      client.rank < protocol::kForgetClientMinRank || request->reply_endpoint.empty()) {
    // No route back to a client that is not what kForgetClientMinRank says.
    TESSERA_LOG(kWarning) << "dropped a forget request from " << client.ToString() << ": "
                          << (request.ok() ? "not a forget client (rank or reply endpoint)"
                                           : std::string(request.status().message()));
    return;
  }
  if (Status s = transport_->Connect(client, request->reply_endpoint); !s.ok()) {
    TESSERA_LOG(kWarning) << "forget: cannot connect to the client at "
                          << request->reply_endpoint << ": " << s;
    return;
  }
  // The route stays open (one idle socket per forget call): closing it now
  // could discard the reply before it leaves (linger 0).
  std::vector<protocol::NodeInfo> servers;
  {
    MutexLock lock(&mu_);
    if (view_ && running_) {
      for (const protocol::NodeInfo& s : view_->servers) {
        if (std::find(dead_.begin(), dead_.end(), s.id) == dead_.end()) servers.push_back(s);
      }
    }
  }
  if (servers.empty()) {
    (void)messenger_.ReplyError(
        msg, FailedPreconditionError("scheduler: the cluster is not running (no live server)"));
    return;
  }
  TESSERA_LOG(kInfo) << "forget: " << request->keys.size() << " key(s) of table "
                     << request->table << ", asking " << servers.size() << " server(s)";
  struct Pending {
    Mutex mu;
    size_t left TESSERA_GUARDED_BY(mu) = 0;
    protocol::ForgetReplyInfo reply TESSERA_GUARDED_BY(mu);
  };
  auto pending = std::make_shared<Pending>();
  {
    MutexLock lock(&pending->mu);
    pending->left = servers.size();
    pending->reply.requested = request->keys.size();
  }
  // Runs once per server, on the receive thread (or here, if sending failed).
  auto done = [this, pending, client_msg = msg](NodeId server,
                                                StatusOr<DecodedMessage> answer) {
    protocol::ForgetResult result = ResultOf(server, answer);
    MutexLock lock(&pending->mu);
    pending->reply.results.push_back(std::move(result));
    if (--pending->left > 0) return;
    std::vector<protocol::ForgetResult>& results = pending->reply.results;
    std::sort(results.begin(), results.end(),
              [](const auto& a, const auto& b) { return a.server < b.server; });
    for (const protocol::ForgetResult& r : results) {
      TESSERA_LOG(kInfo) << "forget: server/" << r.server << " erased " << r.erased << " of "
                         << r.owned << " owned key(s)"
                         << (r.status.ok() ? "" : ": " + std::string(r.status.message()));
    }
    (void)messenger_.Reply(client_msg, [&](const Header& h) {
      return protocol::EncodeForgetReply(h, pending->reply);
    });
  };
  for (const protocol::NodeInfo& server : servers) {
    const NodeId id = server.id;
    StatusOr<uint64_t> sent = messenger_.SendRequest(
        id,
        [&](const Header& h) {
          return protocol::EncodeForgetRequest(h, request->table, request->keys, "");
        },
        [done, id](StatusOr<DecodedMessage> answer) { done(id, std::move(answer)); });
    if (!sent.ok()) done(id, sent.status());
  }
}

}  // namespace tessera::scheduler
