#include "tools/cli/worker_programs.h"

#include <cassert>
#include <utility>

#include "tools/cli/smoke_program.h"
#include "tools/cli/table_spec.h"
#include "tools/cli/train_job.h"

#include "bench/kv_bench.h"

namespace tessera::cli {

void WorkerProgramRegistry::Add(WorkerProgramSpec spec) {
  std::string name = spec.name;
  bool inserted = programs_.emplace(std::move(name), std::move(spec)).second;
  assert(inserted && "worker program registered twice");
  (void)inserted;
}

const WorkerProgramSpec* WorkerProgramRegistry::Find(std::string_view name) const {
  auto it = programs_.find(name);
  return it == programs_.end() ? nullptr : &it->second;
}

std::vector<std::string> WorkerProgramRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, spec] : programs_) names.push_back(name);
  return names;
}

std::string WorkerProgramRegistry::Describe() const {
  std::string text;
  for (const auto& [name, spec] : programs_) text += "  " + name + ": " + spec.help + "\n";
  return text;
}

StatusOr<std::vector<TableConfig>> WorkerProgramRegistry::TablesFor(
    const std::vector<std::string>& table_specs, std::string_view program,
    const std::vector<std::string>& program_args) const {
  if (!table_specs.empty()) return ParseTableSpecs(table_specs);
  if (program.empty()) return std::vector<TableConfig>{};
  const WorkerProgramSpec* spec = Find(program);
  if (spec == nullptr) {
    return NotFoundError("unknown worker program '" + std::string(program) + "'");
  }
  if (!spec->tables) return std::vector<TableConfig>{};
  return spec->tables(program_args);
}

Status WorkerProgramRegistry::SetUpScheduler(std::string_view program,
                                             const std::vector<std::string>& program_args,
                                             scheduler::SchedulerOptions* options) const {
  if (program.empty()) return OkStatus();
  const WorkerProgramSpec* spec = Find(program);
  if (spec == nullptr) {
    return NotFoundError("unknown worker program '" + std::string(program) + "'");
  }
  return spec->scheduler_setup ? spec->scheduler_setup(program_args, options) : OkStatus();
}

WorkerProgramRegistry BuiltinWorkerPrograms() {
  WorkerProgramRegistry registry;
  registry.Add(TrainProgramSpec());
  registry.Add({"smoke",
                "pushes and pulls a few keys and dense values and verifies them "
                "(args: --hold keeps the cluster up until it is stopped)",
                RunSmokeProgram, [](const std::vector<std::string>&) {
                  return StatusOr<std::vector<TableConfig>>(SmokeTables());
                },
                nullptr});
  registry.Add({"kvbench",
                "the KV benchmark (bench/kv_bench.h; args: --keys=1000,10000 --dims=8,64 "
                "--iters=N --label=TEXT)",
                bench::RunKvBenchProgram, [](const std::vector<std::string>&) {
                  return StatusOr<std::vector<TableConfig>>(bench::KvBenchTables());
                },
                nullptr});
  return registry;
}

}  // namespace tessera::cli
