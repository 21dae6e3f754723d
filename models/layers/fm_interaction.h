// Factorization-machine second-order interaction (Rendle 2010) over the
// field embeddings of a batch, with the O(k n) sum-square identity:
//   sum_{f<g} <v_f, v_g> = 0.5 * sum_d ((sum_f v_f,d)^2 - sum_f v_f,d^2).
//
// Input layout: e is batch x (num_fields * dim), field f's vector at columns
// [f * dim, (f + 1) * dim) (a missing field is a zero vector).
//
// Explanation seam: field f's exact additive share of the interaction is
// 0.5 * <v_f, field_sum() - v_f>; the shares sum to the output.
//
// Thread-compatible: keeps the per-example field sum between Forward and
// Backward.
#ifndef TESSERA_MODELS_LAYERS_FM_INTERACTION_H_
#define TESSERA_MODELS_LAYERS_FM_INTERACTION_H_

#include <span>

#include "models/batch.h"

namespace tessera::models::layers {

class FmInteraction {
 public:
  FmInteraction(int num_fields, int dim) : num_fields_(num_fields), dim_(dim) {}

  int num_fields() const { return num_fields_; }
  int dim() const { return dim_; }

  // out[i] = interaction of example i.
  // REQUIRES: e.cols() == num_fields() * dim(); out.size() == e.rows().
  void Forward(const RowMatrix& e, std::span<float> out);

  // Backward of the last Forward (same e): de(i, f) += dout[i] * (s_i - v_i,f)
  // where s_i is the field sum. Accumulates into de (which must be e's shape),
  // so a model can add this to the gradient of an MLP over the same e.
  void Backward(const RowMatrix& e, std::span<const float> dout, RowMatrix* de) const;

  // batch x dim: sum of the field vectors of each example, from the last
  // Forward.
  const RowMatrix& field_sum() const { return sum_; }

 private:
  const int num_fields_;
  const int dim_;
  RowMatrix sum_;
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_FM_INTERACTION_H_
