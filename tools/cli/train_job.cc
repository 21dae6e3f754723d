#include "tools/cli/train_job.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "models/data_reader.h"
#include "models/eval_runner.h"
#include "models/table_plan.h"
#include "tools/cli/cluster_commands.h"
#include "tools/cli/cluster_spec.h"
#include "tools/cli/id_salt.h"
#include "tools/cli/publish_setup.h"
#include "worker/train_program.h"

namespace tessera::cli {
namespace {

// The job's full plan: parsing, schema, model and inputs all checked.
struct TrainPlan {
  models::JobConfig job;
  models::Schema schema;
  std::vector<TableConfig> tables;
  std::vector<models::FileChunk> chunks;  // empty for streams and followed directories
  bool resume = false;
};

constexpr char kResumeArg[] = "--resume";

StatusOr<TrainPlan> PlanJob(const std::vector<std::string>& program_args) {
  TrainPlan plan;
  TESSERA_ASSIGN_OR_RETURN(plan.job, LoadTrainJob(program_args));
  for (const std::string& arg : program_args) plan.resume |= arg == kResumeArg;
  TESSERA_ASSIGN_OR_RETURN(plan.schema, models::LoadJobSchema(plan.job));
  TESSERA_ASSIGN_OR_RETURN(auto model, models::NewModel(plan.job.model, plan.schema));
  TESSERA_RETURN_IF_ERROR(models::CheckTablePolicies(plan.job, plan.schema));
  plan.tables = models::PlanTables(plan.job, plan.schema, *model);
  if (plan.resume && !plan.job.publish.enabled()) {
    return InvalidArgumentError("--resume needs publish.model_dir in the job file");
  }
  if (plan.job.data.follow) {
    if (!std::filesystem::is_directory(plan.job.data.train[0])) {
      return NotFoundError("data.train: '" + plan.job.data.train[0] +
                           "' is not a directory (data.follow: true)");
    }
  } else if (!plan.job.data.streaming()) {
    TESSERA_ASSIGN_OR_RETURN(std::vector<std::string> files,
                             models::ExpandInputs(plan.job.data.train));
    TESSERA_ASSIGN_OR_RETURN(plan.chunks,
                             models::SplitIntoChunks(files, plan.job.data.chunk_bytes));
  }
  if (!plan.job.data.eval.empty()) {
    std::vector<std::string> eval = {plan.job.data.eval};
    TESSERA_RETURN_IF_ERROR(models::ExpandInputs(eval).status());
  }
  return plan;
}

Status SetUpScheduler(const std::vector<std::string>& program_args,
                      scheduler::SchedulerOptions* options) {
  TESSERA_ASSIGN_OR_RETURN(TrainPlan plan, PlanJob(program_args));
  options->tables = plan.tables;
  options->data_chunks.clear();
  for (const models::FileChunk& c : plan.chunks) {
    options->data_chunks.push_back({c.path, c.begin, c.end});
  }
  options->epochs = plan.job.train.epochs;
  options->replication = plan.job.cluster.replication;
  options->static_data_order = plan.job.train.consistency == models::Consistency::kSync;
  options->staleness =
      plan.job.train.consistency == models::Consistency::kSsp ? plan.job.train.staleness : 0;
  options->async = plan.job.train.consistency == models::Consistency::kAsync;
  options->streaming = plan.job.data.follow || plan.job.data.streaming();
  TESSERA_RETURN_IF_ERROR(
      SetUpPublishing(plan.job, plan.schema, plan.tables, plan.resume, options));
  if (options->streaming) {
    scheduler::StreamInputOptions& in = options->stream_input;
    in.source = plan.job.data.train[0];
    in.follow_directory = plan.job.data.follow;
    in.spool_dir = plan.job.output_dir + "/spool";
    in.max_lines = plan.job.train.batch_size;
    in.max_delay = std::chrono::milliseconds(plan.job.train.max_batch_delay_ms);
    if (options->resume) {
      nlohmann::json state = nlohmann::json::parse(options->resume->training_state_json, nullptr,
                                                   false);
      if (state.is_object() && state.contains("data")) {
        in.resume_data_state_json = state["data"].dump();
      }
    }
  }
  return OkStatus();
}

int Fail(const std::string& what, const Status& s) {
  std::cerr << "tessera " << what << ": " << s.message() << "\n";
  return absl::IsInvalidArgument(s) || absl::IsNotFound(s) ? kExitUsage : 1;
}

}  // namespace

std::vector<std::string> TrainProgramArgs(const std::string& job,
                                          const std::vector<std::string>& sets, bool resume) {
  std::vector<std::string> args = {
      "--job=" + std::filesystem::absolute(job).lexically_normal().string()};
  for (const std::string& s : sets) args.push_back("--set=" + s);
  if (resume) args.push_back(kResumeArg);
  return args;
}

StatusOr<models::JobConfig> LoadTrainJob(const std::vector<std::string>& program_args) {
  std::string job_path;
  std::vector<std::string> overrides;
  for (const std::string& arg : program_args) {
    if (arg.rfind("--job=", 0) == 0) {
      job_path = arg.substr(6);
    } else if (arg.rfind("--set=", 0) == 0) {
      overrides.push_back(arg.substr(6));
    } else if (arg == kResumeArg) {
      // The scheduler's concern (PlanJob); workers need nothing else.
    } else {
      return InvalidArgumentError("train program: unexpected argument '" + arg +
                                  "' (expected --job=PATH, --set=key=value and --resume)");
    }
  }
  if (job_path.empty()) return InvalidArgumentError("train program: --job=PATH is required");
  TESSERA_ASSIGN_OR_RETURN(models::JobConfig job, models::LoadJobConfig(job_path, overrides));
  TESSERA_ASSIGN_OR_RETURN(job.id_hasher, ReadIdSaltHasher());  // the environment's, never the file's
  return job;
}

WorkerProgramSpec TrainProgramSpec() {
  WorkerProgramSpec spec;
  spec.name = "train";
  spec.help = "trains the job of --job=PATH [--set=k=v ...] (what `tessera train` runs)";
  spec.run = [](worker::WorkerNode& node, const std::vector<std::string>& args) -> Status {
    TESSERA_ASSIGN_OR_RETURN(models::JobConfig job, LoadTrainJob(args));
    return worker::RunTrainJob(node, job);
  };
  spec.tables = [](const std::vector<std::string>& args) -> StatusOr<std::vector<TableConfig>> {
    TESSERA_ASSIGN_OR_RETURN(TrainPlan plan, PlanJob(args));
    return plan.tables;
  };
  spec.scheduler_setup = SetUpScheduler;
  return spec;
}

void AddTrainCommand(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected) {
  struct Flags {
    std::string job;
    std::vector<std::string> sets;
    std::string log_level = "info";
    int startup_timeout_s = 120;
    bool resume = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app->add_subcommand(
      "train", "Train a model from a job file on a local cluster of processes (or the ranks of "
               "an mpirun job); writes eval.json, train.json and model/ to output_dir");
  cmd->add_option("job", flags->job, "The job file (docs/configuration.md)")->required();
  cmd->add_option("--set", flags->sets, "Override a job key: key.path=value (repeatable)");
  cmd->add_option("--log-level", flags->log_level, "debug | info | warning | error")
      ->capture_default_str();
  cmd->add_option("--startup-timeout-s", flags->startup_timeout_s,
                  "Seconds allowed for the cluster to assemble")
      ->capture_default_str();
  cmd->add_flag("--resume", flags->resume,
                "Warm-start from the newest version in publish.model_dir: its rows (re-sharded "
                "over this job's servers) and the data it had not trained yet");
  cmd->footer("Example: tessera train examples/demo/job.yaml --set train.epochs=1\n"
              "         mpirun -np 5 tessera train job.yaml   (servers from the job file)");
  cmd->callback([flags, programs, selected] {
    *selected = [flags, programs]() -> int {
      std::vector<std::string> args = TrainProgramArgs(flags->job, flags->sets, flags->resume);
      StatusOr<TrainPlan> plan = PlanJob(args);  // every error before anything starts
      if (!plan.ok()) return Fail("train", plan.status());
      ClusterSpec spec;
      spec.servers = plan->job.cluster.servers;
      spec.workers = plan->job.cluster.workers;
      spec.program = "train";
      spec.program_args = args;
      spec.heartbeat_interval_ms = static_cast<int>(plan->job.cluster.heartbeat_interval_ms);
      spec.heartbeat_timeout_ms = static_cast<int>(plan->job.cluster.heartbeat_timeout_ms);
      spec.replication = static_cast<int>(plan->job.cluster.replication);
      spec.log_level = flags->log_level;
      spec.output_dir = plan->job.output_dir;
      spec.startup_timeout_s = flags->startup_timeout_s;
      spec.drain_on_signal = plan->job.data.follow || plan->job.data.streaming();
      return LaunchCluster(spec, *programs);
    };
  });
}

void AddEvalCommand(CLI::App* app, Command* selected) {
  CLI::App* cmd = app->add_subcommand(
      "eval", "Score a data file with a saved model: AUC, logloss, GAUC, calibration");
  cmd->allow_extras();
  cmd->footer(
      "Arguments: --model DIR --data FILE... [--predictions PATH] [--batch-size N]\n"
      "           [--group-field NAME|none] [--max-bad-ratio R]\n"
      "Example: tessera eval --model runs/demo/model --data examples/demo/data/test.tsv");
  cmd->callback([cmd, selected] {
    *selected = [args = PassThroughArgs(*cmd)] {
      StatusOr<models::FeatureHasher> hasher = ReadIdSaltHasher();
      Status s = hasher.ok() ? models::RunEval(args, *hasher) : hasher.status();
      return s.ok() ? 0 : Fail("eval", s);
    };
  });
}

}  // namespace tessera::cli
