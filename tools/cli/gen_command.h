// `tessera gen`: the synthetic data generator (models/gen/gen.h).
#ifndef TESSERA_TOOLS_CLI_GEN_COMMAND_H_
#define TESSERA_TOOLS_CLI_GEN_COMMAND_H_

#include <CLI/CLI.hpp>

#include "tools/cli/command.h"

namespace tessera::cli {

void AddGenCommand(CLI::App* app, Command* selected);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_GEN_COMMAND_H_
