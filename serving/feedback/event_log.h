// The event log of `tessera serve` (issue 8): what serving showed
// (impressions) and what shoppers did with it (feedback), one record per
// line, in one stream of rotating files that the joiner (feedback/joiner.h)
// reads in order. One stream rather than two: an impression always comes
// before the feedback about it, and the joiner's position is one file and
// offset.
//
// Files: DIR/events-<seq>.log, seq a 12-digit decimal number counting up
// (also across restarts of serving), so name order is write order. A file
// is complete once a file with a higher number exists. Each record is one
// line ending in '\n'; a last line without '\n' is still being written
// (or was cut by a crash: it is skipped once the next file exists).
//
// Records (fields separated by '\t'; no field but the last holds a tab):
//   I <unix_ms> <request_id> <item_id> <arm> <model_version> <score> <features>
//   F <unix_ms> <request_id> <item_id> <event> <impression_unix_ms> <arm>
// features: the impression's instance as a schema-TSV line without its
// label (models/tsv_parser.h: the fields in schema order, tab-separated), so
// "<label>\t<features>" is a training example. event: click | purchase.
// impression_unix_ms: when the impression the feedback is about was logged
// (serving knows it), so the joiner can tell a late event from one whose
// impression it never saw. arm: the arm that served that impression (so a
// joiner that keeps one arm's rows can tell its feedback from the others');
// logs written before the column have 6 columns, read with an empty arm.
#ifndef TESSERA_FEEDBACK_EVENT_LOG_H_
#define TESSERA_FEEDBACK_EVENT_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tessera::feedback {

inline constexpr char kEventLogPrefix[] = "events-";
inline constexpr char kEventLogSuffix[] = ".log";

// "events-000000000042.log" for 42.
std::string EventLogFileName(uint64_t seq);
// The seq of an event log file name; false for any other name.
bool ParseEventLogFileName(std::string_view name, uint64_t* seq);

struct ImpressionRecord {
  int64_t unix_ms = 0;
  std::string request_id;
  std::string item_id;
  std::string arm;
  std::string model_version;
  float score = 0;
  std::string features;  // schema-TSV columns after the label
};

struct FeedbackRecord {
  int64_t unix_ms = 0;
  std::string request_id;
  std::string item_id;
  std::string event;  // click | purchase
  int64_t impression_unix_ms = 0;
  std::string arm;  // "" when the log predates the column
};

// `text` with every tab, CR, LF replaced by ' ' (and, with `comma`, every
// ',' too): a value that cannot break a record or a TSV column.
std::string SanitizeField(std::string_view text, bool comma);
// The same, appended to *out.
void AppendSanitized(std::string_view text, bool comma, std::string* out);

// One line, '\n' included. Fields are written as given: REQUIRES they
// hold no tab or newline (SanitizeField), features no newline.
std::string FormatImpression(const ImpressionRecord& r);
std::string FormatFeedback(const FeedbackRecord& r);

enum class RecordKind : uint8_t { kImpression, kFeedback };

// Parses one line (without '\n'). InvalidArgument naming the column
// otherwise ("column 2 (unix_ms): not an integer: 'x'").
Status ParseRecord(std::string_view line, RecordKind* kind, ImpressionRecord* impression,
                   FeedbackRecord* feedback);

}  // namespace tessera::feedback

#endif  // TESSERA_FEEDBACK_EVENT_LOG_H_
