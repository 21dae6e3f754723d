#include "feedback/event_log_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "feedback/event_log.h"

namespace tessera::feedback {
namespace fs = std::filesystem;
namespace {

// How long the writer thread sleeps without records before it looks at
// the fsync interval again.
constexpr absl::Duration kIdleWake = absl::Milliseconds(50);

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
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return written_ >= target; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(timeout));
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
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), kIdleWake);
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
  // Written line by line so a file ends at a record boundary when it rotates.
  for (std::string& line : *batch) {
    const Clock::TimePoint now = clock_->Now();
    if (fd_ >= 0 && ((file_bytes_ + line.size() > options_.max_file_bytes && file_bytes_ > 0) ||
                     now - file_opened_ >= options_.max_file_age)) {
      CloseFile();
    }
    if (fd_ < 0) {
      if (Status s = OpenNext(); !s.ok()) {
        TESSERA_LOG(kError) << "event log: " << s.message();
        dropped_error_.Increment();
        continue;
      }
    }
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t w = ::write(fd_, line.data() + done, line.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    if (done < line.size()) {
      TESSERA_LOG(kError) << "event log: write failed: " << std::strerror(errno);
      dropped_error_.Increment();
      CloseFile();  // the next record starts a new file, at a record boundary
      continue;
    }
    file_bytes_ += line.size();
    dirty_ = true;
    metrics_
        ->GetCounter(options_.metric_prefix + "_records_total", "Event log records written",
                     {{"kind", line.substr(0, 1)}})
        .Increment();
  }
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
