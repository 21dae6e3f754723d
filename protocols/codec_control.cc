// Control messages: registration, cluster view, table configuration,
// heartbeat, barrier, shutdown, ack. Encoders write whatever they are given;
// the As*() accessors check the semantics of what arrived.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "flatbuffers/flatbuffers.h"
#include "protocols/codec.h"
#include "protocols/codec_internal.h"
#include "protocols/tessera_generated.h"

namespace tessera::protocol {
namespace {

using internal::FinishEnvelope;
using internal::InitialBuilderSize;
using internal::NodeIdToWire;
using FbString = flatbuffers::Offset<flatbuffers::String>;
using WireTables = flatbuffers::Vector<flatbuffers::Offset<wire::TableConfigW>>;
using WireNodes = flatbuffers::Vector<flatbuffers::Offset<wire::NodeInfoW>>;

// Our enums mirror the generated ones value for value; converting is a cast.
#define TESSERA_SAME_ENUM_(ours, theirs) \
  static_assert(static_cast<uint8_t>(ours) == static_cast<uint8_t>(theirs))
TESSERA_SAME_ENUM_(OptimizerType::kSgd, wire::OptimizerType::Sgd);
TESSERA_SAME_ENUM_(OptimizerType::kAdagrad, wire::OptimizerType::Adagrad);
TESSERA_SAME_ENUM_(OptimizerType::kAdam, wire::OptimizerType::Adam);
TESSERA_SAME_ENUM_(OptimizerType::kFtrl, wire::OptimizerType::Ftrl);
TESSERA_SAME_ENUM_(InitializerType::kZeros, wire::InitializerType::Zeros);
TESSERA_SAME_ENUM_(InitializerType::kUniform, wire::InitializerType::Uniform);
TESSERA_SAME_ENUM_(InitializerType::kNormal, wire::InitializerType::Normal);
TESSERA_SAME_ENUM_(TableKind::kSparse, wire::TableKind::Sparse);
TESSERA_SAME_ENUM_(TableKind::kDense, wire::TableKind::Dense);
TESSERA_SAME_ENUM_(BarrierGroup::kWorkers, wire::BarrierGroup::Workers);
TESSERA_SAME_ENUM_(BarrierGroup::kAll, wire::BarrierGroup::All);
#undef TESSERA_SAME_ENUM_

// ---- encoding helpers ---------------------------------------------------------

FbString StringOrNull(flatbuffers::FlatBufferBuilder& fbb, std::string_view s) {
  return s.empty() ? FbString() : fbb.CreateString(s.data(), s.size());
}

flatbuffers::Offset<wire::TableConfigW> TableConfigToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                          const TableConfig& c) {
  const FbString name = StringOrNull(fbb, c.name);
  const OptimizerConfig& o = c.optimizer;
  const auto optimizer = wire::CreateOptimizerConfigW(
      fbb, static_cast<wire::OptimizerType>(o.type), o.learning_rate, o.beta1, o.beta2, o.epsilon,
      o.initial_accumulator, o.ftrl_beta, o.l1, o.l2);
  const auto initializer =
      wire::CreateInitializerConfigW(fbb, static_cast<wire::InitializerType>(c.initializer.type),
                                     c.initializer.scale, c.initializer.seed);
  const auto admission =
      wire::CreateAdmissionConfigW(fbb, c.admission.min_count, c.admission.unadmitted_zeros);
  const auto eviction = wire::CreateEvictionConfigW(fbb, c.eviction.ttl_s, c.eviction.max_rows);
  return wire::CreateTableConfigW(fbb, c.id, name, static_cast<wire::TableKind>(c.kind), c.dim,
                                  c.size, optimizer, initializer, admission, eviction);
}

flatbuffers::Offset<WireTables> TablesToWire(flatbuffers::FlatBufferBuilder& fbb,
                                             std::span<const TableConfig> tables) {
  std::vector<flatbuffers::Offset<wire::TableConfigW>> offsets;
  offsets.reserve(tables.size());
  for (const TableConfig& t : tables) offsets.push_back(TableConfigToWire(fbb, t));
  return fbb.CreateVector(offsets);
}

flatbuffers::Offset<WireNodes> NodesToWire(flatbuffers::FlatBufferBuilder& fbb,
                                           const std::vector<NodeInfo>& nodes) {
  std::vector<flatbuffers::Offset<wire::NodeInfoW>> offsets;
  offsets.reserve(nodes.size());
  for (const NodeInfo& n : nodes) {
    const FbString endpoint = StringOrNull(fbb, n.endpoint);
    const FbString host = StringOrNull(fbb, n.host);
    const wire::NodeIdW id = NodeIdToWire(n.id);
    offsets.push_back(wire::CreateNodeInfoW(fbb, &id, endpoint, n.metrics_port, n.pid, host));
  }
  return fbb.CreateVector(offsets);
}

size_t TablesBytes(std::span<const TableConfig> tables) {
  size_t bytes = 0;
  for (const TableConfig& t : tables) bytes += 200 + t.name.size();
  return bytes;
}

size_t NodesBytes(const std::vector<NodeInfo>& nodes) {
  size_t bytes = 0;
  for (const NodeInfo& n : nodes) bytes += 64 + n.endpoint.size() + n.host.size();
  return bytes;
}

// ---- decoding helpers -----------------------------------------------------------

std::string StringOf(const flatbuffers::String* s) {
  return s == nullptr ? std::string() : std::string(s->c_str(), s->size());
}

// A generated enum value as ours, or InvalidArgument if out of range (the
// verifier does not check enum values).
template <typename Ours, typename Wire>
StatusOr<Ours> EnumFromWire(Wire value, std::string_view what) {
  const auto raw = static_cast<uint8_t>(value);
  if (raw > static_cast<uint8_t>(Wire::MAX)) {
    return InvalidArgumentError(internal::Cat(what, ": unknown value ", raw));
  }
  return static_cast<Ours>(raw);
}

StatusOr<TableConfig> TableConfigFromWire(const wire::TableConfigW* w) {
  if (w == nullptr) return InvalidArgumentError("table config: missing");
  TableConfig c;
  c.id = w->id();
  c.name = StringOf(w->name());
  const std::string what = internal::Cat("table ", c.id, " ('", c.name, "')");
  TESSERA_ASSIGN_OR_RETURN(c.kind, EnumFromWire<TableKind>(w->kind(), what + " kind"));
  c.dim = w->dim();
  c.size = w->size();
  const wire::OptimizerConfigW* o = w->optimizer();
  if (o == nullptr) return InvalidArgumentError(what + ": optimizer missing");
  TESSERA_ASSIGN_OR_RETURN(c.optimizer.type,
                           EnumFromWire<OptimizerType>(o->type(), what + " optimizer type"));
  c.optimizer.learning_rate = o->learning_rate();
  c.optimizer.beta1 = o->beta1();
  c.optimizer.beta2 = o->beta2();
  c.optimizer.epsilon = o->epsilon();
  c.optimizer.initial_accumulator = o->initial_accumulator();
  c.optimizer.ftrl_beta = o->ftrl_beta();
  c.optimizer.l1 = o->l1();
  c.optimizer.l2 = o->l2();
  const wire::InitializerConfigW* i = w->initializer();
  if (i == nullptr) return InvalidArgumentError(what + ": initializer missing");
  TESSERA_ASSIGN_OR_RETURN(c.initializer.type,
                           EnumFromWire<InitializerType>(i->type(), what + " initializer type"));
  c.initializer.scale = i->scale();
  c.initializer.seed = i->seed();
  // Admission and eviction are optional: absent means off (all zero).
  c.admission = {};
  c.eviction = {};
  if (const wire::AdmissionConfigW* a = w->admission()) {
    c.admission.min_count = a->min_count();
    c.admission.unadmitted_zeros = a->unadmitted_zeros();
  }
  if (const wire::EvictionConfigW* e = w->eviction()) {
    c.eviction.ttl_s = e->ttl_s();
    c.eviction.max_rows = e->max_rows();
  }
  TESSERA_RETURN_IF_ERROR(ValidateTableConfig(c));
  return c;
}

// An absent vector is an empty list.
StatusOr<std::vector<TableConfig>> TablesFromWire(const WireTables* tables) {
  std::vector<TableConfig> out;
  if (tables == nullptr) return out;
  out.reserve(tables->size());
  for (const wire::TableConfigW* t : *tables) {
    TESSERA_ASSIGN_OR_RETURN(TableConfig c, TableConfigFromWire(t));
    out.push_back(std::move(c));
  }
  return out;
}

// The nodes of one role; node i must have id {role, i}. An absent vector is
// an empty list.
StatusOr<std::vector<NodeInfo>> NodesFromWire(const WireNodes* nodes, Role role) {
  std::vector<NodeInfo> out;
  if (nodes == nullptr) return out;
  out.reserve(nodes->size());
  for (flatbuffers::uoffset_t i = 0; i < nodes->size(); ++i) {
    const wire::NodeInfoW* w = nodes->Get(i);
    const std::string what = internal::Cat("cluster view: ", RoleName(role), "s[", i, "]");
    if (w == nullptr) return InvalidArgumentError(what + ": missing");
    NodeInfo n;
    TESSERA_ASSIGN_OR_RETURN(n.id, internal::NodeIdFromWire(w->id(), what + " id"));
    const NodeId expected{role, static_cast<int32_t>(i)};
    if (n.id != expected) {
      return InvalidArgumentError(
          internal::Cat(what, ": has id ", n.id.ToString(), ", expected ", expected.ToString()));
    }
    n.endpoint = StringOf(w->endpoint());
    n.metrics_port = w->metrics_port();
    n.pid = w->pid();
    n.host = StringOf(w->host());
    out.push_back(std::move(n));
  }
  return out;
}

StatusOr<ShardMap> ShardMapFromWire(const wire::ClusterView& w, size_t num_servers) {
  if (w.num_slots() == 0) return InvalidArgumentError("cluster view: num_slots is 0");
  const flatbuffers::Vector<int32_t>* owners = w.slot_owner();
  const size_t num_owners = owners == nullptr ? 0 : owners->size();
  if (num_owners != w.num_slots()) {
    return InvalidArgumentError(
        internal::Cat("cluster view: ", num_owners, " slot owners for num_slots ", w.num_slots()));
  }
  // The verifier's table limit keeps num_servers far below INT32_MAX.
  const auto servers = static_cast<int32_t>(num_servers);
  std::vector<int32_t> slot_owner(owners->begin(), owners->end());
  for (size_t s = 0; s < slot_owner.size(); ++s) {
    if (slot_owner[s] < 0 || slot_owner[s] >= servers) {
      return InvalidArgumentError(internal::Cat("cluster view: slot ", s, " owned by server ",
                                                slot_owner[s], " of ", servers));
    }
  }
  return ShardMap(std::move(slot_owner), servers);
}

}  // namespace

// ---- encoding -------------------------------------------------------------------

Frame EncodeRegisterRequest(const Header& header, const RegisterRequest& request) {
  flatbuffers::FlatBufferBuilder fbb(
      InitialBuilderSize(header, request.endpoint.size() + request.host.size()));
  const FbString endpoint = StringOrNull(fbb, request.endpoint);
  const FbString host = StringOrNull(fbb, request.host);
  const auto body = wire::CreateRegisterRequest(fbb, static_cast<wire::Role>(request.role),
                                                request.requested_rank, endpoint,
                                                request.metrics_port, request.pid, host);
  return FinishEnvelope(fbb, header, wire::Body::RegisterRequest, body.Union());
}

Frame EncodeRegisterReply(const Header& header, NodeId assigned) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 0));
  const wire::NodeIdW id = NodeIdToWire(assigned);
  const auto body = wire::CreateRegisterReply(fbb, &id);
  return FinishEnvelope(fbb, header, wire::Body::RegisterReply, body.Union());
}

Frame EncodeClusterView(const Header& header, const ClusterView& view) {
  const size_t bytes = view.shard_map.num_slots() * sizeof(int32_t) + NodesBytes(view.servers) +
                       NodesBytes(view.workers) + TablesBytes(view.tables);
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, bytes));
  const auto slot_owner = fbb.CreateVector(view.shard_map.slot_owner());
  const auto servers = NodesToWire(fbb, view.servers);
  const auto workers = NodesToWire(fbb, view.workers);
  const auto tables = TablesToWire(fbb, view.tables);
  const auto dead = fbb.CreateVector(view.dead_servers);
  const auto body = wire::CreateClusterView(fbb, view.epoch, view.shard_map.num_slots(), slot_owner,
                                            servers, workers, tables, view.heartbeat_interval_ms,
                                            view.replication, dead, view.handoff_from,
                                            view.handoff_to, view.request_timeout_ms);
  return FinishEnvelope(fbb, header, wire::Body::ClusterView, body.Union());
}

Frame EncodeConfigureTables(const Header& header, std::span<const TableConfig> tables) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, TablesBytes(tables)));
  const auto body = wire::CreateConfigureTables(fbb, TablesToWire(fbb, tables));
  return FinishEnvelope(fbb, header, wire::Body::ConfigureTables, body.Union());
}

Frame EncodeHeartbeat(const Header& header) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 0));
  const auto body = wire::CreateHeartbeat(fbb);
  return FinishEnvelope(fbb, header, wire::Body::Heartbeat, body.Union());
}

Frame EncodeHeartbeat(const Header& header, const NodeStats& stats) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 64));
  const auto w = wire::CreateNodeStatsW(fbb, stats.rows, stats.bytes, stats.keys_total,
                                        stats.examples_total, stats.steps_total,
                                        stats.staleness, stats.has_worker_stats,
                                        stats.has_server_stats, stats.replica_sync_epoch);
  const auto body = wire::CreateHeartbeat(fbb, w);
  return FinishEnvelope(fbb, header, wire::Body::Heartbeat, body.Union());
}

Frame EncodeBarrierRequest(const Header& header, BarrierGroup group) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 0));
  const auto body = wire::CreateBarrierRequest(fbb, static_cast<wire::BarrierGroup>(group));
  return FinishEnvelope(fbb, header, wire::Body::BarrierRequest, body.Union());
}

Frame EncodeShutdownRequest(const Header& header, std::string_view reason) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, reason.size()));
  const auto body = wire::CreateShutdownRequest(fbb, StringOrNull(fbb, reason));
  return FinishEnvelope(fbb, header, wire::Body::ShutdownRequest, body.Union());
}

Frame EncodeAck(const Header& header) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 0));
  const auto body = wire::CreateAck(fbb);
  return FinishEnvelope(fbb, header, wire::Body::Ack, body.Union());
}

// ---- decoding -------------------------------------------------------------------
// Decode() guarantees: the buffer verified, and body_as_<type()>() is non-null.

StatusOr<RegisterRequest> DecodedMessage::AsRegisterRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kRegisterRequest));
  const wire::RegisterRequest* w = envelope_->body_as_RegisterRequest();
  RegisterRequest r;
  TESSERA_ASSIGN_OR_RETURN(r.role, internal::RoleFromWire(w->role(), "register request role"));
  r.requested_rank = w->requested_rank();
  if (r.requested_rank < kUnassignedRank) {
    return InvalidArgumentError(
        internal::Cat("register request: bad requested rank ", r.requested_rank));
  }
  r.endpoint = StringOf(w->endpoint());
  r.metrics_port = w->metrics_port();
  r.pid = w->pid();
  r.host = StringOf(w->host());
  return r;
}

StatusOr<NodeId> DecodedMessage::AsRegisterReply() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kRegisterReply));
  const wire::RegisterReply* w = envelope_->body_as_RegisterReply();
  TESSERA_ASSIGN_OR_RETURN(NodeId id, internal::NodeIdFromWire(w->assigned(), "assigned id"));
  if (id.rank < 0) return InvalidArgumentError(internal::Cat("assigned id: bad rank ", id.rank));
  return id;
}

StatusOr<ClusterView> DecodedMessage::AsClusterView() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kClusterView));
  const wire::ClusterView* w = envelope_->body_as_ClusterView();
  ClusterView view;
  view.epoch = w->epoch();
  view.heartbeat_interval_ms = w->heartbeat_interval_ms();
  view.request_timeout_ms = w->request_timeout_ms();
  TESSERA_ASSIGN_OR_RETURN(view.servers, NodesFromWire(w->servers(), Role::kServer));
  TESSERA_ASSIGN_OR_RETURN(view.workers, NodesFromWire(w->workers(), Role::kWorker));
  TESSERA_ASSIGN_OR_RETURN(view.tables, TablesFromWire(w->tables()));
  TESSERA_ASSIGN_OR_RETURN(view.shard_map, ShardMapFromWire(*w, view.servers.size()));
  view.replication = w->replication();
  if (view.replication < 1 || view.replication > std::max<size_t>(1, view.servers.size())) {
    return InvalidArgumentError(internal::Cat("cluster view: replication ", view.replication,
                                              " for ", view.servers.size(), " servers"));
  }
  if (w->dead_servers() != nullptr) {
    view.dead_servers.assign(w->dead_servers()->begin(), w->dead_servers()->end());
  }
  for (size_t i = 0; i < view.dead_servers.size(); ++i) {
    const int32_t rank = view.dead_servers[i];
    if (rank < 0 || static_cast<size_t>(rank) >= view.servers.size() ||
        (i > 0 && rank <= view.dead_servers[i - 1])) {
      return InvalidArgumentError(
          internal::Cat("cluster view: dead server ", rank, " out of range or out of order"));
    }
  }
  view.handoff_from = w->handoff_from();
  view.handoff_to = w->handoff_to();
  const std::vector<bool> live = view.LiveServers();
  for (int32_t rank : {view.handoff_from, view.handoff_to}) {
    if (rank != -1 && (rank < 0 || static_cast<size_t>(rank) >= live.size() || !live[rank])) {
      return InvalidArgumentError(internal::Cat("cluster view: handoff server ", rank,
                                                " out of range or dead"));
    }
  }
  if ((view.handoff_from == -1) != (view.handoff_to == -1)) {
    return InvalidArgumentError("cluster view: handoff needs both servers");
  }
  for (int32_t owner : view.shard_map.slot_owner()) {
    if (!live[owner]) {
      return InvalidArgumentError(
          internal::Cat("cluster view: slot owned by dead server ", owner));
    }
  }
  return view;
}

StatusOr<std::vector<TableConfig>> DecodedMessage::AsConfigureTables() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kConfigureTables));
  return TablesFromWire(envelope_->body_as_ConfigureTables()->tables());
}

StatusOr<std::optional<NodeStats>> DecodedMessage::AsHeartbeat() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kHeartbeat));
  const wire::NodeStatsW* w = envelope_->body_as_Heartbeat()->stats();
  if (w == nullptr) return std::optional<NodeStats>();
  NodeStats stats;
  stats.has_server_stats = w->has_server_stats();
  stats.rows = w->rows();
  stats.bytes = w->bytes();
  stats.keys_total = w->keys_total();
  stats.has_worker_stats = w->has_worker_stats();
  stats.examples_total = w->examples_total();
  stats.steps_total = w->steps_total();
  stats.staleness = w->staleness();
  stats.replica_sync_epoch = w->replica_sync_epoch();
  return std::optional<NodeStats>(stats);
}

StatusOr<BarrierGroup> DecodedMessage::AsBarrierRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kBarrierRequest));
  return EnumFromWire<BarrierGroup>(envelope_->body_as_BarrierRequest()->group(), "barrier group");
}

StatusOr<std::string> DecodedMessage::AsShutdownRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kShutdownRequest));
  return StringOf(envelope_->body_as_ShutdownRequest()->reason());
}

}  // namespace tessera::protocol
