#include "tools/cli/gen_command.h"

#include <iostream>
#include <string>
#include <vector>

#include "tools/cli/cluster_commands.h"

#include "models/gen/gen.h"

namespace tessera::cli {


void AddGenCommand(CLI::App* app, Command* selected) {
  CLI::App* cmd = app->add_subcommand(
      "gen", "Generate a synthetic e-commerce CTR data set with a known Bayes-optimal AUC");
  cmd->allow_extras();
  cmd->footer(models::gen::GenUsage());
  cmd->callback([cmd, selected] {
    *selected = [args = PassThroughArgs(*cmd)] {
      Status s = models::gen::RunGen(args);
      if (s.ok()) return 0;
      std::cerr << "tessera gen: " << s.message() << "\n";
      return absl::IsInvalidArgument(s) ? kExitUsage : 1;
    };
  });
}


}  // namespace tessera::cli
