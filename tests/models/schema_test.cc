#include "models/schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"

namespace tessera::models {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kShop = R"(
fields:
  - {name: user_id, type: categorical}
  - {name: item_id, type: categorical, table: item}
  - {name: price, type: numeric, transform: log1p}
  - {name: hist_items, type: sequence, table: item, max_len: 50}
  - {name: age, type: numeric}
)";

TEST(SchemaTest, ParsesFieldsTablesAndIndexes) {
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(kShop, "shop.yaml"));
  ASSERT_EQ(schema.fields().size(), 5u);
  EXPECT_THAT(schema.tables(), ElementsAre("user_id", "item"));
  EXPECT_EQ(schema.num_numeric(), 2);
  const auto& f = schema.fields();
  EXPECT_EQ(f[0].type, FieldType::kCategorical);
  EXPECT_EQ(f[0].table, "user_id");
  EXPECT_EQ(f[0].table_index, 0);
  EXPECT_EQ(f[1].table_index, 1);
  EXPECT_EQ(f[2].type, FieldType::kNumeric);
  EXPECT_EQ(f[2].transform, Transform::kLog1p);
  EXPECT_EQ(f[2].numeric_index, 0);
  EXPECT_EQ(f[2].table_index, -1);
  EXPECT_EQ(f[3].type, FieldType::kSequence);
  EXPECT_EQ(f[3].table_index, 1);  // shares item_id's table
  EXPECT_EQ(f[3].max_len, 50u);
  EXPECT_EQ(f[4].transform, Transform::kNone);
  EXPECT_EQ(f[4].numeric_index, 1);
  EXPECT_EQ(schema.FieldIndex("price"), 2);
  EXPECT_EQ(schema.FieldIndex("nope"), -1);
  EXPECT_EQ(schema.TableIndex("item"), 1);
  EXPECT_EQ(schema.TableIndex("item_id"), -1);
}

TEST(SchemaTest, SequenceMaxLenDefaultsTo50) {
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse("fields: [{name: h, type: sequence}]", "s"));
  EXPECT_EQ(schema.fields()[0].max_len, 50u);
}

TEST(SchemaTest, RoundTripsThroughYaml) {
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(kShop, "shop.yaml"));
  const std::string yaml = schema.ToYaml();
  ASSERT_OK_AND_ASSIGN(Schema again, Schema::Parse(yaml, "manifest"));
  EXPECT_EQ(again, schema) << yaml;
}

TEST(SchemaTest, CriteoExampleSchemaParses) {
  ASSERT_OK_AND_ASSIGN(Schema schema,
                       Schema::Load(std::string(TESSERA_SOURCE_DIR) + "/examples/criteo/schema.yaml"));
  ASSERT_EQ(schema.fields().size(), 39u);
  EXPECT_EQ(schema.num_numeric(), 13);
  EXPECT_EQ(schema.tables().size(), 26u);
  for (int i = 0; i < 13; ++i) {
    EXPECT_EQ(schema.fields()[i].name, absl::StrCat("I", i + 1));
    EXPECT_EQ(schema.fields()[i].transform, Transform::kLog1p);
  }
  for (int i = 13; i < 39; ++i) {
    EXPECT_EQ(schema.fields()[i].name, absl::StrCat("C", i - 12));
    EXPECT_EQ(schema.fields()[i].type, FieldType::kCategorical);
  }
}

TEST(SchemaTest, LoadOfMissingFileIsNotFound) {
  const auto schema = Schema::Load("/nonexistent/schema.yaml");
  EXPECT_EQ(schema.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(schema.status().message(), HasSubstr("/nonexistent/schema.yaml"));
}

TEST(SchemaTest, AtMost255Tables) {
  std::string yaml = "fields:\n";
  for (int i = 0; i < 255; ++i) absl::StrAppend(&yaml, "  - {name: f", i, ", type: categorical}\n");
  EXPECT_OK(Schema::Parse(yaml, "s"));
  absl::StrAppend(&yaml, "  - {name: g, type: numeric}\n");
  absl::StrAppend(&yaml, "  - {name: shared, type: sequence, table: f3}\n");
  EXPECT_OK(Schema::Parse(yaml, "s"));
  absl::StrAppend(&yaml, "  - {name: one_more, type: categorical}\n");
  const auto schema = Schema::Parse(yaml, "big.yaml");
  ASSERT_FALSE(schema.ok());
  EXPECT_THAT(schema.status().message(), HasSubstr("field 257 (one_more)"));
  EXPECT_THAT(schema.status().message(), HasSubstr("too many tables"));
}

struct BadSchema {
  const char* name;
  const char* yaml;
  std::vector<const char*> expected;  // substrings of the error
};

class SchemaErrorTest : public ::testing::TestWithParam<BadSchema> {};

TEST_P(SchemaErrorTest, IsRejectedWithAClearMessage) {
  const auto schema = Schema::Parse(GetParam().yaml, "bad.yaml");
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(schema.status().message(), HasSubstr("bad.yaml"));
  for (const char* part : GetParam().expected) EXPECT_THAT(schema.status().message(), HasSubstr(part));
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, SchemaErrorTest,
    ::testing::Values(
        BadSchema{"InvalidYaml", "fields: [ {name: a", {"invalid YAML"}},
        BadSchema{"NotAMap", "- a\n- b\n", {"must be a map"}},
        BadSchema{"UnknownTopLevelKey",
                  "fields: [{name: a, type: numeric}]\nlabel: x\n",
                  {"unknown top-level key 'label'", "allowed: fields"}},
        BadSchema{"NoFields", "other: 1\n", {"unknown top-level key 'other'"}},
        BadSchema{"EmptyFields", "fields: []\n", {"'fields' must be a non-empty list"}},
        BadSchema{"FieldNotAMap", "fields: [user_id]\n", {"field 0", "must be a map"}},
        BadSchema{"UnknownFieldKey",
                  "fields:\n  - {name: a, type: numeric}\n  - {name: b, type: categorical, dim: 8}\n",
                  {"bad.yaml:3: field 1 (b)", "unknown key 'dim'",
                   "allowed: name, type, table, transform, max_len"}},
        BadSchema{"DuplicateKey",
                  "fields: [{name: a, type: numeric, type: categorical}]",
                  {"field 0 (a)", "duplicate key 'type'"}},
        BadSchema{"MissingName", "fields: [{type: numeric}]", {"field 0", "missing 'name'"}},
        BadSchema{"InvalidName",
                  "fields: [{name: 'a b', type: numeric}]",
                  {"field 0 (a b)", "invalid name", "[A-Za-z0-9_.-]"}},
        BadSchema{"MissingType",
                  "fields: [{name: a}]",
                  {"field 0 (a)", "missing 'type'", "categorical, numeric, sequence"}},
        BadSchema{"UnknownType",
                  "fields: [{name: a, type: float}]",
                  {"field 0 (a)", "unknown type 'float'", "allowed: categorical, numeric, sequence"}},
        BadSchema{"UnknownTransform",
                  "fields: [{name: a, type: numeric, transform: log}]",
                  {"field 0 (a)", "unknown transform 'log'", "allowed: log1p, none"}},
        BadSchema{"TransformOnCategorical",
                  "fields: [{name: a, type: categorical, transform: log1p}]",
                  {"field 0 (a)", "'transform' is only for numeric fields"}},
        BadSchema{"TableOnNumeric",
                  "fields: [{name: a, type: numeric, table: t}]",
                  {"field 0 (a)", "'table' is not allowed for a numeric field"}},
        BadSchema{"InvalidTable",
                  "fields: [{name: a, type: categorical, table: 'x:y'}]",
                  {"field 0 (a)", "invalid table 'x:y'"}},
        BadSchema{"MaxLenOnCategorical",
                  "fields: [{name: a, type: categorical, max_len: 3}]",
                  {"field 0 (a)", "'max_len' is only for sequence fields"}},
        BadSchema{"MaxLenZero",
                  "fields: [{name: a, type: sequence, max_len: 0}]",
                  {"field 0 (a)", "max_len '0' must be an integer in 1..10000"}},
        BadSchema{
            "MaxLenNotANumber", "fields: [{name: a, type: sequence, max_len: many}]", {"max_len 'many'"}},
        BadSchema{"MaxLenTooBig", "fields: [{name: a, type: sequence, max_len: 10001}]", {"max_len '10001'"}},
        BadSchema{"ValueNotAScalar", "fields: [{name: a, type: [numeric]}]", {"'type' must be a scalar"}},
        BadSchema{"DuplicateFieldName",
                  "fields:\n  - {name: a, type: numeric}\n  - {name: a, type: categorical}\n",
                  {"field 1 (a)", "duplicate field name (also field 0)"}}),
    [](const ::testing::TestParamInfo<BadSchema>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace tessera::models
