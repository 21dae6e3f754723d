#include "models/saved_model.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/initializer.h"
#include "common/row_file.h"
#include "models/saved_model_internal.h"
#include "models/table_plan.h"

namespace tessera::models {
namespace saved_model_internal {

Status CheckPlan(const ModelManifest& m, const Schema& schema, const Model& model,
                 const std::string& source) {
  const size_t num_sparse = schema.tables().size();
  const std::vector<DenseBlock>& blocks = model.dense_blocks();
  if (m.tables.size() != num_sparse + blocks.size()) {
    return InvalidArgumentError(absl::StrCat(source, ": ", m.tables.size(), " tables, the ",
                                             m.model.type, " model of this schema needs ",
                                             num_sparse + blocks.size()));
  }
  for (size_t i = 0; i < m.tables.size(); ++i) {
    const TableConfig& c = m.tables[i].config;
    const bool sparse = i < num_sparse;
    const int b = static_cast<int>(i - num_sparse);
    const bool ok = sparse ? c.kind == TableKind::kSparse &&
                                 c.id == SparseTableId(static_cast<int>(i)) &&
                                 c.name == schema.tables()[i] && c.dim == model.row_dim()
                           : c.kind == TableKind::kDense && c.id == DenseTableId(schema, b) &&
                                 c.size == blocks[b].size;
    if (!ok) {
      return InvalidArgumentError(absl::StrCat(source, ": table ", i, " ('", c.name,
                                               "') is not what the model and schema expect"));
    }
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<RowFileReader>> OpenPart(const std::string& dir, const SavedTable& t,
                                                  const std::string& file, bool with_state,
                                                  bool delta) {
  const std::string path = (std::filesystem::path(dir) / file).string();
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<RowFileReader> reader, RowFileReader::Open(path));
  const RowFileInfo& info = reader->info();
  const TableConfig& c = t.config;
  const RowFileKind kind = c.kind == TableKind::kDense ? RowFileKind::kDense : RowFileKind::kSparse;
  if (info.table_id != c.id || info.kind != kind ||
      (kind == RowFileKind::kSparse ? info.dim != c.dim : info.table_size != c.size)) {
    return InvalidArgumentError(absl::StrCat(path, ": holds table ", info.table_id,
                                             ", not table ", c.id, " ('", c.name,
                                             "') of the manifest, or another shape"));
  }
  const bool want_delta = delta && kind == RowFileKind::kSparse;
  if (info.is_delta != want_delta) {
    return InvalidArgumentError(absl::StrCat(
        path, info.is_delta ? ": a delta row file" : ": a complete row file", " in ",
        delta ? "a delta" : "a full snapshot", " (table '", c.name, "')"));
  }
  if (with_state && !info.has_state) {
    return FailedPreconditionError(path + ": saved without optimizer state");
  }
  return reader;
}

Status LoadDense(const std::string& dir, const SavedTable& t, bool with_state, DenseParams* out) {
  out->config = t.config;
  const uint64_t size = t.config.size;
  out->values.resize(size);
  DenseRecord range;
  for (const std::string& file : t.files) {
    TESSERA_ASSIGN_OR_RETURN(auto reader, OpenPart(dir, t, file, with_state, /*delta=*/false));
    if (with_state && out->state.empty()) {
      out->state_floats = reader->info().state_floats;
      out->state.resize(size * out->state_floats);
    } else if (with_state && reader->info().state_floats != out->state_floats) {
      return DataLossError(reader->path() + ": state floats differ from the table's other files");
    }
    while (true) {
      TESSERA_ASSIGN_OR_RETURN(bool more, reader->NextRange(&range));
      if (!more) break;
      const uint64_t n = range.end - range.begin;
      std::copy(range.values.begin(), range.values.end(), out->values.begin() + range.begin);
      for (uint32_t j = 0; j < out->state_floats; ++j) {  // planar over the range -> table
        std::copy_n(range.state.begin() + j * n, n, out->state.begin() + j * size + range.begin);
      }
      out->ranges.push_back({range.begin, range.end, range.step});
    }
    TESSERA_RETURN_IF_ERROR(reader->Finish());
  }
  std::sort(out->ranges.begin(), out->ranges.end(),
            [](const DenseParams::Range& a, const DenseParams::Range& b) { return a.begin < b.begin; });
  uint64_t next = 0;
  bool tiled = true;
  for (const DenseParams::Range& r : out->ranges) {
    tiled = tiled && r.begin == next;
    if (tiled) next = r.end;
  }
  if (!tiled || next != size) {
    return DataLossError(absl::StrCat(dir, ": the row files of dense table '", t.config.name,
                                      "' do not tile [0, ", size, ") (gap or overlap at ", next,
                                      ")"));
  }
  if (!with_state) out->ranges.clear();
  return OkStatus();
}

}  // namespace saved_model_internal

namespace {

using saved_model_internal::OpenPart;

Status LoadSparse(const std::string& dir, const SavedTable& t, bool with_state, SparseParams* out) {
  out->config = t.config;
  out->has_counters = with_state;
  std::vector<std::unique_ptr<RowFileReader>> readers;
  uint64_t total = 0;
  for (const std::string& file : t.files) {
    TESSERA_ASSIGN_OR_RETURN(auto reader, OpenPart(dir, t, file, with_state, /*delta=*/false));
    if (with_state && !readers.empty() &&
        reader->info().state_floats != readers[0]->info().state_floats) {
      return DataLossError(reader->path() + ": state floats differ from the table's other files");
    }
    total += reader->record_count();
    readers.push_back(std::move(reader));
  }
  out->state_floats = with_state && !readers.empty() ? readers[0]->info().state_floats : 0;
  const size_t dim = t.config.dim;
  const size_t stride = dim + out->state_floats;
  out->index.reserve(total);
  out->keys.reserve(total);
  out->arena.reserve(total * stride);
  if (with_state) {
    out->update_counts.reserve(total);
    out->last_updates.reserve(total);
  }
  SparseRecord row;
  for (const auto& reader : readers) {
    while (true) {
      TESSERA_ASSIGN_OR_RETURN(bool more, reader->NextRow(&row));
      if (!more) break;
      if (!out->index.emplace(row.key, out->index.size()).second) {
        return DataLossError(absl::StrCat(reader->path(), ": key ", row.key,
                                          " appears twice in table '", t.config.name, "'"));
      }
      out->keys.push_back(row.key);
      out->arena.insert(out->arena.end(), row.value.begin(), row.value.end());
      if (with_state) {
        out->arena.insert(out->arena.end(), row.state.begin(), row.state.end());
        out->update_counts.push_back(row.update_count);
        out->last_updates.push_back(row.last_update_unix_s);
      }
    }
    TESSERA_RETURN_IF_ERROR(reader->Finish());
  }
  return OkStatus();
}

}  // namespace

std::span<const float> SparseParams::Value(Key key) const {
  auto it = index.find(key);
  if (it == index.end()) return {};
  return {arena.data() + it->second * (config.dim + state_floats), config.dim};
}

std::span<const float> SparseParams::State(Key key) const {
  auto it = index.find(key);
  if (it == index.end() || state_floats == 0) return {};
  return {arena.data() + it->second * (config.dim + state_floats) + config.dim, state_floats};
}

void SparseParams::Upsert(Key key, std::span<const float> value, std::span<const float> state,
                          uint32_t update_count, uint32_t last_update) {
  const size_t stride = config.dim + state_floats;
  const auto [it, added] = index.emplace(key, index.size());
  if (added) {
    keys.push_back(key);
    arena.resize(arena.size() + stride);
    if (has_counters) {
      update_counts.push_back(0);
      last_updates.push_back(0);
    }
  }
  float* row = arena.data() + it->second * stride;
  std::copy(value.begin(), value.end(), row);
  std::copy(state.begin(), state.end(), row + config.dim);
  if (has_counters) {
    update_counts[it->second] = update_count;
    last_updates[it->second] = last_update;
  }
}

bool SparseParams::Erase(Key key) {
  const auto it = index.find(key);
  if (it == index.end()) return false;
  const uint64_t row = it->second;
  const uint64_t last = keys.size() - 1;
  const size_t stride = config.dim + state_floats;
  index.erase(it);
  if (row != last) {
    std::copy_n(arena.begin() + last * stride, stride, arena.begin() + row * stride);
    keys[row] = keys[last];
    index[keys[row]] = row;
    if (has_counters) {
      update_counts[row] = update_counts[last];
      last_updates[row] = last_updates[last];
    }
  }
  keys.pop_back();
  arena.resize(last * stride);
  if (has_counters) {
    update_counts.pop_back();
    last_updates.pop_back();
  }
  return true;
}

StatusOr<SavedModel> LoadSavedModel(const std::string& model_dir, bool with_state) {
  SavedModel saved;
  saved.with_state = with_state;
  TESSERA_ASSIGN_OR_RETURN(saved.manifest, ReadManifest(model_dir));
  const std::string source = (std::filesystem::path(model_dir) / kManifestFileName).string();
  if (saved.manifest.kind == SnapshotKind::kDelta) {
    return FailedPreconditionError(absl::StrCat(
        source, ": a delta (version ", saved.manifest.version, " on top of ",
        saved.manifest.base_version,
        "), not a whole model: load its publish directory's version chain instead"));
  }
  if (with_state && !saved.manifest.has_optimizer_state) {
    return FailedPreconditionError(source + ": saved without optimizer state");
  }
  TESSERA_ASSIGN_OR_RETURN(saved.schema,
                           Schema::Parse(saved.manifest.schema_yaml, source + " schema_yaml"));
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                           NewModel(saved.manifest.model, saved.schema));
  TESSERA_RETURN_IF_ERROR(saved_model_internal::CheckPlan(saved.manifest, saved.schema, *model, source));
  const size_t num_sparse = saved.schema.tables().size();
  saved.sparse.resize(num_sparse);
  saved.dense.resize(saved.manifest.tables.size() - num_sparse);
  for (size_t i = 0; i < saved.manifest.tables.size(); ++i) {
    const SavedTable& t = saved.manifest.tables[i];
    TESSERA_RETURN_IF_ERROR(i < num_sparse
                                ? LoadSparse(model_dir, t, with_state, &saved.sparse[i])
                                : saved_model_internal::LoadDense(model_dir, t, with_state, &saved.dense[i - num_sparse]));
  }
  return saved;
}

Status UseIdSalt(const FeatureHasher& hasher, const std::string& model_dir, SavedModel* model) {
  TESSERA_RETURN_IF_ERROR(CheckIdSalt(model->manifest, hasher, model_dir));
  model->schema.set_hasher(hasher);
  return OkStatus();
}

StatusOr<std::vector<std::span<const float>>> FillBatch(const SavedModel& model, Batch* batch) {
  for (TableBatch& t : batch->tables) {
    if (t.table < 0 || static_cast<size_t>(t.table) >= model.sparse.size()) {
      return InvalidArgumentError(absl::StrCat("batch table ", t.table, " is not in the model"));
    }
    const SparseParams& params = model.sparse[t.table];
    const uint32_t dim = params.config.dim;
    t.values.resize(static_cast<Eigen::Index>(t.keys.size()), dim);
    for (size_t i = 0; i < t.keys.size(); ++i) {
      const std::span<float> row(t.values.data() + i * dim, dim);
      const std::span<const float> value = params.Value(t.keys[i]);
      if (value.empty()) {
        MissingRowValue(params.config, t.keys[i], row);
      } else {
        std::copy(value.begin(), value.end(), row.begin());
      }
    }
  }
  std::vector<std::span<const float>> dense;
  dense.reserve(model.dense.size());
  for (const DenseParams& d : model.dense) dense.emplace_back(d.values);
  return dense;
}

}  // namespace tessera::models
