#include "common/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

// 2026-11-29T21:03:04.123Z
system_clock::time_point Example() {
  return system_clock::time_point(milliseconds(1'795'986'184'123));
}

TEST(LoggingTest, LineIsUtcTimeWithMillisLevelLabelMessage) {
  EXPECT_EQ(FormatLogLine(Example(), LogLevel::kInfo, "server/1", "message"),
            "2026-11-29T21:03:04.123Z INFO server/1 message\n");
  EXPECT_EQ(FormatLogLine(Example(), LogLevel::kWarning, "worker/0", "slow"),
            "2026-11-29T21:03:04.123Z WARN worker/0 slow\n");
  EXPECT_EQ(FormatLogLine(Example(), LogLevel::kError, "scheduler/0", "x"),
            "2026-11-29T21:03:04.123Z ERROR scheduler/0 x\n");
  EXPECT_EQ(FormatLogLine(Example(), LogLevel::kDebug, "serve/ctr", "y"),
            "2026-11-29T21:03:04.123Z DEBUG serve/ctr y\n");
}

TEST(LoggingTest, MillisecondsArePaddedAndTheEpochIsZero) {
  EXPECT_EQ(FormatLogLine(system_clock::time_point(milliseconds(7)), LogLevel::kInfo, "a/0", "m"),
            "1970-01-01T00:00:00.007Z INFO a/0 m\n");
  // Before the epoch the milliseconds still count up within the second.
  EXPECT_EQ(
      FormatLogLine(system_clock::time_point(milliseconds(-1)), LogLevel::kInfo, "a/0", "m"),
      "1969-12-31T23:59:59.999Z INFO a/0 m\n");
}

TEST(LoggingTest, EmptyLabelAndMultiLineMessagesStayOneLine) {
  EXPECT_EQ(FormatLogLine(Example(), LogLevel::kInfo, "", "a\nb\r\nc"),
            "2026-11-29T21:03:04.123Z INFO tessera a b  c\n");
}

TEST(LoggingTest, ParsesLevels) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warning", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_TRUE(ParseLogLevel("warn", &level));
  EXPECT_TRUE(ParseLogLevel("error", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("verbose", &level));
  EXPECT_EQ(level, LogLevel::kError);  // unchanged
}

// Runs `body` with stderr sent to a file; returns what was written.
template <typename F>
std::string CaptureStderr(F body) {
  char path[] = "/tmp/tessera_logging_test_XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  body();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return out;
}

TEST(LoggingTest, MacroWritesTheLabelAndHonoursTheLevel) {
  SetLogNodeLabel("server/3");
  SetLogLevel(LogLevel::kWarning);
  const std::string out = CaptureStderr([] {
    TESSERA_LOG(kInfo) << "hidden";
    TESSERA_LOG(kWarning) << "shown " << 42;
  });
  SetLogLevel(LogLevel::kInfo);
  SetLogNodeLabel("");
  EXPECT_THAT(out, ::testing::Not(::testing::HasSubstr("hidden")));
  const std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN server/3 shown 42\n)");
  EXPECT_TRUE(std::regex_match(out, line)) << out;
}

}  // namespace
}  // namespace tessera
