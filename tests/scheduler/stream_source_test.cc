#include "scheduler/stream_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <zmq.hpp>

#include "absl/time/time.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::scheduler {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Names(const std::vector<std::string>& paths) {
  std::vector<std::string> names;
  for (const std::string& p : paths) names.push_back(fs::path(p).filename().string());
  return names;
}

TEST(DirectoryFollowerTest, ReturnsNewCompleteFilesInNameOrder) {
  testing::TempDir dir;
  WriteFile(dir.File("b.tsv"), "1\n");
  WriteFile(dir.File("a.tsv"), "1\n");
  WriteFile(dir.File(".c.tsv"), "being written\n");
  WriteFile(dir.File("_SUCCESS"), "");
  fs::create_directory(dir.File("sub"));
  DirectoryFollower follower({.dir = dir.path().string()});
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> files, follower.Poll());
  EXPECT_THAT(Names(files), ElementsAre("a.tsv", "b.tsv"));
  EXPECT_EQ(files[0], dir.File("a.tsv"));
  ASSERT_OK_AND_ASSIGN(files, follower.Poll());
  EXPECT_THAT(files, IsEmpty());
  fs::rename(dir.File(".c.tsv"), dir.File("c.tsv"));  // the producer is done
  WriteFile(dir.File("d.tsv"), "1\n");
  ASSERT_OK_AND_ASSIGN(files, follower.Poll());
  EXPECT_THAT(Names(files), ElementsAre("c.tsv", "d.tsv"));
  EXPECT_EQ(follower.last_name(), "d.tsv");
}

TEST(DirectoryFollowerTest, NamesAppearingOutOfOrderAreSkipped) {
  testing::TempDir dir;
  WriteFile(dir.File("b.tsv"), "1\n");
  DirectoryFollower follower({.dir = dir.path().string()});
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> files, follower.Poll());
  EXPECT_THAT(Names(files), ElementsAre("b.tsv"));
  WriteFile(dir.File("a.tsv"), "1\n");  // late: a < b
  WriteFile(dir.File("c.tsv"), "1\n");
  ASSERT_OK_AND_ASSIGN(files, follower.Poll());
  EXPECT_THAT(Names(files), ElementsAre("c.tsv"));
  EXPECT_EQ(follower.skipped(), 1u);
  ASSERT_OK_AND_ASSIGN(files, follower.Poll());
  EXPECT_THAT(files, IsEmpty());
  EXPECT_EQ(follower.skipped(), 1u);  // counted (and logged) once
}

TEST(DirectoryFollowerTest, ResumesAfterTheWatermarkSkippingKnownFiles) {
  testing::TempDir dir;
  for (const char* name : {"a.tsv", "b.tsv", "c.tsv", "d.tsv", "e.tsv"}) WriteFile(dir.File(name), "1\n");
  // A checkpoint: everything up to b trained; d known (trained or restored
  // as chunks); c and e new.
  DirectoryFollower follower({.dir = dir.path().string(),
                              .start_after = dir.File("b.tsv"),
                              .skip = {dir.File("d.tsv")}});
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> files, follower.Poll());
  EXPECT_THAT(Names(files), ElementsAre("e.tsv"));  // c < d: it came too late
  EXPECT_EQ(follower.skipped(), 0u);  // nothing is "late" at the first poll
}

TEST(DirectoryFollowerTest, MissingDirectoryIsNotFound) {
  DirectoryFollower follower({.dir = "/nonexistent/stream"});
  EXPECT_EQ(follower.Poll().status().code(), StatusCode::kNotFound);
}

// Collects the spooler's callbacks; tests wait on them instead of sleeping.
class Sink {
 public:
  LineSpoolerOptions Options(LineSpoolerOptions o) {
    o.on_segment = [this](const std::string& path) {
      MutexLock lock(&mu_);
      segments_.push_back(path);
      for (char c : ReadFile(path)) lines_ += c == '\n';
    };
    o.on_end = [this](Status status) {
      MutexLock lock(&mu_);
      end_ = status;
      ended_ = true;
    };
    return o;
  }
  // Waits (up to 10 s) until `n` lines were spooled.
  bool WaitForLines(size_t n) {
    MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return lines_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  bool WaitForEnd() {
    MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&ended_), absl::Seconds(10));
  }
  std::vector<std::string> segments() {
    MutexLock lock(&mu_);
    return segments_;
  }
  std::vector<std::string> Contents() {
    std::vector<std::string> out;
    for (const std::string& p : segments()) out.push_back(ReadFile(p));
    return out;
  }
  std::optional<Status> end() {
    MutexLock lock(&mu_);
    return ended_ ? std::optional<Status>(end_) : std::nullopt;
  }

 private:
  Mutex mu_;
  std::vector<std::string> segments_ TESSERA_GUARDED_BY(mu_);
  size_t lines_ TESSERA_GUARDED_BY(mu_) = 0;
  bool ended_ TESSERA_GUARDED_BY(mu_) = false;
  Status end_ TESSERA_GUARDED_BY(mu_);
};

class Pipe {
 public:
  Pipe() { EXPECT_EQ(::pipe2(fds_, O_CLOEXEC), 0); }
  ~Pipe() {
    CloseWriter();
    ::close(fds_[0]);
  }
  int reader() const { return fds_[0]; }
  void Write(std::string_view s) { ASSERT_EQ(::write(fds_[1], s.data(), s.size()), static_cast<ssize_t>(s.size())); }
  void CloseWriter() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  std::string ReadRest() {
    ::fcntl(fds_[0], F_SETFL, O_NONBLOCK);
    std::string rest;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds_[0], buf, sizeof(buf))) > 0) rest.append(buf, static_cast<size_t>(n));
    return rest;
  }

 private:
  int fds_[2] = {-1, -1};
};

TEST(LineSpoolerTest, StdinSegmentsByLineCountUntilEndOfInput) {
  testing::TempDir dir;
  Pipe pipe;
  Sink sink;
  LineSpooler spooler(sink.Options({.input = "-",
                                    .input_fd = pipe.reader(),
                                    .spool_dir = dir.File("spool"),
                                    .max_lines = 2,
                                    .max_delay = std::chrono::hours(1)}));
  ASSERT_OK(spooler.Start());
  EXPECT_EQ(spooler.endpoint(), "-");
  pipe.Write("1\ta\n0\t");  // lines split across writes
  pipe.Write("b\r\n\n1\tc\n");
  pipe.Write("0\td");  // no final newline
  pipe.CloseWriter();
  ASSERT_TRUE(sink.WaitForEnd());
  EXPECT_OK(*sink.end());
  EXPECT_THAT(Names(sink.segments()), ElementsAre("seg-000000000000.tsv", "seg-000000000001.tsv"));
  EXPECT_THAT(sink.Contents(), ElementsAre("1\ta\n0\tb\r\n", "1\tc\n0\td\n"));
  spooler.Stop();
  const LineSpoolerStats stats = spooler.stats();
  EXPECT_EQ(stats.lines, 4u);
  EXPECT_EQ(stats.segments, 2u);
  EXPECT_EQ(stats.bytes, 17u);
  EXPECT_EQ(stats.dropped, 1u);  // the empty line
}

TEST(LineSpoolerTest, ATrickleIsSpooledAfterMaxDelay) {
  testing::TempDir dir;
  Pipe pipe;
  Sink sink;
  LineSpooler spooler(sink.Options({.input = "-",
                                    .input_fd = pipe.reader(),
                                    .spool_dir = dir.File("spool"),
                                    .max_lines = 1000,
                                    .max_delay = std::chrono::milliseconds(20)}));
  ASSERT_OK(spooler.Start());
  const auto start = std::chrono::steady_clock::now();
  pipe.Write("1\tone\n");
  ASSERT_TRUE(sink.WaitForLines(1));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
  pipe.Write("0\ttwo\n");
  ASSERT_TRUE(sink.WaitForLines(2));
  EXPECT_THAT(sink.Contents(), ElementsAre("1\tone\n", "0\ttwo\n"));
  EXPECT_FALSE(sink.end().has_value());
}

TEST(LineSpoolerTest, StopIsPromptAndKeepsEveryLineItRead) {
  testing::TempDir dir;
  Pipe pipe;
  Sink sink;
  LineSpooler spooler(sink.Options({.input = "-",
                                    .input_fd = pipe.reader(),
                                    .spool_dir = dir.File("spool"),
                                    .max_lines = 1000,
                                    .max_delay = std::chrono::hours(1)}));
  ASSERT_OK(spooler.Start());
  const std::string text = "1\ta\n0\tb\n1\tc\n";
  pipe.Write(text);
  const auto start = std::chrono::steady_clock::now();
  spooler.Stop();  // the writer is still open: read() would block forever
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // What the spooler read is in a segment; the rest is still in the pipe.
  std::string spooled;
  for (const std::string& s : sink.Contents()) spooled += s;
  EXPECT_EQ(spooled + pipe.ReadRest(), text);
  EXPECT_FALSE(sink.end().has_value());  // Stop() is not the end of input
}

TEST(LineSpoolerTest, ZeroMqProducersPushLines) {
  testing::TempDir dir;
  Sink sink;
  zmq::context_t context(1);
  LineSpooler spooler(sink.Options({.input = "zmq+tcp://127.0.0.1:0",
                                    .spool_dir = dir.File("spool"),
                                    .max_lines = 2,
                                    .max_delay = std::chrono::milliseconds(20),
                                    .zmq_context = &context}));
  ASSERT_OK(spooler.Start());
  ASSERT_TRUE(spooler.endpoint().starts_with("zmq+tcp://127.0.0.1:")) << spooler.endpoint();
  EXPECT_NE(spooler.endpoint(), "zmq+tcp://127.0.0.1:0");
  zmq::socket_t push(context, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(spooler.endpoint().substr(4));
  for (std::string_view m : {"1\ta\n0\tb\n", "1\tc", "0\td\n1\te"}) {
    ASSERT_TRUE(push.send(zmq::buffer(m), zmq::send_flags::none));
  }
  ASSERT_TRUE(sink.WaitForLines(5));  // the fifth after max_delay
  EXPECT_THAT(sink.Contents(), ElementsAre("1\ta\n0\tb\n", "1\tc\n0\td\n", "1\te\n"));
  spooler.Stop();
  EXPECT_EQ(spooler.stats().lines, 5u);
  EXPECT_EQ(spooler.stats().segments, 3u);
}

TEST(LineSpoolerTest, NumberingContinuesAfterARestart) {
  testing::TempDir dir;
  fs::create_directory(dir.File("spool"));
  WriteFile(dir.File("spool/seg-000000000007.tsv"), "1\told\n");
  WriteFile(dir.File("spool/.seg-000000000008.tsv"), "1\thalf written\n");
  Pipe pipe;
  Sink sink;
  LineSpooler spooler(sink.Options({.input = "-", .input_fd = pipe.reader(), .spool_dir = dir.File("spool")}));
  ASSERT_OK(spooler.Start());
  pipe.Write("0\tnew\n");
  pipe.CloseWriter();
  ASSERT_TRUE(sink.WaitForEnd());
  EXPECT_THAT(Names(sink.segments()), ElementsAre("seg-000000000008.tsv"));
  EXPECT_EQ(ReadFile(dir.File("spool/seg-000000000008.tsv")), "0\tnew\n");
  EXPECT_FALSE(fs::exists(dir.File("spool/.seg-000000000008.tsv")));
}

TEST(LineSpoolerTest, RejectsBadOptions) {
  testing::TempDir dir;
  EXPECT_EQ(LineSpooler({.input = "tcp://x:1", .spool_dir = dir.File("s")}).Start().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(LineSpooler({.input = "-", .spool_dir = dir.File("s"), .max_lines = 0}).Start().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(LineSpooler({.input = "zmq+nonsense://", .spool_dir = dir.File("s")}).Start().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::scheduler
