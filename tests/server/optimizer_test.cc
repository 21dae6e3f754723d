// Each optimizer against a scalar double-precision reference written from
// the papers' formulas, over a long random gradient sequence; plus the
// factory's validation and the Optimizer contract.
#include "server/optimizer/optimizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace tessera::server {
namespace {

using ::testing::FloatNear;
using ::testing::HasSubstr;

// One row of the reference: weights and up to two state variables per dim.
struct RefRow {
  std::vector<double> w, a, b;
};

// The paper formulas, one coordinate at a time, in double.
void RefSgd(const OptimizerConfig& c, RefRow& r, const std::vector<double>& g) {
  for (size_t i = 0; i < r.w.size(); ++i) r.w[i] = r.w[i] - c.learning_rate * (g[i] + c.l2 * r.w[i]);
}

void RefAdagrad(const OptimizerConfig& c, RefRow& r, const std::vector<double>& g) {
  for (size_t i = 0; i < r.w.size(); ++i) {
    const double grad = g[i] + c.l2 * r.w[i];
    r.a[i] += grad * grad;
    r.w[i] -= c.learning_rate * grad / (std::sqrt(r.a[i]) + c.epsilon);
  }
}

void RefAdam(const OptimizerConfig& c, RefRow& r, const std::vector<double>& g, int t) {
  for (size_t i = 0; i < r.w.size(); ++i) {
    const double grad = g[i] + c.l2 * r.w[i];
    r.a[i] = c.beta1 * r.a[i] + (1 - c.beta1) * grad;
    r.b[i] = c.beta2 * r.b[i] + (1 - c.beta2) * grad * grad;
    const double m_hat = r.a[i] / (1 - std::pow(double{c.beta1}, t));
    const double v_hat = r.b[i] / (1 - std::pow(double{c.beta2}, t));
    r.w[i] -= c.learning_rate * m_hat / (std::sqrt(v_hat) + c.epsilon);
  }
}

// McMahan et al. 2013, Algorithm 1 (a = z, b = n).
void RefFtrl(const OptimizerConfig& c, RefRow& r, const std::vector<double>& g) {
  const double alpha = c.learning_rate, beta = c.ftrl_beta, l1 = c.l1, l2 = c.l2;
  for (size_t i = 0; i < r.w.size(); ++i) {
    const double sigma = (std::sqrt(r.b[i] + g[i] * g[i]) - std::sqrt(r.b[i])) / alpha;
    r.a[i] += g[i] - sigma * r.w[i];
    r.b[i] += g[i] * g[i];
    if (std::abs(r.a[i]) <= l1) {
      r.w[i] = 0;
    } else {
      const double sign = r.a[i] < 0 ? -1.0 : 1.0;
      r.w[i] = -(r.a[i] - sign * l1) / ((beta + std::sqrt(r.b[i])) / alpha + l2);
    }
  }
}

struct Case {
  std::string name;
  OptimizerConfig config;
  int state_floats;
};

OptimizerConfig Config(OptimizerType type) {
  OptimizerConfig c;
  c.type = type;
  return c;
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  OptimizerConfig c = Config(OptimizerType::kSgd);
  c.learning_rate = 0.05f;
  cases.push_back({"Sgd", c, 0});
  c.l2 = 0.1f;
  cases.push_back({"SgdL2", c, 0});
  c = Config(OptimizerType::kAdagrad);
  c.learning_rate = 0.1f;
  cases.push_back({"Adagrad", c, 1});
  c.l2 = 0.01f;
  c.epsilon = 1e-3f;
  c.initial_accumulator = 0.0f;
  cases.push_back({"AdagradL2ZeroAccumulator", c, 1});
  c = Config(OptimizerType::kAdam);
  c.learning_rate = 0.01f;
  cases.push_back({"Adam", c, 2});
  c.l2 = 0.05f;
  c.beta1 = 0.5f;
  c.beta2 = 0.9f;
  c.epsilon = 1e-6f;
  cases.push_back({"AdamL2", c, 2});
  c = Config(OptimizerType::kFtrl);
  c.learning_rate = 0.5f;
  cases.push_back({"Ftrl", c, 2});
  c.l1 = 0.5f;
  c.l2 = 1.0f;
  c.ftrl_beta = 0.5f;
  cases.push_back({"FtrlL1L2", c, 2});
  c.initial_accumulator = 0.0f;
  c.ftrl_beta = 0.0f;
  c.l2 = 0.0f;
  cases.push_back({"FtrlPaperN0BetaZero", c, 2});
  return cases;
}

class OptimizerTest : public ::testing::TestWithParam<Case> {};

TEST_P(OptimizerTest, InitStateAndStateSize) {
  const Case& tc = GetParam();
  ASSERT_OK_AND_ASSIGN(auto opt, NewOptimizer(tc.config));
  EXPECT_EQ(opt->state_floats_per_dim(), tc.state_floats);
  constexpr size_t kDim = 5;
  std::vector<float> state(kDim * tc.state_floats, -7.0f);
  opt->InitState(state);
  const float n0 = tc.config.initial_accumulator;
  for (size_t i = 0; i < state.size(); ++i) {
    switch (tc.config.type) {
      case OptimizerType::kAdagrad:
        EXPECT_EQ(state[i], n0);
        break;
      case OptimizerType::kAdam:
        EXPECT_EQ(state[i], 0.0f);
        break;
      case OptimizerType::kFtrl:  // z[dim] = 0, then n[dim] = n0.
        EXPECT_EQ(state[i], i < kDim ? 0.0f : n0);
        break;
      case OptimizerType::kSgd:
        break;
    }
  }
}

TEST_P(OptimizerTest, MatchesDoubleReferenceOverRandomGradients) {
  const Case& tc = GetParam();
  const OptimizerConfig& c = tc.config;
  ASSERT_OK_AND_ASSIGN(auto opt, NewOptimizer(c));
  constexpr size_t kDim = 19;  // Odd: exercises the vector loops' tails.
  constexpr int kSteps = 80;
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> init(-0.1f, 0.1f);
  std::normal_distribution<float> gauss(0.0f, 1.0f);

  std::vector<float> w(kDim), state(kDim * tc.state_floats), g(kDim);
  for (float& x : w) x = init(rng);
  opt->InitState(state);
  RefRow ref{std::vector<double>(w.begin(), w.end()), {}, {}};
  if (tc.state_floats >= 1) ref.a.assign(state.begin(), state.begin() + kDim);
  if (tc.state_floats >= 2) ref.b.assign(state.begin() + kDim, state.end());

  for (int t = 1; t <= kSteps; ++t) {
    for (size_t i = 0; i < kDim; ++i) g[i] = gauss(rng) * (i % 3 == 0 ? 0.01f : 1.0f);
    if (t % 10 == 0) g[3] = 0.0f;  // Zero gradients happen.
    const std::vector<double> gd(g.begin(), g.end());
    opt->Update(w, state, g, static_cast<uint32_t>(t));
    switch (c.type) {
      case OptimizerType::kSgd: RefSgd(c, ref, gd); break;
      case OptimizerType::kAdagrad: RefAdagrad(c, ref, gd); break;
      case OptimizerType::kAdam: RefAdam(c, ref, gd, t); break;
      case OptimizerType::kFtrl: RefFtrl(c, ref, gd); break;
    }
    for (size_t i = 0; i < kDim; ++i) {
      const double tol = 2e-5 * (1 + std::abs(ref.w[i]));
      ASSERT_THAT(w[i], FloatNear(ref.w[i], tol)) << "step " << t << " dim " << i;
      if (tc.state_floats >= 1) {
        ASSERT_THAT(state[i], FloatNear(ref.a[i], 2e-5 * (1 + std::abs(ref.a[i]))));
      }
      if (tc.state_floats >= 2) {
        ASSERT_THAT(state[kDim + i], FloatNear(ref.b[i], 2e-5 * (1 + std::abs(ref.b[i]))));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, OptimizerTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

TEST(OptimizerGoldenTest, AdamFirstStepMovesByLearningRate) {
  // Bias correction makes step 1 w -= lr * g / (|g| + eps), whatever beta1/beta2.
  OptimizerConfig c = Config(OptimizerType::kAdam);
  c.learning_rate = 0.1f;
  ASSERT_OK_AND_ASSIGN(auto opt, NewOptimizer(c));
  std::vector<float> w = {1.0f, 1.0f}, state(4), g = {3.0f, -0.5f};
  opt->InitState(state);
  opt->Update(w, state, g, 1);
  EXPECT_THAT(w[0], FloatNear(0.9f, 1e-6));
  EXPECT_THAT(w[1], FloatNear(1.1f, 1e-6));
}

TEST(OptimizerGoldenTest, AdagradFirstStep) {
  OptimizerConfig c = Config(OptimizerType::kAdagrad);  // lr 0.01, G0 0.1
  ASSERT_OK_AND_ASSIGN(auto opt, NewOptimizer(c));
  std::vector<float> w = {0.5f}, state(1), g = {0.3f};
  opt->InitState(state);
  opt->Update(w, state, g, 1);
  EXPECT_THAT(state[0], FloatNear(0.19f, 1e-7));
  EXPECT_THAT(w[0], FloatNear(0.5f - 0.01f * 0.3f / std::sqrt(0.19f), 1e-7));
}

TEST(OptimizerGoldenTest, FtrlL1KeepsSmallWeightsAtExactlyZero) {
  OptimizerConfig c = Config(OptimizerType::kFtrl);
  c.l1 = 10.0f;
  ASSERT_OK_AND_ASSIGN(auto opt, NewOptimizer(c));
  std::vector<float> w = {0.01f, -0.01f}, state(4), g = {0.5f, -2.0f};
  opt->InitState(state);
  for (uint32_t t = 1; t <= 5; ++t) opt->Update(w, state, g, t);
  EXPECT_EQ(w[0], 0.0f);
  EXPECT_EQ(w[1], 0.0f);
}

TEST(OptimizerFactoryTest, RejectsBadConfigs) {
  struct Bad {
    OptimizerType type;
    void (*mutate)(OptimizerConfig&);
    const char* field;
  };
  const Bad bad[] = {
      {OptimizerType::kSgd, [](OptimizerConfig& c) { c.learning_rate = 0; }, "learning_rate"},
      {OptimizerType::kSgd, [](OptimizerConfig& c) { c.learning_rate = NAN; }, "learning_rate"},
      {OptimizerType::kSgd, [](OptimizerConfig& c) { c.l2 = -1; }, "l2"},
      {OptimizerType::kAdagrad,
       [](OptimizerConfig& c) { c.initial_accumulator = 0, c.epsilon = 0; }, "initial_accumulator"},
      {OptimizerType::kAdagrad, [](OptimizerConfig& c) { c.epsilon = INFINITY; }, "epsilon"},
      {OptimizerType::kAdam, [](OptimizerConfig& c) { c.beta1 = 1; }, "beta1"},
      {OptimizerType::kAdam, [](OptimizerConfig& c) { c.beta2 = -0.1f; }, "beta2"},
      {OptimizerType::kAdam, [](OptimizerConfig& c) { c.epsilon = 0; }, "epsilon"},
      {OptimizerType::kFtrl, [](OptimizerConfig& c) { c.l1 = -1; }, "l1"},
      {OptimizerType::kFtrl, [](OptimizerConfig& c) { c.ftrl_beta = -1; }, "ftrl_beta"},
      {OptimizerType::kFtrl, [](OptimizerConfig& c) { c.learning_rate = -1; }, "learning_rate"},
  };
  for (const Bad& b : bad) {
    OptimizerConfig c = Config(b.type);
    b.mutate(c);
    auto opt = NewOptimizer(c);
    ASSERT_FALSE(opt.ok()) << b.field;
    EXPECT_EQ(opt.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(opt.status().message(), HasSubstr(b.field));
  }
  OptimizerConfig unknown;
  unknown.type = static_cast<OptimizerType>(42);
  EXPECT_EQ(NewOptimizer(unknown).status().code(), StatusCode::kInvalidArgument);
}

TEST(OptimizerFactoryTest, IgnoresFieldsATypeDoesNotUse) {
  OptimizerConfig c = Config(OptimizerType::kSgd);
  c.beta1 = 5;  // Adam-only.
  c.epsilon = -1;
  EXPECT_OK(NewOptimizer(c));
}

}  // namespace
}  // namespace tessera::server
