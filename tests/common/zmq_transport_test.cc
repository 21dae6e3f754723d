#include "common/zmq_transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/metrics.h"
#include "tests/common/transport_contract_test.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::testing {
namespace {

std::unique_ptr<Transport> NewZmqOrDie(const ZmqTransportOptions& options) {
  StatusOr<std::unique_ptr<Transport>> t = NewZmqTransport(options);
  EXPECT_OK(t);
  return t.ok() ? *std::move(t) : nullptr;
}

// Each transport owns its context; loopback TCP on an OS-chosen port.
class ZmqTcpFactory : public TransportFactory {
 public:
  std::unique_ptr<Transport> NewTransport() override {
    ZmqTransportOptions options;
    options.metrics = &metrics_;
    options.metric_labels = {{"node", std::to_string(next_++)}};
    return NewZmqOrDie(options);
  }
  std::string BindableEndpoint() override { return "tcp://127.0.0.1:0"; }

 private:
  MetricsRegistry metrics_;
  int next_ = 0;
};

// All transports share one context and talk over inproc://.
class ZmqInprocFactory : public TransportFactory {
 public:
  std::unique_ptr<Transport> NewTransport() override {
    ZmqTransportOptions options;
    options.context = &context_;
    return NewZmqOrDie(options);
  }
  std::string BindableEndpoint() override {
    return "inproc://contract-" + std::to_string(next_++);
  }

 private:
  zmq::context_t context_;  // Destroyed after every transport of the test.
  int next_ = 0;
};

INSTANTIATE_TEST_SUITE_P(
    Zmq, TransportContractTest,
    ::testing::Values(
        TransportContractParam{"ZmqTcp", [] { return std::make_unique<ZmqTcpFactory>(); }},
        TransportContractParam{"ZmqInproc",
                               [] { return std::make_unique<ZmqInprocFactory>(); }}),
    TransportContractParamName);

// The header of a message from {worker, 3} to {server, unassigned}; pins the
// wire layout documented in common/zmq_transport.h.
const uint8_t kGoldenHeader[kZmqHeaderBytes] = {'T', 'S', 1,    0,    2,    1,    0,    0,
                                                3,   0,   0,    0,    0xff, 0xff, 0xff, 0xff};
constexpr NodeId kWorker3{Role::kWorker, 3};
constexpr NodeId kNewServer{Role::kServer, kUnassignedRank};

std::string HeaderBytes() { return std::string(reinterpret_cast<const char*>(kGoldenHeader), 16); }

TEST(ZmqTransportTest, WireHeaderLayoutIsStable) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:0");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::unique_ptr<Transport> t = NewZmqOrDie({});
  ASSERT_OK(t->Connect(kNewServer, endpoint));
  ASSERT_OK(t->Send(MakeMessage(kWorker3, kNewServer, {"ab", ""})));
  std::vector<zmq::message_t> parts;
  ASSERT_TRUE(zmq::recv_multipart(router, std::back_inserter(parts)));
  ASSERT_EQ(parts.size(), 4u);  // Routing id, header, "ab", "".
  EXPECT_EQ(parts[1].to_string(), HeaderBytes());
  EXPECT_EQ(parts[2].to_string(), "ab");
  EXPECT_EQ(parts[3].size(), 0u);
}

TEST(ZmqTransportTest, MalformedMessagesAreDroppedAndCounted) {
  MetricsRegistry metrics;
  std::unique_ptr<Transport> t = NewZmqOrDie({.metrics = &metrics});
  ASSERT_OK_AND_ASSIGN(std::string endpoint, t->Bind("tcp://127.0.0.1:0"));
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(endpoint);
  std::string bad_version = HeaderBytes();
  bad_version[2] = 2;
  std::string bad_role = HeaderBytes();
  bad_role[5] = 9;
  const std::vector<std::string> garbage = {"garbage", std::string(16, '\0'), bad_version,
                                            bad_role, "", HeaderBytes() + "x"};
  for (const std::string& g : garbage) raw.send(zmq::buffer(g), zmq::send_flags::sndmore);
  raw.send(zmq::str_buffer("tail"));  // One message of 7 bad-header parts...
  for (const std::string& g : garbage) raw.send(zmq::buffer(g));  // ...and six single ones.
  // Same connection, so this valid message arrives after all the bad ones.
  raw.send(zmq::buffer(HeaderBytes()), zmq::send_flags::sndmore);
  raw.send(zmq::str_buffer("ok"));

  ASSERT_OK_AND_ASSIGN(Message m, t->Receive(In(kPatience)));
  EXPECT_EQ(m.from, kWorker3);
  EXPECT_EQ(m.to, kNewServer);
  EXPECT_EQ(FrameStrings(m), std::vector<std::string>{"ok"});
  EXPECT_EQ(metrics.GetCounter("tessera_transport_rejected_messages_total", "").Value(), 7);
  EXPECT_EQ(metrics.GetCounter("tessera_transport_received_messages_total", "").Value(), 1);
  // Still healthy.
  ASSERT_OK(t->Connect(kNodeA, endpoint));
  ASSERT_OK(t->Send(MakeMessage(kNodeA, kNodeA, {"again"})));
  EXPECT_OK(t->Receive(In(kPatience)));
}

TEST(ZmqTransportTest, ReceivedFramesPointIntoZmqMessages) {
  std::unique_ptr<Transport> a = NewZmqOrDie({});
  std::unique_ptr<Transport> b = NewZmqOrDie({});
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("tcp://127.0.0.1:0"));
  ASSERT_OK(a->Connect(kNodeB, eb));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeB, {std::string(1 << 20, 'm'), "s"})));
  ASSERT_OK_AND_ASSIGN(Message m, b->Receive(In(kPatience)));
  ASSERT_EQ(m.frames.size(), 2u);
  for (const Frame& f : m.frames) {
    // Documented in zmq_transport.h: the owner is the zmq::message_t itself.
    const auto* zmsg = static_cast<const zmq::message_t*>(f.owner().get());
    ASSERT_NE(zmsg, nullptr);
    EXPECT_EQ(f.data(), zmsg->data());
    EXPECT_EQ(f.size(), zmsg->size());
  }
}

TEST(ZmqTransportTest, InprocDeliversTheSendersBytesAndReleasesThem) {
  zmq::context_t ctx;
  std::unique_ptr<Transport> a = NewZmqOrDie({.context = &ctx});
  std::unique_ptr<Transport> b = NewZmqOrDie({.context = &ctx});
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("inproc://zero-copy"));
  ASSERT_OK(a->Connect(kNodeB, eb));
  Frame frame = Frame::FromString(std::string(1 << 20, 'z'));
  const uint8_t* sent_bytes = frame.data();
  std::weak_ptr<const void> owner = frame.owner();
  ASSERT_OK(a->Send(Message{kNodeA, kNodeB, {std::move(frame)}}));
  {
    ASSERT_OK_AND_ASSIGN(Message m, b->Receive(In(kPatience)));
    ASSERT_EQ(m.frames.size(), 1u);
    EXPECT_EQ(m.frames[0].data(), sent_bytes);  // Not one copy end to end.
    EXPECT_FALSE(owner.expired());
  }
  // The received message was the last holder: ZeroMQ's free function ran.
  EXPECT_TRUE(owner.expired());
}

TEST(ZmqTransportTest, FramesWithoutOwnerAreCopiedOnSend) {
  std::unique_ptr<Transport> a = NewZmqOrDie({});
  std::unique_ptr<Transport> b = NewZmqOrDie({});
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("tcp://127.0.0.1:0"));
  ASSERT_OK(a->Connect(kNodeB, eb));
  std::vector<uint8_t> buffer(1000, 'o');
  ASSERT_OK(a->Send(Message{kNodeA, kNodeB, {Frame(buffer.data(), buffer.size(), nullptr)}}));
  std::fill(buffer.begin(), buffer.end(), 'X');
  ASSERT_OK_AND_ASSIGN(Message m, b->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(m), std::vector<std::string>{std::string(1000, 'o')});
}

TEST(ZmqTransportTest, MessagesQueueForAPeerThatBindsLater) {
  zmq::context_t ctx;
  std::unique_ptr<Transport> a = NewZmqOrDie({.context = &ctx});
  std::unique_ptr<Transport> b = NewZmqOrDie({.context = &ctx});
  ASSERT_OK(a->Connect(kNodeB, "inproc://late-binder"));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeB, {"early"})));
  ASSERT_OK(b->Bind("inproc://late-binder"));
  ASSERT_OK_AND_ASSIGN(Message m, b->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(m), std::vector<std::string>{"early"});
}

TEST(ZmqTransportTest, FullSendQueueIsResourceExhaustedNotABlock) {
  TempDir dir;
  std::unique_ptr<Transport> a = NewZmqOrDie({.send_hwm = 4});
  ASSERT_OK(a->Connect(kNodeB, "ipc://" + dir.File("nobody.sock")));  // Never bound.
  Status status;
  int sent = 0;
  for (; sent < 1000 && status.ok(); ++sent) {
    status = a->Send(MakeMessage(kNodeA, kNodeB, {"x", std::string(100, 'y')}));
  }
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status;
  EXPECT_LE(sent, 10);
  // Other routes are unaffected.
  std::unique_ptr<Transport> c = NewZmqOrDie({});
  ASSERT_OK_AND_ASSIGN(std::string ec, c->Bind("tcp://127.0.0.1:0"));
  ASSERT_OK(a->Connect(kNodeC, ec));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeC, {"fine"})));
  EXPECT_OK(c->Receive(In(kPatience)));
}

TEST(ZmqTransportTest, WildcardBindReportsTheChosenPort) {
  std::unique_ptr<Transport> b = NewZmqOrDie({});
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("tcp://*:0"));
  ASSERT_TRUE(eb.starts_with("tcp://0.0.0.0:")) << eb;
  const int port = std::atoi(eb.substr(eb.rfind(':') + 1).c_str());
  EXPECT_GT(port, 0);
  std::unique_ptr<Transport> a = NewZmqOrDie({});
  ASSERT_OK(a->Connect(kNodeB, "tcp://127.0.0.1:" + std::to_string(port)));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeB, {"hi"})));
  EXPECT_OK(b->Receive(In(kPatience)));
}

TEST(ZmqTransportTest, IpcEndpointsWork) {
  TempDir dir;
  std::unique_ptr<Transport> a = NewZmqOrDie({});
  std::unique_ptr<Transport> b = NewZmqOrDie({});
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("ipc://" + dir.File("b.sock")));
  ASSERT_OK(a->Connect(kNodeB, eb));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeB, {"over", "ipc"})));
  ASSERT_OK_AND_ASSIGN(Message m, b->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(m), (std::vector<std::string>{"over", "ipc"}));
}

TEST(ZmqTransportTest, MetricsCountTrafficPerLabel) {
  MetricsRegistry metrics;
  std::unique_ptr<Transport> a = NewZmqOrDie({.metrics = &metrics, .metric_labels = {{"node", "a"}}});
  std::unique_ptr<Transport> b = NewZmqOrDie({.metrics = &metrics, .metric_labels = {{"node", "b"}}});
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("tcp://127.0.0.1:0"));
  ASSERT_OK(a->Connect(kNodeB, eb));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeB, {"12345", "678"})));
  ASSERT_OK(b->Receive(In(kPatience)));
  auto value = [&](const std::string& name, const std::string& node) {
    return metrics.GetCounter(name, "", {{"node", node}}).Value();
  };
  EXPECT_EQ(value("tessera_transport_sent_messages_total", "a"), 1);
  EXPECT_EQ(value("tessera_transport_sent_bytes_total", "a"), 8);
  EXPECT_EQ(value("tessera_transport_received_messages_total", "b"), 1);
  EXPECT_EQ(value("tessera_transport_received_bytes_total", "b"), 8);
  EXPECT_EQ(value("tessera_transport_received_messages_total", "a"), 0);
}

TEST(ZmqTransportTest, OversizedFramesAreRefused) {
  std::unique_ptr<Transport> b = NewZmqOrDie({.max_frame_bytes = 1000});
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("tcp://127.0.0.1:0"));
  std::unique_ptr<Transport> big = NewZmqOrDie({});
  ASSERT_OK(big->Connect(kNodeB, eb));
  ASSERT_OK(big->Send(MakeMessage(kNodeA, kNodeB, {std::string(5000, 'b')})));
  std::unique_ptr<Transport> small = NewZmqOrDie({});
  ASSERT_OK(small->Connect(kNodeB, eb));
  ASSERT_OK(small->Send(MakeMessage(kNodeC, kNodeB, {"small"})));
  ASSERT_OK_AND_ASSIGN(Message m, b->Receive(In(kPatience)));
  EXPECT_EQ(m.from, kNodeC);
  EXPECT_EQ(b->Receive(In(std::chrono::milliseconds(50))).status().code(),
            StatusCode::kDeadlineExceeded);
}

TEST(ZmqTransportTest, InvalidOptionsAreRejected) {
  EXPECT_EQ(NewZmqTransport({.io_threads = 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NewZmqTransport({.send_hwm = -1}).status().code(), StatusCode::kInvalidArgument);
}

TEST(ZmqTransportTest, BorrowedContextOutlivesItsTransports) {
  zmq::context_t ctx;
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<Transport> t = NewZmqOrDie({.context = &ctx});
    // Distinct names: ZeroMQ frees an inproc name asynchronously after close.
    ASSERT_OK_AND_ASSIGN(std::string e, t->Bind("inproc://borrowed-" + std::to_string(i)));
    ASSERT_OK(t->Connect(kNodeA, e));
    ASSERT_OK(t->Send(MakeMessage(kNodeA, kNodeA, {"x"})));
    EXPECT_OK(t->Receive(In(kPatience)));
  }
}

}  // namespace
}  // namespace tessera::testing
