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
}  // namespace

DataFeed::DataFeed(DataFeedOptions options, const models::Schema* schema,
                   protocol::ClusterMember* member)
    : options_(std::move(options)), schema_(schema), member_(member) {}

DataFeed::~DataFeed() { Stop(); }

Status DataFeed::Start() {
  TESSERA_ASSIGN_OR_RETURN(
      builder_, models::BatchBuilder::Create(schema_, {.group_field = options_.group_field}));
  thread_ = std::thread([this] { Run(); });
  return OkStatus();
}

void DataFeed::Stop() {
  stop_ = true;
  {
    MutexLock lock(&mu_);
    queued_ = 0;  // unblock a feed thread waiting for room
  }
  queue_.Close();
  if (thread_.joinable()) thread_.join();
}

StatusOr<std::unique_ptr<models::Batch>> DataFeed::Next() {
  std::optional<std::unique_ptr<models::Batch>> batch =
      queue_.Pop(std::chrono::steady_clock::time_point::max());
  MutexLock lock(&mu_);
  if (batch.has_value()) {
    --queued_;
    return std::move(*batch);
  }
  if (!error_.ok()) return error_;
  return std::unique_ptr<models::Batch>();
}

models::DataStats DataFeed::stats() const {
  MutexLock lock(&mu_);
  return stats_;
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
  while (!stop_) {
    auto batch = std::make_unique<models::Batch>();
    TESSERA_ASSIGN_OR_RETURN(int n, reader.NextBatch(builder_.get(), batch.get(), options_.batch_size));
    if (n == 0) break;
    if (!Emit(std::move(batch))) break;
  }
  MutexLock lock(&mu_);
  stats_.Merge(reader.stats());
  // A ratio over a handful of lines means little: judge it once enough lines
  // were read, and at the end of the feed (Run).
  if (stats_.lines < kMinLinesForBadRatio) return OkStatus();
  return models::CheckBadRatio(stats_, options_.max_bad_ratio);
}

void DataFeed::Run() {
  std::optional<uint64_t> completed;
  Status status;
  while (!stop_) {
    StatusOr<protocol::DecodedMessage> reply = member_->Call(
        kSchedulerId, [&](const protocol::Header& h) { return protocol::EncodeDataRequest(h, completed); },
        DeadlineIn(kSchedulerTimeout));
    StatusOr<protocol::DataChunkInfo> chunk =
        reply.ok() ? reply->AsDataChunkReply() : StatusOr<protocol::DataChunkInfo>(reply.status());
    if (!chunk.ok()) {
      status = chunk.status();
      break;
    }
    {
      MutexLock lock(&mu_);
      progress_ = {chunk->chunks_total, chunk->chunks_completed};
    }
    if (chunk->done) break;
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
