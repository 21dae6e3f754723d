#include "models/job_config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "common/arm_name.h"

namespace tessera::models {
namespace {

namespace fs = std::filesystem;

// Reads one YAML mapping, remembering which keys were consumed so unknown
// keys can be reported. Errors name the full key path.
class Section {
 public:
  Section(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  bool Has(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }
  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  Section Sub(const std::string& key) {
    seen_.insert(key);
    return Section(Has(key) ? node_[key] : YAML::Node(), Path(key));
  }

  Status CheckMap() const {
    if (node_ && !node_.IsNull() && !node_.IsMap()) {
      return InvalidArgumentError(Where() + " must be a mapping");
    }
    return OkStatus();
  }

  Status String(const std::string& key, std::string* out) {
    if (!Take(key)) return OkStatus();
    if (!node_[key].IsScalar()) return InvalidArgumentError(Path(key) + " must be a string");
    *out = node_[key].as<std::string>();
    return OkStatus();
  }

  Status StringList(const std::string& key, std::vector<std::string>* out) {
    if (!Take(key)) return OkStatus();
    const YAML::Node& n = node_[key];
    out->clear();
    if (n.IsScalar()) {
      out->push_back(n.as<std::string>());
      return OkStatus();
    }
    if (!n.IsSequence()) return InvalidArgumentError(Path(key) + " must be a string or a list");
    for (const YAML::Node& item : n) {
      if (!item.IsScalar()) return InvalidArgumentError(Path(key) + " items must be strings");
      out->push_back(item.as<std::string>());
    }
    return OkStatus();
  }

  Status Double(const std::string& key, double* out, double lo, double hi) {
    if (!Take(key)) return OkStatus();
    double v;
    if (!node_[key].IsScalar() || !YAML::convert<double>::decode(node_[key], v) ||
        !std::isfinite(v) || v < lo || v > hi) {
      return InvalidArgumentError(Path(key) + " must be a number in [" + Num(lo) + ", " +
                                  Num(hi) + "], got '" + Text(key) + "'");
    }
    *out = v;
    return OkStatus();
  }

  Status Float(const std::string& key, float* out, double lo, double hi) {
    double v = *out;
    TESSERA_RETURN_IF_ERROR(Double(key, &v, lo, hi));
    *out = static_cast<float>(v);
    return OkStatus();
  }

  template <typename T>
  Status Int(const std::string& key, T* out, int64_t lo, int64_t hi) {
    if (!Take(key)) return OkStatus();
    int64_t v;
    if (!node_[key].IsScalar() || !YAML::convert<int64_t>::decode(node_[key], v) || v < lo ||
        v > hi) {
      return InvalidArgumentError(Path(key) + " must be an integer in [" + std::to_string(lo) +
                                  ", " + std::to_string(hi) + "], got '" + Text(key) + "'");
    }
    *out = static_cast<T>(v);
    return OkStatus();
  }

  Status IntList(const std::string& key, std::vector<uint32_t>* out, int64_t lo, int64_t hi) {
    if (!Take(key)) return OkStatus();
    const YAML::Node& n = node_[key];
    if (!n.IsSequence()) return InvalidArgumentError(Path(key) + " must be a list of integers");
    out->clear();
    for (const YAML::Node& item : n) {
      int64_t v;
      if (!item.IsScalar() || !YAML::convert<int64_t>::decode(item, v) || v < lo || v > hi) {
        return InvalidArgumentError(Path(key) + " items must be integers in [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "]");
      }
      out->push_back(static_cast<uint32_t>(v));
    }
    return OkStatus();
  }

  Status Bool(const std::string& key, bool* out) {
    if (!Take(key)) return OkStatus();
    bool v;
    if (!node_[key].IsScalar() || !YAML::convert<bool>::decode(node_[key], v)) {
      return InvalidArgumentError(Path(key) + " must be true or false, got '" + Text(key) + "'");
    }
    *out = v;
    return OkStatus();
  }

  // A mapping of names to names, in file order ({hist_items: item_id}).
  Status NamePairs(const std::string& key, std::vector<std::pair<std::string, std::string>>* out) {
    if (!Take(key)) return OkStatus();
    const YAML::Node& n = node_[key];
    if (!n.IsMap()) {
      return InvalidArgumentError(Path(key) + " must be a mapping of names to names");
    }
    out->clear();
    for (const auto& kv : n) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
        return InvalidArgumentError(Path(key) + " must be a mapping of names to names");
      }
      out->emplace_back(kv.first.as<std::string>(), kv.second.as<std::string>());
    }
    return OkStatus();
  }

  Status Choice(const std::string& key, std::string* out, const std::vector<std::string>& allowed) {
    std::string v = *out;
    TESSERA_RETURN_IF_ERROR(String(key, &v));
    for (const std::string& a : allowed) {
      if (a == v) {
        *out = v;
        return OkStatus();
      }
    }
    std::string list;
    for (const std::string& a : allowed) list += (list.empty() ? "" : " | ") + a;
    return InvalidArgumentError(Path(key) + " must be one of " + list + ", got '" + v + "'");
  }

  // The keys of this mapping, in file order (empty when absent).
  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    if (!node_ || !node_.IsMap()) return keys;
    for (const auto& kv : node_) keys.push_back(kv.first.as<std::string>());
    return keys;
  }

  // InvalidArgument naming the first key that was never read.
  Status Finish() const {
    TESSERA_RETURN_IF_ERROR(CheckMap());
    if (!node_ || !node_.IsMap()) return OkStatus();
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (seen_.count(key) == 0) return InvalidArgumentError("unknown key " + Path(key));
    }
    return OkStatus();
  }

 private:
  bool Take(const std::string& key) {
    seen_.insert(key);
    return Has(key) && !node_[key].IsNull();
  }
  std::string Text(const std::string& key) const {
    return node_[key].IsScalar() ? node_[key].Scalar() : std::string("<not a scalar>");
  }
  std::string Where() const { return path_.empty() ? "the job file" : path_; }
  static std::string Num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }

  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

Status ReadOptimizer(Section s, OptimizerConfig* o) {
  TESSERA_RETURN_IF_ERROR(s.CheckMap());
  std::string type(OptimizerTypeName(o->type));
  TESSERA_RETURN_IF_ERROR(s.Choice("type", &type, {"sgd", "adagrad", "adam", "ftrl"}));
  ParseOptimizerType(type, &o->type);
  TESSERA_RETURN_IF_ERROR(s.Float("lr", &o->learning_rate, 1e-9, 1e3));
  TESSERA_RETURN_IF_ERROR(s.Float("beta1", &o->beta1, 0, 0.999999));
  TESSERA_RETURN_IF_ERROR(s.Float("beta2", &o->beta2, 0, 0.999999));
  TESSERA_RETURN_IF_ERROR(s.Float("epsilon", &o->epsilon, 0, 1));
  TESSERA_RETURN_IF_ERROR(s.Float("initial_accumulator", &o->initial_accumulator, 0, 1e6));
  TESSERA_RETURN_IF_ERROR(s.Float("beta", &o->ftrl_beta, 0, 1e6));
  TESSERA_RETURN_IF_ERROR(s.Float("l1", &o->l1, 0, 1e6));
  TESSERA_RETURN_IF_ERROR(s.Float("l2", &o->l2, 0, 1e6));
  // Adagrad starts from an empty accumulator unless told otherwise (as
  // PyTorch's Adagrad does): gradients of a mean loss are small, and a
  // non-zero G0 would shrink the first steps of rare keys by orders of
  // magnitude.
  if (o->type == OptimizerType::kAdagrad && !s.Has("initial_accumulator")) {
    o->initial_accumulator = 0;
  }
  return s.Finish();
}

Status ReadTablePolicy(Section s, TablePolicy* p) {
  TESSERA_RETURN_IF_ERROR(s.CheckMap());
  Section a = s.Sub("admission");
  TESSERA_RETURN_IF_ERROR(a.CheckMap());
  TESSERA_RETURN_IF_ERROR(a.Int("min_count", &p->admission.min_count, 0, 1000000));
  std::string unadmitted = p->admission.unadmitted_zeros ? "zeros" : "initial";
  TESSERA_RETURN_IF_ERROR(a.Choice("unadmitted", &unadmitted, {"initial", "zeros"}));
  p->admission.unadmitted_zeros = unadmitted == "zeros";
  TESSERA_RETURN_IF_ERROR(a.Finish());
  Section e = s.Sub("eviction");
  TESSERA_RETURN_IF_ERROR(e.CheckMap());
  TESSERA_RETURN_IF_ERROR(e.Int("ttl_s", &p->eviction.ttl_s, 0, UINT32_MAX));
  TESSERA_RETURN_IF_ERROR(e.Int("max_rows", &p->eviction.max_rows, 0, int64_t{1} << 40));
  TESSERA_RETURN_IF_ERROR(e.Finish());
  return s.Finish();
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path == "-" || fs::path(path).is_absolute() || path.find("://") != std::string::npos) {
    return path;
  }
  return (fs::path(base_dir) / path).lexically_normal().string();
}

Status ApplyOverride(YAML::Node* root, const std::string& assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgumentError("--set expects key.path=value, got '" + assignment + "'");
  }
  std::vector<std::string> parts;
  std::stringstream keys(assignment.substr(0, eq));
  for (std::string part; std::getline(keys, part, '.');) {
    if (part.empty()) return InvalidArgumentError("--set: empty key segment in '" + assignment + "'");
    parts.push_back(part);
  }
  std::vector<YAML::Node> chain{*root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (next && !next.IsMap() && !next.IsNull()) {
      return InvalidArgumentError("--set: " + parts[i] + " in '" + assignment + "' is not a section");
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = YAML::Load(assignment.substr(eq + 1));
  return OkStatus();
}

Status ReadSections(YAML::Node root, const std::string& base_dir, JobConfig* job) {
  Section top(root, "");
  TESSERA_RETURN_IF_ERROR(top.CheckMap());
  {
    Section d = top.Sub("data");
    TESSERA_RETURN_IF_ERROR(d.CheckMap());
    TESSERA_RETURN_IF_ERROR(d.String("schema", &job->data.schema));
    TESSERA_RETURN_IF_ERROR(d.StringList("train", &job->data.train));
    TESSERA_RETURN_IF_ERROR(d.String("eval", &job->data.eval));
    TESSERA_RETURN_IF_ERROR(d.Double("max_bad_ratio", &job->data.max_bad_ratio, 0, 1));
    TESSERA_RETURN_IF_ERROR(d.String("group_field", &job->data.group_field));
    uint64_t chunk_mb = job->data.chunk_bytes >> 20;
    TESSERA_RETURN_IF_ERROR(d.Int("chunk_mb", &chunk_mb, 1, 1 << 16));
    job->data.chunk_bytes = chunk_mb << 20;
    TESSERA_RETURN_IF_ERROR(d.Bool("follow", &job->data.follow));
    TESSERA_RETURN_IF_ERROR(d.Finish());
  }
  {
    Section m = top.Sub("model");
    TESSERA_RETURN_IF_ERROR(m.CheckMap());
    ModelConfig& model = job->model;
    TESSERA_RETURN_IF_ERROR(
        m.Choice("type", &model.type, {"lr", "fm", "deepfm", "din", "bst"}));
    TESSERA_RETURN_IF_ERROR(m.Int("embedding_dim", &model.embedding_dim, 1, 1024));
    TESSERA_RETURN_IF_ERROR(m.IntList("hidden", &model.hidden, 1, 65536));
    TESSERA_RETURN_IF_ERROR(m.Int("seed", &model.seed, 0, INT64_MAX));
    std::vector<std::pair<std::string, std::string>> pairs;
    TESSERA_RETURN_IF_ERROR(m.NamePairs("attention", &pairs));
    for (auto& [sequence, target] : pairs) {
      model.attention.push_back({.sequence = std::move(sequence), .target = std::move(target)});
    }
    TESSERA_RETURN_IF_ERROR(m.Bool("fm", &model.fm));
    TESSERA_RETURN_IF_ERROR(m.IntList("attention_hidden", &model.attention_hidden, 1, 4096));
    TESSERA_RETURN_IF_ERROR(m.Choice("attention_weights", &model.attention_weights,
                                     {"raw", "sigmoid", "softmax"}));
    TESSERA_RETURN_IF_ERROR(m.Int("layers", &model.layers, 1, 16));
    TESSERA_RETURN_IF_ERROR(m.Int("heads", &model.heads, 1, 64));
    TESSERA_RETURN_IF_ERROR(m.Int("ffn_dim", &model.ffn_dim, 0, 65536));
    TESSERA_RETURN_IF_ERROR(m.Float("dropout", &model.dropout, 0, 0.9));
    TESSERA_RETURN_IF_ERROR(m.Choice("bst_output", &model.bst_output, {"target", "mean"}));
    TESSERA_RETURN_IF_ERROR(m.Choice("bst_norm", &model.bst_norm, {"pre", "post"}));
    TESSERA_RETURN_IF_ERROR(m.Finish());
  }
  {
    Section o = top.Sub("optimizer");
    TESSERA_RETURN_IF_ERROR(o.CheckMap());
    TESSERA_RETURN_IF_ERROR(ReadOptimizer(o.Sub("sparse"), &job->sparse_optimizer));
    TESSERA_RETURN_IF_ERROR(ReadOptimizer(o.Sub("dense"), &job->dense_optimizer));
    TESSERA_RETURN_IF_ERROR(o.Finish());
  }
  {
    Section t = top.Sub("train");
    TESSERA_RETURN_IF_ERROR(t.CheckMap());
    TESSERA_RETURN_IF_ERROR(t.Int("batch_size", &job->train.batch_size, 1, 1 << 20));
    TESSERA_RETURN_IF_ERROR(t.Int("epochs", &job->train.epochs, 1, 10000));
    std::string consistency(ConsistencyName(job->train.consistency));
    TESSERA_RETURN_IF_ERROR(t.Choice("consistency", &consistency, {"async", "ssp", "sync"}));
    job->train.consistency = consistency == "sync"  ? Consistency::kSync
                             : consistency == "ssp" ? Consistency::kSsp
                                                    : Consistency::kAsync;
    TESSERA_RETURN_IF_ERROR(t.Int("staleness", &job->train.staleness, 0, 1000000));
    TESSERA_RETURN_IF_ERROR(t.Double("progress_every_s", &job->train.progress_every_s, 0.1, 3600));
    TESSERA_RETURN_IF_ERROR(t.Int("eval_every_steps", &job->train.eval_every_steps, 0, INT64_MAX));
    TESSERA_RETURN_IF_ERROR(
        t.Int("max_batch_delay_ms", &job->train.max_batch_delay_ms, 1, 3600 * 1000));
    TESSERA_RETURN_IF_ERROR(t.Finish());
  }
  {
    Section c = top.Sub("cluster");
    TESSERA_RETURN_IF_ERROR(c.CheckMap());
    TESSERA_RETURN_IF_ERROR(c.Int("servers", &job->cluster.servers, 1, 4096));
    TESSERA_RETURN_IF_ERROR(c.Int("workers", &job->cluster.workers, 1, 4096));
    TESSERA_RETURN_IF_ERROR(c.Int("heartbeat_interval_ms", &job->cluster.heartbeat_interval_ms, 10, 600000));
    TESSERA_RETURN_IF_ERROR(c.Int("heartbeat_timeout_ms", &job->cluster.heartbeat_timeout_ms, 30, 3600000));
    TESSERA_RETURN_IF_ERROR(c.Int("replication", &job->cluster.replication, 1, 16));
    TESSERA_RETURN_IF_ERROR(c.Finish());
  }
  {
    Section t = top.Sub("tables");
    TESSERA_RETURN_IF_ERROR(t.CheckMap());
    // Names are checked against the schema by CheckTablePolicies.
    for (const std::string& name : t.Keys()) {
      TESSERA_RETURN_IF_ERROR(ReadTablePolicy(t.Sub(name), &job->tables[name]));
    }
    TESSERA_RETURN_IF_ERROR(t.Finish());
  }
  {
    Section p = top.Sub("publish");
    TESSERA_RETURN_IF_ERROR(p.CheckMap());
    TESSERA_RETURN_IF_ERROR(p.String("model_dir", &job->publish.model_dir));
    TESSERA_RETURN_IF_ERROR(p.Double("interval_s", &job->publish.interval_s, 0.1, 86400));
    TESSERA_RETURN_IF_ERROR(p.Int("full_every", &job->publish.full_every, 1, 1000000));
    TESSERA_RETURN_IF_ERROR(p.Int("keep", &job->publish.keep, 0, 1000000));
    TESSERA_RETURN_IF_ERROR(p.Finish());
  }
  {
    Section j = top.Sub("join");
    TESSERA_RETURN_IF_ERROR(j.CheckMap());
    TESSERA_RETURN_IF_ERROR(j.String("impression_dir", &job->join.impression_dir));
    TESSERA_RETURN_IF_ERROR(j.String("output_dir", &job->join.output_dir));
    TESSERA_RETURN_IF_ERROR(j.Double("window_s", &job->join.window_s, 0, 30 * 86400));
    TESSERA_RETURN_IF_ERROR(j.Double("grace_s", &job->join.grace_s, 0, 3600));
    TESSERA_RETURN_IF_ERROR(j.Int("max_open", &job->join.max_open, 1, int64_t{1} << 32));
    TESSERA_RETURN_IF_ERROR(j.Int("commit_interval_ms", &job->join.commit_interval_ms, 10, 3600000));
    TESSERA_RETURN_IF_ERROR(j.StringList("arms", &job->join.arms));
    for (const std::string& arm : job->join.arms) {
      if (!IsArmName(arm)) {
        return InvalidArgumentError("join.arms: '" + arm + "' is not an arm name (" +
                                    kArmNameRule + ", as serve's --arm NAME)");
      }
    }
    TESSERA_RETURN_IF_ERROR(j.Finish());
  }
  TESSERA_RETURN_IF_ERROR(top.String("output_dir", &job->output_dir));
  TESSERA_RETURN_IF_ERROR(top.Finish());

  if (job->data.schema.empty()) return InvalidArgumentError("data.schema is required");
  if (job->data.train.empty()) return InvalidArgumentError("data.train is required");
  if (job->cluster.replication > static_cast<uint32_t>(job->cluster.servers)) {
    return InvalidArgumentError("cluster.replication (" +
                                std::to_string(job->cluster.replication) +
                                ") exceeds cluster.servers (" +
                                std::to_string(job->cluster.servers) + ")");
  }
  if (job->cluster.heartbeat_timeout_ms <= job->cluster.heartbeat_interval_ms) {
    return InvalidArgumentError("cluster.heartbeat_timeout_ms must exceed cluster.heartbeat_interval_ms");
  }
  if (job->train.consistency != Consistency::kSsp && root["train"] && root["train"]["staleness"]) {
    return InvalidArgumentError("train.staleness goes with train.consistency: ssp");
  }
  const bool stream = job->data.streaming();
  bool names_stream = false;
  for (const std::string& t : job->data.train) names_stream |= t == "-" || t.rfind("zmq+", 0) == 0;
  if (names_stream && !stream) {
    return InvalidArgumentError("data.train: a stream ('-' or zmq+tcp://) must be the only source");
  }
  if (job->data.follow && (stream || job->data.train.size() != 1)) {
    return InvalidArgumentError("data.follow: data.train must name exactly one directory");
  }
  if ((stream || job->data.follow) && job->train.epochs != 1) {
    return InvalidArgumentError("train.epochs: a followed or streamed input has one pass");
  }
  for (const std::string& t : job->data.train) {
    if (t.rfind("zmq+", 0) == 0 && t.rfind("zmq+tcp://", 0) != 0) {
      return InvalidArgumentError("data.train: '" + t + "': only zmq+tcp://HOST:PORT is supported");
    }
  }
  job->data.schema = Resolve(base_dir, job->data.schema);
  if (!stream) {
    for (std::string& t : job->data.train) t = Resolve(base_dir, t);
  }
  if (job->publish.enabled()) job->publish.model_dir = Resolve(base_dir, job->publish.model_dir);
  if (!job->join.impression_dir.empty()) {
    job->join.impression_dir = Resolve(base_dir, job->join.impression_dir);
  }
  if (!job->join.output_dir.empty()) job->join.output_dir = Resolve(base_dir, job->join.output_dir);
  job->data.eval = Resolve(base_dir, job->data.eval);
  job->output_dir = Resolve(base_dir, job->output_dir);
  return OkStatus();
}

}  // namespace

bool DataConfig::streaming() const {
  return train.size() == 1 && (train[0] == "-" || train[0].rfind("zmq+", 0) == 0);
}

std::string_view ConsistencyName(Consistency c) {
  switch (c) {
    case Consistency::kAsync:
      return "async";
    case Consistency::kSsp:
      return "ssp";
    case Consistency::kSync:
      return "sync";
  }
  return "async";
}

StatusOr<JobConfig> ParseJobConfig(const std::string& yaml, const std::string& source,
                                   const std::string& base_dir,
                                   const std::vector<std::string>& overrides) {
  JobConfig job;
  job.path = source;
  job.sparse_optimizer.type = OptimizerType::kAdagrad;
  job.sparse_optimizer.learning_rate = 0.05f;
  job.dense_optimizer.type = OptimizerType::kAdam;
  job.dense_optimizer.learning_rate = 0.001f;
  try {
    YAML::Node root = YAML::Load(yaml);
    if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    for (const std::string& o : overrides) TESSERA_RETURN_IF_ERROR(ApplyOverride(&root, o));
    Status s = ReadSections(root, base_dir, &job);
    if (!s.ok()) return InvalidArgumentError(source + ": " + std::string(s.message()));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(source + ": invalid YAML: " + e.what());
  }
  return job;
}

StatusOr<JobConfig> LoadJobConfig(const std::string& path,
                                  const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read job file " + path);
  std::stringstream text;
  text << in.rdbuf();
  std::string base = fs::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return ParseJobConfig(text.str(), path, base, overrides);
}

StatusOr<Schema> LoadJobSchema(const JobConfig& job) {
  TESSERA_ASSIGN_OR_RETURN(Schema schema, Schema::Load(job.data.schema));
  schema.set_hasher(job.id_hasher);
  return schema;
}

}  // namespace tessera::models
