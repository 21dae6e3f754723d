#include "worker/trainer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>

#include "common/logging.h"
#include "models/data_reader.h"
#include "models/table_plan.h"
#include "worker/data_feed.h"

namespace tessera::worker {
namespace {

constexpr auto kKvTimeout = std::chrono::seconds(120);
constexpr size_t kProgressWindow = 100000;
// A worker waiting for stream input reports itself idle this often, so a
// version's cut waits at most this long for it.
constexpr auto kIdleReport = std::chrono::milliseconds(50);

std::string FormatEta(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "?";
  const long s = static_cast<long>(seconds);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

std::string Opt(const std::optional<double>& v, int precision = 4) {
  if (!v) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, *v);
  return buf;
}

}  // namespace

// One batch in flight: its rows (in the Batch), its dense parameters and its
// outstanding pulls.
struct Trainer::Step {
  std::unique_ptr<models::Batch> batch;
  std::vector<std::vector<float>> dense;
  std::vector<KvClient::Ticket> pulls;
  std::vector<float> predictions;
};

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const models::JobConfig& job, WorkerNode* node) {
  TESSERA_ASSIGN_OR_RETURN(models::Schema schema, models::LoadJobSchema(job));
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> model, models::NewModel(job.model, schema));
  // The servers must hold exactly the tables this job plans.
  std::vector<TableConfig> planned = models::PlanTables(job, schema, *model);
  for (const TableConfig& t : planned) {
    const TableConfig* have = node->kv().FindTable(t.id);
    if (have == nullptr || !(*have == t)) {
      return FailedPreconditionError("worker: the cluster's table " + std::to_string(t.id) + " ('" +
                                     t.name + "') differs from this job's plan: was the scheduler "
                                     "started with the same job file?");
    }
  }
  return std::unique_ptr<Trainer>(new Trainer(job, std::move(schema), std::move(model), node));
}

Trainer::Trainer(const models::JobConfig& job, models::Schema schema,
                 std::unique_ptr<models::Model> model, WorkerNode* node)
    : job_(job),
      schema_(std::move(schema)),
      model_(std::move(model)),
      node_(node),
      kv_(node->kv()),
      window_(kProgressWindow),
      examples_metric_(node->metrics()->GetCounter("tessera_worker_examples_total",
                                                   "Training examples processed.")),
      throughput_metric_(node->metrics()->GetGauge("tessera_worker_samples_per_second",
                                                   "Training throughput since the start.")),
      window_auc_metric_(node->metrics()->GetGauge(
          "tessera_worker_window_auc", "Progressive-validation AUC over the last 100k examples.")),
      window_loss_metric_(node->metrics()->GetGauge(
          "tessera_worker_window_logloss",
          "Progressive-validation log loss over the last 100k examples.")),
      staleness_metric_(node->metrics()->GetGauge(
          "tessera_worker_staleness_steps",
          "Steps between the fastest and slowest worker (ssp/sync), as last reported.")),
      bad_lines_metric_(node->metrics()->GetCounter("tessera_worker_bad_lines_total",
                                                    "Input lines skipped as malformed.")),
      input_lines_metric_(node->metrics()->GetCounter(
          "tessera_worker_input_lines_total", "Input lines read (bad ones included).")),
      prefetched_metric_(node->metrics()->GetGauge(
          "tessera_worker_prefetched_batches",
          "Batches read and waiting to be trained (the feed reads up to 4 ahead).")) {
  for (const models::DenseBlock& b : model_->dense_blocks()) {
    dense_.emplace_back(b.size);
    dense_grads_.emplace_back(b.size);
  }
  // Runs on the heartbeat thread: reads only counters, gauges and atomics.
  node_->member().SetStatsProvider([this] {
    protocol::NodeStats stats;
    stats.has_worker_stats = true;
    stats.examples_total = static_cast<uint64_t>(examples_metric_.Value());
    stats.steps_total = steps_reported_.load(std::memory_order_relaxed);
    stats.staleness = static_cast<uint64_t>(staleness_metric_.Value());
    return stats;
  });
}

Trainer::~Trainer() { node_->member().SetStatsProvider({}); }

Status Trainer::WaitAll(std::vector<KvClient::Ticket>* tickets) {
  Status first;
  for (KvClient::Ticket t : *tickets) {
    Status s = kv_.Wait(t, DeadlineIn(kKvTimeout));
    if (first.ok() && !s.ok()) first = s;
  }
  tickets->clear();
  return first;
}

Status Trainer::IssuePulls(Step* step) {
  const uint32_t dim = model_->row_dim();
  for (models::TableBatch& t : step->batch->tables) {
    t.values.resize(static_cast<Eigen::Index>(t.keys.size()), dim);
    if (t.keys.empty()) continue;
    TESSERA_ASSIGN_OR_RETURN(
        KvClient::Ticket ticket,
        kv_.Pull(models::SparseTableId(t.table), t.keys,
                 std::span<float>(t.values.data(), static_cast<size_t>(t.values.size()))));
    step->pulls.push_back(ticket);
  }
  step->dense.resize(dense_.size());
  for (size_t b = 0; b < dense_.size(); ++b) {
    step->dense[b].resize(dense_[b].size());
    TESSERA_ASSIGN_OR_RETURN(KvClient::Ticket ticket,
                             kv_.DensePull(models::DenseTableId(schema_, static_cast<int>(b)),
                                           step->dense[b]));
    step->pulls.push_back(ticket);
  }
  return OkStatus();
}

Status Trainer::PushGradients(Step* step, std::vector<KvClient::Ticket>* tickets) {
  for (const models::TableBatch& t : step->batch->tables) {
    if (t.keys.empty()) continue;
    TESSERA_ASSIGN_OR_RETURN(
        KvClient::Ticket ticket,
        kv_.Push(models::SparseTableId(t.table), t.keys,
                 std::span<const float>(t.grads.data(), static_cast<size_t>(t.grads.size()))));
    tickets->push_back(ticket);
  }
  for (size_t b = 0; b < dense_grads_.size(); ++b) {
    TESSERA_ASSIGN_OR_RETURN(KvClient::Ticket ticket,
                             kv_.DensePush(models::DenseTableId(schema_, static_cast<int>(b)),
                                           dense_grads_[b]));
    tickets->push_back(ticket);
  }
  return OkStatus();
}

Status Trainer::ClockTick(uint64_t step, bool done, bool turn,
                          std::optional<protocol::DataPosition> position, bool idle) {
  TESSERA_ASSIGN_OR_RETURN(
      protocol::DecodedMessage reply,
      node_->member().Call(
          kSchedulerId,
          [&](const protocol::Header& h) {
            return protocol::EncodeClockRequest(h, {step, done, turn, position, idle});
          },
          DeadlineIn(kKvTimeout)));
  TESSERA_ASSIGN_OR_RETURN(protocol::ClockReplyInfo info, reply.AsClockReply());
  staleness_ = info.spread;
  staleness_metric_.Set(static_cast<double>(info.spread));
  return OkStatus();
}

void Trainer::UpdateInputMetrics(const DataFeed& feed) {
  const models::DataStats stats = feed.stats();
  if (stats.lines > lines_counted_) {
    input_lines_metric_.Increment(static_cast<double>(stats.lines - lines_counted_));
    lines_counted_ = stats.lines;
  }
  if (stats.bad_lines > bad_lines_counted_) {
    bad_lines_metric_.Increment(static_cast<double>(stats.bad_lines - bad_lines_counted_));
    bad_lines_counted_ = stats.bad_lines;
  }
  prefetched_metric_.Set(static_cast<double>(feed.queued_batches()));
}

void Trainer::ReportProgress(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const double since_report = std::chrono::duration<double>(now - last_report_).count();
  if (!final && since_report < job_.train.progress_every_s) return;
  last_report_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(examples_) / elapsed : 0;
  const std::optional<double> auc = window_.Auc();
  const std::optional<double> loss = window_.LogLoss();
  throughput_metric_.Set(rate);
  if (auc) window_auc_metric_.Set(*auc);
  if (loss) window_loss_metric_.Set(*loss);
  auto [done, total] = chunk_progress_ ? chunk_progress_() : std::pair<uint64_t, uint64_t>{0, 0};
  const double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0;
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : -1;
  TESSERA_LOG(kInfo) << (final ? "trained " : "progress: ") << examples_ << " examples, "
                     << steps_ << " steps, " << static_cast<long>(rate) << " samples/s, loss "
                     << Opt(loss) << ", window auc " << Opt(auc) << ", chunks " << done << "/"
                     << total << (final ? "" : ", eta " + FormatEta(eta))
                     << (job_.train.consistency == models::Consistency::kAsync
                             ? ""
                             : ", staleness " + std::to_string(staleness_));
}

StatusOr<TrainResult> Trainer::Run() {
  DataFeed feed({static_cast<int>(job_.train.batch_size), 4, job_.data.group_field,
                 job_.data.max_bad_ratio},
                &schema_, &node_->member());
  TESSERA_RETURN_IF_ERROR(feed.Start());
  chunk_progress_ = [&feed] {
    FeedProgress p = feed.progress();
    return std::pair<uint64_t, uint64_t>{p.chunks_completed, p.chunks_total};
  };
  const bool prefetch = job_.train.consistency == models::Consistency::kAsync;
  const bool clocked = !prefetch;
  // Positions go to the scheduler after every step whose pushes were
  // acknowledged (async: one step later, once that step's pushes are
  // acknowledged): published versions record them, and a dead worker's
  // chunks are handed to the others from there, so at most its in-flight
  // batch is trained twice. Always on: without them the scheduler would
  // only know what the feed had read, and a dead worker's read but
  // untrained batches would be lost.
  std::optional<protocol::DataPosition> acked;    // position of the last acked step
  std::optional<protocol::DataPosition> pending;  // async: pushed, not yet acked
  start_ = last_report_ = std::chrono::steady_clock::now();

  // Streams: the next batch is taken only if it is there already, so a
  // partial batch is trained at once instead of waiting for more input;
  // while no batch comes, the worker reports itself idle (publishing can
  // then cut without it).
  const bool streaming = job_.data.follow || job_.data.streaming();
  Step slots[2];
  std::vector<KvClient::Ticket> pushes;
  // Waits for a batch (nullptr at the end of the data); with nothing in
  // flight, reports idle every kIdleReport while the stream is quiet.
  auto await_batch = [&]() -> StatusOr<std::unique_ptr<models::Batch>> {
    while (true) {
      bool timed_out = false;
      TESSERA_ASSIGN_OR_RETURN(
          std::unique_ptr<models::Batch> b,
          feed.Next(streaming ? std::chrono::steady_clock::now() + kIdleReport
                              : std::chrono::steady_clock::time_point::max(),
                    &timed_out));
      if (!timed_out) return b;
      UpdateInputMetrics(feed);  // a file of bad lines yields no batch
      TESSERA_RETURN_IF_ERROR(ClockTick(steps_, false, false, acked, true));
    }
  };
  // Async: report the previous step once its pushes are acknowledged.
  auto settle_pushes = [&]() -> Status {
    TESSERA_RETURN_IF_ERROR(WaitAll(&pushes));
    if (prefetch && pending) {
      acked = pending;
      pending.reset();
      TESSERA_RETURN_IF_ERROR(ClockTick(steps_, false, false, acked, false));
    }
    return OkStatus();
  };
  int cur = 0;
  TESSERA_ASSIGN_OR_RETURN(slots[cur].batch, await_batch());
  if (slots[cur].batch) TESSERA_RETURN_IF_ERROR(IssuePulls(&slots[cur]));
  bool ended = slots[cur].batch == nullptr;
  while (slots[cur].batch) {
    Step& step = slots[cur];
    Step& next = slots[1 - cur];
    TESSERA_RETURN_IF_ERROR(WaitAll(&step.pulls));
    if (streaming) {
      bool timed_out = false;
      TESSERA_ASSIGN_OR_RETURN(next.batch, feed.Next(std::chrono::steady_clock::now(), &timed_out));
      ended = !next.batch && !timed_out;
    } else {
      TESSERA_ASSIGN_OR_RETURN(next.batch, feed.Next());
      ended = !next.batch;
    }
    // The previous step's pushes are applied before the next batch is
    // pulled, so a prefetched batch misses only this step's update (one step
    // stale, not two). Async reports the previous step after issuing the
    // pulls, so the report's round trip overlaps them.
    TESSERA_RETURN_IF_ERROR(WaitAll(&pushes));
    if (prefetch && next.batch) TESSERA_RETURN_IF_ERROR(IssuePulls(&next));
    TESSERA_RETURN_IF_ERROR(settle_pushes());

    std::vector<std::span<const float>> dense(step.dense.begin(), step.dense.end());
    std::vector<std::span<float>> grads(dense_grads_.begin(), dense_grads_.end());
    step.predictions.resize(step.batch->size);
    const float loss = model_->TrainStep(step.batch.get(), dense, grads, step.predictions);
    window_.Add(step.predictions, step.batch->labels);
    if (job_.train.consistency == models::Consistency::kSync) {
      // Push in rank order: the servers then apply a step's gradients in
      // the same order in every run (reproducible for a worker count).
      TESSERA_RETURN_IF_ERROR(ClockTick(steps_ + 1, false, /*turn=*/true, std::nullopt, false));
    }
    TESSERA_RETURN_IF_ERROR(PushGradients(&step, &pushes));
    ++steps_;
    steps_reported_.store(steps_, std::memory_order_relaxed);
    examples_ += step.batch->size;
    loss_sum_ += static_cast<double>(loss) * step.batch->size;
    examples_metric_.Increment(step.batch->size);
    const protocol::DataPosition position{step.batch->source.chunk_id,
                                          step.batch->source.end_offset};
    if (clocked) {
      TESSERA_RETURN_IF_ERROR(WaitAll(&pushes));
      acked = position;
      TESSERA_RETURN_IF_ERROR(ClockTick(steps_, false, false, acked, false));
      if (next.batch) TESSERA_RETURN_IF_ERROR(IssuePulls(&next));
    } else {
      pending = position;
    }
    step.batch.reset();
    cur = 1 - cur;
    ReportProgress(false);
    UpdateInputMetrics(feed);
    TESSERA_RETURN_IF_ERROR(MaybeEvaluate());
    if (!slots[cur].batch && !ended) {
      // A quiet stream: finish this step, then wait for input.
      TESSERA_RETURN_IF_ERROR(settle_pushes());
      TESSERA_ASSIGN_OR_RETURN(slots[cur].batch, await_batch());
      if (slots[cur].batch) TESSERA_RETURN_IF_ERROR(IssuePulls(&slots[cur]));
    }
  }
  TESSERA_RETURN_IF_ERROR(WaitAll(&pushes));
  if (pending) acked = pending;
  // Past everything read, including chunks that yielded no batch.
  if (std::optional<models::Batch::Source> end = feed.final_position()) {
    acked = protocol::DataPosition{end->chunk_id, end->end_offset};
  }
  TESSERA_RETURN_IF_ERROR(ClockTick(steps_, true, false, acked, false));
  const models::DataStats stats = feed.stats();
  UpdateInputMetrics(feed);
  ReportProgress(true);
  if (stats.short_lines > 0 || stats.bad_lines > 0) {
    TESSERA_LOG(kInfo) << "input: " << stats.lines << " lines, " << stats.short_lines
                       << " short (padded), " << stats.bad_lines << " bad (skipped)";
  }
  TrainResult result;
  result.examples = examples_;
  result.steps = steps_;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  result.mean_loss = examples_ > 0 ? loss_sum_ / static_cast<double>(examples_) : 0;
  return result;
}

Status Trainer::MaybeEvaluate() {
  const uint64_t every = job_.train.eval_every_steps;
  if (every == 0 || job_.data.eval.empty() || node_->id().rank != 0 || steps_ % every != 0) {
    return OkStatus();
  }
  // Worker 0 scores the held-out data with the current parameters while the
  // other workers keep training (their pushes land during the scan).
  TESSERA_ASSIGN_OR_RETURN(models::EvalMetrics m, Evaluate({job_.data.eval}));
  TESSERA_LOG(kInfo) << "eval at step " << steps_ << ": auc " << Opt(m.auc) << ", logloss "
                     << Opt(m.logloss) << ", gauc " << Opt(m.gauc) << ", samples " << m.count;
  return OkStatus();
}

StatusOr<models::EvalMetrics> Trainer::Evaluate(const std::vector<std::string>& data) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<std::string> files, models::ExpandInputs(data));
  TESSERA_ASSIGN_OR_RETURN(std::vector<models::FileChunk> chunks, models::SplitIntoChunks(files, 0));
  models::ExampleReader reader(&schema_, chunks, {});
  TESSERA_ASSIGN_OR_RETURN(
      auto builder, models::BatchBuilder::Create(&schema_, {.group_field = job_.data.group_field}));
  Step step;
  step.batch = std::make_unique<models::Batch>();
  std::vector<float> predictions, labels;
  std::vector<uint64_t> groups;
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(int n, reader.NextBatch(builder.get(), step.batch.get(),
                                                     static_cast<int>(job_.train.batch_size)));
    if (n == 0) break;
    TESSERA_RETURN_IF_ERROR(IssuePulls(&step));
    TESSERA_RETURN_IF_ERROR(WaitAll(&step.pulls));
    std::vector<std::span<const float>> dense(step.dense.begin(), step.dense.end());
    step.predictions.resize(n);
    model_->Predict(*step.batch, dense, step.predictions);
    predictions.insert(predictions.end(), step.predictions.begin(), step.predictions.end());
    labels.insert(labels.end(), step.batch->labels.begin(), step.batch->labels.end());
    groups.insert(groups.end(), step.batch->groups.begin(), step.batch->groups.end());
  }
  TESSERA_RETURN_IF_ERROR(models::CheckBadRatio(reader.stats(), job_.data.max_bad_ratio));
  if (groups.size() != predictions.size()) groups.clear();
  return models::Evaluate(predictions, labels, groups);
}

}  // namespace tessera::worker
