// InProcNetwork / InProcTransport: a Transport over in-memory queues, for
// tests and single-process clusters (compare leveldb's NewMemEnv). No
// ZeroMQ, no threads, no copies: a sent Message (its Frames share their
// bytes) is pushed as is onto the receiver's queue.
//
// Endpoints are "mem://<name>". Binding "mem://" or "mem://auto" picks a
// unique name. Unlike ZeroMQ, nothing is queued for an endpoint nobody has
// bound: Send() to an unbound or shut-down endpoint fails with Unavailable.
// Messages from one sending thread to one peer arrive in order.
//
// Example:
//   InProcNetwork net;
//   std::unique_ptr<Transport> server = net.NewTransport();
//   std::unique_ptr<Transport> worker = net.NewTransport();
//   std::string endpoint = *server->Bind("mem://server-0");
//   TESSERA_RETURN_IF_ERROR(worker->Connect({Role::kServer, 0}, endpoint));
#ifndef TESSERA_COMMON_INPROC_TRANSPORT_H_
#define TESSERA_COMMON_INPROC_TRANSPORT_H_

#include <cstddef>
#include <memory>

#include "common/transport.h"

namespace tessera {

// The hub that maps endpoint names to the receive queues of the transports
// bound to them. Thread-safe. Transports keep the hub's state alive, so the
// network object may be destroyed before them (though normally it outlives
// them).
class InProcNetwork {
 public:
  InProcNetwork();
  ~InProcNetwork();
  InProcNetwork(const InProcNetwork&) = delete;
  InProcNetwork& operator=(const InProcNetwork&) = delete;

  // Creates an unbound transport attached to this network. Thread-safe
  // (the transport, like every Transport).
  std::unique_ptr<Transport> NewTransport();

  // Number of endpoints currently bound.
  size_t num_bound_endpoints() const;

  class Hub;  // Defined in the .cc.

 private:
  std::shared_ptr<Hub> hub_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_INPROC_TRANSPORT_H_
