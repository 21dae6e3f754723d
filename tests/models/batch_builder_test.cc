#include "models/batch_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "models/feature_hash.h"
#include "tests/testing/status_matchers.h"

namespace tessera::models {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kSchema = R"(
fields:
  - {name: user_id, type: categorical}
  - {name: item_id, type: categorical, table: item}
  - {name: price, type: numeric, transform: none}
  - {name: hist, type: sequence, table: item, max_len: 3}
  - {name: qty, type: numeric}
)";

class BatchBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto schema = Schema::Parse(kSchema, "test");
    ASSERT_OK(schema);
    schema_ = *std::move(schema);
    auto builder = BatchBuilder::Create(&schema_, {.group_field = "user_id"});
    ASSERT_OK(builder);
    builder_ = *std::move(builder);
  }
  void Add(std::string_view line) {
    std::string reason;
    ASSERT_NE(TsvParser(&schema_).Parse(line, &ex_, &reason), LineKind::kBad) << reason;
    builder_->Add(ex_);
  }
  static Key Item(std::string_view token) { return HashFeature(1, token); }

  Schema schema_;
  std::unique_ptr<BatchBuilder> builder_;
  Example ex_;
  Batch batch_;
};

TEST_F(BatchBuilderTest, BuildsLabelsNumericFieldsAndGroups) {
  builder_->Start(&batch_);
  Add("1\tu1\ti1\t2.5\ti7,i8\t4");
  Add("0\t\ti2\t\t\t");
  builder_->Finish();
  EXPECT_EQ(batch_.size, 2);
  EXPECT_THAT(batch_.labels, ElementsAre(1.0f, 0.0f));
  ASSERT_EQ(batch_.numeric.rows(), 2);
  ASSERT_EQ(batch_.numeric.cols(), 2);
  EXPECT_EQ(batch_.numeric(0, 0), 2.5f);
  EXPECT_EQ(batch_.numeric(0, 1), 4.0f);
  EXPECT_EQ(batch_.numeric(1, 0), 0.0f);
  ASSERT_EQ(batch_.fields.size(), 3u);  // user_id, item_id, hist
  EXPECT_EQ(batch_.fields[0].field, 0);
  EXPECT_EQ(batch_.fields[1].field, 1);
  EXPECT_EQ(batch_.fields[2].field, 3);
  EXPECT_EQ(batch_.fields[2].table_batch, 1);
  EXPECT_THAT(batch_.fields[0].offsets, ElementsAre(0u, 1u, 1u));  // missing user: no row
  EXPECT_THAT(batch_.fields[2].offsets, ElementsAre(0u, 2u, 2u));
  ASSERT_EQ(batch_.tables.size(), 2u);
  EXPECT_EQ(batch_.tables[1].table, 1);
  EXPECT_THAT(batch_.groups, ElementsAre(HashFeature(0, "u1"), kNoGroup));
}

TEST_F(BatchBuilderTest, EachKeyOncePerTableInFirstSeenOrder) {
  builder_->Start(&batch_);
  Add("1\tu1\ti1\t1\ti2,i1\t1");
  Add("0\tu1\ti2\t1\ti3,i1,i2\t1");
  builder_->Finish();
  EXPECT_THAT(batch_.tables[0].keys, ElementsAre(HashFeature(0, "u1")));
  EXPECT_THAT(batch_.tables[1].keys, ElementsAre(Item("i1"), Item("i2"), Item("i3")));
  EXPECT_THAT(batch_.fields[0].rows, ElementsAre(0u, 0u));
  EXPECT_THAT(batch_.fields[1].rows, ElementsAre(0u, 1u));
  EXPECT_THAT(batch_.fields[2].rows, ElementsAre(1u, 0u, 2u, 0u, 1u));
  EXPECT_THAT(batch_.fields[2].offsets, ElementsAre(0u, 2u, 5u));
}

TEST_F(BatchBuilderTest, TruncatesSequencesToTheMostRecent) {
  Example ex;
  ex.label = 1;
  ex.numeric = {0, 0};
  // Built by hand: hist (field 3) holds 5 keys, max_len is 3.
  ex.keys = {Item("a"), Item("b"), Item("c"), Item("d"), Item("e")};
  ex.key_offsets = {0, 0, 0, 0, 5, 5};
  builder_->Start(&batch_);
  builder_->Add(ex);
  builder_->Finish();
  EXPECT_THAT(batch_.tables[1].keys, ElementsAre(Item("c"), Item("d"), Item("e")));
  EXPECT_THAT(batch_.fields[2].rows, ElementsAre(0u, 1u, 2u));
}

TEST_F(BatchBuilderTest, NextBatchForgetsThePreviousKeys) {
  builder_->Start(&batch_);
  Add("1\tu1\ti1\t1\ti2\t1");
  builder_->Finish();
  Batch other;
  builder_->Start(&other);
  Add("1\tu2\ti2\t1\t\t1");
  builder_->Finish();
  EXPECT_THAT(other.tables[1].keys, ElementsAre(Item("i2")));
  EXPECT_THAT(other.fields[1].rows, ElementsAre(0u));
  EXPECT_THAT(batch_.tables[1].keys, ElementsAre(Item("i1"), Item("i2")));  // untouched
}

TEST_F(BatchBuilderTest, ReusesTheBatchWithoutReallocating) {
  auto fill = [&](int base) {
    builder_->Start(&batch_);
    for (int i = 0; i < 64; ++i) {
      const std::string n = std::to_string(base + i);
      Add("1\tu" + n + "\ti" + n + "\t1\ti" + n + ",j" + n + "\t2");
    }
    builder_->Finish();
  };
  fill(0);
  const float* labels = batch_.labels.data();
  const float* numeric = batch_.numeric.data();
  const uint32_t* rows = batch_.fields[2].rows.data();
  const Key* keys = batch_.tables[1].keys.data();
  fill(1000);
  EXPECT_EQ(batch_.labels.data(), labels);
  EXPECT_EQ(batch_.numeric.data(), numeric);
  EXPECT_EQ(batch_.fields[2].rows.data(), rows);
  EXPECT_EQ(batch_.tables[1].keys.data(), keys);
  EXPECT_EQ(batch_.tables[1].keys.size(), 128u);
  EXPECT_EQ(batch_.tables[1].keys[0], Item("i1000"));
}

TEST_F(BatchBuilderTest, EmptyBatch) {
  builder_->Start(&batch_);
  builder_->Finish();
  EXPECT_EQ(batch_.size, 0);
  EXPECT_EQ(batch_.numeric.rows(), 0);
  EXPECT_THAT(batch_.fields[0].offsets, ElementsAre(0u));
}

TEST(BatchBuilderCreateTest, RejectsABadGroupField) {
  auto schema = Schema::Parse(kSchema, "test");
  ASSERT_OK(schema);
  auto unknown = BatchBuilder::Create(&*schema, {.group_field = "session"});
  EXPECT_THAT(unknown.status().message(), HasSubstr("group field 'session' is not in the schema"));
  auto numeric = BatchBuilder::Create(&*schema, {.group_field = "price"});
  EXPECT_THAT(numeric.status().message(), HasSubstr("must be categorical"));
  auto none = BatchBuilder::Create(&*schema, {});
  ASSERT_OK(none);
  Batch batch;
  (*none)->Start(&batch);
  (*none)->Finish();
  EXPECT_TRUE(batch.groups.empty());
}

}  // namespace
}  // namespace tessera::models
