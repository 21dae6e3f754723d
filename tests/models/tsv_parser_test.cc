#include "models/tsv_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "models/feature_hash.h"
#include "tests/testing/status_matchers.h"

namespace tessera::models {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatEq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kSchema = R"(
fields:
  - {name: user_id, type: categorical}
  - {name: item_id, type: categorical, table: item}
  - {name: price, type: numeric, transform: log1p}
  - {name: count, type: numeric}
  - {name: hist, type: sequence, table: item, max_len: 3}
)";

class TsvParserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto schema = Schema::Parse(kSchema, "test");
    ASSERT_OK(schema);
    schema_ = *std::move(schema);
  }
  LineKind Parse(std::string_view line) {
    reason_.clear();
    return TsvParser(&schema_).Parse(line, &ex_, &reason_);
  }
  static Key User(std::string_view token) { return HashFeature(0, token); }
  static Key Item(std::string_view token) { return HashFeature(1, token); }

  Schema schema_;
  Example ex_;
  std::string reason_;
};

TEST_F(TsvParserTest, ParsesACompleteLine) {
  ASSERT_EQ(Parse("1\tu1\ti9\t2.5\t-3\ti1,i2"), LineKind::kOk) << reason_;
  EXPECT_EQ(ex_.label, 1.0f);
  EXPECT_THAT(ex_.numeric, ElementsAre(FloatEq(std::log1p(2.5f)), FloatEq(-3.0f)));
  EXPECT_THAT(ex_.FieldKeys(0), ElementsAre(User("u1")));
  EXPECT_THAT(ex_.FieldKeys(1), ElementsAre(Item("i9")));
  EXPECT_THAT(ex_.FieldKeys(2), IsEmpty());
  EXPECT_THAT(ex_.FieldKeys(3), IsEmpty());
  EXPECT_THAT(ex_.FieldKeys(4), ElementsAre(Item("i1"), Item("i2")));
  EXPECT_THAT(reason_, IsEmpty());
}

TEST_F(TsvParserTest, FieldsNamingTheSameTableShareKeys) {
  ASSERT_EQ(Parse("0\tu1\ti2\t1\t1\ti2"), LineKind::kOk);
  EXPECT_EQ(ex_.FieldKeys(1)[0], ex_.FieldKeys(4)[0]);
  ASSERT_EQ(Parse("0\ti2\ti2\t1\t1\t"), LineKind::kOk);
  EXPECT_NE(ex_.FieldKeys(0)[0], ex_.FieldKeys(1)[0]);  // user_id is another table
}

TEST_F(TsvParserTest, ShortLineIsPaddedWithEmptyFields) {
  ASSERT_EQ(Parse("0\tu1\ti9"), LineKind::kShort);
  EXPECT_EQ(ex_.label, 0.0f);
  EXPECT_THAT(ex_.FieldKeys(1), ElementsAre(Item("i9")));
  EXPECT_THAT(ex_.numeric, ElementsAre(0.0f, 0.0f));
  EXPECT_THAT(ex_.FieldKeys(4), IsEmpty());
  EXPECT_EQ(Parse("1"), LineKind::kShort);
  EXPECT_EQ(Parse("1\tu1\ti9\t1\t2"), LineKind::kShort);
}

TEST_F(TsvParserTest, ExtraColumnsAreBad) {
  ASSERT_EQ(Parse("1\tu1\ti9\t2.5\t3\ti1\textra\tmore"), LineKind::kBad);
  EXPECT_EQ(reason_, "8 columns, expected at most 6 (label + 5 fields)");
  EXPECT_EQ(Parse("1\tu1\ti9\t2.5\t3\ti1\t"), LineKind::kBad);
}

TEST_F(TsvParserTest, BadLabels) {
  for (const char* line : {"2\tu1", "1.0\tu1", "-\tu1", " 1\tu1", "yes"}) {
    EXPECT_EQ(Parse(line), LineKind::kBad) << line;
    EXPECT_THAT(reason_, HasSubstr("bad label")) << line;
    EXPECT_THAT(reason_, HasSubstr("must be 0 or 1"));
  }
  EXPECT_EQ(Parse(""), LineKind::kBad);
  EXPECT_EQ(reason_, "empty line");
}

TEST_F(TsvParserTest, UnparsableNumbersAreBad) {
  for (const char* value : {"abc", "1.5x", "nan", "inf", "1,5", " 3", "--1", "+"}) {
    EXPECT_EQ(Parse(std::string("1\tu\ti\t") + value), LineKind::kBad) << value;
    EXPECT_THAT(reason_, HasSubstr("field 2 (price): not a number: '")) << value;
  }
  EXPECT_EQ(Parse("1\tu\ti\t1\t12.5.1"), LineKind::kBad);
  EXPECT_THAT(reason_, HasSubstr("field 3 (count): not a number: '12.5.1'"));
}

TEST_F(TsvParserTest, AcceptsDecimalForms) {
  ASSERT_EQ(Parse("1\tu\ti\t1e3\t+4"), LineKind::kShort);
  EXPECT_THAT(ex_.numeric, ElementsAre(FloatEq(std::log1p(1000.0f)), FloatEq(4.0f)));
  ASSERT_EQ(Parse("1\tu\ti\t.5\t-0.25"), LineKind::kShort);
  EXPECT_THAT(ex_.numeric, ElementsAre(FloatEq(std::log1p(0.5f)), FloatEq(-0.25f)));
}

TEST_F(TsvParserTest, MissingNumericIsZeroAfterTheTransform) {
  ASSERT_EQ(Parse("1\tu\ti\t\t\ti1"), LineKind::kOk);
  EXPECT_THAT(ex_.numeric, ElementsAre(0.0f, 0.0f));
}

TEST_F(TsvParserTest, Log1pOfNegativeIsZero) {
  ASSERT_EQ(Parse("1\tu\ti\t-5\t-5\t"), LineKind::kOk);
  EXPECT_THAT(ex_.numeric, ElementsAre(0.0f, -5.0f));  // count has no transform
}

TEST_F(TsvParserTest, MissingCategoricalContributesNoKey) {
  ASSERT_EQ(Parse("0\t\ti3\t1\t1\t"), LineKind::kOk);
  EXPECT_THAT(ex_.FieldKeys(0), IsEmpty());
  EXPECT_THAT(ex_.keys, ElementsAre(Item("i3")));
}

TEST_F(TsvParserTest, CategoricalWithACommaIsBad) {
  ASSERT_EQ(Parse("0\tu1,u2\ti3"), LineKind::kBad);
  EXPECT_THAT(reason_, HasSubstr("field 0 (user_id): categorical value contains ','"));
}

TEST_F(TsvParserTest, SequenceKeepsTheMostRecentMaxLen) {
  ASSERT_EQ(Parse("0\tu\ti\t1\t1\ti1,i2,i3,i4,i5"), LineKind::kOk);
  EXPECT_THAT(ex_.FieldKeys(4), ElementsAre(Item("i3"), Item("i4"), Item("i5")));
}

TEST_F(TsvParserTest, SequenceSkipsEmptyTokens) {
  ASSERT_EQ(Parse("0\tu\ti\t1\t1\t,i1,,i2,"), LineKind::kOk);
  EXPECT_THAT(ex_.FieldKeys(4), ElementsAre(Item("i1"), Item("i2")));
  ASSERT_EQ(Parse("0\tu\ti\t1\t1\t,,,"), LineKind::kOk);
  EXPECT_THAT(ex_.FieldKeys(4), IsEmpty());
}

TEST_F(TsvParserTest, IgnoresATrailingCarriageReturn) {
  ASSERT_EQ(Parse("1\tu1\ti9\t2.5\t3\ti1\r"), LineKind::kOk);
  EXPECT_THAT(ex_.FieldKeys(4), ElementsAre(Item("i1")));
}

TEST_F(TsvParserTest, QuotesOfLongValuesAreCut) {
  ASSERT_EQ(Parse("1\tu\ti\t" + std::string(1000, 'x')), LineKind::kBad);
  EXPECT_LT(reason_.size(), 120u);
  EXPECT_THAT(reason_, HasSubstr("(1000 bytes)"));
}

TEST_F(TsvParserTest, ReusesTheExampleBuffers) {
  ASSERT_EQ(Parse("1\tu1\ti9\t2.5\t3\ti1,i2,i3"), LineKind::kOk);
  const Key* keys = ex_.keys.data();
  const float* numeric = ex_.numeric.data();
  ASSERT_EQ(Parse("0\tu2\ti8\t1\t1\ti4"), LineKind::kOk);
  EXPECT_EQ(ex_.keys.data(), keys);
  EXPECT_EQ(ex_.numeric.data(), numeric);
}

// Deterministic fuzz: random lines over the alphabet that matters never
// crash, and every accepted line gives consistent ranges.
TEST_F(TsvParserTest, RandomLinesKeepTheInvariants) {
  std::mt19937 rng(1234);
  const std::string alphabet = "01\t\t\t,,.-+e5x \r";
  std::string line;
  for (int trial = 0; trial < 20000; ++trial) {
    line.clear();
    const int len = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int i = 0; i < len; ++i) line += alphabet[rng() % alphabet.size()];
    reason_.clear();
    const LineKind kind = TsvParser(&schema_).Parse(line, &ex_, &reason_);
    if (kind == LineKind::kBad) {
      EXPECT_FALSE(reason_.empty()) << line;
      continue;
    }
    ASSERT_EQ(ex_.key_offsets.size(), 6u);
    EXPECT_EQ(ex_.key_offsets.front(), 0u);
    EXPECT_EQ(ex_.key_offsets.back(), ex_.keys.size());
    for (int f = 0; f < 5; ++f) EXPECT_LE(ex_.key_offsets[f], ex_.key_offsets[f + 1]);
    EXPECT_LE(ex_.FieldKeys(0).size(), 1u);
    EXPECT_LE(ex_.FieldKeys(4).size(), 3u);
    EXPECT_TRUE(ex_.FieldKeys(2).empty());
    EXPECT_GE(ex_.numeric[0], 0.0f);  // log1p of max(x, 0)
    EXPECT_TRUE(std::isfinite(ex_.numeric[1]));
  }
}

}  // namespace
}  // namespace tessera::models
