#include "common/faulty_transport.h"

#include <gtest/gtest.h>

#include "common/inproc_transport.h"
#include "tests/common/transport_contract_test.h"
#include "tests/testing/status_matchers.h"

namespace tessera::testing {
namespace {

// With no faults configured the decorator must be invisible.
class FaultFreeFactory : public TransportFactory {
 public:
  std::unique_ptr<Transport> NewTransport() override {
    return std::make_unique<FaultyTransport>(net_.NewTransport(), /*seed=*/7);
  }
  std::string BindableEndpoint() override { return "mem://"; }

 private:
  InProcNetwork net_;
};

INSTANTIATE_TEST_SUITE_P(FaultFree, TransportContractTest,
                         ::testing::Values(TransportContractParam{
                             "FaultyOverInProc",
                             [] { return std::make_unique<FaultFreeFactory>(); }}),
                         TransportContractParamName);

constexpr auto kShort = std::chrono::milliseconds(20);

// A (faulty, sending) and B (plain, receiving) on one InProcNetwork.
class FaultyTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(a_base_->Bind("mem://a"));
    ASSERT_OK(b_->Bind("mem://b"));
    ASSERT_OK(a_.Connect(kNodeB, "mem://b"));
    ASSERT_OK(b_->Connect(kNodeA, "mem://a"));
  }

  void SendNumbered(int first, int count) {
    for (int i = first; i < first + count; ++i) {
      ASSERT_OK(a_.Send(MakeMessage(kNodeA, kNodeB, {std::to_string(i)})));
    }
  }

  // Everything B can receive now, as the single frame of each message.
  std::vector<std::string> Drain() {
    std::vector<std::string> got;
    for (;;) {
      StatusOr<Message> m = b_->Receive(In(kShort));
      if (!m.ok()) break;
      got.push_back(m->frames.empty() ? "" : std::string(m->frames[0].view()));
    }
    return got;
  }

  InProcNetwork net_;
  std::unique_ptr<Transport> a_base_ = net_.NewTransport();
  std::unique_ptr<Transport> b_ = net_.NewTransport();
  FaultyTransport a_{a_base_.get(), /*seed=*/301};
};

using Strings = std::vector<std::string>;

TEST_F(FaultyTransportTest, DropAllDropsEverythingButSendSucceeds) {
  a_.set_faults({.drop_probability = 1.0});
  SendNumbered(0, 10);
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(a_.counters().dropped, 10u);
  EXPECT_EQ(a_.counters().forwarded, 0u);
  a_.set_faults({});
  SendNumbered(10, 1);
  EXPECT_EQ(Drain(), Strings{"10"});
}

TEST_F(FaultyTransportTest, DropsAreDeterministicForASeed) {
  auto pattern = [&](uint64_t seed) {
    FaultyTransport t(a_base_.get(), seed);
    t.set_faults({.drop_probability = 0.5});
    for (int i = 0; i < 64; ++i) {
      EXPECT_OK(t.Send(MakeMessage(kNodeA, kNodeB, {std::to_string(i)})));
    }
    return Drain();
  };
  const Strings first = pattern(42);
  EXPECT_EQ(pattern(42), first);
  EXPECT_NE(pattern(43), first);
  EXPECT_GT(first.size(), 10u);
  EXPECT_LT(first.size(), 54u);
}

TEST_F(FaultyTransportTest, PartitionDropsBothDirectionsUntilHealed) {
  a_.Partition(kNodeB);
  SendNumbered(0, 3);
  EXPECT_TRUE(Drain().empty());
  ASSERT_OK(b_->Send(MakeMessage(kNodeB, kNodeA, {"reply"})));
  EXPECT_EQ(a_.Receive(In(kShort)).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(a_.counters().partitioned_sends, 3u);
  EXPECT_EQ(a_.counters().partitioned_receives, 1u);

  a_.Heal(kNodeB);
  SendNumbered(3, 1);
  EXPECT_EQ(Drain(), Strings{"3"});
  ASSERT_OK(b_->Send(MakeMessage(kNodeB, kNodeA, {"reply"})));
  ASSERT_OK_AND_ASSIGN(Message m, a_.Receive(In(kPatience)));
  EXPECT_EQ(FrameStrings(m), Strings{"reply"});
}

TEST_F(FaultyTransportTest, DuplicateDeliversEveryMessageTwice) {
  a_.set_faults({.duplicate_probability = 1.0});
  SendNumbered(0, 3);
  EXPECT_EQ(Drain(), (Strings{"0", "0", "1", "1", "2", "2"}));
  EXPECT_EQ(a_.counters().duplicated, 3u);
  EXPECT_EQ(a_.counters().forwarded, 6u);
}

TEST_F(FaultyTransportTest, DelayedMessagesWaitForReleaseDelayed) {
  a_.set_faults({.delay_probability = 1.0});
  SendNumbered(0, 3);
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(a_.counters().delayed, 3u);
  EXPECT_EQ(a_.ReleaseDelayed(), 3u);
  EXPECT_EQ(Drain(), (Strings{"0", "1", "2"}));
  EXPECT_EQ(a_.ReleaseDelayed(), 0u);
}

TEST_F(FaultyTransportTest, DelayedMessageIsReleasedAfterNLaterSends) {
  a_.set_faults({.delay_probability = 1.0, .delay_release_after_sends = 2});
  SendNumbered(0, 1);
  a_.set_faults({});
  SendNumbered(1, 1);
  EXPECT_EQ(Drain(), Strings{"1"});
  SendNumbered(2, 1);  // Second later send: "0" follows it.
  EXPECT_EQ(Drain(), (Strings{"2", "0"}));
}

TEST_F(FaultyTransportTest, ReorderSwapsAMessageWithTheNextOne) {
  a_.set_faults({.reorder_probability = 1.0});
  SendNumbered(0, 4);
  EXPECT_EQ(Drain(), (Strings{"1", "0", "3", "2"}));
  EXPECT_EQ(a_.counters().reordered, 2u);
  SendNumbered(4, 1);  // Held until a next message or ReleaseDelayed().
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(a_.ReleaseDelayed(), 1u);
  EXPECT_EQ(Drain(), Strings{"4"});
}

TEST_F(FaultyTransportTest, ShutdownDiscardsHeldMessages) {
  a_.set_faults({.delay_probability = 1.0});
  SendNumbered(0, 2);
  a_.Shutdown();
  EXPECT_EQ(a_.ReleaseDelayed(), 0u);
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(a_.Receive(In(kShort)).status().code(), StatusCode::kCancelled);
}

TEST_F(FaultyTransportTest, SendErrorsOfTheBaseAreReturned) {
  EXPECT_EQ(a_.Send(MakeMessage(kNodeA, kNodeC, {"x"})).code(), StatusCode::kUnavailable);
  EXPECT_EQ(a_.faults().drop_probability, 0.0);
}

}  // namespace
}  // namespace tessera::testing
