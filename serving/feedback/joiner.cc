#include "serving/feedback/joiner.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace tessera::feedback {
namespace fs = std::filesystem;

namespace {

std::string Key(std::string_view request_id, std::string_view item_id) {
  std::string key;
  key.reserve(request_id.size() + 1 + item_id.size());
  key.append(request_id).append(1, '\t').append(item_id);
  return key;
}

}  // namespace

Joiner::Joiner(const JoinerOptions& options, Clock* clock, MetricsRegistry* metrics,
               LogPosition start)
    : options_(options),
      clock_(clock),
      metrics_(metrics),
      reader_(options.event_dir, std::move(start)) {
  last_position_ = reader_.position();
}

void Joiner::Count(const char* what, uint64_t* field) {
  ++*field;
  metrics_->GetCounter(absl::StrCat("tessera_join_", what, "_total"),
                       absl::StrCat("Joiner: ", what, " (docs/feedback_loop.md)"))
      .Increment();
}

std::string Joiner::StatsLine() const {
  const JoinerStats& s = stats_;
  return absl::StrCat("join: impressions ", s.impressions, " feedback ", s.feedback,
                      " positives ", s.positives, " negatives ", s.negatives, " late ", s.late,
                      " duplicate ", s.duplicate, " unmatched ", s.unmatched, " evicted ",
                      s.evicted, " repeated ", s.repeated, " bad_lines ", s.bad_lines,
                      " bad_rows ", s.bad_rows, " other_arm ", s.other_arm, " open ", open_.size(),
                      " files ",
                      s.files_written, " at ", reader_.position().file, ":",
                      reader_.position().offset);
}

StatusOr<size_t> Joiner::Step() {
  const uint64_t torn_before = reader_.torn_tails();
  TESSERA_ASSIGN_OR_RETURN(
      bool at_end,
      reader_.Read(options_.max_lines_per_step,
                   [this](std::string_view line, const std::string& where) { OnLine(line, where); }));
  for (uint64_t i = torn_before; i < reader_.torn_tails(); ++i) Count("bad_lines", &stats_.bad_lines);
  if (!(reader_.position() == last_position_)) changed_ = true;  // e.g. moved past an empty file
  last_position_ = reader_.position();
  CloseExpired(at_end);
  const size_t rows = rows_count_;
  TESSERA_RETURN_IF_ERROR(Commit());
  return rows;
}

void Joiner::OnLine(std::string_view line, const std::string& where) {
  changed_ = true;
  RecordKind kind = RecordKind::kImpression;
  ImpressionRecord impression;
  FeedbackRecord feedback;
  if (Status s = ParseRecord(line, &kind, &impression, &feedback); !s.ok()) {
    TESSERA_LOG(kWarning) << "join: " << options_.event_dir << "/" << where << ": skipped: "
                          << s.message();
    Count("bad_lines", &stats_.bad_lines);
    return;
  }
  if (kind == RecordKind::kImpression) {
    OnImpression(std::move(impression));
  } else {
    OnFeedback(feedback);
  }
}

bool Joiner::KeepArm(const std::string& arm) {
  if (options_.arms.empty() || arm.empty()) return true;
  if (std::find(options_.arms.begin(), options_.arms.end(), arm) != options_.arms.end()) return true;
  Count("other_arm", &stats_.other_arm);
  return false;
}

void Joiner::OnImpression(ImpressionRecord r) {
  Count("impressions", &stats_.impressions);
  watermark_ms_ = std::max(watermark_ms_, r.unix_ms);
  if (!KeepArm(r.arm)) return;
  std::string key = Key(r.request_id, r.item_id);
  const auto [it, inserted] = open_.try_emplace(key);
  if (!inserted) {
    Count("repeated", &stats_.repeated);
    return;
  }
  it->second.unix_ms = r.unix_ms;
  it->second.features = std::move(r.features);
  order_.push_back(std::move(key));
  while (open_.size() > options_.max_open) CloseFront(/*evicted=*/true);
}

void Joiner::OnFeedback(const FeedbackRecord& r) {
  Count("feedback", &stats_.feedback);
  watermark_ms_ = std::max(watermark_ms_, r.unix_ms);
  if (!KeepArm(r.arm)) return;
  if (r.unix_ms - r.impression_unix_ms > options_.window_ms) {
    Count("late", &stats_.late);
    return;
  }
  const auto it = open_.find(Key(r.request_id, r.item_id));
  if (it == open_.end()) {
    Count("unmatched", &stats_.unmatched);
    return;
  }
  if (it->second.clicked) {
    Count("duplicate", &stats_.duplicate);
    return;
  }
  it->second.clicked = true;
  Emit(1, it->second.features);
  std::string().swap(it->second.features);
}

void Joiner::CloseExpired(bool at_end) {
  const int64_t now = clock_->UnixMillis();
  while (!order_.empty()) {
    const Open_& front = open_.at(order_.front());
    const int64_t closes = front.unix_ms + options_.window_ms + options_.grace_ms;
    if (now < closes || (!at_end && watermark_ms_ <= closes)) break;
    CloseFront(/*evicted=*/false);
  }
}

void Joiner::CloseFront(bool evicted) {
  changed_ = true;
  const auto it = open_.find(order_.front());
  if (evicted) Count("evicted", &stats_.evicted);
  if (!it->second.clicked) Emit(0, it->second.features);
  open_.erase(it);
  order_.pop_front();
}

void Joiner::Emit(int label, const std::string& features) {
  std::string row = absl::StrCat(label, "\t", features);
  std::string reason;
  if (options_.check_row && !options_.check_row(row, &reason)) {
    TESSERA_LOG(kWarning) << "join: dropping a row training would refuse: " << reason;
    Count("bad_rows", &stats_.bad_rows);
    return;
  }
  Count(label == 1 ? "positives" : "negatives", label == 1 ? &stats_.positives : &stats_.negatives);
  rows_ += row;
  rows_ += '\n';
  ++rows_count_;
}

}  // namespace tessera::feedback
