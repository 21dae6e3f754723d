#include "models/layers/log_loss.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace tessera::models::layers {
namespace {

float StableSigmoid(float z) {
  if (z >= 0.0f) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

}  // namespace

void Sigmoid(std::span<const float> logits, std::span<float> probs) {
  assert(probs.size() == logits.size());
  for (size_t i = 0; i < logits.size(); ++i) probs[i] = StableSigmoid(logits[i]);
}

float SigmoidLogLoss(std::span<const float> logits, std::span<const float> labels,
                     std::span<float> probs, std::span<float> dlogits) {
  const size_t n = logits.size();
  assert(labels.size() == n && probs.size() == n && dlogits.size() == n);
  if (n == 0) return 0.0f;
  const float inv_n = 1.0f / static_cast<float>(n);
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    const float z = logits[i];
    const float y = labels[i];
    const float p = StableSigmoid(z);
    probs[i] = p;
    dlogits[i] = (p - y) * inv_n;
    const double zd = z;
    total += std::max(zd, 0.0) - zd * y + std::log1p(std::exp(-std::fabs(zd)));
  }
  return static_cast<float>(total / static_cast<double>(n));
}

}  // namespace tessera::models::layers
