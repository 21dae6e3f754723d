#include "worker/data_feed.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <fstream>
#include <thread>

#include "common/inproc_transport.h"
#include "common/metrics.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::worker {
namespace {

using ::testing::ElementsAre;
using Source = models::Batch::Source;

constexpr const char* kSchema = R"(
fields:
  - {name: user_id, type: categorical}
  - {name: price, type: numeric}
)";

void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

protocol::DataChunkInfo Chunk(uint64_t id, std::string path, uint64_t begin, uint64_t end) {
  protocol::DataChunkInfo c;
  c.id = id;
  c.path = std::move(path);
  c.begin = begin;
  c.end = end;
  return c;
}
protocol::DataChunkInfo Retry() {
  protocol::DataChunkInfo c;
  c.retry = true;
  return c;
}
protocol::DataChunkInfo Done() {
  protocol::DataChunkInfo c;
  c.done = true;
  return c;
}

// Replies from a script; once it is used up, a request waits (a long poll
// that never ends) until Cancel().
class ScriptedSource : public ChunkSource {
 public:
  explicit ScriptedSource(std::deque<protocol::DataChunkInfo> script) : script_(std::move(script)) {}

  StatusOr<protocol::DataChunkInfo> Next(std::optional<uint64_t> completed) override {
    MutexLock lock(&mu_);
    requests_.push_back(completed);
    if (!script_.empty()) {
      protocol::DataChunkInfo reply = script_.front();
      script_.pop_front();
      return reply;
    }
    waiting_ = true;
    mu_.Await(absl::Condition(&cancelled_));
    return CancelledError("cancelled");
  }
  void Cancel() override {
    MutexLock lock(&mu_);
    cancelled_ = true;
  }
  bool WaitUntilWaiting() {
    MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&waiting_), absl::Seconds(10));
  }
  std::vector<std::optional<uint64_t>> requests() {
    MutexLock lock(&mu_);
    return requests_;
  }

 private:
  Mutex mu_;
  std::deque<protocol::DataChunkInfo> script_ TESSERA_GUARDED_BY(mu_);
  std::vector<std::optional<uint64_t>> requests_ TESSERA_GUARDED_BY(mu_);
  bool waiting_ TESSERA_GUARDED_BY(mu_) = false;
  bool cancelled_ TESSERA_GUARDED_BY(mu_) = false;
};

// (chunk id, end offset)
std::pair<uint64_t, uint64_t> Pos(const Source& s) { return {s.chunk_id, s.end_offset}; }

struct Emitted {
  int size;
  std::pair<uint64_t, uint64_t> source;
};

TEST(DataFeedTest, BatchesCarryTheirSourcePositions) {
  testing::TempDir dir;
  // a.tsv: CRLF lines, a bad line, no final newline. Batches of 2.
  const std::string a0 = "1\tu1\t1\r\n", a1 = "0\tu2\t2\r\n", bad = "7\tu3\t3\r\n", a2 = "1\tu4\t4\r\n",
                    a3 = "0\tu5\t5\r\n", a4 = "1\tu6\t6";
  WriteFile(dir.File("a.tsv"), a0 + a1 + bad + a2 + a3 + a4);
  // b.tsv from byte 3 to 12: the lines starting in it ("1\tv2" at 5, "0\tv3" at 10).
  WriteFile(dir.File("b.tsv"), "1\tv1\n1\tv2\n0\tv3\n1\tv4\n");
  ASSERT_OK_AND_ASSIGN(models::Schema schema, models::Schema::Parse(kSchema, "test"));
  auto script = std::make_unique<ScriptedSource>(std::deque<protocol::DataChunkInfo>{
      Chunk(3, dir.File("a.tsv"), 0, models::kToEndOfFile), Retry(), Retry(),
      Chunk(7, dir.File("b.tsv"), 3, 12), Done()});
  ScriptedSource* source = script.get();
  DataFeed feed({.batch_size = 2, .prefetch_batches = 1, .max_bad_ratio = 1.0}, &schema, std::move(script));
  ASSERT_OK(feed.Start());
  std::vector<Emitted> got;
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<models::Batch> batch, feed.Next());
    if (batch == nullptr) break;
    got.push_back({batch->size, Pos(batch->source)});
  }
  const uint64_t after_a1 = a0.size() + a1.size(), after_a3 = after_a1 + bad.size() + a2.size() + a3.size();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].size, 2);
  EXPECT_EQ(got[0].source, Pos({3, after_a1}));
  EXPECT_EQ(got[1].size, 2);
  EXPECT_EQ(got[1].source, Pos({3, after_a3}));  // the bad line is consumed with it
  EXPECT_EQ(got[2].size, 1);
  EXPECT_EQ(got[2].source, Pos({3, models::kToEndOfFile}));  // the chunk's end
  EXPECT_EQ(got[3].size, 2);
  EXPECT_EQ(got[3].source, Pos({7, 12}));
  ASSERT_TRUE(feed.final_position().has_value());
  EXPECT_EQ(Pos(*feed.final_position()), Pos({7, 12}));
  EXPECT_EQ(feed.stats().bad_lines, 1u);
  // Retries repeat the last chunk read.
  EXPECT_THAT(source->requests(), ElementsAre(std::nullopt, 3u, 3u, 3u, 7u));
}

TEST(DataFeedTest, StopIsPromptWhileTheSchedulerHoldsTheRequest) {
  ASSERT_OK_AND_ASSIGN(models::Schema schema, models::Schema::Parse(kSchema, "test"));
  auto script = std::make_unique<ScriptedSource>(std::deque<protocol::DataChunkInfo>{Retry()});
  ScriptedSource* source = script.get();
  DataFeed feed({}, &schema, std::move(script));
  ASSERT_OK(feed.Start());
  ASSERT_TRUE(source->WaitUntilWaiting());
  const auto start = std::chrono::steady_clock::now();
  feed.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<models::Batch> batch, feed.Next());
  EXPECT_EQ(batch, nullptr);
  EXPECT_FALSE(feed.final_position().has_value());
}

// The real source over an in-process transport, against a fake scheduler
// that answers `retry`, then a chunk, then holds the request.
class SchedulerChunkSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(scheduler_transport_->Bind("mem://scheduler").status());
    ASSERT_OK(worker_transport_->Bind("mem://worker").status());
    ASSERT_OK(worker_transport_->Connect(kSchedulerId, "mem://scheduler"));
    ASSERT_OK(scheduler_transport_->Connect(kWorker, "mem://worker"));
    scheduler_.set_self(kSchedulerId);
    worker_.set_self(kWorker);
    scheduler_.Start();
    worker_.Start();
  }
  void TearDown() override {
    worker_.Stop();
    scheduler_.Stop();
  }

  void OnRequest(protocol::DecodedMessage msg) {
    ASSERT_EQ(msg.type(), protocol::MessageType::kDataRequest);
    MutexLock lock(&mu_);
    ++requests_;
    if (requests_ == 1) {
      (void)scheduler_.Reply(msg, [](const protocol::Header& h) { return EncodeDataChunkReply(h, Retry()); });
    } else if (requests_ == 2) {
      (void)scheduler_.Reply(msg, [](const protocol::Header& h) {
        return EncodeDataChunkReply(h, Chunk(5, "data/x.tsv", 0, 99));
      });
    }  // later requests are held
  }
  bool WaitForRequests(int n) {
    MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requests_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }

  static constexpr NodeId kWorker{Role::kWorker, 0};
  InProcNetwork net_;
  MetricsRegistry metrics_;
  std::unique_ptr<Transport> scheduler_transport_ = net_.NewTransport();
  std::unique_ptr<Transport> worker_transport_ = net_.NewTransport();
  protocol::Messenger scheduler_{{scheduler_transport_.get(), "t", &metrics_, "scheduler"},
                                 [this](protocol::DecodedMessage msg) { OnRequest(std::move(msg)); }};
  protocol::Messenger worker_{{worker_transport_.get(), "t", &metrics_, "worker"}, [](protocol::DecodedMessage) {}};
  Mutex mu_;
  int requests_ TESSERA_GUARDED_BY(mu_) = 0;
};

TEST_F(SchedulerChunkSourceTest, RepliesThenCancelDuringALongPoll) {
  std::unique_ptr<ChunkSource> source = NewSchedulerChunkSource(&worker_, std::chrono::seconds(30));
  ASSERT_OK_AND_ASSIGN(protocol::DataChunkInfo first, source->Next(std::nullopt));
  EXPECT_TRUE(first.retry);
  ASSERT_OK_AND_ASSIGN(protocol::DataChunkInfo second, source->Next(std::nullopt));
  EXPECT_EQ(second, Chunk(5, "data/x.tsv", 0, 99));
  std::thread canceller([&] {
    ASSERT_TRUE(WaitForRequests(3));
    source->Cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(source->Next(5).status().code(), StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  canceller.join();
  EXPECT_EQ(source->Next(5).status().code(), StatusCode::kCancelled);
}

TEST_F(SchedulerChunkSourceTest, NoReplyInTimeIsDeadlineExceeded) {
  {
    MutexLock lock(&mu_);
    requests_ = 2;  // the fake scheduler holds every request
  }
  std::unique_ptr<ChunkSource> source = NewSchedulerChunkSource(&worker_, std::chrono::milliseconds(20));
  EXPECT_EQ(source->Next(std::nullopt).status().code(), StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace tessera::worker
