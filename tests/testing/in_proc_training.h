// A job trained in one process: an InProcCluster configured from the job's
// plan (tables, data chunks, epochs, consistency) and one worker::Trainer per
// worker, run to the end. The cluster stays up so tests can evaluate, save
// or inspect the servers.
#ifndef TESSERA_TESTS_TESTING_IN_PROC_TRAINING_H_
#define TESSERA_TESTS_TESTING_IN_PROC_TRAINING_H_

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "models/job_config.h"
#include "models/model.h"
#include "models/schema.h"
#include "tests/testing/in_proc_cluster.h"
#include "worker/trainer.h"

namespace tessera::testing {

class InProcTraining {
 public:
  // Trains `job` (cluster size from job.cluster) with chunks of about
  // `chunk_bytes`. `clock` must outlive the result.
  static StatusOr<std::unique_ptr<InProcTraining>> Run(const models::JobConfig& job,
                                                       uint64_t chunk_bytes, const Clock* clock);

  struct Options {
    uint64_t chunk_bytes = 512 << 10;
    scheduler::PublishOptions publish;
    std::optional<scheduler::ResumeOptions> resume;
    // Runs on the calling thread while the workers train (e.g. PublishNow).
    std::function<void(InProcCluster&)> during;
  };
  static StatusOr<std::unique_ptr<InProcTraining>> Run(const models::JobConfig& job,
                                                       Options options, const Clock* clock);

  InProcCluster& cluster() { return *cluster_; }
  worker::Trainer& trainer(int w) { return *trainers_[w]; }
  const models::Schema& schema() const { return schema_; }
  const models::Model& model() const { return *model_; }
  // Examples trained, summed over the workers.
  uint64_t examples() const { return examples_; }

 private:
  models::Schema schema_;
  std::unique_ptr<models::Model> model_;
  std::unique_ptr<InProcCluster> cluster_;
  std::vector<std::unique_ptr<worker::Trainer>> trainers_;
  uint64_t examples_ = 0;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_IN_PROC_TRAINING_H_
