#include "models/gen/gen.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "models/data_reader.h"
#include "models/gen/click_model.h"
#include "models/schema.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::models::gen {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

GenOptions Small(const std::string& out, uint64_t seed) {
  return {.out = out, .rows = 20000, .users = 500, .items = 2000, .max_len = 20, .seed = seed};
}

TEST(GenTest, SmallGenerationIsDeterministicAndParses) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(GenSummary a, Generate(Small(dir.File("a"), 7)));
  ASSERT_OK_AND_ASSIGN(GenSummary b, Generate(Small(dir.File("b"), 7)));
  ASSERT_OK(Generate(Small(dir.File("c"), 8)));
  EXPECT_EQ(a.train_rows, 18000u);
  EXPECT_EQ(a.test_rows, 2000u);
  EXPECT_EQ(a.bayes_auc, b.bayes_auc);
  for (const char* name : {"schema.yaml", "train.tsv", "test.tsv", "bayes.json"}) {
    EXPECT_EQ(ReadAll(dir.File(std::string("a/") + name)), ReadAll(dir.File(std::string("b/") + name)))
        << name;
  }
  EXPECT_NE(ReadAll(dir.File("a/train.tsv")), ReadAll(dir.File("c/train.tsv")));
  EXPECT_THAT(ReadAll(dir.File("a/bayes.json")), HasSubstr("\"bayes_auc\": "));

  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Load(dir.File("a/schema.yaml")));
  EXPECT_EQ(schema.fields().size(), 10u);
  EXPECT_EQ(schema.fields()[schema.FieldIndex("hist_items")].table, "item");
  EXPECT_EQ(schema.fields()[schema.FieldIndex("hist_cats")].table, "category");
  EXPECT_EQ(schema.fields()[schema.FieldIndex("hist_brands")].table, "brand");
  ExampleReader reader(&schema, {{dir.File("a/train.tsv")}, {dir.File("a/test.tsv")}}, {});
  Example ex;
  uint64_t with_history = 0;
  const int hist = schema.FieldIndex("hist_items");
  while (true) {
    ASSERT_OK_AND_ASSIGN(bool more, reader.Next(&ex));
    if (!more) break;
    with_history += ex.FieldKeys(hist).empty() ? 0 : 1;
  }
  EXPECT_EQ(reader.stats().lines, 20000u);
  EXPECT_EQ(reader.stats().bad_lines, 0u);
  EXPECT_EQ(reader.stats().short_lines, 0u);
  EXPECT_GT(with_history, 15000u);
}

TEST(GenTest, DefaultsGiveASaneCtrAndBayesAuc) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(GenSummary s, Generate({.out = dir.File("d")}));
  EXPECT_GT(s.train_ctr, 0.05);
  EXPECT_LT(s.train_ctr, 0.20);
  EXPECT_GT(s.test_ctr, 0.05);
  EXPECT_LT(s.test_ctr, 0.20);
  EXPECT_GT(s.bayes_auc, 0.70);
  EXPECT_LT(s.bayes_auc, 0.90);
  EXPECT_GT(s.bayes_logloss, 0.1);
  EXPECT_LT(s.bayes_logloss, 0.5);
}

// The planted effects show in the empirical click rates.
TEST(GenTest, PlantedEffectsRaiseTheClickRate) {
  ClickWorld world({.users = 2000, .items = 5000, .rows = 100000, .seed = 3});
  double clicks[2][2] = {}, shown[2][2] = {};  // [preferred][related]
  for (int i = 0; i < 100000; ++i) {
    const Impression& imp = world.Next();
    shown[imp.preferred_category][imp.related_to_history] += 1;
    clicks[imp.preferred_category][imp.related_to_history] += imp.click ? 1 : 0;
  }
  const double other = clicks[0][0] / shown[0][0];
  const double preferred = clicks[1][0] / shown[1][0];
  const double related = (clicks[0][1] + clicks[1][1]) / (shown[0][1] + shown[1][1]);
  EXPECT_GT(preferred, 1.8 * other) << preferred << " vs " << other;
  EXPECT_GT(related, 2.5 * other) << related << " vs " << other;
  EXPECT_GT(shown[0][1] + shown[1][1], 5000);
}

// `tessera simulate` draws visits one at a time: the same users,
// candidates and planted probabilities as the generated impressions.
TEST(GenTest, TheShopperApiReplaysTheGeneratedWorld) {
  const WorldOptions options{.users = 300, .items = 1000, .rows = 1000, .seed = 5};
  ClickWorld generated(options), shopper(options);
  for (int i = 0; i < 200; ++i) {
    const Impression& imp = generated.Next();
    const uint32_t user = shopper.NextVisitor();
    ASSERT_EQ(user, imp.user) << i;
    const uint32_t item = shopper.Candidate(user);
    ASSERT_EQ(item, imp.item) << i;
    // Next() draws the device (one or two draws) and the click: replay them.
    const bool usual = shopper.Uniform() < 0.85;
    if (!usual) shopper.Uniform();
    EXPECT_DOUBLE_EQ(shopper.ClickProbability(user, item, imp.hour, imp.device), imp.probability);
    const bool click = shopper.Uniform() < imp.probability;
    ASSERT_EQ(click, imp.click) << i;
    if (click) shopper.RecordClick(user, item);
    EXPECT_EQ(shopper.UserHistory(user).size(),
              std::min<size_t>(imp.history.size() + (click ? 1 : 0), options.max_len));
  }
}

// Item drift: items drawn by exposure start trends that change their click
// probability (the same user, hour and device); without it nothing moves.
TEST(GenTest, ItemDriftMovesTheClickRatesOfShownItems) {
  const WorldOptions still{.users = 300, .items = 1000, .rows = 1000, .seed = 5, .drift = 0};
  WorldOptions trending = still;
  trending.item_drift = 0.5;
  ClickWorld before(still), after_still(still), after_trending(trending);
  for (int i = 0; i < 2000; ++i) {
    after_still.NextVisitor();
    after_trending.NextVisitor();
  }
  int moved_still = 0, moved_trending = 0;
  for (uint32_t item = 0; item < 1000; ++item) {
    const double p = before.ClickProbability(0, item, 12, Device::kIos);
    moved_still += after_still.ClickProbability(0, item, 12, Device::kIos) != p;
    moved_trending += after_trending.ClickProbability(0, item, 12, Device::kIos) != p;
  }
  EXPECT_EQ(moved_still, 0);
  // ~1000 trends drawn by exposure (Zipf): a few hundred distinct items.
  EXPECT_GT(moved_trending, 100);
  EXPECT_LT(moved_trending, 1000);
}

// --windows: consecutive windows of the same impression stream (the
// windows concatenated are the rows a single file would hold), each with its
// Bayes-optimal AUC; --drift moves interests, and the default is unchanged.
TEST(GenTest, WindowsCutTheStreamInTimeOrder) {
  testing::TempDir dir;
  GenOptions one = Small(dir.File("one"), 4);
  one.test_fraction = 0.5;  // train.tsv + test.tsv = the whole stream
  GenOptions windows = Small(dir.File("w"), 4);
  windows.windows = 3;
  ASSERT_OK(Generate(one));
  ASSERT_OK_AND_ASSIGN(GenSummary s, Generate(windows));
  ASSERT_EQ(s.windows.size(), 3u);
  EXPECT_EQ(s.windows[0].rows, 6666u);
  EXPECT_EQ(s.windows[2].rows, 6668u);
  EXPECT_EQ(s.train_rows + s.test_rows, 0u);
  EXPECT_EQ(ReadAll(dir.File("w/window-0.tsv")) + ReadAll(dir.File("w/window-1.tsv")) +
                ReadAll(dir.File("w/window-2.tsv")),
            ReadAll(dir.File("one/train.tsv")) + ReadAll(dir.File("one/test.tsv")));
  for (const GenWindow& w : s.windows) {
    EXPECT_GT(w.bayes_auc, 0.6);
    EXPECT_LT(w.bayes_auc, 0.95);
  }
  EXPECT_THAT(ReadAll(dir.File("w/bayes.json")), HasSubstr("\"file\": \"window-2.tsv\""));

  GenOptions drifting = windows;
  drifting.out = dir.File("d");
  drifting.drift = 0.2;
  ASSERT_OK(Generate(drifting));
  EXPECT_NE(ReadAll(dir.File("d/window-2.tsv")), ReadAll(dir.File("w/window-2.tsv")));
  GenOptions trending = windows;
  trending.out = dir.File("t");
  trending.item_drift = 0.05;
  ASSERT_OK(Generate(trending));
  EXPECT_NE(ReadAll(dir.File("t/window-2.tsv")), ReadAll(dir.File("w/window-2.tsv")));
  EXPECT_THAT(ReadAll(dir.File("t/bayes.json")), HasSubstr("\"item_drift\": 0.05"));

  ASSERT_OK_AND_ASSIGN(GenOptions o, ParseGenFlags({"--out", "x", "--windows", "4", "--drift=0.05"}));
  EXPECT_EQ(o.windows, 4u);
  EXPECT_DOUBLE_EQ(o.drift, 0.05);
  EXPECT_THAT(ParseGenFlags({"--out", "x", "--drift", "2"}).status().message(), HasSubstr("--drift"));
  ASSERT_OK_AND_ASSIGN(o, ParseGenFlags({"--out", "x", "--item_drift", "0.01"}));
  EXPECT_DOUBLE_EQ(o.item_drift, 0.01);
  EXPECT_THAT(ParseGenFlags({"--out", "x", "--item_drift", "-1"}).status().message(),
              HasSubstr("--item_drift"));
  EXPECT_THAT(ParseGenFlags({"--out", "x", "--rows", "5", "--windows", "6"}).status().message(),
              HasSubstr("--windows"));
}

TEST(GenTest, ParsesFlags) {
  ASSERT_OK_AND_ASSIGN(
      GenOptions o, ParseGenFlags({"--out", "/tmp/x", "--rows=1000", "--users", "50", "--items=100", "--seed",
                                   "9", "--max_len", "40", "--test_fraction=0.2"}));
  EXPECT_EQ(o.out, "/tmp/x");
  EXPECT_EQ(o.rows, 1000u);
  EXPECT_EQ(o.users, 50u);
  EXPECT_EQ(o.items, 100u);
  EXPECT_EQ(o.seed, 9u);
  EXPECT_EQ(o.max_len, 40u);
  EXPECT_DOUBLE_EQ(o.test_fraction, 0.2);
  EXPECT_THAT(ParseGenFlags({"--rows", "10"}).status().message(), HasSubstr("--out is required"));
  EXPECT_THAT(ParseGenFlags({"--out", "x", "--color", "red"}).status().message(),
              HasSubstr("unknown flag --color"));
  EXPECT_THAT(ParseGenFlags({"--out", "x", "--rows", "ten"}).status().message(),
              HasSubstr("--rows: bad value 'ten'"));
  EXPECT_THAT(ParseGenFlags({"--out", "x", "--max_len", "0"}).status().message(), HasSubstr("--max_len"));
  EXPECT_THAT(ParseGenFlags({"--out"}).status().message(), HasSubstr("--out needs a value"));
  EXPECT_OK(RunGen({"--help"}));
}

}  // namespace
}  // namespace tessera::models::gen
