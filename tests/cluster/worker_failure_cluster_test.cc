// Worker failure in one process, on a SimulatedClock: the scheduler's side
// of what tests/e2e/worker_failure_test.cc checks with real processes. A
// worker that stops sending heartbeats is declared dead: its chunk goes to
// the other worker from its last reported position, a barrier stops waiting
// for it, and if it was only slow (it still talks) it is refused (fenced).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>

#include "common/deadline.h"
#include "protocols/codec.h"
#include "tests/testing/in_proc_cluster.h"
#include "tests/testing/status_matchers.h"

namespace tessera {
namespace {

using testing::InProcCluster;
using testing::InProcClusterOptions;

constexpr auto kWait = std::chrono::seconds(20);

InProcClusterOptions TwoWorkers() {
  InProcClusterOptions o;
  o.num_servers = 1;
  o.num_workers = 2;
  TableConfig emb;
  emb.name = "emb";
  emb.dim = 2;
  o.tables = {emb};
  o.heartbeat_timeout = std::chrono::milliseconds(1000);
  // Two chunks of a file nobody reads: only the scheduler's bookkeeping runs.
  o.data_chunks = {{"train.tsv", 0, 100}, {"train.tsv", 100, 200}};
  return o;
}

StatusOr<protocol::DataChunkInfo> AskForData(worker::WorkerNode& w) {
  TESSERA_ASSIGN_OR_RETURN(
      protocol::DecodedMessage reply,
      w.member().Call(
          kSchedulerId,
          [](const protocol::Header& h) { return protocol::EncodeDataRequest(h, std::nullopt); },
          DeadlineIn(kWait)));
  return reply.AsDataChunkReply();
}

Status ReportTrained(worker::WorkerNode& w, uint64_t chunk, uint64_t offset) {
  const protocol::ClockInfo clock{1, false, false, protocol::DataPosition{chunk, offset}, false};
  return w.member()
      .Call(kSchedulerId,
            [&](const protocol::Header& h) { return protocol::EncodeClockRequest(h, clock); },
            DeadlineIn(kWait))
      .status();
}

TEST(WorkerFailureClusterTest, DeadWorkersChunkGoesOnFromItsPositionAndItIsFenced) {
  SimulatedClock clock;
  InProcClusterOptions options = TwoWorkers();
  options.async = true;
  InProcCluster c(options, &clock);
  ASSERT_OK(c.Start());

  // Worker 1 takes the first chunk and trains 40 of its 100 bytes.
  StatusOr<protocol::DataChunkInfo> held = AskForData(c.worker(1));
  ASSERT_OK(held.status());
  ASSERT_EQ(held->begin, 0u);
  ASSERT_OK(ReportTrained(c.worker(1), held->id, 40));

  // Worker 0 waits at the barrier for worker 1, which falls silent.
  Status barrier;
  std::thread waiter([&] {
    barrier = c.worker(0).member().Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(kWait));
  });
  for (int beat = 0; beat < 3; ++beat) {
    clock.AdvanceTime(std::chrono::milliseconds(600));
    ASSERT_OK(c.server(0).member().HeartbeatAndWait(DeadlineIn(kWait)));
    ASSERT_OK(c.worker(0).member().HeartbeatAndWait(DeadlineIn(kWait)));
    c.scheduler().CheckLiveness();
  }
  ASSERT_EQ(c.scheduler().dead_nodes(), (std::vector<NodeId>{NodeId{Role::kWorker, 1}}));
  waiter.join();  // released: the live workers are all there
  EXPECT_OK(barrier);

  // Its chunk goes to worker 0 from the reported position: nothing trained
  // is handed out again, nothing untrained is lost.
  StatusOr<protocol::DataChunkInfo> again = AskForData(c.worker(0));
  ASSERT_OK(again.status());
  EXPECT_EQ(again->id, held->id);
  EXPECT_EQ(again->begin, 40u);
  EXPECT_EQ(again->end, 100u);

  // Worker 1 was only slow: whatever it says now is refused, so it cannot
  // train the data that went to worker 0 (it exits; the job goes on).
  EXPECT_EQ(ReportTrained(c.worker(1), held->id, 60).code(), StatusCode::kAborted);
  EXPECT_EQ(AskForData(c.worker(1)).status().code(), StatusCode::kAborted);
  StatusOr<protocol::DataChunkInfo> second = AskForData(c.worker(0));
  ASSERT_OK(second.status());
  EXPECT_EQ(second->begin, 100u);
  StatusOr<protocol::DataChunkInfo> none = AskForData(c.worker(0));
  ASSERT_OK(none.status());
  EXPECT_TRUE(none->done);
}

}  // namespace
}  // namespace tessera
