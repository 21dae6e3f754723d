// One log line format for every role, on stderr:
//   2026-11-29T10:00:00.123Z INFO server/1 message
// (time in UTC with milliseconds, level, role/id, message). The process's
// level and node label are set once by the CLI (main): "scheduler/0",
// "server/1", "worker/0" once registered ("server", "worker" before),
// "launcher/0" for `tessera local` and `tessera train`, "serve/<name>" for
// `tessera serve`, "mpi/<rank>" while MPI ranks bootstrap. Library code
// only logs. Thread-safe: each line is written with a single write(2).
#ifndef TESSERA_COMMON_LOGGING_H_
#define TESSERA_COMMON_LOGGING_H_

#include <chrono>
#include <sstream>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tessera {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Parses "debug" | "info" | "warning" | "error".
bool ParseLogLevel(std::string_view text, LogLevel* level);
void SetLogLevel(LogLevel level);
// Label printed after the level, e.g. "server/1". Set by main once known.
void SetLogNodeLabel(std::string_view label);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, std::string_view message);

// One line as LogLine writes it, newline included:
//   <ISO-8601 UTC time with ms>Z <LEVEL> <label> <message>\n
// LEVEL is DEBUG, INFO, WARN or ERROR; an empty label prints "tessera";
// newlines inside the message become spaces (one event, one line).
std::string FormatLogLine(std::chrono::system_clock::time_point time, LogLevel level,
                          std::string_view label, std::string_view message);

// The exit code of a role's process: logs "<role> failed: <status>" and
// returns 1, or logs "<role> exiting after orderly shutdown" and returns 0.
int LogExit(std::string_view role, const Status& status);

namespace internal {
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { LogLine(level_, stream_.str()); }
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace tessera

// Usage: TESSERA_LOG(kInfo) << "bound " << endpoint;
#define TESSERA_LOG(level)                                                          \
  for (bool _tessera_log_on = ::tessera::LogEnabled(::tessera::LogLevel::level);  \
       _tessera_log_on; _tessera_log_on = false)                                   \
  ::tessera::internal::LogMessage(::tessera::LogLevel::level).stream()

#endif  // TESSERA_COMMON_LOGGING_H_
