// The Transformer layers of bst: masked softmax, LayerNorm, multi-head
// self-attention and the encoder layer. Forward golden values and
// invariants (masking, padding, dropout), and central finite-difference
// checks of every input and parameter gradient.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/layers/layer_norm.h"
#include "models/layers/masked_softmax.h"
#include "models/layers/self_attention.h"
#include "models/layers/transformer_encoder.h"
#include "tests/models/model_test_util.h"

namespace tessera::models::layers {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::Pointwise;
using tessera::models::testing::DenseParams;
using tessera::models::testing::ExpectGradientMatches;
using tessera::models::testing::Dot;
using tessera::models::testing::Flat;
using tessera::models::testing::Random;
using tessera::models::testing::Span;

// The losses below are sum(r .* y) over ~30 float outputs of order 1, whose
// rounding (~1e-6) over a central difference of 2 * h/2 is noise of ~1e-4 at
// h/2 = 5e-3, which is what ExpectGradientMatches compares. So the steps are
// larger than gradient_check_test's 2e-3 (the layers are smooth: truncation
// error ~1e-5) and the attention checks allow kNoise absolute error on top
// of the 1% relative one (several attention gradients are ~0, e.g. every
// key bias's: softmax ignores a shift shared by all keys).
constexpr float kStep = 1e-2f;
// The encoder (two LayerNorms, more terms) takes a larger step, with its
// ReLUs kept away from their kink (see the test).
constexpr float kEncoderStep = 2e-2f;
constexpr double kRel = 1e-2;
constexpr double kNoise = 3e-4;

// Zeros the rows of padding positions (p >= lengths[i] in block i of L).
void ZeroPadding(std::span<const uint32_t> lengths, Eigen::Index len_max, RowMatrix* m) {
  for (size_t i = 0; i < lengths.size(); ++i) {
    const Eigen::Index first = static_cast<Eigen::Index>(i) * len_max;
    m->middleRows(first + lengths[i], len_max - lengths[i]).setZero();
  }
}

bool AllFinite(const RowMatrix& m) { return m.array().isFinite().all(); }

// B = 4 examples of L = 4 positions: a partial, an empty, a full and a
// single-token sequence.
const std::vector<uint32_t> kLengths = {2, 0, 4, 1};
constexpr Eigen::Index kMaxLength = 4;

TEST(MaskedSoftmaxTest, NormalizesTheValidPrefixAndZerosTheRest) {
  RowMatrix x(3, 3);
  x << 0, std::log(3.0f), 100,  //
      1000, 1000, 1000,          // would overflow without subtracting the max
      5, 6, 7;
  const std::vector<uint32_t> valid = {2, 3, 0};
  MaskedSoftmax(x, valid);
  EXPECT_THAT(Flat(x), Pointwise(FloatNear(1e-6f), {0.25f, 0.75f, 0.0f,  //
                                                    1 / 3.0f, 1 / 3.0f, 1 / 3.0f,  //
                                                    0.0f, 0.0f, 0.0f}));
}

TEST(MaskedSoftmaxTest, WorksOnABlockWithOneCountForEveryRow) {
  RowMatrix x = RowMatrix::Constant(3, 4, 7.0f);
  MaskedSoftmax(x.block(1, 0, 2, 4), 2u);
  EXPECT_THAT(Flat(x), ElementsAre(7, 7, 7, 7,  //
                                   0.5f, 0.5f, 0, 0,  //
                                   0.5f, 0.5f, 0, 0));
}

TEST(MaskedSoftmaxTest, BackwardMatchesFiniteDifferences) {
  RowMatrix x = Random(4, 5, 1);
  const std::vector<uint32_t> valid = {5, 3, 0, 1};
  const RowMatrix r = Random(4, 5, 2);
  RowMatrix y;
  auto loss = [&] {
    y = x;
    MaskedSoftmax(y, valid);
    return Dot(r, y);
  };
  loss();
  RowMatrix dx = r;
  MaskedSoftmaxBackward(y, dx);
  EXPECT_THAT(Flat(dx.row(2)), ElementsAre(0, 0, 0, 0, 0));
  EXPECT_THAT(Flat(dx.row(3)), ElementsAre(0, 0, 0, 0, 0));  // one valid: constant 1
  ExpectGradientMatches(Span(x), Span(dx), loss, "x", kStep);
}

TEST(LayerNormTest, StartsAsTheIdentityNormalizationWithGammaOne) {
  LayerNorm norm(4);
  std::vector<DenseBlock> blocks;
  norm.AppendDenseBlocks("ln", &blocks);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].name, "ln.gain");
  EXPECT_EQ(blocks[1].name, "ln.bias");
  for (const DenseBlock& block : blocks) {
    EXPECT_EQ(block.size, 4u);
    EXPECT_EQ(block.init_stddev, 0.0f) << block.name;
  }
  const std::vector<float> gain(4, 0.0f), bias(4, 0.0f);
  const std::vector<std::span<const float>> params = {gain, bias};
  RowMatrix x(2, 4);
  x << 1, 2, 3, 4,  //
      5, 5, 5, 5;    // zero variance: epsilon keeps it finite
  const RowMatrix& y = norm.Forward(x, params);
  const float s = 1.0f / std::sqrt(1.25f + LayerNorm::kDefaultEpsilon);
  EXPECT_THAT(Flat(y), Pointwise(FloatNear(1e-5f), {-1.5f * s, -0.5f * s, 0.5f * s, 1.5f * s,  //
                                                    0.0f, 0.0f, 0.0f, 0.0f}));
}

TEST(LayerNormTest, GainAndBiasScaleAndShift) {
  LayerNorm norm(2);
  const std::vector<float> gain = {1, -0.5f}, bias = {10, 20};
  const std::vector<std::span<const float>> params = {gain, bias};
  RowMatrix x(1, 2);
  x << -3, 3;  // normalized: about (-1, 1)
  EXPECT_THAT(Flat(norm.Forward(x, params)), Pointwise(FloatNear(1e-4f), {8.0f, 20.5f}));
}

TEST(LayerNormTest, BackwardMatchesFiniteDifferences) {
  LayerNorm norm(6);
  std::vector<DenseBlock> blocks;
  norm.AppendDenseBlocks("ln", &blocks);
  DenseParams params(blocks, 3, /*zero_stddev=*/0.3f);
  RowMatrix x = Random(5, 6, 4);
  const RowMatrix r = Random(5, 6, 5);
  auto loss = [&] { return Dot(r, norm.Forward(x, params.in())); };
  loss();
  RowMatrix dx;
  norm.Backward(r, params.in(), params.out(), &dx);
  for (size_t b = 0; b < blocks.size(); ++b) {
    ExpectGradientMatches(params.values[b], params.grads[b], loss, blocks[b].name, kStep);
  }
  ExpectGradientMatches(Span(x), Span(dx), loss, "x", kStep);
}

TEST(SelfAttentionTest, DenseBlocksAreProjectionsWithXavierInitialization) {
  SelfAttention mha(8, 2);
  EXPECT_EQ(mha.head_dim(), 4u);
  std::vector<DenseBlock> blocks;
  mha.AppendDenseBlocks("att", &blocks);
  ASSERT_EQ(static_cast<int>(blocks.size()), mha.num_dense_blocks());
  const std::vector<std::string> names = {
      "att.query.weight", "att.query.bias", "att.key.weight",    "att.key.bias",
      "att.value.weight", "att.value.bias", "att.output.weight", "att.output.bias"};
  for (size_t b = 0; b < blocks.size(); ++b) {
    EXPECT_EQ(blocks[b].name, names[b]);
    EXPECT_EQ(blocks[b].size, b % 2 == 0 ? 64u : 8u) << names[b];
    EXPECT_FLOAT_EQ(blocks[b].init_stddev, b % 2 == 0 ? std::sqrt(1.0f / 8) : 0.0f) << names[b];
  }
}

// One head, identity projections, zero biases: y = softmax(x x^T / sqrt(d)) x.
TEST(SelfAttentionTest, OneHeadWithIdentityProjectionsAveragesValidRows) {
  SelfAttention mha(2, 1);
  const std::vector<float> eye = {1, 0, 0, 1}, zero = {0, 0};
  const std::vector<std::span<const float>> params = {eye, zero, eye, zero,
                                                      eye, zero, eye, zero};
  RowMatrix x(3, 2);
  x << 1, 0,  //
      0, 1,   //
      50, 50;  // padding: would dominate if it were a key
  const std::vector<uint32_t> lengths = {2};
  const RowMatrix& y = mha.Forward(x, lengths, params);
  const float e = std::exp(1.0f / std::sqrt(2.0f));
  const float a = e / (e + 1), b = 1 / (e + 1);  // weight on self, on the other
  EXPECT_THAT(Flat(y), Pointwise(FloatNear(1e-5f), {a, b, b, a, 0.0f, 0.0f}));
  EXPECT_NEAR(mha.attention(0, 0, 0, 0), a, 1e-6f);
  EXPECT_EQ(mha.attention(0, 0, 0, 2), 0.0f);
  EXPECT_EQ(mha.attention(0, 0, 2, 0), 0.0f);  // a padding query attends to nothing
}

class SelfAttentionHeadsTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(SelfAttentionHeadsTest, BackwardMatchesFiniteDifferences) {
  const uint32_t dim = 4;
  SelfAttention mha(dim, GetParam());
  std::vector<DenseBlock> blocks;
  mha.AppendDenseBlocks("att", &blocks);
  DenseParams params(blocks, 6, /*zero_stddev=*/0.2f);
  const Eigen::Index n = kLengths.size() * kMaxLength;
  RowMatrix x = Random(n, dim, 7);
  RowMatrix r = Random(n, dim, 8);
  ZeroPadding(kLengths, kMaxLength, &r);  // callers ignore padding outputs
  auto loss = [&] { return Dot(r, mha.Forward(x, kLengths, params.in())); };
  loss();
  RowMatrix dx;
  mha.Backward(x, r, params.in(), params.out(), &dx);
  for (size_t b = 0; b < blocks.size(); ++b) {
    ExpectGradientMatches(params.values[b], params.grads[b], loss, blocks[b].name, kStep,
                          kRel, kNoise);
  }
  ExpectGradientMatches(Span(x), Span(dx), loss, "x", kStep, kRel, kNoise);
  RowMatrix padding_dx = dx;
  ZeroPadding(kLengths, kMaxLength, &padding_dx);
  EXPECT_EQ(padding_dx, dx) << "padding rows of dx must be 0";
}

TEST_P(SelfAttentionHeadsTest, PaddingRowsDoNotChangeValidOutputsAndNothingIsNaN) {
  const uint32_t dim = 4;
  SelfAttention mha(dim, GetParam());
  std::vector<DenseBlock> blocks;
  mha.AppendDenseBlocks("att", &blocks);
  const DenseParams params(blocks, 9, /*zero_stddev=*/0.2f);
  const Eigen::Index n = kLengths.size() * kMaxLength;
  RowMatrix x = Random(n, dim, 10);
  RowMatrix before = mha.Forward(x, kLengths, params.in());
  ASSERT_TRUE(AllFinite(before));
  RowMatrix perturbed = x - Random(n, dim, 11, 100.0f);
  for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(kLengths.size()); ++i) {
    perturbed.middleRows(i * kMaxLength, kLengths[i]) =
        x.middleRows(i * kMaxLength, kLengths[i]);  // valid rows unchanged
  }
  RowMatrix after = mha.Forward(perturbed, kLengths, params.in());
  ASSERT_TRUE(AllFinite(after));
  ZeroPadding(kLengths, kMaxLength, &before);
  ZeroPadding(kLengths, kMaxLength, &after);
  EXPECT_EQ(before, after);
}

TEST_P(SelfAttentionHeadsTest, HeadAveragedAttentionSumsToOneOverValidKeys) {
  const uint32_t dim = 4;
  SelfAttention mha(dim, GetParam());
  std::vector<DenseBlock> blocks;
  mha.AppendDenseBlocks("att", &blocks);
  const DenseParams params(blocks, 12);
  const RowMatrix x = Random(kLengths.size() * kMaxLength, dim, 13);
  (void)mha.Forward(x, kLengths, params.in());
  ASSERT_EQ(mha.batch_size(), 4);
  ASSERT_EQ(mha.max_length(), kMaxLength);
  std::vector<float> weights(kMaxLength);
  for (int i = 0; i < 4; ++i) {
    for (int q = 0; q < kMaxLength; ++q) {
      mha.HeadAveragedAttention(i, q, weights);
      double valid_sum = 0, padding_sum = 0;
      for (int k = 0; k < kMaxLength; ++k) {
        EXPECT_GE(weights[k], 0.0f);
        (static_cast<uint32_t>(k) < kLengths[i] ? valid_sum : padding_sum) += weights[k];
        double mean = 0;
        for (uint32_t h = 0; h < GetParam(); ++h) mean += mha.attention(i, h, q, k);
        EXPECT_NEAR(weights[k], mean / GetParam(), 1e-6);
      }
      const bool valid_query = static_cast<uint32_t>(q) < kLengths[i];
      EXPECT_NEAR(valid_sum, valid_query ? 1.0 : 0.0, 1e-5) << i << " " << q;
      EXPECT_EQ(padding_sum, 0.0) << i << " " << q;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, SelfAttentionHeadsTest, ::testing::Values(1u, 2u));

TEST(SelfAttentionTest, EmptyBatchAndAllEmptySequencesAreFinite) {
  SelfAttention mha(4, 2);
  std::vector<DenseBlock> blocks;
  mha.AppendDenseBlocks("att", &blocks);
  DenseParams params(blocks, 14, /*zero_stddev=*/0.2f);
  const RowMatrix empty(0, 4);
  EXPECT_EQ(mha.Forward(empty, {}, params.in()).rows(), 0);
  const std::vector<uint32_t> lengths = {0, 0};
  const RowMatrix x = Random(4, 4, 15);
  const RowMatrix& y = mha.Forward(x, lengths, params.in());
  ASSERT_TRUE(AllFinite(y));
  for (Eigen::Index r = 0; r < 4; ++r) {  // no context: every row is the output bias
    EXPECT_THAT(Flat(y.row(r)), Pointwise(FloatNear(1e-6f), params.values[7]));
  }
  RowMatrix dx;
  mha.Backward(x, RowMatrix::Ones(4, 4), params.in(), params.out(), &dx);
  EXPECT_TRUE(AllFinite(dx));
  EXPECT_TRUE(dx.isZero());
}

using Norm = TransformerEncoder::Norm;

std::string NormName(Norm norm) { return norm == Norm::kPre ? "Pre" : "Post"; }

TEST(TransformerEncoderTest, PostLnIsTheDefault) {
  EXPECT_EQ(TransformerEncoder(8, 2, 16, 0.1f).norm(), Norm::kPost);
  EXPECT_EQ(TransformerEncoder(8, 2, 16, 0.1f, Norm::kPre).norm(), Norm::kPre);
}

// Tests run for both LayerNorm placements.
class TransformerEncoderNormTest : public ::testing::TestWithParam<Norm> {};

TEST_P(TransformerEncoderNormTest, DenseBlocksInOrder) {
  TransformerEncoder layer(8, 2, 16, 0.1f, GetParam());
  std::vector<DenseBlock> blocks;
  layer.AppendDenseBlocks("bst.0", &blocks);
  ASSERT_EQ(static_cast<int>(blocks.size()), layer.num_dense_blocks());
  std::vector<std::string> names;
  for (const DenseBlock& block : blocks) names.push_back(block.name);
  EXPECT_THAT(names, ElementsAre("bst.0.attention.query.weight", "bst.0.attention.query.bias",
                                 "bst.0.attention.key.weight", "bst.0.attention.key.bias",
                                 "bst.0.attention.value.weight", "bst.0.attention.value.bias",
                                 "bst.0.attention.output.weight", "bst.0.attention.output.bias",
                                 "bst.0.ln1.gain", "bst.0.ln1.bias", "bst.0.ffn.0.weight",
                                 "bst.0.ffn.0.bias", "bst.0.ffn.1.weight", "bst.0.ffn.1.bias",
                                 "bst.0.ln2.gain", "bst.0.ln2.bias"));
  EXPECT_EQ(blocks[10].size, 8u * 16);
  EXPECT_EQ(blocks[12].size, 16u * 8);
}

struct EncoderCase {
  Norm norm;
  uint32_t heads;
  float dropout;
  bool training;
};

// Names a failing case instead of printing its bytes.
void PrintTo(const EncoderCase& c, std::ostream* os) {
  *os << NormName(c.norm) << " heads " << c.heads << " dropout " << c.dropout
      << (c.training ? " training" : "");
}

std::vector<EncoderCase> EncoderCases() {
  std::vector<EncoderCase> cases;
  for (Norm norm : {Norm::kPost, Norm::kPre}) {
    cases.push_back({norm, 1, 0.0f, true});
    cases.push_back({norm, 2, 0.0f, true});
    cases.push_back({norm, 2, 0.3f, false});
    cases.push_back({norm, 2, 0.3f, true});
  }
  return cases;
}

class TransformerEncoderGradientTest : public ::testing::TestWithParam<EncoderCase> {};

// With dropout active the loss is evaluated with the same seed, hence the
// same masks, as the Forward that Backward differentiates.
TEST_P(TransformerEncoderGradientTest, BackwardMatchesFiniteDifferences) {
  const EncoderCase& c = GetParam();
  const uint32_t dim = 4;
  TransformerEncoder layer(dim, c.heads, 6, c.dropout, c.norm);
  std::vector<DenseBlock> blocks;
  layer.AppendDenseBlocks("enc", &blocks);
  DenseParams params(blocks, 16, /*zero_stddev=*/0.2f);
  // Keeps the FFN's units active (pre-activations about 3 +- 0.4): the
  // encoder's loss is too noisy in float for steps much below 1e-2, and a
  // step across a ReLU kink of any of the ~40 units on valid rows spoils
  // the difference of every parameter upstream of it (kinks close to the
  // point fool the kink detector: both step sizes straddle them). The
  // ReLU's backward is checked by MlpTest; here the wiring is. The FFN's
  // input is a LayerNorm's output in both variants, so the same scaling
  // holds for kPre.
  for (float& w : params.values[10]) w *= 0.25f;  // enc.ffn.0.weight
  for (float& b : params.values[11]) b += 3.0f;   // enc.ffn.0.bias
  const Eigen::Index n = kLengths.size() * kMaxLength;
  RowMatrix x = Random(n, dim, 17);
  RowMatrix r = Random(n, dim, 18);
  ZeroPadding(kLengths, kMaxLength, &r);
  auto loss = [&] {
    return Dot(r, layer.Forward(x, kLengths, params.in(), c.training, /*seed=*/99));
  };
  loss();
  RowMatrix dx;
  layer.Backward(x, r, params.in(), params.out(), &dx);
  for (size_t b = 0; b < blocks.size(); ++b) {
    ExpectGradientMatches(params.values[b], params.grads[b], loss, blocks[b].name,
                          kEncoderStep, kRel, kNoise);
  }
  ExpectGradientMatches(Span(x), Span(dx), loss, "x", kEncoderStep, kRel, kNoise);
  // The padding contract: dy's padding rows are 0, so dx's are too (in
  // kPre the residual path passes them straight through).
  RowMatrix padding_dx = dx;
  ZeroPadding(kLengths, kMaxLength, &padding_dx);
  EXPECT_EQ(padding_dx, dx) << "padding rows of dx must be 0";
}

INSTANTIATE_TEST_SUITE_P(Cases, TransformerEncoderGradientTest,
                         ::testing::ValuesIn(EncoderCases()),
                         [](const ::testing::TestParamInfo<EncoderCase>& info) {
                           return NormName(info.param.norm) + "Heads" +
                                  std::to_string(info.param.heads) +
                                  (info.param.dropout > 0 ? "Dropout" : "") +
                                  (info.param.training ? "Training" : "");
                         });

TEST_P(TransformerEncoderNormTest, PaddingRowsDoNotChangeValidOutputs) {
  TransformerEncoder layer(4, 2, 8, 0.0f, GetParam());
  std::vector<DenseBlock> blocks;
  layer.AppendDenseBlocks("enc", &blocks);
  const DenseParams params(blocks, 19, /*zero_stddev=*/0.2f);
  const Eigen::Index n = kLengths.size() * kMaxLength;
  const RowMatrix x = Random(n, 4, 20);
  RowMatrix before = layer.Forward(x, kLengths, params.in(), false, 1);
  ASSERT_TRUE(AllFinite(before));
  RowMatrix perturbed = x + Random(n, 4, 21, 100.0f);
  for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(kLengths.size()); ++i) {
    perturbed.middleRows(i * kMaxLength, kLengths[i]) = x.middleRows(i * kMaxLength, kLengths[i]);
  }
  RowMatrix after = layer.Forward(perturbed, kLengths, params.in(), false, 1);
  ASSERT_TRUE(AllFinite(after));
  ZeroPadding(kLengths, kMaxLength, &before);
  ZeroPadding(kLengths, kMaxLength, &after);
  EXPECT_EQ(before, after);
}

TEST_P(TransformerEncoderNormTest, EvalIgnoresDropoutAndTrainingDropsWithTheSeed) {
  std::vector<DenseBlock> blocks;
  TransformerEncoder with_dropout(4, 2, 8, 0.5f, GetParam());
  TransformerEncoder without(4, 2, 8, 0.0f, GetParam());
  with_dropout.AppendDenseBlocks("enc", &blocks);
  const DenseParams params(blocks, 22, /*zero_stddev=*/0.2f);
  const RowMatrix x = Random(kLengths.size() * kMaxLength, 4, 23);
  const RowMatrix reference = without.Forward(x, kLengths, params.in(), true, 1);
  EXPECT_EQ(with_dropout.Forward(x, kLengths, params.in(), false, 1), reference);
  EXPECT_EQ(with_dropout.Forward(x, kLengths, params.in(), false, 2), reference);
  const RowMatrix trained = with_dropout.Forward(x, kLengths, params.in(), true, 1);
  EXPECT_TRUE(AllFinite(trained));
  EXPECT_NE(trained, reference);
  EXPECT_EQ(with_dropout.Forward(x, kLengths, params.in(), true, 1), trained);
  EXPECT_NE(with_dropout.Forward(x, kLengths, params.in(), true, 2), trained);
}

INSTANTIATE_TEST_SUITE_P(Norms, TransformerEncoderNormTest,
                         ::testing::Values(Norm::kPost, Norm::kPre),
                         [](const ::testing::TestParamInfo<Norm>& info) {
                           return NormName(info.param);
                         });

// Pre-LN's residual stream passes x through untouched: with the sublayers'
// last projections (and biases) zero, y == x exactly, also under dropout
// (masks scale zeros), and Backward passes dy straight to dx.
TEST(TransformerEncoderTest, PreLnWithZeroSublayerOutputsIsTheIdentity) {
  TransformerEncoder layer(4, 2, 8, 0.3f, Norm::kPre);
  std::vector<DenseBlock> blocks;
  layer.AppendDenseBlocks("enc", &blocks);
  DenseParams params(blocks, 24, /*zero_stddev=*/0.2f);
  for (size_t b : {6, 7, 12, 13}) {  // attention.output.{weight,bias}, ffn.1.{weight,bias}
    std::fill(params.values[b].begin(), params.values[b].end(), 0.0f);
  }
  const Eigen::Index n = kLengths.size() * kMaxLength;
  const RowMatrix x = Random(n, 4, 25);
  for (bool training : {false, true}) {
    EXPECT_EQ(layer.Forward(x, kLengths, params.in(), training, 3), x) << training;
    RowMatrix dy = Random(n, 4, 26);
    ZeroPadding(kLengths, kMaxLength, &dy);
    RowMatrix dx;
    layer.Backward(x, dy, params.in(), params.out(), &dx);
    EXPECT_EQ(dx, dy) << training;
  }
}

TEST(DropoutMaskTest, DropsAboutTheRateAndScalesTheRest) {
  for (float rate : {0.1f, 0.5f}) {
    RowMatrix mask;
    DropoutMask(rate, /*seed=*/7, /*stream=*/0, 200, 100, &mask);
    const double dropped = (mask.array() == 0.0f).cast<double>().sum() / mask.size();
    EXPECT_NEAR(dropped, rate, 0.01) << rate;  // 20000 draws: ~5 standard deviations
    EXPECT_TRUE((mask.array() == 0.0f || mask.array() == 1.0f / (1.0f - rate)).all());
    EXPECT_NEAR(mask.cast<double>().mean(), 1.0, 0.03) << rate;  // inverted dropout
    RowMatrix again, other_stream, other_seed;
    DropoutMask(rate, 7, 0, 200, 100, &again);
    DropoutMask(rate, 7, 1, 200, 100, &other_stream);
    DropoutMask(rate, 8, 0, 200, 100, &other_seed);
    EXPECT_EQ(again, mask);
    EXPECT_NE(other_stream, mask);
    EXPECT_NE(other_seed, mask);
  }
  RowMatrix none;
  DropoutMask(0.0f, 1, 0, 3, 3, &none);
  EXPECT_TRUE(none.isOnes());
}

}  // namespace
}  // namespace tessera::models::layers
