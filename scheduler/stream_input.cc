#include "scheduler/stream_input.h"

#include <utility>

#include "common/logging.h"
#include "scheduler/data_assigner.h"

namespace tessera::scheduler {
namespace {

// Where a resumed stream continues: the checkpoint's watermark and the
// stream files it already holds.
StatusOr<DirectoryFollowerOptions> ResumePoint(const std::string& dir,
                                               const std::string& data_state_json) {
  DirectoryFollowerOptions o{.dir = dir};
  if (data_state_json.empty()) return o;
  TESSERA_ASSIGN_OR_RETURN(DataAssignerState state, DataAssignerStateFromJson(data_state_json));
  o.start_after = state.watermark;
  for (const DataAssignerState::StreamFile& f : state.stream_files) o.skip.push_back(f.path);
  return o;
}

}  // namespace

StreamInput::StreamInput(StreamInputOptions options, SchedulerNode* node)
    : options_(std::move(options)), node_(node) {}

StreamInput::~StreamInput() { Stop(); }

void StreamInput::AddFile(const std::string& path) {
  Status s = node_->AddStreamChunks({DataChunk{path, 0, kChunkToEndOfFile}});
  if (!s.ok()) TESSERA_LOG(kError) << "stream input: " << path << " not added: " << s;
}

Status StreamInput::Start() {
  if (options_.source.empty()) return OkStatus();
  if (options_.follow_directory) {
    TESSERA_ASSIGN_OR_RETURN(DirectoryFollowerOptions o,
                             ResumePoint(options_.source, options_.resume_data_state_json));
    TESSERA_LOG(kInfo) << "following " << options_.source
                       << (o.start_after.empty() ? "" : " after " + o.start_after);
    follow_thread_ = std::thread(
        [this, follower = DirectoryFollower(std::move(o))]() mutable {
          FollowLoop(std::move(follower));
        });
    return OkStatus();
  }
  if (options_.source != "-" && options_.source.rfind("zmq+", 0) != 0) {
    return InvalidArgumentError("stream input: '" + options_.source +
                                "' is neither '-', zmq+tcp:// nor a followed directory");
  }
  // Segments spooled before a restart but after the checkpoint come first.
  if (!options_.resume_data_state_json.empty()) {
    TESSERA_ASSIGN_OR_RETURN(DirectoryFollowerOptions o,
                             ResumePoint(options_.spool_dir, options_.resume_data_state_json));
    DirectoryFollower leftovers(std::move(o));
    StatusOr<std::vector<std::string>> files = leftovers.Poll();
    if (files.ok()) {
      for (const std::string& f : *files) AddFile(f);
    }
  }
  LineSpoolerOptions o;
  o.input = options_.source;
  o.spool_dir = options_.spool_dir;
  o.max_lines = options_.max_lines;
  o.max_delay = options_.max_delay;
  o.on_segment = [this](const std::string& path) { AddFile(path); };
  o.on_end = [this](Status s) {
    if (s.ok()) {
      TESSERA_LOG(kInfo) << "end of " << (options_.source == "-" ? "stdin" : options_.source);
    } else {
      TESSERA_LOG(kError) << "stream input stopped: " << s;
    }
    node_->CloseStream();
  };
  spooler_ = std::make_unique<LineSpooler>(std::move(o));
  TESSERA_RETURN_IF_ERROR(spooler_->Start());
  TESSERA_LOG(kInfo) << "reading training lines from "
                     << (options_.source == "-" ? std::string("stdin") : spooler_->endpoint())
                     << " into " << options_.spool_dir;
  return OkStatus();
}

void StreamInput::FollowLoop(DirectoryFollower follower) {
  bool reported = false;
  do {
    StatusOr<std::vector<std::string>> files = follower.Poll();
    if (!files.ok()) {
      if (!reported) TESSERA_LOG(kWarning) << "following: " << files.status();
      reported = true;
      continue;
    }
    reported = false;
    for (const std::string& f : *files) AddFile(f);
  } while (!stop_.WaitForNotificationWithTimeout(absl::FromChrono(options_.poll_interval)));
}

void StreamInput::Stop() {
  MutexLock lock(&stop_mu_);  // from the signal thread and main
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (follow_thread_.joinable()) follow_thread_.join();
  if (spooler_) spooler_->Stop();
}

std::string StreamInput::endpoint() const {
  return spooler_ && options_.source != "-" ? spooler_->endpoint() : std::string();
}

}  // namespace tessera::scheduler
