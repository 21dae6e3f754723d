#include "server/table_snapshot.h"

#include <filesystem>
#include <memory>
#include <system_error>

#include "common/row_file.h"

namespace tessera::server {
namespace {

Status SaveSparse(const ServerTable& table, const std::string& path) {
  if (table.sparse == nullptr) return InternalError("save: sparse table without rows");
  const EmbeddingTable& rows = *table.sparse;
  const RowFileInfo info{.table_id = table.config.id,
                         .kind = RowFileKind::kSparse,
                         .dim = rows.dim(),
                         .state_floats = static_cast<uint32_t>(
                             rows.dim() * table.optimizer->state_floats_per_dim()),
                         .has_state = true};
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<RowFileWriter> writer,
                           RowFileWriter::Create(path, info));
  // The callback runs under a stripe lock and cannot stop the walk: the
  // writer keeps its first error, and the walk only costs time after one.
  // Buffer flushes (file writes) happen under the stripe lock, briefly
  // delaying pushes to that stripe.
  rows.ForEachRow([&](const EmbeddingTable::RowView& row) {
    if (!writer->status().ok()) return;
    (void)writer->AddRow(row.key(), row.update_count(), row.last_update_unix_s(), row.value(),
                         row.state());
  });
  return writer->Finish();
}

Status SaveDense(const ServerTable& table, const std::string& path) {
  const RowFileInfo info{
      .table_id = table.config.id,
      .kind = RowFileKind::kDense,
      .state_floats = static_cast<uint32_t>(table.optimizer->state_floats_per_dim()),
      .has_state = true,
      .table_size = table.config.size};
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<RowFileWriter> writer,
                           RowFileWriter::Create(path, info));
  if (table.dense != nullptr) {
    table.dense->ForEachRange([&](const DenseShard::RangeView& range) {
      if (!writer->status().ok()) return;
      (void)writer->AddRange(range.begin, range.end, range.step, range.values, range.state);
    });
  }
  return writer->Finish();
}

}  // namespace

Status SaveTables(const TableSet& tables, int32_t server_rank, const std::string& dir) {
  if (server_rank < 0) {
    return FailedPreconditionError("save: this server has no rank yet");
  }
  for (const ServerTable* table : tables.All()) {
    TESSERA_RETURN_IF_ERROR(ValidateTableDirName(table->config.name));
    const std::filesystem::path path =
        std::filesystem::path(dir) / RowFileRelativePath(table->config.name, server_rank);
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return UnavailableError("save: cannot create " + path.parent_path().string() + ": " +
                              ec.message());
    }
    TESSERA_RETURN_IF_ERROR(table->config.kind == TableKind::kSparse
                                ? SaveSparse(*table, path.string())
                                : SaveDense(*table, path.string()));
  }
  return OkStatus();
}

}  // namespace tessera::server
