#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/mutex.h"

namespace tessera {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
Mutex g_label_mu;
std::string* g_label TESSERA_GUARDED_BY(g_label_mu) = nullptr;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  if (text == "debug") *level = LogLevel::kDebug;
  else if (text == "info") *level = LogLevel::kInfo;
  else if (text == "warning" || text == "warn") *level = LogLevel::kWarning;
  else if (text == "error") *level = LogLevel::kError;
  else return false;
  return true;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

void SetLogNodeLabel(std::string_view label) {
  MutexLock lock(&g_label_mu);
  if (g_label == nullptr) g_label = new std::string;  // never freed: used until exit
  *g_label = std::string(label);
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

std::string FormatLogLine(std::chrono::system_clock::time_point time, LogLevel level,
                          std::string_view label, std::string_view message) {
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  // Floor division: times before 1970 still get a millisecond in [0, 999].
  std::time_t secs = static_cast<std::time_t>(since_epoch / 1000);
  int millis = static_cast<int>(since_epoch % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[96];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  std::string line;
  line.reserve(message.size() + 64);
  line += stamp;
  line += ' ';
  line += LevelName(level);
  line += ' ';
  line += label.empty() ? std::string_view("tessera") : label;
  line += ' ';
  for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
  line += '\n';
  return line;
}

void LogLine(LogLevel level, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  std::string label;
  {
    MutexLock lock(&g_label_mu);
    if (g_label != nullptr) label = *g_label;
  }
  const std::string line = FormatLogLine(now, level, label, message);
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

int LogExit(std::string_view role, const Status& status) {
  if (!status.ok()) {
    TESSERA_LOG(kError) << role << " failed: " << status;
    return 1;
  }
  TESSERA_LOG(kInfo) << role << " exiting after orderly shutdown";
  return 0;
}

}  // namespace tessera
