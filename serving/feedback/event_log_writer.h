// Appends event log records (feedback/event_log.h) to rotating files from a
// writer thread, through a bounded queue: Append never blocks on the disk
// and never waits for room; when the queue is full the record is dropped and
// counted (serving must not slow down or stop because the disk is slow).
//
// Files: DIR/events-<seq>.log; the first seq is one past the highest found
// in DIR (so files of an earlier run come first). A file is closed (fsynced)
// and the next one opened when it holds max_file_bytes, or max_file_age after
// it was opened (on the injected clock), whichever comes first.
//
// Flush and fsync policy: the writer thread takes what is queued every
// write_interval (10 ms; at once when the queue is half full) and write(2)s
// it in one call per file, so a record reaches the OS (and readers such as
// the joiner) within about write_interval of Append; it fsyncs the open file every
// fsync_interval (0: after every batch), on rotation and at Stop. So a
// crash of serving loses what was still queued; a crash of the machine at
// most the last fsync_interval of records.
//
// Metrics (`metric_prefix` e.g. "tessera_serving_event_log"):
//   <prefix>_records_total{kind}          records written (kind I or F: the first byte)
//   <prefix>_dropped_total{reason}        queue_full | stopped | write_error
//   <prefix>_files_total                  files opened
//   <prefix>_queue_length                 records waiting (gauge)
//
// Thread-safe: Append from any thread. Owns its writer thread: started by
// Open, joined by Stop (and the destructor).
#ifndef TESSERA_FEEDBACK_EVENT_LOG_WRITER_H_
#define TESSERA_FEEDBACK_EVENT_LOG_WRITER_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"

namespace tessera::feedback {

struct EventLogWriterOptions {
  std::string dir;                            // created if missing
  uint64_t max_file_bytes = 64ull << 20;      // rotate past this size
  Clock::Duration max_file_age = std::chrono::seconds(60);  // rotate after
  std::chrono::milliseconds fsync_interval{1000};  // 0: fsync every batch
  size_t queue_capacity = 65536;              // records; more are dropped
  // How often the writer thread writes what is queued (sooner when the
  // queue is half full).
  std::chrono::milliseconds write_interval{10};
  std::string metric_prefix = "tessera_serving_event_log";
};

class EventLogWriter {
 public:
  // Creates DIR, finds the next seq and starts the writer thread (the first
  // file is opened with the first record). `clock` and `metrics` are
  // borrowed and must outlive this object. Unavailable if DIR cannot be
  // created or listed.
  static StatusOr<std::unique_ptr<EventLogWriter>> Open(const EventLogWriterOptions& options,
                                                        Clock* clock, MetricsRegistry* metrics);
  ~EventLogWriter();  // Stop()

  // Queues one record (a whole line, '\n' included). False if it was
  // dropped (queue full or stopped): counted, never blocks.
  bool Append(std::string line);

  // Waits until every record appended before the call is written (not
  // necessarily fsynced), or `timeout` passes (false). For tests and Stop.
  bool Flush(std::chrono::milliseconds timeout);

  // Writes what is queued, fsyncs and closes the file, joins the thread.
  // Later Appends are dropped. Idempotent.
  void Stop();

  // The files this writer opened so far.
  uint64_t files_opened() const;

 private:
  EventLogWriter(const EventLogWriterOptions& options, uint64_t next_seq, Clock* clock,
                 MetricsRegistry* metrics);
  void Run();
  // Writes `batch` to the open file (rotating first if due). Writer thread.
  void WriteBatch(std::deque<std::string>* batch);
  // writev(2)s lines[first, first + n) to the open file; false on error.
  bool WriteLines(const std::deque<std::string>& lines, size_t first, size_t n);
  Status OpenNext();
  void CloseFile();

  const EventLogWriterOptions options_;
  Clock* const clock_;
  MetricsRegistry* const metrics_;
  Counter& dropped_full_;
  Counter& dropped_stopped_;
  Counter& dropped_error_;
  Gauge& queue_length_;

  mutable absl::Mutex mu_;
  // protected by mu_
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t appended_ ABSL_GUARDED_BY(mu_) = 0;  // records accepted
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;   // records taken and written (or failed)
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int flush_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t files_opened_ ABSL_GUARDED_BY(mu_) = 0;

  // Writer thread only.
  uint64_t next_seq_;
  int fd_ = -1;
  uint64_t file_bytes_ = 0;
  Clock::TimePoint file_opened_{};
  Clock::TimePoint last_fsync_{};
  bool dirty_ = false;

  std::thread thread_;
};

}  // namespace tessera::feedback

#endif  // TESSERA_FEEDBACK_EVENT_LOG_WRITER_H_
