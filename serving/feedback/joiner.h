// The online joiner of `tessera join` (issue 8): turns the event log of
// `tessera serve` (feedback/event_log.h) into labelled training examples
// (schema-TSV lines) in a directory that a following training job consumes
// (`data: {train: DIR, follow: true}`: scheduler/stream_source.h).
//
// Attribution window (window_ms, job key join.window_s): an impression
// logged at t is labelled 1 by the first click or purchase about it logged
// at e with e - t <= window_ms (written at once); else 0, once the window
// has closed: when the clock reads t + window + grace and the log has been
// read to its end or past that time (grace absorbs serving's write delay).
// Feedback events are classified (stats, metrics):
//   late       e - t > window_ms: counted, never a label
//   duplicate  about an impression already labelled 1
//   unmatched  within the window but about no open impression (its
//              impression was dropped by serving's queue, flushed by the
//              memory cap, or logged before the joiner's start position)
// Memory: at most max_open impressions are kept; beyond, the oldest is
// closed at once (written as 0 if not clicked) and counted as evicted.
// A repeated impression (same request id and item) is counted and ignored.
// Arms (job key join.arms): when set, only impressions served by those arms
// are joined; other arms' impressions, and feedback about them (the
// feedback record names the arm), are counted as other_arm and skipped. One
// joiner and one training job per learning arm, so that each arm learns
// only from the traffic it served: a fair A/B test of two learning models.
//
// Output and exactly-once: each Step that produces rows writes them to
// OUT/.join-<seq>.tsv.tmp (fsynced), then the checkpoint (position in the
// log, open impressions, next seq, counters) to OUT/.join-state (temp file,
// fsync, rename), then renames the output to OUT/join-<seq>.tsv. Open()
// completes the rename of temp outputs below the checkpoint's next seq and
// deletes the others (their checkpoint was never written), so a joiner killed at any point and restarted writes every row
// exactly once. Names starting with '.' are ignored by training's
// directory follower; seq is 12 digits, so name order is output order.
//
// Thread-compatible (one thread calls Step). Time comes from the injected
// Clock's UnixMillis (record times are serving's UnixMillis).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto joiner, Joiner::Open(options, &clock, &metrics));
//   while (!stop) { TESSERA_RETURN_IF_ERROR(joiner->Step().status()); sleep(1s); }
#ifndef TESSERA_FEEDBACK_JOINER_H_
#define TESSERA_FEEDBACK_JOINER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "serving/feedback/event_log.h"
#include "serving/feedback/event_log_reader.h"

namespace tessera::feedback {

struct JoinerOptions {
  std::string event_dir;   // serving's --impression-dir
  std::string output_dir;  // created if missing
  std::string state_path;  // "": OUT/.join-state
  int64_t window_ms = 600000;
  int64_t grace_ms = 5000;
  size_t max_open = 1000000;          // open impressions kept
  std::vector<std::string> arms;       // empty: every arm's impressions
  size_t max_lines_per_step = 200000;  // event log lines read per Step
  // Optional: checks a row ("<label>\t<features>") as training will parse
  // it; false (with a reason) drops it, counted as bad_rows.
  std::function<bool(std::string_view row, std::string* reason)> check_row;
};

struct JoinerStats {
  uint64_t impressions = 0;  // impression records read
  uint64_t feedback = 0;     // feedback records read
  uint64_t positives = 0;    // rows written with label 1
  uint64_t negatives = 0;    // rows written with label 0
  uint64_t late = 0;
  uint64_t duplicate = 0;
  uint64_t unmatched = 0;
  uint64_t evicted = 0;         // impressions closed early by max_open
  uint64_t repeated = 0;        // repeated impressions ignored
  uint64_t bad_lines = 0;       // unparsable log lines (and torn tails)
  uint64_t bad_rows = 0;        // rows check_row refused
  uint64_t files_written = 0;
  uint64_t other_arm = 0;       // records of arms not in JoinerOptions::arms
  friend bool operator==(const JoinerStats&, const JoinerStats&) = default;
};

class Joiner {
 public:
  // Loads the checkpoint (if any), completes or discards an interrupted
  // commit, and positions the reader. `clock` and `metrics` are borrowed and
  // must outlive this object. InvalidArgument for bad options, DataLoss for
  // an unreadable checkpoint (naming the file and line), Unavailable for
  // I/O errors.
  static StatusOr<std::unique_ptr<Joiner>> Open(const JoinerOptions& options, Clock* clock,
                                                MetricsRegistry* metrics);

  // Reads what is new in the event log (up to max_lines_per_step lines),
  // joins it, closes the impressions whose window ended and commits: the
  // rows in one new output file, then the checkpoint. Returns the number of
  // rows committed. I/O errors: Unavailable (nothing committed; a later
  // Step, or a restart, retries).
  StatusOr<size_t> Step();

  const JoinerStats& stats() const { return stats_; }
  size_t open_impressions() const { return open_.size(); }
  const LogPosition& position() const { return reader_.position(); }
  // "join: impressions N feedback N positives N negatives N late N ..."
  std::string StatsLine() const;

  // Crash simulation for restart tests: the next Step stops (returns
  // Aborted) right after writing the output temp file, or after the
  // checkpoint, leaving the files as a kill at that point would.
  enum class CrashPoint : uint8_t { kNone, kAfterOutput, kAfterCheckpoint };
  void TEST_CrashAt(CrashPoint point) { crash_at_ = point; }

 private:
  struct Open_ {
    int64_t unix_ms = 0;
    bool clicked = false;
    std::string features;  // cleared once the row is written
  };
  Joiner(const JoinerOptions& options, Clock* clock, MetricsRegistry* metrics, LogPosition start);

  void OnLine(std::string_view line, const std::string& where);
  void OnImpression(ImpressionRecord r);
  void OnFeedback(const FeedbackRecord& r);
  // Closes open impressions whose window ended (`at_end`: the log is read
  // to its end); then the oldest beyond max_open.
  void CloseExpired(bool at_end);
  void CloseFront(bool evicted);
  void Emit(int label, const std::string& features);
  Status Commit();
  std::string StateText(uint64_t pending_seq) const;
  Status LoadState(const std::string& text);
  void Count(const char* what, uint64_t* field);
  // False (counted as other_arm) if the options name arms and `arm` is not
  // one of them. An empty arm (a feedback record of an older log) is kept.
  bool KeepArm(const std::string& arm);

  const JoinerOptions options_;
  Clock* const clock_;
  MetricsRegistry* const metrics_;
  EventLogReader reader_;

  absl::flat_hash_map<std::string, Open_> open_;  // key: request_id \t item_id
  std::deque<std::string> order_;                  // open_'s keys, oldest first
  int64_t watermark_ms_ = 0;                       // latest record time read
  uint64_t next_seq_ = 1;
  LogPosition last_position_;  // the reader's at the previous Step
  bool changed_ = false;  // anything read or closed since the last checkpoint
  std::string rows_;  // uncommitted rows
  size_t rows_count_ = 0;
  JoinerStats stats_;
  CrashPoint crash_at_ = CrashPoint::kNone;
};

}  // namespace tessera::feedback

#endif  // TESSERA_FEEDBACK_JOINER_H_
