// Messenger's request timeouts: a request with no reply in time fails with
// DeadlineExceeded exactly once, a late reply is dropped as an orphan, and a
// cancelled request never calls back.
#include "protocols/messenger.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "common/inproc_transport.h"
#include "tests/testing/status_matchers.h"

namespace tessera::protocol {
namespace {

constexpr NodeId kServer{Role::kServer, 0};
constexpr NodeId kWorker{Role::kWorker, 0};

class MessengerTimeoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(std::string server_endpoint, server_transport_->Bind("mem://server"));
    ASSERT_OK_AND_ASSIGN(std::string worker_endpoint, worker_transport_->Bind("mem://worker"));
    ASSERT_OK(worker_transport_->Connect(kServer, server_endpoint));
    ASSERT_OK(server_transport_->Connect(kWorker, worker_endpoint));
    server_.set_self(kServer);
    worker_.set_self(kWorker);
    server_.Start();
    worker_.Start();
  }

  // The server holds every request; ReplyToHeld answers them.
  void OnRequest(DecodedMessage msg) {
    MutexLock lock(&mu_);
    held_.push_back(std::move(msg));
  }
  void ReplyToHeld() {
    std::vector<DecodedMessage> held;
    {
      MutexLock lock(&mu_);
      auto some = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !held_.empty(); };
      ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&some), absl::Seconds(10)));
      held.swap(held_);
    }
    for (const DecodedMessage& m : held) {
      ASSERT_OK(server_.Reply(m, [](const Header& h) { return EncodeAck(h); }));
    }
  }

  // Sends one heartbeat-shaped request; its outcome lands in `outcomes_`.
  uint64_t Send(std::chrono::milliseconds timeout) {
    StatusOr<uint64_t> id = worker_.SendRequest(
        kServer, [](const Header& h) { return EncodeHeartbeat(h); },
        [this](StatusOr<DecodedMessage> reply) {
          MutexLock lock(&mu_);
          outcomes_.push_back(reply.ok() ? reply->header().status : reply.status());
        },
        timeout);
    EXPECT_OK(id);
    return id.ok() ? *id : 0;
  }
  std::vector<Status> WaitForOutcomes(size_t n) {
    MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return outcomes_.size() >= n; };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10)));
    return outcomes_;
  }
  double Counter(const std::string& name) { return metrics_.GetCounter(name, "").Value(); }

  InProcNetwork net_;
  MetricsRegistry metrics_;
  std::unique_ptr<Transport> server_transport_ = net_.NewTransport();
  std::unique_ptr<Transport> worker_transport_ = net_.NewTransport();
  Messenger server_{{server_transport_.get(), "t", &metrics_, "server"},
                    [this](DecodedMessage msg) { OnRequest(std::move(msg)); }};
  Messenger worker_{{worker_transport_.get(), "t", &metrics_, "worker"}, [](DecodedMessage) {}};
  Mutex mu_;
  std::vector<DecodedMessage> held_ TESSERA_GUARDED_BY(mu_);
  std::vector<Status> outcomes_ TESSERA_GUARDED_BY(mu_);
};

TEST_F(MessengerTimeoutTest, UnansweredRequestTimesOutOnceAndALateReplyIsAnOrphan) {
  const auto start = std::chrono::steady_clock::now();
  Send(std::chrono::milliseconds(50));
  std::vector<Status> outcomes = WaitForOutcomes(1);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].code(), StatusCode::kDeadlineExceeded) << outcomes[0];
  EXPECT_EQ(Counter("tessera_worker_request_timeouts_total"), 1);

  // The late reply finds no pending request; the next request, answered in
  // time, is not affected.
  ReplyToHeld();
  Send(std::chrono::seconds(30));
  ReplyToHeld();
  outcomes = WaitForOutcomes(2);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_OK(outcomes[1]);
  EXPECT_EQ(Counter("tessera_worker_orphan_replies_total"), 1);
  EXPECT_EQ(Counter("tessera_worker_request_timeouts_total"), 1);
}

TEST_F(MessengerTimeoutTest, CancelledRequestNeverCallsBack) {
  const uint64_t cancelled = Send(std::chrono::milliseconds(20));
  worker_.Cancel(cancelled);
  // A later request's timeout passes after the cancelled one's: once it is
  // reported, the cancelled one had its chance to (wrongly) call back.
  Send(std::chrono::milliseconds(60));
  std::vector<Status> outcomes = WaitForOutcomes(1);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Counter("tessera_worker_request_timeouts_total"), 1);
}

TEST_F(MessengerTimeoutTest, StopFailsPendingRequestsWithCancelled) {
  Send(std::chrono::hours(1));
  Send(std::chrono::milliseconds(0));  // no timeout
  worker_.Stop();
  std::vector<Status> outcomes = WaitForOutcomes(2);
  ASSERT_EQ(outcomes.size(), 2u);
  for (const Status& s : outcomes) EXPECT_EQ(s.code(), StatusCode::kCancelled) << s;
}

}  // namespace
}  // namespace tessera::protocol
