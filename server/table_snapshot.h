// Saving a server's tables to row files (common/row_file.h): the server's
// half of a saved model. The worker that asked (worker/model_saver.h) writes
// the manifest once every server has saved.
//
// Thread safety: thread-safe (the tables are; SaveTables reads them while
// pushes may continue).
#ifndef TESSERA_SERVER_TABLE_SNAPSHOT_H_
#define TESSERA_SERVER_TABLE_SNAPSHOT_H_

#include <cstdint>
#include <string>

#include "common/status.h"
#include "server/table_set.h"

namespace tessera::server {

// Writes this server's part of every table in `tables` to
//   <dir>/<table name>/part-<rank>.rows      (RowFileRelativePath)
// creating the directories. Sparse tables: every row with its update
// count, last update time and optimizer state, each copied under its stripe
// lock (consistent per row; rows pushed during the save may or may not be
// included, so pause training for a consistent model). Dense tables: the
// ranges this server owns, with their state and step; a server that owns
// none writes a file without records, so every server writes one file per
// table and the manifest lists them without asking. Each file appears
// atomically (temp name, fsync, rename).
//
// With several servers `dir` must be on a filesystem they share.
// Errors: FailedPrecondition for an unassigned rank, InvalidArgument for a
// table name that cannot be a directory name, I/O errors naming the file.
//
// Example:
//   TESSERA_RETURN_IF_ERROR(SaveTables(tables_, rank_, "/runs/ctr/model"));
Status SaveTables(const TableSet& tables, int32_t server_rank, const std::string& dir);

}  // namespace tessera::server

#endif  // TESSERA_SERVER_TABLE_SNAPSHOT_H_
