// `tessera keygen --out DIR`: writes a cluster's secrets into DIR: the
// CurveZMQ keypair (curve.pub, and curve.key with mode 0600) and a cluster
// token (token, mode 0600). Nodes then take --curve-dir DIR (or
// TESSERA_CURVE_DIR=DIR) and --token-file DIR/token.
#ifndef TESSERA_TOOLS_CLI_KEYGEN_COMMAND_H_
#define TESSERA_TOOLS_CLI_KEYGEN_COMMAND_H_

#include <CLI/CLI.hpp>

#include "tools/cli/command.h"

namespace tessera::cli {

void AddKeygenCommand(CLI::App* app, Command* selected);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_KEYGEN_COMMAND_H_
