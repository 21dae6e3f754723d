// One log line format for every role:
//   2026-11-29T10:00:00.123Z INFO server/1 message
// The process's level and node label are set once by the CLI (main); library
// code only logs. Thread-safe: each line is written with a single write(2).
#ifndef TESSERA_COMMON_LOGGING_H_
#define TESSERA_COMMON_LOGGING_H_

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
