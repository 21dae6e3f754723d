#include "serving/instance_encoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "models/feature_hash.h"
#include "models/tsv_parser.h"
#include "tests/models/saved_model_test_util.h"
#include "tests/serving/serving_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::serving {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class InstanceEncoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(schema_, models::Schema::Parse(models::testing::kTestSchema, "test"));
  }

  // The Example of a TSV line, and of its JSON instance.
  void ExpectSameAsTsv(const std::string& line, const json& instance) {
    models::TsvParser parser(&schema_);
    models::Example from_tsv, from_json;
    std::string reason;
    ASSERT_NE(parser.Parse(line, &from_tsv, &reason), models::LineKind::kBad) << reason;
    InstanceEncoder encoder(&schema_);
    ASSERT_OK(encoder.Encode(instance, "instances[0]", &from_json, nullptr));
    EXPECT_EQ(from_json.keys, from_tsv.keys) << line;
    EXPECT_EQ(from_json.key_offsets, from_tsv.key_offsets) << line;
    EXPECT_EQ(from_json.numeric, from_tsv.numeric) << line;
    EXPECT_EQ(from_json.label, 0.0f);
  }

  Status EncodeError(const json& instance) {
    InstanceEncoder encoder(&schema_);
    models::Example ex;
    return encoder.Encode(instance, "instances[3]", &ex, nullptr);
  }

  models::Schema schema_;
};

TEST_F(InstanceEncoderTest, MatchesTheTsvParser) {
  ExpectSameAsTsv("0\tu1\ti9\t12.5\ti3,i7",
                  {{"user_id", "u1"}, {"item_id", "i9"}, {"price", 12.5}, {"hist", {"i3", "i7"}}});
  // Integers, negative numbers (log1p of max(x, 0)), key order.
  ExpectSameAsTsv("0\tu1\ti9\t-3\ti3",
                  {{"hist", {"i3"}}, {"price", -3}, {"item_id", "i9"}, {"user_id", "u1"}});
  ExpectSameAsTsv("0\tu1\ti9\t7\t", {{"user_id", "u1"}, {"item_id", "i9"}, {"price", 7}});
}

TEST_F(InstanceEncoderTest, MissingFieldsAreEmpty) {
  ExpectSameAsTsv("0\t\t\t\t", json::object());
  ExpectSameAsTsv("0", json::object());
  ExpectSameAsTsv("0\t\ti2", {{"item_id", "i2"}, {"user_id", ""}, {"hist", nullptr}});
  ExpectSameAsTsv("0\tu1\t\t\t", {{"user_id", "u1"}, {"price", nullptr}, {"hist", json::array()}});
}

TEST_F(InstanceEncoderTest, SequencesKeepTheMostRecentMaxLenTokens) {
  // max_len 3; empty tokens are skipped before counting.
  ExpectSameAsTsv("0\tu1\ti9\t1\ti1,i2,i3,,i4,i5", {{"user_id", "u1"},
                                                    {"item_id", "i9"},
                                                    {"price", 1},
                                                    {"hist", {"i1", "i2", "i3", "", "i4", "i5"}}});
  InstanceEncoder encoder(&schema_);
  models::Example ex;
  KeptTokens tokens;
  ASSERT_OK(encoder.Encode({{"hist", {"i1", "i2", "i3", "", "i4", "i5"}}}, "x", &ex, &tokens));
  ASSERT_EQ(tokens.size(), 4u);
  EXPECT_EQ(tokens[3], (std::vector<std::string>{"i3", "i4", "i5"}));
  EXPECT_TRUE(tokens[0].empty());
  const int hist = schema_.FieldIndex("hist");
  ASSERT_EQ(ex.FieldKeys(hist).size(), 3u);
  EXPECT_EQ(ex.FieldKeys(hist)[0], models::HashFeature(schema_.fields()[hist].table_index, "i3"));
}

TEST_F(InstanceEncoderTest, WrongTypesAndUnknownFieldsNameThePlace) {
  Status s = EncodeError({{"price", "12.5"}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("instances[3].price: expected a number"));
  s = EncodeError({{"user_id", 17}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("instances[3].user_id: expected a string"));
  s = EncodeError({{"hist", "i1,i2"}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("instances[3].hist: expected an array"));
  s = EncodeError({{"hist", {"i1", 2, "i3", "i4", "i5"}}});  // even a dropped old element
  EXPECT_THAT(std::string(s.message()), HasSubstr("instances[3].hist[1]: expected a string"));
  s = EncodeError({{"colour", "red"}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("instances[3].colour: unknown field"));
  s = EncodeError(json::array({1, 2}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("instances[3]: expected an object"));
  EXPECT_EQ(EncodeError({{"price", true}}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::serving
