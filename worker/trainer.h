// The training loop of one worker: batches from the DataFeed; pull the rows
// and dense blocks they need; forward/backward; push the gradients. Honours
// the job's consistency (async: batch k+1's pull overlaps batch k's compute;
// ssp: at most `staleness` steps ahead of the slowest worker; sync: every
// worker's step t is applied before anyone's step t+1). Progressive
// validation scores each batch before training on it. Worker 0 evaluates the
// held-out data at the end and writes <output_dir>/eval.json.
//
// Thread-compatible: Run() on one thread.
#ifndef TESSERA_WORKER_TRAINER_H_
#define TESSERA_WORKER_TRAINER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "models/job_config.h"
#include "models/metrics.h"
#include "models/model.h"
#include "models/schema.h"
#include "worker/data_feed.h"
#include "worker/kv_client.h"
#include "worker/worker_node.h"

namespace tessera::worker {

struct TrainResult {
  uint64_t examples = 0;
  uint64_t steps = 0;
  double seconds = 0;
  double mean_loss = 0;
  std::optional<models::EvalMetrics> eval;  // worker 0 with data.eval set
};

class Trainer {
 public:
  // `node` must be started and outlive the trainer.
  static StatusOr<std::unique_ptr<Trainer>> Create(const models::JobConfig& job, WorkerNode* node);
  // Stops reporting its figures in the node's heartbeats.
  ~Trainer();

  // Trains through every chunk the scheduler hands out; then (worker 0)
  // evaluates. Errors: data errors, server errors, deadlines.
  StatusOr<TrainResult> Run();

  // Scores `data` (files/globs) with the current parameters on the servers.
  StatusOr<models::EvalMetrics> Evaluate(const std::vector<std::string>& data);

  const models::Schema& schema() const { return schema_; }
  const models::Model& model() const { return *model_; }

 private:
  struct Step;
  Trainer(const models::JobConfig& job, models::Schema schema, std::unique_ptr<models::Model> model,
          WorkerNode* node);
  Status IssuePulls(Step* step);
  Status WaitAll(std::vector<KvClient::Ticket>* tickets);
  Status PushGradients(Step* step, std::vector<KvClient::Ticket>* tickets);
  // Reports `step` finished (or done); with `turn`, asks for the turn to
  // push `step` instead (sync). Returns when the scheduler allows.
  // `position`: the data trained through `step` (not with `turn`); `idle`:
  // waiting for input with nothing in flight.
  Status ClockTick(uint64_t step, bool done, bool turn,
                   std::optional<protocol::DataPosition> position, bool idle);
  void ReportProgress(bool final);
  // Brings the input counters up to the feed's totals and the prefetched
  // batches gauge to its queue.
  void UpdateInputMetrics(const DataFeed& feed);
  // Worker 0, every train.eval_every_steps steps: scores data.eval.
  Status MaybeEvaluate();

  const models::JobConfig job_;
  const models::Schema schema_;
  std::unique_ptr<models::Model> model_;
  WorkerNode* const node_;
  KvClient& kv_;
  // Dense parameters and their gradients, one vector per block.
  std::vector<std::vector<float>> dense_;
  std::vector<std::vector<float>> dense_grads_;
  models::WindowedMetrics window_;

  // Progress.
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_report_;
  uint64_t examples_ = 0;
  uint64_t steps_ = 0;
  double loss_sum_ = 0;
  uint64_t staleness_ = 0;
  // steps_ for the heartbeat thread (NodeStats, `tessera status`).
  std::atomic<uint64_t> steps_reported_{0};
  std::function<std::pair<uint64_t, uint64_t>()> chunk_progress_;

  Counter& examples_metric_;
  Gauge& throughput_metric_;
  Gauge& window_auc_metric_;
  Gauge& window_loss_metric_;
  Gauge& staleness_metric_;
  Counter& bad_lines_metric_;
  Counter& input_lines_metric_;
  Gauge& prefetched_metric_;
  // The feed's line totals already added to the counters.
  uint64_t lines_counted_ = 0;
  uint64_t bad_lines_counted_ = 0;
};

}  // namespace tessera::worker

#endif  // TESSERA_WORKER_TRAINER_H_
