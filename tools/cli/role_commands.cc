#include "tools/cli/role_commands.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include "common/logging.h"
#include "tools/cli/cluster_file.h"
#include "tools/cli/train_job.h"

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

// --job, --set and --resume: the node takes what it needs from a job file
// (docs/configuration.md) and runs the "train" program, as `tessera train`
// does on every node it launches.
struct JobFlags {
  std::string path;  // empty: no job file
  std::vector<std::string> sets;
  bool resume = false;  // the scheduler's only
};

void AddJobFlags(CLI::App* cmd, JobFlags* job, bool resume_flag) {
  cmd->add_option("--job", job->path,
                  "Job file: train it (what `tessera train` runs on every node); cluster "
                  "settings come from the file");
  cmd->add_option("--set", job->sets, "With --job: override a job key, key.path=value (repeatable)");
  if (resume_flag) {
    cmd->add_flag("--resume", job->resume,
                  "With --job: warm-start from the newest version in publish.model_dir");
  }
}

// The job of `job` (parsed and validated), or InvalidArgument for --set or
// --resume without --job.
StatusOr<models::JobConfig> LoadJobOfFlags(const JobFlags& job) {
  if (job.path.empty()) {
    if (!job.sets.empty() || job.resume) {
      return InvalidArgumentError("--set and --resume need --job");
    }
    return models::JobConfig{};
  }
  return LoadTrainJob(TrainProgramArgs(job.path, job.sets, job.resume));
}

// A streaming or directory-following job drains on the first signal.
bool DrainsOnSignal(const models::JobConfig& job) {
  return job.data.follow || job.data.streaming();
}

// Prints a setup error the way CLI11 prints usage errors.
int SetupError(const Status& status) {
  std::cerr << "tessera: " << status.message() << "\n";
  return kExitUsage;
}

struct SchedulerFlags {
  std::string log_level = "info";
  NodeFlags node;
  JobFlags job;
  int servers = 1;
  int workers = 1;
  HeartbeatFlags heartbeat;
  // Whether the flags were given; with --job the job file's values fill the
  // others.
  bool servers_given = false;
  bool workers_given = false;
  bool interval_given = false;
  bool timeout_given = false;
  std::vector<std::string> tables;
  std::string tables_for;
  std::vector<std::string> program_args;  // of the --tables-for program
  std::string address_file;
  std::string cluster_file;
};

struct ServerFlags {
  std::string log_level = "info";
  NodeFlags node;
  JobFlags job;
};

struct WorkerFlags {
  std::string log_level = "info";
  NodeFlags node;
  JobFlags job;
  std::string program;
  std::vector<std::string> args;
  int barrier_timeout_s = 3600;
};

// `given` with --job: the job file's cluster settings where no flag was
// given, the "train" program's tables and data plan, and cluster.json in
// output_dir unless --cluster-file says otherwise.
StatusOr<SchedulerFlags> ResolveSchedulerJob(const SchedulerFlags& given) {
  TESSERA_ASSIGN_OR_RETURN(models::JobConfig job, LoadJobOfFlags(given.job));
  SchedulerFlags flags = given;
  if (given.job.path.empty()) return flags;
  if (!given.tables.empty() || !given.tables_for.empty() || !given.program_args.empty()) {
    return InvalidArgumentError("--job excludes --table, --tables-for and program arguments");
  }
  flags.tables_for = "train";
  flags.program_args = TrainProgramArgs(given.job.path, given.job.sets, given.job.resume);
  if (!given.servers_given) flags.servers = job.cluster.servers;
  if (!given.workers_given) flags.workers = job.cluster.workers;
  if (!given.interval_given) {
    flags.heartbeat.interval_ms = static_cast<int>(job.cluster.heartbeat_interval_ms);
  }
  if (!given.timeout_given) {
    flags.heartbeat.timeout_ms = static_cast<int>(job.cluster.heartbeat_timeout_ms);
  }
  std::error_code error;
  std::filesystem::create_directories(job.output_dir, error);
  if (error) {
    return UnavailableError("cannot create output_dir " + job.output_dir + ": " +
                            error.message());
  }
  if (flags.cluster_file.empty()) flags.cluster_file = job.output_dir + "/cluster.json";
  return flags;
}

int RunSchedulerCommand(const SchedulerFlags& given, const WorkerProgramRegistry& programs) {
  if (Status s = ApplyLogLevel(given.log_level); !s.ok()) return SetupError(s);
  SetLogNodeLabel(kSchedulerId.ToString());  // its lines before RunScheduler say who it is
  StatusOr<SchedulerFlags> resolved = ResolveSchedulerJob(given);
  if (!resolved.ok()) return SetupError(resolved.status());
  const SchedulerFlags& flags = *resolved;
  StatusOr<std::string> token = ReadClusterToken(flags.node.token_file);
  if (!token.ok()) return SetupError(token.status());
  StatusOr<std::optional<CurveKeys>> curve = LoadCurveKeys(flags.node.curve_dir);
  if (!curve.ok()) return SetupError(curve.status());
  StatusOr<std::vector<TableConfig>> tables =
      programs.TablesFor(flags.tables, flags.tables_for, flags.program_args);
  if (!tables.ok()) return SetupError(tables.status());
  if (flags.heartbeat.timeout_ms <= flags.heartbeat.interval_ms) {
    return SetupError(
        InvalidArgumentError("--heartbeat-timeout-ms must exceed --heartbeat-interval-ms"));
  }
  TESSERA_LOG(kInfo) << "cluster of " << flags.servers << " server(s) and " << flags.workers
                     << " worker(s); heartbeat " << flags.heartbeat.interval_ms << " ms, timeout "
                     << flags.heartbeat.timeout_ms << " ms";
  scheduler::SchedulerMainArgs args =
      MakeSchedulerArgs(flags.node, flags.servers, flags.workers, std::move(tables).value(),
                        *token, *curve, flags.heartbeat);
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
  StatusOr<std::optional<CurveKeys>> curve = LoadCurveKeys(flags.node.curve_dir);
  if (!curve.ok()) return SetupError(curve.status());
  // The server's tables come from the scheduler; the job only says whether
  // the first signal drains (a streaming job), and is checked early.
  StatusOr<models::JobConfig> job = LoadJobOfFlags(flags.job);
  if (!job.ok()) return SetupError(job.status());
  server::ServerMainArgs args = MakeServerArgs(flags.node, *token, *curve);
  args.first_signal_drains = !flags.job.path.empty() && DrainsOnSignal(*job);
  return server::RunServer(args);
}

int RunWorkerCommand(const WorkerFlags& flags, const WorkerProgramRegistry& programs) {
  if (Status s = ApplyLogLevel(flags.log_level); !s.ok()) return SetupError(s);
  StatusOr<std::string> token = ReadClusterToken(flags.node.token_file);
  if (!token.ok()) return SetupError(token.status());
  StatusOr<std::optional<CurveKeys>> curve = LoadCurveKeys(flags.node.curve_dir);
  if (!curve.ok()) return SetupError(curve.status());
  StatusOr<models::JobConfig> job = LoadJobOfFlags(flags.job);
  if (!job.ok()) return SetupError(job.status());
  std::string program = flags.program;
  std::vector<std::string> program_args = flags.args;
  if (!flags.job.path.empty()) {
    if (!program.empty() || !program_args.empty()) {
      return SetupError(InvalidArgumentError("--job excludes --program and program arguments"));
    }
    program = "train";
    program_args = TrainProgramArgs(flags.job.path, flags.job.sets, /*resume=*/false);
  } else if (program.empty()) {
    return SetupError(InvalidArgumentError("give --job or --program"));
  }
  worker::WorkerMainArgs args =
      MakeWorkerArgs(flags.node, *token, *curve, *programs.Find(program), std::move(program_args));
  args.barrier_timeout = std::chrono::seconds(flags.barrier_timeout_s);
  args.first_signal_drains = !flags.job.path.empty() && DrainsOnSignal(*job);
  return worker::RunWorker(args);
}

void AddSchedulerCommand(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  auto flags = std::make_shared<SchedulerFlags>();
  CLI::App* cmd = app->add_subcommand("scheduler", "Run the scheduler of a cluster");
  AddLogLevelFlag(cmd, &flags->log_level);
  AddNodeFlags(cmd, &flags->node, /*member_flags=*/false);
  AddJobFlags(cmd, &flags->job, /*resume_flag=*/true);
  cmd->add_option("--servers", flags->servers, "Number of servers (default with --job: the job's)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--workers", flags->workers, "Number of workers (default with --job: the job's)")
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
  cmd->footer(
      "Example: tessera scheduler --job job.yaml --bind tcp://0.0.0.0:7000 --metrics-port 9100\n"
      "         (cluster sizes, heartbeats, tables, replication and output_dir from the job)");
  cmd->callback([cmd, flags, programs, selected] {
    flags->servers_given = cmd->count("--servers") > 0;
    flags->workers_given = cmd->count("--workers") > 0;
    flags->interval_given = cmd->count("--heartbeat-interval-ms") > 0;
    flags->timeout_given = cmd->count("--heartbeat-timeout-ms") > 0;
    *selected = [flags, programs] { return RunSchedulerCommand(*flags, *programs); };
  });
}

void AddServerCommand(CLI::App* app, Command* selected) {
  auto flags = std::make_shared<ServerFlags>();
  CLI::App* cmd = app->add_subcommand("server", "Run a parameter server");
  AddLogLevelFlag(cmd, &flags->log_level);
  AddNodeFlags(cmd, &flags->node, /*member_flags=*/true);
  AddJobFlags(cmd, &flags->job, /*resume_flag=*/false);
  cmd->footer("Example: tessera server --job job.yaml --scheduler tcp://scheduler:7000 --rank 0");
  cmd->callback([flags, selected] { *selected = [flags] { return RunServerCommand(*flags); }; });
}

void AddWorkerCommand(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  auto flags = std::make_shared<WorkerFlags>();
  CLI::App* cmd = app->add_subcommand(
      "worker", "Run a worker: join the cluster, run a program, then stop the cluster in order");
  cmd->footer("Programs:\n" + programs->Describe() +
              "Example: tessera worker --job job.yaml --scheduler tcp://scheduler:7000 --rank 0\n"
              "         (the same as --program train -- --job=job.yaml)");
  AddLogLevelFlag(cmd, &flags->log_level);
  AddNodeFlags(cmd, &flags->node, /*member_flags=*/true);
  AddJobFlags(cmd, &flags->job, /*resume_flag=*/false);
  cmd->add_option("--program", flags->program, "Worker program to run (without --job)")
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
                                               const std::optional<CurveKeys>& curve,
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
  args.curve = curve;
  args.startup_timeout = std::chrono::seconds(node.startup_timeout_s);
  return args;
}

server::ServerMainArgs MakeServerArgs(const NodeFlags& node, const std::string& token,
                                      const std::optional<CurveKeys>& curve) {
  server::ServerMainArgs args;
  args.node.member = MemberFrom(node);
  args.node.token = token;
  args.metrics_host = node.metrics_host;
  args.metrics_port = node.metrics_port;
  args.curve = curve;
  args.startup_timeout = std::chrono::seconds(node.startup_timeout_s);
  return args;
}

worker::WorkerMainArgs MakeWorkerArgs(const NodeFlags& node, const std::string& token,
                                      const std::optional<CurveKeys>& curve,
                                      const WorkerProgramSpec& program,
                                      std::vector<std::string> program_args) {
  worker::WorkerMainArgs args;
  args.node.member = MemberFrom(node);
  args.node.token = token;
  args.metrics_host = node.metrics_host;
  args.metrics_port = node.metrics_port;
  args.curve = curve;
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
