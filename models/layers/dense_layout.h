// The list of a model's dense blocks (Model::dense_blocks()) with the index
// of each, so a model addresses its parameter spans by index. A block of
// size 0 (e.g. "numeric.w" when the schema has no numeric field) is left out
// of the list: its index is kAbsent and Get() returns an empty span.
//
// Thread-compatible.
#ifndef TESSERA_MODELS_LAYERS_DENSE_LAYOUT_H_
#define TESSERA_MODELS_LAYERS_DENSE_LAYOUT_H_

#include <span>
#include <utility>
#include <vector>

#include "models/model.h"

namespace tessera::models::layers {

class DenseLayout {
 public:
  static constexpr int kAbsent = -1;

  // Appends `block` unless its size is 0; returns its index or kAbsent.
  int Add(DenseBlock block) {
    if (block.size == 0) return kAbsent;
    blocks_.push_back(std::move(block));
    return static_cast<int>(blocks_.size()) - 1;
  }

  const std::vector<DenseBlock>& blocks() const { return blocks_; }
  int size() const { return static_cast<int>(blocks_.size()); }

  // True if `spans` has one span per block, of the block's size.
  template <typename T>
  bool Matches(std::span<const std::span<T>> spans) const {
    if (spans.size() != blocks_.size()) return false;
    for (size_t i = 0; i < spans.size(); ++i) {
      if (spans[i].size() != blocks_[i].size) return false;
    }
    return true;
  }

  // spans[index], or an empty span for kAbsent.
  template <typename T>
  static std::span<T> Get(std::span<const std::span<T>> spans, int index) {
    return index == kAbsent ? std::span<T>() : spans[index];
  }

 private:
  std::vector<DenseBlock> blocks_;
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_DENSE_LAYOUT_H_
