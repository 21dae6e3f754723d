// The online joiner (feedback/joiner.h): attribution window, late,
// duplicate and unmatched events, reading a backlog, the memory cap, and
// exactly-once output across a restart at every commit stage.
#include "serving/feedback/joiner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "serving/feedback/event_log.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::feedback {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kWindowMs = 600000;
constexpr int64_t kGraceMs = 5000;

class JoinerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.event_dir = dir_.File("events");
    options_.output_dir = dir_.File("joined");
    options_.window_ms = kWindowMs;
    options_.grace_ms = kGraceMs;
    fs::create_directories(options_.event_dir);
    t0_ = clock_.UnixMillis();
  }

  // Appends records to event log file `seq`.
  void Append(uint64_t seq, const std::string& text) {
    std::ofstream out(fs::path(options_.event_dir) / EventLogFileName(seq), std::ios::app);
    out << text;
  }
  static std::string Impression(int64_t ms, const std::string& request, const std::string& item,
                                const std::string& user = "u1", const std::string& arm = "a") {
    return FormatImpression({.unix_ms = ms,
                             .request_id = request,
                             .item_id = item,
                             .arm = arm,
                             .model_version = "7",
                             .score = 0.25f,
                             .features = absl::StrCat(user, "\t", item, "\t3.5")});
  }
  static std::string Click(int64_t ms, const std::string& request, const std::string& item,
                           int64_t impression_ms, const std::string& event = "click",
                           const std::string& arm = "a") {
    return FormatFeedback({.unix_ms = ms,
                           .request_id = request,
                           .item_id = item,
                           .event = event,
                           .impression_unix_ms = impression_ms,
                           .arm = arm});
  }
  std::unique_ptr<Joiner> Open() {
    StatusOr<std::unique_ptr<Joiner>> j = Joiner::Open(options_, &clock_, &metrics_);
    EXPECT_OK(j.status());
    return j.ok() ? *std::move(j) : nullptr;
  }
  void AdvanceTo(int64_t unix_ms) {
    clock_.AdvanceTime(std::chrono::milliseconds(unix_ms - clock_.UnixMillis()));
  }
  // Every committed row, in output file order.
  std::vector<std::string> Rows() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(options_.output_dir)) {
      const std::string name = e.path().filename().string();
      if (name[0] != '.') names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    std::vector<std::string> rows;
    for (const std::string& name : names) {
      std::ifstream in(fs::path(options_.output_dir) / name);
      for (std::string line; std::getline(in, line);) rows.push_back(line);
    }
    return rows;
  }

  testing::TempDir dir_;
  SimulatedClock clock_;
  MetricsRegistry metrics_;
  JoinerOptions options_;
  int64_t t0_ = 0;
};

TEST_F(JoinerTest, AClickWithinTheWindowIsWrittenAtOnceAsAPositive) {
  Append(1, Impression(t0_, "r1", "i1") + Impression(t0_, "r1", "i2") +
                Click(t0_ + 1000, "r1", "i2", t0_));
  auto joiner = Open();
  ASSERT_OK_AND_ASSIGN(size_t rows, joiner->Step());
  EXPECT_EQ(rows, 1u);
  EXPECT_EQ(Rows(), std::vector<std::string>{"1\tu1\ti2\t3.5"});
  EXPECT_EQ(joiner->open_impressions(), 2u);  // i1 open; i2 kept to spot duplicates
  EXPECT_EQ(joiner->stats().positives, 1u);
}

TEST_F(JoinerTest, AnImpressionWithoutClickIsANegativeOnceTheWindowCloses) {
  Append(1, Impression(t0_, "r1", "i1"));
  auto joiner = Open();
  ASSERT_OK_AND_ASSIGN(size_t rows, joiner->Step());
  EXPECT_EQ(rows, 0u);
  AdvanceTo(t0_ + kWindowMs + kGraceMs - 1);
  ASSERT_OK_AND_ASSIGN(rows, joiner->Step());
  EXPECT_EQ(rows, 0u);
  AdvanceTo(t0_ + kWindowMs + kGraceMs);
  ASSERT_OK_AND_ASSIGN(rows, joiner->Step());
  EXPECT_EQ(rows, 1u);
  EXPECT_EQ(Rows(), std::vector<std::string>{"0\tu1\ti1\t3.5"});
  EXPECT_EQ(joiner->open_impressions(), 0u);
}

TEST_F(JoinerTest, LateEventsAreCountedAndNeverLabel) {
  Append(1, Impression(t0_, "r1", "i1") + Impression(t0_, "r2", "i1"));
  auto joiner = Open();
  ASSERT_OK(joiner->Step().status());
  // r2's click comes after the window while r2 is still open (the joiner
  // was behind): late, and r2 stays a negative.
  Append(1, Click(t0_ + kWindowMs + 1, "r2", "i1", t0_));
  ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(joiner->stats().late, 1u);
  AdvanceTo(t0_ + kWindowMs + kGraceMs);
  ASSERT_OK(joiner->Step().status());
  // r1's click after it was closed: late too.
  Append(1, Click(t0_ + kWindowMs + kGraceMs + 1, "r1", "i1", t0_));
  ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(joiner->stats().late, 2u);
  EXPECT_EQ(joiner->stats().positives, 0u);
  EXPECT_EQ(Rows(), (std::vector<std::string>{"0\tu1\ti1\t3.5", "0\tu1\ti1\t3.5"}));
  EXPECT_NE(joiner->StatsLine().find("late 2"), std::string::npos) << joiner->StatsLine();
  EXPECT_NE(metrics_.SerializeText().find("tessera_join_late_total 2"), std::string::npos);
}

TEST_F(JoinerTest, DuplicateAndUnmatchedEventsAreCounted) {
  Append(1, Impression(t0_, "r1", "i1") + Click(t0_ + 10, "r1", "i1", t0_) +
                Click(t0_ + 20, "r1", "i1", t0_) + Click(t0_ + 30, "r1", "i1", t0_, "purchase") +
                Click(t0_ + 40, "r9", "i1", t0_) + Click(t0_ + 50, "r1", "i7", t0_));
  auto joiner = Open();
  ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(joiner->stats().positives, 1u);
  EXPECT_EQ(joiner->stats().duplicate, 2u);
  EXPECT_EQ(joiner->stats().unmatched, 2u);
  // The clicked impression is not written again as a negative.
  AdvanceTo(t0_ + kWindowMs + kGraceMs);
  ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(Rows(), std::vector<std::string>{"1\tu1\ti1\t3.5"});
}

// join.arms: only the kept arms' impressions and feedback are joined; the
// others' are counted as other_arm (never unmatched). Feedback from a log
// older than the arm column (no arm) is matched as before.
TEST_F(JoinerTest, OnlyTheKeptArmsAreJoined) {
  options_.arms = {"b"};
  Append(1, Impression(t0_, "r1", "i1", "u1", "a") + Impression(t0_, "r2", "i1", "u2", "b") +
                Impression(t0_, "r3", "i1", "u3", "b") +
                Click(t0_ + 10, "r1", "i1", t0_, "click", "a") +
                Click(t0_ + 10, "r2", "i1", t0_, "click", "b") +
                "F\t" + std::to_string(t0_ + 20) + "\tr3\ti1\tclick\t" + std::to_string(t0_) + "\n");
  auto joiner = Open();
  ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(Rows(), (std::vector<std::string>{"1\tu2\ti1\t3.5", "1\tu3\ti1\t3.5"}));
  EXPECT_EQ(joiner->stats().impressions, 3u);
  EXPECT_EQ(joiner->stats().feedback, 3u);
  EXPECT_EQ(joiner->stats().other_arm, 2u);
  EXPECT_EQ(joiner->stats().unmatched, 0u);
  EXPECT_EQ(joiner->open_impressions(), 2u);
  EXPECT_NE(joiner->StatsLine().find("other_arm 2"), std::string::npos) << joiner->StatsLine();
  EXPECT_NE(metrics_.SerializeText().find("tessera_join_other_arm_total 2"), std::string::npos);
  // The counter survives a restart (the checkpoint holds it).
  joiner.reset();
  EXPECT_EQ(Open()->stats().other_arm, 2u);
}

TEST_F(JoinerTest, APurchaseAloneLabelsPositive) {
  Append(1, Impression(t0_, "r1", "i1") + Click(t0_ + 10, "r1", "i1", t0_, "purchase"));
  auto joiner = Open();
  ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(Rows(), std::vector<std::string>{"1\tu1\ti1\t3.5"});
}

TEST_F(JoinerTest, ABacklogIsReadBeforeWindowsCloseOnTheClock) {
  // The joiner starts long after the events: the click, a few lines on,
  // must still count although the clock is past the window.
  Append(1, Impression(t0_, "r1", "i1") + Impression(t0_, "r2", "i1") +
                Click(t0_ + kWindowMs, "r1", "i1", t0_));
  AdvanceTo(t0_ + 10 * kWindowMs);
  options_.max_lines_per_step = 1;
  auto joiner = Open();
  for (int i = 0; i < 4; ++i) ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(Rows(), (std::vector<std::string>{"1\tu1\ti1\t3.5", "0\tu1\ti1\t3.5"}));
}

TEST_F(JoinerTest, OpenImpressionsBeyondTheCapAreFlushedAsNegatives) {
  options_.max_open = 2;
  Append(1, Impression(t0_, "r1", "i1") + Impression(t0_ + 1, "r2", "i1") +
                Impression(t0_ + 2, "r3", "i1") + Click(t0_ + 3, "r1", "i1", t0_));
  auto joiner = Open();
  ASSERT_OK_AND_ASSIGN(size_t rows, joiner->Step());
  EXPECT_EQ(rows, 1u);
  EXPECT_EQ(joiner->open_impressions(), 2u);
  EXPECT_EQ(joiner->stats().evicted, 1u);
  EXPECT_EQ(joiner->stats().unmatched, 1u);  // r1's click came after its eviction
  EXPECT_EQ(Rows(), std::vector<std::string>{"0\tu1\ti1\t3.5"});
}

TEST_F(JoinerTest, BadLinesAndATornTailAreSkippedAndCounted) {
  Append(1, Impression(t0_, "r1", "i1") + "garbage\n" + "I\tnot-a-time\tr\ti\ta\tv\t0.1\tx\n" +
                "I\t123\tr1");  // cut by a crash
  Append(2, Impression(t0_, "r2", "i1") + Click(t0_ + 1, "r2", "i1", t0_));
  auto joiner = Open();
  ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(joiner->stats().bad_lines, 3u);
  EXPECT_EQ(joiner->stats().impressions, 2u);
  EXPECT_EQ(joiner->position().file, EventLogFileName(2));
  EXPECT_EQ(Rows(), std::vector<std::string>{"1\tu1\ti1\t3.5"});
}

TEST_F(JoinerTest, RowsTrainingWouldRefuseAreDroppedAndCounted) {
  options_.check_row = [](std::string_view row, std::string* reason) {
    *reason = "no";
    return row.find("bad") == std::string_view::npos;
  };
  Append(1, Impression(t0_, "r1", "bad") + Click(t0_ + 1, "r1", "bad", t0_) +
                Impression(t0_, "r2", "i1") + Click(t0_ + 1, "r2", "i1", t0_));
  auto joiner = Open();
  ASSERT_OK(joiner->Step().status());
  EXPECT_EQ(joiner->stats().bad_rows, 1u);
  EXPECT_EQ(Rows(), std::vector<std::string>{"1\tu1\ti1\t3.5"});
}

TEST_F(JoinerTest, ACorruptCheckpointIsDataLossNamingTheFile) {
  fs::create_directories(options_.output_dir);
  std::ofstream(fs::path(options_.output_dir) / ".join-state") << "tessera-join-state 1\nnext_seq x\n";
  const Status s = Joiner::Open(options_, &clock_, &metrics_).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(std::string(s.message()).find(".join-state: line 2"), std::string::npos) << s.message();
}

// A scripted run: at each step some records appear and time moves on.
// With `crashes`, the joiner is "killed" at the given steps and stages and
// reopened; the output must equal the uninterrupted run's.
class JoinerRestartTest : public JoinerTest {
 public:
  std::vector<std::string> Run(const std::vector<std::pair<int, Joiner::CrashPoint>>& crashes) {
    options_.max_open = 40;
    auto joiner = Open();
    for (int step = 0; step < 30; ++step) {
      // Records of this step: 10 impressions, clicks on some of the
      // previous steps' impressions (some late, some duplicate), across
      // files (a new file every 7 steps).
      std::string text;
      const int64_t now = t0_ + step * 100000;
      for (int i = 0; i < 10; ++i) {
        text += Impression(now + i, absl::StrCat("s", step), absl::StrCat("i", i),
                           absl::StrCat("u", step));
      }
      for (int back = 1; back <= 8 && back <= step; ++back) {
        const int i = (step * 7 + back) % 10;
        const int64_t shown = t0_ + (step - back) * 100000 + i;
        text += Click(now + 50, absl::StrCat("s", step - back), absl::StrCat("i", i), shown);
      }
      Append(1 + step / 7, text);
      AdvanceTo(now + 60);
      for (const auto& [at, point] : crashes) {
        if (at != step) continue;
        joiner->TEST_CrashAt(point);
        EXPECT_EQ(joiner->Step().status().code(), StatusCode::kAborted);
        joiner = Open();  // the restarted process
        if (point == Joiner::CrashPoint::kAfterOutput) {
          EXPECT_OK(joiner->Step().status());  // redone: its checkpoint was never written
        }
      }
      if (std::none_of(crashes.begin(), crashes.end(), [&](const auto& c) { return c.first == step; })) {
        EXPECT_OK(joiner->Step().status());
      }
    }
    AdvanceTo(t0_ + 30 * 100000 + kWindowMs + kGraceMs);
    EXPECT_OK(joiner->Step().status());
    stats_ = joiner->stats();
    return Rows();
  }
  JoinerStats stats_;
};

TEST_F(JoinerRestartTest, AKilledJoinerResumesWithoutLossOrRepetition) {
  const std::vector<std::string> expected = Run({});
  const JoinerStats expected_stats = stats_;
  ASSERT_GT(expected_stats.positives, 50u);
  ASSERT_GT(expected_stats.negatives, 50u);
  ASSERT_GT(expected_stats.late + expected_stats.duplicate + expected_stats.evicted, 0u);
  EXPECT_EQ(expected_stats.positives + expected_stats.negatives, expected_stats.impressions);
  // Fresh directories for the interrupted run.
  fs::remove_all(options_.output_dir);
  fs::remove_all(options_.event_dir);
  fs::create_directories(options_.event_dir);
  clock_.AdvanceTime(std::chrono::milliseconds(0));
  t0_ = clock_.UnixMillis();
  std::vector<std::string> got = Run({{3, Joiner::CrashPoint::kAfterOutput},
                                      {9, Joiner::CrashPoint::kAfterCheckpoint},
                                      {16, Joiner::CrashPoint::kAfterOutput},
                                      {17, Joiner::CrashPoint::kAfterCheckpoint}});
  // Same rows in the same order (their features name step and item).
  EXPECT_EQ(got, expected);
  EXPECT_EQ(stats_.positives, expected_stats.positives);
  EXPECT_EQ(stats_.negatives, expected_stats.negatives);
  EXPECT_EQ(stats_.late, expected_stats.late);
  EXPECT_EQ(stats_.duplicate, expected_stats.duplicate);
  for (const auto& e : fs::directory_iterator(options_.output_dir)) {
    EXPECT_EQ(e.path().extension(), e.path().filename() == ".join-state" ? "" : ".tsv")
        << e.path();
  }
}

}  // namespace
}  // namespace tessera::feedback
