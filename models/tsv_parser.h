// Parses one TSV line of the data contract into an Example:
//   label \t field_0 \t field_1 ... (fields in Schema order)
// The label is `0` or `1`. A categorical value is one token (no tab or comma;
// empty = missing, no key). A numeric value is a decimal number (empty =
// missing = 0 after the transform; log1p applies to max(x, 0)). A sequence is
// tokens separated by `,`, oldest first; empty tokens are skipped and only
// the most recent max_len are kept.
//
// Lines with fewer columns than the schema are "short": the missing trailing
// fields are empty (real Criteo files drop trailing empty fields). Lines with
// extra columns, a bad label or an unparsable number are "bad" and come with
// a reason naming the field (index and name).
//
// Tokens are hashed straight into keys with the schema's hasher
// (Schema::hasher(), models/feature_hash.h); parsing a
// line allocates nothing once the Example's vectors have grown.
//
// Thread-compatible; Parse is const, so one parser may serve many threads,
// each with its own Example.
//
// Example:
//   TsvParser parser(&schema);
//   Example ex;
//   std::string reason;
//   if (parser.Parse(line, &ex, &reason) == LineKind::kBad) Skip(reason);
#ifndef TESSERA_MODELS_TSV_PARSER_H_
#define TESSERA_MODELS_TSV_PARSER_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/types.h"
#include "models/schema.h"

namespace tessera::models {

// One parsed line. Overwritten by each Parse, which reuses its capacity.
struct Example {
  float label = 0;
  // Schema::num_numeric() values after the transform, by Field::numeric_index.
  std::vector<float> numeric;
  // The keys of field f are keys[key_offsets[f] .. key_offsets[f + 1]):
  // categorical 0 or 1, sequence up to max_len (oldest first), numeric none.
  std::vector<uint32_t> key_offsets;  // fields + 1 entries
  std::vector<Key> keys;

  std::span<const Key> FieldKeys(int field) const {
    return std::span<const Key>(keys).subspan(key_offsets[field],
                                              key_offsets[field + 1] - key_offsets[field]);
  }
};

// The input value of numeric field `field` as an Example holds it: its
// transform applied (log1p to max(x, 0)), then narrowed to float. Shared with
// inputs that are not TSV lines (serving's JSON instances), so both produce
// exactly the same numbers; the keys of other fields are
// schema.hasher().Hash(field.table_index, token) (models/feature_hash.h), a sequence
// keeping its most recent max_len non-empty tokens, oldest first.
float TransformNumeric(const Field& field, double value);

enum class LineKind : uint8_t {
  kOk,     // every column present
  kShort,  // trailing columns missing, parsed as empty fields (a valid example)
  kBad,    // skipped; the reason says why
};

class TsvParser {
 public:
  // `schema` is borrowed and must remain live.
  explicit TsvParser(const Schema* schema);

  // Parses `line` (without its '\n'; one trailing '\r' is ignored) into
  // *example. For kBad, *reason is set (e.g. "field 3 (price): not a number:
  // 'abc'") and *example is unspecified; otherwise *reason is untouched.
  LineKind Parse(std::string_view line, Example* example, std::string* reason) const;

 private:
  // Each returns false and sets *reason on a bad value.
  bool ParseNumeric(int field, std::string_view text, Example* example, std::string* reason) const;
  bool ParseCategorical(int field, std::string_view text, Example* example, std::string* reason) const;
  void ParseSequence(int field, std::string_view text, Example* example) const;

  const Schema* const schema_;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_TSV_PARSER_H_
