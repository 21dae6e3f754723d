// The event log: record format (feedback/event_log.h) and the rotating
// writer behind a bounded queue (feedback/event_log_writer.h).
#include "serving/feedback/event_log_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
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
using ::testing::HasSubstr;

TEST(EventLogTest, RecordsRoundTrip) {
  const ImpressionRecord i{.unix_ms = 1700000000123,
                           .request_id = "19c-1",
                           .item_id = "i9",
                           .arm = "b",
                           .model_version = "42",
                           .score = 0.125f,
                           .features = "u1\ti9\t3.5\ti1,i2"};
  const std::string line = FormatImpression(i);
  ASSERT_EQ(line.back(), '\n');
  RecordKind kind;
  ImpressionRecord ri;
  FeedbackRecord rf;
  ASSERT_OK(ParseRecord(std::string_view(line).substr(0, line.size() - 1), &kind, &ri, &rf));
  EXPECT_EQ(kind, RecordKind::kImpression);
  EXPECT_EQ(ri.unix_ms, i.unix_ms);
  EXPECT_EQ(ri.request_id, "19c-1");
  EXPECT_EQ(ri.item_id, "i9");
  EXPECT_EQ(ri.arm, "b");
  EXPECT_EQ(ri.model_version, "42");
  EXPECT_EQ(ri.score, 0.125f);
  EXPECT_EQ(ri.features, i.features);

  const std::string f = FormatFeedback({.unix_ms = 5, .request_id = "r", .item_id = "i",
                                        .event = "purchase", .impression_unix_ms = 3, .arm = "b"});
  ASSERT_OK(ParseRecord(std::string_view(f).substr(0, f.size() - 1), &kind, &ri, &rf));
  EXPECT_EQ(kind, RecordKind::kFeedback);
  EXPECT_EQ(rf.event, "purchase");
  EXPECT_EQ(rf.impression_unix_ms, 3);
  EXPECT_EQ(rf.arm, "b");
  // A log written before the arm column (6 columns) still reads, arm "".
  ASSERT_OK(ParseRecord("F\t5\tr\ti\tclick\t3", &kind, &ri, &rf));
  EXPECT_EQ(rf.event, "click");
  EXPECT_EQ(rf.arm, "");
}

TEST(EventLogTest, BadRecordsNameTheColumn) {
  RecordKind kind;
  ImpressionRecord ri;
  FeedbackRecord rf;
  EXPECT_THAT(std::string(ParseRecord("F\t1\tr\ti\tlike\t0", &kind, &ri, &rf).message()),
              HasSubstr("column 5 (event): expected click or purchase: 'like'"));
  EXPECT_THAT(std::string(ParseRecord("I\tx\tr\ti\ta\tv\t0.5\tf", &kind, &ri, &rf).message()),
              HasSubstr("column 2 (unix_ms): not an integer"));
  EXPECT_THAT(std::string(ParseRecord("I\t1\tr\ti", &kind, &ri, &rf).message()),
              HasSubstr("expected 8"));
  EXPECT_THAT(std::string(ParseRecord("F\t1\tr\ti\tclick\t0\ta\tx", &kind, &ri, &rf).message()),
              HasSubstr("8 columns, expected 7"));
  EXPECT_FALSE(ParseRecord("hello", &kind, &ri, &rf).ok());
}

TEST(EventLogTest, FileNamesSortInWriteOrder) {
  EXPECT_EQ(EventLogFileName(42), "events-000000000042.log");
  uint64_t seq = 0;
  EXPECT_TRUE(ParseEventLogFileName("events-000000000042.log", &seq));
  EXPECT_EQ(seq, 42u);
  EXPECT_FALSE(ParseEventLogFileName(".events-000000000042.log", &seq));
  EXPECT_FALSE(ParseEventLogFileName("events-42.log", &seq));
  EXPECT_LT(EventLogFileName(9), EventLogFileName(10));
  EXPECT_EQ(SanitizeField("a\tb\nc,d", true), "a b c d");
  EXPECT_EQ(SanitizeField("a,b", false), "a,b");
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(EventLogWriterTest, RotatesBySizeAndAgeAndContinuesNumbering) {
  testing::TempDir dir;
  SimulatedClock clock;
  MetricsRegistry metrics;
  EventLogWriterOptions options;
  options.dir = dir.File("log");
  options.max_file_bytes = 20;
  options.max_file_age = std::chrono::seconds(10);
  fs::create_directories(options.dir);
  std::ofstream(fs::path(options.dir) / EventLogFileName(6)) << "old\n";
  ASSERT_OK_AND_ASSIGN(auto writer, EventLogWriter::Open(options, &clock, &metrics));
  ASSERT_TRUE(writer->Append("0123456789\n"));  // 11 bytes
  ASSERT_TRUE(writer->Append("abcdefghi\n"));   // 10 more: over 20, next file
  ASSERT_TRUE(writer->Flush(std::chrono::seconds(10)));
  clock.AdvanceTime(std::chrono::seconds(10));  // the open file is now too old
  ASSERT_TRUE(writer->Append("x\n"));
  writer->Stop();
  EXPECT_EQ(Files(options.dir),
            (std::vector<std::string>{EventLogFileName(6), EventLogFileName(7),
                                      EventLogFileName(8), EventLogFileName(9)}));
  EXPECT_EQ(Read(dir.File("log/" + EventLogFileName(7))), "0123456789\n");
  EXPECT_EQ(Read(dir.File("log/" + EventLogFileName(8))), "abcdefghi\n");
  EXPECT_EQ(Read(dir.File("log/" + EventLogFileName(9))), "x\n");
  EXPECT_EQ(writer->files_opened(), 3u);
  EXPECT_FALSE(writer->Append("late\n"));  // stopped: dropped and counted
  EXPECT_THAT(metrics.SerializeText(),
              HasSubstr("tessera_serving_event_log_dropped_total{reason=\"stopped\"} 1"));
}

TEST(EventLogWriterTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
  testing::TempDir dir;
  SimulatedClock clock;
  MetricsRegistry metrics;
  EventLogWriterOptions options;
  options.dir = dir.File("log");
  options.queue_capacity = 0;  // every record finds the queue full
  ASSERT_OK_AND_ASSIGN(auto writer, EventLogWriter::Open(options, &clock, &metrics));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(writer->Append("x\n"));
  writer->Stop();
  EXPECT_THAT(metrics.SerializeText(),
              HasSubstr("tessera_serving_event_log_dropped_total{reason=\"queue_full\"} 5"));
  EXPECT_TRUE(Files(options.dir).empty());
}

TEST(EventLogWriterTest, ManyThreadsAppendWholeLines) {
  testing::TempDir dir;
  RealClock clock;
  MetricsRegistry metrics;
  EventLogWriterOptions options;
  options.dir = dir.File("log");
  options.max_file_bytes = 4096;
  ASSERT_OK_AND_ASSIGN(auto writer, EventLogWriter::Open(options, &clock, &metrics));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) ASSERT_TRUE(writer->Append(absl::StrCat("t", t, "-", i, "\n")));
    });
  }
  for (auto& t : threads) t.join();
  writer->Stop();
  size_t lines = 0;
  for (const std::string& name : Files(options.dir)) {
    const std::string text = Read(dir.File("log/" + name));
    ASSERT_EQ(text.back(), '\n') << name;
    lines += static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  EXPECT_EQ(lines, 2000u);
  EXPECT_GT(writer->files_opened(), 1u);
}

}  // namespace
}  // namespace tessera::feedback
