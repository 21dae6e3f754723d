// Metrics of the running process under the names every Prometheus client
// library uses (client_golang's process collector: process_cpu_seconds_total,
// process_resident_memory_bytes, ...), read from /proc at scrape time, plus
// tessera_process_memory_limit_bytes, the memory limit of the process's
// cgroup (a container's limit; absent when unlimited). Alerts compare the
// two (deploy/prometheus/alerts.yml, TesseraMemoryNearLimit).
//
// Linux only: on a system without /proc the families are empty. Thread-safe
// (reads files, keeps no state).
#ifndef TESSERA_COMMON_PROCESS_METRICS_H_
#define TESSERA_COMMON_PROCESS_METRICS_H_

#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace tessera {

// The process families as of now, ready for a text serializer.
std::vector<prometheus::MetricFamily> CollectProcessMetrics();

// The cgroup memory limit in bytes given the contents of cgroup v2's
// memory.max ("max" or a number) or v1's memory.limit_in_bytes (a number,
// ~2^63 when unlimited); nullopt when unlimited or unparsable.
std::optional<double> ParseCgroupMemoryLimit(const std::string& contents);

}  // namespace tessera

#endif  // TESSERA_COMMON_PROCESS_METRICS_H_
