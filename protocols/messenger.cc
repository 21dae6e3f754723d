#include "protocols/messenger.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "common/logging.h"

namespace tessera::protocol {
namespace {

constexpr auto kReceivePoll = std::chrono::seconds(1);

Counter& RejectCounter(MetricsRegistry* m, const std::string& role, const std::string& reason) {
  return m->GetCounter("tessera_" + role + "_rejected_messages_total",
                       "Received messages dropped before processing, by reason.",
                       {{"reason", reason}});
}

}  // namespace

Messenger::Messenger(MessengerOptions options, RequestHandler handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      received_(options_.metrics->GetCounter("tessera_" + options_.role + "_messages_received_total",
                                             "Verified messages received.")),
      sent_(options_.metrics->GetCounter("tessera_" + options_.role + "_messages_sent_total",
                                         "Messages sent.")),
      rejected_malformed_(RejectCounter(options_.metrics, options_.role, "malformed")),
      rejected_token_(RejectCounter(options_.metrics, options_.role, "token")),
      rejected_version_(RejectCounter(options_.metrics, options_.role, "version")),
      orphan_replies_(options_.metrics->GetCounter(
          "tessera_" + options_.role + "_orphan_replies_total",
          "Replies that matched no pending request (late, cancelled or duplicated).")),
      timeouts_(options_.metrics->GetCounter(
          "tessera_" + options_.role + "_request_timeouts_total",
          "Requests that got no reply within their timeout (the caller may retry).")) {}

Messenger::~Messenger() { Stop(); }

void Messenger::Start() { thread_ = std::thread([this] { ReceiveLoop(); }); }

void Messenger::Stop() {
  if (stopped_.exchange(true)) return;
  options_.transport->Shutdown();
  if (thread_.joinable()) thread_.join();
  std::vector<ReplyCallback> orphans;
  {
    MutexLock cb(&callback_mu_);
    {
      MutexLock lock(&mu_);
      for (auto& [id, p] : pending_) orphans.push_back(std::move(p.done));
      pending_.clear();
      expiries_.clear();
    }
    callback_thread_ = std::this_thread::get_id();
    for (auto& cb_fn : orphans) cb_fn(CancelledError("messenger stopped"));
    callback_thread_ = std::thread::id();
  }
}

void Messenger::set_self(NodeId self) {
  MutexLock lock(&mu_);
  self_ = self;
}

NodeId Messenger::self() const {
  MutexLock lock(&mu_);
  return self_;
}

StatusOr<uint64_t> Messenger::SendRequest(NodeId to, HeaderEncoder encode, ReplyCallback done,
                                          std::chrono::milliseconds timeout) {
  Header header;
  header.request_id = next_request_id_.fetch_add(1);
  header.sender = self();
  header.token = options_.token;
  Message msg{header.sender, to, {encode(header)}};
  const SteadyTime expires = timeout > std::chrono::milliseconds::zero()
                                 ? std::chrono::steady_clock::now() + timeout
                                 : SteadyTime::max();
  {
    MutexLock lock(&mu_);
    pending_.emplace(header.request_id, Pending{std::move(done), to, expires});
    if (expires != SteadyTime::max()) expiries_.emplace(expires, header.request_id);
  }
  Status sent = options_.transport->Send(std::move(msg));
  if (!sent.ok()) {
    MutexLock lock(&mu_);
    pending_.erase(header.request_id);
    expiries_.erase({expires, header.request_id});
    return sent;
  }
  sent_.Increment();
  return header.request_id;
}

Status Messenger::SendOneWay(NodeId to, HeaderEncoder encode) {
  Header header;
  header.request_id = next_request_id_.fetch_add(1);
  header.sender = self();
  header.token = options_.token;
  TESSERA_RETURN_IF_ERROR(options_.transport->Send(Message{header.sender, to, {encode(header)}}));
  sent_.Increment();
  return OkStatus();
}

Status Messenger::Reply(const DecodedMessage& request, HeaderEncoder encode, Status status) {
  Header header = ReplyHeader(request.header(), self(), options_.token, std::move(status));
  TESSERA_RETURN_IF_ERROR(
      options_.transport->Send(Message{header.sender, request.header().sender, {encode(header)}}));
  sent_.Increment();
  return OkStatus();
}

Status Messenger::ReplyError(const DecodedMessage& request, Status status) {
  return Reply(
      request, [](const Header& h) { return EncodeAck(h); }, std::move(status));
}

void Messenger::Cancel(uint64_t request_id) {
  auto forget = [this, request_id] {
    MutexLock lock(&mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) return;
    expiries_.erase({it->second.expires, request_id});
    pending_.erase(it);
  };
  if (callback_thread_.load() == std::this_thread::get_id()) {
    forget();  // from a reply callback, which holds callback_mu_ already
    return;
  }
  MutexLock cb(&callback_mu_);
  forget();
}

bool Messenger::TokenMatches(const std::string& token) const {
  const std::string& want = options_.token;
  // Constant-time over the expected length: no early exit on the first
  // differing byte.
  unsigned diff = token.size() != want.size() ? 1u : 0u;
  for (size_t i = 0; i < want.size(); ++i) {
    diff |= static_cast<unsigned char>(want[i]) ^
            static_cast<unsigned char>(i < token.size() ? token[i] : 0);
  }
  return diff == 0;
}

SteadyTime Messenger::NextWake(SteadyTime now) const {
  MutexLock lock(&mu_);
  // A request sent while the thread blocks may expire before the wake
  // computed here: while any timeout pends, wake at least every
  // kTimeoutGranularity.
  if (expiries_.empty()) return now + kReceivePoll;
  return std::min(expiries_.begin()->first, now + kTimeoutGranularity);
}

void Messenger::ExpireRequests(SteadyTime now) {
  {
    MutexLock lock(&mu_);
    if (expiries_.empty() || expiries_.begin()->first > now) return;  // the common case
  }
  std::vector<std::pair<uint64_t, Pending>> expired;
  MutexLock cb(&callback_mu_);
  {
    MutexLock lock(&mu_);
    while (!expiries_.empty() && expiries_.begin()->first <= now) {
      const uint64_t id = expiries_.begin()->second;
      expiries_.erase(expiries_.begin());
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      expired.emplace_back(id, std::move(it->second));
      pending_.erase(it);
    }
  }
  if (expired.empty()) return;
  timeouts_.Increment(static_cast<double>(expired.size()));
  callback_thread_ = std::this_thread::get_id();
  for (auto& [id, p] : expired) {
    p.done(DeadlineExceededError("no reply from " + p.to.ToString() + " to request " +
                                 std::to_string(id) + " within its timeout"));
  }
  callback_thread_ = std::thread::id();
}

void Messenger::ReceiveLoop() {
  while (true) {
    const SteadyTime now = std::chrono::steady_clock::now();
    ExpireRequests(now);
    StatusOr<Message> message = options_.transport->Receive(NextWake(now));
    if (message.ok()) {
      Dispatch(std::move(message).value());
    } else if (message.status().code() == StatusCode::kCancelled) {
      return;
    }
  }
}

void Messenger::Dispatch(Message message) {
  if (message.frames.size() != 1) {
    rejected_malformed_.Increment();
    return;
  }
  StatusOr<DecodedMessage> decoded = DecodedMessage::Decode(std::move(message.frames[0]));
  if (!decoded.ok()) {
    (decoded.status().code() == StatusCode::kFailedPrecondition ? rejected_version_
                                                                  : rejected_malformed_)
        .Increment();
    TESSERA_LOG(kDebug) << "dropped message from " << message.from.ToString() << ": "
                        << decoded.status();
    return;
  }
  if (!TokenMatches(decoded->header().token)) {
    rejected_token_.Increment();
    TESSERA_LOG(kDebug) << "dropped message with a wrong cluster token from "
                        << message.from.ToString();
    return;
  }
  received_.Increment();
  if (!decoded->header().is_reply) {
    handler_(std::move(decoded).value());
    return;
  }
  MutexLock cb(&callback_mu_);
  ReplyCallback done;
  {
    MutexLock lock(&mu_);
    auto it = pending_.find(decoded->header().request_id);
    if (it == pending_.end()) {
      orphan_replies_.Increment();
      return;
    }
    done = std::move(it->second.done);
    expiries_.erase({it->second.expires, it->first});
    pending_.erase(it);
  }
  callback_thread_ = std::this_thread::get_id();
  done(std::move(decoded));
  callback_thread_ = std::thread::id();
}

}  // namespace tessera::protocol
