// `tessera serve (--model-dir DIR | --arm NAME=DIR:WEIGHT...) [--port 8501] [--host 127.0.0.1]
// [--name NAME] [--catalog items.tsv] [--poll-ms 100] [--arm-field F]` (serving/serve_main.h).
#ifndef TESSERA_TOOLS_CLI_SERVE_COMMAND_H_
#define TESSERA_TOOLS_CLI_SERVE_COMMAND_H_

#include <CLI/CLI.hpp>

#include "tools/cli/command.h"

namespace tessera::cli {

void AddServeCommand(CLI::App* app, Command* selected);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_SERVE_COMMAND_H_
