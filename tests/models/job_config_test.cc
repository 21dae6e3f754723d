#include "models/job_config.h"

#include <gtest/gtest.h>

#include <span>

#include "models/schema.h"
#include "models/table_plan.h"
#include "tests/testing/status_matchers.h"

namespace tessera::models {
namespace {

constexpr char kJob[] = R"(
data:
  schema: schema.yaml
  train: [train.tsv]
  eval: test.tsv
model:
  type: deepfm
  embedding_dim: 16
  hidden: [256, 128]
optimizer:
  sparse: {type: adagrad, lr: 0.05}
  dense: {type: adam, lr: 0.001}
train:
  batch_size: 1024
  epochs: 1
  consistency: async
cluster:
  servers: 2
  workers: 2
output_dir: runs/demo
)";

StatusOr<JobConfig> Parse(const std::string& yaml, std::vector<std::string> overrides = {}) {
  return ParseJobConfig(yaml, "job.yaml", "/jobs", overrides);
}

TEST(JobConfigTest, ParsesTheDocumentedExampleAndResolvesPaths) {
  ASSERT_OK_AND_ASSIGN(JobConfig job, Parse(kJob));
  EXPECT_EQ(job.data.schema, "/jobs/schema.yaml");
  EXPECT_EQ(job.data.train, std::vector<std::string>{"/jobs/train.tsv"});
  EXPECT_EQ(job.data.eval, "/jobs/test.tsv");
  EXPECT_EQ(job.output_dir, "/jobs/runs/demo");
  EXPECT_EQ(job.model.type, "deepfm");
  EXPECT_EQ(job.model.hidden, (std::vector<uint32_t>{256, 128}));
  EXPECT_EQ(job.sparse_optimizer.type, OptimizerType::kAdagrad);
  EXPECT_FLOAT_EQ(job.sparse_optimizer.learning_rate, 0.05f);
  EXPECT_EQ(job.dense_optimizer.type, OptimizerType::kAdam);
  EXPECT_EQ(job.train.consistency, Consistency::kAsync);
  EXPECT_EQ(job.cluster.servers, 2);
  EXPECT_DOUBLE_EQ(job.data.max_bad_ratio, 0.01);
}

TEST(JobConfigTest, SetOverridesAnyKeyBeforeValidation) {
  ASSERT_OK_AND_ASSIGN(JobConfig job,
                       Parse(kJob, {"train.epochs=3", "model.hidden=[64]",
                                    "optimizer.sparse.type=ftrl", "train.consistency=ssp",
                                    "train.staleness=4", "data.max_bad_ratio=0.5"}));
  EXPECT_EQ(job.train.epochs, 3u);
  EXPECT_EQ(job.model.hidden, std::vector<uint32_t>{64});
  EXPECT_EQ(job.sparse_optimizer.type, OptimizerType::kFtrl);
  EXPECT_EQ(job.train.consistency, Consistency::kSsp);
  EXPECT_EQ(job.train.staleness, 4u);
  EXPECT_EQ(Parse(kJob, {"train.epochs=0"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse(kJob, {"nonsense"}).status().code(), StatusCode::kInvalidArgument);
}

TEST(JobConfigTest, RejectsUnknownKeysNamingThem) {
  StatusOr<JobConfig> job = Parse(std::string(kJob) + "trian: {epochs: 2}\n");
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("unknown key trian"), std::string::npos) << job.status();
  job = Parse(kJob, {"model.dimension=8"});
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("model.dimension"), std::string::npos) << job.status();
}

// A --set that must be refused with an error naming the key.
struct RejectCase {
  std::string set;
  std::string expect;  // part of the error message
};

void ExpectRejected(std::span<const RejectCase> cases) {
  for (const RejectCase& c : cases) {
    StatusOr<JobConfig> job = Parse(kJob, {c.set});
    ASSERT_FALSE(job.ok()) << c.set;
    EXPECT_EQ(job.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(job.status().message().find(c.expect), std::string::npos)
        << c.set << " -> " << job.status();
  }
}

TEST(JobConfigTest, RejectsBadValuesNamingKeyAndAllowedValues) {
  const RejectCase cases[] = {
      {"model.type=xgboost", "model.type must be one of lr | fm | deepfm"},
      {"optimizer.sparse.type=rmsprop", "optimizer.sparse.type must be one of"},
      {"optimizer.dense.lr=-1", "optimizer.dense.lr must be a number"},
      {"train.batch_size=lots", "train.batch_size must be an integer"},
      {"train.consistency=eventual", "train.consistency must be one of async | ssp | sync"},
      {"train.staleness=3", "train.staleness goes with train.consistency: ssp"},
      {"cluster.servers=0", "cluster.servers must be an integer in [1"},
      {"data.max_bad_ratio=2", "data.max_bad_ratio must be a number in [0, 1]"},
      {"model.hidden=[0]", "model.hidden items must be integers"},
  };
  ExpectRejected(cases);
}

TEST(JobConfigTest, ReadsPerTableAdmissionAndEviction) {
  ASSERT_OK_AND_ASSIGN(
      JobConfig job,
      Parse(std::string(kJob) +
                "tables:\n  item: {admission: {min_count: 3, unadmitted: zeros}, eviction: {ttl_s: 600, max_rows: 1000}}\n"
                "  user_id: {eviction: {ttl_s: 60}}\n",
            {"tables.user_id.admission.min_count=2"}));
  ASSERT_EQ(job.tables.size(), 2u);
  EXPECT_EQ(job.tables["item"].admission.min_count, 3u);
  EXPECT_TRUE(job.tables["item"].admission.unadmitted_zeros);
  EXPECT_FALSE(job.tables["user_id"].admission.unadmitted_zeros);
  EXPECT_EQ(job.tables["item"].eviction.ttl_s, 600u);
  EXPECT_EQ(job.tables["item"].eviction.max_rows, 1000u);
  EXPECT_EQ(job.tables["user_id"].admission.min_count, 2u);
  EXPECT_EQ(job.tables["user_id"].eviction.ttl_s, 60u);
  EXPECT_EQ(job.tables["user_id"].eviction.max_rows, 0u);

  // They flow into the planned sparse tables; other tables stay off.
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(R"(
fields:
  - {name: user_id, type: categorical}
  - {name: item_id, type: categorical, table: item}
  - {name: cat, type: categorical}
)", "schema.yaml"));
  job.model.type = "lr";
  ASSERT_OK_AND_ASSIGN(auto model, NewModel(job.model, schema));
  EXPECT_OK(CheckTablePolicies(job, schema));
  for (const TableConfig& t : PlanTables(job, schema, *model)) {
    if (t.name == "item") {
      EXPECT_EQ(t.admission.min_count, 3u);
      EXPECT_EQ(t.eviction, (EvictionConfig{.ttl_s = 600, .max_rows = 1000}));
    } else if (t.name == "user_id") {
      EXPECT_EQ(t.admission.min_count, 2u);
      EXPECT_EQ(t.eviction.ttl_s, 60u);
    } else {
      EXPECT_EQ(t.admission, AdmissionConfig{}) << t.name;
      EXPECT_EQ(t.eviction, EvictionConfig{}) << t.name;
    }
  }
  job.tables["itme"] = {};
  const Status unknown = CheckTablePolicies(job, schema);
  EXPECT_EQ(unknown.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("tables.itme"), std::string::npos) << unknown;
}

TEST(JobConfigTest, RejectsBadTableKeys) {
  const RejectCase cases[] = {
      {"tables.item.admission.min_count=-1", "tables.item.admission.min_count must be an integer"},
      {"tables.item.eviction.ttl_s=soon", "tables.item.eviction.ttl_s must be an integer"},
      {"tables.item.eviction.max_rows=-5", "tables.item.eviction.max_rows must be an integer"},
      {"tables.item.eviction.max_age=5", "unknown key tables.item.eviction.max_age"},
      {"tables.item.admit=5", "unknown key tables.item.admit"},
      {"tables.item=3", "tables.item must be a mapping"},
      {"tables=[item]", "tables must be a mapping"},
  };
  ExpectRejected(cases);
}

TEST(JobConfigTest, ReadsTheSequenceModelKeys) {
  ASSERT_OK_AND_ASSIGN(
      JobConfig job,
      Parse(kJob, {"model.type=bst", "model.attention={hist_items: item_id, hist_cats: category}",
                       "model.attention_hidden=[32]", "model.attention_weights=softmax",
                       "model.fm=true", "model.layers=2", "model.heads=4", "model.ffn_dim=48",
                       "model.dropout=0.1", "model.bst_output=mean", "model.bst_norm=post"}));
  const ModelConfig& m = job.model;
  EXPECT_EQ(m.type, "bst");
  ASSERT_EQ(m.attention.size(), 2u);
  EXPECT_EQ(m.attention[0], (AttentionPair{.sequence = "hist_items", .target = "item_id"}));
  EXPECT_EQ(m.attention[1], (AttentionPair{.sequence = "hist_cats", .target = "category"}));
  EXPECT_EQ(m.attention_hidden, std::vector<uint32_t>{32});
  EXPECT_EQ(m.attention_weights, "softmax");
  EXPECT_TRUE(m.fm);
  EXPECT_EQ(m.layers, 2u);
  EXPECT_EQ(m.heads, 4u);
  EXPECT_EQ(m.ffn_dim, 48u);
  EXPECT_FLOAT_EQ(m.dropout, 0.1f);
  EXPECT_EQ(m.bst_output, "mean");
  EXPECT_EQ(m.bst_norm, "post");
  for (const std::string bad : {"model.attention=[hist_items]", "model.attention_weights=tanh",
                                "model.fm=maybe", "model.layers=0", "model.dropout=0.95",
                                "model.bst_output=first", "model.bst_norm=mid"}) {
    EXPECT_FALSE(Parse(kJob, {bad}).ok()) << bad;
  }
}

TEST(JobConfigTest, RequiresSchemaAndTrainingData) {
  EXPECT_EQ(Parse("model: {type: lr}\n").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("data: {schema: s.yaml}\n").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("data: [1, 2]\n").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("data: {schema: s.yaml, train: t.tsv}\nmodel: {type: [\n").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(JobConfigTest, DefaultsAreTheDocumentedOnes) {
  ASSERT_OK_AND_ASSIGN(JobConfig job, Parse("data: {schema: s.yaml, train: t.tsv}\n"));
  EXPECT_EQ(job.model.type, "deepfm");
  EXPECT_EQ(job.model.embedding_dim, 16u);
  EXPECT_EQ(job.train.batch_size, 1024u);
  EXPECT_EQ(job.train.epochs, 1u);
  EXPECT_EQ(job.sparse_optimizer.type, OptimizerType::kAdagrad);
  EXPECT_EQ(job.sparse_optimizer.initial_accumulator, 0.0f);  // as PyTorch's Adagrad
  EXPECT_EQ(job.dense_optimizer.type, OptimizerType::kAdam);
  EXPECT_EQ(job.cluster.servers, 1);
  ASSERT_OK_AND_ASSIGN(JobConfig ftrl, Parse("data: {schema: s.yaml, train: t.tsv}\n",
                                             {"optimizer.sparse.type=ftrl"}));
  EXPECT_FLOAT_EQ(ftrl.sparse_optimizer.initial_accumulator, 0.1f);
  ASSERT_OK_AND_ASSIGN(JobConfig given, Parse("data: {schema: s.yaml, train: t.tsv}\n",
                                              {"optimizer.sparse.initial_accumulator=0.5"}));
  EXPECT_FLOAT_EQ(given.sparse_optimizer.initial_accumulator, 0.5f);
  EXPECT_EQ(job.output_dir, "/jobs/runs/default");
  EXPECT_FALSE(job.publish.enabled());
  EXPECT_DOUBLE_EQ(job.publish.interval_s, 5);
  EXPECT_EQ(job.publish.full_every, 20u);
  EXPECT_EQ(job.publish.keep, 50u);
  EXPECT_EQ(job.train.max_batch_delay_ms, 200u);
  EXPECT_FALSE(job.data.follow);
}

TEST(JobConfigTest, ReadsStreamingAndPublishKeys) {
  ASSERT_OK_AND_ASSIGN(
      JobConfig job,
      Parse("data: {schema: s.yaml, train: incoming, follow: true}\n"
            "train: {max_batch_delay_ms: 50}\n"
            "publish: {model_dir: pub, interval_s: 1, full_every: 10, keep: 5}\n"));
  EXPECT_TRUE(job.data.follow);
  EXPECT_FALSE(job.data.streaming());
  EXPECT_EQ(job.data.train, std::vector<std::string>{"/jobs/incoming"});
  EXPECT_EQ(job.train.max_batch_delay_ms, 50u);
  EXPECT_EQ(job.publish.model_dir, "/jobs/pub");
  EXPECT_DOUBLE_EQ(job.publish.interval_s, 1);
  EXPECT_EQ(job.publish.full_every, 10u);
  EXPECT_EQ(job.publish.keep, 5u);
  for (const char* source : {"-", "zmq+tcp://127.0.0.1:5555"}) {
    ASSERT_OK_AND_ASSIGN(JobConfig stream,
                         Parse("data: {schema: s.yaml, train: '" + std::string(source) + "'}\n"));
    EXPECT_TRUE(stream.data.streaming());
    EXPECT_EQ(stream.data.train, std::vector<std::string>{source});  // not a path
  }
}

TEST(JobConfigTest, RejectsBadStreamingAndPublishSettings) {
  for (const char* bad : {
           "data: {schema: s.yaml, train: ['-', t.tsv]}\n",
           "data: {schema: s.yaml, train: [a, b], follow: true}\n",
           "data: {schema: s.yaml, train: '-', follow: true}\n",
           "data: {schema: s.yaml, train: 'zmq+ipc:///tmp/x'}\n",
           "data: {schema: s.yaml, train: dir, follow: true}\ntrain: {epochs: 2}\n",
           "data: {schema: s.yaml, train: t.tsv}\npublish: {model_dir: p, interval_s: 0}\n",
           "data: {schema: s.yaml, train: t.tsv}\npublish: {model_dir: p, full_every: 0}\n",
           "data: {schema: s.yaml, train: t.tsv}\npublish: {model_dir: p, every: 3}\n",
           "data: {schema: s.yaml, train: t.tsv}\ntrain: {max_batch_delay_ms: 0}\n",
       }) {
    EXPECT_EQ(Parse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// join.arms: the serve arms whose traffic one joiner keeps.
TEST(JobConfigTest, ReadsTheJoinArms) {
  ASSERT_OK_AND_ASSIGN(JobConfig all, Parse("data: {schema: s.yaml, train: t.tsv}\n"));
  EXPECT_TRUE(all.join.arms.empty());
  ASSERT_OK_AND_ASSIGN(
      JobConfig one,
      Parse("data: {schema: s.yaml, train: t.tsv}\njoin: {impression_dir: e, arms: continuous}\n"));
  EXPECT_EQ(one.join.arms, std::vector<std::string>{"continuous"});
  ASSERT_OK_AND_ASSIGN(JobConfig two, Parse("data: {schema: s.yaml, train: t.tsv}\n"
                                            "join: {impression_dir: e, arms: [a, b-2]}\n"));
  EXPECT_EQ(two.join.arms, (std::vector<std::string>{"a", "b-2"}));
  const StatusOr<JobConfig> bad =
      Parse("data: {schema: s.yaml, train: t.tsv}\njoin: {impression_dir: e, arms: ['a b']}\n");
  ASSERT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("join.arms: 'a b'"), std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace tessera::models
