#include "tools/cli/table_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/worker_programs.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;

TEST(TableSpecTest, ParsesSparseTable) {
  StatusOr<TableConfig> t = ParseTableSpec("emb:sparse:16:adagrad:0.05", 3);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->id, 3u);
  EXPECT_EQ(t->name, "emb");
  EXPECT_EQ(t->kind, TableKind::kSparse);
  EXPECT_EQ(t->dim, 16u);
  EXPECT_EQ(t->optimizer.type, OptimizerType::kAdagrad);
  EXPECT_FLOAT_EQ(t->optimizer.learning_rate, 0.05f);
}

TEST(TableSpecTest, ParsesDenseTableWithDefaultLearningRate) {
  StatusOr<TableConfig> t = ParseTableSpec("mlp:dense:4096:adam", 0);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->kind, TableKind::kDense);
  EXPECT_EQ(t->size, 4096u);
  EXPECT_EQ(t->optimizer.type, OptimizerType::kAdam);
  EXPECT_FLOAT_EQ(t->optimizer.learning_rate, OptimizerConfig{}.learning_rate);
}

TEST(TableSpecTest, RejectsMalformedSpecsNamingTheProblem) {
  struct Case {
    const char* spec;
    const char* why;
  };
  for (const Case& c :
       {Case{"emb:sparse:16", "number of fields"},
        Case{"emb:sparse:16:sgd:0.1:extra", "number of fields"}, Case{":sparse:16:sgd", "name"},
        Case{"e m b:sparse:16:sgd", "name"}, Case{"emb:wide:16:sgd", "kind"},
        Case{"emb:sparse:0:sgd", "size/dim"}, Case{"emb:sparse:16x:sgd", "size/dim"},
        Case{"emb:sparse:-3:sgd", "size/dim"}, Case{"emb:sparse:16:rmsprop", "optimizer"},
        Case{"emb:sparse:16:sgd:-1", "learning rate"},
        Case{"emb:sparse:16:sgd:fast", "learning rate"}, Case{"emb:sparse:5000:sgd", "dim"}}) {
    StatusOr<TableConfig> t = ParseTableSpec(c.spec, 0);
    ASSERT_FALSE(t.ok()) << c.spec;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << c.spec;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.spec));
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.why)) << c.spec;
  }
}

TEST(TableSpecTest, AssignsIdsInOrderAndRejectsDuplicateNames) {
  StatusOr<std::vector<TableConfig>> tables =
      ParseTableSpecs({"a:sparse:8:sgd", "b:dense:10:ftrl:0.1"});
  ASSERT_TRUE(tables.ok()) << tables.status();
  ASSERT_EQ(tables->size(), 2u);
  EXPECT_EQ((*tables)[0].id, 0u);
  EXPECT_EQ((*tables)[1].id, 1u);
  EXPECT_FALSE(ParseTableSpecs({"a:sparse:8:sgd", "a:dense:10:sgd"}).ok());
}

TEST(TableSpecTest, FormatRoundTrips) {
  for (const char* spec : {"emb:sparse:16:adagrad:0.05", "mlp:dense:4096:adam:0.001"}) {
    StatusOr<TableConfig> t = ParseTableSpec(spec, 0);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(FormatTableSpec(*t), spec);
    StatusOr<TableConfig> again = ParseTableSpec(FormatTableSpec(*t), 0);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *t);
  }
}

TEST(WorkerProgramRegistryTest, TablesComeFromFlagsOrTheProgram) {
  WorkerProgramRegistry programs = BuiltinWorkerPrograms();
  ASSERT_NE(programs.Find("smoke"), nullptr);
  StatusOr<std::vector<TableConfig>> smoke = programs.TablesFor({}, "smoke", {});
  ASSERT_TRUE(smoke.ok());
  EXPECT_EQ(smoke->size(), 2u);
  for (const TableConfig& t : *smoke) EXPECT_TRUE(ValidateTableConfig(t).ok()) << t.name;
  StatusOr<std::vector<TableConfig>> flags = programs.TablesFor({"x:sparse:4:sgd"}, "smoke", {});
  ASSERT_TRUE(flags.ok());
  ASSERT_EQ(flags->size(), 1u);
  EXPECT_EQ((*flags)[0].name, "x");
  EXPECT_TRUE(programs.TablesFor({}, "", {}).ok());
  EXPECT_EQ(programs.TablesFor({}, "nope", {}).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera::cli
