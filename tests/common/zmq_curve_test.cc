// ZmqTransport with CurveZMQ: the Transport contract over encrypted TCP, and
// the refusal of peers that do not hold the cluster's secret key.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <zmq.hpp>

#include "common/curve_keys.h"
#include "common/metrics.h"
#include "common/zmq_transport.h"
#include "tests/common/transport_contract_test.h"
#include "tests/testing/status_matchers.h"

namespace tessera::testing {
namespace {

using std::chrono::milliseconds;

CurveKeys NewKeysOrDie() {
  StatusOr<CurveKeys> keys = GenerateCurveKeys();
  EXPECT_OK(keys);
  return keys.ok() ? *keys : CurveKeys{};
}

std::unique_ptr<Transport> NewCurveTransport(std::optional<CurveKeys> keys,
                                             MetricsRegistry* metrics = nullptr) {
  ZmqTransportOptions options;
  options.curve = std::move(keys);
  options.metrics = metrics;
  StatusOr<std::unique_ptr<Transport>> t = NewZmqTransport(options);
  EXPECT_OK(t);
  return t.ok() ? *std::move(t) : nullptr;
}

// Every transport holds the same cluster keypair.
class ZmqCurveFactory : public TransportFactory {
 public:
  std::unique_ptr<Transport> NewTransport() override { return NewCurveTransport(keys_); }
  std::string BindableEndpoint() override { return "tcp://127.0.0.1:0"; }

 private:
  CurveKeys keys_ = NewKeysOrDie();
};

INSTANTIATE_TEST_SUITE_P(ZmqCurve, TransportContractTest,
                         ::testing::Values(TransportContractParam{
                             "ZmqCurveTcp", [] { return std::make_unique<ZmqCurveFactory>(); }}),
                         TransportContractParamName);

double Refused(MetricsRegistry& metrics) {
  return metrics.GetCounter("tessera_transport_auth_refused_total", "").Value();
}

// Waits (bounded) until `metrics` counted a refused handshake: the event the
// refusal tests wait for instead of sleeping.
bool AwaitRefusal(MetricsRegistry& metrics) {
  const SteadyTime deadline = In(kPatience);
  while (Refused(metrics) == 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// A Curve server, one peer with the cluster key and one `intruder`. The
// intruder sends first; only the member's message may arrive.
void ExpectIntruderRefused(const CurveKeys& cluster, std::unique_ptr<Transport> intruder) {
  MetricsRegistry metrics;
  std::unique_ptr<Transport> server = NewCurveTransport(cluster, &metrics);
  std::unique_ptr<Transport> member = NewCurveTransport(cluster);
  ASSERT_OK_AND_ASSIGN(std::string endpoint, server->Bind("tcp://127.0.0.1:0"));

  ASSERT_OK(intruder->Connect(kNodeB, endpoint));
  ASSERT_OK(intruder->Send(MakeMessage(kNodeC, kNodeB, {"intruder"})));
  ASSERT_TRUE(AwaitRefusal(metrics)) << "no refused handshake counted";

  ASSERT_OK(member->Connect(kNodeB, endpoint));
  ASSERT_OK(member->Send(MakeMessage(kNodeA, kNodeB, {"member"})));
  ASSERT_OK_AND_ASSIGN(Message got, server->Receive(In(kPatience)));
  EXPECT_EQ(got.from, kNodeA);
  EXPECT_EQ(FrameStrings(got), std::vector<std::string>{"member"});
  // The intruder keeps retrying (ZeroMQ reconnects); none of it gets through.
  EXPECT_EQ(server->Receive(In(milliseconds(300))).status().code(),
            StatusCode::kDeadlineExceeded);
  EXPECT_GE(Refused(metrics), 1);
}

TEST(ZmqCurveTest, MatchingKeysExchangeMessagesBothWays) {
  const CurveKeys keys = NewKeysOrDie();
  std::unique_ptr<Transport> a = NewCurveTransport(keys);
  std::unique_ptr<Transport> b = NewCurveTransport(keys);
  ASSERT_OK_AND_ASSIGN(std::string a_endpoint, a->Bind("tcp://127.0.0.1:0"));
  ASSERT_OK_AND_ASSIGN(std::string b_endpoint, b->Bind("tcp://127.0.0.1:0"));
  ASSERT_OK(a->Connect(kNodeB, b_endpoint));
  ASSERT_OK(b->Connect(kNodeA, a_endpoint));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeB, {"ping", "", std::string(1000, 'x')})));
  ASSERT_OK_AND_ASSIGN(Message ping, b->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(ping), (std::vector<std::string>{"ping", "", std::string(1000, 'x')}));
  ASSERT_OK(b->Send(MakeMessage(kNodeB, kNodeA, {"pong"})));
  ASSERT_OK_AND_ASSIGN(Message pong, a->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(pong), std::vector<std::string>{"pong"});
}

TEST(ZmqCurveTest, PeerWithAnotherKeypairIsRefusedAtTheHandshake) {
  const CurveKeys cluster = NewKeysOrDie();
  ExpectIntruderRefused(cluster, NewCurveTransport(NewKeysOrDie()));
}

TEST(ZmqCurveTest, PeerThatKnowsOnlyThePublicKeyIsRefusedByZap) {
  // Right server key, but its own client keypair: the handshake completes up
  // to INITIATE, and the ZAP handler refuses the unknown client key.
  const CurveKeys cluster = NewKeysOrDie();
  const CurveKeys own = NewKeysOrDie();
  zmq::context_t context;
  zmq::socket_t intruder(context, zmq::socket_type::dealer);
  intruder.set(zmq::sockopt::linger, 0);
  intruder.set(zmq::sockopt::curve_serverkey, cluster.public_key);
  intruder.set(zmq::sockopt::curve_publickey, own.public_key);
  intruder.set(zmq::sockopt::curve_secretkey, own.secret_key);

  MetricsRegistry metrics;
  std::unique_ptr<Transport> server = NewCurveTransport(cluster, &metrics);
  ASSERT_OK_AND_ASSIGN(std::string endpoint, server->Bind("tcp://127.0.0.1:0"));
  intruder.connect(endpoint);
  ASSERT_TRUE(AwaitRefusal(metrics));
  EXPECT_EQ(server->Receive(In(milliseconds(200))).status().code(),
            StatusCode::kDeadlineExceeded);
}

TEST(ZmqCurveTest, PlaintextPeerIsRefusedAtTheHandshake) {
  const CurveKeys cluster = NewKeysOrDie();
  ExpectIntruderRefused(cluster, NewCurveTransport(CurveKeys{}));
}

TEST(ZmqCurveTest, CurvePeerCannotTalkToAPlaintextServer) {
  std::unique_ptr<Transport> server = NewCurveTransport(CurveKeys{});
  std::unique_ptr<Transport> client = NewCurveTransport(NewKeysOrDie());
  ASSERT_OK_AND_ASSIGN(std::string endpoint, server->Bind("tcp://127.0.0.1:0"));
  ASSERT_OK(client->Connect(kNodeB, endpoint));
  ASSERT_OK(client->Send(MakeMessage(kNodeA, kNodeB, {"hello"})));
  EXPECT_EQ(server->Receive(In(milliseconds(300))).status().code(),
            StatusCode::kDeadlineExceeded);
}

TEST(ZmqCurveTest, UnsetCurveMeansPlaintext) {
  // No process-wide default: a transport whose options leave `curve` unset
  // talks to a plaintext node and is refused by a Curve one.
  std::unique_ptr<Transport> plain_server = NewCurveTransport(CurveKeys{});
  std::unique_ptr<Transport> unset = NewCurveTransport(std::nullopt);
  ASSERT_OK_AND_ASSIGN(std::string plain_endpoint, plain_server->Bind("tcp://127.0.0.1:0"));
  ASSERT_OK(unset->Connect(kNodeB, plain_endpoint));
  ASSERT_OK(unset->Send(MakeMessage(kNodeA, kNodeB, {"plain"})));
  ASSERT_OK_AND_ASSIGN(Message got, plain_server->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(got), std::vector<std::string>{"plain"});

  ExpectIntruderRefused(NewKeysOrDie(), NewCurveTransport(std::nullopt));
}

TEST(ZmqCurveTest, RejectsInvalidKeysAndBorrowedContexts) {
  CurveKeys keys = NewKeysOrDie();
  zmq::context_t context;
  EXPECT_EQ(NewZmqTransport({.context = &context, .curve = keys}).status().code(),
            StatusCode::kInvalidArgument);
  CurveKeys mismatched = keys;
  mismatched.public_key = NewKeysOrDie().public_key;
  EXPECT_EQ(NewZmqTransport({.curve = mismatched}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_OK(NewZmqTransport({.context = &context, .curve = CurveKeys{}}));
}

}  // namespace
}  // namespace tessera::testing
