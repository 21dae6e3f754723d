// CurveAuthenticator: the ZAP handler of one ZeroMQ context, and the
// counter of the handshakes its bound socket refuses. Used by ZmqTransport
// when Curve is on (common/zmq_transport.h); not a public seam.
//
// ZeroMQ asks the handler bound to inproc://zeromq.zap.01 in a socket's
// context whether to accept each Curve client (RFC 27, ZAP 1.0). This one
// accepts exactly the clients whose long-term public key is
// `authorized_public_key` (the cluster key, common/curve_keys.h) and denies
// every other (status 400). It also monitors the watched socket
// (zmq_socket_monitor) for failed handshakes: those the ZAP handler denied
// and those that failed earlier (a client with another server key cannot
// even say HELLO; a plaintext client does not speak CURVE, and may hang up
// first). Each one increments `refused`; a legitimate peer whose connection
// drops mid-handshake counts too (rare: the handshake takes one round trip).
//
// Thread safety: Start() and the destructor run on the owner's thread; the
// handler runs on one thread of its own, started by Start() and joined by
// the destructor. REQUIRES: the destructor runs after the watched socket
// was closed and before the context is terminated.
#ifndef TESSERA_COMMON_CURVE_AUTH_H_
#define TESSERA_COMMON_CURVE_AUTH_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace tessera {

struct CurveAuthenticatorOptions {
  // Borrowed; must outlive the authenticator. At most one authenticator
  // per context (ZeroMQ allows one ZAP handler).
  zmq::context_t* context = nullptr;
  // Z85 public key of the only client admitted.
  std::string authorized_public_key;
  // Borrowed, may be null: incremented once per refused handshake.
  Counter* refused = nullptr;
};

class CurveAuthenticator {
 public:
  // Binds the ZAP endpoint of options.context, starts monitoring `watched`
  // (a socket of that context, not yet bound) and starts the handler thread.
  // AlreadyExists if the context has a ZAP handler already; InvalidArgument
  // for a malformed key.
  static StatusOr<std::unique_ptr<CurveAuthenticator>> Start(
      const CurveAuthenticatorOptions& options, zmq::socket_t* watched);

  ~CurveAuthenticator();  // Stops and joins the handler thread.

  CurveAuthenticator(const CurveAuthenticator&) = delete;
  CurveAuthenticator& operator=(const CurveAuthenticator&) = delete;

 private:
  struct Sockets;  // the ZAP REP and monitor PAIR sockets (zmq.hpp stays out of this header)

  CurveAuthenticator(const CurveAuthenticatorOptions& options, std::string authorized,
                     int wake_fd);
  void Run();  // The handler thread.
  void Serve(Sockets& sockets);
  void ReadMonitorEvent(Sockets& sockets);
  void Refused(const std::string& why);

  const CurveAuthenticatorOptions options_;
  const std::string authorized_;  // 32 bytes, the binary authorized key
  const int wake_fd_;             // eventfd: the destructor stops Run()
  std::unique_ptr<Sockets> sockets_;  // owned by the handler thread once started
  std::atomic<int64_t> refused_count_{0};
  std::thread thread_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_CURVE_AUTH_H_
