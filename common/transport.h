// The transport seam: moves opaque multi-frame messages between nodes.
// Implementations: ZmqTransport (tcp://, ipc://, inproc://), InProcTransport
// (memory queues, deterministic, for tests) and FaultyTransport (a decorator
// that drops, delays, duplicates, reorders or partitions).
//
// Addressing: a node binds one receive endpoint. To send to a peer, it first
// Connect()s the peer's NodeId to the peer's endpoint; Send() then routes by
// Message::to. Message::from is whatever the sender puts there (a node that
// has no id yet uses {role, kUnassignedRank}); it is not authenticated here.
#ifndef TESSERA_COMMON_TRANSPORT_H_
#define TESSERA_COMMON_TRANSPORT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "common/status.h"
#include "common/types.h"

namespace tessera {

// An immutable byte buffer with shared ownership; copies are cheap and share
// the bytes. The bytes stay valid while any copy of the Frame lives.
class Frame {
 public:
  Frame() = default;
  // Wraps bytes owned by `owner` (e.g. a zmq message or a FlatBuffers buffer).
  Frame(const uint8_t* data, size_t size, std::shared_ptr<const void> owner)
      : data_(data), size_(size), owner_(std::move(owner)) {}
  static Frame FromString(std::string bytes);
  static Frame Copy(const void* data, size_t size);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(data_), size_};
  }
  const std::shared_ptr<const void>& owner() const { return owner_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> owner_;
};

struct Message {
  NodeId from;
  NodeId to;
  std::vector<Frame> frames;

  size_t ByteSize() const;
};

// SteadyTime comes from common/deadline.h.

// Thread-safe: Send() may be called from any thread concurrently; Receive()
// is meant for one receiving thread (concurrent calls are serialized).
class Transport {
 public:
  virtual ~Transport() = default;

  // Binds this node's receive endpoint. Returns the endpoint actually bound
  // (e.g. "tcp://127.0.0.1:0" resolves to the port the OS chose).
  virtual StatusOr<std::string> Bind(std::string_view endpoint) = 0;
  // Routes messages for `peer` to `endpoint`. Re-connecting a peer to a new
  // endpoint replaces the old route.
  virtual Status Connect(const NodeId& peer, std::string_view endpoint) = 0;
  // Forgets the route to `peer`. NotFound if there is none.
  virtual Status Disconnect(const NodeId& peer) = 0;
  // Queues `msg` for msg.to. Unavailable if the peer is unknown or the
  // transport is shut down. Does not wait for delivery.
  virtual Status Send(Message msg) = 0;
  // Blocks until a message arrives (returns it), `deadline` passes
  // (DeadlineExceeded) or Shutdown() is called (Cancelled).
  virtual StatusOr<Message> Receive(SteadyTime deadline) = 0;
  // Wakes any Receive() and makes later calls fail with Cancelled. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_TRANSPORT_H_
