// The answer to "why did this example score what it did?" for one scored
// example, as Model::Explain computes it.
//
// Field contributions split the logit additively:
//   logit == bias + sum over f of fields[f]   (up to float rounding)
// - lr: fields[f] is the field's first-order term (exact).
// - fm: plus half of each pairwise interaction the field takes part in
//   (0.5 * <v_f, sum_g v_g - v_f>; exact).
// - deepfm, din, bst: plus, for the MLP, gradient x input over the field's
//   slice of the MLP input (the field vector, or the attention-pooled
//   history of a sequence field); the MLP's remainder (its output minus
//   those shares) goes to `bias` so the identity above still holds.
//
// Attention weights (din, bst), one entry per attending sequence field: one
// weight per history token the model saw (the kept most recent max_len,
// oldest first, the order of the data). din: the attention unit's weight
// (model.attention_weights: raw score, sigmoid or softmax); bst: the last
// encoder layer's attention from the target position, averaged over heads.
#ifndef TESSERA_MODELS_EXPLANATION_H_
#define TESSERA_MODELS_EXPLANATION_H_

#include <vector>

namespace tessera::models {

struct AttentionWeights {
  int field = 0;               // index into Schema::fields() (a sequence field)
  std::vector<float> weights;  // one per history token, oldest first
};

struct Explanation {
  float logit = 0;
  float bias = 0;              // global bias plus any remainder no field owns
  std::vector<float> fields;   // one per schema field, schema order
  std::vector<AttentionWeights> attention;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_EXPLANATION_H_
