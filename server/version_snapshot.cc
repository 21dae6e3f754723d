#include "server/version_snapshot.h"

#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "common/logging.h"
#include "common/row_file.h"

namespace tessera::server {
namespace {

// Written versions remembered for late WhenWritten calls.
constexpr size_t kRememberedVersions = 64;

std::string FileOf(const CapturedVersion& v, const TableConfig& config) {
  return (std::filesystem::path(v.info.dir) / RowFileRelativePath(config.name, v.rank)).string();
}

Status WriteSparse(const CapturedVersion& v, const CapturedTable& t) {
  const EmbeddingTable::Captured& c = t.sparse;
  const RowFileInfo info{.table_id = t.config.id,
                         .kind = RowFileKind::kSparse,
                         .dim = c.dim,
                         .state_floats = c.state_floats,
                         .has_state = true,
                         .is_delta = !v.info.full};
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<RowFileWriter> writer,
                           RowFileWriter::Create(FileOf(v, t.config), info));
  for (size_t i = 0; i < c.num_rows(); ++i) {
    const std::byte* record = c.rows.data() + i * c.record_bytes();
    EmbeddingTable::RowHeader header;
    std::memcpy(&header, record, sizeof(header));
    const float* floats = reinterpret_cast<const float*>(record + sizeof(header));
    TESSERA_RETURN_IF_ERROR(writer->AddRow(header.key, header.update_count,
                                           header.last_update_unix_s, {floats, c.dim},
                                           {floats + c.dim, c.state_floats}));
  }
  for (Key key : c.deleted) TESSERA_RETURN_IF_ERROR(writer->AddDeletedKey(key));
  return writer->Finish();
}

Status WriteDense(const CapturedVersion& v, const CapturedTable& t) {
  const RowFileInfo info{.table_id = t.config.id,
                         .kind = RowFileKind::kDense,
                         .state_floats = t.state_floats,
                         .has_state = true,
                         .table_size = t.config.size};
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<RowFileWriter> writer,
                           RowFileWriter::Create(FileOf(v, t.config), info));
  for (const CapturedDenseRange& r : t.dense) {
    TESSERA_RETURN_IF_ERROR(writer->AddRange(r.begin, r.end, r.step, r.values, r.state));
  }
  return writer->Finish();
}

Status RestoreSparse(const ServerTable& table, RowFileReader& reader, const ShardMap& shard_map,
                     int32_t rank) {
  const RowFileInfo& info = reader.info();
  EmbeddingTable& rows = *table.sparse;
  if (info.dim != rows.dim() || (info.has_state && info.state_floats != rows.state_floats())) {
    return FailedPreconditionError(reader.path() + ": rows of dim " + std::to_string(info.dim) +
                                   " with " + std::to_string(info.state_floats) +
                                   " state floats, but table '" + table.config.name +
                                   "' has dim " + std::to_string(rows.dim()) + " and " +
                                   std::to_string(rows.state_floats()));
  }
  // Tombstones apply before the rows (a key deleted then re-created is in
  // both): read the rows into memory first, as the file lists them after.
  std::vector<Key> keys;
  std::vector<uint32_t> counts, times;
  std::vector<float> values, state;
  SparseRecord row;
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(bool more, reader.NextRow(&row));
    if (!more) break;
    if (shard_map.OwnerOfKey(row.key) != rank) continue;
    keys.push_back(row.key);
    counts.push_back(row.update_count);
    times.push_back(row.last_update_unix_s);
    values.insert(values.end(), row.value.begin(), row.value.end());
    state.insert(state.end(), row.state.begin(), row.state.end());
  }
  Key deleted;
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(bool more, reader.NextDeletedKey(&deleted));
    if (!more) break;
    rows.Erase(deleted);
  }
  TESSERA_RETURN_IF_ERROR(reader.Finish());
  const size_t dim = rows.dim(), s = info.stored_state_floats();
  for (size_t i = 0; i < keys.size(); ++i) {
    TESSERA_RETURN_IF_ERROR(rows.InsertRow(
        keys[i], counts[i], times[i], std::span<const float>(values).subspan(i * dim, dim),
        std::span<const float>(state).subspan(i * s, s)));
  }
  return OkStatus();
}

Status RestoreDense(const ServerTable& table, RowFileReader& reader) {
  const RowFileInfo& info = reader.info();
  if (info.table_size != table.config.size) {
    return FailedPreconditionError(reader.path() + ": dense table of " +
                                   std::to_string(info.table_size) + " elements, but '" +
                                   table.config.name + "' has " +
                                   std::to_string(table.config.size));
  }
  DenseRecord range;
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(bool more, reader.NextRange(&range));
    if (!more) break;
    if (table.dense == nullptr) continue;  // Owns no part: read on for the checksum.
    Status s = table.dense->RestoreRange(range.begin, range.end, range.step, range.values,
                                         range.state);
    if (!s.ok()) return DataLossError(reader.path() + ": " + std::string(s.message()));
  }
  return reader.Finish();
}

}  // namespace

size_t CapturedVersion::sparse_rows() const {
  size_t n = 0;
  for (const CapturedTable& t : tables) n += t.sparse.num_rows();
  return n;
}

StatusOr<CapturedVersion> CaptureVersion(const TableSet& tables, int32_t rank,
                                         const protocol::SnapshotInfo& info) {
  if (rank < 0) return FailedPreconditionError("snapshot: this server has no rank yet");
  CapturedVersion out;
  out.info = info;
  out.rank = rank;
  for (const ServerTable* table : tables.All()) {
    TESSERA_RETURN_IF_ERROR(ValidateTableDirName(table->config.name));
    CapturedTable t;
    t.config = table->config;
    if (table->config.kind == TableKind::kSparse) {
      t.sparse = table->sparse->Capture(info.full);
      t.state_floats = t.sparse.state_floats;
    } else {
      t.state_floats = static_cast<uint32_t>(table->optimizer->state_floats_per_dim());
      if (table->dense != nullptr) {
        table->dense->ForEachRange([&](const DenseShard::RangeView& r) {
          t.dense.push_back({r.begin, r.end, r.step, {r.values.begin(), r.values.end()},
                             {r.state.begin(), r.state.end()}});
        });
      }
    }
    out.tables.push_back(std::move(t));
  }
  return out;
}

Status WriteCapturedVersion(const CapturedVersion& version) {
  for (const CapturedTable& t : version.tables) {
    const std::filesystem::path dir =
        std::filesystem::path(FileOf(version, t.config)).parent_path();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return UnavailableError("snapshot: cannot create " + dir.string() + ": " + ec.message());
    TESSERA_RETURN_IF_ERROR(t.config.kind == TableKind::kSparse ? WriteSparse(version, t)
                                                                 : WriteDense(version, t));
  }
  return OkStatus();
}

Status RestoreTables(const TableSet& tables, std::span<const protocol::RestoreTable> files,
                     const ShardMap& shard_map, int32_t rank) {
  if (rank < 0) return FailedPreconditionError("restore: this server has no rank yet");
  for (const protocol::RestoreTable& entry : files) {
    const ServerTable* table = tables.Find(entry.table);
    if (table == nullptr) {
      return NotFoundError("restore: unknown table " + std::to_string(entry.table));
    }
    for (const std::string& path : entry.files) {
      TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<RowFileReader> reader, RowFileReader::Open(path));
      const RowFileInfo& info = reader->info();
      const RowFileKind want =
          table->config.kind == TableKind::kSparse ? RowFileKind::kSparse : RowFileKind::kDense;
      if (info.table_id != table->config.id || info.kind != want) {
        return FailedPreconditionError(path + ": holds table " + std::to_string(info.table_id) +
                                       ", not table " + std::to_string(table->config.id) + " ('" +
                                       table->config.name + "')");
      }
      TESSERA_RETURN_IF_ERROR(want == RowFileKind::kSparse
                                  ? RestoreSparse(*table, *reader, shard_map, rank)
                                  : RestoreDense(*table, *reader));
    }
  }
  return OkStatus();
}

SnapshotWriter::SnapshotWriter() : thread_([this] { Run(); }) {}

SnapshotWriter::~SnapshotWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SnapshotWriter::Enqueue(CapturedVersion version) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(version));
  }
  cv_.notify_all();
}

void SnapshotWriter::WhenWritten(uint64_t version, std::function<void(Status)> done) {
  Status result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = written_.find(version);
    if (it == written_.end()) {
      bool queued = false;
      for (const CapturedVersion& v : queue_) queued |= v.info.version == version;
      if (queued) {
        waiters_.emplace(version, std::move(done));
        return;
      }
      result = NotFoundError("snapshot: version " + std::to_string(version) +
                             " was not captured by this server");
    } else {
      result = it->second;
    }
  }
  done(result);
}

void SnapshotWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ and nothing left
    CapturedVersion version = std::move(queue_.front());
    lock.unlock();
    const auto start = std::chrono::steady_clock::now();
    Status s = WriteCapturedVersion(version);
    if (s.ok()) {
      TESSERA_LOG(kDebug) << "version " << version.info.version << " written ("
                          << version.sparse_rows() << " rows, "
                          << std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                                 .count()
                          << " s)";
    } else {
      TESSERA_LOG(kError) << "version " << version.info.version << " not written: " << s;
    }
    lock.lock();
    queue_.pop_front();
    const uint64_t v = version.info.version;
    written_[v] = s;
    while (written_.size() > kRememberedVersions) written_.erase(written_.begin());
    auto [first, last] = waiters_.equal_range(v);
    std::vector<std::function<void(Status)>> ready;
    for (auto it = first; it != last; ++it) ready.push_back(std::move(it->second));
    waiters_.erase(first, last);
    lock.unlock();
    for (auto& done : ready) done(s);
    lock.lock();
  }
}

}  // namespace tessera::server
