#include "worker/model_saver.h"

#include <filesystem>
#include <system_error>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "common/row_file.h"
#include "models/saved_model.h"
#include "models/table_plan.h"

namespace tessera::worker {
namespace {

// The manifest of what the servers were asked to write.
models::ModelManifest MakeManifest(WorkerNode& node, const models::JobConfig& job,
                                   const models::Schema& schema,
                                   const std::vector<TableConfig>& tables) {
  const protocol::ClusterView view = node.kv().view();
  models::ModelManifest m;
  m.created_unix_s = node.clock()->UnixSeconds();
  m.has_optimizer_state = true;
  m.schema_yaml = schema.ToYaml();
  m.id_salt_fingerprint = schema.hasher().fingerprint();
  m.model = job.model;
  m.group_field = job.data.group_field;
  m.num_servers = static_cast<int32_t>(view.servers.size());
  for (const TableConfig& t : tables) {
    models::SavedTable saved{t, {}};
    const std::vector<bool> live = view.LiveServers();
    for (const protocol::NodeInfo& server : view.servers) {
      if (live[server.id.rank]) saved.files.push_back(RowFileRelativePath(t.name, server.id.rank));
    }
    m.tables.push_back(std::move(saved));
  }
  return m;
}

// Sends the SaveRequest to every server at once; the first error wins.
Status SaveOnEveryServer(WorkerNode& node, const std::string& dir, SteadyTime deadline) {
  // Dead servers' rows live on the servers promoted in their place.
  const protocol::ClusterView view = node.kv().view();
  const std::vector<bool> live = view.LiveServers();
  std::vector<protocol::NodeInfo> servers;
  for (const protocol::NodeInfo& s : view.servers) {
    if (live[s.id.rank]) servers.push_back(s);
  }
  std::vector<Status> results(servers.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < servers.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = node.member()
                       .Call(servers[i].id,
                             [&](const protocol::Header& h) {
                               return protocol::EncodeSaveRequest(h, dir);
                             },
                             deadline)
                       .status();
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < servers.size(); ++i) {
    if (!results[i].ok()) {
      return Status(results[i].code(), "save on " + servers[i].id.ToString() + ": " +
                                           std::string(results[i].message()));
    }
  }
  return OkStatus();
}

}  // namespace

Status SaveModel(WorkerNode& node, const models::JobConfig& job, const models::Schema& schema,
                 const models::Model& model, const std::string& model_dir, SteadyTime deadline) {
  // The servers must hold exactly the tables this job plans.
  const std::vector<TableConfig> planned = models::PlanTables(job, schema, model);
  for (const TableConfig& t : planned) {
    const TableConfig* have = node.kv().FindTable(t.id);
    if (have == nullptr || !(*have == t)) {
      return FailedPreconditionError("save: the cluster's table " + std::to_string(t.id) + " ('" +
                                     t.name + "') differs from this job's plan");
    }
  }
  std::error_code ec;
  const std::string dir = std::filesystem::absolute(model_dir, ec).lexically_normal().string();
  if (!ec) std::filesystem::create_directories(dir, ec);
  if (ec) return UnavailableError("save: cannot create " + model_dir + ": " + ec.message());
  std::filesystem::remove(std::filesystem::path(dir) / models::kManifestFileName, ec);
  if (ec) return UnavailableError("save: cannot remove the old manifest in " + dir);

  const auto start = std::chrono::steady_clock::now();
  TESSERA_RETURN_IF_ERROR(SaveOnEveryServer(node, dir, deadline));
  TESSERA_RETURN_IF_ERROR(models::WriteManifest(dir, MakeManifest(node, job, schema, planned)));
  TESSERA_LOG(kInfo) << "saved the model to " << dir << " ("
                     << node.kv().view().servers.size() << " servers, "
                     << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                     << " s)";
  return OkStatus();
}

}  // namespace tessera::worker
