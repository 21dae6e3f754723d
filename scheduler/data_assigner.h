// Hands line-aligned chunks (byte ranges) of the training files to workers as
// they ask, epoch after epoch, so one big file keeps every worker busy and
// each example is trained exactly once per epoch whatever the number of
// workers. A chunk is "in flight" at a worker until the worker asks for its
// next one; the chunks in flight at a dead worker can be handed out again.
//
// Two modes: dynamic (the next chunk goes to whoever asks first: fastest
// overall) and static (chunk i of epoch e goes to worker (e*C + i) % W, so a
// run with a given number of workers is reproducible; used with sync
// consistency).
//
// Thread-compatible.
#ifndef TESSERA_SCHEDULER_DATA_ASSIGNER_H_
#define TESSERA_SCHEDULER_DATA_ASSIGNER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::scheduler {

struct DataChunk {
  std::string path;
  uint64_t begin = 0;
  uint64_t end = 0;  // exclusive; a line belongs to the chunk where it starts
  friend bool operator==(const DataChunk&, const DataChunk&) = default;
};

struct Assignment {
  uint64_t id = 0;  // unique over the whole job (epoch * chunks + index)
  uint32_t epoch = 0;
  DataChunk chunk;
};

class DataAssigner {
 public:
  DataAssigner(std::vector<DataChunk> chunks, uint32_t epochs, int num_workers, bool static_order);

  // Marks `completed` (the worker's previous chunk, if any) done and returns
  // the worker's next chunk, or nullopt when nothing is left for it.
  std::optional<Assignment> Next(int worker, std::optional<uint64_t> completed);
  // Puts the chunks in flight at `worker` back in front of the queue.
  void Requeue(int worker);

  uint64_t total() const { return total_; }
  uint64_t completed() const { return completed_; }
  uint64_t bytes_total() const { return bytes_total_; }
  uint64_t bytes_completed() const { return bytes_completed_; }
  bool finished() const { return completed_ == total_; }

 private:
  std::deque<Assignment>& QueueOf(int worker);

  const bool static_order_;
  const int num_workers_;
  std::vector<std::deque<Assignment>> queues_;  // one shared queue, or one per worker
  std::map<uint64_t, std::pair<int, Assignment>> in_flight_;  // id -> (worker, chunk)
  uint64_t total_ = 0;
  uint64_t completed_ = 0;
  uint64_t bytes_total_ = 0;
  uint64_t bytes_completed_ = 0;
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_DATA_ASSIGNER_H_
