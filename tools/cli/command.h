// How subcommands hand their work to main(): parsing selects a Command, and
// main() runs it after CLI11 is done (so no node runs inside the parser).
#ifndef TESSERA_TOOLS_CLI_COMMAND_H_
#define TESSERA_TOOLS_CLI_COMMAND_H_

#include <functional>

namespace tessera::cli {

// Runs the selected subcommand; returns the process exit code.
using Command = std::function<int()>;

// Exit code of a subcommand that is planned but not written yet, and of
// setup errors found after parsing (as for CLI11's usage errors).
inline constexpr int kExitUsage = 2;

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_COMMAND_H_
