// The only code that builds or verifies wire buffers. Every received buffer
// passes the FlatBuffers verifier (plus identifier, version and body checks)
// in DecodedMessage::Decode() before any field is read.
//
// Encoding returns one Frame holding a finished FlatBuffer; data-plane
// encoders take "fill" callbacks so keys and values are written straight into
// the buffer (one copy from the caller's memory, none after). Decoded data
// views point into the received Frame and stay valid while it lives.
//
// Example (server side):
//   TESSERA_ASSIGN_OR_RETURN(DecodedMessage msg, DecodedMessage::Decode(frame));
//   if (msg.type() == MessageType::kPullRequest) {
//     TESSERA_ASSIGN_OR_RETURN(PullView pull, msg.AsPull());
//     Frame reply = EncodeValuesReply(ReplyHeader(msg.header(), self, token),
//                                     pull.keys.size() * dim,
//                                     [&](std::span<float> out) { table.Pull(pull.keys, out); });
//   }
#ifndef TESSERA_PROTOCOLS_CODEC_H_
#define TESSERA_PROTOCOLS_CODEC_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "common/sharding.h"
#include "common/status.h"
#include "common/table_config.h"
#include "common/transport.h"
#include "common/types.h"

namespace tessera::wire {
struct Envelope;
}  // namespace tessera::wire

namespace tessera::protocol {

// Bumped on any incompatible schema change; peers with another version are
// refused (see protocols/README.md).
inline constexpr uint16_t kProtocolVersion = 2;

enum class MessageType : uint8_t {
  kNone = 0,
  kRegisterRequest,
  kRegisterReply,
  kClusterView,
  kConfigureTables,
  kHeartbeat,
  kBarrierRequest,
  kShutdownRequest,
  kAck,
  kPullRequest,
  kPushRequest,
  kPushPullRequest,
  kValuesReply,
  kDensePullRequest,
  kDensePushRequest,
  kDataRequest,
  kDataChunkReply,
  kClockRequest,
  kClockReply,
  kSaveRequest,
  kSnapshotRequest,
  kSnapshotFlushRequest,
  kRestoreRequest,
  kReplicateRequest,
  kForgetRequest,
  kForgetReply,
  kReplicaSyncRequest,
};
std::string_view MessageTypeName(MessageType type);

// Fields every message carries.
struct Header {
  uint64_t request_id = 0;
  bool is_reply = false;
  NodeId sender;
  std::string token;
  Status status;  // replies only; OK otherwise
};

// The header of a reply to `request` sent by `self`.
Header ReplyHeader(const Header& request, NodeId self, std::string_view token,
                   Status status = OkStatus());

struct NodeInfo {
  NodeId id;
  std::string endpoint;
  int32_t metrics_port = 0;
  int64_t pid = 0;
  std::string host;
  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

struct RegisterRequest {
  Role role = Role::kWorker;
  int32_t requested_rank = kUnassignedRank;
  std::string endpoint;
  int32_t metrics_port = 0;
  int64_t pid = 0;
  std::string host;
  friend bool operator==(const RegisterRequest&, const RegisterRequest&) = default;
};

struct ClusterView {
  uint64_t epoch = 0;
  ShardMap shard_map;
  std::vector<NodeInfo> servers;  // index = server rank
  std::vector<NodeInfo> workers;  // index = worker rank
  std::vector<TableConfig> tables;
  uint32_t heartbeat_interval_ms = 0;
  // Data-plane requests unanswered this long are sent again; 0: never.
  uint32_t request_timeout_ms = 0;
  uint32_t replication = 1;            // copies of every shard (1: no backups)
  std::vector<int32_t> dead_servers;   // ranks declared dead, ascending
  // A replacement server taking slots over (tessera.fbs); -1: none.
  int32_t handoff_from = -1;
  int32_t handoff_to = -1;
  // The live servers' ranks: a server is live unless listed in dead_servers.
  std::vector<bool> LiveServers() const;
};

// A node's figures in its heartbeat (tessera.fbs NodeStatsW), for the
// scheduler's status document. Counters are cumulative.
struct NodeStats {
  bool has_server_stats = false;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  uint64_t keys_total = 0;
  uint64_t replica_sync_epoch = 0;  // tessera.fbs NodeStatsW
  bool has_worker_stats = false;
  uint64_t examples_total = 0;
  uint64_t steps_total = 0;
  uint64_t staleness = 0;
  friend bool operator==(const NodeStats&, const NodeStats&) = default;
};

enum class BarrierGroup : uint8_t { kWorkers = 0, kAll = 1 };

struct PullView {
  TableId table = 0;
  std::span<const Key> keys;
};
struct PushView {  // also PushPull
  TableId table = 0;
  std::span<const Key> keys;
  std::span<const float> grads;
  uint64_t op_id = 0;  // 0: none
};
struct DensePullView {
  TableId table = 0;
  uint64_t begin = 0;
  uint64_t count = 0;
};
struct DensePushView {
  TableId table = 0;
  uint64_t begin = 0;
  std::span<const float> grads;
  uint64_t op_id = 0;  // 0: none
};
// Replication (primary -> backup). Owning form, for encoding.
struct ReplicaRows {
  TableId table = 0;
  std::vector<std::byte> records;  // EmbeddingTable::Captured layout
  std::vector<Key> deleted;
};
struct ReplicaDense {
  TableId table = 0;
  uint64_t begin = 0;
  uint64_t end = 0;
  uint32_t step = 0;
  std::vector<float> values;  // end - begin
  std::vector<float> state;   // k * (end - begin), planar
};
struct ReplicateBatch {
  uint64_t epoch = 0;
  bool reset = false;     // part of a full copy (tessera.fbs)
  uint64_t batch_id = 0;  // grows with every batch of a primary within an epoch
  std::vector<ReplicaRows> rows;
  std::vector<ReplicaDense> dense;
  std::vector<uint64_t> op_ids;
  bool captured = false;  // tombstones tracked; a capture point (tessera.fbs)
  size_t payload_bytes() const;
};
// Decoded form: spans into the received frame.
struct ReplicaRowsView {
  TableId table = 0;
  std::span<const std::byte> records;
  std::span<const Key> deleted;
};
struct ReplicaDenseView {
  TableId table = 0;
  uint64_t begin = 0;
  uint64_t end = 0;
  uint32_t step = 0;
  std::span<const float> values;
  std::span<const float> state;
};
struct ReplicateView {
  uint64_t epoch = 0;
  bool reset = false;
  uint64_t batch_id = 0;
  std::vector<ReplicaRowsView> rows;
  std::vector<ReplicaDenseView> dense;
  std::span<const uint64_t> op_ids;
  bool captured = false;
};

// Training coordination.
struct DataChunkInfo {
  bool done = false;  // nothing left for this worker
  uint64_t id = 0;
  uint32_t epoch = 0;
  std::string path;
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t chunks_total = 0;
  uint64_t chunks_completed = 0;
  bool retry = false;  // nothing available yet (a followed stream): ask again
  friend bool operator==(const DataChunkInfo&, const DataChunkInfo&) = default;
};
// A worker's trained data position: every chunk handed to it before `chunk`
// is trained, and `chunk` up to byte `offset` (exclusive).
struct DataPosition {
  uint64_t chunk = 0;
  uint64_t offset = 0;
  friend bool operator==(const DataPosition&, const DataPosition&) = default;
};
struct ClockInfo {
  uint64_t step = 0;
  bool done = false;
  bool turn = false;  // sync: ask for the turn to push `step`
  std::optional<DataPosition> position;  // after `step` (not with `turn`)
  // Waiting for input with nothing in flight (`step` is the last finished).
  bool idle = false;
};
struct SnapshotInfo {
  uint64_t version = 0;
  std::string dir;
  bool full = false;
  friend bool operator==(const SnapshotInfo&, const SnapshotInfo&) = default;
};
struct RestoreTable {
  TableId table = 0;
  std::vector<std::string> files;  // a full snapshot's, then deltas', in order
  friend bool operator==(const RestoreTable&, const RestoreTable&) = default;
};
struct ClockReplyInfo {
  bool all_done = false;
  uint64_t spread = 0;  // steps between the fastest and slowest running worker
};

// ---- encoding ---------------------------------------------------------------
Frame EncodeRegisterRequest(const Header& header, const RegisterRequest& request);
Frame EncodeRegisterReply(const Header& header, NodeId assigned);
Frame EncodeClusterView(const Header& header, const ClusterView& view);
Frame EncodeConfigureTables(const Header& header, std::span<const TableConfig> tables);
Frame EncodeHeartbeat(const Header& header);
Frame EncodeHeartbeat(const Header& header, const NodeStats& stats);
Frame EncodeBarrierRequest(const Header& header, BarrierGroup group);
Frame EncodeShutdownRequest(const Header& header, std::string_view reason);
// Also the body of error replies (header.status not OK).
Frame EncodeAck(const Header& header);
Frame EncodeDataRequest(const Header& header, std::optional<uint64_t> completed);
Frame EncodeDataChunkReply(const Header& header, const DataChunkInfo& chunk);
Frame EncodeClockRequest(const Header& header, const ClockInfo& clock);
Frame EncodeClockReply(const Header& header, const ClockReplyInfo& reply);
Frame EncodeSaveRequest(const Header& header, std::string_view dir);
Frame EncodeSnapshotRequest(const Header& header, const SnapshotInfo& snapshot);
Frame EncodeSnapshotFlushRequest(const Header& header, uint64_t version);
Frame EncodeRestoreRequest(const Header& header, std::span<const RestoreTable> tables);

using KeysFill = absl::FunctionRef<void(std::span<Key>)>;
using ValuesFill = absl::FunctionRef<void(std::span<float>)>;
using KeysValuesFill = absl::FunctionRef<void(std::span<Key>, std::span<float>)>;

Frame EncodePull(const Header& header, TableId table, size_t num_keys, KeysFill fill);
Frame EncodePull(const Header& header, TableId table, std::span<const Key> keys);
// `fill` gets num_keys keys and num_grads gradient floats to write.
// op_id: see PushRequest in tessera.fbs (0: none).
Frame EncodePush(const Header& header, TableId table, size_t num_keys, size_t num_grads,
                 KeysValuesFill fill, uint64_t op_id = 0);
Frame EncodePush(const Header& header, TableId table, std::span<const Key> keys,
                 std::span<const float> grads, uint64_t op_id = 0);
Frame EncodePushPull(const Header& header, TableId table, size_t num_keys, size_t num_grads,
                     KeysValuesFill fill, uint64_t op_id = 0);
Frame EncodeValuesReply(const Header& header, size_t num_values, ValuesFill fill);
Frame EncodeValuesReply(const Header& header, std::span<const float> values);
Frame EncodeDensePull(const Header& header, TableId table, uint64_t begin, uint64_t count);
Frame EncodeDensePush(const Header& header, TableId table, uint64_t begin,
                      std::span<const float> grads, uint64_t op_id = 0);
Frame EncodeReplicate(const Header& header, const ReplicateBatch& batch);
Frame EncodeReplicaSyncRequest(const Header& header);

// Privacy (`tessera forget`, protocols/codec_forget.cc). A forget client is
// no cluster member: it sends as {Role::kWorker, rank} with a random rank of
// at least kForgetClientMinRank (never a member's rank), so the scheduler's
// reply route to it can never replace a member's or another client's.
inline constexpr int32_t kForgetClientMinRank = int32_t{1} << 24;
struct ForgetView {
  TableId table = 0;
  std::span<const Key> keys;   // points into the received frame
  std::string reply_endpoint;  // client -> scheduler only
};
// One server's confirmation.
struct ForgetResult {
  int32_t server = 0;  // rank
  uint64_t erased = 0;
  uint64_t owned = 0;
  Status status;  // OK: the server erased the keys
};
struct ForgetReplyInfo {
  uint64_t requested = 0;
  std::vector<ForgetResult> results;
};
Frame EncodeForgetRequest(const Header& header, TableId table, std::span<const Key> keys,
                          std::string_view reply_endpoint);
Frame EncodeForgetReply(const Header& header, const ForgetReplyInfo& reply);

// ---- decoding ---------------------------------------------------------------

// A verified message. Cheap to move; holds the Frame it points into.
class DecodedMessage {
 public:
  // Verifies the buffer (FlatBuffers verifier, file identifier, protocol
  // version, a body present unless this is an error reply) and reads the
  // header. InvalidArgument for malformed input, FailedPrecondition for a
  // version mismatch. Never crashes on hostile input.
  static StatusOr<DecodedMessage> Decode(Frame frame);

  MessageType type() const { return type_; }
  const Header& header() const { return header_; }
  const Frame& frame() const { return frame_; }

  // Each accessor checks type() and semantic validity (e.g. table configs
  // pass ValidateTableConfig, slot owners index existing servers, NodeIds are
  // in range) and returns InvalidArgument otherwise.
  StatusOr<RegisterRequest> AsRegisterRequest() const;
  StatusOr<NodeId> AsRegisterReply() const;
  StatusOr<ClusterView> AsClusterView() const;
  StatusOr<std::vector<TableConfig>> AsConfigureTables() const;
  // The stats a heartbeat carries; nullopt when it carries none.
  StatusOr<std::optional<NodeStats>> AsHeartbeat() const;
  StatusOr<BarrierGroup> AsBarrierRequest() const;
  StatusOr<std::string> AsShutdownRequest() const;
  StatusOr<PullView> AsPull() const;
  StatusOr<PushView> AsPush() const;      // kPushRequest
  StatusOr<PushView> AsPushPull() const;  // kPushPullRequest
  StatusOr<std::span<const float>> AsValuesReply() const;
  StatusOr<DensePullView> AsDensePull() const;
  StatusOr<DensePushView> AsDensePush() const;
  StatusOr<std::optional<uint64_t>> AsDataRequest() const;
  StatusOr<DataChunkInfo> AsDataChunkReply() const;
  StatusOr<ClockInfo> AsClockRequest() const;
  StatusOr<ClockReplyInfo> AsClockReply() const;
  StatusOr<std::string> AsSaveRequest() const;
  StatusOr<SnapshotInfo> AsSnapshotRequest() const;
  StatusOr<uint64_t> AsSnapshotFlushRequest() const;
  StatusOr<std::vector<RestoreTable>> AsRestoreRequest() const;
  StatusOr<ReplicateView> AsReplicate() const;
  StatusOr<ForgetView> AsForgetRequest() const;
  StatusOr<ForgetReplyInfo> AsForgetReply() const;

 private:
  DecodedMessage() = default;
  Frame frame_;
  const wire::Envelope* envelope_ = nullptr;
  MessageType type_ = MessageType::kNone;
  Header header_;
};

}  // namespace tessera::protocol

#endif  // TESSERA_PROTOCOLS_CODEC_H_
