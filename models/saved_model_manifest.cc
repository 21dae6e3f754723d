// manifest.json of saved models: WriteManifest and ReadManifest
// (models/saved_model.h documents the format).
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "common/row_file.h"
#include "models/feature_hash.h"
#include "models/saved_model.h"

namespace tessera::models {
namespace {

using nlohmann::json;

constexpr char kFormatName[] = "tessera-saved-model";

std::string KindName(TableKind kind) { return kind == TableKind::kDense ? "dense" : "sparse"; }

// A relative path inside the model directory: not absolute, no "..".
Status CheckRelativePath(const std::string& file) {
  const std::filesystem::path p(file);
  bool escapes = file.empty() || p.is_absolute();
  for (const auto& part : p) escapes = escapes || part == "..";
  if (escapes) {
    return InvalidArgumentError("file \"" + file + "\" is not a path inside the model directory");
  }
  return OkStatus();
}

json TableToJson(const SavedTable& t) {
  const TableConfig& c = t.config;
  const OptimizerConfig& o = c.optimizer;
  return json{
      {"id", c.id},
      {"name", c.name},
      {"kind", KindName(c.kind)},
      {"dim", c.dim},
      {"size", c.size},
      {"optimizer",
       {{"type", std::string(OptimizerTypeName(o.type))},
        {"learning_rate", o.learning_rate},
        {"beta1", o.beta1},
        {"beta2", o.beta2},
        {"epsilon", o.epsilon},
        {"initial_accumulator", o.initial_accumulator},
        {"ftrl_beta", o.ftrl_beta},
        {"l1", o.l1},
        {"l2", o.l2}}},
      {"initializer",
       {{"type", std::string(InitializerTypeName(c.initializer.type))},
        {"scale", c.initializer.scale},
        {"seed", c.initializer.seed}}},
      {"admission", {{"min_count", c.admission.min_count},
                     {"unadmitted", c.admission.unadmitted_zeros ? "zeros" : "initial"}}},
      {"eviction", {{"ttl_s", c.eviction.ttl_s}, {"max_rows", c.eviction.max_rows}}},
      {"files", t.files}};
}

// Reads typed members of JSON objects, keeping the first error, which names
// the member by its path ("tables[2].optimizer.l2").
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  const json* Member(const json& obj, const std::string& path, const char* key) {
    if (!obj.is_object() || !obj.contains(key)) {
      Fail(Path(path, key), "missing");
      return nullptr;
    }
    return &obj[key];
  }
  template <typename T>
  void Unsigned(const json& obj, const std::string& path, const char* key, T* out) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return;
    if (!v->is_number_unsigned() ||
        v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return Fail(Path(path, key), "expected an unsigned integer");
    }
    *out = static_cast<T>(v->get<uint64_t>());
  }
  void Int64(const json& obj, const std::string& path, const char* key, int64_t* out) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return;
    if (!v->is_number_integer()) return Fail(Path(path, key), "expected an integer");
    *out = v->get<int64_t>();
  }
  void Float(const json& obj, const std::string& path, const char* key, float* out) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return;
    if (!v->is_number()) return Fail(Path(path, key), "expected a number");
    *out = static_cast<float>(v->get<double>());
  }
  void Bool(const json& obj, const std::string& path, const char* key, bool* out) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return;
    if (!v->is_boolean()) return Fail(Path(path, key), "expected true or false");
    *out = v->get<bool>();
  }
  void String(const json& obj, const std::string& path, const char* key, std::string* out) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(Path(path, key), "expected a string");
    *out = v->get<std::string>();
  }
  void Fail(const std::string& path, const std::string& what) {
    if (status_.ok()) status_ = InvalidArgumentError(source_ + ": " + path + ": " + what);
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

 private:
  static std::string Path(const std::string& path, const char* key) {
    return path.empty() ? key : path + "." + key;
  }
  const std::string source_;
  Status status_;
};

void ReadOptimizer(Reader& r, const json& t, const std::string& path, OptimizerConfig* o) {
  const json* obj = r.Member(t, path, "optimizer");
  if (obj == nullptr) return;
  const std::string p = path + ".optimizer";
  std::string type;
  r.String(*obj, p, "type", &type);
  if (r.ok() && !ParseOptimizerType(type, &o->type)) r.Fail(p + ".type", "unknown optimizer");
  r.Float(*obj, p, "learning_rate", &o->learning_rate);
  r.Float(*obj, p, "beta1", &o->beta1);
  r.Float(*obj, p, "beta2", &o->beta2);
  r.Float(*obj, p, "epsilon", &o->epsilon);
  r.Float(*obj, p, "initial_accumulator", &o->initial_accumulator);
  r.Float(*obj, p, "ftrl_beta", &o->ftrl_beta);
  r.Float(*obj, p, "l1", &o->l1);
  r.Float(*obj, p, "l2", &o->l2);
}

void ReadTable(Reader& r, const json& t, const std::string& path, SavedTable* out) {
  TableConfig& c = out->config;
  r.Unsigned(t, path, "id", &c.id);
  r.String(t, path, "name", &c.name);
  std::string kind;
  r.String(t, path, "kind", &kind);
  if (r.ok() && kind != "sparse" && kind != "dense") r.Fail(path + ".kind", "not sparse or dense");
  c.kind = kind == "dense" ? TableKind::kDense : TableKind::kSparse;
  r.Unsigned(t, path, "dim", &c.dim);
  r.Unsigned(t, path, "size", &c.size);
  ReadOptimizer(r, t, path, &c.optimizer);
  if (const json* init = r.Member(t, path, "initializer")) {
    std::string type;
    r.String(*init, path + ".initializer", "type", &type);
    if (r.ok() && !ParseInitializerType(type, &c.initializer.type)) {
      r.Fail(path + ".initializer.type", "unknown initializer");
    }
    r.Float(*init, path + ".initializer", "scale", &c.initializer.scale);
    r.Unsigned(*init, path + ".initializer", "seed", &c.initializer.seed);
  }
  if (const json* a = r.Member(t, path, "admission")) {
    r.Unsigned(*a, path + ".admission", "min_count", &c.admission.min_count);
    if (a->contains("unadmitted")) {
      std::string unadmitted;
      r.String(*a, path + ".admission", "unadmitted", &unadmitted);
      if (r.ok() && unadmitted != "initial" && unadmitted != "zeros") {
        r.Fail(path + ".admission.unadmitted", "expected \"initial\" or \"zeros\"");
      }
      c.admission.unadmitted_zeros = unadmitted == "zeros";
    }
  }
  if (const json* e = r.Member(t, path, "eviction")) {
    r.Unsigned(*e, path + ".eviction", "ttl_s", &c.eviction.ttl_s);
    r.Unsigned(*e, path + ".eviction", "max_rows", &c.eviction.max_rows);
  }
  const json* files = r.Member(t, path, "files");
  if (files != nullptr && !files->is_array()) r.Fail(path + ".files", "expected a list");
  if (files == nullptr || !r.ok()) return;
  for (size_t i = 0; i < files->size(); ++i) {
    const json& f = (*files)[i];
    if (!f.is_string()) return r.Fail(path + ".files[" + std::to_string(i) + "]", "expected a string");
    out->files.push_back(f.get<std::string>());
  }
}

void UnsignedList(Reader& r, const json& list, const std::string& path,
                  std::vector<uint32_t>* out) {
  if (!list.is_array()) return r.Fail(path, "expected a list");
  out->clear();
  for (const json& h : list) {
    if (!h.is_number_unsigned() || h.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
      return r.Fail(path, "expected unsigned integers");
    }
    out->push_back(h.get<uint32_t>());
  }
}

void ReadAttentionPairs(Reader& r, const json& list, std::vector<AttentionPair>* out) {
  if (!list.is_array()) return r.Fail("model.attention", "expected a list");
  out->clear();
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = "model.attention[" + std::to_string(i) + "]";
    AttentionPair pair;
    r.String(list[i], path, "sequence", &pair.sequence);
    r.String(list[i], path, "target", &pair.target);
    out->push_back(std::move(pair));
  }
}

// The sequence-model keys are optional (manifests written before din and bst
// existed lack them; their defaults are what those models meant).
void ReadModelConfig(Reader& r, const json& doc, ModelConfig* m) {
  const json* model = r.Member(doc, "", "model");
  if (model == nullptr) return;
  r.String(*model, "model", "type", &m->type);
  r.Unsigned(*model, "model", "embedding_dim", &m->embedding_dim);
  r.Unsigned(*model, "model", "seed", &m->seed);
  if (const json* hidden = r.Member(*model, "model", "hidden")) {
    UnsignedList(r, *hidden, "model.hidden", &m->hidden);
  }
  if (!model->is_object()) return;
  if (model->contains("attention")) ReadAttentionPairs(r, (*model)["attention"], &m->attention);
  if (model->contains("fm")) r.Bool(*model, "model", "fm", &m->fm);
  if (model->contains("attention_hidden")) {
    UnsignedList(r, (*model)["attention_hidden"], "model.attention_hidden",
                       &m->attention_hidden);
  }
  if (model->contains("attention_weights")) {
    r.String(*model, "model", "attention_weights", &m->attention_weights);
  }
  if (model->contains("layers")) r.Unsigned(*model, "model", "layers", &m->layers);
  if (model->contains("heads")) r.Unsigned(*model, "model", "heads", &m->heads);
  if (model->contains("ffn_dim")) r.Unsigned(*model, "model", "ffn_dim", &m->ffn_dim);
  if (model->contains("dropout")) r.Float(*model, "model", "dropout", &m->dropout);
  if (model->contains("bst_output")) r.String(*model, "model", "bst_output", &m->bst_output);
  if (model->contains("bst_norm")) r.String(*model, "model", "bst_norm", &m->bst_norm);
}

json ModelConfigToJson(const ModelConfig& m) {
  json attention = json::array();
  for (const AttentionPair& p : m.attention) {
    attention.push_back({{"sequence", p.sequence}, {"target", p.target}});
  }
  return json{{"type", m.type},
              {"embedding_dim", m.embedding_dim},
              {"hidden", m.hidden},
              {"seed", m.seed},
              {"attention", attention},
              {"fm", m.fm},
              {"attention_hidden", m.attention_hidden},
              {"attention_weights", m.attention_weights},
              {"layers", m.layers},
              {"heads", m.heads},
              {"ffn_dim", m.ffn_dim},
              {"dropout", m.dropout},
              {"bst_output", m.bst_output},
              {"bst_norm", m.bst_norm}};
}

// Validation shared by the writer and the reader.
Status CheckTables(const std::vector<SavedTable>& tables) {
  for (const SavedTable& t : tables) {
    TESSERA_RETURN_IF_ERROR(ValidateTableConfig(t.config));
    for (const std::string& file : t.files) TESSERA_RETURN_IF_ERROR(CheckRelativePath(file));
  }
  return OkStatus();
}

// A delta applies to the version right before it; a full snapshot to none.
Status CheckVersions(const ModelManifest& m) {
  if (m.kind == SnapshotKind::kFull && m.base_version != 0) {
    return InvalidArgumentError("base_version: a full snapshot has none (got " +
                                std::to_string(m.base_version) + ")");
  }
  if (m.kind == SnapshotKind::kDelta &&
      (m.base_version == 0 || m.version == 0 || m.base_version >= m.version)) {
    return InvalidArgumentError("a delta needs 0 < base_version < version (got base_version " +
                                std::to_string(m.base_version) + ", version " +
                                std::to_string(m.version) + ")");
  }
  return OkStatus();
}

// The training state as a JSON object (null if absent), or the error.
StatusOr<json> ParseTrainingState(const std::string& text) {
  if (text.empty()) return json();
  json state = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.is_object()) {
    return InvalidArgumentError("training_state: not a JSON object");
  }
  return state;
}

// The optional version keys (absent in manifests written before them).
void ReadVersionKeys(Reader& r, const json& doc, ModelManifest* m) {
  if (doc.contains("version")) r.Unsigned(doc, "", "version", &m->version);
  if (doc.contains("base_version")) r.Unsigned(doc, "", "base_version", &m->base_version);
  m->created_unix_ms = m->created_unix_s * 1000;
  if (doc.contains("created_unix_ms")) r.Int64(doc, "", "created_unix_ms", &m->created_unix_ms);
  if (const auto it = doc.find("training_state"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) return r.Fail("training_state", "expected an object");
    m->training_state_json = it->dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

// "" (unsalted) or 16 lowercase hex digits (FeatureHasher::fingerprint()).
bool IsFingerprint(const std::string& f) {
  if (f.empty()) return true;
  if (f.size() != 16) return false;
  for (char c : f) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Status CheckIdSalt(const ModelManifest& manifest, const FeatureHasher& hasher,
                   const std::string& model_dir) {
  const std::string& trained = manifest.id_salt_fingerprint;
  if (trained == hasher.fingerprint()) return OkStatus();
  std::string text = model_dir + ": ";
  if (trained.empty()) {
    text.append("trained without an id salt, but one is set (fingerprint ")
        .append(hasher.fingerprint())
        .append("): unset TESSERA_ID_SALT / TESSERA_ID_SALT_FILE");
  } else if (!hasher.salted()) {
    text.append("trained with an id salt (fingerprint ")
        .append(trained)
        .append("), but none is set: set TESSERA_ID_SALT or TESSERA_ID_SALT_FILE to the "
                "training job's salt");
  } else {
    text.append("trained with another id salt (fingerprint ")
        .append(trained)
        .append(", this process's salt has ")
        .append(hasher.fingerprint())
        .append("): keys would not match");
  }
  return FailedPreconditionError(text);
}

bool SameModel(const ModelManifest& a, const ModelManifest& b) {
  if (a.schema_yaml != b.schema_yaml || a.tables.size() != b.tables.size() ||
      a.id_salt_fingerprint != b.id_salt_fingerprint ||
      ModelConfigToJson(a.model) != ModelConfigToJson(b.model)) {
    return false;
  }
  for (size_t i = 0; i < a.tables.size(); ++i) {
    if (!(a.tables[i].config == b.tables[i].config)) return false;
  }
  return true;
}

Status WriteManifest(const std::string& model_dir, const ModelManifest& manifest) {
  TESSERA_RETURN_IF_ERROR(CheckTables(manifest.tables));
  TESSERA_RETURN_IF_ERROR(CheckVersions(manifest));
  TESSERA_ASSIGN_OR_RETURN(json training_state, ParseTrainingState(manifest.training_state_json));
  json tables = json::array();
  for (const SavedTable& t : manifest.tables) tables.push_back(TableToJson(t));
  const bool delta = manifest.kind == SnapshotKind::kDelta;
  json doc{{"format", kFormatName},
           {"format_version", kSavedModelFormatVersion},
           {"kind", delta ? "delta" : "full"},
           {"version", manifest.version},
           {"base_version", manifest.base_version},
           {"feature_hash_version", kFeatureHashVersion},
           {"created_unix_s", manifest.created_unix_s},
           {"created_unix_ms", manifest.created_unix_ms != 0
                                   ? manifest.created_unix_ms
                                   : manifest.created_unix_s * 1000},
           {"has_optimizer_state", manifest.has_optimizer_state},
           {"model", ModelConfigToJson(manifest.model)},
           {"group_field", manifest.group_field},
           {"num_servers", manifest.num_servers},
           {"schema_yaml", manifest.schema_yaml},
           {"tables", tables}};
  if (!training_state.is_null()) doc["training_state"] = std::move(training_state);
  if (!IsFingerprint(manifest.id_salt_fingerprint)) {
    return InvalidArgumentError("id_salt_fingerprint must be empty or 16 hex digits");
  }
  // Absent when unsalted, so such manifests are what they were before salts.
  if (!manifest.id_salt_fingerprint.empty()) {
    doc["id_salt_fingerprint"] = manifest.id_salt_fingerprint;
  }
  std::error_code ec;
  std::filesystem::create_directories(model_dir, ec);
  if (ec) return UnavailableError("cannot create " + model_dir + ": " + ec.message());
  // Invalid UTF-8 is replaced rather than thrown on.
  const std::string text = doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return WriteFileAtomically((std::filesystem::path(model_dir) / kManifestFileName).string(), text);
}

StatusOr<ModelManifest> ReadManifest(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / kManifestFileName).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return NotFoundError(path + ": cannot be read (not a saved model, or its save did not finish)");
  }
  std::stringstream text;
  text << in.rdbuf();
  const json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError(path + ": not a JSON object");
  }
  Reader r(path);
  ModelManifest m;
  std::string format, kind;
  r.String(doc, "", "format", &format);
  r.Unsigned(doc, "", "format_version", &m.format_version);
  r.String(doc, "", "kind", &kind);
  r.Unsigned(doc, "", "feature_hash_version", &m.feature_hash_version);
  TESSERA_RETURN_IF_ERROR(r.status());
  if (format != kFormatName) return InvalidArgumentError(path + ": format is not " + kFormatName);
  if (m.format_version > kSavedModelFormatVersion || m.format_version == 0) {
    return UnimplementedError(path + ": format_version " + std::to_string(m.format_version) +
                              " is not supported (this build reads up to " +
                              std::to_string(kSavedModelFormatVersion) + ")");
  }
  if (kind != "full" && kind != "delta") {
    return InvalidArgumentError(path + ": kind: \"" + kind + "\" is not full or delta");
  }
  m.kind = kind == "delta" ? SnapshotKind::kDelta : SnapshotKind::kFull;
  if (m.feature_hash_version != kFeatureHashVersion) {
    return FailedPreconditionError(
        path + ": trained with feature hash version " + std::to_string(m.feature_hash_version) +
        ", this build hashes with version " + std::to_string(kFeatureHashVersion));
  }
  r.Int64(doc, "", "created_unix_s", &m.created_unix_s);
  ReadVersionKeys(r, doc, &m);
  r.Bool(doc, "", "has_optimizer_state", &m.has_optimizer_state);
  r.String(doc, "", "schema_yaml", &m.schema_yaml);
  r.String(doc, "", "group_field", &m.group_field);
  r.Unsigned(doc, "", "num_servers", &m.num_servers);
  if (doc.contains("id_salt_fingerprint")) {
    r.String(doc, "", "id_salt_fingerprint", &m.id_salt_fingerprint);
    if (r.ok() && !IsFingerprint(m.id_salt_fingerprint)) {
      r.Fail("id_salt_fingerprint", "expected 16 hex digits");
    }
  }
  ReadModelConfig(r, doc, &m.model);
  const json* tables = r.Member(doc, "", "tables");
  if (tables != nullptr && !tables->is_array()) r.Fail("tables", "expected a list");
  for (size_t i = 0; r.ok() && tables != nullptr && i < tables->size(); ++i) {
    m.tables.emplace_back();
    ReadTable(r, (*tables)[i], "tables[" + std::to_string(i) + "]", &m.tables.back());
  }
  TESSERA_RETURN_IF_ERROR(r.status());
  if (Status s = CheckTables(m.tables); !s.ok()) {
    return InvalidArgumentError(path + ": " + std::string(s.message()));
  }
  if (Status s = CheckVersions(m); !s.ok()) {
    return InvalidArgumentError(path + ": " + std::string(s.message()));
  }
  return m;
}

}  // namespace tessera::models
