#include "scheduler/membership.h"

#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace tessera::scheduler {
namespace {

protocol::RegisterRequest Req(Role role, int32_t rank, const std::string& endpoint) {
  protocol::RegisterRequest r;
  r.role = role;
  r.requested_rank = rank;
  r.endpoint = endpoint;
  return r;
}

TEST(MembershipTest, AssignsLowestFreeRankAndHonoursRequests) {
  Membership m(2, 2);
  ASSERT_OK_AND_ASSIGN(NodeId s1, m.Register(Req(Role::kServer, 1, "tcp://a:1")));
  EXPECT_EQ(s1, (NodeId{Role::kServer, 1}));
  ASSERT_OK_AND_ASSIGN(NodeId s0, m.Register(Req(Role::kServer, kUnassignedRank, "tcp://a:2")));
  EXPECT_EQ(s0, (NodeId{Role::kServer, 0}));
  EXPECT_FALSE(m.complete());
  ASSERT_OK(m.Register(Req(Role::kWorker, kUnassignedRank, "tcp://b:1")));
  ASSERT_OK(m.Register(Req(Role::kWorker, kUnassignedRank, "tcp://b:2")));
  EXPECT_TRUE(m.complete());
  EXPECT_EQ(m.nodes(Role::kServer)[0].endpoint, "tcp://a:2");
  EXPECT_EQ(m.all().size(), 4u);
}

TEST(MembershipTest, RetryFromSameEndpointGetsSameId) {
  Membership m(1, 1);
  ASSERT_OK_AND_ASSIGN(NodeId first, m.Register(Req(Role::kWorker, kUnassignedRank, "tcp://w:1")));
  ASSERT_OK_AND_ASSIGN(NodeId again, m.Register(Req(Role::kWorker, kUnassignedRank, "tcp://w:1")));
  EXPECT_EQ(first, again);
  EXPECT_EQ(m.registered(Role::kWorker), 1);
}

TEST(MembershipTest, RefusesBadRequests) {
  Membership m(1, 1);
  EXPECT_EQ(m.Register(Req(Role::kServer, 5, "tcp://a:1")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m.Register(Req(Role::kScheduler, 0, "tcp://a:1")).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_OK(m.Register(Req(Role::kServer, 0, "tcp://a:1")));
  EXPECT_EQ(m.Register(Req(Role::kServer, 0, "tcp://a:2")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(m.Register(Req(Role::kServer, kUnassignedRank, "tcp://a:3")).status().code(),
            StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace tessera::scheduler
