#include "common/curve_auth.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace tessera {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr char kMonitorEndpoint[] = "inproc://tessera.curve.monitor";
// A plaintext client and a Curve server each see the other's mechanism in
// the greeting and drop the connection; which side notices first is a race,
// and when the client wins the server sees a handshake that failed with
// "no detail" (the peer hung up). All three count as refusals.
constexpr int kRefusalEvents = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

// What a handshake-failure event means, for the log.
std::string DescribeRefusal(uint16_t event, uint32_t value) {
  switch (event) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return absl::StrCat("client key not authorized (ZAP ", value, ")");
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
        return "peer has another Curve key (its handshake did not decrypt)";
      }
      if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        return "peer does not speak CURVE (plaintext: no --curve-dir?)";
      }
      return absl::StrCat("CURVE handshake failed (protocol error 0x", absl::Hex(value), ")");
    default:
      return absl::StrCat("peer left the handshake (", std::strerror(static_cast<int>(value)),
                          ")");
  }
}

std::string PartText(const zmq::message_t& part) { return std::string(part.to_string_view()); }

// Receives every part of one message. False if nothing was ready.
bool ReceiveAll(zmq::socket_t& socket, std::vector<zmq::message_t>* parts) {
  parts->clear();
  for (;;) {
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) return !parts->empty();
    const bool more = part.more();
    parts->push_back(std::move(part));
    if (!more) return true;
  }
}

}  // namespace

struct CurveAuthenticator::Sockets {
  zmq::socket_t zap;      // REP bound to kZapEndpoint
  zmq::socket_t monitor;  // PAIR connected to the watched socket's monitor
};

StatusOr<std::unique_ptr<CurveAuthenticator>> CurveAuthenticator::Start(
    const CurveAuthenticatorOptions& options, zmq::socket_t* watched) {
  std::string authorized(32, '\0');
  if (options.authorized_public_key.size() != 40 ||
      zmq_z85_decode(reinterpret_cast<uint8_t*>(authorized.data()),
                     options.authorized_public_key.c_str()) == nullptr) {
    return InvalidArgumentError("authorized Curve key is not 40 Z85 characters");
  }
  const int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  std::unique_ptr<CurveAuthenticator> auth(
      new CurveAuthenticator(options, std::move(authorized), wake_fd));
  auto sockets = std::make_unique<Sockets>();
  try {
    sockets->zap = zmq::socket_t(*options.context, zmq::socket_type::rep);
    sockets->zap.set(zmq::sockopt::linger, 0);
    sockets->zap.bind(kZapEndpoint);
    if (zmq_socket_monitor(watched->handle(), kMonitorEndpoint, kRefusalEvents) != 0) {
      return InternalError(absl::StrCat("zmq_socket_monitor: ", zmq_strerror(zmq_errno())));
    }
    sockets->monitor = zmq::socket_t(*options.context, zmq::socket_type::pair);
    sockets->monitor.set(zmq::sockopt::linger, 0);
    sockets->monitor.connect(kMonitorEndpoint);
  } catch (const zmq::error_t& e) {
    if (e.num() == EADDRINUSE) {
      return AlreadyExistsError("this ZeroMQ context already has a ZAP handler");
    }
    return InternalError(absl::StrCat("starting the ZAP handler: ", e.what()));
  }
  // Starting the thread is a full barrier: the sockets migrate to it.
  auth->sockets_ = std::move(sockets);
  auth->thread_ = std::thread([raw = auth.get()] { raw->Run(); });
  return auth;
}

CurveAuthenticator::CurveAuthenticator(const CurveAuthenticatorOptions& options,
                                       std::string authorized, int wake_fd)
    : options_(options), authorized_(std::move(authorized)), wake_fd_(wake_fd) {}

CurveAuthenticator::~CurveAuthenticator() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  sockets_.reset();  // Closes both sockets (linger 0) before the context goes.
  ::close(wake_fd_);
}

void CurveAuthenticator::Run() {
  Sockets& sockets = *sockets_;
  for (;;) {
    zmq_pollitem_t items[3] = {{sockets.zap.handle(), 0, ZMQ_POLLIN, 0},
                               {sockets.monitor.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 3, -1) < 0) {
      if (zmq_errno() == EINTR) continue;
      TESSERA_LOG(kError) << "ZAP handler stops: zmq_poll: " << zmq_strerror(zmq_errno());
      return;
    }
    if (items[2].revents & ZMQ_POLLIN) return;
    try {
      if (items[0].revents & ZMQ_POLLIN) Serve(sockets);
      if (items[1].revents & ZMQ_POLLIN) ReadMonitorEvent(sockets);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      TESSERA_LOG(kError) << "ZAP handler: " << e.what();
    }
  }
}

// Answers one ZAP request (RFC 27): version, request id, domain, address,
// identity, mechanism, then the credentials (CURVE: the 32-byte client key).
void CurveAuthenticator::Serve(Sockets& sockets) {
  std::vector<zmq::message_t> request;
  if (!ReceiveAll(sockets.zap, &request)) return;
  std::string request_id = request.size() > 1 ? PartText(request[1]) : "";
  const char* status = "400";
  const char* text = "unknown client key";
  if (request.size() < 6 || PartText(request[0]) != "1.0") {
    status = "500";
    text = "malformed ZAP request";
  } else if (PartText(request[5]) != "CURVE") {
    text = "only CURVE clients are admitted";
  } else if (request.size() == 7 && PartText(request[6]) == authorized_) {
    status = "200";
    text = "OK";
  }
  // The refusal itself is counted from the monitor (HANDSHAKE_FAILED_AUTH).
  if (status[0] != '2') {
    TESSERA_LOG(kDebug) << "ZAP: refused a client from "
                        << (request.size() > 3 ? PartText(request[3]) : "?") << ": " << text;
  }
  const std::string reply[] = {"1.0", request_id, status, text, "tessera", ""};
  for (size_t i = 0; i < std::size(reply); ++i) {
    sockets.zap.send(zmq::buffer(reply[i]),
                     i + 1 < std::size(reply) ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

// Monitor events (libzmq 4.x): part 0 is a 16-bit event id and a 32-bit
// value, part 1 the endpoint.
void CurveAuthenticator::ReadMonitorEvent(Sockets& sockets) {
  std::vector<zmq::message_t> event;
  if (!ReceiveAll(sockets.monitor, &event) || event[0].size() < 6) return;
  uint16_t id;
  uint32_t value;
  std::memcpy(&id, event[0].data(), sizeof(id));
  std::memcpy(&value, static_cast<const char*>(event[0].data()) + 2, sizeof(value));
  if ((id & kRefusalEvents) == 0) return;
  Refused(absl::StrCat(DescribeRefusal(id, value), " on ",
                       event.size() > 1 ? PartText(event[1]) : std::string("?")));
}

void CurveAuthenticator::Refused(const std::string& why) {
  if (options_.refused != nullptr) options_.refused->Increment();
  const int64_t n = ++refused_count_;
  // A refused peer reconnects every 100 ms: log 1, 10, 100... refusals.
  int64_t power = 1;
  while (power * 10 <= n) power *= 10;
  if (n == power) TESSERA_LOG(kWarning) << "refused handshake #" << n << ": " << why;
}

}  // namespace tessera
