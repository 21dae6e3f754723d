#include "serving/feedback/event_log_writer.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "serving/feedback/event_log.h"

namespace tessera::feedback {
namespace fs = std::filesystem;
namespace {

void FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

StatusOr<std::unique_ptr<EventLogWriter>> EventLogWriter::Open(
    const EventLogWriterOptions& options, Clock* clock, MetricsRegistry* metrics) {
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return UnavailableError(absl::StrCat(options.dir, ": cannot create: ", ec.message()));
  uint64_t next = 1;
  for (fs::directory_iterator it(options.dir, ec), end; !ec && it != end; it.increment(ec)) {
    uint64_t seq = 0;
    if (ParseEventLogFileName(it->path().filename().string(), &seq)) next = std::max(next, seq + 1);
  }
  if (ec) return UnavailableError(absl::StrCat(options.dir, ": cannot list: ", ec.message()));
  return std::unique_ptr<EventLogWriter>(new EventLogWriter(options, next, clock, metrics));
}

EventLogWriter::EventLogWriter(const EventLogWriterOptions& options, uint64_t next_seq,
                               Clock* clock, MetricsRegistry* metrics)
    : options_(options),
      clock_(clock),
      metrics_(metrics),
      dropped_full_(metrics->GetCounter(options.metric_prefix + "_dropped_total",
                                        "Event log records dropped, by reason",
                                        {{"reason", "queue_full"}})),
      dropped_stopped_(metrics->GetCounter(options.metric_prefix + "_dropped_total",
                                           "Event log records dropped, by reason",
                                           {{"reason", "stopped"}})),
      dropped_error_(metrics->GetCounter(options.metric_prefix + "_dropped_total",
                                         "Event log records dropped, by reason",
                                         {{"reason", "write_error"}})),
      queue_length_(metrics->GetGauge(options.metric_prefix + "_queue_length",
                                      "Event log records waiting for the writer thread")),
      next_seq_(next_seq) {
  thread_ = std::thread([this] { Run(); });
}

EventLogWriter::~EventLogWriter() { Stop(); }

bool EventLogWriter::Append(std::string line) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && queue_.size() < options_.queue_capacity) {
      queue_.push_back(std::move(line));
      ++appended_;
      queue_length_.Set(static_cast<double>(queue_.size()));
      return true;
    }
    if (!stopping_) {
      dropped_full_.Increment();
      return false;
    }
  }
  dropped_stopped_.Increment();
  return false;
}

bool EventLogWriter::Flush(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  const uint64_t target = appended_;
  ++flush_waiters_;  // wakes the writer thread now
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return written_ >= target; };
  const bool ok = mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(timeout));
  --flush_waiters_;
  return ok;
}

void EventLogWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

uint64_t EventLogWriter::files_opened() const {
  absl::MutexLock lock(&mu_);
  return files_opened_;
}

void EventLogWriter::Run() {
  while (true) {
    std::deque<std::string> batch;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      // Woken early only by Stop or a half-full queue: otherwise records
      // are written every write_interval, in one batch (a wake-up per
      // record would cost serving a context switch per request).
      auto urgent = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || queue_.size() >= std::max<size_t>(1, options_.queue_capacity / 2) ||
               flush_waiters_ > 0;
      };
      mu_.AwaitWithTimeout(absl::Condition(&urgent), absl::FromChrono(options_.write_interval));
      batch.swap(queue_);
      stopping = stopping_;
      queue_length_.Set(0);
    }
    const size_t n = batch.size();
    if (n > 0) WriteBatch(&batch);
    if (dirty_ && (stopping || clock_->Now() - last_fsync_ >= options_.fsync_interval)) {
      ::fsync(fd_);
      last_fsync_ = clock_->Now();
      dirty_ = false;
    }
    {
      absl::MutexLock lock(&mu_);
      written_ += n;
      if (stopping && queue_.empty()) break;
    }
  }
  CloseFile();
}

void EventLogWriter::WriteBatch(std::deque<std::string>* batch) {
  // Whole lines, as few write(2)s as possible: a file always ends at a
  // record boundary when it rotates.
  uint64_t impressions = 0, feedback = 0;
  size_t i = 0;
  while (i < batch->size()) {
    const Clock::TimePoint now = clock_->Now();
    const bool full =
        file_bytes_ > 0 && file_bytes_ + (*batch)[i].size() > options_.max_file_bytes;
    if (fd_ >= 0 && (full || now - file_opened_ >= options_.max_file_age)) {
      CloseFile();
    }
    if (fd_ < 0) {
      if (Status s = OpenNext(); !s.ok()) {
        TESSERA_LOG(kError) << "event log: " << s.message();
        dropped_error_.Increment(static_cast<double>(batch->size() - i));
        break;
      }
    }
    // The lines that fit in this file (at least one), written with
    // writev (no copy), IOV_MAX lines per call.
    size_t n = 0, bytes = 0;
    while (i + n < batch->size() &&
           (n == 0 || file_bytes_ + bytes + (*batch)[i + n].size() <= options_.max_file_bytes)) {
      bytes += (*batch)[i + n].size();
      ++n;
    }
    if (!WriteLines(*batch, i, n)) {
      TESSERA_LOG(kError) << "event log: write failed: " << std::strerror(errno);
      dropped_error_.Increment(static_cast<double>(n));
      CloseFile();  // the next records start a new file, at a record boundary
      i += n;
      continue;
    }
    file_bytes_ += bytes;
    for (size_t k = i; k < i + n; ++k) ((*batch)[k][0] == 'I' ? impressions : feedback)++;
    dirty_ = true;
    i += n;
  }
  const std::string help = "Event log records written, by kind (I: impression, F: feedback)";
  if (impressions > 0) {
    metrics_->GetCounter(options_.metric_prefix + "_records_total", help, {{"kind", "I"}})
        .Increment(static_cast<double>(impressions));
  }
  if (feedback > 0) {
    metrics_->GetCounter(options_.metric_prefix + "_records_total", help, {{"kind", "F"}})
        .Increment(static_cast<double>(feedback));
  }
}

bool EventLogWriter::WriteLines(const std::deque<std::string>& lines, size_t first, size_t n) {
  std::vector<iovec> iov;
  for (size_t k = first; k < first + n;) {
    iov.clear();
    for (; k < first + n && iov.size() < static_cast<size_t>(IOV_MAX); ++k) {
      iov.push_back({const_cast<char*>(lines[k].data()), lines[k].size()});
    }
    size_t at = 0;  // the first iovec not fully written
    while (at < iov.size()) {
      const ssize_t w = ::writev(fd_, iov.data() + at, static_cast<int>(iov.size() - at));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      auto left = static_cast<size_t>(w);
      while (at < iov.size() && left >= iov[at].iov_len) left -= iov[at++].iov_len;
      if (at < iov.size()) {  // a partial write: the rest of this line next
        iov[at].iov_base = static_cast<char*>(iov[at].iov_base) + left;
        iov[at].iov_len -= left;
      }
    }
  }
  return true;
}

Status EventLogWriter::OpenNext() {
  const std::string path = (fs::path(options_.dir) / EventLogFileName(next_seq_)).string();
  ++next_seq_;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return UnavailableError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  FsyncDir(options_.dir);
  file_bytes_ = 0;
  file_opened_ = clock_->Now();
  last_fsync_ = file_opened_;
  metrics_->GetCounter(options_.metric_prefix + "_files_total", "Event log files opened")
      .Increment();
  absl::MutexLock lock(&mu_);
  ++files_opened_;
  return OkStatus();
}

void EventLogWriter::CloseFile() {
  if (fd_ < 0) return;
  ::fsync(fd_);
  ::close(fd_);
  fd_ = -1;
  dirty_ = false;
}

}  // namespace tessera::feedback
