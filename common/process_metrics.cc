#include "common/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tessera {
namespace {

std::string ReadSmallFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return prometheus::MetricFamily{name, help, type, {m}};
}

// Seconds since the epoch at which the system booted (/proc/stat btime).
std::optional<double> BootTime() {
  std::istringstream in(ReadSmallFile("/proc/stat"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
  }
  return std::nullopt;
}

}  // namespace

std::optional<double> ParseCgroupMemoryLimit(const std::string& contents) {
  if (contents.empty() || contents.rfind("max", 0) == 0) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(contents.c_str(), &end);
  if (end == contents.c_str() || v <= 0) return std::nullopt;
  // cgroup v1 reports "unlimited" as the largest page-aligned int64.
  if (v >= 4.0e18) return std::nullopt;
  return v;
}

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  // /proc/self/stat: "pid (comm) state f4 ... f52"; comm may hold spaces,
  // so fields are counted after the last ')'. Field 14 utime, 15 stime,
  // 22 starttime (clock ticks), 23 vsize (bytes), 24 rss (pages).
  const std::string stat = ReadSmallFile("/proc/self/stat");
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream in(stat.substr(paren + 1));
    std::vector<std::string> f(3);  // f[3] is field 3 (state)
    for (std::string v; in >> v;) f.push_back(v);
    if (f.size() > 24) {
      const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
      const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
      out.push_back(Family("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                           MetricType::Counter,
                           (std::strtod(f[14].c_str(), nullptr) + std::strtod(f[15].c_str(), nullptr)) /
                               ticks));
      out.push_back(Family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                           MetricType::Gauge, std::strtod(f[23].c_str(), nullptr)));
      out.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                           MetricType::Gauge, std::strtod(f[24].c_str(), nullptr) * page));
      if (std::optional<double> boot = BootTime()) {
        out.push_back(Family("process_start_time_seconds",
                             "Start time of the process since unix epoch in seconds.",
                             MetricType::Gauge, *boot + std::strtod(f[22].c_str(), nullptr) / ticks));
      }
    }
  }
  std::error_code ec;
  double fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  if (!ec) {
    out.push_back(Family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, fds));
  }
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    out.push_back(Family("process_max_fds", "Maximum number of open file descriptors.",
                         MetricType::Gauge, static_cast<double>(nofile.rlim_cur)));
  }
  std::optional<double> limit = ParseCgroupMemoryLimit(ReadSmallFile("/sys/fs/cgroup/memory.max"));
  if (!limit) limit = ParseCgroupMemoryLimit(ReadSmallFile("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
  if (limit) {
    out.push_back(Family("tessera_process_memory_limit_bytes",
                         "Memory limit of the process's cgroup (container), in bytes; absent when "
                         "unlimited.",
                         MetricType::Gauge, *limit));
  }
  return out;
}

}  // namespace tessera
