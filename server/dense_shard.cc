#include "server/dense_shard.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "server/initializer.h"

namespace tessera::server {

// One owned range. Its state is planar over the whole range (k arrays of
// end - begin floats), so a push of the whole range hands the optimizer the
// state as it is; a push of a part gathers and scatters the part's slices.
struct DenseShard::Range {
  Range(const DenseShard::Options& options, uint64_t begin_in, uint64_t end_in)
      : begin(begin_in), end(end_in) {
    const size_t n = end - begin;
    MutexLock lock(&mu);  // Not needed before publication; keeps the analysis happy.
    values.resize(n);
    InitializeSlice(options.initializer, options.id, kDenseKey, begin, values);
    state.resize(n * options.optimizer->state_floats_per_dim());
    options.optimizer->InitState(state);
  }

  const uint64_t begin;
  const uint64_t end;
  mutable Mutex mu;
  // Protected by mu.
  std::vector<float> values ABSL_GUARDED_BY(mu);
  std::vector<float> state ABSL_GUARDED_BY(mu);
  uint32_t step ABSL_GUARDED_BY(mu) = 0;  // Pushes to this range (saturates).
};

namespace {

std::string RangeText(uint64_t begin, uint64_t end) {
  return absl::StrCat("[", begin, ", ", end, ")");
}

}  // namespace

StatusOr<std::unique_ptr<DenseShard>> DenseShard::Create(const Options& options) {
  if (options.optimizer == nullptr) return InvalidArgumentError("dense shard: no optimizer");
  std::vector<DenseRange> sorted = options.ranges;
  std::sort(sorted.begin(), sorted.end(),
            [](const DenseRange& a, const DenseRange& b) { return a.begin < b.begin; });
  uint64_t previous_end = 0;
  for (const DenseRange& r : sorted) {
    if (r.begin >= r.end || r.end > options.size || r.begin < previous_end) {
      return InvalidArgumentError(absl::StrCat("dense table ", options.id, ": range ",
                                               RangeText(r.begin, r.end),
                                               " is empty, overlaps another or leaves [0, ",
                                               options.size, ")"));
    }
    previous_end = r.end;
  }
  return std::unique_ptr<DenseShard>(new DenseShard(options, std::move(sorted)));
}

DenseShard::DenseShard(const Options& options, std::vector<DenseRange> sorted)
    : id_(options.id),
      size_(options.size),
      optimizer_(options.optimizer),
      ranges_(std::move(sorted)) {
  data_.reserve(ranges_.size());
  for (const DenseRange& r : ranges_) {
    data_.push_back(std::make_unique<Range>(options, r.begin, r.end));
  }
}

DenseShard::~DenseShard() = default;

DenseShard::Range* DenseShard::Find(uint64_t begin, uint64_t end) const {
  // The last range starting at or before `begin`.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), begin,
                             [](uint64_t b, const DenseRange& r) { return b < r.begin; });
  if (it == ranges_.begin()) return nullptr;
  --it;
  if (end > it->end) return nullptr;
  return data_[it - ranges_.begin()].get();
}

Status DenseShard::Pull(uint64_t begin, uint64_t end, std::span<float> out) const {
  if (begin > end) {
    return InvalidArgumentError(absl::StrCat("dense pull: begin > end in ", RangeText(begin, end)));
  }
  if (out.size() != end - begin) {
    return InvalidArgumentError(absl::StrCat("dense pull: output holds ", out.size(),
                                             " floats for ", RangeText(begin, end)));
  }
  if (begin == end) return OkStatus();
  const Range* range = Find(begin, end);
  if (range == nullptr) {
    return OutOfRangeError(absl::StrCat("dense table ", id_, ": ", RangeText(begin, end),
                                        " is not inside one range owned by this server"));
  }
  MutexLock lock(&range->mu);
  std::copy_n(range->values.begin() + (begin - range->begin), out.size(), out.begin());
  return OkStatus();
}

Status DenseShard::Push(uint64_t begin, std::span<const float> grads) {
  const size_t n = grads.size();
  if (n == 0) return OkStatus();
  Range* range = begin < size_ && n <= size_ - begin ? Find(begin, begin + n) : nullptr;
  if (range == nullptr) {
    return OutOfRangeError(absl::StrCat("dense table ", id_, ": push to ",
                                        RangeText(begin, begin + n),
                                        " is not inside one range owned by this server"));
  }
  MutexLock lock(&range->mu);
  if (range->step != std::numeric_limits<uint32_t>::max()) ++range->step;
  const size_t len = range->end - range->begin;
  const size_t offset = begin - range->begin;
  std::span<float> values = std::span<float>(range->values).subspan(offset, n);
  if (n == len) {
    optimizer_->Update(values, range->state, grads, range->step);
    return OkStatus();
  }
  // Part of the range: gather the part's slice of each state array.
  const size_t k = optimizer_->state_floats_per_dim();
  std::vector<float> state(k * n);
  for (size_t j = 0; j < k; ++j) {
    std::copy_n(range->state.begin() + j * len + offset, n, state.begin() + j * n);
  }
  optimizer_->Update(values, state, grads, range->step);
  for (size_t j = 0; j < k; ++j) {
    std::copy_n(state.begin() + j * n, n, range->state.begin() + j * len + offset);
  }
  return OkStatus();
}

Status DenseShard::RestoreRange(uint64_t begin, uint64_t end, uint32_t step,
                                std::span<const float> values, std::span<const float> state) {
  const size_t k = optimizer_->state_floats_per_dim();
  const uint64_t n = end - begin;
  if (begin >= end || end > size_ || values.size() != n ||
      (!state.empty() && state.size() != k * n)) {
    return InvalidArgumentError(absl::StrCat("dense table ", id_, ": cannot restore ",
                                             RangeText(begin, end), " from ", values.size(),
                                             " values and ", state.size(), " state floats"));
  }
  for (const auto& range : data_) {
    const uint64_t lo = std::max(begin, range->begin), hi = std::min(end, range->end);
    if (lo >= hi) continue;
    MutexLock lock(&range->mu);
    const uint64_t len = range->end - range->begin;
    std::copy(values.begin() + (lo - begin), values.begin() + (hi - begin),
              range->values.begin() + (lo - range->begin));
    for (size_t j = 0; j < k && !state.empty(); ++j) {
      std::copy(state.begin() + j * n + (lo - begin), state.begin() + j * n + (hi - begin),
                range->state.begin() + j * len + (lo - range->begin));
    }
    range->step = step;
  }
  return OkStatus();
}

void DenseShard::ForEachRange(const std::function<void(const RangeView&)>& fn) const {
  for (const auto& range : data_) {
    MutexLock lock(&range->mu);
    fn(RangeView{range->begin, range->end, range->step, range->values, range->state});
  }
}

uint64_t DenseShard::num_elements() const {
  uint64_t n = 0;
  for (const DenseRange& r : ranges_) n += r.end - r.begin;
  return n;
}

size_t DenseShard::memory_bytes() const {
  size_t bytes = 0;
  for (const auto& range : data_) {
    MutexLock lock(&range->mu);
    bytes += (range->values.capacity() + range->state.capacity()) * sizeof(float);
  }
  return bytes;
}

}  // namespace tessera::server
