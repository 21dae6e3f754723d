#include "common/inproc_transport.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/blocking_queue.h"
#include "common/mutex.h"

namespace tessera {
namespace {

constexpr std::string_view kScheme = "mem://";

// The receive queue of one transport.
struct Mailbox {
  BlockingQueue<Message> queue;
};

Status CheckEndpoint(std::string_view endpoint) {
  if (!endpoint.starts_with(kScheme)) {
    return InvalidArgumentError(absl::StrCat("not a mem:// endpoint: '", std::string(endpoint), "'"));
  }
  return OkStatus();
}

}  // namespace

// Endpoint name -> mailbox. Thread-safe.
class InProcNetwork::Hub {
 public:
  StatusOr<std::string> Bind(std::string_view endpoint, std::shared_ptr<Mailbox> mailbox) {
    TESSERA_RETURN_IF_ERROR(CheckEndpoint(endpoint));
    MutexLock lock(&mu_);
    std::string name(endpoint);
    if (endpoint == kScheme || endpoint == "mem://auto") {
      do {
        name = absl::StrCat("mem://auto-", next_auto_++);
      } while (endpoints_.contains(name));
    }
    auto [it, inserted] = endpoints_.try_emplace(name, std::move(mailbox));
    if (!inserted) return AlreadyExistsError(absl::StrCat(name, " is already bound"));
    return name;
  }

  // Removes `endpoint` if it is still bound to `mailbox`.
  void Unbind(const std::string& endpoint, const Mailbox* mailbox) {
    MutexLock lock(&mu_);
    auto it = endpoints_.find(endpoint);
    if (it != endpoints_.end() && it->second.get() == mailbox) endpoints_.erase(it);
  }

  std::shared_ptr<Mailbox> Lookup(const std::string& endpoint) const {
    absl::ReaderMutexLock lock(&mu_);
    auto it = endpoints_.find(endpoint);
    return it == endpoints_.end() ? nullptr : it->second;
  }

  size_t size() const {
    absl::ReaderMutexLock lock(&mu_);
    return endpoints_.size();
  }

 private:
  mutable Mutex mu_;
  // protected by mu_
  absl::flat_hash_map<std::string, std::shared_ptr<Mailbox>> endpoints_ TESSERA_GUARDED_BY(mu_);
  uint64_t next_auto_ TESSERA_GUARDED_BY(mu_) = 0;
};

namespace {

// Thread-safe.
class InProcTransport final : public Transport {
 public:
  explicit InProcTransport(std::shared_ptr<InProcNetwork::Hub> hub)
      : hub_(std::move(hub)), mailbox_(std::make_shared<Mailbox>()) {}

  ~InProcTransport() override { Shutdown(); }

  StatusOr<std::string> Bind(std::string_view endpoint) override {
    MutexLock lock(&mu_);
    if (shutdown_) return UnavailableError("transport is shut down");
    if (!bound_.empty()) return FailedPreconditionError(absl::StrCat("already bound to ", bound_));
    TESSERA_ASSIGN_OR_RETURN(bound_, hub_->Bind(endpoint, mailbox_));
    return bound_;
  }

  Status Connect(const NodeId& peer, std::string_view endpoint) override {
    TESSERA_RETURN_IF_ERROR(CheckEndpoint(endpoint));
    MutexLock lock(&mu_);
    if (shutdown_) return UnavailableError("transport is shut down");
    routes_[peer] = std::string(endpoint);
    return OkStatus();
  }

  Status Disconnect(const NodeId& peer) override {
    MutexLock lock(&mu_);
    if (routes_.erase(peer) == 0) return NotFoundError(absl::StrCat("no route to ", peer.ToString()));
    return OkStatus();
  }

  Status Send(Message msg) override {
    std::string endpoint;
    {
      MutexLock lock(&mu_);
      if (shutdown_) return UnavailableError("transport is shut down");
      auto it = routes_.find(msg.to);
      if (it == routes_.end()) return UnavailableError(absl::StrCat("no route to ", msg.to.ToString()));
      endpoint = it->second;
    }
    std::shared_ptr<Mailbox> mailbox = hub_->Lookup(endpoint);
    if (mailbox == nullptr || !mailbox->queue.Push(std::move(msg))) {
      return UnavailableError(absl::StrCat("nothing bound at ", endpoint));
    }
    return OkStatus();
  }

  StatusOr<Message> Receive(SteadyTime deadline) override {
    if (is_shut_down()) return CancelledError("transport is shut down");
    std::optional<Message> msg = mailbox_->queue.Pop(deadline);
    if (msg.has_value()) return *std::move(msg);
    if (is_shut_down()) return CancelledError("transport is shut down");
    return DeadlineExceededError("no message before the Receive deadline");
  }

  void Shutdown() override {
    MutexLock lock(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    if (!bound_.empty()) hub_->Unbind(bound_, mailbox_.get());
    mailbox_->queue.Close();  // Wakes Receive().
    routes_.clear();
  }

 private:
  bool is_shut_down() const {
    MutexLock lock(&mu_);
    return shutdown_;
  }

  const std::shared_ptr<InProcNetwork::Hub> hub_;
  const std::shared_ptr<Mailbox> mailbox_;

  mutable Mutex mu_;
  // protected by mu_
  bool shutdown_ TESSERA_GUARDED_BY(mu_) = false;
  std::string bound_ TESSERA_GUARDED_BY(mu_);
  absl::flat_hash_map<NodeId, std::string> routes_ TESSERA_GUARDED_BY(mu_);
};

}  // namespace

InProcNetwork::InProcNetwork() : hub_(std::make_shared<Hub>()) {}
InProcNetwork::~InProcNetwork() = default;

std::unique_ptr<Transport> InProcNetwork::NewTransport() {
  return std::make_unique<InProcTransport>(hub_);
}

size_t InProcNetwork::num_bound_endpoints() const { return hub_->size(); }

}  // namespace tessera
