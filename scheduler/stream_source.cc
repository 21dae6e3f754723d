#include "scheduler/stream_source.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"

namespace tessera::scheduler {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadBytes = 64 << 10;
// A longer line is DataLoss (as models::kMaxLineBytes): not a TSV stream.
constexpr size_t kMaxLineBytes = size_t{64} << 20;
// ZeroMQ messages taken per wakeup, so segment deadlines are kept under load.
constexpr int kMaxMessagesPerWait = 1024;
constexpr std::string_view kSegmentPrefix = "seg-";
constexpr std::string_view kSegmentSuffix = ".tsv";
constexpr size_t kSegmentDigits = 12;

std::string FileName(const std::string& path) {
  return path.empty() ? std::string() : fs::path(path).filename().string();
}

bool Ignored(const std::string& name) { return name.empty() || name[0] == '.' || name[0] == '_'; }

Status ErrnoError(const char* what, const std::string& path) {
  return InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Writes `data` to `path` (created or truncated) and syncs it.
Status WriteFileSynced(const std::string& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", path);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status status = ErrnoError("cannot write", path);
      ::close(fd);
      return status;
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd) != 0 || ::close(fd) != 0) return ErrnoError("cannot sync", path);
  return OkStatus();
}

// N of "seg-N.tsv", or -1.
int64_t SegmentNumber(std::string_view name) {
  if (name.size() != kSegmentPrefix.size() + kSegmentDigits + kSegmentSuffix.size() ||
      !name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) {
    return -1;
  }
  int64_t n = 0;
  for (char c : name.substr(kSegmentPrefix.size(), kSegmentDigits)) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

// ---- DirectoryFollower ------------------------------------------------------

DirectoryFollower::DirectoryFollower(DirectoryFollowerOptions options)
    : options_(std::move(options)), skip_([this] {
        std::set<std::string> names;
        for (const std::string& s : options_.skip) names.insert(FileName(s));
        return names;
      }()) {
  last_ = FileName(options_.start_after);
  if (!skip_.empty()) last_ = std::max(last_, *skip_.rbegin());
}

StatusOr<std::vector<std::string>> DirectoryFollower::Poll() {
  std::error_code ec;
  std::vector<std::string> names;
  fs::directory_iterator it(options_.dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (Ignored(name)) continue;
    std::error_code type_ec;
    if (fs::is_regular_file(it->path(), type_ec)) names.push_back(std::move(name));
  }
  if (ec) return NotFoundError(absl::StrCat(options_.dir, ": cannot list directory: ", ec.message()));
  std::sort(names.begin(), names.end());

  std::vector<std::string> fresh;
  for (const std::string& name : names) {
    if (name > last_) {
      fresh.push_back((fs::path(options_.dir) / name).string());
    } else if (!first_poll_ && !old_.contains(name) && !skip_.contains(name)) {
      // Logged once: it is in old_ from now on.
      ++skipped_;
      TESSERA_LOG(kWarning) << options_.dir << ": skipping " << name << ": it appeared after " << last_
                            << " was consumed (files must appear in name order)";
    }
  }
  if (!fresh.empty()) last_ = FileName(fresh.back());
  old_ = std::set<std::string>(names.begin(), names.end());
  first_poll_ = false;
  return fresh;
}

// ---- LineSpooler inputs -----------------------------------------------------

// Where lines come from. Wait() blocks in poll() until input arrives,
// `wake_fd` is signalled or the timeout passes.
class LineSpooler::Input {
 public:
  virtual ~Input() = default;
  // Appends what arrived to *out (maybe nothing). `timeout_ms` -1: none.
  // Sets *eof at the end of the input.
  virtual Status Wait(int wake_fd, int timeout_ms, std::string* out, bool* eof) = 0;
};

class LineSpooler::FdInput : public LineSpooler::Input {
 public:
  explicit FdInput(int fd) : fd_(fd), buf_(new char[kReadBytes]) {}

  Status Wait(int wake_fd, int timeout_ms, std::string* out, bool* eof) override {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0) return errno == EINTR ? OkStatus() : ErrnoError("poll", "input");
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) return OkStatus();
    const ssize_t n = ::read(fd_, buf_.get(), kReadBytes);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) return OkStatus();
      return DataLossError(absl::StrCat("reading input: ", std::strerror(errno)));
    }
    if (n == 0) *eof = true;
    out->append(buf_.get(), static_cast<size_t>(n));
    return OkStatus();
  }

 private:
  const int fd_;
  std::unique_ptr<char[]> buf_;
};

class LineSpooler::ZmqInput : public LineSpooler::Input {
 public:
  // Binds a PULL socket; `context` may be null (one of its own).
  static StatusOr<std::unique_ptr<ZmqInput>> Bind(zmq::context_t* context, const std::string& endpoint,
                                                  std::string* bound) {
    auto input = std::unique_ptr<ZmqInput>(new ZmqInput());
    try {
      if (context == nullptr) {
        input->owned_context_ = std::make_unique<zmq::context_t>(1);
        context = input->owned_context_.get();
      }
      input->socket_ = zmq::socket_t(*context, zmq::socket_type::pull);
      input->socket_.set(zmq::sockopt::linger, 0);
      input->socket_.bind(endpoint);
      *bound = input->socket_.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      std::string message = absl::StrCat("bind ", endpoint, ": ", e.what());
      return e.num() == EADDRINUSE ? AlreadyExistsError(message) : InvalidArgumentError(message);
    }
    return input;
  }

  Status Wait(int wake_fd, int timeout_ms, std::string* out, bool* /*eof*/) override {
    try {
      zmq_pollitem_t items[2] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
      if (zmq_poll(items, 2, timeout_ms) < 0) {
        return zmq_errno() == EINTR ? OkStatus() : InternalError(absl::StrCat("zmq_poll: ", zmq_strerror(zmq_errno())));
      }
      if ((items[0].revents & ZMQ_POLLIN) == 0) return OkStatus();
      for (int i = 0; i < kMaxMessagesPerWait; ++i) {
        zmq::message_t msg;
        if (!socket_.recv(msg, zmq::recv_flags::dontwait)) break;
        // Each message ends its last line.
        out->append(static_cast<const char*>(msg.data()), msg.size());
        if (msg.size() > 0 && out->back() != '\n') out->push_back('\n');
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return OkStatus();
      return InternalError(absl::StrCat("receiving from ZeroMQ: ", e.what()));
    }
    return OkStatus();
  }

 private:
  ZmqInput() = default;
  std::unique_ptr<zmq::context_t> owned_context_;  // destroyed after socket_
  zmq::socket_t socket_;
};

// ---- LineSpooler ------------------------------------------------------------

LineSpooler::LineSpooler(LineSpoolerOptions options) : options_(std::move(options)) {}

LineSpooler::~LineSpooler() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status LineSpooler::Start() {
  if (options_.max_lines == 0) return InvalidArgumentError("spooler: max_lines must be > 0");
  if (options_.spool_dir.empty()) return InvalidArgumentError("spooler: no spool directory");
  std::error_code ec;
  fs::create_directories(options_.spool_dir, ec);
  if (ec) return InternalError(absl::StrCat(options_.spool_dir, ": cannot create: ", ec.message()));
  // Continue the numbering; drop segments a crash left half written.
  fs::directory_iterator it(options_.spool_dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(".seg-")) {
      TESSERA_LOG(kWarning) << "spooler: removing " << it->path().string()
                            << ", a segment left unfinished (its lines are lost)";
      std::error_code rm_ec;
      fs::remove(it->path(), rm_ec);
    }
    const int64_t n = SegmentNumber(name);
    if (n >= 0) next_segment_ = std::max(next_segment_, static_cast<uint64_t>(n) + 1);
  }
  if (ec) return InternalError(absl::StrCat(options_.spool_dir, ": cannot list: ", ec.message()));

  if (options_.input == "-") {
    input_ = std::make_unique<FdInput>(options_.input_fd);
    endpoint_ = options_.input;  // "-"
  } else if (options_.input.starts_with("zmq+")) {
    std::string bound;
    StatusOr<std::unique_ptr<ZmqInput>> zmq_input =
        ZmqInput::Bind(options_.zmq_context, options_.input.substr(4), &bound);
    if (!zmq_input.ok()) return zmq_input.status();
    input_ = *std::move(zmq_input);
    endpoint_ = absl::StrCat("zmq+", bound);
  } else {
    return InvalidArgumentError(absl::StrCat("spooler: input '", options_.input,
                                             "' is neither '-' (stdin) nor zmq+tcp://host:port"));
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return ErrnoError("eventfd", "");
  thread_ = std::thread([this] { Run(); });
  return OkStatus();
}

void LineSpooler::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
}

LineSpoolerStats LineSpooler::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

std::chrono::steady_clock::time_point LineSpooler::SegmentDeadline() const {
  return segment_started_ + options_.max_delay;
}

void LineSpooler::Run() {
  Status status;
  bool eof = false;
  while (!stop_ && !eof) {
    int timeout_ms = -1;
    if (segment_lines_ > 0) {
      const auto left = SegmentDeadline() - std::chrono::steady_clock::now();
      timeout_ms = static_cast<int>(std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
    }
    std::string data;
    status = input_->Wait(wake_fd_, timeout_ms, &data, &eof);
    if (status.ok() && (!data.empty() || eof)) status = AddData(data, eof);
    if (status.ok() && segment_lines_ > 0 && std::chrono::steady_clock::now() >= SegmentDeadline()) {
      status = FinishSegment();
    }
    if (!status.ok()) break;
  }
  if (status.ok() && segment_lines_ > 0) status = FinishSegment();
  if (!carry_.empty()) {
    TESSERA_LOG(kWarning) << "spooler: stopped in the middle of a line (" << carry_.size() << " bytes dropped)";
    MutexLock lock(&mu_);
    ++stats_.dropped;
  }
  if (!status.ok()) TESSERA_LOG(kError) << "spooler: " << status;
  if ((eof || !status.ok()) && options_.on_end) options_.on_end(status);
}

Status LineSpooler::AddData(std::string_view data, bool end_of_input) {
  carry_.append(data);
  size_t begin = 0;
  while (true) {
    const size_t nl = carry_.find('\n', begin);
    if (nl == std::string::npos) break;
    TESSERA_RETURN_IF_ERROR(AddLine(std::string_view(carry_).substr(begin, nl - begin)));
    begin = nl + 1;
  }
  carry_.erase(0, begin);
  if (end_of_input && !carry_.empty()) {
    TESSERA_RETURN_IF_ERROR(AddLine(carry_));
    carry_.clear();
  }
  if (carry_.size() > kMaxLineBytes) {
    return DataLossError(absl::StrCat("spooler: a line longer than ", kMaxLineBytes, " bytes (not TSV input?)"));
  }
  return OkStatus();
}

Status LineSpooler::AddLine(std::string_view line) {
  if (line.empty() || line == "\r") {
    MutexLock lock(&mu_);
    ++stats_.dropped;
    return OkStatus();
  }
  if (segment_lines_ == 0) segment_started_ = std::chrono::steady_clock::now();
  segment_.append(line);
  segment_.push_back('\n');
  if (++segment_lines_ >= options_.max_lines) return FinishSegment();
  return OkStatus();
}

Status LineSpooler::FinishSegment() {
  const std::string name = absl::StrFormat("seg-%012d.tsv", next_segment_);
  const std::string path = (fs::path(options_.spool_dir) / name).string();
  const std::string temp = (fs::path(options_.spool_dir) / absl::StrCat(".", name)).string();
  TESSERA_RETURN_IF_ERROR(WriteFileSynced(temp, segment_));
  if (::rename(temp.c_str(), path.c_str()) != 0) return ErrnoError("cannot rename", temp);
  ++next_segment_;
  {
    MutexLock lock(&mu_);
    stats_.lines += segment_lines_;
    stats_.bytes += segment_.size();
    ++stats_.segments;
  }
  segment_.clear();
  segment_lines_ = 0;
  if (options_.on_segment) options_.on_segment(path);
  return OkStatus();
}

}  // namespace tessera::scheduler
