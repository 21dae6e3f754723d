#include "scheduler/data_assigner.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace tessera::scheduler {
namespace {

using json = nlohmann::json;

// Bytes of [begin, end), or 0 when the end is not known.
uint64_t KnownBytes(uint64_t begin, uint64_t end) {
  return end == kChunkToEndOfFile || end < begin ? 0 : end - begin;
}

}  // namespace

DataAssigner::DataAssigner(DataAssignerOptions options)
    : num_workers_(std::max(options.num_workers, 1)),
      static_order_(options.static_order),
      static_chunks_(std::move(options.chunks)),
      epochs_(options.epochs),
      closed_(!options.streaming),
      queues_(options.static_order ? num_workers_ : 1),
      handed_(num_workers_),
      absent_(num_workers_, false) {
  for (uint32_t e = 0; e < epochs_; ++e) {
    for (const DataChunk& c : static_chunks_) AddRecord({next_id_++, e, c}, c.begin);
  }
  static_ids_ = next_id_;
  for (const auto& [id, record] : live_) Enqueue(id);
}

DataAssigner::DataAssigner(std::vector<DataChunk> chunks, uint32_t epochs, int num_workers,
                           bool static_order)
    : DataAssigner(DataAssignerOptions{.chunks = std::move(chunks),
                                       .epochs = epochs,
                                       .num_workers = num_workers,
                                       .static_order = static_order}) {}

std::deque<uint64_t>& DataAssigner::QueueOf(int worker) {
  return queues_[static_order_ ? worker % num_workers_ : 0];
}

std::deque<uint64_t>& DataAssigner::HeirQueue() {
  if (!static_order_) return queues_[0];
  for (int w = 0; w < num_workers_; ++w) {
    if (!absent_[w]) return queues_[w];
  }
  return queues_[0];  // every worker gone: kept for whoever comes back
}

void DataAssigner::Enqueue(uint64_t id) {
  const int worker = static_cast<int>(id % static_cast<uint64_t>(num_workers_));
  // A dead worker's share goes where Requeue sent its queue.
  const bool gone = static_order_ && absent_[worker];
  (gone ? HeirQueue() : QueueOf(worker)).push_back(id);
}

void DataAssigner::AddRecord(Assignment assignment, uint64_t trained) {
  bytes_total_ += KnownBytes(assignment.chunk.begin, assignment.chunk.end);
  if (assignment.chunk.end != kChunkToEndOfFile) bytes_completed_ += trained - assignment.chunk.begin;
  ++total_;
  const uint64_t id = assignment.id;
  live_[id] = Record{std::move(assignment), trained, -1};
}

Status DataAssigner::AddChunks(std::vector<DataChunk> chunks) {
  if (closed_) return FailedPreconditionError("data stream is closed: no chunks can be added");
  for (DataChunk& chunk : chunks) {
    auto it = stream_file_index_.find(chunk.path);
    if (it == stream_file_index_.end()) {
      it = stream_file_index_.emplace(chunk.path, stream_files_dropped_ + stream_files_.size()).first;
      stream_files_.push_back({chunk.path, 0});
    }
    ++stream_files_[it->second - stream_files_dropped_].open_chunks;
    const uint64_t id = next_id_++;
    const uint64_t begin = chunk.begin;
    AddRecord({id, 0, std::move(chunk)}, begin);
    Enqueue(id);
  }
  return OkStatus();
}

void DataAssigner::Close() { closed_ = true; }

NextChunk DataAssigner::Next(int worker, std::optional<uint64_t> /*completed*/) {
  if (worker < 0 || worker >= num_workers_) return {};
  absent_[worker] = false;
  std::deque<uint64_t>* own = &QueueOf(worker);
  if (static_order_ && own->empty()) {
    // Chunks left in a dead worker's queue (the heir it was shared out to
    // died too): whoever has nothing else takes them.
    for (int w = 0; w < num_workers_; ++w) {
      if (absent_[w] && !queues_[w].empty()) {
        own = &queues_[w];
        break;
      }
    }
  }
  std::deque<uint64_t>& queue = *own;
  while (!queue.empty()) {
    const uint64_t id = queue.front();
    queue.pop_front();
    auto it = live_.find(id);
    if (it == live_.end() || it->second.holder >= 0) continue;  // cannot happen
    Record& record = it->second;
    record.holder = worker;
    handed_[worker].push_back(id);
    if (id < static_ids_) {
      max_touched_epoch_ = std::max<int64_t>(max_touched_epoch_, record.assignment.epoch);
    }
    return {NextChunk::Kind::kChunk, Remaining(record)};
  }
  return {closed_ ? NextChunk::Kind::kFinished : NextChunk::Kind::kNotYet, {}};
}

Assignment DataAssigner::Remaining(const Record& record) const {
  Assignment a = record.assignment;
  a.chunk.begin = record.trained;
  return a;
}

bool DataAssigner::Trained(int worker, uint64_t chunk_id, uint64_t offset) {
  if (worker < 0 || worker >= num_workers_) return false;
  std::deque<uint64_t>& held = handed_[worker];
  auto pos = std::find(held.begin(), held.end(), chunk_id);
  if (pos == held.end()) return false;
  // Everything handed before chunk_id is done.
  const std::vector<uint64_t> before(held.begin(), pos);
  held.erase(held.begin(), pos);
  for (uint64_t id : before) MarkFullyTrained(id);
  Record& record = live_.at(chunk_id);
  AdvanceTrained(&record, offset);
  if (record.trained >= record.assignment.chunk.end) {
    held.pop_front();
    MarkFullyTrained(chunk_id);
  }
  return true;
}

void DataAssigner::AdvanceTrained(Record* record, uint64_t offset) {
  const uint64_t end = record->assignment.chunk.end;
  const uint64_t target = std::min(offset, end);
  if (target <= record->trained) return;
  if (end != kChunkToEndOfFile) bytes_completed_ += target - record->trained;
  record->trained = target;
}

void DataAssigner::MarkFullyTrained(uint64_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  AdvanceTrained(&it->second, kChunkToEndOfFile);
  const std::string path = it->second.assignment.chunk.path;
  live_.erase(it);
  ++completed_;
  if (id < static_ids_) return;
  auto file = stream_file_index_.find(path);
  if (file == stream_file_index_.end()) return;
  --stream_files_[file->second - stream_files_dropped_].open_chunks;
  // Move the watermark over the fully trained files at the front.
  while (!stream_files_.empty() && stream_files_.front().open_chunks == 0) {
    watermark_ = stream_files_.front().path;
    stream_file_index_.erase(watermark_);
    stream_files_.pop_front();
    ++stream_files_dropped_;
  }
}

void DataAssigner::Requeue(int worker) {
  if (worker < 0 || worker >= num_workers_) return;
  // Static order: the dead worker's queue goes to its heir, the lowest
  // live worker (worker 0 unless it died too), as will its share of chunks
  // appended later (until it asks again). Dynamic order: the one queue.
  if (static_order_) absent_[worker] = true;
  std::deque<uint64_t>& heir = HeirQueue();
  std::deque<uint64_t>& held = handed_[worker];
  // Front of the heir's queue, in hand-out order: partially trained first.
  for (auto it = held.rbegin(); it != held.rend(); ++it) {
    live_.at(*it).holder = -1;
    heir.push_front(*it);
  }
  held.clear();
  if (static_order_ && &heir != &queues_[worker]) {
    std::deque<uint64_t>& orphaned = queues_[worker];
    heir.insert(heir.end(), orphaned.begin(), orphaned.end());
    orphaned.clear();
  }
}

uint32_t DataAssigner::FirstUntouchedEpoch() const {
  if (static_chunks_.empty()) return epochs_;
  return static_cast<uint32_t>(std::min<int64_t>(max_touched_epoch_ + 1, epochs_));
}

DataAssignerState DataAssigner::Export() const {
  DataAssignerState state;
  state.static_chunks = static_chunks_;
  state.epochs = epochs_;
  state.first_untouched_epoch = FirstUntouchedEpoch();
  for (const auto& [id, record] : live_) {
    const Assignment& a = record.assignment;
    if (id < static_ids_ && a.epoch >= state.first_untouched_epoch) continue;
    state.chunks.push_back({id, a.epoch, a.chunk.path, a.chunk.begin, record.trained, a.chunk.end});
  }
  state.next_id = next_id_;
  state.watermark = watermark_;
  for (const StreamFileRecord& f : stream_files_) state.stream_files.push_back({f.path, f.open_chunks == 0});
  state.completed_chunks = completed_;
  state.completed_bytes = bytes_completed_;
  return state;
}

Status DataAssigner::Restore(const DataAssignerState& state) {
  if (max_touched_epoch_ >= 0 || total_ != live_.size() ||
      std::any_of(handed_.begin(), handed_.end(), [](const auto& h) { return !h.empty(); })) {
    return FailedPreconditionError("data assigner: Restore after chunks were handed out");
  }
  TESSERA_RETURN_IF_ERROR(ValidateDataAssignerState(state));
  const uint64_t chunks_per_epoch = state.static_chunks.size();
  live_.clear();
  for (auto& q : queues_) q.clear();
  stream_files_.clear();
  stream_file_index_.clear();
  stream_files_dropped_ = 0;
  total_ = completed_ = bytes_total_ = bytes_completed_ = 0;
  static_chunks_ = state.static_chunks;
  epochs_ = state.epochs;
  static_ids_ = chunks_per_epoch * epochs_;
  next_id_ = std::max(state.next_id, static_ids_);
  max_touched_epoch_ = static_cast<int64_t>(state.first_untouched_epoch) - 1;
  for (const DataAssignerState::Chunk& c : state.chunks) {
    AddRecord({c.id, c.epoch, {c.path, c.begin, c.end}}, c.trained);
  }
  for (uint32_t e = state.first_untouched_epoch; e < epochs_; ++e) {
    for (uint64_t i = 0; i < chunks_per_epoch; ++i) {
      AddRecord({e * chunks_per_epoch + i, e, static_chunks_[i]}, static_chunks_[i].begin);
    }
  }
  for (const auto& [id, record] : live_) Enqueue(id);
  // Stream files: their open chunks are among the restored ones.
  watermark_ = state.watermark;
  for (const DataAssignerState::StreamFile& f : state.stream_files) {
    stream_file_index_.emplace(f.path, stream_files_.size());
    stream_files_.push_back({f.path, 0});
  }
  for (const auto& [id, record] : live_) {
    if (id < static_ids_) continue;
    auto it = stream_file_index_.find(record.assignment.chunk.path);
    if (it != stream_file_index_.end()) ++stream_files_[it->second].open_chunks;
  }
  while (!stream_files_.empty() && stream_files_.front().open_chunks == 0) {
    watermark_ = stream_files_.front().path;
    stream_file_index_.erase(watermark_);
    stream_files_.pop_front();
    ++stream_files_dropped_;
  }
  // Progress continues from the checkpoint's (which includes the partially
  // trained bytes counted by AddRecord).
  completed_ = state.completed_chunks;
  total_ += completed_;
  bytes_total_ += state.completed_bytes - std::min(state.completed_bytes, bytes_completed_);
  bytes_completed_ = std::max(state.completed_bytes, bytes_completed_);
  return OkStatus();
}

Status ValidateDataAssignerState(const DataAssignerState& state) {
  const uint64_t static_ids = state.static_chunks.size() * uint64_t{state.epochs};
  if (state.first_untouched_epoch > state.epochs) {
    return InvalidArgumentError("data state: first_untouched_epoch > epochs");
  }
  std::optional<uint64_t> previous;
  for (const DataAssignerState::Chunk& c : state.chunks) {
    const std::string where = absl::StrCat("data state: chunk ", c.id, " (", c.path, ")");
    if (previous.has_value() && c.id <= *previous) return InvalidArgumentError(where + ": ids not increasing");
    previous = c.id;
    if (c.begin > c.trained || c.trained >= c.end) {
      return InvalidArgumentError(absl::StrCat(where, ": trained offset ", c.trained, " outside [", c.begin,
                                               ", ", c.end, ")"));
    }
    if (c.id < static_ids) {
      const uint64_t per_epoch = state.static_chunks.size();
      if (c.epoch != c.id / per_epoch || c.epoch >= state.first_untouched_epoch) {
        return InvalidArgumentError(where + ": epoch does not match the static input");
      }
    } else if (c.id >= state.next_id) {
      return InvalidArgumentError(where + ": id not below next_id");
    }
  }
  std::set<std::string> files;
  for (const DataAssignerState::StreamFile& f : state.stream_files) {
    if (!files.insert(f.path).second) return InvalidArgumentError("data state: stream file twice: " + f.path);
  }
  return OkStatus();
}

// ---- JSON ------------------------------------------------------------------

std::string DataAssignerStateToJson(const DataAssignerState& state) {
  json statics = json::array();
  for (const DataChunk& c : state.static_chunks) {
    statics.push_back({{"path", c.path}, {"begin", c.begin}, {"end", c.end}});
  }
  json chunks = json::array();
  for (const DataAssignerState::Chunk& c : state.chunks) {
    chunks.push_back({{"id", c.id},
                      {"epoch", c.epoch},
                      {"path", c.path},
                      {"begin", c.begin},
                      {"trained", c.trained},
                      {"end", c.end}});
  }
  json files = json::array();
  for (const DataAssignerState::StreamFile& f : state.stream_files) {
    files.push_back({{"path", f.path}, {"trained", f.trained}});
  }
  const json doc = {{"format", "tessera-data-state-1"},
                    {"static_chunks", std::move(statics)},
                    {"epochs", state.epochs},
                    {"first_untouched_epoch", state.first_untouched_epoch},
                    {"chunks", std::move(chunks)},
                    {"next_id", state.next_id},
                    {"watermark", state.watermark},
                    {"stream_files", std::move(files)},
                    {"completed_chunks", state.completed_chunks},
                    {"completed_bytes", state.completed_bytes}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

// Reads typed members, keeping the first error (named by its JSON path).
class JsonReader {
 public:
  const json* Member(const json& obj, const std::string& path, const char* key) {
    if (!obj.is_object() || !obj.contains(key)) {
      Fail(path, key, "missing");
      return nullptr;
    }
    return &obj[key];
  }
  template <typename T>
  void Unsigned(const json& obj, const std::string& path, const char* key, T* out) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return;
    if (!v->is_number_unsigned() || v->get<uint64_t>() > std::numeric_limits<T>::max()) {
      return Fail(path, key, "expected an unsigned integer");
    }
    *out = static_cast<T>(v->get<uint64_t>());
  }
  void String(const json& obj, const std::string& path, const char* key, std::string* out) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(path, key, "expected a string");
    *out = v->get<std::string>();
  }
  void Bool(const json& obj, const std::string& path, const char* key, bool* out) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return;
    if (!v->is_boolean()) return Fail(path, key, "expected true or false");
    *out = v->get<bool>();
  }
  // The elements of array member `key` (empty on error).
  const json::array_t* Array(const json& obj, const std::string& path, const char* key) {
    const json* v = Member(obj, path, key);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      Fail(path, key, "expected an array");
      return nullptr;
    }
    return v->get_ptr<const json::array_t*>();
  }
  void Fail(const std::string& path, const char* key, const std::string& what) {
    if (status_.ok()) {
      status_ = InvalidArgumentError(absl::StrCat("data state: ", path.empty() ? "" : path + ".", key, ": ", what));
    }
  }
  const Status& status() const { return status_; }

 private:
  Status status_;
};

}  // namespace

StatusOr<DataAssignerState> DataAssignerStateFromJson(std::string_view text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgumentError("data state: not a JSON object");
  JsonReader r;
  DataAssignerState s;
  std::string format;
  r.String(doc, "", "format", &format);
  if (r.status().ok() && format != "tessera-data-state-1") {
    return InvalidArgumentError("data state: unknown format '" + format + "'");
  }
  if (const json::array_t* a = r.Array(doc, "", "static_chunks")) {
    for (size_t i = 0; i < a->size(); ++i) {
      const std::string p = absl::StrCat("static_chunks[", i, "]");
      DataChunk& c = s.static_chunks.emplace_back();
      r.String((*a)[i], p, "path", &c.path);
      r.Unsigned((*a)[i], p, "begin", &c.begin);
      r.Unsigned((*a)[i], p, "end", &c.end);
    }
  }
  r.Unsigned(doc, "", "epochs", &s.epochs);
  r.Unsigned(doc, "", "first_untouched_epoch", &s.first_untouched_epoch);
  if (const json::array_t* a = r.Array(doc, "", "chunks")) {
    for (size_t i = 0; i < a->size(); ++i) {
      const std::string p = absl::StrCat("chunks[", i, "]");
      DataAssignerState::Chunk& c = s.chunks.emplace_back();
      r.Unsigned((*a)[i], p, "id", &c.id);
      r.Unsigned((*a)[i], p, "epoch", &c.epoch);
      r.String((*a)[i], p, "path", &c.path);
      r.Unsigned((*a)[i], p, "begin", &c.begin);
      r.Unsigned((*a)[i], p, "trained", &c.trained);
      r.Unsigned((*a)[i], p, "end", &c.end);
    }
  }
  r.Unsigned(doc, "", "next_id", &s.next_id);
  r.String(doc, "", "watermark", &s.watermark);
  if (const json::array_t* a = r.Array(doc, "", "stream_files")) {
    for (size_t i = 0; i < a->size(); ++i) {
      const std::string p = absl::StrCat("stream_files[", i, "]");
      DataAssignerState::StreamFile& f = s.stream_files.emplace_back();
      r.String((*a)[i], p, "path", &f.path);
      r.Bool((*a)[i], p, "trained", &f.trained);
    }
  }
  r.Unsigned(doc, "", "completed_chunks", &s.completed_chunks);
  r.Unsigned(doc, "", "completed_bytes", &s.completed_bytes);
  TESSERA_RETURN_IF_ERROR(r.status());
  TESSERA_RETURN_IF_ERROR(ValidateDataAssignerState(s));
  return s;
}

}  // namespace tessera::scheduler
