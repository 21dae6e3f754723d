#include "tools/cli/cluster_commands.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tools/cli/cluster_spec.h"
#include "tools/cli/gen_command.h"
#include "tools/cli/train_job.h"

#ifdef TESSERA_HAVE_TABLE_BENCH
#include "bench/capacity_bench.h"
#include "bench/table_bench.h"
#endif
#ifdef TESSERA_HAVE_TRANSPORT_BENCH
#include "bench/raw_zmq_bench.h"
#endif
#ifdef TESSERA_HAVE_MODELS_BENCH
#include "bench/models_bench.h"
#endif

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

int NotBuilt(const std::string& what) {
  std::cerr << "tessera: " << what << " is not built into this binary\n";
  return kExitUsage;
}

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
    if (programs->Find("kvbench") == nullptr) {
      *selected = [] { return NotBuilt("the kvbench worker program (bench/kv_bench.h)"); };
      return;
    }
    *selected = [spec, programs] { return LaunchCluster(*spec, *programs); };
  });
}

// A benchmark that runs in this process and parses its own arguments.
void AddBenchFunction(CLI::App* bench, const std::string& name, const std::string& help,
                      const std::string& flags, BenchFunction function, Command* selected) {
  CLI::App* cmd = bench->add_subcommand(name, help);
  cmd->allow_extras();
  cmd->footer("Other arguments go to the benchmark (--flag=V or --flag V):\n" + flags);
  cmd->callback([cmd, name, function, selected] {
    if (function == nullptr) {
      *selected = [name] { return NotBuilt("tessera bench " + name); };
      return;
    }
    *selected = [function, args = PassThroughArgs(*cmd)] { return function(args); };
  });
}

void AddBenchCommands(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  CLI::App* bench = app->add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  AddBenchKvCommand(bench, programs, selected);
  BenchFunction table = nullptr;
  BenchFunction capacity = nullptr;
  BenchFunction transport = nullptr;
  BenchFunction models = nullptr;
#ifdef TESSERA_HAVE_TABLE_BENCH
  table = &bench::RunTableBench;
  capacity = &bench::RunCapacityBench;
#endif
#ifdef TESSERA_HAVE_TRANSPORT_BENCH
  transport = &bench::RunTransportBench;
#endif
#ifdef TESSERA_HAVE_MODELS_BENCH
  models = &bench::RunModelsBench;
#endif
  AddBenchFunction(bench, "table",
                   "Embedding table throughput against a flat hash map (in process)",
                   "  --rows N --dim D --threads T --batch B --ops N --reps R --stripes S\n"
                   "  (see bench/table_bench.h)",
                   table, selected);
  AddBenchFunction(bench, "capacity", "Embedding table bytes per row (in process)",
                   "  --rows N --dim D --batch B --stripes S (see bench/capacity_bench.h)",
                   capacity, selected);
  AddBenchFunction(bench, "transport", "ZmqTransport against raw ZeroMQ round trips",
                   "  --sizes=REQ:REPLY[,...] --iterations=N --repetitions=R\n"
                   "  (see bench/raw_zmq_bench.h)",
                   transport, selected);
  AddBenchFunction(bench, "models",
                   "Training and scoring throughput of the CTR models (in process)",
                   "  --models lr,fm,deepfm --batch B --fields F --numeric N --dim K\n"
                   "  --hidden LIST --vocab V --iters N --reps R (see bench/models_bench.h)",
                   models, selected);
}

}  // namespace

void AddClusterCommands(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  AddTrainCommand(app, programs, selected);
  AddEvalCommand(app, selected);
  AddLocalCommand(app, programs, selected);
  AddBenchCommands(app, programs, selected);
}

void AddPlannedCommands(CLI::App* app, Command* selected) {
  struct Planned {
    const char* name;
    const char* help;
    const char* issue;
  };
  static constexpr Planned kPlanned[] = {
      {"gen", "Generate a synthetic data set", "the data generation issue"},
      {"serve", "Serve a trained model over HTTP", "the serving issue"},
      {"status", "Show the nodes and health of a running cluster", "the status issue"},
      {"keygen", "Create a cluster token file", "the security issue"},
  };
  for (const Planned& planned : kPlanned) {
    if (std::string(planned.name) == "gen" && HaveGenCommand()) {
      AddGenCommand(app, selected);
      continue;
    }
    CLI::App* cmd = app->add_subcommand(planned.name, std::string(planned.help) + " (planned)");
    cmd->allow_extras();
    std::string message =
        std::string("tessera ") + planned.name + ": not implemented yet (" + planned.issue + ")";
    cmd->callback([message, selected] {
      *selected = [message] {
        std::cerr << message << "\n";
        return kExitUsage;
      };
    });
  }
}

}  // namespace tessera::cli
