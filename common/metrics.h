// Metrics for every node, backed by prometheus-cpp's registry. Components get
// a MetricsRegistry* through their constructor and create the series they
// own; tests read values back through the same objects. Names follow
// tessera_<role>_<what>_<unit> with _total for counters.
//
// Thread-safe. Returned references live as long as the registry.
#ifndef TESSERA_COMMON_METRICS_H_
#define TESSERA_COMMON_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace tessera {

using Counter = prometheus::Counter;
using Gauge = prometheus::Gauge;
using Histogram = prometheus::Histogram;
using MetricLabels = std::map<std::string, std::string>;

// Latency buckets from 20 us to ~20 s (powers of ~2.5).
std::vector<double> LatencyBuckets();

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();

  // Returns the series (name, labels), creating it on first use. `help` of
  // the first call wins. REQUIRES: valid Prometheus names (a bug otherwise).
  Counter& GetCounter(const std::string& name, const std::string& help,
                      const MetricLabels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help,
                  const MetricLabels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& buckets, const MetricLabels& labels = {});

  // Prometheus text exposition format 0.0.4.
  std::string SerializeText() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_METRICS_H_
