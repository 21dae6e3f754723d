#include "common/inproc_transport.h"

#include <gtest/gtest.h>

#include "tests/common/transport_contract_test.h"
#include "tests/testing/status_matchers.h"

namespace tessera::testing {
namespace {

class InProcFactory : public TransportFactory {
 public:
  std::unique_ptr<Transport> NewTransport() override { return net_.NewTransport(); }
  std::string BindableEndpoint() override { return "mem://"; }

 private:
  InProcNetwork net_;
};

INSTANTIATE_TEST_SUITE_P(InProc, TransportContractTest,
                         ::testing::Values(TransportContractParam{
                             "InProc", [] { return std::make_unique<InProcFactory>(); }}),
                         TransportContractParamName);

TEST(InProcTransportTest, AutoEndpointsAreUniqueAndNamedOnesAreKept) {
  InProcNetwork net;
  auto a = net.NewTransport();
  auto b = net.NewTransport();
  auto c = net.NewTransport();
  ASSERT_OK_AND_ASSIGN(std::string ea, a->Bind("mem://"));
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("mem://auto"));
  ASSERT_OK_AND_ASSIGN(std::string ec, c->Bind("mem://server-0"));
  EXPECT_TRUE(ea.starts_with("mem://"));
  EXPECT_NE(ea, eb);
  EXPECT_EQ(ec, "mem://server-0");
  EXPECT_EQ(net.num_bound_endpoints(), 3u);
}

TEST(InProcTransportTest, SendToUnboundEndpointIsUnavailable) {
  InProcNetwork net;
  auto a = net.NewTransport();
  ASSERT_OK(a->Connect(kNodeB, "mem://nobody"));
  EXPECT_EQ(a->Send(MakeMessage(kNodeA, kNodeB, {"x"})).code(), StatusCode::kUnavailable);
}

TEST(InProcTransportTest, SendToShutDownPeerIsUnavailableAndNameIsReusable) {
  InProcNetwork net;
  auto a = net.NewTransport();
  auto b = net.NewTransport();
  ASSERT_OK(b->Bind("mem://b"));
  ASSERT_OK(a->Connect(kNodeB, "mem://b"));
  b->Shutdown();
  EXPECT_EQ(net.num_bound_endpoints(), 0u);
  EXPECT_EQ(a->Send(MakeMessage(kNodeA, kNodeB, {"x"})).code(), StatusCode::kUnavailable);
  // A restarted node binds the same name; the old route reaches it.
  auto b2 = net.NewTransport();
  ASSERT_OK(b2->Bind("mem://b"));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeB, {"again"})));
  ASSERT_OK_AND_ASSIGN(Message m, b2->Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(m), std::vector<std::string>{"again"});
}

TEST(InProcTransportTest, FramesAreDeliveredWithoutCopying) {
  InProcNetwork net;
  auto a = net.NewTransport();
  auto b = net.NewTransport();
  ASSERT_OK_AND_ASSIGN(std::string eb, b->Bind("mem://"));
  ASSERT_OK(a->Connect(kNodeB, eb));
  Frame frame = Frame::FromString(std::string(4096, 'q'));
  ASSERT_OK(a->Send(Message{kNodeA, kNodeB, {frame}}));
  ASSERT_OK_AND_ASSIGN(Message m, b->Receive(In(kPatience)));
  ASSERT_EQ(m.frames.size(), 1u);
  EXPECT_EQ(m.frames[0].data(), frame.data());
}

TEST(InProcTransportTest, TransportsMayOutliveTheNetworkObject) {
  std::unique_ptr<Transport> a;
  {
    InProcNetwork net;
    a = net.NewTransport();
    ASSERT_OK(a->Bind("mem://a"));
  }
  ASSERT_OK(a->Connect(kNodeA, "mem://a"));
  ASSERT_OK(a->Send(MakeMessage(kNodeA, kNodeA, {"still here"})));
  EXPECT_OK(a->Receive(In(kPatience)));
}

}  // namespace
}  // namespace tessera::testing
