#include "tools/cli/role_commands.h"

#include <iostream>
#include <memory>

#include "tools/cli/cluster_file.h"

namespace tessera::cli {
namespace {

protocol::MemberOptions MemberFrom(const NodeFlags& node) {
  protocol::MemberOptions member;
  member.bind_endpoint = node.bind;
  member.advertise_host = node.host;
  member.scheduler_endpoint = node.scheduler;
  member.requested_rank = node.rank;
  return member;
}

// Prints a setup error the way CLI11 prints usage errors.
int SetupError(const Status& status) {
  std::cerr << "tessera: " << status.message() << "\n";
  return kExitUsage;
}

struct SchedulerFlags {
  std::string log_level = "info";
  NodeFlags node;
  int servers = 1;
  int workers = 1;
  HeartbeatFlags heartbeat;
  std::vector<std::string> tables;
  std::string tables_for;
  std::vector<std::string> program_args;  // of the --tables-for program
  std::string address_file;
  std::string cluster_file;
};

struct ServerFlags {
  std::string log_level = "info";
  NodeFlags node;
};

struct WorkerFlags {
  std::string log_level = "info";
  NodeFlags node;
  std::string program;
  std::vector<std::string> args;
  int barrier_timeout_s = 3600;
};

int RunSchedulerCommand(const SchedulerFlags& flags, const WorkerProgramRegistry& programs) {
  if (Status s = ApplyLogLevel(flags.log_level); !s.ok()) return SetupError(s);
  StatusOr<std::string> token = ReadClusterToken(flags.node.token_file);
  if (!token.ok()) return SetupError(token.status());
  if (Status s = ApplyCurveDir(flags.node.curve_dir); !s.ok()) return SetupError(s);
  StatusOr<std::vector<TableConfig>> tables =
      programs.TablesFor(flags.tables, flags.tables_for, flags.program_args);
  if (!tables.ok()) return SetupError(tables.status());
  if (flags.heartbeat.timeout_ms <= flags.heartbeat.interval_ms) {
    return SetupError(
        InvalidArgumentError("--heartbeat-timeout-ms must exceed --heartbeat-interval-ms"));
  }
  scheduler::SchedulerMainArgs args = MakeSchedulerArgs(
      flags.node, flags.servers, flags.workers, std::move(tables).value(), *token, flags.heartbeat);
  if (flags.tables.empty()) {
    Status setup = programs.SetUpScheduler(flags.tables_for, flags.program_args, &args.node);
    if (!setup.ok()) return SetupError(setup);
  }
  args.on_bound = [address_file = flags.address_file](const protocol::NodeInfo& self) {
    if (!address_file.empty()) return WriteFileAtomically(address_file, self.endpoint + "\n");
    std::cout << self.endpoint << std::endl;  // for scripts: the first line of stdout
    return OkStatus();
  };
  if (!flags.cluster_file.empty()) args.on_running = ClusterFileWriter(flags.cluster_file);
  return scheduler::RunScheduler(args);
}

int RunServerCommand(const ServerFlags& flags) {
  if (Status s = ApplyLogLevel(flags.log_level); !s.ok()) return SetupError(s);
  StatusOr<std::string> token = ReadClusterToken(flags.node.token_file);
  if (!token.ok()) return SetupError(token.status());
  if (Status s = ApplyCurveDir(flags.node.curve_dir); !s.ok()) return SetupError(s);
  return server::RunServer(MakeServerArgs(flags.node, *token));
}

int RunWorkerCommand(const WorkerFlags& flags, const WorkerProgramRegistry& programs) {
  if (Status s = ApplyLogLevel(flags.log_level); !s.ok()) return SetupError(s);
  StatusOr<std::string> token = ReadClusterToken(flags.node.token_file);
  if (!token.ok()) return SetupError(token.status());
  if (Status s = ApplyCurveDir(flags.node.curve_dir); !s.ok()) return SetupError(s);
  worker::WorkerMainArgs args =
      MakeWorkerArgs(flags.node, *token, *programs.Find(flags.program), flags.args);
  args.barrier_timeout = std::chrono::seconds(flags.barrier_timeout_s);
  return worker::RunWorker(args);
}

void AddSchedulerCommand(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  auto flags = std::make_shared<SchedulerFlags>();
  CLI::App* cmd = app->add_subcommand("scheduler", "Run the scheduler of a cluster");
  AddLogLevelFlag(cmd, &flags->log_level);
  AddNodeFlags(cmd, &flags->node, /*member_flags=*/false);
  cmd->add_option("--servers", flags->servers, "Number of servers")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--workers", flags->workers, "Number of workers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--heartbeat-interval-ms", flags->heartbeat.interval_ms,
                  "Heartbeat period of every node")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--heartbeat-timeout-ms", flags->heartbeat.timeout_ms,
                  "A node silent this long is declared dead")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--table", flags->tables,
                  "A table, name:sparse:DIM:OPT[:LR] or name:dense:SIZE:OPT[:LR] (repeatable)");
  cmd->add_option("--tables-for", flags->tables_for,
                  "Without --table: configure the tables this worker program uses")
      ->check(CLI::IsMember(programs->Names()));
  cmd->add_option("args", flags->program_args,
                  "Arguments of the --tables-for program (after --), e.g. its job file");
  cmd->add_option("--address-file", flags->address_file,
                  "Write the scheduler's address to this file once bound");
  cmd->add_option("--cluster-file", flags->cluster_file,
                  "Write cluster.json (every node's pid, address, metrics port) once running");
  cmd->callback([flags, programs, selected] {
    *selected = [flags, programs] { return RunSchedulerCommand(*flags, *programs); };
  });
}

void AddServerCommand(CLI::App* app, Command* selected) {
  auto flags = std::make_shared<ServerFlags>();
  CLI::App* cmd = app->add_subcommand("server", "Run a parameter server");
  AddLogLevelFlag(cmd, &flags->log_level);
  AddNodeFlags(cmd, &flags->node, /*member_flags=*/true);
  cmd->callback([flags, selected] { *selected = [flags] { return RunServerCommand(*flags); }; });
}

void AddWorkerCommand(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  auto flags = std::make_shared<WorkerFlags>();
  CLI::App* cmd = app->add_subcommand(
      "worker", "Run a worker: join the cluster, run a program, then stop the cluster in order");
  cmd->footer("Programs:\n" + programs->Describe());
  AddLogLevelFlag(cmd, &flags->log_level);
  AddNodeFlags(cmd, &flags->node, /*member_flags=*/true);
  cmd->add_option("--program", flags->program, "Worker program to run")
      ->required()
      ->check(CLI::IsMember(programs->Names()));
  cmd->add_option("--barrier-timeout-s", flags->barrier_timeout_s,
                  "How long a finished worker waits for the others")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("args", flags->args, "Arguments of the program (after --)");
  cmd->callback([flags, programs, selected] {
    *selected = [flags, programs] { return RunWorkerCommand(*flags, *programs); };
  });
}

}  // namespace

scheduler::SchedulerMainArgs MakeSchedulerArgs(const NodeFlags& node, int servers, int workers,
                                               std::vector<TableConfig> tables,
                                               const std::string& token,
                                               const HeartbeatFlags& heartbeat) {
  scheduler::SchedulerMainArgs args;
  args.node.bind_endpoint = node.bind;
  args.node.num_servers = servers;
  args.node.num_workers = workers;
  args.node.tables = std::move(tables);
  args.node.token = token;
  args.node.heartbeat_interval = std::chrono::milliseconds(heartbeat.interval_ms);
  args.node.heartbeat_timeout = std::chrono::milliseconds(heartbeat.timeout_ms);
  args.advertise_host = node.host;
  args.metrics_host = node.metrics_host;
  args.metrics_port = node.metrics_port;
  args.startup_timeout = std::chrono::seconds(node.startup_timeout_s);
  return args;
}

server::ServerMainArgs MakeServerArgs(const NodeFlags& node, const std::string& token) {
  server::ServerMainArgs args;
  args.node.member = MemberFrom(node);
  args.node.token = token;
  args.metrics_host = node.metrics_host;
  args.metrics_port = node.metrics_port;
  args.startup_timeout = std::chrono::seconds(node.startup_timeout_s);
  return args;
}

worker::WorkerMainArgs MakeWorkerArgs(const NodeFlags& node, const std::string& token,
                                      const WorkerProgramSpec& program,
                                      std::vector<std::string> program_args) {
  worker::WorkerMainArgs args;
  args.node.member = MemberFrom(node);
  args.node.token = token;
  args.metrics_host = node.metrics_host;
  args.metrics_port = node.metrics_port;
  args.startup_timeout = std::chrono::seconds(node.startup_timeout_s);
  args.program_name = program.name;
  args.program = program.run;
  args.program_args = std::move(program_args);
  return args;
}

std::function<Status(const protocol::NodeInfo&, const protocol::ClusterView&)> ClusterFileWriter(
    std::string path) {
  return
      [path = std::move(path)](const protocol::NodeInfo& self, const protocol::ClusterView& view) {
        return WriteFileAtomically(path, ClusterJson(ClusterRecords(self, view)));
      };
}

void AddRoleCommands(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  AddSchedulerCommand(app, programs, selected);
  AddServerCommand(app, selected);
  AddWorkerCommand(app, programs, selected);
}

}  // namespace tessera::cli
