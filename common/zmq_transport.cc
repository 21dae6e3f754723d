#include "common/zmq_transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include <zmq.hpp>
#if defined(__SANITIZE_THREAD__)  // gcc
#define TESSERA_ZMQ_TSAN 1
#elif defined(__has_feature)  // clang
#if __has_feature(thread_sanitizer)
#define TESSERA_ZMQ_TSAN 1
#endif
#endif
#ifdef TESSERA_ZMQ_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/curve_auth.h"
#include "common/mutex.h"

namespace tessera {
namespace {

constexpr uint8_t kMagic0 = 'T';
constexpr uint8_t kMagic1 = 'S';

void PutInt32(uint8_t* p, int32_t value) {
  const auto u = static_cast<uint32_t>(value);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(u >> (8 * i));
}

int32_t GetInt32(const uint8_t* p) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u |= static_cast<uint32_t>(p[i]) << (8 * i);
  return static_cast<int32_t>(u);
}

void EncodeHeader(const NodeId& from, const NodeId& to, uint8_t* out) {
  std::memset(out, 0, kZmqHeaderBytes);
  out[0] = kMagic0;
  out[1] = kMagic1;
  out[2] = kZmqWireVersion;
  out[4] = static_cast<uint8_t>(from.role);
  out[5] = static_cast<uint8_t>(to.role);
  PutInt32(out + 8, from.rank);
  PutInt32(out + 12, to.rank);
}

// False if `part` is not a header this version understands.
bool DecodeHeader(const zmq::message_t& part, NodeId* from, NodeId* to) {
  if (part.size() != kZmqHeaderBytes) return false;
  const auto* p = static_cast<const uint8_t*>(part.data());
  constexpr auto kMaxRole = static_cast<uint8_t>(Role::kWorker);
  if (p[0] != kMagic0 || p[1] != kMagic1 || p[2] != kZmqWireVersion) return false;
  if (p[4] > kMaxRole || p[5] > kMaxRole) return false;
  *from = NodeId{static_cast<Role>(p[4]), GetInt32(p + 8)};
  *to = NodeId{static_cast<Role>(p[5]), GetInt32(p + 12)};
  return true;
}

// Converts a ZeroMQ error into our vocabulary (leveldb's PosixError idea).
Status FromZmqError(int err, std::string_view context) {
  std::string text = absl::StrCat(std::string(context), ": ", zmq_strerror(err));
  switch (err) {
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
    case EADDRNOTAVAIL:
    case ENODEV:
      return InvalidArgumentError(text);
    case EADDRINUSE:
      return AlreadyExistsError(text);
    case EAGAIN:
      return ResourceExhaustedError(text);
    case ETERM:
    case ENOTSOCK:
    case EHOSTUNREACH:
      return UnavailableError(text);
    default:
      return InternalError(text);
  }
}

// ThreadSanitizer cannot see libzmq hand a zero-copy frame from the sending
// thread to the I/O thread that frees it (libzmq is not instrumented):
// HandOff() before zmq_msg_init_data and TakeBack() in the free function
// state that order. No-ops in every other build.
#ifdef TESSERA_ZMQ_TSAN
void HandOff(void* p) { __tsan_release(p); }
void TakeBack(void* p) { __tsan_acquire(p); }
#else
void HandOff(void*) {}
void TakeBack(void*) {}
#endif

// ZeroMQ free function for zero-copy frames: drops the heap-held owner.
// Runs on whichever thread releases the last reference (often an I/O thread).
void ReleaseOwner(void* /*data*/, void* hint) {
  TakeBack(hint);
  delete static_cast<std::shared_ptr<const void>*>(hint);
}

// Fills `out` (a default-constructed message) with the bytes of `frame`.
Status MakePart(const Frame& frame, zmq::message_t* out) {
  if (frame.size() <= kZmqCopyThresholdBytes || frame.owner() == nullptr) {
    if (zmq_msg_init_size(out->handle(), frame.size()) != 0) {
      return FromZmqError(zmq_errno(), "zmq_msg_init_size");
    }
    if (frame.size() > 0) std::memcpy(out->data(), frame.data(), frame.size());
    return OkStatus();
  }
  auto* hint = new std::shared_ptr<const void>(frame.owner());
  HandOff(hint);
  // ZeroMQ never writes through the pointer of an outgoing message.
  if (zmq_msg_init_data(out->handle(), const_cast<uint8_t*>(frame.data()), frame.size(),
                        &ReleaseOwner, hint) != 0) {
    delete hint;
    zmq_msg_init(out->handle());
    return FromZmqError(zmq_errno(), "zmq_msg_init_data");
  }
  return OkStatus();
}

absl::Time ToAbslTime(SteadyTime deadline) {
  const auto remaining = deadline - std::chrono::steady_clock::now();
  if (remaining <= remaining.zero()) return absl::Now();
  return absl::Now() +
         absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(remaining));
}

// Milliseconds to poll for, rounded up so we never wake before `deadline`.
long PollTimeoutMs(SteadyTime deadline) {
  const auto remaining = deadline - std::chrono::steady_clock::now();
  if (remaining <= remaining.zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
  return static_cast<long>(std::min<int64_t>(ms, 60'000));  // re-polls after a minute
}

// Sets a Curve key option (Z85 text, which ZeroMQ decodes).
void SetCurveKey(zmq::socket_t& socket, int option, const std::string& z85) {
  if (zmq_setsockopt(socket.handle(), option, z85.data(), z85.size()) != 0) {
    throw zmq::error_t();
  }
}

void Increment(Counter* counter, double value = 1.0) {
  if (counter != nullptr) counter->Increment(value);
}

class ZmqTransport final : public Transport {
 public:
  ZmqTransport(const ZmqTransportOptions& options, CurveKeys curve, int wake_fd)
      : options_(options), curve_(std::move(curve)), wake_fd_(wake_fd) {
    if (options.metrics == nullptr) return;
    auto counter = [&](const char* what, const char* help) {
      return &options.metrics->GetCounter(absl::StrCat("tessera_transport_", what, "_total"),
                                          help, options.metric_labels);
    };
    sent_messages_ = counter("sent_messages", "Messages queued by Send()");
    sent_bytes_ = counter("sent_bytes", "Payload bytes queued by Send()");
    received_messages_ = counter("received_messages", "Messages returned by Receive()");
    received_bytes_ = counter("received_bytes", "Payload bytes returned by Receive()");
    rejected_messages_ = counter("rejected_messages", "Received messages with a bad header");
    if (curve_.enabled()) {
      auth_refused_ = counter("auth_refused", "Inbound CurveZMQ handshakes refused");
    }
  }

  ~ZmqTransport() override {
    Shutdown();
    ::close(wake_fd_);
    // owned_context_ (declared first) is destroyed last; every socket is
    // closed by now, so zmq_ctx_term returns at once.
  }

  // Creates the context (unless borrowed) and the ROUTER socket.
  Status Init() {
    try {
      context_ = options_.context;
      if (context_ == nullptr) {
        owned_context_ = std::make_unique<zmq::context_t>(options_.io_threads);
        context_ = owned_context_.get();
      }
      MutexLock lock(&router_mu_);
      router_ = zmq::socket_t(*context_, zmq::socket_type::router);
      router_.set(zmq::sockopt::linger, 0);
      router_.set(zmq::sockopt::rcvhwm, options_.recv_hwm);
      router_.set(zmq::sockopt::maxmsgsize, options_.max_frame_bytes);
      if (curve_.enabled()) {
        router_.set(zmq::sockopt::curve_server, true);
        SetCurveKey(router_, ZMQ_CURVE_SECRETKEY, curve_.secret_key);
        router_.set(zmq::sockopt::zap_domain, "tessera");
      }
    } catch (const zmq::error_t& e) {
      return FromZmqError(e.num(), "creating ROUTER socket");
    }
    if (!curve_.enabled()) return OkStatus();
    // The ZAP handler exists before Bind(), so no client is ever admitted
    // unchecked (ZeroMQ admits every Curve client of a context without one).
    StatusOr<std::unique_ptr<CurveAuthenticator>> auth = CurveAuthenticator::Start(
        {.context = context_, .authorized_public_key = curve_.public_key,
         .refused = auth_refused_},
        &router_);
    if (!auth.ok()) return auth.status();
    auth_ = *std::move(auth);
    return OkStatus();
  }

  StatusOr<std::string> Bind(std::string_view endpoint) override {
    MutexLock lock(&router_mu_);
    // Take the ROUTER from a receiver blocked in zmq_poll.
    ++router_waiters_;
    Wake();
    router_mu_.Await(absl::Condition(this, &ZmqTransport::ShutdownOrRouterIdle));
    --router_waiters_;
    if (shutdown_) return UnavailableError("transport is shut down");
    if (!bound_endpoint_.empty()) {
      return FailedPreconditionError(absl::StrCat("already bound to ", bound_endpoint_));
    }
    try {
      router_.bind(std::string(endpoint));
      bound_endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      return FromZmqError(e.num(), absl::StrCat("bind ", std::string(endpoint)));
    }
    return bound_endpoint_;
  }

  Status Connect(const NodeId& peer, std::string_view endpoint) override {
    if (endpoint.empty()) return InvalidArgumentError("empty endpoint");
    {
      MutexLock lock(&send_mu_);
      if (closed_) return UnavailableError("transport is shut down");
      auto it = peers_.find(peer);
      // Same route again: keep the socket and whatever it has queued.
      if (it != peers_.end() && it->second.endpoint == endpoint) return OkStatus();
    }
    StatusOr<zmq::socket_t> dealer = NewDealer(endpoint);
    if (!dealer.ok()) return dealer.status();
    MutexLock lock(&send_mu_);
    if (closed_) return UnavailableError("transport is shut down");
    peers_[peer] = Peer{std::string(endpoint), *std::move(dealer)};
    return OkStatus();
  }

  Status Disconnect(const NodeId& peer) override {
    MutexLock lock(&send_mu_);
    if (peers_.erase(peer) == 0) return NotFoundError(absl::StrCat("no route to ", peer.ToString()));
    return OkStatus();
  }

  Status Send(Message msg) override {
    uint8_t header[kZmqHeaderBytes];
    EncodeHeader(msg.from, msg.to, header);
    MutexLock lock(&send_mu_);
    if (closed_) return UnavailableError("transport is shut down");
    auto it = peers_.find(msg.to);
    if (it == peers_.end()) {
      return UnavailableError(absl::StrCat("no route to ", msg.to.ToString()));
    }
    bool partial = false;
    Status status = SendParts(it->second.dealer, header, msg, &partial);
    if (partial) {
      // Part of a multipart message is queued; the next Send would extend it.
      // Replace the socket so the fragment is discarded.
      StatusOr<zmq::socket_t> fresh = NewDealer(it->second.endpoint);
      if (fresh.ok()) {
        it->second.dealer = *std::move(fresh);
      } else {
        peers_.erase(it);
      }
    }
    if (status.ok()) {
      Increment(sent_messages_);
      Increment(sent_bytes_, static_cast<double>(msg.ByteSize()));
    }
    return status;
  }

  StatusOr<Message> Receive(SteadyTime deadline) override {
    for (;;) {
      TESSERA_RETURN_IF_ERROR(AcquireRouter(deadline));
      bool interrupted = false;
      StatusOr<Message> result = PollRouter(deadline, &interrupted);
      ReleaseRouter();
      if (!interrupted) return result;
      // Woken by Shutdown() (AcquireRouter reports it) or Bind() (waits).
    }
  }

  void Shutdown() override {
    {
      MutexLock lock(&router_mu_);
      if (!shutdown_) {
        shutdown_ = true;
        Wake();
      }
      router_mu_.Await(absl::Condition(this, &ZmqTransport::RouterIdle));
      if (router_) router_.close();
    }
    MutexLock lock(&send_mu_);
    closed_ = true;
    peers_.clear();  // Closes every DEALER (linger 0).
  }

 private:
  struct Peer {
    std::string endpoint;
    zmq::socket_t dealer;
  };

  StatusOr<zmq::socket_t> NewDealer(std::string_view endpoint) {
    try {
      zmq::socket_t dealer(*context_, zmq::socket_type::dealer);
      dealer.set(zmq::sockopt::linger, 0);
      dealer.set(zmq::sockopt::sndhwm, options_.send_hwm);
      // Queue for peers that are not connected yet instead of blocking.
      dealer.set(zmq::sockopt::immediate, false);
      if (curve_.enabled()) {
        SetCurveKey(dealer, ZMQ_CURVE_SERVERKEY, curve_.public_key);
        SetCurveKey(dealer, ZMQ_CURVE_PUBLICKEY, curve_.public_key);
        SetCurveKey(dealer, ZMQ_CURVE_SECRETKEY, curve_.secret_key);
      }
      dealer.connect(std::string(endpoint));
      return dealer;
    } catch (const zmq::error_t& e) {
      return FromZmqError(e.num(), absl::StrCat("connect ", std::string(endpoint)));
    }
  }

  // Sends header + frames as one multipart message without blocking.
  // `*partial` is set when some but not all parts were queued.
  Status SendParts(zmq::socket_t& dealer, const uint8_t* header, const Message& msg,
                   bool* partial) {
    const size_t n = msg.frames.size();
    try {
      zmq::message_t head(header, kZmqHeaderBytes);
      auto flags = zmq::send_flags::dontwait | (n > 0 ? zmq::send_flags::sndmore
                                                      : zmq::send_flags::none);
      if (!dealer.send(head, flags)) {
        return ResourceExhaustedError(
            absl::StrCat("send queue to ", msg.to.ToString(), " is full (send_hwm)"));
      }
      for (size_t i = 0; i < n; ++i) {
        *partial = true;
        zmq::message_t part;
        TESSERA_RETURN_IF_ERROR(MakePart(msg.frames[i], &part));
        flags = zmq::send_flags::dontwait |
                (i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none);
        if (!dealer.send(part, flags)) return ResourceExhaustedError("send queue full mid-message");
      }
      *partial = false;
    } catch (const zmq::error_t& e) {
      return FromZmqError(e.num(), absl::StrCat("send to ", msg.to.ToString()));
    }
    return OkStatus();
  }

  // Waits until this thread may use router_ exclusively.
  Status AcquireRouter(SteadyTime deadline) {
    const bool ready = router_mu_.LockWhenWithDeadline(
        absl::Condition(this, &ZmqTransport::RouterFreeForReceiver), ToAbslTime(deadline));
    Status status;
    if (shutdown_) {
      status = CancelledError("transport is shut down");
    } else if (!ready) {
      status = DeadlineExceededError("Receive deadline passed (another receiver is active)");
    } else {
      receiver_busy_ = true;
    }
    router_mu_.Unlock();
    return status;
  }

  bool RouterIdle() const TESSERA_EXCLUSIVE_LOCKS_REQUIRED(router_mu_) { return !receiver_busy_; }
  bool ShutdownOrRouterIdle() const TESSERA_EXCLUSIVE_LOCKS_REQUIRED(router_mu_) {
    return shutdown_ || !receiver_busy_;
  }
  // Bind() waiters go first so a receiver looping on Receive cannot starve them.
  bool RouterFreeForReceiver() const TESSERA_EXCLUSIVE_LOCKS_REQUIRED(router_mu_) {
    return shutdown_ || (!receiver_busy_ && router_waiters_ == 0);
  }

  void ReleaseRouter() {
    MutexLock lock(&router_mu_);
    receiver_busy_ = false;
  }

  // Polls router_ and the wakeup fd until a valid message or the deadline.
  // REQUIRES: this thread holds the router (AcquireRouter).
  StatusOr<Message> PollRouter(SteadyTime deadline, bool* interrupted) {
    for (;;) {
      zmq_pollitem_t items[2] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
      if (zmq_poll(items, 2, PollTimeoutMs(deadline)) < 0) {
        if (zmq_errno() == EINTR) continue;
        return FromZmqError(zmq_errno(), "zmq_poll");
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t count;
        (void)!::read(wake_fd_, &count, sizeof(count));
        *interrupted = true;
        return CancelledError("interrupted");
      }
      if (items[0].revents & ZMQ_POLLIN) {
        std::optional<Message> msg;
        TESSERA_RETURN_IF_ERROR(ReadMessage(&msg));
        if (msg.has_value()) return *std::move(msg);
        // Malformed (counted) or spurious: keep waiting, deadline permitting.
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return DeadlineExceededError("no message before the Receive deadline");
      }
    }
  }

  // Reads one multipart message from router_ without blocking. Leaves `*out`
  // empty if nothing was ready or the message was malformed.
  Status ReadMessage(std::optional<Message>* out) {
    // One shared owner for all parts; each Frame aliases its own message_t.
    auto parts = std::make_shared<std::vector<zmq::message_t>>();
    try {
      for (;;) {
        zmq::message_t part;
        if (!router_.recv(part, zmq::recv_flags::dontwait)) {
          if (parts->empty()) return OkStatus();
          break;  // Cannot happen: multipart messages arrive atomically.
        }
        const bool more = part.more();
        parts->push_back(std::move(part));
        if (!more) break;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return OkStatus();
      return FromZmqError(e.num(), "recv");
    }
    // parts[0] is the routing id ROUTER prepends; parts[1] our header.
    Message msg;
    if (parts->size() < 2 || !DecodeHeader((*parts)[1], &msg.from, &msg.to)) {
      Increment(rejected_messages_);
      return OkStatus();
    }
    msg.frames.reserve(parts->size() - 2);
    for (size_t i = 2; i < parts->size(); ++i) {
      const zmq::message_t& part = (*parts)[i];
      msg.frames.emplace_back(static_cast<const uint8_t*>(part.data()), part.size(),
                              std::shared_ptr<const void>(parts, &part));
    }
    Increment(received_messages_);
    Increment(received_bytes_, static_cast<double>(msg.ByteSize()));
    *out = std::move(msg);
    return OkStatus();
  }

  void Wake() {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }

  const ZmqTransportOptions options_;
  const CurveKeys curve_;                          // Not enabled(): plaintext.
  std::unique_ptr<zmq::context_t> owned_context_;  // Destroyed last.
  zmq::context_t* context_ = nullptr;              // Set once by Init().
  // Curve only. Destroyed after Shutdown() closed router_ and before the
  // context, as CurveAuthenticator requires.
  std::unique_ptr<CurveAuthenticator> auth_;
  const int wake_fd_;  // eventfd: Bind()/Shutdown() wake a polling receiver.
  Counter* sent_messages_ = nullptr;
  Counter* sent_bytes_ = nullptr;
  Counter* received_messages_ = nullptr;
  Counter* received_bytes_ = nullptr;
  Counter* rejected_messages_ = nullptr;
  Counter* auth_refused_ = nullptr;

  Mutex router_mu_;
  // protected by router_mu_
  bool shutdown_ TESSERA_GUARDED_BY(router_mu_) = false;
  bool receiver_busy_ TESSERA_GUARDED_BY(router_mu_) = false;  // A Receive owns router_.
  int router_waiters_ TESSERA_GUARDED_BY(router_mu_) = 0;      // Bind() calls waiting.
  std::string bound_endpoint_ TESSERA_GUARDED_BY(router_mu_);
  // Used by the thread holding router_mu_ while !receiver_busy_, or by the
  // one receiver that set receiver_busy_ (then without the lock).
  zmq::socket_t router_;

  Mutex send_mu_;
  // protected by send_mu_
  bool closed_ TESSERA_GUARDED_BY(send_mu_) = false;
  absl::flat_hash_map<NodeId, Peer> peers_ TESSERA_GUARDED_BY(send_mu_);
};

}  // namespace

StatusOr<std::unique_ptr<Transport>> NewZmqTransport(const ZmqTransportOptions& options) {
  if (options.io_threads < 1 || options.send_hwm < 0 || options.recv_hwm < 0) {
    return InvalidArgumentError("ZmqTransportOptions: io_threads >= 1, hwm >= 0 required");
  }
  CurveKeys curve = options.curve.value_or(CurveKeys{});
  if (curve.enabled()) {
    TESSERA_RETURN_IF_ERROR(CurveAvailable());
    TESSERA_RETURN_IF_ERROR(ValidateCurveKeys(curve));
    if (options.context != nullptr) {
      return InvalidArgumentError(
          "ZmqTransportOptions: Curve needs a transport-owned context (one ZAP handler per "
          "context; inproc:// links are never encrypted)");
    }
  }
  const int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  auto transport = std::make_unique<ZmqTransport>(options, std::move(curve), wake_fd);
  TESSERA_RETURN_IF_ERROR(transport->Init());
  return std::unique_ptr<Transport>(std::move(transport));
}

StatusOr<std::unique_ptr<Transport>> NewNodeTransport(MetricsRegistry* metrics,
                                                      std::optional<CurveKeys> curve) {
  return NewZmqTransport({.max_frame_bytes = kNodeMaxFrameBytes,
                          .metrics = metrics,
                          .curve = std::move(curve)});
}

}  // namespace tessera
