// The job file (YAML): what to train, on which data, with which cluster.
// Every key, its default and its range is documented in
// docs/configuration.md. Unknown keys, wrong types and bad values are
// rejected before anything starts, naming the key and the allowed values.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(JobConfig job, LoadJobConfig("job.yaml", {"train.epochs=2"}));
#ifndef TESSERA_MODELS_JOB_CONFIG_H_
#define TESSERA_MODELS_JOB_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/table_config.h"
#include "models/feature_hash.h"
#include "models/model.h"
#include "models/schema.h"

namespace tessera::models {

enum class Consistency : uint8_t { kAsync, kSsp, kSync };

struct DataConfig {
  std::string schema;               // path (resolved against the job file's directory)
  // Files, globs, directories (resolved); or exactly one stream source:
  // "-" (stdin) or "zmq+tcp://HOST:PORT" (the job binds a PULL socket).
  std::vector<std::string> train;
  std::string eval;                 // optional held-out file (resolved)
  double max_bad_ratio = 0.01;      // the job fails when bad/total lines exceed it
  std::string group_field;          // GAUC groups (default: first field named user_id, if any)
  uint64_t chunk_bytes = 64ull << 20;  // size of the byte ranges handed to workers
  // train names one directory whose files are consumed in name order as
  // they appear (".name" files are ignored until renamed); runs until stopped.
  bool follow = false;
  // True when train is a stream ("-" or zmq+tcp://): the job runs until its
  // input ends or it is stopped.
  bool streaming() const;
};

struct TrainConfig {
  uint32_t batch_size = 1024;       // per worker
  uint32_t epochs = 1;
  Consistency consistency = Consistency::kAsync;
  uint32_t staleness = 2;           // ssp: max steps ahead of the slowest worker
  double progress_every_s = 5;      // progress line period
  uint64_t eval_every_steps = 0;    // 0 = only at the end
  // Streams: a partial batch is trained once its first line is this old.
  uint32_t max_batch_delay_ms = 200;
};

// Model versions published while training (`publish:`); off without model_dir.
struct PublishConfig {
  std::string model_dir;   // resolved; DIR/<version>/ (models/model_versions.h)
  double interval_s = 5;   // a version every interval_s seconds
  uint32_t full_every = 20;  // every full_every-th version is a full snapshot
  uint64_t keep = 50;      // newest versions kept (plus what their chains need)
  bool enabled() const { return !model_dir.empty(); }
};

// The online joiner of `tessera join` (`join:`, docs/feedback_loop.md):
// serving's event log in, training examples out.
struct JoinConfig {
  std::string impression_dir;  // resolved; serving's --impression-dir
  // resolved; "": data.train's directory when data.follow is true
  std::string output_dir;
  double window_s = 600;       // attribution window
  double grace_s = 5;          // extra wait for events still being written
  uint64_t max_open = 1000000;  // open impressions kept; beyond: flushed as negatives
  uint32_t commit_interval_ms = 1000;  // how often rows are committed to a new file
  // Only these serve arms' impressions are joined (empty: all): one joiner
  // and training job per learning arm, each learning from its own traffic.
  std::vector<std::string> arms;
};

struct ClusterConfig {
  int servers = 1;
  int workers = 1;
  uint32_t heartbeat_interval_ms = 1000;
  uint32_t heartbeat_timeout_ms = 10000;
  // Copies of every shard: 1 = none (a server's death ends the job), 2 =
  // one backup each (recommended in production). At most `servers`.
  uint32_t replication = 1;
};

// Per-table server policies (`tables: {NAME: {...}}`); NAME is a schema
// table. Both are off by default.
struct TablePolicy {
  AdmissionConfig admission;
  EvictionConfig eviction;
  friend bool operator==(const TablePolicy&, const TablePolicy&) = default;
};

struct JobConfig {
  std::string path;        // the job file
  DataConfig data;
  ModelConfig model;
  OptimizerConfig sparse_optimizer;  // defaults: adagrad lr 0.05
  OptimizerConfig dense_optimizer;   // defaults: adam lr 0.001
  TrainConfig train;
  ClusterConfig cluster;
  std::map<std::string, TablePolicy> tables;  // by schema table name
  PublishConfig publish;
  JoinConfig join;
  std::string output_dir = "runs/default";  // resolved
  // The id salt's hasher (models/feature_hash.h). Never a job-file key: the
  // salt is a secret, so the CLI sets this from TESSERA_ID_SALT or
  // TESSERA_ID_SALT_FILE (tools/cli/id_salt.h); unsalted by default.
  FeatureHasher id_hasher;
};

// Parses YAML text. `base_dir` resolves relative paths; `overrides` are
// "key.path=value" strings (--set) applied before validation.
StatusOr<JobConfig> ParseJobConfig(const std::string& yaml, const std::string& source,
                                   const std::string& base_dir,
                                   const std::vector<std::string>& overrides);
StatusOr<JobConfig> LoadJobConfig(const std::string& path,
                                  const std::vector<std::string>& overrides);

std::string_view ConsistencyName(Consistency c);

// The job's schema (data.schema) hashing with the job's id_hasher: what every
// process of a job that turns ids into keys must use.
StatusOr<Schema> LoadJobSchema(const JobConfig& job);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_JOB_CONFIG_H_
