#include "worker/data_feed.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/deadline.h"
#include "common/logging.h"

namespace tessera::worker {
namespace {
constexpr auto kSchedulerTimeout = std::chrono::seconds(60);
constexpr int kLoggedBadLines = 5;
constexpr uint64_t kMinLinesForBadRatio = 10000;
// A scheduler that answers `retry` at once (no long poll) is asked at most
// this often, so the feed does not spin.
constexpr auto kMinRetryInterval = std::chrono::milliseconds(10);

StatusOr<protocol::DataChunkInfo> DecodeReply(StatusOr<protocol::DecodedMessage> reply) {
  if (!reply.ok()) return reply.status();
  if (!reply->header().status.ok()) return reply->header().status;
  return reply->AsDataChunkReply();
}

// Requests through the messenger, waiting on its own condition so Cancel()
// can end the wait (ClusterMember::Call cannot be interrupted).
class SchedulerChunkSource : public ChunkSource {
 public:
  SchedulerChunkSource(protocol::Messenger* messenger, std::chrono::milliseconds timeout)
      : messenger_(messenger), timeout_(timeout) {}

  StatusOr<protocol::DataChunkInfo> Next(std::optional<uint64_t> completed) override {
    struct Result {
      bool done = false;
      StatusOr<protocol::DecodedMessage> reply = UnknownError("no reply");
    };
    auto result = std::make_shared<Result>();
    {
      MutexLock lock(&mu_);
      if (cancelled_) return CancelledError("data feed stopped");
    }
    TESSERA_ASSIGN_OR_RETURN(
        const uint64_t request_id,
        messenger_->SendRequest(
            kSchedulerId, [&](const protocol::Header& h) { return protocol::EncodeDataRequest(h, completed); },
            [this, result](StatusOr<protocol::DecodedMessage> reply) {
              MutexLock lock(&mu_);
              result->reply = std::move(reply);
              result->done = true;
            }));
    bool done;
    {
      MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result->done || cancelled_; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::FromChrono(timeout_));
      done = result->done;
    }
    if (!done) {
      messenger_->Cancel(request_id);  // the callback does not run after this
      MutexLock lock(&mu_);
      if (!result->done) {
        if (cancelled_) return CancelledError("data feed stopped");
        return DeadlineExceededError("no data chunk reply from the scheduler in time");
      }
    }
    return DecodeReply(std::move(result->reply));
  }

  void Cancel() override {
    MutexLock lock(&mu_);
    cancelled_ = true;
  }

 private:
  protocol::Messenger* const messenger_;
  const std::chrono::milliseconds timeout_;
  Mutex mu_;
  bool cancelled_ TESSERA_GUARDED_BY(mu_) = false;
};

class MemberChunkSource : public ChunkSource {
 public:
  MemberChunkSource(protocol::ClusterMember* member, std::chrono::milliseconds timeout)
      : member_(member), timeout_(timeout) {}

  StatusOr<protocol::DataChunkInfo> Next(std::optional<uint64_t> completed) override {
    if (cancelled_) return CancelledError("data feed stopped");
    return DecodeReply(member_->Call(
        kSchedulerId, [&](const protocol::Header& h) { return protocol::EncodeDataRequest(h, completed); },
        DeadlineIn(timeout_)));
  }
  void Cancel() override { cancelled_ = true; }

 private:
  protocol::ClusterMember* const member_;
  const std::chrono::milliseconds timeout_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

std::unique_ptr<ChunkSource> NewSchedulerChunkSource(protocol::Messenger* messenger,
                                                     std::chrono::milliseconds timeout) {
  return std::make_unique<SchedulerChunkSource>(messenger, timeout);
}

std::unique_ptr<ChunkSource> NewMemberChunkSource(protocol::ClusterMember* member,
                                                  std::chrono::milliseconds timeout) {
  return std::make_unique<MemberChunkSource>(member, timeout);
}

DataFeed::DataFeed(DataFeedOptions options, const models::Schema* schema,
                   protocol::ClusterMember* member)
    : DataFeed(std::move(options), schema, NewMemberChunkSource(member, kSchedulerTimeout)) {}

DataFeed::DataFeed(DataFeedOptions options, const models::Schema* schema,
                   std::unique_ptr<ChunkSource> source)
    : options_(std::move(options)), schema_(schema), source_(std::move(source)) {}

DataFeed::~DataFeed() { Stop(); }

Status DataFeed::Start() {
  TESSERA_ASSIGN_OR_RETURN(
      builder_, models::BatchBuilder::Create(schema_, {.group_field = options_.group_field}));
  thread_ = std::thread([this] { Run(); });
  return OkStatus();
}

void DataFeed::Stop() {
  stop_ = true;
  source_->Cancel();
  {
    MutexLock lock(&mu_);
    stopping_ = true;  // wakes SleepUntil
    queued_ = 0;       // unblocks a feed thread waiting for room
  }
  queue_.Close();
  if (thread_.joinable()) thread_.join();
}

StatusOr<std::unique_ptr<models::Batch>> DataFeed::Next() {
  bool timed_out = false;
  return Next(std::chrono::steady_clock::time_point::max(), &timed_out);
}

StatusOr<std::unique_ptr<models::Batch>> DataFeed::Next(
    std::chrono::steady_clock::time_point deadline, bool* timed_out) {
  std::optional<std::unique_ptr<models::Batch>> batch = queue_.Pop(deadline);
  *timed_out = false;
  if (!batch.has_value()) {
    if (!queue_.closed()) {
      *timed_out = true;
      return std::unique_ptr<models::Batch>();
    }
    // Closed after the wait gave up: what was pushed before is still there.
    batch = queue_.Pop(std::chrono::steady_clock::now());
  }
  MutexLock lock(&mu_);
  if (batch.has_value()) {
    --queued_;
    return std::move(*batch);
  }
  if (!error_.ok()) return error_;
  return std::unique_ptr<models::Batch>();
}

std::optional<models::Batch::Source> DataFeed::final_position() const {
  MutexLock lock(&mu_);
  return last_read_;
}

models::DataStats DataFeed::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

int DataFeed::queued_batches() const {
  MutexLock lock(&mu_);
  return queued_;
}

FeedProgress DataFeed::progress() const {
  MutexLock lock(&mu_);
  return progress_;
}

bool DataFeed::Emit(std::unique_ptr<models::Batch> batch) {
  MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queued_ < options_.prefetch_batches || stop_.load();
  };
  mu_.Await(absl::Condition(&room));
  if (stop_) return false;
  ++queued_;
  return queue_.Push(std::move(batch));
}

bool DataFeed::SleepUntil(std::chrono::steady_clock::time_point until) {
  MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(&stopping_), ToAbslTime(until));
  return !stopping_;
}

Status DataFeed::ReadChunk(const protocol::DataChunkInfo& chunk) {
  models::ExampleReaderOptions reader_options;
  {
    // Log the first few bad lines of the whole feed, not of every chunk.
    MutexLock lock(&mu_);
    reader_options.max_logged_bad =
        std::max(0, kLoggedBadLines - static_cast<int>(stats_.bad_lines));
  }
  models::ExampleReader reader(schema_, {models::FileChunk{chunk.path, chunk.begin, chunk.end}},
                               reader_options);
  // A batch is emitted once the next one is read (or the chunk is done), so
  // the chunk's last batch is known and carries the chunk's end.
  std::unique_ptr<models::Batch> held;
  bool stopped = false;
  while (!stop_) {
    auto batch = std::make_unique<models::Batch>();
    TESSERA_ASSIGN_OR_RETURN(int n, reader.NextBatch(builder_.get(), batch.get(), options_.batch_size));
    if (n == 0) break;
    batch->source = {chunk.id, reader.position().offset};
    if (held != nullptr && !Emit(std::move(held))) {
      stopped = true;
      break;
    }
    held = std::move(batch);
  }
  if (held != nullptr && !stopped && !stop_) {
    held->source.end_offset = reader.position().offset;  // == chunk.end: read to the end
    Emit(std::move(held));
  }
  MutexLock lock(&mu_);
  stats_.Merge(reader.stats());
  if (!stop_) last_read_ = models::Batch::Source{chunk.id, chunk.end};
  // A ratio over a handful of lines means little: judge it once enough lines
  // were read, and at the end of the feed (Run).
  if (stats_.lines < kMinLinesForBadRatio) return OkStatus();
  return models::CheckBadRatio(stats_, options_.max_bad_ratio);
}

void DataFeed::Run() {
  std::optional<uint64_t> completed;
  Status status;
  while (!stop_) {
    const auto asked = std::chrono::steady_clock::now();
    StatusOr<protocol::DataChunkInfo> chunk = source_->Next(completed);
    if (stop_) break;
    if (!chunk.ok()) {
      status = chunk.status();
      break;
    }
    {
      MutexLock lock(&mu_);
      progress_ = {chunk->chunks_total, chunk->chunks_completed};
    }
    if (chunk->done) break;
    if (chunk->retry) {
      // Nothing yet: ask again (the scheduler held the request for a while).
      if (!SleepUntil(asked + kMinRetryInterval)) break;
      continue;
    }
    TESSERA_LOG(kDebug) << "chunk " << chunk->id << " (epoch " << chunk->epoch << "): "
                        << chunk->path << " [" << chunk->begin << ", " << chunk->end << ")";
    status = ReadChunk(*chunk);
    if (!status.ok()) break;
    completed = chunk->id;
  }
  {
    MutexLock lock(&mu_);
    if (status.ok()) status = models::CheckBadRatio(stats_, options_.max_bad_ratio);
    error_ = status;
  }
  queue_.Close();
}

}  // namespace tessera::worker
