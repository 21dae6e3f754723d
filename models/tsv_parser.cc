#include "models/tsv_parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "models/feature_hash.h"
#include "models/strings.h"

namespace tessera::models {
namespace {

// A value quoted in a reason, cut so one hostile line cannot flood the log.
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 40;
  if (text.size() <= kMax) return absl::StrCat("'", Sv(text), "'");
  return absl::StrCat("'", Sv(text.substr(0, kMax)), "...' (", text.size(), " bytes)");
}

std::string FieldPrefix(int index, const Field& field) {
  return absl::StrCat("field ", index, " (", field.name, "): ");
}

// Splits off the column before the next tab; `rest` keeps what follows it.
// Returns false when `rest` was already exhausted (no more columns).
bool NextColumn(std::string_view* rest, bool* more, std::string_view* column) {
  if (!*more) return false;
  const size_t tab = rest->find('\t');
  if (tab == std::string_view::npos) {
    *column = *rest;
    *rest = std::string_view();
    *more = false;
  } else {
    *column = rest->substr(0, tab);
    rest->remove_prefix(tab + 1);
  }
  return true;
}

}  // namespace

float TransformNumeric(const Field& field, double value) {
  if (field.transform == Transform::kLog1p) value = std::log1p(std::max(value, 0.0));
  return static_cast<float>(value);
}

TsvParser::TsvParser(const Schema* schema) : schema_(schema) {}

LineKind TsvParser::Parse(std::string_view line, Example* example, std::string* reason) const {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::vector<Field>& fields = schema_->fields();
  const int num_fields = static_cast<int>(fields.size());
  std::string_view rest = line;
  bool more = true;
  std::string_view column;
  NextColumn(&rest, &more, &column);
  if (column == "1") {
    example->label = 1;
  } else if (column == "0") {
    example->label = 0;
  } else {
    *reason = line.empty() ? "empty line" : absl::StrCat("bad label ", Quote(column), " (must be 0 or 1)");
    return LineKind::kBad;
  }
  example->numeric.assign(schema_->num_numeric(), 0.0f);
  example->key_offsets.resize(fields.size() + 1);
  example->keys.clear();
  bool is_short = false;
  for (int f = 0; f < num_fields; ++f) {
    example->key_offsets[f] = static_cast<uint32_t>(example->keys.size());
    if (!NextColumn(&rest, &more, &column)) {
      is_short = true;
      column = std::string_view();
    }
    const Field& field = fields[f];
    switch (field.type) {
      case FieldType::kNumeric:
        if (!ParseNumeric(f, column, example, reason)) return LineKind::kBad;
        break;
      case FieldType::kCategorical:
        if (!ParseCategorical(f, column, example, reason)) return LineKind::kBad;
        break;
      case FieldType::kSequence:
        ParseSequence(f, column, example);
        break;
    }
  }
  example->key_offsets[num_fields] = static_cast<uint32_t>(example->keys.size());
  if (more) {
    const auto extra = 1 + std::count(rest.begin(), rest.end(), '\t');
    *reason = absl::StrCat(1 + num_fields + extra, " columns, expected at most ", 1 + num_fields,
                           " (label + ", num_fields, " fields)");
    return LineKind::kBad;
  }
  return is_short ? LineKind::kShort : LineKind::kOk;
}

bool TsvParser::ParseNumeric(int f, std::string_view text, Example* example, std::string* reason) const {
  const Field& field = schema_->fields()[f];
  double value = 0;
  if (!text.empty()) {
    std::string_view digits = text;
    if (digits.size() > 1 && digits.front() == '+') digits.remove_prefix(1);
    const char* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    if (ec != std::errc() || ptr != end || !std::isfinite(value)) {
      *reason = absl::StrCat(FieldPrefix(f, field), "not a number: ", Quote(text));
      return false;
    }
  }
  example->numeric[field.numeric_index] = TransformNumeric(field, value);
  return true;
}

bool TsvParser::ParseCategorical(int f, std::string_view text, Example* example, std::string* reason) const {
  if (text.empty()) return true;  // missing: no key
  const Field& field = schema_->fields()[f];
  if (std::memchr(text.data(), ',', text.size()) != nullptr) {
    *reason = absl::StrCat(FieldPrefix(f, field), "categorical value contains ',': ", Quote(text));
    return false;
  }
  example->keys.push_back(schema_->hasher().Hash(field.table_index, text));
  return true;
}

// Walks the tokens from the newest (last) backwards and stops after max_len,
// so the dropped old history is never hashed; then restores oldest-first.
void TsvParser::ParseSequence(int f, std::string_view text, Example* example) const {
  const Field& field = schema_->fields()[f];
  const size_t first = example->keys.size();
  uint32_t kept = 0;
  size_t end = text.size();
  while (end > 0 && kept < field.max_len) {
    const size_t comma = text.rfind(',', end - 1);
    const size_t begin = comma == std::string_view::npos ? 0 : comma + 1;
    if (begin < end) {
      example->keys.push_back(
          schema_->hasher().Hash(field.table_index, text.substr(begin, end - begin)));
      ++kept;
    }
    if (comma == std::string_view::npos) break;
    end = comma;
  }
  std::reverse(example->keys.begin() + static_cast<std::ptrdiff_t>(first), example->keys.end());
}

}  // namespace tessera::models
