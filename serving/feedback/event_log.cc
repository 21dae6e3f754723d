#include "serving/feedback/event_log.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::feedback {
namespace {

constexpr size_t kSeqDigits = 12;

bool ParseInt(std::string_view text, int64_t* value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

// Splits off up to `n` tab-separated columns; the last keeps the rest.
std::vector<std::string_view> Columns(std::string_view line, size_t n) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < n) {
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos) break;
    out.push_back(line.substr(0, tab));
    line.remove_prefix(tab + 1);
  }
  out.push_back(line);
  return out;
}

Status BadColumn(int column, const char* name, std::string_view why, std::string_view text) {
  return InvalidArgumentError(absl::StrCat("column ", column, " (", name, "): ", std::string(why),
                                           ": '", std::string(text.substr(0, 64)), "'"));
}

}  // namespace

std::string EventLogFileName(uint64_t seq) {
  return absl::StrFormat("%s%012d%s", kEventLogPrefix, seq, kEventLogSuffix);
}

bool ParseEventLogFileName(std::string_view name, uint64_t* seq) {
  const std::string_view prefix = kEventLogPrefix, suffix = kEventLogSuffix;
  if (name.size() != prefix.size() + kSeqDigits + suffix.size() ||
      name.substr(0, prefix.size()) != prefix || name.substr(name.size() - suffix.size()) != suffix) {
    return false;
  }
  const std::string_view digits = name.substr(prefix.size(), kSeqDigits);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *seq);
  return ec == std::errc() && end == digits.data() + digits.size();
}

void AppendSanitized(std::string_view text, bool comma, std::string* out) {
  const size_t start = out->size();
  out->append(text);
  for (size_t i = start; i < out->size(); ++i) {
    char& c = (*out)[i];
    if (c == '\t' || c == '\n' || c == '\r' || (comma && c == ',')) c = ' ';
  }
}

std::string SanitizeField(std::string_view text, bool comma) {
  std::string out;
  AppendSanitized(text, comma, &out);
  return out;
}

std::string FormatImpression(const ImpressionRecord& r) {
  return absl::StrCat("I\t", r.unix_ms, "\t", r.request_id, "\t", r.item_id, "\t", r.arm, "\t",
                      r.model_version, "\t", absl::StrFormat("%.9g", r.score), "\t", r.features,
                      "\n");
}

std::string FormatFeedback(const FeedbackRecord& r) {
  return absl::StrCat("F\t", r.unix_ms, "\t", r.request_id, "\t", r.item_id, "\t", r.event, "\t",
                      r.impression_unix_ms, "\t", r.arm, "\n");
}

Status ParseRecord(std::string_view line, RecordKind* kind, ImpressionRecord* impression,
                   FeedbackRecord* feedback) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.rfind("I\t", 0) == 0) {
    const std::vector<std::string_view> c = Columns(line, 8);
    if (c.size() != 8) {
      return InvalidArgumentError(
          absl::StrCat("impression: ", c.size(), " columns, expected 8 (I, unix_ms, request_id, "
                       "item_id, arm, model_version, score, features)"));
    }
    *kind = RecordKind::kImpression;
    if (!ParseInt(c[1], &impression->unix_ms)) {
      return BadColumn(2, "unix_ms", "not an integer", c[1]);
    }
    if (c[2].empty()) return BadColumn(3, "request_id", "empty", c[2]);
    impression->request_id = std::string(c[2]);
    impression->item_id = std::string(c[3]);
    impression->arm = std::string(c[4]);
    impression->model_version = std::string(c[5]);
    const std::string score(c[6]);
    char* end = nullptr;
    impression->score = std::strtof(score.c_str(), &end);
    if (score.empty() || end != score.c_str() + score.size()) {
      return BadColumn(7, "score", "not a number", c[6]);
    }
    impression->features = std::string(c[7]);
    return OkStatus();
  }
  if (line.rfind("F\t", 0) == 0) {
    const std::vector<std::string_view> c = Columns(line, 8);
    if (c.size() != 6 && c.size() != 7) {
      return InvalidArgumentError(
          absl::StrCat("feedback: ", c.size(), " columns, expected 7 (F, unix_ms, request_id, "
                       "item_id, event, impression_unix_ms, arm; or 6 without arm)"));
    }
    *kind = RecordKind::kFeedback;
    if (!ParseInt(c[1], &feedback->unix_ms)) return BadColumn(2, "unix_ms", "not an integer", c[1]);
    if (c[2].empty()) return BadColumn(3, "request_id", "empty", c[2]);
    feedback->request_id = std::string(c[2]);
    feedback->item_id = std::string(c[3]);
    if (c[4] != "click" && c[4] != "purchase") {
      return BadColumn(5, "event", "expected click or purchase", c[4]);
    }
    feedback->event = std::string(c[4]);
    if (!ParseInt(c[5], &feedback->impression_unix_ms)) {
      return BadColumn(6, "impression_unix_ms", "not an integer", c[5]);
    }
    feedback->arm = c.size() == 7 ? std::string(c[6]) : std::string();
    return OkStatus();
  }
  return InvalidArgumentError(
      absl::StrCat("not an event record (starts with 'I\\t' or 'F\\t'): '",
                   std::string(line.substr(0, 32)), "'"));
}

}  // namespace tessera::feedback
