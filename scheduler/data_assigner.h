// Hands line-aligned chunks (byte ranges) of the training files to workers as
// they ask, epoch after epoch, so one big file keeps every worker busy and
// each example is trained exactly once per epoch whatever the number of
// workers. Workers report how far they trained (Trained), so what is left
// is known to the byte: Export() writes it down for a checkpoint, Restore()
// resumes from it, and the chunks of a dead worker are handed out again from
// where it stopped (Requeue).
//
// Two orders: dynamic (the next chunk goes to whoever asks first: fastest
// overall) and static (chunk `id` goes to worker id % W, so a run with a
// given number of workers is reproducible; used with sync consistency).
//
// Two kinds of input, which may be combined: a static list of chunks given
// to the constructor, handed out `epochs` times, and a stream (streaming:
// true): chunks appended by AddChunks (files of a followed directory,
// segments of a spooled stdin or ZeroMQ stream), once each, until Close().
// While a stream is open, a worker with nothing queued is told "not yet"
// (NextChunk::kNotYet), not "finished".
//
// Chunk life: queued -> handed to a worker (Next) -> trained. A chunk's
// trained offset only grows: Trained(w, id, offset) means every chunk handed
// to w before `id` is fully trained and `id` is trained up to `offset` (the
// byte just past its last trained line). A chunk is fully trained when its
// offset reaches its end; a handed chunk comes back (Requeue) or is
// exported as [trained offset, end). In the handed-out Assignment, chunk.begin
// is that offset (a line start, or the original split boundary), so readers
// with Hadoop split semantics read exactly the untrained lines.
//
// Thread-compatible.
//
// Example:
//   DataAssigner assigner({.num_workers = 2, .static_order = true, .streaming = true});
//   assigner.AddChunks({{"in/a.tsv", 0, kChunkToEndOfFile}});
//   NextChunk next = assigner.Next(/*worker=*/0, std::nullopt);  // kChunk, id 0
//   assigner.Trained(0, next.assignment.id, 4096);                // after a step
//   DataAssignerState state = assigner.Export();                  // a checkpoint
//   ...
//   DataAssigner resumed(options);
//   RETURN_IF_ERROR(resumed.Restore(state));  // hands out [4096, end) of a.tsv first
#ifndef TESSERA_SCHEDULER_DATA_ASSIGNER_H_
#define TESSERA_SCHEDULER_DATA_ASSIGNER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tessera::scheduler {

// A chunk's `end` when it runs to the end of its file (as models::kToEndOfFile).
inline constexpr uint64_t kChunkToEndOfFile = ~uint64_t{0};

struct DataChunk {
  std::string path;
  uint64_t begin = 0;
  uint64_t end = 0;  // exclusive; a line belongs to the chunk where it starts
  friend bool operator==(const DataChunk&, const DataChunk&) = default;
};

struct Assignment {
  uint64_t id = 0;  // unique over the whole job; static input: epoch * chunks + index
  uint32_t epoch = 0;
  DataChunk chunk;  // chunk.begin: the chunk's trained offset (its begin if untouched)
  friend bool operator==(const Assignment&, const Assignment&) = default;
};

// The answer to a worker asking for data.
struct NextChunk {
  enum class Kind {
    kChunk,     // `assignment` is the worker's next chunk
    kNotYet,    // nothing for it now; the stream is open: ask again
    kFinished,  // nothing more will come for this worker
  };
  Kind kind = Kind::kFinished;
  Assignment assignment;  // kChunk only

  bool has_chunk() const { return kind == Kind::kChunk; }
  // Transitional, for callers written against the std::optional<Assignment>
  // that Next used to return (kNotYet and kFinished both become nullopt).
  operator std::optional<Assignment>() const {  // NOLINT(google-explicit-constructor)
    return has_chunk() ? std::optional<Assignment>(assignment) : std::nullopt;
  }
};

// What is not trained yet, for checkpoints (see DataAssignerStateToJson).
struct DataAssignerState {
  // A chunk not fully trained: [trained, end) of `path` is left.
  struct Chunk {
    uint64_t id = 0;
    uint32_t epoch = 0;
    std::string path;
    uint64_t begin = 0;    // the chunk's original begin
    uint64_t trained = 0;  // begin <= trained < end
    uint64_t end = 0;
    friend bool operator==(const Chunk&, const Chunk&) = default;
  };
  // A file appended to the stream (AddChunks) after the watermark.
  struct StreamFile {
    std::string path;
    bool trained = false;  // every chunk of it fully trained
    friend bool operator==(const StreamFile&, const StreamFile&) = default;
  };

  // Static input: the constructor's chunk list and epoch count. Epochs
  // [first_untouched_epoch, epochs) were not started: Restore re-creates
  // them from `static_chunks` instead of listing their chunks below.
  std::vector<DataChunk> static_chunks;
  uint32_t epochs = 1;
  uint32_t first_untouched_epoch = 0;
  // Every other chunk not fully trained, by id.
  std::vector<Chunk> chunks;
  // The id the next appended chunk gets.
  uint64_t next_id = 0;
  // Stream files are appended in name order. The watermark is the last
  // (greatest) path such that it and every stream file before it are fully
  // trained ("" if none); `stream_files` are the stream files after it
  // (their untrained chunks are in `chunks`). A directory follower resumes
  // after the watermark, skipping the files listed here.
  std::string watermark;
  std::vector<StreamFile> stream_files;
  // Progress so far (counters continue from these after Restore).
  uint64_t completed_chunks = 0;
  uint64_t completed_bytes = 0;

  friend bool operator==(const DataAssignerState&, const DataAssignerState&) = default;
};

// JSON (nlohmann) text of a state and back; InvalidArgument for text that
// is not such a state or an inconsistent one (ValidateDataAssignerState).
std::string DataAssignerStateToJson(const DataAssignerState& state);
StatusOr<DataAssignerState> DataAssignerStateFromJson(std::string_view json);
// InvalidArgument unless chunk ids increase, begin <= trained < end, static
// chunks match the epoch structure and stream chunks are below next_id.
Status ValidateDataAssignerState(const DataAssignerState& state);

struct DataAssignerOptions {
  // Static input, handed out `epochs` times (ids epoch * chunks.size() + i).
  std::vector<DataChunk> chunks = {};
  uint32_t epochs = 1;
  int num_workers = 1;  // >= 1
  // Chunk `id` goes to worker id % num_workers (reproducible); else to
  // whoever asks first.
  bool static_order = false;
  // More chunks come through AddChunks until Close(). Without it the
  // assigner starts closed.
  bool streaming = false;
};

class DataAssigner {
 public:
  explicit DataAssigner(DataAssignerOptions options);
  DataAssigner(std::vector<DataChunk> chunks, uint32_t epochs, int num_workers, bool static_order);

  // Appends chunks to the stream, with ids after every existing one.
  // Chunks of one file must be appended together, files in name order.
  // Appending after Close() is FailedPrecondition.
  Status AddChunks(std::vector<DataChunk> chunks);
  // No more chunks will come: workers with nothing queued are told kFinished.
  void Close();
  bool closed() const { return closed_; }

  // `completed` (the chunk the worker read last, if any) is only noted;
  // training is reported by Trained. Returns the worker's next chunk,
  // kNotYet while the stream is open and nothing is queued for it, or
  // kFinished. REQUIRES: 0 <= worker.
  NextChunk Next(int worker, std::optional<uint64_t> completed);
  // `worker` trained every chunk handed to it before `chunk_id` and
  // `chunk_id` up to byte `offset` (its end or beyond: fully). Reports of
  // chunks not held by `worker` (e.g. after Requeue) are ignored: returns
  // false.
  bool Trained(int worker, uint64_t chunk_id, uint64_t offset);
  // Puts the chunks handed to `worker` and not fully trained back in front
  // of the queue, from their trained offsets (a dead worker's). Static
  // order: they and the worker's queue go to the lowest live worker (one
  // not requeued, or back since: it asked again).
  void Requeue(int worker);

  // What is left; Restore(Export()) on a fresh assigner resumes it.
  DataAssignerState Export() const;
  // Replaces the queues with `state`'s untrained bytes (the constructor's
  // chunks and epochs, and any appended chunk, are dropped: the state has
  // its own; append the stream's new chunks after Restore). Static order:
  // every chunk goes back to worker id % num_workers in id order, so
  // partially trained chunks come first in each worker's queue.
  // FailedPrecondition if a chunk was handed out already; InvalidArgument if
  // `state` is inconsistent.
  Status Restore(const DataAssignerState& state);

  // Chunks (fully trained) and bytes (trained, over chunks with a known
  // end) of the whole job so far, and in total.
  uint64_t total() const { return total_; }
  uint64_t completed() const { return completed_; }
  uint64_t bytes_total() const { return bytes_total_; }
  uint64_t bytes_completed() const { return bytes_completed_; }
  // Closed and every chunk fully trained.
  bool finished() const { return closed_ && live_.empty(); }

 private:
  struct Record {
    Assignment assignment;  // chunk.begin: the original begin
    uint64_t trained = 0;   // offset trained up to
    int holder = -1;        // worker it is handed to, or -1 when queued
  };
  struct StreamFileRecord {
    std::string path;
    uint64_t open_chunks = 0;  // chunks not fully trained
  };

  std::deque<uint64_t>& QueueOf(int worker);
  // Where a dead worker's chunks go (static order: the lowest live worker's
  // queue).
  std::deque<uint64_t>& HeirQueue();
  void Enqueue(uint64_t id);
  void AddRecord(Assignment assignment, uint64_t trained);
  void AdvanceTrained(Record* record, uint64_t offset);
  void MarkFullyTrained(uint64_t id);
  Assignment Remaining(const Record& record) const;
  uint32_t FirstUntouchedEpoch() const;

  const int num_workers_;
  const bool static_order_;
  std::vector<DataChunk> static_chunks_;
  uint32_t epochs_ = 1;
  uint64_t static_ids_ = 0;  // ids below are static input
  uint64_t next_id_ = 0;
  bool closed_ = true;
  std::vector<std::deque<uint64_t>> queues_;  // ids: one shared queue, or one per worker
  std::vector<std::deque<uint64_t>> handed_;  // per worker: ids held, in hand-out order
  std::vector<bool> absent_;  // static order: requeued (dead) and not back yet
  std::map<uint64_t, Record> live_;           // every chunk not fully trained, by id
  std::deque<StreamFileRecord> stream_files_;  // after the watermark, in order
  std::map<std::string, size_t, std::less<>> stream_file_index_;  // path -> absolute index
  uint64_t stream_files_dropped_ = 0;  // files before stream_files_.front()
  std::string watermark_;
  int64_t max_touched_epoch_ = -1;  // greatest epoch of a static chunk handed out
  uint64_t total_ = 0;
  uint64_t completed_ = 0;
  uint64_t bytes_total_ = 0;
  uint64_t bytes_completed_ = 0;
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_DATA_ASSIGNER_H_
