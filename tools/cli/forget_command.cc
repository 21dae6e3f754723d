#include "tools/cli/forget_command.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <limits>
#include <optional>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/synchronization/notification.h"
#include "common/curve_keys.h"
#include "common/deadline.h"
#include "common/metrics.h"
#include "common/zmq_transport.h"
#include "models/job_config.h"
#include "models/table_plan.h"
#include "protocols/cluster_member.h"
#include "protocols/messenger.h"
#include "tools/cli/cluster_file.h"
#include "tools/cli/id_salt.h"
#include "tools/cli/node_flags.h"

namespace tessera::cli {
namespace {

struct ForgetFlags {
  std::string job;
  std::string table;
  std::string ids;
  std::string ids_file;
  std::string run;
  std::string scheduler;
  std::string token_file;
  std::string curve_dir;
  std::string bind = "tcp://0.0.0.0:0";
  std::string host = "127.0.0.1";
  double timeout_s = 30;
};

// --ids (comma-separated) and --ids-file (one id per line; blank lines and
// surrounding whitespace ignored).
StatusOr<std::vector<std::string>> ReadIds(const ForgetFlags& flags) {
  std::vector<std::string> ids;
  if (!flags.ids.empty()) {
    size_t begin = 0;
    while (begin <= flags.ids.size()) {
      size_t comma = flags.ids.find(',', begin);
      if (comma == std::string::npos) comma = flags.ids.size();
      std::string id(absl::StripAsciiWhitespace(flags.ids.substr(begin, comma - begin)));
      if (!id.empty()) ids.push_back(std::move(id));
      begin = comma + 1;
    }
  }
  if (!flags.ids_file.empty()) {
    std::ifstream in(flags.ids_file);
    if (!in) return NotFoundError("cannot read --ids-file " + flags.ids_file);
    std::string line;
    while (std::getline(in, line)) {
      std::string id(absl::StripAsciiWhitespace(line));
      if (!id.empty()) ids.push_back(std::move(id));
    }
    if (in.bad()) return DataLossError("read error in " + flags.ids_file);
  }
  if (ids.empty()) return InvalidArgumentError("no ids: give --ids a,b,... or --ids-file FILE");
  return ids;
}

// The scheduler's address: --scheduler, else the cluster.json of --run DIR,
// else of the job's output_dir.
StatusOr<std::string> SchedulerAddress(const ForgetFlags& flags, const models::JobConfig& job) {
  if (!flags.scheduler.empty()) return flags.scheduler;
  return SchedulerAddressOfRun(flags.run.empty() ? job.output_dir : flags.run);
}

// A random rank of a forget client (protocols/codec.h kForgetClientMinRank).
int32_t ClientRank() {
  std::random_device random;
  std::uniform_int_distribution<int32_t> rank(protocol::kForgetClientMinRank,
                                              std::numeric_limits<int32_t>::max());
  return rank(random);
}

// One request and its reply.
StatusOr<protocol::ForgetReplyInfo> Call(protocol::Messenger& messenger, TableId table,
                                         std::span<const Key> keys, const std::string& endpoint,
                                         SteadyTime deadline) {
  absl::Notification done;
  StatusOr<protocol::DecodedMessage> reply = UnknownError("no reply");
  TESSERA_ASSIGN_OR_RETURN(
      uint64_t id,
      messenger.SendRequest(
          kSchedulerId,
          [&](const protocol::Header& h) {
            return protocol::EncodeForgetRequest(h, table, keys, endpoint);
          },
          [&](StatusOr<protocol::DecodedMessage> r) {
            reply = std::move(r);
            done.Notify();
          }));
  if (!done.WaitForNotificationWithDeadline(ToAbslTime(deadline))) {
    messenger.Cancel(id);  // the callback cannot run after this
    if (!done.HasBeenNotified()) {
      return DeadlineExceededError(
          "no answer from the scheduler in time: is the job running, and did every server "
          "answer? (erasing is idempotent: run forget again)");
    }
  }
  TESSERA_RETURN_IF_ERROR(reply.status());
  TESSERA_RETURN_IF_ERROR(reply->header().status);
  return reply->AsForgetReply();
}

int Usage(const Status& s) {
  std::cerr << "tessera forget: " << s.message() << "\n";
  return kExitUsage;
}

int RunForget(const ForgetFlags& flags) {
  StatusOr<models::JobConfig> job = models::LoadJobConfig(flags.job, {});
  if (!job.ok()) return Usage(job.status());
  StatusOr<models::FeatureHasher> hasher = ReadIdSaltHasher();
  if (!hasher.ok()) return Usage(hasher.status());
  job->id_hasher = *hasher;
  StatusOr<models::Schema> schema = models::LoadJobSchema(*job);
  if (!schema.ok()) return Usage(schema.status());
  StatusOr<std::vector<std::string>> ids = ReadIds(flags);
  if (!ids.ok()) return Usage(ids.status());
  StatusOr<std::vector<Key>> keys = ForgetKeys(*schema, flags.table, *ids);
  if (!keys.ok()) return Usage(keys.status());
  ForgetClientOptions options;
  StatusOr<std::string> scheduler = SchedulerAddress(flags, *job);
  if (!scheduler.ok()) return Usage(scheduler.status());
  options.scheduler = *scheduler;
  StatusOr<std::string> token = ReadClusterToken(flags.token_file);
  if (!token.ok()) return Usage(token.status());
  options.token = *token;
  options.bind = flags.bind;
  options.host = flags.host;
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(flags.timeout_s * 1000));
  // A field's table (e.g. hist_items -> item): the keys' table index.
  const int field = schema->FieldIndex(flags.table);
  const int table_index =
      field >= 0 ? schema->fields()[field].table_index : schema->TableIndex(flags.table);
  const TableId table = models::SparseTableId(table_index);
  std::cout << "forget: " << keys->size() << " id(s) of table '" << schema->tables()[table_index]
            << "'" << (hasher->salted() ? " (salted keys)" : "") << " via " << options.scheduler
            << "\n";
  // If the cluster encrypts its links, so must we.
  StatusOr<std::optional<CurveKeys>> curve = LoadCurveKeys(flags.curve_dir);
  if (!curve.ok()) return Usage(curve.status());
  StatusOr<std::unique_ptr<Transport>> transport = NewNodeTransport(nullptr, *curve);
  StatusOr<protocol::ForgetReplyInfo> reply =
      transport.ok() ? SendForget(transport->get(), options, table, *keys)
                     : StatusOr<protocol::ForgetReplyInfo>(transport.status());
  if (!reply.ok()) {
    std::cerr << "tessera forget: " << reply.status().message() << "\n";
    return 1;
  }
  bool all = !reply->results.empty();
  uint64_t erased = 0;
  for (const protocol::ForgetResult& r : reply->results) {
    std::cout << "server/" << r.server << ": erased " << r.erased << " / requested " << r.owned;
    if (!r.status.ok()) std::cout << ": NOT CONFIRMED: " << r.status.message();
    std::cout << "\n";
    all = all && r.status.ok();
    erased += r.erased;
  }
  std::cout << "forget: " << erased << " row(s) erased on " << reply->results.size()
            << " server(s); " << (all ? "every server confirmed" : "NOT every server confirmed")
            << "\n";
  std::cout.flush();
  return all ? 0 : 1;
}

}  // namespace

StatusOr<std::string> SchedulerAddressOfRun(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "cluster.json").string();
  if (!std::filesystem::exists(path)) {
    return NotFoundError(path + " does not exist: is the job running (or give --scheduler)?");
  }
  TESSERA_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  TESSERA_ASSIGN_OR_RETURN(std::vector<ClusterNodeRecord> nodes, ParseClusterJson(text));
  for (const ClusterNodeRecord& node : nodes) {
    if (node.role == Role::kScheduler) return node.addr;
  }
  return NotFoundError(path + " names no scheduler");
}

StatusOr<std::vector<Key>> ForgetKeys(const models::Schema& schema,
                                      const std::string& table_or_field,
                                      const std::vector<std::string>& ids) {
  int table = -1;
  if (const int f = schema.FieldIndex(table_or_field); f >= 0) {
    table = schema.fields()[f].table_index;
    if (table < 0) {
      return InvalidArgumentError("--table " + table_or_field +
                                  ": a numeric field has no embedding rows");
    }
  } else {
    table = schema.TableIndex(table_or_field);
  }
  if (table < 0) {
    std::string names;
    for (const std::string& t : schema.tables()) names.append(names.empty() ? "" : ", ").append(t);
    return InvalidArgumentError("--table " + table_or_field +
                                ": not a field or table of the schema (tables: " + names + ")");
  }
  absl::flat_hash_set<Key> seen;
  std::vector<Key> keys;
  for (const std::string& id : ids) {
    if (id.empty()) return InvalidArgumentError("an empty id has no key");
    const Key key = schema.hasher().Hash(table, id);
    if (seen.insert(key).second) keys.push_back(key);
  }
  return keys;
}

StatusOr<protocol::ForgetReplyInfo> SendForget(Transport* transport,
                                               const ForgetClientOptions& options, TableId table,
                                               const std::vector<Key>& keys) {
  const SteadyTime deadline = DeadlineIn(options.timeout);
  MetricsRegistry metrics;
  TESSERA_ASSIGN_OR_RETURN(std::string bound, transport->Bind(options.bind));
  const std::string endpoint = protocol::AdvertisedEndpoint(bound, options.host);
  TESSERA_RETURN_IF_ERROR(transport->Connect(kSchedulerId, options.scheduler));
  protocol::Messenger messenger({transport, options.token, &metrics, "forget"},
                                [](protocol::DecodedMessage) {});  // no requests expected
  messenger.set_self(NodeId{Role::kWorker, ClientRank()});
  messenger.Start();
  // Per server: the sums over the requests (the first error kept).
  std::map<int32_t, protocol::ForgetResult> by_server;
  protocol::ForgetReplyInfo total;
  for (size_t begin = 0; begin < keys.size(); begin += kMaxForgetKeysPerRequest) {
    const size_t n = std::min(kMaxForgetKeysPerRequest, keys.size() - begin);
    StatusOr<protocol::ForgetReplyInfo> reply = Call(
        messenger, table, std::span<const Key>(keys).subspan(begin, n), endpoint, deadline);
    if (!reply.ok()) {
      messenger.Stop();
      return reply.status();
    }
    total.requested += reply->requested;
    for (const protocol::ForgetResult& r : reply->results) {
      protocol::ForgetResult& sum = by_server[r.server];
      sum.server = r.server;
      sum.erased += r.erased;
      sum.owned += r.owned;
      if (sum.status.ok()) sum.status = r.status;
    }
  }
  messenger.Stop();
  for (auto& [rank, result] : by_server) total.results.push_back(std::move(result));
  return total;
}

void AddForgetCommand(CLI::App* app, Command* selected) {
  auto flags = std::make_shared<ForgetFlags>();
  CLI::App* cmd = app->add_subcommand(
      "forget",
      "Erase ids' rows from a running job's servers and from every later published version "
      "(right to be forgotten); each server confirms");
  cmd->add_option("--job", flags->job, "The job file (its schema maps ids to keys)")->required();
  cmd->add_option("--table", flags->table,
                  "A categorical/sequence field, or an embedding table, of the schema")
      ->required();
  cmd->add_option("--ids", flags->ids, "Comma-separated ids");
  cmd->add_option("--ids-file", flags->ids_file, "A file of ids, one per line");
  cmd->add_option("--run", flags->run,
                  "The running local job's output directory (its cluster.json names the "
                  "scheduler; default: the job's output_dir)");
  cmd->add_option("--scheduler", flags->scheduler,
                  "Scheduler address instead, e.g. tcp://10.0.0.5:7000 (env TESSERA_SCHEDULER)")
      ->envname(kSchedulerEnv);
  cmd->add_option("--token-file", flags->token_file,
                  "File holding the cluster token (env TESSERA_CLUSTER_TOKEN wins)");
  cmd->add_option("--curve-dir", flags->curve_dir,
                  "CurveZMQ key directory of the cluster (`tessera keygen`), if it uses one")
      ->envname("TESSERA_CURVE_DIR");
  cmd->add_option("--bind", flags->bind, "Endpoint this client binds for the scheduler's answer")
      ->capture_default_str();
  cmd->add_option("--host", flags->host, "Host advertised to the scheduler in place of 0.0.0.0")
      ->capture_default_str();
  cmd->add_option("--timeout-s", flags->timeout_s, "Seconds to wait for every server")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->footer(
      "The id salt (if the job has one) comes from TESSERA_ID_SALT or TESSERA_ID_SALT_FILE, as "
      "for training.\n"
      "Example: tessera forget --job job.yaml --table user_id --ids u123,u456\n"
      "         tessera forget --job job.yaml --table user_id --ids-file gdpr.txt --run runs/ctr");
  cmd->callback([flags, selected] { *selected = [flags] { return RunForget(*flags); }; });
}

}  // namespace tessera::cli
