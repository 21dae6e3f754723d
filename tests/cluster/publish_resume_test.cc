// Published versions from a training cluster (one process, sync training):
// versions are cut at step boundaries while workers train; the delta chain
// loads to exactly the servers' final state; and a job resumed from a
// version in the middle finishes with the parameters of the uninterrupted
// run (to float rounding), also on another number of servers (rows
// re-sharded).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "models/eval_runner.h"
#include "models/gen/gen.h"
#include "models/job_config.h"
#include "models/model_versions.h"
#include "models/table_plan.h"
#include "serving/model_follower.h"
#include "serving/rest_api.h"
#include "tests/serving/serving_test_util.h"
#include "tests/testing/in_proc_training.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tools/cli/publish_setup.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

struct Dataset {
  testing::TempDir dir;
};

const Dataset& Data() {
  static Dataset* data = [] {
    auto* d = new Dataset;
    models::gen::GenOptions o;
    o.out = d->dir.path().string();
    o.rows = 30000;
    o.users = 300;
    o.items = 500;
    o.seed = 11;
    EXPECT_OK(models::gen::Generate(o).status());
    return d;
  }();
  return *data;
}

StatusOr<models::JobConfig> Job(const std::string& publish_dir, int servers) {
  return models::ParseJobConfig(
      "data: {schema: schema.yaml, train: train.tsv}\n"
      "model: {type: deepfm, embedding_dim: 4, hidden: [8]}\n"
      "train: {batch_size: 32, consistency: sync}\n"
      "publish: {model_dir: " + publish_dir + ", interval_s: 3600, full_every: 3, keep: 0}\n",
      "job.yaml", Data().dir.path().string(),
      {"cluster.workers=2", "cluster.servers=" + std::to_string(servers)});
}

// A model's parameters, comparable across shardings: sparse rows by key
// (value and optimizer state) and dense values.
struct Params {
  std::vector<std::map<Key, std::vector<float>>> sparse;
  std::vector<std::vector<float>> dense;
  friend bool operator==(const Params&, const Params&) = default;
};

// The largest difference between two models' parameters (infinity if their
// rows differ).
double MaxDiff(const Params& a, const Params& b) {
  double d = 0;
  if (a.sparse.size() != b.sparse.size() || a.dense.size() != b.dense.size()) return INFINITY;
  for (size_t t = 0; t < a.sparse.size(); ++t) {
    if (a.sparse[t].size() != b.sparse[t].size()) return INFINITY;
    for (const auto& [key, row] : a.sparse[t]) {
      auto it = b.sparse[t].find(key);
      if (it == b.sparse[t].end() || it->second.size() != row.size()) return INFINITY;
      for (size_t i = 0; i < row.size(); ++i) {
        d = std::max(d, static_cast<double>(std::abs(row[i] - it->second[i])));
      }
    }
  }
  for (size_t t = 0; t < a.dense.size(); ++t) {
    if (a.dense[t].size() != b.dense[t].size()) return INFINITY;
    for (size_t i = 0; i < a.dense[t].size(); ++i) {
      d = std::max(d, static_cast<double>(std::abs(a.dense[t][i] - b.dense[t][i])));
    }
  }
  return d;
}

// Two runs of the same sync job agree to within float rounding, not bit for
// bit: even two uninterrupted runs differ by up to ~1e-6 (the summation
// order of some vectorized kernels depends on buffer alignment). Training on
// other data moves parameters by far more (the model at version 2 is > 1e-3
// away from the final one, checked below).
constexpr double kRoundingTolerance = 1e-5;

Params ParamsOf(const models::SavedModel& m) {
  Params p;
  for (const models::SparseParams& t : m.sparse) {
    std::map<Key, std::vector<float>> rows;
    for (const auto& [key, row] : t.index) {
      auto value = t.Value(key);
      auto state = t.State(key);
      std::vector<float> v(value.begin(), value.end());
      v.insert(v.end(), state.begin(), state.end());
      rows[key] = std::move(v);
    }
    p.sparse.push_back(std::move(rows));
  }
  for (const models::DenseParams& d : m.dense) {
    std::vector<float> v = d.values;
    v.insert(v.end(), d.state.begin(), d.state.end());
    p.dense.push_back(std::move(v));
  }
  return p;
}

struct RunOutcome {
  uint64_t examples = 0;
  uint64_t last_version = 0;
};

// Trains `job` in one process, publishing with the CLI's wiring
// (SetUpPublishing); `versions_during` versions are published while the
// workers train, the last one when they finish. With `fail_manifest_call`
// N > 0, the N-th manifest write fails (after the servers captured and
// wrote that version), and that publish's error is expected. With
// `examples_between` > 0, worker 0 trains that many examples after each of
// those publishes before the next one.
StatusOr<RunOutcome> TrainAndPublish(const models::JobConfig& job, bool resume,
                                     int versions_during, int fail_manifest_call = 0,
                                     uint64_t examples_between = 0) {
  TESSERA_ASSIGN_OR_RETURN(models::Schema schema, models::Schema::Load(job.data.schema));
  TESSERA_ASSIGN_OR_RETURN(auto model, models::NewModel(job.model, schema));
  scheduler::SchedulerOptions so;
  TESSERA_RETURN_IF_ERROR(cli::SetUpPublishing(job, schema, models::PlanTables(job, schema, *model),
                                               resume, &so));
  auto manifest_calls = std::make_shared<int>(0);
  if (fail_manifest_call > 0) {
    so.publish.write_manifest = [write = so.publish.write_manifest, manifest_calls,
                                 fail_manifest_call](const scheduler::PublishedVersion& v) {
      if (++*manifest_calls == fail_manifest_call) return UnavailableError("injected: disk full");
      return write(v);
    };
  }
  testing::InProcTraining::Options o;
  o.chunk_bytes = 64 << 10;
  o.publish = so.publish;
  o.resume = so.resume;
  Status during = OkStatus();
  o.during = [&](testing::InProcCluster& c) {
    for (int i = 0; i < versions_during && during.ok(); ++i) {
      const int call = *manifest_calls + 1;
      during = c.scheduler().PublishNow().status();
      if (call == fail_manifest_call && absl::IsUnavailable(during)) during = OkStatus();
      if (examples_between == 0) continue;
      prometheus::Counter& examples = c.worker_metrics(0).GetCounter(
          "tessera_worker_examples_total", "Training examples processed.");
      const double until = examples.Value() + static_cast<double>(examples_between);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (examples.Value() < until) {
        if (std::chrono::steady_clock::now() > deadline) {
          during = DeadlineExceededError("worker 0 did not train between the publishes");
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  };
  SimulatedClock clock;
  TESSERA_ASSIGN_OR_RETURN(auto training, testing::InProcTraining::Run(job, std::move(o), &clock));
  TESSERA_RETURN_IF_ERROR(during);
  RunOutcome out;
  out.examples = training->examples();
  out.last_version = training->cluster().scheduler().last_published_version();
  return out;
}

TEST(PublishResumeTest, VersionsChainToTheFinalStateAndResumeContinuesExactly) {
  testing::TempDir tmp;
  const std::string pub = (tmp.path() / "pub").string();
  ASSERT_OK_AND_ASSIGN(models::JobConfig job, Job(pub, 2));
  ASSERT_OK_AND_ASSIGN(RunOutcome full_run, TrainAndPublish(job, false, 2));
  EXPECT_EQ(full_run.examples, 30000u * 9 / 10);  // gen keeps 10% for test.tsv
  // Two versions while training (the first cut at step 1), then the last
  // one when the workers finish: full, delta, delta (full_every: 3).
  ASSERT_EQ(full_run.last_version, 3u);
  ASSERT_OK_AND_ASSIGN(std::vector<models::VersionInfo> versions, models::ListVersions(pub));
  ASSERT_EQ(versions.size(), 3u);
  EXPECT_TRUE(versions[0].full);
  EXPECT_FALSE(versions[1].full);
  EXPECT_FALSE(versions[2].full);
  ASSERT_OK_AND_ASSIGN(models::SavedModel final_model,
                       models::LoadModelVersion(pub, 3, /*with_state=*/true));  // 1 -> 2 -> 3
  const Params want = ParamsOf(final_model);

  // The bound is meaningful: the model at version 2 (most data still to
  // train) is far from the final one.
  ASSERT_OK_AND_ASSIGN(models::SavedModel middle, models::LoadModelVersion(pub, 2, true));
  EXPECT_GT(MaxDiff(ParamsOf(middle), want), 1e-3);

  // Resume from version 2 (a delta in the middle; the servers load 1 then
  // 2): the result must equal the uninterrupted run's, bit for bit.
  for (int servers : {2, 3}) {
    SCOPED_TRACE("resumed on " + std::to_string(servers) + " servers");
    const std::string pub2 = (tmp.path() / ("resumed" + std::to_string(servers))).string();
    fs::create_directories(pub2);
    for (const char* v : {"1", "2"}) {
      fs::copy(fs::path(pub) / v, fs::path(pub2) / v, fs::copy_options::recursive);
    }
    ASSERT_OK_AND_ASSIGN(models::JobConfig resumed_job, Job(pub2, servers));
    ASSERT_OK_AND_ASSIGN(RunOutcome resumed, TrainAndPublish(resumed_job, true, 0));
    EXPECT_GT(resumed.examples, 0u);
    EXPECT_LT(resumed.examples, full_run.examples);
    EXPECT_EQ(resumed.last_version, 3u);  // numbering continues after 2 (a full snapshot)
    ASSERT_OK_AND_ASSIGN(models::SavedModel resumed_model,
                         models::LoadModelVersion(pub2, 3, /*with_state=*/true));
    EXPECT_LE(MaxDiff(ParamsOf(resumed_model), want), kRoundingTolerance);
  }
}

// A version that fails after the servers captured it (here its manifest
// write) is not in the chain, and the servers have reset their change sets
// for it: so the next version is full, and the chain still loads to the
// state of a run without the failure. Worker 0 trains 2000 examples between
// the publishes. (On this small vocabulary nearly every row changes again
// after the failed capture, so the chain check alone would not catch a
// delta on version 1; the full flag does.)
TEST(PublishResumeTest, AVersionThatFailsAfterItsCaptureIsFollowedByAFullOne) {
  testing::TempDir tmp;
  const std::string clean = (tmp.path() / "clean").string();
  const std::string failing = (tmp.path() / "failing").string();
  ASSERT_OK_AND_ASSIGN(models::JobConfig clean_job, Job(clean, 2));
  ASSERT_OK_AND_ASSIGN(RunOutcome clean_run, TrainAndPublish(clean_job, false, 2));
  ASSERT_OK_AND_ASSIGN(models::SavedModel want_model,
                       models::LoadModelVersion(clean, clean_run.last_version, true));
  ASSERT_OK_AND_ASSIGN(models::JobConfig job, Job(failing, 2));
  // Publishes during training: version 1 (full), version 2 fails at its
  // manifest, version 3; then the last one.
  ASSERT_OK_AND_ASSIGN(RunOutcome run, TrainAndPublish(job, false, 3, /*fail_manifest_call=*/2,
                                                       /*examples_between=*/2000));
  EXPECT_EQ(run.examples, clean_run.examples);
  EXPECT_EQ(run.last_version, 4u);
  ASSERT_OK_AND_ASSIGN(std::vector<models::VersionInfo> versions, models::ListVersions(failing));
  ASSERT_EQ(versions.size(), 3u);
  EXPECT_EQ(versions[0].version, 1u);
  EXPECT_TRUE(versions[0].full);
  EXPECT_EQ(versions[1].version, 3u);
  EXPECT_TRUE(versions[1].full);  // a delta on 1 would miss what changed before 2's capture
  EXPECT_EQ(versions[2].version, 4u);
  EXPECT_FALSE(versions[2].full);
  ASSERT_OK_AND_ASSIGN(models::SavedModel got, models::LoadModelVersion(failing, 4, true));
  EXPECT_LE(MaxDiff(ParamsOf(got), ParamsOf(want_model)), kRoundingTolerance);
}

// `tessera serve` following a publish directory answers exactly what
// `tessera eval` computes for the same published version (a delta, loaded
// through its chain by both).
TEST(PublishResumeTest, ServingAVersionEqualsEvalOfThatVersion) {
  testing::TempDir tmp;
  const std::string pub = (tmp.path() / "pub").string();
  ASSERT_OK_AND_ASSIGN(models::JobConfig job, Job(pub, 2));
  ASSERT_OK_AND_ASSIGN(RunOutcome run, TrainAndPublish(job, false, 2));
  ASSERT_GE(run.last_version, 3u);
  const std::string test_tsv = (Data().dir.path() / "test.tsv").string();
  const std::string predictions = (tmp.path() / "pred.tsv").string();
  ASSERT_OK(models::EvaluateSavedModel(models::VersionDir(pub, 2), {test_tsv},
                                       {.predictions_path = predictions})
                .status());

  // Serving follows a directory whose newest version is 2.
  const std::string served_dir = (tmp.path() / "served").string();
  for (const char* v : {"1", "2"}) {
    fs::create_directories(served_dir);
    fs::copy(fs::path(pub) / v, fs::path(served_dir) / v, fs::copy_options::recursive);
  }
  MetricsRegistry metrics;
  serving::RestApi api({.name = "ctr"}, &metrics);
  serving::ModelFollower follower({.publish_dir = served_dir}, api.slot(0), &metrics);
  ASSERT_OK(follower.PollOnce());
  ASSERT_OK_AND_ASSIGN(models::Schema schema, models::Schema::Load(job.data.schema));
  std::ifstream eval_in(predictions), test_in(test_tsv);
  std::vector<std::string> lines, expected;
  for (std::string l; std::getline(test_in, l);) lines.push_back(l);
  for (std::string l; std::getline(eval_in, l);) expected.push_back(l);
  ASSERT_EQ(lines.size(), expected.size());
  size_t checked = 0;
  for (size_t begin = 0; begin < lines.size(); begin += 250) {
    nlohmann::json instances = nlohmann::json::array();
    for (size_t i = begin; i < std::min(lines.size(), begin + 250); ++i) {
      instances.push_back(serving::testing::InstanceOfLine(schema, lines[i]));
    }
    const HttpResponse r = api.Handle(
        {"POST", "/v1/models/ctr:predict", nlohmann::json{{"instances", instances}}.dump()});
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
    const nlohmann::json reply = nlohmann::json::parse(r.body);
    EXPECT_EQ(reply["model_version"], "2");
    for (const nlohmann::json& p : reply["predictions"]) {
      int label;
      float want;
      ASSERT_EQ(std::sscanf(expected[checked].c_str(), "%d\t%f", &label, &want), 2);
      EXPECT_NEAR(p.get<double>(), want, 1e-6) << "line " << checked + 1;
      ++checked;
    }
  }
  EXPECT_EQ(checked, lines.size());
}

}  // namespace
}  // namespace tessera
