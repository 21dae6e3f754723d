// Reads the event log (feedback/event_log.h) from a position, one complete
// line at a time, across its rotating files in name order. A line without
// its '\n' is not returned until it is complete; once a later file exists,
// the earlier one is complete and such a tail (cut by a crash of the
// writer) is skipped and counted.
//
// Thread-compatible.
#ifndef TESSERA_FEEDBACK_EVENT_LOG_READER_H_
#define TESSERA_FEEDBACK_EVENT_LOG_READER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tessera::feedback {

struct LogPosition {
  std::string file;     // a file name in the directory ("" = before the first)
  uint64_t offset = 0;  // bytes of `file` consumed
  friend bool operator==(const LogPosition&, const LogPosition&) = default;
};

class EventLogReader {
 public:
  EventLogReader(std::string dir, LogPosition start) : dir_(std::move(dir)), pos_(std::move(start)) {}

  // Calls `line` for each complete line after the position (without its
  // '\n'; `where` is "file:offset"), at most `max_lines`, advancing the
  // position past each. Returns true when it stopped at the end of the log
  // (nothing complete is left to read), false when max_lines stopped it.
  // Unavailable if the directory cannot be listed or a file read.
  StatusOr<bool> Read(size_t max_lines,
                      const std::function<void(std::string_view line, const std::string& where)>& line);

  const LogPosition& position() const { return pos_; }
  uint64_t torn_tails() const { return torn_tails_; }  // incomplete last lines skipped

 private:
  // The event log files after pos_.file, in order (pos_.file itself first
  // if it still exists).
  StatusOr<std::vector<std::string>> Files() const;

  const std::string dir_;
  LogPosition pos_;
  uint64_t torn_tails_ = 0;
};

}  // namespace tessera::feedback

#endif  // TESSERA_FEEDBACK_EVENT_LOG_READER_H_
