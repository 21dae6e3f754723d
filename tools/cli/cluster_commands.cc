#include "tools/cli/cluster_commands.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tools/cli/cluster_spec.h"
#include "tools/cli/gen_command.h"
#include "tools/cli/train_job.h"

#include "bench/capacity_bench.h"
#include "bench/table_bench.h"
#include "bench/raw_zmq_bench.h"
#include "bench/models_bench.h"

namespace tessera::cli {

std::vector<std::string> PassThroughArgs(const CLI::App& cmd) {
  std::vector<std::string> args;
  for (const std::string& arg : cmd.remaining()) {
    if (arg != "--") args.push_back(arg);
  }
  return args;
}

namespace {

using BenchFunction = int (*)(const std::vector<std::string>&);

void AddLocalCommand(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  auto spec = std::make_shared<ClusterSpec>();
  spec->program = "smoke";
  CLI::App* cmd = app->add_subcommand(
      "local",
      "Start a whole cluster (scheduler, servers, workers running a program) as processes on "
      "this machine; under mpirun, the MPI ranks become the nodes");
  AddClusterFlags(cmd, spec.get());
  cmd->add_option("--program", spec->program, "Worker program")
      ->check(CLI::IsMember(programs->Names()))
      ->capture_default_str();
  cmd->add_option("args", spec->program_args, "Arguments of the program (after --)");
  cmd->footer("Programs:\n" + programs->Describe() +
              "Example: tessera local --servers 2 --workers 2 --program smoke\n"
              "         mpirun -np 5 tessera local --servers 2 --program smoke");
  cmd->callback([cmd, spec, programs, selected] {
    MarkGivenFlags(*cmd, spec.get());
    *selected = [spec, programs] { return LaunchCluster(*spec, *programs); };
  });
}

void AddBenchKvCommand(CLI::App* bench, const WorkerProgramRegistry* programs, Command* selected) {
  auto spec = std::make_shared<ClusterSpec>();
  spec->program = "kvbench";
  CLI::App* cmd = bench->add_subcommand(
      "kv", "KV push/pull benchmark on a local cluster (or the ranks of an mpirun job)");
  AddClusterFlags(cmd, spec.get());
  cmd->allow_extras();
  cmd->footer(
      "Other arguments go to the kvbench worker program (--keys=1000,10000 --dims=8,64 "
      "--iters=N --label=TEXT).\n"
      "Example: tessera bench kv --servers 2 --workers 2\n"
      "         mpirun -np 5 tessera bench kv --servers 2");
  cmd->callback([cmd, spec, programs, selected] {
    MarkGivenFlags(*cmd, spec.get());
    spec->program_args = PassThroughArgs(*cmd);
    *selected = [spec, programs] { return LaunchCluster(*spec, *programs); };
  });
}

// A benchmark that runs in this process and parses its own arguments.
void AddBenchFunction(CLI::App* bench, const std::string& name, const std::string& help,
                      const std::string& flags, BenchFunction function, Command* selected) {
  CLI::App* cmd = bench->add_subcommand(name, help);
  cmd->allow_extras();
  cmd->footer("Other arguments go to the benchmark (--flag=V or --flag V):\n" + flags);
  cmd->callback([cmd, function, selected] {
    *selected = [function, args = PassThroughArgs(*cmd)] { return function(args); };
  });
}

void AddBenchCommands(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  CLI::App* bench = app->add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  AddBenchKvCommand(bench, programs, selected);
  AddBenchFunction(bench, "table",
                   "Embedding table throughput against a flat hash map (in process)",
                   "  --rows N --dim D --threads T --batch B --ops N --reps R --stripes S\n"
                   "  (see bench/table_bench.h)",
                   &bench::RunTableBench, selected);
  AddBenchFunction(bench, "capacity", "Embedding table bytes per row (in process)",
                   "  --rows N --dim D --batch B --stripes S (see bench/capacity_bench.h)",
                   &bench::RunCapacityBench, selected);
  AddBenchFunction(bench, "transport", "ZmqTransport against raw ZeroMQ round trips",
                   "  --sizes=REQ:REPLY[,...] --iterations=N --repetitions=R\n"
                   "  (see bench/raw_zmq_bench.h)",
                   &bench::RunTransportBench, selected);
  AddBenchFunction(bench, "models",
                   "Training and scoring throughput of the CTR models (in process)",
                   "  --models lr,fm,deepfm --batch B --fields F --numeric N --dim K\n"
                   "  --hidden LIST --vocab V --iters N --reps R (see bench/models_bench.h)",
                   &bench::RunModelsBench, selected);
}

}  // namespace

void AddClusterCommands(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  AddTrainCommand(app, programs, selected);
  AddEvalCommand(app, selected);
  AddLocalCommand(app, programs, selected);
  AddBenchCommands(app, programs, selected);
}

void AddPlannedCommands(CLI::App* app, Command* selected) {
  // No subcommand is planned any more (`status` is tools/cli/status_command.h);
  // this keeps registering `gen`, which main() reaches through it.
  AddGenCommand(app, selected);
}

}  // namespace tessera::cli
