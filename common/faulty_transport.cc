#include "common/faulty_transport.h"

#include <utility>
#include <vector>

namespace tessera {

FaultyTransport::FaultyTransport(Transport* base, uint64_t seed) : base_(base), rng_(seed) {}

FaultyTransport::FaultyTransport(std::unique_ptr<Transport> base, uint64_t seed)
    : owned_base_(std::move(base)), base_(owned_base_.get()), rng_(seed) {}

FaultyTransport::~FaultyTransport() = default;

StatusOr<std::string> FaultyTransport::Bind(std::string_view endpoint) {
  return base_->Bind(endpoint);
}

Status FaultyTransport::Connect(const NodeId& peer, std::string_view endpoint) {
  return base_->Connect(peer, endpoint);
}

Status FaultyTransport::Disconnect(const NodeId& peer) { return base_->Disconnect(peer); }

Status FaultyTransport::Send(Message msg) {
  MutexLock lock(&mu_);
  std::vector<Message> due = TakeDue();
  // Always draw all four so the fates stay aligned whatever the config.
  const double u_drop = NextUniform();
  const double u_delay = NextUniform();
  const double u_reorder = NextUniform();
  const double u_duplicate = NextUniform();
  Status status;
  const bool spared = faults_.spare_scheduler &&
                      (msg.to.role == Role::kScheduler || msg.from.role == Role::kScheduler);
  if (spared) {
    status = Forward(std::move(msg));
  } else if (u_drop < faults_.drop_probability) {
    ++counters_.dropped;
  } else if (u_delay < faults_.delay_probability) {
    ++counters_.delayed;
    delayed_.push_back(Held{std::move(msg), faults_.delay_release_after_sends});
  } else if (!reorder_slot_.has_value() && u_reorder < faults_.reorder_probability) {
    ++counters_.reordered;
    reorder_slot_ = std::move(msg);
  } else {
    const bool duplicate = u_duplicate < faults_.duplicate_probability;
    if (duplicate) {
      ++counters_.duplicated;
      status = Forward(msg);  // A copy; frames share their bytes.
    }
    Status second = Forward(std::move(msg));
    if (status.ok()) status = second;
    if (reorder_slot_.has_value()) {
      // The held message goes right after the one that overtook it.
      (void)Forward(*std::move(reorder_slot_));
      reorder_slot_.reset();
    }
  }
  for (Message& m : due) (void)Forward(std::move(m));
  return status;
}

StatusOr<Message> FaultyTransport::Receive(SteadyTime deadline) {
  for (;;) {
    StatusOr<Message> msg = base_->Receive(deadline);
    if (!msg.ok()) return msg;
    MutexLock lock(&mu_);
    if (!partitioned_.contains(msg->from)) return msg;
    ++counters_.partitioned_receives;
  }
}

void FaultyTransport::Shutdown() {
  base_->Shutdown();
  MutexLock lock(&mu_);
  delayed_.clear();
  reorder_slot_.reset();
}

void FaultyTransport::set_faults(const FaultConfig& faults) {
  MutexLock lock(&mu_);
  faults_ = faults;
}

FaultConfig FaultyTransport::faults() const {
  MutexLock lock(&mu_);
  return faults_;
}

void FaultyTransport::Partition(const NodeId& peer) {
  MutexLock lock(&mu_);
  partitioned_.insert(peer);
}

void FaultyTransport::Heal(const NodeId& peer) {
  MutexLock lock(&mu_);
  partitioned_.erase(peer);
}

void FaultyTransport::HealAll() {
  MutexLock lock(&mu_);
  partitioned_.clear();
}

size_t FaultyTransport::ReleaseDelayed() {
  MutexLock lock(&mu_);
  size_t released = 0;
  while (!delayed_.empty()) {
    Message msg = std::move(delayed_.front().msg);
    delayed_.pop_front();
    (void)Forward(std::move(msg));
    ++released;
  }
  if (reorder_slot_.has_value()) {
    (void)Forward(*std::move(reorder_slot_));
    reorder_slot_.reset();
    ++released;
  }
  return released;
}

FaultCounters FaultyTransport::counters() const {
  MutexLock lock(&mu_);
  return counters_;
}

double FaultyTransport::NextUniform() {
  // 53 random bits -> [0, 1); the same on every standard library.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

Status FaultyTransport::Forward(Message msg) {
  if (partitioned_.contains(msg.to)) {
    ++counters_.partitioned_sends;
    return OkStatus();
  }
  Status status = base_->Send(std::move(msg));
  if (status.ok()) ++counters_.forwarded;
  return status;
}

std::vector<Message> FaultyTransport::TakeDue() {
  std::vector<Message> due;
  for (auto it = delayed_.begin(); it != delayed_.end();) {
    if (it->sends_left > 0 && --it->sends_left == 0) {
      due.push_back(std::move(it->msg));
      it = delayed_.erase(it);
    } else {
      ++it;
    }
  }
  return due;
}

}  // namespace tessera
