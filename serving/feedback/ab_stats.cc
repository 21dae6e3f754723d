#include "serving/feedback/ab_stats.h"

#include <algorithm>
#include <cmath>

namespace tessera::feedback {

CtrInterval WilsonInterval(uint64_t clicks, uint64_t impressions, double z) {
  if (impressions == 0) return {0, 0, 1};
  const double n = static_cast<double>(impressions);
  const double p = static_cast<double>(clicks) / n;
  const double z2 = z * z;
  const double denom = 1 + z2 / n;
  const double center = (p + z2 / (2 * n)) / denom;
  const double half = z / denom * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  return {p, std::max(0.0, center - half), std::min(1.0, center + half)};
}

ZTest TwoProportionZTest(uint64_t c1, uint64_t n1, uint64_t c2, uint64_t n2) {
  if (n1 == 0 || n2 == 0) return {};
  const double p1 = static_cast<double>(c1) / static_cast<double>(n1);
  const double p2 = static_cast<double>(c2) / static_cast<double>(n2);
  const double pooled = static_cast<double>(c1 + c2) / static_cast<double>(n1 + n2);
  const double variance =
      pooled * (1 - pooled) * (1 / static_cast<double>(n1) + 1 / static_cast<double>(n2));
  if (!(variance > 0)) return {};
  const double z = (p1 - p2) / std::sqrt(variance);
  return {z, std::erfc(std::fabs(z) / std::sqrt(2.0))};
}

}  // namespace tessera::feedback
