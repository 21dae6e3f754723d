#include "scheduler/data_assigner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "tests/testing/status_matchers.h"

namespace tessera::scheduler {
namespace {

using ::testing::ElementsAre;
using Kind = NextChunk::Kind;

std::vector<DataChunk> Chunks(int n) {
  std::vector<DataChunk> c;
  for (int i = 0; i < n; ++i) c.push_back({"f.tsv", i * 100ull, (i + 1) * 100ull});
  return c;
}

// Hands out and trains everything `worker` can get; returns the chunk ids.
std::vector<uint64_t> Drain(DataAssigner* a, int worker) {
  std::vector<uint64_t> ids;
  while (true) {
    NextChunk next = a->Next(worker, std::nullopt);
    if (!next.has_chunk()) return ids;
    ids.push_back(next.assignment.id);
    EXPECT_TRUE(a->Trained(worker, next.assignment.id, next.assignment.chunk.end));
  }
}

TEST(DataAssignerTest, DynamicHandsEveryChunkOncePerEpoch) {
  DataAssigner a(Chunks(5), 2, 3, false);
  EXPECT_EQ(a.total(), 10u);
  std::multiset<uint64_t> begins;
  int w = 0;
  for (int i = 0; i < 20; ++i, w = (w + 1) % 3) {
    NextChunk next = a.Next(w, std::nullopt);
    if (!next.has_chunk()) {
      EXPECT_EQ(next.kind, Kind::kFinished);
      continue;
    }
    begins.insert(next.assignment.chunk.begin);
    EXPECT_FALSE(a.finished());
    a.Trained(w, next.assignment.id, next.assignment.chunk.end);
  }
  EXPECT_EQ(begins.size(), 10u);
  for (uint64_t b = 0; b < 500; b += 100) EXPECT_EQ(begins.count(b), 2u);
  EXPECT_TRUE(a.finished());
  EXPECT_EQ(a.completed(), 10u);
  EXPECT_EQ(a.bytes_completed(), 1000u);
  EXPECT_EQ(a.bytes_total(), 1000u);
}

TEST(DataAssignerTest, StaticOrderIsAFunctionOfWorkerCount) {
  DataAssigner a(Chunks(4), 1, 2, true);
  EXPECT_EQ(a.Next(1, std::nullopt).assignment.chunk.begin, 100u);
  EXPECT_EQ(a.Next(0, std::nullopt).assignment.chunk.begin, 0u);
  NextChunk second_of_1 = a.Next(1, 1);
  ASSERT_TRUE(second_of_1.has_chunk());
  EXPECT_EQ(second_of_1.assignment.chunk.begin, 300u);
  // The transitional conversion for callers of the old optional API.
  std::optional<Assignment> old = a.Next(1, 3);
  EXPECT_FALSE(old.has_value());
}

TEST(DataAssignerTest, RequeuedChunksOfADeadWorkerGoToOthersFromTheirTrainedOffset) {
  DataAssigner a(Chunks(2), 1, 2, false);
  NextChunk lost = a.Next(1, std::nullopt);
  ASSERT_TRUE(lost.has_chunk());
  EXPECT_TRUE(a.Trained(1, lost.assignment.id, 40));
  a.Requeue(1);
  EXPECT_FALSE(a.Trained(1, lost.assignment.id, 60));  // no longer its chunk
  NextChunk again = a.Next(0, std::nullopt);
  ASSERT_TRUE(again.has_chunk());
  EXPECT_EQ(again.assignment.id, lost.assignment.id);
  EXPECT_EQ(again.assignment.chunk.begin, 40u);  // the untrained rest only
  EXPECT_EQ(again.assignment.chunk.end, 100u);
  EXPECT_FALSE(a.finished());
  NextChunk last = a.Next(0, again.assignment.id);
  ASSERT_TRUE(last.has_chunk());
  EXPECT_EQ(a.Next(0, last.assignment.id).kind, Kind::kFinished);
  EXPECT_FALSE(a.finished());  // handed out, not trained
  EXPECT_TRUE(a.Trained(0, last.assignment.id, 200));
  EXPECT_TRUE(a.finished());
  EXPECT_EQ(a.bytes_completed(), 200u);
}

TEST(DataAssignerTest, StaticOrderSharesADeadWorkersQueueOut) {
  DataAssigner a({.num_workers = 2, .static_order = true, .streaming = true});
  ASSERT_OK(a.AddChunks(Chunks(2)));  // ids 0 and 1
  a.Requeue(1);
  ASSERT_OK(a.AddChunks({{"g.tsv", 0, 10}, {"h.tsv", 0, 10}}));  // ids 2 and 3
  EXPECT_THAT(Drain(&a, 0), ElementsAre(0, 1, 2, 3));
  // Back again: it gets its share of new chunks.
  EXPECT_EQ(a.Next(1, std::nullopt).kind, Kind::kNotYet);
  ASSERT_OK(a.AddChunks({{"i.tsv", 0, 10}, {"j.tsv", 0, 10}}));  // ids 4 and 5
  EXPECT_THAT(Drain(&a, 1), ElementsAre(5));
}

TEST(DataAssignerTest, StaticOrderSurvivesTheDeathOfWorkerZero) {
  DataAssigner a(Chunks(6), 1, 3, true);  // worker w: ids w and w + 3
  NextChunk held = a.Next(0, std::nullopt);
  ASSERT_EQ(held.assignment.id, 0u);
  EXPECT_TRUE(a.Trained(0, 0, 30));
  a.Requeue(0);
  // Worker 1, the lowest live one, inherits worker 0's chunks: the
  // partially trained one first, from its trained offset.
  NextChunk first = a.Next(1, std::nullopt);
  ASSERT_TRUE(first.has_chunk());
  EXPECT_EQ(first.assignment.id, 0u);
  EXPECT_EQ(first.assignment.chunk.begin, 30u);
  // Worker 1 dies too: worker 2 takes what is left of both.
  a.Requeue(1);
  EXPECT_THAT(Drain(&a, 2), ElementsAre(0, 2, 5, 1, 4, 3));
  EXPECT_EQ(a.Next(2, std::nullopt).kind, Kind::kFinished);
}

TEST(DataAssignerTest, StreamingSaysNotYetUntilClosed) {
  DataAssigner a({.num_workers = 2, .streaming = true});
  EXPECT_FALSE(a.closed());
  EXPECT_EQ(a.Next(0, std::nullopt).kind, Kind::kNotYet);
  ASSERT_OK(a.AddChunks({{"s/seg-1.tsv", 0, 10}}));
  ASSERT_OK(a.AddChunks({{"s/seg-2.tsv", 0, 20}, {"s/seg-3.tsv", 0, kChunkToEndOfFile}}));
  EXPECT_EQ(a.total(), 3u);
  EXPECT_EQ(a.bytes_total(), 30u);  // the open-ended chunk counts no bytes
  EXPECT_THAT(Drain(&a, 1), ElementsAre(0, 1, 2));
  EXPECT_EQ(a.Next(0, std::nullopt).kind, Kind::kNotYet);
  EXPECT_FALSE(a.finished());
  a.Close();
  EXPECT_EQ(a.Next(0, std::nullopt).kind, Kind::kFinished);
  EXPECT_TRUE(a.finished());
  EXPECT_EQ(a.AddChunks({{"s/late.tsv", 0, 1}}).code(), StatusCode::kFailedPrecondition);
}

TEST(DataAssignerTest, TrainedPositionCoversEveryEarlierChunkOfTheWorker) {
  DataAssigner a(Chunks(4), 1, 2, false);
  for (uint64_t id : {0, 1, 2}) EXPECT_EQ(a.Next(0, std::nullopt).assignment.id, id);
  EXPECT_EQ(a.Next(1, std::nullopt).assignment.id, 3u);
  EXPECT_FALSE(a.Trained(1, 2, 250));  // not worker 1's
  EXPECT_TRUE(a.Trained(0, 2, 250));
  EXPECT_EQ(a.completed(), 2u);
  EXPECT_EQ(a.bytes_completed(), 250u);
  EXPECT_TRUE(a.Trained(0, 2, 240));  // positions never go back
  EXPECT_EQ(a.bytes_completed(), 250u);
  EXPECT_FALSE(a.Trained(0, 0, 100));  // done already
  const DataAssignerState state = a.Export();
  ASSERT_EQ(state.chunks.size(), 2u);
  EXPECT_EQ(state.chunks[0], (DataAssignerState::Chunk{2, 0, "f.tsv", 200, 250, 300}));
  EXPECT_EQ(state.chunks[1], (DataAssignerState::Chunk{3, 0, "f.tsv", 300, 300, 400}));
}

TEST(DataAssignerTest, WatermarkIsTheLastFileOfTheTrainedPrefix) {
  DataAssigner a({.num_workers = 2, .streaming = true});
  ASSERT_OK(a.AddChunks({{"d/a", 0, 10}, {"d/a", 10, 20}, {"d/b", 0, 5}, {"d/c", 0, 5}}));
  const uint64_t a0 = a.Next(0, std::nullopt).assignment.id;
  const uint64_t a1 = a.Next(1, std::nullopt).assignment.id;
  const uint64_t b = a.Next(1, std::nullopt).assignment.id;
  EXPECT_TRUE(a.Trained(1, b, 5));  // a's second chunk and b
  DataAssignerState state = a.Export();
  EXPECT_EQ(state.watermark, "");
  EXPECT_THAT(state.stream_files,
              ElementsAre(DataAssignerState::StreamFile{"d/a", false}, DataAssignerState::StreamFile{"d/b", true},
                          DataAssignerState::StreamFile{"d/c", false}));
  EXPECT_EQ(state.next_id, 4u);
  EXPECT_TRUE(a.Trained(0, a0, 10));
  state = a.Export();
  EXPECT_EQ(state.watermark, "d/b");
  EXPECT_THAT(state.stream_files, ElementsAre(DataAssignerState::StreamFile{"d/c", false}));
  ASSERT_EQ(state.chunks.size(), 1u);
  EXPECT_EQ(state.chunks[0].path, "d/c");
  (void)a1;
}

TEST(DataAssignerTest, ExportLeavesUntouchedEpochsToTheEpochStructure) {
  DataAssigner a(Chunks(3), 3, 1, false);
  NextChunk first = a.Next(0, std::nullopt);
  EXPECT_TRUE(a.Trained(0, first.assignment.id, 50));
  DataAssignerState state = a.Export();
  EXPECT_EQ(state.epochs, 3u);
  EXPECT_EQ(state.first_untouched_epoch, 1u);
  EXPECT_EQ(state.chunks.size(), 3u);  // epoch 0 only
  DataAssigner b(Chunks(3), 3, 2, true);
  ASSERT_OK(b.Restore(state));
  EXPECT_EQ(b.total(), 9u);
  EXPECT_EQ(b.Export(), state);
  NextChunk resumed = b.Next(0, std::nullopt);
  EXPECT_EQ(resumed.assignment, (Assignment{0, 0, {"f.tsv", 50, 100}}));
  EXPECT_EQ(b.Next(1, std::nullopt).assignment.id, 1u);
  // Epoch 2 re-created with its ids: chunk 7 (epoch 2, index 1) is worker 1's.
  std::vector<uint64_t> ids = Drain(&b, 1);
  EXPECT_THAT(ids, ElementsAre(3, 5, 7));
}

TEST(DataAssignerTest, StateRoundTripsThroughJson) {
  DataAssigner a({.chunks = Chunks(2), .epochs = 2, .num_workers = 2, .streaming = true});
  ASSERT_OK(a.AddChunks({{"d/x.tsv.gz", 0, kChunkToEndOfFile}, {"d/y", 0, 7}}));
  a.Next(0, std::nullopt);
  NextChunk n = a.Next(0, std::nullopt);
  EXPECT_TRUE(a.Trained(0, n.assignment.id, 130));
  const DataAssignerState state = a.Export();
  const std::string text = DataAssignerStateToJson(state);
  ASSERT_OK_AND_ASSIGN(DataAssignerState back, DataAssignerStateFromJson(text));
  EXPECT_EQ(back, state);
  EXPECT_EQ(DataAssignerStateFromJson("[1]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DataAssignerStateFromJson("{").status().code(), StatusCode::kInvalidArgument);
  std::string bad = text;
  bad.replace(bad.find("\"trained\":130"), 13, "\"trained\":999");
  EXPECT_EQ(DataAssignerStateFromJson(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.Restore(state).code(), StatusCode::kFailedPrecondition);
}

// ---- resume trains exactly the untrained bytes -----------------------------

// Files of random lines (line starts known), cut into chunks at fixed sizes
// that ignore line boundaries, as SplitIntoChunks does.
struct Corpus {
  std::map<std::string, std::vector<uint64_t>> line_starts;  // plus the size last
  std::vector<DataChunk> chunks;

  explicit Corpus(std::mt19937* rng) {
    for (const char* path : {"a.tsv", "b.tsv", "c.tsv"}) {
      std::vector<uint64_t>& starts = line_starts[path];
      uint64_t pos = 0;
      const int lines = std::uniform_int_distribution<int>(1, 40)(*rng);
      for (int i = 0; i < lines; ++i) {
        starts.push_back(pos);
        pos += std::uniform_int_distribution<uint64_t>(1, 30)(*rng);
      }
      starts.push_back(pos);
      for (uint64_t b = 0; b < pos; b += 64) {
        chunks.push_back({path, b, pos - b <= 64 ? kChunkToEndOfFile : b + 64});
      }
    }
  }
  // The starts of the lines of [begin, end) (Hadoop split semantics).
  std::vector<uint64_t> Lines(const DataChunk& c) const {
    const std::vector<uint64_t>& s = line_starts.at(c.path);
    std::vector<uint64_t> out;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      if (s[i] >= c.begin && s[i] < c.end) out.push_back(s[i]);
    }
    return out;
  }
  uint64_t LineEnd(const std::string& path, uint64_t start) const {
    const std::vector<uint64_t>& s = line_starts.at(path);
    return *std::upper_bound(s.begin(), s.end(), start);
  }
};

using Line = std::tuple<uint32_t, std::string, uint64_t>;  // epoch, path, start

// Workers that read up to two chunks ahead and train random batches of
// lines, reporting positions as the trainer would.
class Simulation {
 public:
  Simulation(const Corpus* corpus, DataAssigner* assigner, int workers, uint64_t seed)
      : corpus_(corpus), assigner_(assigner), held_(workers), rng_(seed) {}

  // One step of a random worker; false when every worker is finished.
  bool Step() {
    std::vector<int> active;
    for (int w = 0; w < static_cast<int>(held_.size()); ++w) {
      if (!finished_.count(w)) active.push_back(w);
    }
    if (active.empty()) return false;
    const int w = active[std::uniform_int_distribution<size_t>(0, active.size() - 1)(rng_)];
    StepWorker(w);
    return true;
  }
  void StepWorker(int w) {
    std::deque<Held>& held = held_[w];
    while (held.size() < 2) {
      NextChunk next = assigner_->Next(w, std::nullopt);
      if (next.kind == Kind::kNotYet && held.empty()) return;  // idles
      if (!next.has_chunk()) break;
      held.push_back({next.assignment, corpus_->Lines(next.assignment.chunk), 0});
    }
    if (held.empty()) {
      finished_.insert(w);
      return;
    }
    Held& h = held.front();
    const size_t batch = std::uniform_int_distribution<size_t>(1, 4)(rng_);
    const size_t stop = std::min(h.lines.size(), h.next + batch);
    for (; h.next < stop; ++h.next) {
      trained_.emplace_back(h.assignment.epoch, h.assignment.chunk.path, h.lines[h.next]);
      per_worker_[w].push_back(trained_.back());
    }
    uint64_t offset = h.assignment.chunk.end;  // the chunk's last batch
    if (h.next < h.lines.size()) {
      offset = std::min(corpus_->LineEnd(h.assignment.chunk.path, h.lines[h.next - 1]), offset);
    }
    EXPECT_TRUE(assigner_->Trained(w, h.assignment.id, offset));
    if (h.next == h.lines.size()) held.pop_front();
  }
  void Run(int steps) {
    for (int i = 0; i < steps && Step(); ++i) {
    }
  }

  const std::vector<Line>& trained() const { return trained_; }
  const std::vector<Line>& trained_by(int w) { return per_worker_[w]; }

 private:
  struct Held {
    Assignment assignment;
    std::vector<uint64_t> lines;
    size_t next = 0;
  };
  const Corpus* corpus_;
  DataAssigner* assigner_;
  std::vector<std::deque<Held>> held_;
  std::set<int> finished_;
  std::mt19937_64 rng_;
  std::vector<Line> trained_;
  std::map<int, std::vector<Line>> per_worker_;
};

struct ResumeCase {
  bool static_order;
  int workers_before;
  int workers_after;
};

void PrintTo(const ResumeCase& c, std::ostream* os) {
  *os << (c.static_order ? "static " : "dynamic ") << c.workers_before << " -> " << c.workers_after << " workers";
}

class DataAssignerResumeTest : public ::testing::TestWithParam<ResumeCase> {};

TEST_P(DataAssignerResumeTest, ResumeTrainsEveryLineExactlyOnce) {
  const ResumeCase& p = GetParam();
  constexpr uint32_t kEpochs = 2;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    const Corpus corpus(&rng);
    // Half the static input up front; a stream appended in two parts.
    DataAssigner before({.chunks = corpus.chunks, .epochs = kEpochs, .num_workers = p.workers_before,
                         .static_order = p.static_order, .streaming = true});
    ASSERT_OK(before.AddChunks(corpus.chunks));
    Simulation first(&corpus, &before, p.workers_before, seed);
    first.Run(static_cast<int>(seed * 3));
    ASSERT_OK_AND_ASSIGN(DataAssignerState state,
                         DataAssignerStateFromJson(DataAssignerStateToJson(before.Export())));

    DataAssigner after({.num_workers = p.workers_after, .static_order = p.static_order, .streaming = true});
    ASSERT_OK(after.Restore(state));
    ASSERT_OK(after.AddChunks(corpus.chunks));  // the stream goes on
    after.Close();
    Simulation second(&corpus, &after, p.workers_after, seed + 1000);
    second.Run(1 << 20);
    EXPECT_TRUE(after.finished()) << "seed " << seed;

    std::multiset<Line> got(first.trained().begin(), first.trained().end());
    got.insert(second.trained().begin(), second.trained().end());
    std::multiset<Line> want;
    for (uint32_t e = 0; e < kEpochs + 2; ++e) {  // 2 static epochs, the stream twice
      for (const auto& [path, starts] : corpus.line_starts) {
        for (size_t i = 0; i + 1 < starts.size(); ++i) want.emplace(e < kEpochs ? e : 0, path, starts[i]);
      }
    }
    ASSERT_EQ(got, want) << "seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Orders, DataAssignerResumeTest,
                         ::testing::Values(ResumeCase{false, 2, 2}, ResumeCase{false, 2, 3},
                                           ResumeCase{true, 2, 2}, ResumeCase{true, 2, 1},
                                           ResumeCase{true, 3, 2}));

// Static order with the same worker count: after the restore each worker
// trains the same lines in the same order as in the uninterrupted run.
TEST(DataAssignerResumeTest, StaticOrderResumesIdentically) {
  std::mt19937 rng(5);
  const Corpus corpus(&rng);
  const DataAssignerOptions options{.chunks = corpus.chunks, .epochs = 2, .num_workers = 2, .static_order = true};
  DataAssigner whole(options), cut(options);
  Simulation a(&corpus, &whole, 2, 9), b(&corpus, &cut, 2, 9);
  // Round-robin steps (as sync training does), 11 of them before the cut.
  for (int i = 0; i < 11; ++i) {
    a.StepWorker(i % 2);
    b.StepWorker(i % 2);
  }
  DataAssigner resumed(options);
  ASSERT_OK(resumed.Restore(cut.Export()));
  Simulation c(&corpus, &resumed, 2, 9);
  const size_t done0 = a.trained_by(0).size(), done1 = a.trained_by(1).size();
  for (int i = 0; i < 4000; ++i) {
    a.StepWorker(i % 2);
    c.StepWorker(i % 2);
  }
  ASSERT_TRUE(whole.finished());
  ASSERT_TRUE(resumed.finished());
  EXPECT_EQ(std::vector<Line>(a.trained_by(0).begin() + done0, a.trained_by(0).end()), c.trained_by(0));
  EXPECT_EQ(std::vector<Line>(a.trained_by(1).begin() + done1, a.trained_by(1).end()), c.trained_by(1));
}

}  // namespace
}  // namespace tessera::scheduler
