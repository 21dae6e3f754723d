// Which sequence field attends with which target field (din, bst).
//
// With ModelConfig::attention empty, every sequence field pairs with the
// first categorical field of the same table (hist_items with item_id when
// both use table `item`); a sequence field with no such field is not
// attended (the model mean-pools it). Explicit pairs name a sequence field
// and a categorical field of the same table; sequence fields they leave out
// are mean-pooled.
#ifndef TESSERA_MODELS_ATTENTION_PAIRS_H_
#define TESSERA_MODELS_ATTENTION_PAIRS_H_

#include <vector>

#include "common/status.h"
#include "models/model.h"
#include "models/schema.h"

namespace tessera::models {

struct ResolvedPair {
  int sequence = 0;  // index into Schema::fields()
  int target = 0;    // index into Schema::fields()
};

// InvalidArgument naming model.attention for an unknown field, a field of
// the wrong type, tables that differ, or a sequence field named twice; and
// for a model with nothing to attend ("model.type din needs a sequence field
// ...").
StatusOr<std::vector<ResolvedPair>> ResolveAttentionPairs(const ModelConfig& config,
                                                          const Schema& schema);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_ATTENTION_PAIRS_H_
