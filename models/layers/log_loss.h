// Sigmoid and binary log loss computed from logits, numerically stable for
// any logit (no exp overflow, no log(0)):
//   p    = sigmoid(z), evaluated on the side where exp() does not overflow
//   loss = max(z, 0) - z * y + log1p(exp(-|z|))
//   dloss/dz = p - y
//
// Thread safety: pure functions over their arguments.
#ifndef TESSERA_MODELS_LAYERS_LOG_LOSS_H_
#define TESSERA_MODELS_LAYERS_LOG_LOSS_H_

#include <span>

namespace tessera::models::layers {

// probs[i] = sigmoid(logits[i]).
// REQUIRES: probs.size() == logits.size().
void Sigmoid(std::span<const float> logits, std::span<float> probs);

// Returns the mean log loss of logits against labels (0 or 1; values in
// between are accepted as soft labels). Writes probs = sigmoid(logits) and
// dlogits[i] = (probs[i] - labels[i]) / n, the gradient of the mean loss.
// The sum is accumulated in double. Returns 0 for an empty batch.
// REQUIRES: all four spans have the same size.
float SigmoidLogLoss(std::span<const float> logits, std::span<const float> labels,
                     std::span<float> probs, std::span<float> dlogits);

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_LOG_LOSS_H_
