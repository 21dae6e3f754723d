#include "common/initializer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "common/sharding.h"

namespace tessera {
namespace {

// The splitmix64 increment: the stream of a row is Mix64(base + i * kGamma).
constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;

// Seed of one row's stream. Chained so that (seed, table, key) triples that
// differ in any field give unrelated streams.
uint64_t RowBase(const InitializerConfig& config, TableId table, Key key) {
  return Mix64(Mix64(Mix64(config.seed) ^ table) ^ key);
}

uint64_t Draw(uint64_t base, uint64_t counter) { return Mix64(base + counter * kGamma); }

// Uniform in [0, 1) with 24 random bits (exact in float).
float UnitFloat(uint64_t bits) { return static_cast<float>(bits >> 40) * 0x1.0p-24f; }

// Uniform in (0, 1] with 53 random bits, safe for log().
double OpenUnitDouble(uint64_t bits) { return static_cast<double>((bits >> 11) + 1) * 0x1.0p-53; }

void FillUniform(uint64_t base, float scale, uint64_t first, std::span<float> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = scale * (2.0f * UnitFloat(Draw(base, first + i)) - 1.0f);
  }
}

// Element e belongs to pair j = e / 2 whose two uniforms are draws 2j and
// 2j + 1; even elements take the cosine, odd ones the sine.
void FillNormal(uint64_t base, float scale, uint64_t first, std::span<float> out) {
  size_t i = 0;
  uint64_t e = first;
  while (i < out.size()) {
    const uint64_t pair = e / 2;
    const double radius = std::sqrt(-2.0 * std::log(OpenUnitDouble(Draw(base, 2 * pair))));
    const double angle = 2.0 * std::numbers::pi * OpenUnitDouble(Draw(base, 2 * pair + 1));
    if (e % 2 == 0) {
      out[i++] = static_cast<float>(scale * radius * std::cos(angle));
      ++e;
      if (i == out.size()) break;
    }
    out[i++] = static_cast<float>(scale * radius * std::sin(angle));
    ++e;
  }
}

}  // namespace

void InitializeSlice(const InitializerConfig& config, TableId table, Key key,
                     uint64_t first_index, std::span<float> out) {
  switch (config.type) {
    case InitializerType::kZeros:
      break;
    case InitializerType::kUniform:
      return FillUniform(RowBase(config, table, key), config.scale, first_index, out);
    case InitializerType::kNormal:
      return FillNormal(RowBase(config, table, key), config.scale, first_index, out);
  }
  // kZeros, and an enum value that is not one of ours: never garbage.
  std::fill(out.begin(), out.end(), 0.0f);
}

void InitializeRow(const InitializerConfig& config, TableId table, Key key,
                   std::span<float> out) {
  InitializeSlice(config, table, key, 0, out);
}

void MissingRowValue(const TableConfig& config, Key key, std::span<float> out) {
  if (config.admission.missing_reads_zero()) {
    std::fill(out.begin(), out.end(), 0.0f);
  } else {
    InitializeRow(config.initializer, config.id, key, out);
  }
}

}  // namespace tessera
