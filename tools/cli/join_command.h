// `tessera join JOB.yaml [--set k=v]... [--impression-dir DIR] [--out DIR]
// [--metrics-port P] [--once]`: the online joiner (feedback/joiner.h) of the closing-the-loop
// issue, with the job file's `join:` keys (docs/feedback_loop.md). Rows are
// checked with the job's schema (models/tsv_parser.h) before they are
// written. Runs until SIGINT/SIGTERM (a last commit, then exit 0), or with
// --once until the event log is read to its end.
//
// Also: AddImpressionFlags, the --impression-* flags of `tessera serve`.
#ifndef TESSERA_TOOLS_CLI_JOIN_COMMAND_H_
#define TESSERA_TOOLS_CLI_JOIN_COMMAND_H_

#include <CLI/CLI.hpp>

#include "serving/serve_main.h"
#include "tools/cli/command.h"

namespace tessera::cli {

void AddJoinCommand(CLI::App* app, Command* selected);

// Adds --impression-dir and its tuning flags to `serve` (filling *options,
// which must outlive parsing).
void AddImpressionFlags(CLI::App* serve, serving::ServeOptions* options);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_JOIN_COMMAND_H_
