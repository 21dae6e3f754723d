// Round trips and rejections of the privacy messages (`tessera forget`).
#include <gtest/gtest.h>

#include <vector>

#include "tests/protocols/codec_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::protocol {
namespace {

using testing::MakeHeader;

TEST(CodecForgetTest, ForgetRequestRoundTrips) {
  const std::vector<Key> keys = {1, 0xffffffffffffffffULL, 42};
  ASSERT_OK_AND_ASSIGN(DecodedMessage m, DecodedMessage::Decode(EncodeForgetRequest(
                                             MakeHeader(), 3, keys, "tcp://10.0.0.1:7000")));
  EXPECT_EQ(m.type(), MessageType::kForgetRequest);
  EXPECT_EQ(MessageTypeName(m.type()), "ForgetRequest");
  ASSERT_OK_AND_ASSIGN(ForgetView view, m.AsForgetRequest());
  EXPECT_EQ(view.table, 3u);
  EXPECT_EQ(std::vector<Key>(view.keys.begin(), view.keys.end()), keys);
  EXPECT_EQ(view.reply_endpoint, "tcp://10.0.0.1:7000");
  EXPECT_EQ(m.AsForgetReply().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.AsPull().status().code(), StatusCode::kInvalidArgument);
  // No keys and no endpoint (scheduler -> server) is fine.
  ASSERT_OK_AND_ASSIGN(DecodedMessage empty,
                       DecodedMessage::Decode(EncodeForgetRequest(MakeHeader(), 0, {}, "")));
  ASSERT_OK_AND_ASSIGN(ForgetView none, empty.AsForgetRequest());
  EXPECT_TRUE(none.keys.empty());
  EXPECT_EQ(none.reply_endpoint, "");
}

TEST(CodecForgetTest, ForgetReplyCarriesEachServersResult) {
  ForgetReplyInfo info;
  info.requested = 5;
  info.results.push_back({0, 2, 3, OkStatus()});
  info.results.push_back({1, 0, 2, UnavailableError("server/1: gone")});
  ASSERT_OK_AND_ASSIGN(DecodedMessage m,
                       DecodedMessage::Decode(EncodeForgetReply(MakeHeader(), info)));
  EXPECT_EQ(m.type(), MessageType::kForgetReply);
  ASSERT_OK_AND_ASSIGN(ForgetReplyInfo back, m.AsForgetReply());
  EXPECT_EQ(back.requested, 5u);
  ASSERT_EQ(back.results.size(), 2u);
  EXPECT_EQ(back.results[0].server, 0);
  EXPECT_EQ(back.results[0].erased, 2u);
  EXPECT_EQ(back.results[0].owned, 3u);
  EXPECT_OK(back.results[0].status);
  EXPECT_EQ(back.results[1].status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(back.results[1].status.message(), "server/1: gone");
  EXPECT_EQ(m.AsForgetRequest().status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::protocol
