// FaultyTransport: a Transport decorator that injects network faults, in the
// style of leveldb's EnvWrapper / SpecialEnv. It forwards everything to a base
// transport and, on the way out, can drop, duplicate, delay or reorder
// messages; it can also partition peers (drop everything to or from them).
//
// Faults are decided by a pseudo-random generator seeded in the constructor,
// so the same seed and the same sequence of Send() calls give the same fate
// to every message. Each Send() draws four numbers whatever the
// configuration, so changing one probability does not shift the others.
//
// Thread-safe; configuration may change at any time and applies from the next
// Send(). Send() holds an internal lock while it forwards to the base, so
// messages reach the base in the order their fates were decided.
//
// Example:
//   FaultyTransport faulty(base.get(), /*seed=*/301);
//   faulty.set_faults({.drop_probability = 0.1});
//   faulty.Partition({Role::kServer, 1});
//   ... run the protocol through &faulty ...
//   EXPECT_GT(faulty.counters().dropped, 0);
#ifndef TESSERA_COMMON_FAULTY_TRANSPORT_H_
#define TESSERA_COMMON_FAULTY_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/mutex.h"
#include "common/transport.h"

namespace tessera {

// What happens to each outgoing message. Probabilities are in [0, 1] and are
// checked in this order: drop, delay, reorder; a message that is sent now
// (not dropped or held) is also duplicated with duplicate_probability.
struct FaultConfig {
  double drop_probability = 0.0;       // Discarded; Send() still returns OK.
  double duplicate_probability = 0.0;  // Handed to the base twice.
  double delay_probability = 0.0;      // Held back, see below.
  // A delayed message is released right after this many later Send() calls;
  // 0 holds it until ReleaseDelayed().
  int delay_release_after_sends = 0;
  double reorder_probability = 0.0;  // Held and sent right after the next message.
  // Messages to or from the scheduler (the control plane: registration,
  // views, barriers, heartbeats) pass untouched; the data plane (pulls,
  // pushes, replication and their replies) gets the faults above.
  bool spare_scheduler = false;
};

// What the decorator did, since construction.
struct FaultCounters {
  uint64_t forwarded = 0;  // Handed to the base (duplicates and releases included).
  uint64_t dropped = 0;
  uint64_t duplicated = 0;
  uint64_t delayed = 0;
  uint64_t reordered = 0;
  uint64_t partitioned_sends = 0;     // Dropped: addressed to a partitioned peer.
  uint64_t partitioned_receives = 0;  // Dropped: received from a partitioned peer.
};

class FaultyTransport final : public Transport {
 public:
  // `base` is borrowed and must remain live while this object is used.
  FaultyTransport(Transport* base, uint64_t seed);
  // Takes ownership of `base`.
  FaultyTransport(std::unique_ptr<Transport> base, uint64_t seed);
  ~FaultyTransport() override;

  StatusOr<std::string> Bind(std::string_view endpoint) override;
  Status Connect(const NodeId& peer, std::string_view endpoint) override;
  Status Disconnect(const NodeId& peer) override;
  // Returns the base's status for `msg` when it is forwarded now, OK when it
  // is dropped or held. Held messages released later ignore send errors.
  Status Send(Message msg) override;
  // Skips (and counts) messages from partitioned peers.
  StatusOr<Message> Receive(SteadyTime deadline) override;
  // Shuts the base down and discards held messages.
  void Shutdown() override;

  void set_faults(const FaultConfig& faults);
  FaultConfig faults() const;
  // Drops every message to or from `peer` until healed.
  void Partition(const NodeId& peer);
  void Heal(const NodeId& peer);
  void HealAll();
  // Forwards every held message (delayed or waiting to be reordered) now,
  // oldest first. Returns how many were released.
  size_t ReleaseDelayed();
  FaultCounters counters() const;

 private:
  struct Held {
    Message msg;
    int sends_left;  // 0: until ReleaseDelayed().
  };

  double NextUniform() TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status Forward(Message msg) TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ages held messages by one send; returns those now due.
  std::vector<Message> TakeDue() TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<Transport> owned_base_;
  Transport* const base_;

  mutable Mutex mu_;
  // protected by mu_
  std::mt19937_64 rng_ TESSERA_GUARDED_BY(mu_);
  FaultConfig faults_ TESSERA_GUARDED_BY(mu_);
  FaultCounters counters_ TESSERA_GUARDED_BY(mu_);
  absl::flat_hash_set<NodeId> partitioned_ TESSERA_GUARDED_BY(mu_);
  std::deque<Held> delayed_ TESSERA_GUARDED_BY(mu_);
  std::optional<Message> reorder_slot_ TESSERA_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_COMMON_FAULTY_TRANSPORT_H_
