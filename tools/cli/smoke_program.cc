#include "tools/cli/smoke_program.h"

#include <chrono>
#include <cmath>
#include <span>
#include <sstream>

#include "common/deadline.h"
#include "common/logging.h"

namespace tessera::cli {
namespace {

using std::chrono::seconds;
constexpr seconds kOpTimeout(30);
constexpr int kKeysPerWorker = 32;
constexpr float kLearningRate = 0.5f;

float Gradient(size_t row, size_t col) {
  return 0.01f * static_cast<float>(row + 1) + 0.001f * col;
}

Status Expect(std::span<const float> got, std::span<const float> want, std::string_view what) {
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) || std::fabs(got[i] - want[i]) > 1e-5f * (1 + std::fabs(want[i]))) {
      std::ostringstream message;
      message << "smoke: " << what << ": element " << i << " is " << got[i] << ", expected "
              << want[i];
      return DataLossError(message.str());
    }
  }
  return OkStatus();
}

StatusOr<const TableConfig*> Table(worker::WorkerNode& node, const std::string& name) {
  const TableConfig* table = node.kv().FindTable(name);
  if (table == nullptr) {
    return FailedPreconditionError("smoke: the cluster has no table '" + name +
                                   "' (start the scheduler with --tables-for smoke)");
  }
  return table;
}

// Pull, push, pull, push-pull of this worker's own keys (no other worker
// touches them, so every value is predictable).
Status CheckSparse(worker::WorkerNode& node) {
  TESSERA_ASSIGN_OR_RETURN(const TableConfig* table, Table(node, "smoke_sparse"));
  const size_t dim = table->dim;
  std::vector<Key> keys;
  for (int i = 0; i < kKeysPerWorker; ++i) {
    keys.push_back(static_cast<Key>(node.id().rank) * 1000003u + static_cast<Key>(i) * 7919u);
  }
  std::vector<Key> with_duplicate = keys;
  with_duplicate.push_back(keys[3]);  // a pull returns duplicates at every position

  worker::KvClient& kv = node.kv();
  std::vector<float> initial(with_duplicate.size() * dim);
  TESSERA_ASSIGN_OR_RETURN(auto t, kv.Pull(table->id, with_duplicate, initial));
  TESSERA_RETURN_IF_ERROR(kv.Wait(t, DeadlineIn(kOpTimeout)));
  TESSERA_RETURN_IF_ERROR(Expect(std::span(initial).subspan(keys.size() * dim, dim),
                                 std::span(initial).subspan(3 * dim, dim), "duplicate key row"));
  initial.resize(keys.size() * dim);

  std::vector<float> grads(keys.size() * dim);
  std::vector<float> want(keys.size() * dim);
  for (size_t r = 0; r < keys.size(); ++r) {
    for (size_t c = 0; c < dim; ++c) grads[r * dim + c] = Gradient(r, c);
  }
  for (size_t i = 0; i < want.size(); ++i) want[i] = initial[i] - kLearningRate * grads[i];
  TESSERA_ASSIGN_OR_RETURN(t, kv.Push(table->id, keys, grads));
  TESSERA_RETURN_IF_ERROR(kv.Wait(t, DeadlineIn(kOpTimeout)));
  std::vector<float> rows(keys.size() * dim);
  TESSERA_ASSIGN_OR_RETURN(t, kv.Pull(table->id, keys, rows));
  TESSERA_RETURN_IF_ERROR(kv.Wait(t, DeadlineIn(kOpTimeout)));
  TESSERA_RETURN_IF_ERROR(Expect(rows, want, "row after push"));

  for (size_t i = 0; i < want.size(); ++i) want[i] -= kLearningRate * grads[i];
  TESSERA_ASSIGN_OR_RETURN(t, kv.PushPull(table->id, keys, grads, rows));
  TESSERA_RETURN_IF_ERROR(kv.Wait(t, DeadlineIn(kOpTimeout)));
  return Expect(rows, want, "row after push-pull");
}

// Every worker pushes the same gradient once between two barriers.
Status CheckDense(worker::WorkerNode& node, seconds barrier_timeout) {
  TESSERA_ASSIGN_OR_RETURN(const TableConfig* table, Table(node, "smoke_dense"));
  worker::KvClient& kv = node.kv();
  protocol::ClusterMember& member = node.member();
  std::vector<float> before(table->size);
  TESSERA_ASSIGN_OR_RETURN(auto t, kv.DensePull(table->id, before));
  TESSERA_RETURN_IF_ERROR(kv.Wait(t, DeadlineIn(kOpTimeout)));
  TESSERA_RETURN_IF_ERROR(
      member.Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(barrier_timeout)));
  std::vector<float> grads(table->size);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = Gradient(i, 0);
  TESSERA_ASSIGN_OR_RETURN(t, kv.DensePush(table->id, grads));
  TESSERA_RETURN_IF_ERROR(kv.Wait(t, DeadlineIn(kOpTimeout)));
  TESSERA_RETURN_IF_ERROR(
      member.Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(barrier_timeout)));
  std::vector<float> after(table->size);
  TESSERA_ASSIGN_OR_RETURN(t, kv.DensePull(table->id, after));
  TESSERA_RETURN_IF_ERROR(kv.Wait(t, DeadlineIn(kOpTimeout)));
  std::vector<float> want(table->size);
  const float workers = static_cast<float>(node.num_workers());
  for (size_t i = 0; i < want.size(); ++i) want[i] = before[i] - kLearningRate * workers * grads[i];
  return Expect(after, want, "dense table after every worker pushed");
}

}  // namespace

std::vector<TableConfig> SmokeTables() {
  TableConfig sparse;
  sparse.id = 0;
  sparse.name = "smoke_sparse";
  sparse.kind = TableKind::kSparse;
  sparse.dim = 4;
  sparse.optimizer.type = OptimizerType::kSgd;
  sparse.optimizer.learning_rate = kLearningRate;
  sparse.initializer.type = InitializerType::kUniform;
  sparse.initializer.scale = 0.1f;
  sparse.initializer.seed = 7;
  TableConfig dense = sparse;
  dense.id = 1;
  dense.name = "smoke_dense";
  dense.kind = TableKind::kDense;
  dense.size = 64;
  return {sparse, dense};
}

Status RunSmokeProgram(worker::WorkerNode& node, const std::vector<std::string>& args) {
  bool hold = false;
  for (const std::string& arg : args) {
    if (arg != "--hold") return InvalidArgumentError("smoke: unknown argument '" + arg + "'");
    hold = true;
  }
  TESSERA_RETURN_IF_ERROR(CheckSparse(node));
  TESSERA_RETURN_IF_ERROR(CheckDense(node, seconds(120)));
  TESSERA_LOG(kInfo) << "smoke: " << kKeysPerWorker << " sparse rows and the dense table verified";
  if (hold) {
    TESSERA_LOG(kInfo) << "smoke: holding until the cluster is stopped";
    while (absl::IsDeadlineExceeded(
        node.member().WaitForShutdown(DeadlineIn(std::chrono::hours(1))))) {
    }
  }
  return OkStatus();
}

}  // namespace tessera::cli
