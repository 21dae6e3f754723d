// `tessera train job.yaml` and `tessera eval`, and the "train" worker
// program they run on every worker:
//   worker program args: --job=PATH [--set=key.path=value ...]
// The scheduler derives its tables (models::PlanTables) and its data plan
// (line-aligned chunks of data.train, epochs, consistency) from the same job
// file, so every node agrees without further configuration.
#ifndef TESSERA_TOOLS_CLI_TRAIN_JOB_H_
#define TESSERA_TOOLS_CLI_TRAIN_JOB_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "models/job_config.h"
#include "tools/cli/command.h"
#include "tools/cli/worker_programs.h"

namespace tessera::cli {

// The "train" program's arguments for the job file `job` (made absolute, so
// every node reads the same file whatever its working directory), the
// overrides `sets` (key.path=value) and, with `resume`, --resume.
std::vector<std::string> TrainProgramArgs(const std::string& job,
                                          const std::vector<std::string>& sets, bool resume);

// Parses the "train" program's arguments and loads (and validates) the job.
StatusOr<models::JobConfig> LoadTrainJob(const std::vector<std::string>& program_args);

// The "train" worker program (tables and scheduler set-up included).
WorkerProgramSpec TrainProgramSpec();

void AddTrainCommand(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected);
void AddEvalCommand(CLI::App* app, Command* selected);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_TRAIN_JOB_H_
