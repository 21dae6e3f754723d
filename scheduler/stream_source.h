// Streaming training input for the scheduler (issue 5, "Streaming input"):
// where the chunks appended to the DataAssigner come from.
//
//   DirectoryFollower  `data.train: DIR` with `data.follow: true`: the files
//                      that appear in DIR, in name order.
//   LineSpooler        `data.train: -` (stdin) or `zmq+tcp://host:port` (a
//                      PULL socket): TSV lines written into segment files of
//                      a spool directory, each segment then added as a chunk.
//
// Delivery guarantees across a scheduler restart (--resume):
// - Followed directory: exactly once. A checkpoint records the watermark
//   and the files after it (DataAssignerState); a follower built from them
//   returns only the files not seen before.
// - stdin and ZeroMQ: at most once. A line is durable once its segment is
//   renamed into place (seg-N.tsv): such segments are chunks (in the
//   checkpoint, or found again by following the spool directory after the
//   watermark). Lines not yet written to a segment when the process stops
//   (the open segment's lines on a crash; lines still in the pipe or in
//   ZeroMQ's queues; a partial last line at Stop()) are lost, and a
//   restarted job does not see them again.
#ifndef TESSERA_SCHEDULER_STREAM_SOURCE_H_
#define TESSERA_SCHEDULER_STREAM_SOURCE_H_

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace zmq {
class context_t;
}  // namespace zmq

namespace tessera::scheduler {

struct DirectoryFollowerOptions {
  std::string dir = {};
  // Resuming: names <= start_after were consumed (the checkpoint's
  // watermark), as were the names in `skip` (its stream files). Either may
  // be given as a path: only the file name counts.
  std::string start_after = {};
  std::vector<std::string> skip = {};
};

// Lists a directory on each Poll and returns the files that appeared since
// the previous one. Producers write ".name" (or "_name") and rename it to
// "name" when complete: names starting with '.' or '_' are ignored, like
// ExpandInputs does. Names are consumed in order: a name at or below one
// already returned that appears later is logged (once) and skipped.
//
// Thread-compatible. Memory: the names of the files present in the
// directory at or below the last one returned.
//
// Example:
//   DirectoryFollower follower({.dir = "in/"});
//   ASSIGN_OR_RETURN(std::vector<std::string> files, follower.Poll());
//   for (const auto& f : files) ... SplitIntoChunks({f}, chunk_bytes) -> AddChunks
class DirectoryFollower {
 public:
  explicit DirectoryFollower(DirectoryFollowerOptions options);

  // The paths (dir/name) of the regular files new since the last Poll, in
  // name order. NotFound if the directory cannot be listed.
  StatusOr<std::vector<std::string>> Poll();

  // The greatest name returned (or start_after); files skipped because they
  // came out of order.
  const std::string& last_name() const { return last_; }
  uint64_t skipped() const { return skipped_; }

 private:
  const DirectoryFollowerOptions options_;
  const std::set<std::string> skip_;  // file names
  std::string last_;
  // Names <= last_ present at the previous Poll (not new when seen again).
  std::set<std::string> old_;
  bool first_poll_ = true;
  uint64_t skipped_ = 0;
};

struct LineSpoolerOptions {
  // "-": read `input_fd` (stdin). "zmq+tcp://host:port" (any "zmq+"
  // ZeroMQ endpoint): bind a PULL socket there (port 0 picks a free port;
  // see endpoint()); producers connect PUSH sockets and send messages each
  // holding one or more '\n'-separated lines (the last '\n' optional).
  std::string input = "-";
  int input_fd = STDIN_FILENO;  // borrowed: never closed
  // Created if missing. Segments are "seg-<N, 12 digits>.tsv", written as
  // ".seg-N.tsv" and renamed; numbering continues after the segments
  // already there, and stale ".seg-*" files (a crash) are removed.
  std::string spool_dir = {};
  // A segment is finished when it holds max_lines lines (train.batch_size)
  // or max_delay after its first line (train.max_batch_delay_ms), so a
  // trickle of events is trained after max_delay; and at the end of input
  // or Stop().
  uint64_t max_lines = 1024;
  std::chrono::milliseconds max_delay{200};
  // Called on the spooler thread with each finished segment's path (the
  // scheduler adds it as a chunk). Must not block.
  std::function<void(const std::string& path)> on_segment = {};
  // Called once on the spooler thread when the input ends: OK at the end
  // of stdin (the scheduler then closes its data source), else the error
  // that stopped the spooler (a read or write error). Not called for Stop().
  std::function<void(Status)> on_end = {};
  // ZeroMQ context to use (borrowed; must outlive the spooler), or nullptr
  // for a context of its own.
  zmq::context_t* zmq_context = nullptr;
};

struct LineSpoolerStats {
  uint64_t lines = 0;     // lines written to finished segments
  uint64_t segments = 0;  // segments finished
  uint64_t bytes = 0;     // bytes of those lines, '\n' included
  uint64_t dropped = 0;   // empty lines, and a partial last line at Stop()
};

// Reads TSV lines from stdin or a ZeroMQ PULL socket into segment files (see
// the file comment for what survives a restart). Empty lines are dropped;
// '\r' is kept (the parser strips it).
//
// Thread-safe. Start() starts the spooler thread; Stop() (and the
// destructor) flushes the open segment and joins it promptly: the thread
// waits in poll() with the segment's deadline as timeout and an eventfd
// that Stop() signals, never in a blocking read.
//
// Example:
//   LineSpooler spooler({.input = "zmq+tcp://0.0.0.0:5557", .spool_dir = "spool",
//                        .max_lines = 1024, .on_segment = add_chunk, .on_end = close});
//   RETURN_IF_ERROR(spooler.Start());
//   ...
//   spooler.Stop();
class LineSpooler {
 public:
  explicit LineSpooler(LineSpoolerOptions options);
  ~LineSpooler();  // Stop()s.
  LineSpooler(const LineSpooler&) = delete;
  LineSpooler& operator=(const LineSpooler&) = delete;

  // Prepares the spool directory, binds the socket (ZeroMQ) and starts the
  // thread. InvalidArgument for an unknown input or max_lines == 0;
  // Internal/AlreadyExists/... for a directory or bind failure.
  Status Start();
  // Finishes the open segment (on_segment runs for it) and joins the
  // thread. Idempotent.
  void Stop();

  // ZeroMQ: the bound endpoint with the port resolved
  // ("zmq+tcp://127.0.0.1:41234"); "-" for stdin. REQUIRES: Start() succeeded.
  const std::string& endpoint() const { return endpoint_; }
  LineSpoolerStats stats() const;

 private:
  class Input;
  class FdInput;
  class ZmqInput;

  void Run();
  // Appends the complete lines of `data` (with carry_ in front) to the
  // open segment. Returns the first write error.
  Status AddData(std::string_view data, bool end_of_input);
  Status AddLine(std::string_view line);
  Status FinishSegment();
  std::chrono::steady_clock::time_point SegmentDeadline() const;

  const LineSpoolerOptions options_;
  std::unique_ptr<Input> input_;
  std::string endpoint_;
  int wake_fd_ = -1;  // eventfd signalled by Stop()
  std::thread thread_;
  std::atomic<bool> stop_{false};

  // Confined to the spooler thread (and Start() before it runs).
  uint64_t next_segment_ = 0;
  std::string carry_;    // a line not yet ended
  std::string segment_;  // the open segment's lines
  uint64_t segment_lines_ = 0;
  std::chrono::steady_clock::time_point segment_started_;

  mutable Mutex mu_;
  // protected by mu_
  LineSpoolerStats stats_ TESSERA_GUARDED_BY(mu_);
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_STREAM_SOURCE_H_
