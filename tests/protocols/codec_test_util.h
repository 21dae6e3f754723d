// Sample messages and a raw envelope builder shared by codec_test and
// codec_fuzz_test. Craft() uses the generated FlatBuffers API directly so
// tests can build buffers the codec's encoders never would (other versions,
// missing fields, out-of-range enums).
#ifndef TESSERA_TESTS_PROTOCOLS_CODEC_TEST_UTIL_H_
#define TESSERA_TESTS_PROTOCOLS_CODEC_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/sharding.h"
#include "common/table_config.h"
#include "common/transport.h"
#include "flatbuffers/flatbuffers.h"
#include "protocols/codec.h"
#include "protocols/tessera_generated.h"

namespace tessera::protocol::testing {

inline Header MakeHeader(uint64_t request_id = 42) {
  Header h;
  h.request_id = request_id;
  h.sender = NodeId{Role::kWorker, 3};
  h.token = "cluster-secret";
  return h;
}

// A valid table config with every field away from its default.
inline TableConfig MakeTable(TableId id, OptimizerType optimizer, InitializerType initializer,
                             TableKind kind = TableKind::kSparse) {
  TableConfig t;
  t.id = id;
  t.name = "table_" + std::to_string(id);
  t.kind = kind;
  t.dim = 16 + id;
  t.size = kind == TableKind::kDense ? 1000 + id : 0;
  t.optimizer.type = optimizer;
  t.optimizer.learning_rate = 0.05f + static_cast<float>(id);
  t.optimizer.beta1 = 0.8f;
  t.optimizer.beta2 = 0.99f;
  t.optimizer.epsilon = 1e-6f;
  t.optimizer.initial_accumulator = 0.2f;
  t.optimizer.ftrl_beta = 0.5f;
  t.optimizer.l1 = 0.001f;
  t.optimizer.l2 = 0.002f;
  t.initializer.type = initializer;
  t.initializer.scale = 0.03f;
  t.initializer.seed = 0xfeedface00000000ull + id;
  t.admission.min_count = 3;
  t.eviction.ttl_s = 3600;
  t.eviction.max_rows = 1ull << 40;
  return t;
}

// One table per optimizer type crossed with every initializer type, plus a
// dense table.
inline std::vector<TableConfig> AllKindsOfTables() {
  std::vector<TableConfig> tables;
  TableId id = 0;
  for (OptimizerType o :
       {OptimizerType::kSgd, OptimizerType::kAdagrad, OptimizerType::kAdam, OptimizerType::kFtrl}) {
    for (InitializerType i :
         {InitializerType::kZeros, InitializerType::kUniform, InitializerType::kNormal}) {
      tables.push_back(MakeTable(id++, o, i));
    }
  }
  tables.push_back(
      MakeTable(id++, OptimizerType::kAdam, InitializerType::kNormal, TableKind::kDense));
  tables[1].admission = {.min_count = 4, .unadmitted_zeros = true};
  tables[1].eviction = {.ttl_s = 60, .max_rows = 1000};
  return tables;
}

inline NodeInfo MakeNode(Role role, int32_t rank) {
  NodeInfo n;
  n.id = NodeId{role, rank};
  n.endpoint = "tcp://10.0.0." + std::to_string(rank + 1) + ":4123" + std::to_string(rank);
  n.metrics_port = 9100 + rank;
  n.pid = 100000 + rank;
  n.host = "host-" + std::to_string(rank);
  return n;
}

// Three servers owning slots unevenly, two workers, every table kind.
inline ClusterView MakeClusterView() {
  ClusterView view;
  view.epoch = 7;
  view.shard_map = ShardMap({2, 0, 0, 1, 2, 2, 2, 1, 0, 1, 1, 2, 0}, 3);
  for (int32_t r = 0; r < 3; ++r) view.servers.push_back(MakeNode(Role::kServer, r));
  for (int32_t r = 0; r < 2; ++r) view.workers.push_back(MakeNode(Role::kWorker, r));
  view.tables = AllKindsOfTables();
  view.heartbeat_interval_ms = 250;
  return view;
}

inline const std::vector<Key>& SampleKeys() {
  static const std::vector<Key> keys = {0, 1, 42, 0x8000000000000000ull,
                                        std::numeric_limits<Key>::max()};
  return keys;
}

// Fields of a hand-built envelope; defaults give a valid Heartbeat request.
struct CraftOptions {
  uint16_t version = kProtocolVersion;
  bool with_sender = true;
  uint8_t sender_role = static_cast<uint8_t>(Role::kWorker);
  int32_t sender_rank = 1;
  bool is_reply = false;
  int32_t status_code = 0;
  std::string status_message;
  std::string token = "cluster-secret";
  uint64_t request_id = 9;
};

using BodyBuilder = std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>;

// An envelope with body tag `body_type` (any byte) and the body made by
// `body` (null: no body).
inline Frame Craft(uint8_t body_type, const BodyBuilder& body, const CraftOptions& o = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  const flatbuffers::Offset<void> body_offset = body ? body(fbb) : flatbuffers::Offset<void>();
  const auto token = fbb.CreateString(o.token);
  const auto message = o.status_message.empty() ? flatbuffers::Offset<flatbuffers::String>()
                                                : fbb.CreateString(o.status_message);
  const wire::NodeIdW sender(static_cast<wire::Role>(o.sender_role), o.sender_rank);
  const auto root = wire::CreateEnvelope(fbb, o.version, o.request_id, o.is_reply,
                                         o.with_sender ? &sender : nullptr, token, o.status_code,
                                         message, static_cast<wire::Body>(body_type), body_offset);
  wire::FinishEnvelopeBuffer(fbb, root);
  return Frame::Copy(fbb.GetBufferPointer(), fbb.GetSize());
}

inline Frame Craft(wire::Body body_type, const BodyBuilder& body, const CraftOptions& o = {}) {
  return Craft(static_cast<uint8_t>(body_type), body, o);
}

inline BodyBuilder HeartbeatBody() {
  return [](flatbuffers::FlatBufferBuilder& fbb) { return wire::CreateHeartbeat(fbb).Union(); };
}

// One valid frame of every message type (and an error reply).
inline std::vector<std::pair<std::string, Frame>> SampleFrames() {
  const Header h = MakeHeader();
  const std::vector<float> grads = {0.5f,  -1.5f,   2.25f, 0.0f, -0.0f,
                                    1e30f, -1e-30f, 3.0f,  4.0f, 5.0f};
  RegisterRequest reg{Role::kServer, 2, "tcp://127.0.0.1:5555", 9100, 4242, "node-a"};
  std::vector<std::pair<std::string, Frame>> frames;
  frames.emplace_back("RegisterRequest", EncodeRegisterRequest(h, reg));
  frames.emplace_back("RegisterReply",
                      EncodeRegisterReply(ReplyHeader(h, kSchedulerId, "t"), {Role::kServer, 2}));
  frames.emplace_back("ClusterView", EncodeClusterView(h, MakeClusterView()));
  const std::vector<TableConfig> two_tables = {
      MakeTable(1, OptimizerType::kAdagrad, InitializerType::kUniform),
      MakeTable(2, OptimizerType::kFtrl, InitializerType::kNormal, TableKind::kDense)};
  frames.emplace_back("ConfigureTables", EncodeConfigureTables(h, two_tables));
  frames.emplace_back("Heartbeat", EncodeHeartbeat(h));
  frames.emplace_back("BarrierRequest", EncodeBarrierRequest(h, BarrierGroup::kAll));
  frames.emplace_back("ShutdownRequest", EncodeShutdownRequest(h, "job finished"));
  frames.emplace_back("Ack", EncodeAck(ReplyHeader(h, kSchedulerId, "t")));
  frames.emplace_back("ErrorReply",
                      EncodeAck(ReplyHeader(h, kSchedulerId, "t", NotFoundError("no table 7"))));
  frames.emplace_back("Pull", EncodePull(h, 3, SampleKeys()));
  frames.emplace_back("Push", EncodePush(h, 3, std::span<const Key>(SampleKeys()).first(5),
                                         std::span<const float>(grads)));
  frames.emplace_back("PushPull",
                      EncodePushPull(h, 4, 2, 4, [](std::span<Key> k, std::span<float> g) {
                        k[0] = 7;
                        k[1] = 9;
                        for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(i);
                      }));
  frames.emplace_back("ValuesReply", EncodeValuesReply(ReplyHeader(h, {Role::kServer, 0}, "t"),
                                                       std::span<const float>(grads)));
  frames.emplace_back("DensePull", EncodeDensePull(h, 5, 100, 50));
  frames.emplace_back("DensePush", EncodeDensePush(h, 5, 100, std::span<const float>(grads)));
  return frames;
}

}  // namespace tessera::protocol::testing

#endif  // TESSERA_TESTS_PROTOCOLS_CODEC_TEST_UTIL_H_
