// The --table flag: a table described on the command line until the
// training issue derives tables from the job file.
//
//   name:sparse:DIM:OPTIMIZER[:LR]    e.g. emb:sparse:16:adagrad:0.05
//   name:dense:SIZE:OPTIMIZER[:LR]    e.g. mlp:dense:4096:adam
//
// OPTIMIZER is sgd | adagrad | adam | ftrl; LR defaults to the optimizer
// config's default. Everything else (initializer, betas...) keeps the
// TableConfig defaults.
#ifndef TESSERA_TOOLS_CLI_TABLE_SPEC_H_
#define TESSERA_TOOLS_CLI_TABLE_SPEC_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/table_config.h"

namespace tessera::cli {

// Parses one spec; `id` becomes the table id. InvalidArgument naming the
// spec and the bad field on error; the result passes ValidateTableConfig.
StatusOr<TableConfig> ParseTableSpec(std::string_view spec, TableId id);
// Parses specs in order (ids 0, 1, ...). Table names must be unique.
StatusOr<std::vector<TableConfig>> ParseTableSpecs(const std::vector<std::string>& specs);
// The spec ParseTableSpec reads back as `config` (fields the syntax cannot
// express are dropped).
std::string FormatTableSpec(const TableConfig& config);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_TABLE_SPEC_H_
