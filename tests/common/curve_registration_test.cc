// A scheduler and servers over CurveZMQ: a server without the cluster key
// cannot register (its handshake is refused), one with the key registers.
#include <gtest/gtest.h>

#include <chrono>

#include "common/clock.h"
#include "common/curve_keys.h"
#include "common/metrics.h"
#include "common/zmq_transport.h"
#include "scheduler/scheduler_node.h"
#include "server/server_node.h"
#include "tests/testing/status_matchers.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kToken[] = "curve-registration-token";

std::unique_ptr<Transport> NewTransport(const CurveKeys& keys, MetricsRegistry* metrics) {
  StatusOr<std::unique_ptr<Transport>> t =
      NewZmqTransport({.metrics = metrics, .curve = keys});
  EXPECT_OK(t);
  return t.ok() ? *std::move(t) : nullptr;
}

class CurveRegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(cluster_keys_, GenerateCurveKeys());
    scheduler_transport_ = NewTransport(cluster_keys_, &transport_metrics_);
    scheduler::SchedulerOptions options;
    options.num_servers = 1;
    options.num_workers = 1;
    options.token = kToken;
    scheduler_ = std::make_unique<scheduler::SchedulerNode>(options, scheduler_transport_.get(),
                                                            &clock_, &scheduler_metrics_);
    ASSERT_OK_AND_ASSIGN(scheduler_endpoint_, scheduler_->Start());
  }

  void TearDown() override {
    if (scheduler_) scheduler_->Stop();
  }

  // A server with `keys` that registers within `timeout`.
  Status StartServer(const CurveKeys& keys, milliseconds timeout, NodeId* id) {
    MetricsRegistry metrics;
    std::unique_ptr<Transport> transport = NewTransport(keys, nullptr);
    protocol::MemberOptions member;
    member.scheduler_endpoint = scheduler_endpoint_;
    server::ServerNode server({member, kToken}, transport.get(), &clock_, &metrics);
    Status status = server.Start(DeadlineIn(timeout));
    *id = server.id();
    server.Stop();
    return status;
  }

  double Refused() {
    return transport_metrics_.GetCounter("tessera_transport_auth_refused_total", "").Value();
  }

  RealClock clock_;
  CurveKeys cluster_keys_;
  MetricsRegistry transport_metrics_;
  MetricsRegistry scheduler_metrics_;
  std::unique_ptr<Transport> scheduler_transport_;
  std::unique_ptr<scheduler::SchedulerNode> scheduler_;
  std::string scheduler_endpoint_;
};

TEST_F(CurveRegistrationTest, ServerWithoutTheClusterKeyCannotRegister) {
  ASSERT_OK_AND_ASSIGN(CurveKeys other, GenerateCurveKeys());
  NodeId id;
  Status status = StartServer(other, milliseconds(1500), &id);
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded) << status;
  EXPECT_GE(Refused(), 1);

  status = StartServer(CurveKeys{}, milliseconds(1000), &id);  // plaintext
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded) << status;

  // The refused servers took no rank: the first real one gets server/0.
  ASSERT_OK(StartServer(cluster_keys_, milliseconds(5000), &id));
  EXPECT_EQ(id, (NodeId{Role::kServer, 0}));
}

TEST_F(CurveRegistrationTest, ServerWithTheClusterKeyRegisters) {
  NodeId id;
  ASSERT_OK(StartServer(cluster_keys_, milliseconds(5000), &id));
  EXPECT_EQ(id, (NodeId{Role::kServer, 0}));
  EXPECT_EQ(Refused(), 0);
}

}  // namespace
}  // namespace tessera::testing
