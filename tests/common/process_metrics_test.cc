#include "common/process_metrics.h"

#include <prometheus/text_serializer.h>

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

TEST(ProcessMetricsTest, ParsesCgroupLimitsAndTreatsUnlimitedAsAbsent) {
  EXPECT_THAT(ParseCgroupMemoryLimit("1073741824\n"), Optional(1073741824.0));
  EXPECT_EQ(ParseCgroupMemoryLimit("max\n"), std::nullopt);                  // cgroup v2
  EXPECT_EQ(ParseCgroupMemoryLimit("9223372036854771712\n"), std::nullopt);  // cgroup v1
  EXPECT_EQ(ParseCgroupMemoryLimit(""), std::nullopt);
  EXPECT_EQ(ParseCgroupMemoryLimit("garbage"), std::nullopt);
}

TEST(ProcessMetricsTest, ReportsThisProcessUnderTheStandardNames) {
  const std::vector<prometheus::MetricFamily> families = CollectProcessMetrics();
  std::set<std::string> names;
  for (const prometheus::MetricFamily& f : families) {
    names.insert(f.name);
    if (f.name == "process_resident_memory_bytes") {
      ASSERT_EQ(f.metric.size(), 1u);
      EXPECT_GT(f.metric[0].gauge.value, 1 << 20);  // a running gtest holds over 1 MiB
    }
    if (f.name == "process_start_time_seconds") {
      EXPECT_GT(f.metric[0].gauge.value, 1.5e9);  // after 2017
    }
    if (f.name == "process_open_fds") {
      EXPECT_GE(f.metric[0].gauge.value, 3);
    }
  }
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_start_time_seconds",
                           "process_open_fds"}) {
    EXPECT_TRUE(names.count(name)) << name;
  }
  const std::string text = prometheus::TextSerializer().Serialize(families);
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_resident_memory_bytes gauge"));
}

}  // namespace
}  // namespace tessera
