// `tessera simulate --serve URL [--name NAME] [--requests N] ...`: synthetic
// shoppers for a running `tessera serve` (closing-the-loop issue). The
// shoppers come from the planted click model of `tessera gen`
// (models/gen/click_model.h; give the same --users, --items, --max-len,
// --seed as gen so ids mean the same things), whose interests drift as in
// the generated data. Each request: a visitor asks for recommendations
// (context: user, hour, device, histories; --candidates candidates drawn as
// gen draws them, as full item objects), sees the top --k, clicks each with
// the planted probability, and posts every click to POST /v1/feedback (a
// click joins the shopper's history). Prints CTR per A/B arm every
// --report-every requests (next to the planted CTR of what was shown and of
// the k best candidates, the ceiling), then the totals with 95% Wilson
// intervals and a z-test against the first arm seen.
#ifndef TESSERA_TOOLS_CLI_SIMULATE_COMMAND_H_
#define TESSERA_TOOLS_CLI_SIMULATE_COMMAND_H_

#include <CLI/CLI.hpp>

#include "tools/cli/command.h"

namespace tessera::cli {

void AddSimulateCommand(CLI::App* app, Command* selected);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_SIMULATE_COMMAND_H_
