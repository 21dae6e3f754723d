// A/B statistics of click-through rates (issue 8, "A/B results"): the
// Wilson score interval of one arm's CTR and the two-proportion z-test
// between two arms. Pure functions; thread-safe.
//
//   Wilson (95%, z = 1.959964): for c clicks of n impressions, p = c/n,
//     center = (p + z^2/2n) / (1 + z^2/n),
//     half   = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2).
//   Two-proportion z-test (pooled): p = (c1+c2)/(n1+n2),
//     z = (p1 - p2) / sqrt(p(1-p)(1/n1 + 1/n2)), p-value = erfc(|z|/sqrt 2)
//     (two-sided).
//
// Example:
//   CtrInterval ci = WilsonInterval(30, 1000);       // [0.0211, 0.0425]
//   ZTest t = TwoProportionZTest(30, 1000, 50, 1000); // z = -2.28, p = 0.0225
#ifndef TESSERA_FEEDBACK_AB_STATS_H_
#define TESSERA_FEEDBACK_AB_STATS_H_

#include <cstdint>

namespace tessera::feedback {

inline constexpr double kZ95 = 1.959963984540054;

struct CtrInterval {
  double ctr = 0;   // clicks / impressions (0 without impressions)
  double low = 0;   // Wilson lower bound
  double high = 0;  // Wilson upper bound (1 without impressions)
};

// REQUIRES: clicks <= impressions. No impressions: ctr 0, [0, 1].
CtrInterval WilsonInterval(uint64_t clicks, uint64_t impressions, double z = kZ95);

struct ZTest {
  double z = 0;        // positive when arm 1's CTR is the higher
  double p_value = 1;  // two-sided; 1 when undefined (no impressions, or
                       // no variance: both CTRs 0 or both 1)
};

// Arm 1 (c1 of n1) against arm 2 (c2 of n2). REQUIRES: c <= n for each.
ZTest TwoProportionZTest(uint64_t c1, uint64_t n1, uint64_t c2, uint64_t n2);

}  // namespace tessera::feedback

#endif  // TESSERA_FEEDBACK_AB_STATS_H_
