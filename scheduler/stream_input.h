// The scheduler's streaming input, wired to a SchedulerNode: a followed
// directory (a thread polls a DirectoryFollower) or stdin / a ZeroMQ PULL
// socket (a LineSpooler writing segments into a spool directory). Each new
// file or segment becomes one chunk (SchedulerNode::AddStreamChunks); the end
// of stdin closes the stream (SchedulerNode::CloseStream).
//
// Resuming (options.resume_data_state_json, the "data" of a version's
// training_state): the follower starts after the checkpoint's watermark and
// skips the files it lists; for stdin and ZeroMQ, segments already in the
// spool directory after the watermark (durable, but not yet in the
// checkpoint) are added first, then the spooler continues numbering after
// them. See stream_source.h for the delivery guarantees.
//
// Thread-safe: Start from one thread; Stop from any (it is idempotent).
#ifndef TESSERA_SCHEDULER_STREAM_INPUT_H_
#define TESSERA_SCHEDULER_STREAM_INPUT_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/status.h"
#include "scheduler/scheduler_node.h"
#include "scheduler/stream_source.h"

namespace tessera::scheduler {

class StreamInput {
 public:
  // `node` is borrowed and must outlive this.
  StreamInput(StreamInputOptions options, SchedulerNode* node);
  ~StreamInput();  // Stop()s.

  // Starts following / spooling. InvalidArgument for a bad source; the
  // spooler's bind or directory errors.
  Status Start();
  // Stops reading input (the open segment is finished and added). Does not
  // close the node's stream: the caller decides (CloseStream on SIGTERM).
  void Stop();

  // The ZeroMQ endpoint actually bound ("" unless spooling from ZeroMQ).
  std::string endpoint() const;

 private:
  void FollowLoop(DirectoryFollower follower);
  void AddFile(const std::string& path);

  const StreamInputOptions options_;
  SchedulerNode* const node_;
  std::unique_ptr<LineSpooler> spooler_;
  Mutex stop_mu_;
  Notification stop_;
  std::thread follow_thread_;
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_STREAM_INPUT_H_
