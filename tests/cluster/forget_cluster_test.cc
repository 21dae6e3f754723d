// `tessera forget` on a running cluster (scheduler, 2 servers, a worker in
// one process): the client's request reaches every server through the
// scheduler, each confirms what it erased, erased rows read back as never
// trained (the initializer's value) and other rows are untouched. Over the
// in-process transport and over real ZeroMQ on loopback.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "tests/testing/in_proc_cluster.h"
#include "tests/testing/status_matchers.h"
#include "tools/cli/forget_command.h"

namespace tessera {
namespace {

using testing::ClusterTransport;
using testing::InProcCluster;
using testing::InProcClusterOptions;

constexpr auto kWait = std::chrono::seconds(20);
constexpr TableId kEmb = 0;
constexpr uint32_t kDim = 4;

class ForgetClusterTest : public ::testing::TestWithParam<ClusterTransport> {
 protected:
  InProcClusterOptions Options() {
    TableConfig emb;
    emb.id = kEmb;
    emb.name = "user_id";
    emb.dim = kDim;
    emb.optimizer.type = OptimizerType::kSgd;
    emb.optimizer.learning_rate = 1.0f;
    emb.initializer = {InitializerType::kUniform, 0.5f, 42};
    InProcClusterOptions o;
    o.num_servers = 2;
    o.num_workers = 1;
    o.tables = {emb};
    o.transport = GetParam();
    return o;
  }

  std::vector<float> Pull(InProcCluster& c, const std::vector<Key>& keys) {
    std::vector<float> out(keys.size() * kDim);
    StatusOr<worker::KvClient::Ticket> t = c.worker(0).kv().Pull(kEmb, keys, out);
    EXPECT_OK(t);
    if (t.ok()) EXPECT_OK(c.worker(0).kv().Wait(*t, DeadlineIn(kWait)));
    return out;
  }

  void Push(InProcCluster& c, const std::vector<Key>& keys) {
    std::vector<float> grads(keys.size() * kDim, 0.25f);
    StatusOr<worker::KvClient::Ticket> t = c.worker(0).kv().Push(kEmb, keys, grads);
    ASSERT_OK(t);
    ASSERT_OK(c.worker(0).kv().Wait(*t, DeadlineIn(kWait)));
  }

  cli::ForgetClientOptions Client(InProcCluster& c, const InProcClusterOptions& o) {
    cli::ForgetClientOptions client;
    client.scheduler = c.scheduler_endpoint();
    client.token = o.token;
    client.bind = GetParam() == ClusterTransport::kInProc ? "mem://" : "tcp://127.0.0.1:0";
    client.timeout = std::chrono::seconds(20);
    return client;
  }

  SimulatedClock clock_;
};

TEST_P(ForgetClusterTest, EveryServerErasesAndConfirms) {
  const InProcClusterOptions o = Options();
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  std::vector<Key> keys;
  for (Key k = 1; k <= 40; ++k) keys.push_back(k * 0x9E3779B97F4A7C15ULL);
  const std::vector<float> initial = Pull(c, keys);  // rows created, initial values
  Push(c, keys);
  const std::vector<float> trained = Pull(c, keys);
  ASSERT_NE(trained, initial);

  // Forget the first 10 keys, and one key no server holds.
  std::vector<Key> forget(keys.begin(), keys.begin() + 10);
  forget.push_back(12345);
  std::unique_ptr<Transport> transport = c.NewTransport();
  ASSERT_OK_AND_ASSIGN(protocol::ForgetReplyInfo reply,
                       cli::SendForget(transport.get(), Client(c, o), kEmb, forget));
  EXPECT_EQ(reply.requested, forget.size());
  ASSERT_EQ(reply.results.size(), 2u);
  uint64_t erased = 0, owned = 0;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(reply.results[i].server, i);
    EXPECT_OK(reply.results[i].status);
    EXPECT_LE(reply.results[i].erased, reply.results[i].owned);
    erased += reply.results[i].erased;
    owned += reply.results[i].owned;
  }
  EXPECT_EQ(erased, 10u);
  EXPECT_EQ(owned, forget.size());  // each key is in exactly one server's shards
  // Each server counts what it erased.
  for (int i = 0; i < 2; ++i) {
    const std::string text = c.server_metrics(i).SerializeText();
    std::string series = "tessera_server_forgotten_rows_total ";
    series.append(std::to_string(reply.results[i].erased));
    EXPECT_NE(text.find(series), std::string::npos) << text;
  }
  EXPECT_EQ(c.server(0).tables().Find(kEmb)->sparse->num_rows() +
                c.server(1).tables().Find(kEmb)->sparse->num_rows(),
            30u);

  // Forgotten rows read back as never trained; the others keep their values.
  const std::vector<float> after = Pull(c, keys);
  for (size_t i = 0; i < keys.size() * kDim; ++i) {
    EXPECT_FLOAT_EQ(after[i], i < 10 * kDim ? initial[i] : trained[i]) << "element " << i;
  }

  // Forgetting again is harmless: nothing left to erase. (SendForget shut
  // the first transport down.)
  std::unique_ptr<Transport> second = c.NewTransport();
  ASSERT_OK_AND_ASSIGN(protocol::ForgetReplyInfo again,
                       cli::SendForget(second.get(), Client(c, o), kEmb, forget));
  ASSERT_EQ(again.results.size(), 2u);
  EXPECT_EQ(again.results[0].erased + again.results[1].erased, 0u);
}

// With replication 2 every key has a backup copy on the other server: both
// copies go, so a later promotion cannot bring a forgotten row back.
TEST_P(ForgetClusterTest, WithReplicationTheBackupCopiesGoToo) {
  InProcClusterOptions o = Options();
  o.replication = 2;
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  std::vector<Key> keys;
  for (Key k = 1; k <= 20; ++k) keys.push_back(k * 0x9E3779B97F4A7C15ULL);
  Push(c, keys);  // acknowledged once the backups have the rows
  std::unique_ptr<Transport> transport = c.NewTransport();
  ASSERT_OK_AND_ASSIGN(protocol::ForgetReplyInfo reply,
                       cli::SendForget(transport.get(), Client(c, o), kEmb, keys));
  ASSERT_EQ(reply.results.size(), 2u);
  EXPECT_OK(reply.results[0].status);
  EXPECT_OK(reply.results[1].status);
  EXPECT_EQ(reply.results[0].erased + reply.results[1].erased, 2 * keys.size());
  EXPECT_EQ(reply.results[0].owned + reply.results[1].owned, keys.size());
  EXPECT_EQ(c.server(0).tables().Find(kEmb)->sparse->num_rows() +
                c.server(1).tables().Find(kEmb)->sparse->num_rows(),
            0u);
}

TEST_P(ForgetClusterTest, AnUnknownTableIsNotConfirmed) {
  const InProcClusterOptions o = Options();
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  std::unique_ptr<Transport> transport = c.NewTransport();
  ASSERT_OK_AND_ASSIGN(protocol::ForgetReplyInfo reply,
                       cli::SendForget(transport.get(), Client(c, o), 99, {1, 2}));
  ASSERT_EQ(reply.results.size(), 2u);
  for (const protocol::ForgetResult& r : reply.results) {
    EXPECT_EQ(r.status.code(), StatusCode::kNotFound) << r.status;
  }
}

TEST_P(ForgetClusterTest, AWrongTokenGetsNoAnswer) {
  InProcClusterOptions o = Options();
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  std::unique_ptr<Transport> transport = c.NewTransport();
  cli::ForgetClientOptions client = Client(c, o);
  client.token = "not-the-token";
  client.timeout = std::chrono::milliseconds(300);
  EXPECT_EQ(cli::SendForget(transport.get(), client, kEmb, {1}).status().code(),
            StatusCode::kDeadlineExceeded);
}

INSTANTIATE_TEST_SUITE_P(Transports, ForgetClusterTest,
                         ::testing::Values(ClusterTransport::kInProc, ClusterTransport::kZmqTcp));

}  // namespace
}  // namespace tessera
