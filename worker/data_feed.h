// The worker's input pipeline: a thread that asks the scheduler for chunks of
// training data, reads and parses them, and builds batches ahead of the
// trainer (read + parse overlap pull, compute and push).
//
// Every batch carries its source position (models::Batch::source): the
// chunk's id and the byte offset just past the batch's last line (bad lines
// before it included), which is the chunk's end for the chunk's last batch.
// After a step the trainer reports the position of its batch as trained
// (the scheduler's DataAssigner::Trained); once the feed has ended, it
// reports final_position(), which also covers chunks that yielded no batch.
//
// Streaming: while the scheduler has nothing yet (a followed stream), it
// replies `retry` and the feed asks again at once (the scheduler holds the
// request for a while: a long poll).
//
// Thread-safe: Next() is for the trainer thread; the feed thread is owned
// and joined by Stop() / the destructor.
#ifndef TESSERA_WORKER_DATA_FEED_H_
#define TESSERA_WORKER_DATA_FEED_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "common/blocking_queue.h"
#include "common/mutex.h"
#include "models/batch.h"
#include "models/batch_builder.h"
#include "models/data_reader.h"
#include "models/schema.h"
#include "protocols/cluster_member.h"
#include "protocols/messenger.h"

namespace tessera::worker {

struct DataFeedOptions {
  int batch_size = 1024;
  int prefetch_batches = 4;
  std::string group_field = {};
  double max_bad_ratio = 0.01;
};

struct FeedProgress {
  uint64_t chunks_total = 0;
  uint64_t chunks_completed = 0;  // over the whole cluster, as of the last reply
};

// Where the feed gets chunks: the scheduler (NewSchedulerChunkSource), or a
// test double.
class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  // Reports `completed` (the chunk the feed finished reading, if any) and
  // returns the next chunk, or `retry` (nothing yet: ask again), or `done`.
  // Cancelled once Cancel() was called.
  virtual StatusOr<protocol::DataChunkInfo> Next(std::optional<uint64_t> completed) = 0;
  // Makes a pending Next (and every later one) return Cancelled promptly.
  // Thread-safe.
  virtual void Cancel() = 0;
};

// Asks the scheduler through `messenger` (borrowed; started; must outlive
// the source), each request waiting up to `timeout` for the reply. Cancel()
// abandons a pending request at once (its reply is dropped).
std::unique_ptr<ChunkSource> NewSchedulerChunkSource(protocol::Messenger* messenger,
                                                     std::chrono::milliseconds timeout);
// The same through ClusterMember::Call (borrowed): a pending request also
// ends when the cluster shuts down, but Cancel() takes effect only when it
// returns, i.e. once the scheduler answers its long poll.
std::unique_ptr<ChunkSource> NewMemberChunkSource(protocol::ClusterMember* member,
                                                  std::chrono::milliseconds timeout);

class DataFeed {
 public:
  // `schema` and `member` are borrowed and must outlive the feed. Stop()
  // waits for a pending scheduler request (see NewMemberChunkSource).
  DataFeed(DataFeedOptions options, const models::Schema* schema, protocol::ClusterMember* member);
  // Gets chunks from `source` (e.g. NewSchedulerChunkSource: Stop() is then
  // prompt even during a long poll). `schema` is borrowed.
  DataFeed(DataFeedOptions options, const models::Schema* schema, std::unique_ptr<ChunkSource> source);
  ~DataFeed();  // Stop()s.

  Status Start();
  // Stops the feed thread promptly (also while it waits for the scheduler or
  // for room in the queue) and joins it. Idempotent.
  void Stop();

  // The next batch; nullptr at the end of the data. An error (unreadable
  // file, too many bad lines, scheduler unreachable) ends the feed.
  StatusOr<std::unique_ptr<models::Batch>> Next();
  // As Next(), but gives up at `deadline`: then returns nullptr with
  // *timed_out set (the data has not ended; a stream may bring more).
  StatusOr<std::unique_ptr<models::Batch>> Next(std::chrono::steady_clock::time_point deadline,
                                                bool* timed_out);

  // Once Next() returned nullptr: the position past everything the feed
  // read (the last chunk's id and end), nullopt if it read no chunk. Report
  // it as trained after the last step.
  std::optional<models::Batch::Source> final_position() const;

  models::DataStats stats() const;
  FeedProgress progress() const;
  // Batches built and waiting to be taken by Next() (at most prefetch_batches).
  int queued_batches() const;

 private:
  void Run();
  Status ReadChunk(const protocol::DataChunkInfo& chunk);
  bool Emit(std::unique_ptr<models::Batch> batch);
  // Waits until `until` or Stop(); false when stopped.
  bool SleepUntil(std::chrono::steady_clock::time_point until);

  const DataFeedOptions options_;
  const models::Schema* const schema_;
  const std::unique_ptr<ChunkSource> source_;
  std::unique_ptr<models::BatchBuilder> builder_;
  BlockingQueue<std::unique_ptr<models::Batch>> queue_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable Mutex mu_;
  // protected by mu_
  int queued_ TESSERA_GUARDED_BY(mu_) = 0;  // batches built and not yet taken
  bool stopping_ TESSERA_GUARDED_BY(mu_) = false;  // Stop() called (wakes waits)
  Status error_ TESSERA_GUARDED_BY(mu_);
  models::DataStats stats_ TESSERA_GUARDED_BY(mu_);
  FeedProgress progress_ TESSERA_GUARDED_BY(mu_);
  std::optional<models::Batch::Source> last_read_ TESSERA_GUARDED_BY(mu_);
};

}  // namespace tessera::worker

#endif  // TESSERA_WORKER_DATA_FEED_H_
