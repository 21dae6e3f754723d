// The worker's input pipeline: a thread that asks the scheduler for chunks of
// training data, reads and parses them, and builds batches ahead of the
// trainer (read + parse overlap pull, compute and push).
//
// Thread-safe: Next() is for the trainer thread; the feed thread is owned
// and joined by Stop() / the destructor.
#ifndef TESSERA_WORKER_DATA_FEED_H_
#define TESSERA_WORKER_DATA_FEED_H_

#include <atomic>
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

namespace tessera::worker {

struct DataFeedOptions {
  int batch_size = 1024;
  int prefetch_batches = 4;
  std::string group_field;
  double max_bad_ratio = 0.01;
};

struct FeedProgress {
  uint64_t chunks_total = 0;
  uint64_t chunks_completed = 0;  // over the whole cluster, as of the last reply
};

class DataFeed {
 public:
  // `schema` and `member` are borrowed and must outlive the feed.
  DataFeed(DataFeedOptions options, const models::Schema* schema, protocol::ClusterMember* member);
  ~DataFeed();  // Stop()s.

  Status Start();
  void Stop();

  // The next batch; nullptr at the end of the data. An error (unreadable
  // file, too many bad lines, scheduler unreachable) ends the feed.
  StatusOr<std::unique_ptr<models::Batch>> Next();

  models::DataStats stats() const;
  FeedProgress progress() const;

 private:
  void Run();
  Status ReadChunk(const protocol::DataChunkInfo& chunk);
  bool Emit(std::unique_ptr<models::Batch> batch);

  const DataFeedOptions options_;
  const models::Schema* const schema_;
  protocol::ClusterMember* const member_;
  std::unique_ptr<models::BatchBuilder> builder_;
  BlockingQueue<std::unique_ptr<models::Batch>> queue_;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable Mutex mu_;
  // protected by mu_
  int queued_ TESSERA_GUARDED_BY(mu_) = 0;  // batches built and not yet taken
  Status error_ TESSERA_GUARDED_BY(mu_);
  models::DataStats stats_ TESSERA_GUARDED_BY(mu_);
  FeedProgress progress_ TESSERA_GUARDED_BY(mu_);
};

}  // namespace tessera::worker

#endif  // TESSERA_WORKER_DATA_FEED_H_
