// The worker programs the `tessera` binary can run, by name (`tessera
// worker --program NAME`, `tessera local --program NAME`). Each program
// also names the tables the scheduler must configure for it, so launchers
// can set up a cluster for a program without further configuration.
//
// Built once by main() (BuiltinWorkerPrograms()) and passed down; there is
// no global registry. Thread-compatible.
#ifndef TESSERA_TOOLS_CLI_WORKER_PROGRAMS_H_
#define TESSERA_TOOLS_CLI_WORKER_PROGRAMS_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/table_config.h"
#include "scheduler/scheduler_node.h"
#include "worker/worker_main.h"

namespace tessera::cli {

struct WorkerProgramSpec {
  std::string name;
  std::string help;  // one line
  worker::WorkerProgram run;
  // The tables the program expects (ids 0, 1, ...), given the program's
  // arguments (e.g. a job file). Empty: no tables.
  std::function<StatusOr<std::vector<TableConfig>>(const std::vector<std::string>& args)> tables;
  // Program-specific scheduler set-up beyond tables (e.g. the data plan of
  // `train`), from the program's arguments. May be empty.
  std::function<Status(const std::vector<std::string>& args, scheduler::SchedulerOptions*)>
      scheduler_setup;
};

class WorkerProgramRegistry {
 public:
  // REQUIRES: a new name.
  void Add(WorkerProgramSpec spec);
  // nullptr if unknown.
  const WorkerProgramSpec* Find(std::string_view name) const;
  std::vector<std::string> Names() const;
  // "name: help" lines, for --help texts.
  std::string Describe() const;

  // The tables a cluster needs: parsed from `table_specs` (--table flags) if
  // any, else the tables of `program` run with `program_args` (may be
  // empty: no tables). NotFound for an unknown program.
  // Runs `program`'s scheduler_setup, if any. NotFound for an unknown program.
  Status SetUpScheduler(std::string_view program, const std::vector<std::string>& program_args,
                        scheduler::SchedulerOptions* options) const;

  StatusOr<std::vector<TableConfig>> TablesFor(const std::vector<std::string>& table_specs,
                                               std::string_view program,
                                               const std::vector<std::string>& program_args) const;

 private:
  std::map<std::string, WorkerProgramSpec, std::less<>> programs_;
};

// smoke (tools/cli/smoke_program.h), train (tools/cli/train_job.h) and, when
// built, kvbench (bench/kv_bench.h).
WorkerProgramRegistry BuiltinWorkerPrograms();

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_WORKER_PROGRAMS_H_
