// The Transport contract: a TEST_P suite that every implementation
// instantiates (monolith's embedding_hash_table_test.h pattern). Include this
// header from exactly one _test.cc per binary and instantiate it with
//   INSTANTIATE_TEST_SUITE_P(Impl, TransportContractTest,
//                            ::testing::Values(TransportContractParam{...}),
//                            TransportContractParamName);
// No sleeps: threads meet through Notifications; deadlines only bound how
// long a broken implementation can hang a test.
#ifndef TESSERA_TESTS_COMMON_TRANSPORT_CONTRACT_TEST_H_
#define TESSERA_TESTS_COMMON_TRANSPORT_CONTRACT_TEST_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "common/transport.h"
#include "tests/testing/status_matchers.h"

namespace tessera::testing {

// Makes transports of one implementation, plus endpoints they can bind.
// Owns whatever the transports share (a zmq context, an InProcNetwork); it
// is destroyed after every transport of a test.
class TransportFactory {
 public:
  virtual ~TransportFactory() = default;
  virtual std::unique_ptr<Transport> NewTransport() = 0;
  // An endpoint for Bind(), distinct on every call (port 0, unique names).
  virtual std::string BindableEndpoint() = 0;
};

struct TransportContractParam {
  std::string name;
  std::function<std::unique_ptr<TransportFactory>()> make_factory;
};

inline std::string TransportContractParamName(
    const ::testing::TestParamInfo<TransportContractParam>& info) {
  return info.param.name;
}

inline constexpr NodeId kNodeA{Role::kWorker, 0};
inline constexpr NodeId kNodeB{Role::kServer, 1};
inline constexpr NodeId kNodeC{Role::kScheduler, 0};

inline SteadyTime In(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }
// How long a test waits for a message that should arrive; only a broken
// transport ever waits this long.
inline constexpr std::chrono::seconds kPatience{10};

inline Message MakeMessage(NodeId from, NodeId to, const std::vector<std::string>& frames) {
  Message msg{from, to, {}};
  for (const std::string& f : frames) msg.frames.push_back(Frame::FromString(f));
  return msg;
}

inline std::vector<std::string> FrameStrings(const Message& msg) {
  std::vector<std::string> out;
  for (const Frame& f : msg.frames) out.emplace_back(f.view());
  return out;
}

class TransportContractTest : public ::testing::TestWithParam<TransportContractParam> {
 protected:
  struct Node {
    std::unique_ptr<Transport> transport;
    std::string endpoint;
  };

  void SetUp() override { factory_ = GetParam().make_factory(); }

  StatusOr<Node> NewBoundNode() {
    Node node{factory_->NewTransport(), ""};
    TESSERA_ASSIGN_OR_RETURN(node.endpoint, node.transport->Bind(factory_->BindableEndpoint()));
    return node;
  }

  std::unique_ptr<TransportFactory> factory_;
};

TEST_P(TransportContractTest, BindReturnsAResolvedEndpoint) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  EXPECT_FALSE(a.endpoint.empty());
  EXPECT_FALSE(a.endpoint.ends_with(":0")) << a.endpoint;
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  EXPECT_NE(a.endpoint, b.endpoint);
}

TEST_P(TransportContractTest, BindTwiceFailsWithFailedPrecondition) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  EXPECT_EQ(a.transport->Bind(factory_->BindableEndpoint()).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_P(TransportContractTest, BindToEndpointInUseFailsWithAlreadyExists) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  std::unique_ptr<Transport> b = factory_->NewTransport();
  EXPECT_EQ(b->Bind(a.endpoint).status().code(), StatusCode::kAlreadyExists);
  // A failed Bind() may be retried.
  EXPECT_OK(b->Bind(factory_->BindableEndpoint()));
}

TEST_P(TransportContractTest, MalformedEndpointsFailWithInvalidArgument) {
  std::unique_ptr<Transport> t = factory_->NewTransport();
  EXPECT_EQ(t->Bind("no-scheme-here").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t->Connect(kNodeB, "no-scheme-here").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t->Connect(kNodeB, "").code(), StatusCode::kInvalidArgument);
}

TEST_P(TransportContractTest, SendReceivePreservesFramesAndIds) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeB, b.endpoint));
  const std::vector<std::string> frames = {"", "hello", std::string("\0\xff\x01zero", 7),
                                           "", std::string(1000, 'x'), ""};
  ASSERT_OK(a.transport->Send(MakeMessage(kNodeA, kNodeB, frames)));
  ASSERT_OK(a.transport->Send(MakeMessage(kNodeA, kNodeB, {})));  // No frames at all.
  ASSERT_OK_AND_ASSIGN(Message m1, b.transport->Receive(In(kPatience)));
  EXPECT_EQ(m1.from, kNodeA);
  EXPECT_EQ(m1.to, kNodeB);
  EXPECT_EQ(FrameStrings(m1), frames);
  ASSERT_OK_AND_ASSIGN(Message m2, b.transport->Receive(In(kPatience)));
  EXPECT_EQ(m2.from, kNodeA);
  EXPECT_TRUE(m2.frames.empty());
}

TEST_P(TransportContractTest, UnassignedRankAndEveryRoleSurviveTheTrip) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  const NodeId newcomer{Role::kWorker, kUnassignedRank};
  const NodeId big{Role::kServer, 0x7fffffff};
  ASSERT_OK(a.transport->Connect(kSchedulerId, b.endpoint));
  ASSERT_OK(a.transport->Connect(big, b.endpoint));
  ASSERT_OK(a.transport->Send(MakeMessage(newcomer, kSchedulerId, {"register"})));
  ASSERT_OK(a.transport->Send(MakeMessage(kSchedulerId, big, {"x"})));
  ASSERT_OK_AND_ASSIGN(Message m1, b.transport->Receive(In(kPatience)));
  ASSERT_OK_AND_ASSIGN(Message m2, b.transport->Receive(In(kPatience)));
  // Two routes, two connections: the order between them is not guaranteed.
  if (m1.to != kSchedulerId) std::swap(m1, m2);
  EXPECT_EQ(m1.from, newcomer);
  EXPECT_EQ(m1.to, kSchedulerId);
  EXPECT_EQ(m2.from, kSchedulerId);
  EXPECT_EQ(m2.to, big);
}

TEST_P(TransportContractTest, FiftyMegabyteFrameArrivesIntact) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeB, b.endpoint));
  std::string big(50u << 20, '\0');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  big.back() = 'z';
  Frame frame = Frame::FromString(big);
  ASSERT_OK(a.transport->Send(Message{kNodeA, kNodeB, {Frame::FromString("head"), frame}}));
  ASSERT_OK_AND_ASSIGN(Message m, b.transport->Receive(In(kPatience)));
  ASSERT_EQ(m.frames.size(), 2u);
  EXPECT_EQ(m.frames[0].view(), "head");
  ASSERT_EQ(m.frames[1].size(), big.size());
  EXPECT_TRUE(m.frames[1].view() == big);
}

TEST_P(TransportContractTest, ConcurrentSendersAreReceivedExactlyOnceInOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeB, b.endpoint));
  std::atomic<int> send_failures{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        int32_t payload[2] = {t, i};
        Message msg{{Role::kWorker, t}, kNodeB, {Frame::Copy(payload, sizeof(payload))}};
        if (!a.transport->Send(std::move(msg)).ok()) ++send_failures;
      }
    });
  }
  std::vector<int> next(kThreads, 0);  // Per sender: the next sequence number expected.
  auto receive_all = [&] {  // A lambda, so a failed ASSERT still joins the senders.
    for (int n = 0; n < kThreads * kPerThread; ++n) {
      ASSERT_OK_AND_ASSIGN(Message m, b.transport->Receive(In(kPatience)));
      ASSERT_EQ(m.frames.size(), 1u);
      ASSERT_EQ(m.frames[0].size(), 8u);
      int32_t payload[2];
      std::memcpy(payload, m.frames[0].data(), sizeof(payload));
      ASSERT_GE(payload[0], 0);
      ASSERT_LT(payload[0], kThreads);
      EXPECT_EQ(m.from.rank, payload[0]);
      ASSERT_EQ(payload[1], next[payload[0]]) << "sender " << payload[0];
      ++next[payload[0]];
    }
  };
  receive_all();
  for (std::thread& s : senders) s.join();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(send_failures.load(), 0);
  EXPECT_EQ(b.transport->Receive(In(std::chrono::milliseconds(20))).status().code(),
            StatusCode::kDeadlineExceeded);
}

TEST_P(TransportContractTest, ManyTransportsSendToOneReceiver) {
  constexpr int kSenders = 3;
  constexpr int kEach = 200;
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  std::vector<std::unique_ptr<Transport>> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.push_back(factory_->NewTransport());
    ASSERT_OK(senders.back()->Connect(kNodeB, b.endpoint));
  }
  for (int i = 0; i < kEach; ++i) {
    for (int s = 0; s < kSenders; ++s) {
      ASSERT_OK(senders[s]->Send(MakeMessage({Role::kWorker, s}, kNodeB, {std::to_string(i)})));
    }
  }
  std::vector<int> next(kSenders, 0);
  for (int n = 0; n < kSenders * kEach; ++n) {
    ASSERT_OK_AND_ASSIGN(Message m, b.transport->Receive(In(kPatience)));
    const int s = m.from.rank;
    ASSERT_TRUE(s >= 0 && s < kSenders);
    EXPECT_EQ(FrameStrings(m), std::vector<std::string>{std::to_string(next[s]++)});
  }
}

TEST_P(TransportContractTest, ReceiveTimesOutWithDeadlineExceeded) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(a.transport->Receive(start + std::chrono::milliseconds(50)).status().code(),
            StatusCode::kDeadlineExceeded);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(50));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  // A deadline in the past fails at once; so does an unbound transport's.
  EXPECT_EQ(a.transport->Receive(start).status().code(), StatusCode::kDeadlineExceeded);
  std::unique_ptr<Transport> unbound = factory_->NewTransport();
  EXPECT_EQ(unbound->Receive(In(std::chrono::milliseconds(1))).status().code(),
            StatusCode::kDeadlineExceeded);
}

TEST_P(TransportContractTest, ShutdownWakesABlockedReceive) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  Notification about_to_receive;
  Status result;
  std::chrono::steady_clock::duration waited{};
  std::thread receiver([&] {
    const auto start = std::chrono::steady_clock::now();
    about_to_receive.Notify();
    result = a.transport->Receive(start + std::chrono::seconds(60)).status();
    waited = std::chrono::steady_clock::now() - start;
  });
  about_to_receive.WaitForNotification();
  a.transport->Shutdown();
  receiver.join();
  EXPECT_EQ(result.code(), StatusCode::kCancelled) << result;
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_P(TransportContractTest, EverythingFailsAfterShutdown) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeB, b.endpoint));
  a.transport->Shutdown();
  a.transport->Shutdown();  // Idempotent.
  EXPECT_EQ(a.transport->Receive(In(kPatience)).status().code(), StatusCode::kCancelled);
  EXPECT_EQ(a.transport->Send(MakeMessage(kNodeA, kNodeB, {"late"})).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(a.transport->Connect(kNodeC, b.endpoint).code(), StatusCode::kUnavailable);
  EXPECT_EQ(a.transport->Bind(factory_->BindableEndpoint()).status().code(),
            StatusCode::kUnavailable);
}

TEST_P(TransportContractTest, SendToUnknownPeerIsUnavailable) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  EXPECT_EQ(a.transport->Send(MakeMessage(kNodeA, kNodeB, {"x"})).code(),
            StatusCode::kUnavailable);
}

TEST_P(TransportContractTest, DisconnectForgetsTheRoute) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeB, b.endpoint));
  ASSERT_OK(a.transport->Disconnect(kNodeB));
  EXPECT_EQ(a.transport->Send(MakeMessage(kNodeA, kNodeB, {"x"})).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(a.transport->Disconnect(kNodeB).code(), StatusCode::kNotFound);
}

TEST_P(TransportContractTest, ReconnectRoutesToTheNewEndpoint) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK_AND_ASSIGN(Node b1, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeB, b1.endpoint));
  ASSERT_OK(a.transport->Connect(kNodeB, b1.endpoint));  // Same route again: a no-op.
  ASSERT_OK(a.transport->Send(MakeMessage(kNodeA, kNodeB, {"first"})));
  ASSERT_OK_AND_ASSIGN(Message m1, b1.transport->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(m1), std::vector<std::string>{"first"});
  // kNodeB restarts elsewhere (e.g. a rescheduled pod).
  ASSERT_OK_AND_ASSIGN(Node b2, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeB, b2.endpoint));
  ASSERT_OK(a.transport->Send(MakeMessage(kNodeA, kNodeB, {"second"})));
  ASSERT_OK_AND_ASSIGN(Message m2, b2.transport->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(m2), std::vector<std::string>{"second"});
  EXPECT_EQ(b1.transport->Receive(In(std::chrono::milliseconds(20))).status().code(),
            StatusCode::kDeadlineExceeded);
}

TEST_P(TransportContractTest, NodeCanSendToItself) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeA, a.endpoint));
  ASSERT_OK(a.transport->Send(MakeMessage(kNodeA, kNodeA, {"loop"})));
  ASSERT_OK_AND_ASSIGN(Message m, a.transport->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(m), std::vector<std::string>{"loop"});
}

TEST_P(TransportContractTest, BindWhileAnotherThreadReceives) {
  std::unique_ptr<Transport> b = factory_->NewTransport();
  Notification about_to_receive;
  StatusOr<Message> received = CancelledError("not run");
  std::thread receiver([&] {
    about_to_receive.Notify();
    received = b->Receive(In(kPatience));
  });
  about_to_receive.WaitForNotification();
  StatusOr<std::string> endpoint = b->Bind(factory_->BindableEndpoint());
  std::unique_ptr<Transport> a = factory_->NewTransport();
  if (endpoint.ok()) {
    EXPECT_OK(a->Connect(kNodeB, *endpoint));
    EXPECT_OK(a->Send(MakeMessage(kNodeA, kNodeB, {"hi"})));
  } else {
    b->Shutdown();  // Let the receiver go before failing.
  }
  receiver.join();
  ASSERT_OK(endpoint);
  ASSERT_OK(received);
  EXPECT_EQ(FrameStrings(*received), std::vector<std::string>{"hi"});
}

TEST_P(TransportContractTest, DestroyingBusyTransportsDoesNotHang) {
  ASSERT_OK_AND_ASSIGN(Node a, NewBoundNode());
  ASSERT_OK_AND_ASSIGN(Node b, NewBoundNode());
  ASSERT_OK(a.transport->Connect(kNodeB, b.endpoint));
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(a.transport->Send(MakeMessage(kNodeA, kNodeB, {std::string(10000, 'p')})));
  }
  b.transport.reset();  // Unread messages are discarded.
  a.transport.reset();
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_COMMON_TRANSPORT_CONTRACT_TEST_H_
