// ZmqTransport: the production Transport over ZeroMQ (tcp://, ipc://, and
// inproc:// when several transports share one zmq::context_t).
//
// Topology (as ps-lite's zmq_van): each node receives on one ROUTER socket
// bound by Bind(); Connect(peer, endpoint) opens one DEALER per peer and
// Send() routes by Message::to to that DEALER. A DEALER connected to an
// endpoint nobody has bound yet queues messages (ZMQ_IMMEDIATE is off) and
// delivers them once the peer binds, up to `send_hwm` messages.
//
// Wire layout of one message (ZMQ multipart, ZMQ_SNDMORE between parts):
//   part 0     the 16-byte transport header below
//   part 1..n  Message::frames, byte for byte (empty frames allowed)
// Transport header (integers little-endian):
//   offset 0  2 bytes  magic 'T' 'S'                (0x54 0x53)
//   offset 2  1 byte   version                      (kZmqWireVersion = 1)
//   offset 3  1 byte   reserved, written as 0, ignored on read
//   offset 4  1 byte   from.role                    (Role value, <= 2)
//   offset 5  1 byte   to.role                      (Role value, <= 2)
//   offset 6  2 bytes  reserved, written as 0, ignored on read
//   offset 8  4 bytes  from.rank                    (int32)
//   offset 12 4 bytes  to.rank                      (int32)
// A received message whose part 0 is not a valid header (wrong size, magic,
// version or role) is dropped and counted in
// tessera_transport_rejected_messages_total; it never reaches the caller.
//
// Zero copy: Send() hands each frame's bytes to ZeroMQ with
// zmq_msg_init_data() and a free function that releases a heap-held copy of
// the frame's owner, so payloads are never copied (frames of at most
// kZmqCopyThresholdBytes, and frames without an owner, are copied: for those
// the copy is cheaper than the bookkeeping, or there is no owner to hold).
// Receive() returns frames that point into the received zmq::message_t;
// each frame's owner().get() is that `const zmq::message_t*`.
//
// CurveZMQ (optional, off by default): with Curve keys (options.curve;
// there is no process-wide default: each main passes the keys it read down
// to the transports it builds) every link is encrypted and authenticated.
// The ROUTER is a Curve server with the cluster's secret key, each DEALER a
// Curve client that expects the cluster's public key and presents the
// cluster keypair, and a ZAP handler (common/curve_auth.h) on this
// transport's context admits only clients holding the cluster's secret key
// (common/curve_keys.h explains the one-keypair design). A peer without it
// is refused at the handshake: nothing it sends reaches Receive(), and what
// this transport queues for a peer it cannot authenticate is never
// delivered. Each refused handshake increments
// tessera_transport_auth_refused_total. Curve covers tcp:// and ipc://;
// ZeroMQ applies no security mechanism to inproc://, so Curve requires an
// owned context.
//
// Thread safety: thread-safe. Send/Connect/Disconnect from any thread
// (DEALERs are serialized by one mutex); Receive() calls are serialized.
// Shutdown() wakes a blocked Receive() at once. Every socket closes with
// linger 0: messages still queued when a route is replaced, disconnected or
// shut down are discarded.
//
// Example:
//   ZmqTransportOptions options;
//   TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Transport> t, NewZmqTransport(options));
//   TESSERA_ASSIGN_OR_RETURN(std::string endpoint, t->Bind("tcp://127.0.0.1:0"));
//   TESSERA_RETURN_IF_ERROR(t->Connect(kSchedulerId, scheduler_endpoint));
//   TESSERA_RETURN_IF_ERROR(t->Send({.from = self, .to = kSchedulerId, .frames = {...}}));
//   StatusOr<Message> m = t->Receive(std::chrono::steady_clock::now() + 1s);
#ifndef TESSERA_COMMON_ZMQ_TRANSPORT_H_
#define TESSERA_COMMON_ZMQ_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "common/curve_keys.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/transport.h"

namespace zmq {
class context_t;
}  // namespace zmq

namespace tessera {

inline constexpr uint8_t kZmqWireVersion = 1;
inline constexpr size_t kZmqHeaderBytes = 16;
// Frames up to this size are copied into ZeroMQ's inline storage on Send().
inline constexpr size_t kZmqCopyThresholdBytes = 64;

// The frame limit of Tessera's nodes: 256 MiB, far above any message they
// send (KvClient slices requests per server: a batch's keys and rows for one
// server are a few MB; dense blocks are written to files, not sent whole).
inline constexpr int64_t kNodeMaxFrameBytes = int64_t{256} << 20;

struct ZmqTransportOptions {
  // Borrowed; must outlive the transport. Null: the transport creates and
  // owns a context with `io_threads` I/O threads. Transports that talk over
  // inproc:// must share one context.
  zmq::context_t* context = nullptr;
  // I/O threads of an owned context (ignored with a borrowed one). Roughly
  // one per GB/s of traffic.
  int io_threads = 1;
  // High-water marks, in messages, per connection; 0 = unlimited. When a
  // peer's send queue is full, Send() fails with ResourceExhausted instead of
  // blocking.
  int send_hwm = 100000;
  int recv_hwm = 100000;
  // Largest frame accepted from the network, in bytes; a peer sending a
  // larger one is disconnected by ZeroMQ. -1 = unlimited. Tessera's nodes
  // use kNodeMaxFrameBytes.
  int64_t max_frame_bytes = -1;
  // Borrowed, may be null. Counters: tessera_transport_{sent,received,
  // rejected}_messages_total, tessera_transport_{sent,received}_bytes_total.
  MetricsRegistry* metrics = nullptr;
  // Labels added to every series above (e.g. {{"node", "server/1"}}), so
  // several transports can share one registry.
  MetricLabels metric_labels = {};
  // CurveZMQ keys of the cluster. Unset or an empty CurveKeys: plaintext.
  // REQUIRES with keys: `context` is null (InvalidArgument otherwise).
  std::optional<CurveKeys> curve = std::nullopt;
};

// Creates an unbound transport. Internal if ZeroMQ cannot create the context
// or sockets; InvalidArgument on nonsensical options or invalid Curve keys;
// FailedPrecondition for Curve keys with a libzmq built without CURVE.
StatusOr<std::unique_ptr<Transport>> NewZmqTransport(const ZmqTransportOptions& options);

// The transport of a Tessera node's main (scheduler, server, worker) and of
// the CLI commands that talk to nodes: an owned context, frames up to
// kNodeMaxFrameBytes, counters in `metrics` (borrowed, may be null), Curve
// with `curve` (plaintext if unset or empty). Errors as NewZmqTransport.
StatusOr<std::unique_ptr<Transport>> NewNodeTransport(MetricsRegistry* metrics,
                                                      std::optional<CurveKeys> curve);

}  // namespace tessera

#endif  // TESSERA_COMMON_ZMQ_TRANSPORT_H_
