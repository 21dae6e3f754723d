// The schema-TSV columns (models/tsv_parser.h) of a JSON instance that
// serving scored: what the impression log records, so that
// "<label>\t<columns>" is the training example of that impression and
// parses to the Example serving scored (InstanceEncoder).
//
// Per field, in schema order, tab-separated: a categorical string as is; a
// number as the shortest text that parses back to the same double
// (std::to_chars; the parser applies the transform, as the encoder does); a
// sequence's most recent max_len
// non-empty tokens, oldest first, joined by ','; a missing or null value as
// an empty column. Tabs, CR and LF in a value (and ',' in a categorical or
// sequence token) would break the line; they are replaced by ' ' (such a
// token then hashes differently from what serving scored; ids do not hold
// them in practice).
//
// REQUIRES: `instance` was encoded by InstanceEncoder without error (the
// types are right). Thread-safe (a pure function).
#ifndef TESSERA_SERVING_INSTANCE_TSV_H_
#define TESSERA_SERVING_INSTANCE_TSV_H_

#include <string>

#include <nlohmann/json.hpp>

#include "models/schema.h"

namespace tessera::serving {

std::string InstanceTsv(const models::Schema& schema, const nlohmann::json& instance);

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_INSTANCE_TSV_H_
