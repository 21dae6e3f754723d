#include "tools/cli/publish_setup.h"

#include <filesystem>
#include <memory>
#include <thread>

#include "common/logging.h"
#include "common/mutex.h"
#include "common/row_file.h"
#include "models/model_versions.h"
#include "models/saved_model.h"

namespace tessera::cli {
namespace {

// The manifest of one published version: the job's model and every
// server's file of every table.
models::ModelManifest ManifestOf(const models::JobConfig& job, const std::string& schema_yaml,
                                 const std::vector<TableConfig>& tables,
                                 const scheduler::PublishedVersion& v) {
  models::ModelManifest m;
  m.kind = v.full ? models::SnapshotKind::kFull : models::SnapshotKind::kDelta;
  m.version = v.version;
  m.base_version = v.base_version;
  m.created_unix_ms = v.created_unix_ms;
  m.created_unix_s = v.created_unix_ms / 1000;
  m.has_optimizer_state = true;
  m.schema_yaml = schema_yaml;
  m.model = job.model;
  m.group_field = job.data.group_field;
  m.num_servers = v.num_servers;
  m.training_state_json = v.training_state_json;
  m.id_salt_fingerprint = job.id_hasher.fingerprint();
  for (const TableConfig& t : tables) {
    models::SavedTable saved{t, {}};
    for (int32_t rank : v.server_ranks) saved.files.push_back(RowFileRelativePath(t.name, rank));
    m.tables.push_back(std::move(saved));
  }
  return m;
}

Status SetUpResume(const models::JobConfig& job, const std::vector<TableConfig>& tables,
                   scheduler::SchedulerOptions* options) {
  const std::string& dir = job.publish.model_dir;
  StatusOr<std::vector<uint64_t>> versions = models::ListVersionNumbers(dir);
  if ((!versions.ok() && absl::IsNotFound(versions.status())) ||
      (versions.ok() && versions->empty())) {
    TESSERA_LOG(kWarning) << "--resume: nothing published in " << dir << " yet: starting afresh";
    return OkStatus();
  }
  TESSERA_RETURN_IF_ERROR(versions.status());
  const uint64_t latest = versions->back();
  TESSERA_ASSIGN_OR_RETURN(std::vector<models::VersionInfo> chain,
                           models::ResolveChain(dir, latest));
  scheduler::ResumeOptions resume;
  resume.version = latest;
  std::map<TableId, std::vector<std::string>> files;
  for (const models::VersionInfo& link : chain) {
    const std::string version_dir = models::VersionDir(dir, link.version);
    TESSERA_ASSIGN_OR_RETURN(models::ModelManifest m, models::ReadManifest(version_dir));
    if (!m.has_optimizer_state) {
      return FailedPreconditionError("--resume: version " + std::to_string(link.version) +
                                     " has no optimizer state");
    }
    if (Status s = models::CheckIdSalt(m, job.id_hasher, version_dir); !s.ok()) {
      return FailedPreconditionError("--resume: " + std::string(s.message()));
    }
    if (m.tables.size() != tables.size()) {
      return FailedPreconditionError("--resume: version " + std::to_string(link.version) +
                                     " has " + std::to_string(m.tables.size()) +
                                     " tables, this job plans " + std::to_string(tables.size()));
    }
    for (size_t i = 0; i < tables.size(); ++i) {
      if (!(m.tables[i].config == tables[i])) {
        return FailedPreconditionError("--resume: table '" + tables[i].name + "' of version " +
                                       std::to_string(link.version) +
                                       " differs from this job's plan (another model?)");
      }
      for (const std::string& f : m.tables[i].files) {
        files[tables[i].id].push_back(version_dir + "/" + f);
      }
    }
    if (link.version == latest) resume.training_state_json = m.training_state_json;
  }
  if (resume.training_state_json.empty()) {
    return FailedPreconditionError("--resume: version " + std::to_string(latest) +
                                   " has no training_state (not published by a training job)");
  }
  for (const TableConfig& t : tables) resume.files.push_back({t.id, files[t.id]});
  options->publish.first_version = latest + 1;
  options->resume = std::move(resume);
  TESSERA_LOG(kInfo) << "resuming from version " << latest << " of " << dir << " (chain of "
                     << chain.size() << ")";
  return OkStatus();
}

// Removes old versions on a thread of its own: deleting many version
// directories can take seconds, which must not delay the next version.
// One removal runs at a time (RemoveOldVersions' requirement); wake-ups
// during one coalesce into the next.
class VersionPruner {
 public:
  VersionPruner(std::string dir, uint64_t keep)
      : dir_(std::move(dir)), keep_(keep), thread_([this] { Run(); }) {}
  ~VersionPruner() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  void Wake() {
    MutexLock lock(&mu_);
    due_ = true;
  }

 private:
  void Run() {
    while (true) {
      {
        MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return due_ || stop_; };
        mu_.Await(absl::Condition(&ready));
        if (stop_) return;
        due_ = false;
      }
      StatusOr<std::vector<uint64_t>> removed = models::RemoveOldVersions(dir_, keep_);
      if (!removed.ok()) TESSERA_LOG(kWarning) << "removing old versions: " << removed.status();
    }
  }

  const std::string dir_;
  const uint64_t keep_;
  Mutex mu_;
  bool due_ TESSERA_GUARDED_BY(mu_) = false;
  bool stop_ TESSERA_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after the fields it reads
};

}  // namespace

Status SetUpPublishing(const models::JobConfig& job, const models::Schema& schema,
                       const std::vector<TableConfig>& tables, bool resume,
                       scheduler::SchedulerOptions* options) {
  if (!job.publish.enabled()) {
    if (resume) return FailedPreconditionError("--resume needs publish.model_dir in the job");
    return OkStatus();
  }
  scheduler::PublishOptions& p = options->publish;
  p.model_dir = job.publish.model_dir;
  p.interval = std::chrono::milliseconds(static_cast<int64_t>(job.publish.interval_s * 1000));
  p.full_every = job.publish.full_every;
  const std::string schema_yaml = schema.ToYaml();
  p.write_manifest = [job, schema_yaml, tables](const scheduler::PublishedVersion& v) {
    return models::WriteManifest(v.dir, ManifestOf(job, schema_yaml, tables, v));
  };
  if (job.publish.keep > 0) {
    auto pruner = std::make_shared<VersionPruner>(job.publish.model_dir, job.publish.keep);
    p.after_publish = [pruner](const scheduler::PublishedVersion&) { pruner->Wake(); };
  }
  std::error_code ec;
  std::filesystem::create_directories(job.publish.model_dir, ec);
  if (ec) {
    return UnavailableError("publish: cannot create " + job.publish.model_dir + ": " +
                            ec.message());
  }
  return resume ? SetUpResume(job, tables, options) : OkStatus();
}

}  // namespace tessera::cli
