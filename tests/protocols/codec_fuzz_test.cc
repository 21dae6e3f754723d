// Deterministic fuzzing of DecodedMessage::Decode and every accessor: hostile
// input may be accepted or rejected, but must never crash, hang or read out of
// bounds (run under TESSERA_SANITIZE=address to check the last part).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "protocols/codec.h"
#include "tests/protocols/codec_test_util.h"
#include "tests/protocols/touch_message.h"
#include "tests/testing/status_matchers.h"

namespace tessera::protocol {
namespace {

using testing::SampleFrames;

// Decodes `frame` and runs every accessor, touching every byte a successful
// accessor returns. Returns whether Decode succeeded.
bool Exercise(const Frame& frame, uint64_t* sink) {
  StatusOr<DecodedMessage> decoded = DecodedMessage::Decode(frame);
  if (!decoded.ok()) return false;
  TouchEveryAccessor(*decoded, sink);
  return true;
}

const Frame& SampleNamed(const std::vector<std::pair<std::string, Frame>>& frames,
                         const std::string& name) {
  for (const auto& [n, f] : frames) {
    if (n == name) return f;
  }
  ADD_FAILURE() << "no sample " << name;
  return frames.front().second;
}

TEST(CodecFuzzTest, TruncationsAtEveryLength) {
  const auto frames = SampleFrames();
  uint64_t sink = 0;
  for (const char* name : {"ClusterView", "Push", "RegisterRequest", "ErrorReply", "DensePush"}) {
    SCOPED_TRACE(name);
    const Frame& full = SampleNamed(frames, name);
    ASSERT_TRUE(Exercise(full, &sink));
    for (size_t len = 0; len < full.size(); ++len) {
      const bool accepted = Exercise(Frame::Copy(full.data(), len), &sink);
      // The last bytes hold the first object built (a vector or string),
      // possibly followed by up to 7 bytes of alignment padding; a prefix that
      // cuts into the object itself must be rejected.
      if (len + 8 <= full.size()) {
        EXPECT_FALSE(accepted) << "prefix of " << len << " bytes";
      }
    }
  }
  EXPECT_NE(sink, 0u);
}

TEST(CodecFuzzTest, SingleBitFlipsAtEveryPosition) {
  const auto frames = SampleFrames();
  uint64_t sink = 0;
  size_t accepted = 0, total = 0;
  for (const char* name : {"Pull", "Push", "Heartbeat", "RegisterRequest", "ConfigureTables",
                           "ErrorReply", "ValuesReply", "DensePull", "BarrierRequest"}) {
    SCOPED_TRACE(name);
    const Frame& original = SampleNamed(frames, name);
    std::string bytes(original.view());
    for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
      bytes[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      accepted += Exercise(Frame::Copy(bytes.data(), bytes.size()), &sink);
      bytes[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      ++total;
    }
  }
  // Flips in payload bytes (keys, floats, strings) leave valid messages, so
  // the accessors did run on many of them.
  EXPECT_GT(accepted, 0u);
  EXPECT_LT(accepted, total);
  EXPECT_NE(sink, 0u);
}

TEST(CodecFuzzTest, RandomBuffers) {
  std::mt19937_64 rng(20240611);
  uint64_t sink = 0;
  for (int i = 0; i < 20000; ++i) {
    const size_t size = rng() % 400;
    std::string bytes(size, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const int variant = i % 3;
    if (variant >= 1 && size >= 8) bytes.replace(4, 4, "TSRA");
    if (variant == 2 && size >= 8) {
      // A plausible root offset, so the verifier gets past the first check.
      const uint32_t root = 8 + static_cast<uint32_t>(rng() % (size - 7)) / 4 * 4;
      for (int b = 0; b < 4; ++b) bytes[b] = static_cast<char>(root >> (8 * b));
    }
    Exercise(Frame::FromString(std::move(bytes)), &sink);
  }
  SUCCEED() << sink;
}

TEST(CodecFuzzTest, RandomMutationsOfValidMessages) {
  const auto frames = SampleFrames();
  std::mt19937_64 rng(7);
  uint64_t sink = 0;
  size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const Frame& original = frames[rng() % frames.size()].second;
    std::string bytes(original.view());
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0:  // random byte
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:  // small value: offsets, lengths, enum tags
          bytes[at] = static_cast<char>(rng() % 16);
          break;
        case 2:  // large value: lengths, offsets pointing far away
          bytes[at] = static_cast<char>(0xff);
          break;
        default:  // truncate
          bytes.resize(at);
          break;
      }
      if (bytes.empty()) break;
    }
    accepted += Exercise(Frame::FromString(std::move(bytes)), &sink);
  }
  EXPECT_GT(accepted, 0u);
  SUCCEED() << sink;
}

TEST(CodecFuzzTest, MisalignedHostileFrames) {
  // The same hostile bytes through Decode's aligning copy.
  const auto frames = SampleFrames();
  std::mt19937_64 rng(99);
  uint64_t sink = 0;
  for (int i = 0; i < 2000; ++i) {
    const Frame& original = frames[rng() % frames.size()].second;
    auto storage = std::make_shared<std::string>(original.size() + 8, '\0');
    const size_t shift = 1 + rng() % 7;
    std::copy(original.data(), original.data() + original.size(), storage->begin() + shift);
    (*storage)[shift + rng() % original.size()] = static_cast<char>(rng());
    const Frame misaligned(reinterpret_cast<const uint8_t*>(storage->data()) + shift,
                           original.size(), storage);
    Exercise(misaligned, &sink);
  }
  SUCCEED() << sink;
}

}  // namespace
}  // namespace tessera::protocol
