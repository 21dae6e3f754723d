#include "tests/testing/in_proc_training.h"

#include <thread>
#include <utility>

#include "models/data_reader.h"
#include "models/table_plan.h"

namespace tessera::testing {

StatusOr<std::unique_ptr<InProcTraining>> InProcTraining::Run(const models::JobConfig& job,
                                                              uint64_t chunk_bytes,
                                                              const Clock* clock) {
  Options options;
  options.chunk_bytes = chunk_bytes;
  return Run(job, std::move(options), clock);
}

StatusOr<std::unique_ptr<InProcTraining>> InProcTraining::Run(const models::JobConfig& job,
                                                              Options options,
                                                              const Clock* clock) {
  const uint64_t chunk_bytes = options.chunk_bytes;
  auto t = std::unique_ptr<InProcTraining>(new InProcTraining);
  TESSERA_ASSIGN_OR_RETURN(t->schema_, models::LoadJobSchema(job));
  TESSERA_ASSIGN_OR_RETURN(t->model_, models::NewModel(job.model, t->schema_));
  TESSERA_ASSIGN_OR_RETURN(auto files, models::ExpandInputs(job.data.train));
  TESSERA_ASSIGN_OR_RETURN(auto chunks, models::SplitIntoChunks(files, chunk_bytes));

  InProcClusterOptions o;
  o.num_servers = job.cluster.servers;
  o.num_workers = job.cluster.workers;
  o.tables = models::PlanTables(job, t->schema_, *t->model_);
  for (const auto& c : chunks) o.data_chunks.push_back({c.path, c.begin, c.end});
  o.epochs = job.train.epochs;
  o.static_data_order = job.train.consistency == models::Consistency::kSync;
  o.staleness = job.train.consistency == models::Consistency::kSsp ? job.train.staleness : 0;
  o.async = job.train.consistency == models::Consistency::kAsync;
  o.publish = options.publish;
  o.resume = options.resume;
  t->cluster_ = std::make_unique<InProcCluster>(o, clock);
  TESSERA_RETURN_IF_ERROR(t->cluster_->Start());

  const int workers = job.cluster.workers;
  for (int w = 0; w < workers; ++w) {
    TESSERA_ASSIGN_OR_RETURN(auto trainer, worker::Trainer::Create(job, &t->cluster_->worker(w)));
    t->trainers_.push_back(std::move(trainer));
  }
  std::vector<StatusOr<worker::TrainResult>> results(workers, UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] { results[w] = t->trainers_[w]->Run(); });
  }
  if (options.during) options.during(*t->cluster_);
  for (auto& thread : threads) thread.join();
  for (const auto& r : results) {
    TESSERA_RETURN_IF_ERROR(r.status());
    t->examples_ += r->examples;
  }
  return t;
}

}  // namespace tessera::testing
