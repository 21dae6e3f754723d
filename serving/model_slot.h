// The model one A/B arm answers with right now: a std::shared_ptr published
// atomically. A request takes one reference with Get() and scores with it
// to the end, so a response never mixes versions; whoever publishes a new
// model (serving/model_follower.h) learns that the old one is no longer in
// use when the last such reference is dropped (its deleter runs).
//
// Thread-safe. (ThreadSanitizer with GCC 12's libstdc++ reports a race
// inside std::atomic<std::shared_ptr>'s lock-bit load/store: a known false
// positive, google/sanitizers#1558.)
#ifndef TESSERA_SERVING_MODEL_SLOT_H_
#define TESSERA_SERVING_MODEL_SLOT_H_

#include <atomic>
#include <memory>

#include "serving/served_model.h"

namespace tessera::serving {

class ModelSlot {
 public:
  // The current model, or null before the first Set.
  std::shared_ptr<const ServedModel> Get() const { return model_.load(); }
  // Serves `model` from now on; drops the slot's reference to the previous.
  void Set(std::shared_ptr<const ServedModel> model) { model_.store(std::move(model)); }

 private:
  std::atomic<std::shared_ptr<const ServedModel>> model_;
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_MODEL_SLOT_H_
