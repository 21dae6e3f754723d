// Building blocks of Model::Explain (models/explanation.h), shared by the
// models: each adds one part of the logit to a batch of Explanations (one per
// example, `fields` one per schema field), keeping
//   logit == bias + sum over f of fields[f]
// part by part, so a model's Explain adds the parts its Forward sums.
//
// Thread safety: pure functions over their arguments, except that
// AddMlpGradientTimesInput runs the (thread-compatible) Mlp it is given.
//
// Example (deepfm):
//   ResetExplanations(batch.size, F, bias, out);
//   AddFieldTerms(fields.linear(), out);                  // first order
//   AddFmShares(fields.embeddings(), F, dim, out);        // FM
//   AddMlpGradientTimesInput(&mlp, fields.embeddings(), mlp_params,
//                            ConsecutiveFieldColumns(F, dim), out);  // MLP
//   SetLogits(logits, out);
#ifndef TESSERA_MODELS_LAYERS_EXPLAIN_UTIL_H_
#define TESSERA_MODELS_LAYERS_EXPLAIN_UTIL_H_

#include <span>
#include <vector>

#include "models/batch.h"
#include "models/explanation.h"
#include "models/layers/mlp.h"

namespace tessera::models::layers {

// Columns [begin, begin + size) of an MLP input belong to schema field
// `field`.
struct FieldColumns {
  int field = 0;
  int begin = 0;
  int size = 0;
};

// Field f at columns [f * dim, (f + 1) * dim) for f in [0, num_fields): the
// layout of FieldEmbedding::embeddings().
std::vector<FieldColumns> ConsecutiveFieldColumns(int num_fields, int dim);

// Resizes *out to batch_size explanations, each with logit 0, bias `bias`,
// num_fields zero contributions and no attention (reusing capacity).
void ResetExplanations(int batch_size, int num_fields, float bias,
                       std::vector<Explanation>* out);

// fields[f] += terms(i, f) for every example i: terms that enter the logit
// as a plain sum, one per field (e.g. FieldEmbedding::linear()).
// REQUIRES: terms is out->size() x fields.size().
void AddFieldTerms(const RowMatrix& terms, std::vector<Explanation>* out);

// The FM interaction's exact shares (layers/fm_interaction.h): fields[f] +=
// 0.5 * <v_f, s - v_f>, where v_f is field f's vector (columns [f * dim,
// (f + 1) * dim) of `embeddings`) and s the sum of the example's vectors.
// The shares of an example sum to its interaction.
// REQUIRES: embeddings is out->size() x (num_fields * dim); num_fields <=
// fields.size().
void AddFmShares(const RowMatrix& embeddings, int num_fields, int dim,
                 std::vector<Explanation>* out);

// The MLP's output y_i = mlp(x_i) split by gradient x input: for each slice,
// fields[slice.field] += sum over its columns c of x(i, c) * dy_i/dx(i, c);
// bias += y_i minus those shares (the part no field owns: the biases'
// effect, the ReLU curvature, columns in no slice), so y_i is added exactly.
// For a ReLU MLP with zero biases, y is piecewise linear and homogeneous, so
// the shares of all columns sum to y_i and the remainder is 0.
// Runs mlp->Forward(x) then Backward with dy = 1 (the Mlp's scratch state
// is overwritten; parameter gradients go to local scratch buffers).
// REQUIRES: x is out->size() x mlp->in(); mlp->out() == 1; `params` holds
// the MLP's blocks (see Mlp::Forward); slices are in [0, x.cols()) and name
// fields < fields.size().
void AddMlpGradientTimesInput(Mlp* mlp, const RowMatrix& x,
                              std::span<const std::span<const float>> params,
                              std::span<const FieldColumns> slices,
                              std::vector<Explanation>* out);

// logit = logits[i]: the model's own logit, so sigmoid(logit) is exactly
// what Predict returns. REQUIRES: logits.size() == out->size().
void SetLogits(std::span<const float> logits, std::vector<Explanation>* out);

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_EXPLAIN_UTIL_H_
