#include "tools/cli/status_command.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A document as the scheduler serves it (scheduler/cluster_status.cc).
constexpr char kDoc[] = R"({
  "time_unix_ms": 1800000002500, "running": true, "epoch": 3, "replication": 2,
  "num_slots": 16,
  "nodes": [
    {"role": "scheduler", "id": 0, "name": "scheduler/0", "address": "tcp://10.0.0.1:5000",
     "host": "h0", "pid": 11, "metrics_port": 9100, "health": "alive", "heartbeat_age_s": null},
    {"role": "server", "id": 0, "name": "server/0", "address": "tcp://10.0.0.2:5001",
     "host": "h1", "pid": 12, "metrics_port": 9101, "health": "alive", "heartbeat_age_s": 0.3},
    {"role": "server", "id": 1, "name": "server/1", "address": "tcp://10.0.0.3:5002",
     "host": "h2", "pid": 13, "metrics_port": 9102, "health": "dead", "heartbeat_age_s": 7.5},
    {"role": "worker", "id": 0, "name": "worker/0", "address": "tcp://10.0.0.4:5003",
     "host": "h3", "pid": 14, "metrics_port": 9103, "health": "alive", "heartbeat_age_s": 0.5}],
  "shards": [
    {"server": 0, "slots": 16, "reported": true, "rows": 1200, "bytes": 3145728,
     "keys_per_s": 5000.4},
    {"server": 1, "slots": 0, "reported": false, "rows": null, "bytes": null,
     "keys_per_s": null}],
  "workers": [
    {"worker": 0, "reported": true, "examples": 25600, "steps": 100, "samples_per_s": 2560.2,
     "staleness": 1}],
  "progress": {"chunks_completed": 3, "chunks_total": 12},
  "model": {"version": 7, "created_unix_ms": 1800000001000, "freshness_s": 1.5}})";

// The first line of `table` that starts with `prefix` once runs of spaces
// are squeezed to one (columns are padded to their widest cell).
std::string Row(const std::string& table, const std::string& prefix) {
  size_t begin = 0;
  while (begin < table.size()) {
    size_t end = table.find('\n', begin);
    if (end == std::string::npos) end = table.size();
    std::string squeezed;
    for (size_t i = begin; i < end; ++i) {
      if (table[i] == ' ' && !squeezed.empty() && squeezed.back() == ' ') continue;
      squeezed += table[i];
    }
    if (squeezed.starts_with(prefix) &&
        (squeezed.size() == prefix.size() || squeezed[prefix.size()] == ' ')) {
      return squeezed;
    }
    begin = end + 1;
  }
  return "";
}

TEST(StatusCommandTest, TableShowsSummaryNodesShardsAndWorkers) {
  ASSERT_OK_AND_ASSIGN(std::string table, RenderStatusTable(kDoc));
  EXPECT_THAT(table, HasSubstr("cluster: running, view epoch 3, replication 2, 16 slots"));
  EXPECT_THAT(table, HasSubstr("data: 3/12 chunks (25.0%)"));
  EXPECT_THAT(table, HasSubstr("model: version 7, freshness 1.5 s"));
  EXPECT_EQ(Row(table, "ROLE"), "ROLE ID ADDRESS HOST PID HTTP HEALTH LAST HEARTBEAT");
  EXPECT_EQ(Row(table, "scheduler"), "scheduler 0 tcp://10.0.0.1:5000 h0 11 9100 alive -");
  EXPECT_EQ(Row(table, "server 0"), "server 0 tcp://10.0.0.2:5001 h1 12 9101 alive 0.3 s ago");
  EXPECT_EQ(Row(table, "server 1"), "server 1 tcp://10.0.0.3:5002 h2 13 9102 dead 7.5 s ago");
  EXPECT_EQ(Row(table, "SERVER"), "SERVER SLOTS ROWS BYTES KEYS/S");
  EXPECT_EQ(Row(table, "0 16"), "0 16 1200 3.0 MiB 5000");
  EXPECT_EQ(Row(table, "1 0"), "1 0 - - -");  // nothing reported: unknown, not zero
  EXPECT_EQ(Row(table, "WORKER"), "WORKER EXAMPLES STEPS SAMPLES/S STALENESS");
  EXPECT_EQ(Row(table, "0 25600"), "0 25600 100 2560 1");
}

TEST(StatusCommandTest, ColumnsAreAligned) {
  ASSERT_OK_AND_ASSIGN(std::string table, RenderStatusTable(kDoc));
  const size_t header = table.find("\nROLE");
  const size_t row = table.find("\nscheduler");
  ASSERT_NE(header, std::string::npos);
  ASSERT_NE(row, std::string::npos);
  // HEALTH starts in the same column in the header and every row.
  const size_t col = table.find("HEALTH", header) - header;
  EXPECT_EQ(table.find("alive", row) - row, col);
}

TEST(StatusCommandTest, NoVersionAndStartingCluster) {
  ASSERT_OK_AND_ASSIGN(
      std::string table,
      RenderStatusTable(R"({"running": false, "nodes": [], "model": {"version": 0}})"));
  EXPECT_THAT(table, HasSubstr("cluster: starting"));
  EXPECT_THAT(table, HasSubstr("model: no version published"));
  EXPECT_THAT(table, Not(HasSubstr("%")));
}

TEST(StatusCommandTest, RefusesWhatIsNotAStatusDocument) {
  EXPECT_FALSE(RenderStatusTable("not json").ok());
  EXPECT_FALSE(RenderStatusTable("[1, 2]").ok());
  EXPECT_FALSE(RenderStatusTable(R"({"error": "x"})").ok());
  // Mistyped fields show as unknown instead of failing.
  ASSERT_OK_AND_ASSIGN(std::string table,
                       RenderStatusTable(R"({"nodes": [{"role": 5, "id": "x"}], "shards": 3})"));
  EXPECT_THAT(table, HasSubstr("NODES"));
}

TEST(StatusCommandTest, ParsesHttpAddresses) {
  ASSERT_OK_AND_ASSIGN(HttpAddress a, ParseHttpAddress("scheduler.tessera:9100"));
  EXPECT_EQ(a.host, "scheduler.tessera");
  EXPECT_EQ(a.port, 9100);
  ASSERT_OK_AND_ASSIGN(HttpAddress b, ParseHttpAddress("http://10.1.2.3:80/"));
  EXPECT_EQ(b.host, "10.1.2.3");
  EXPECT_EQ(b.port, 80);
  ASSERT_OK_AND_ASSIGN(HttpAddress c, ParseHttpAddress(":9100"));
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_FALSE(ParseHttpAddress("localhost").ok());
  EXPECT_FALSE(ParseHttpAddress("h:0").ok());
  EXPECT_FALSE(ParseHttpAddress("h:70000").ok());
  EXPECT_FALSE(ParseHttpAddress("h:9x").ok());
}

TEST(StatusCommandTest, RunDirectoryNamesTheSchedulersHttpPort) {
  testing::TempDir dir;
  {
    std::ofstream out(dir.File("cluster.json"));
    out << R"({"nodes": [{"role": "scheduler", "id": 0, "pid": 1, "addr": "tcp://0.0.0.0:5555",
               "metrics_port": 9123},
              {"role": "server", "id": 0, "pid": 2, "addr": "tcp://127.0.0.1:5556",
               "metrics_port": 9124}]})";
  }
  ASSERT_OK_AND_ASSIGN(HttpAddress a, SchedulerHttpOfRun(dir.path().string()));
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 9123);
  EXPECT_TRUE(absl::IsNotFound(SchedulerHttpOfRun(dir.File("missing")).status()));
}

TEST(StatusCommandTest, NothingListeningIsUnavailable) {
  // Port 1 on loopback: refused at once.
  StatusOr<std::string> doc =
      FetchClusterStatus({"127.0.0.1", 1}, std::chrono::milliseconds(2000));
  EXPECT_TRUE(absl::IsUnavailable(doc.status())) << doc.status();
  EXPECT_THAT(std::string(doc.status().message()), HasSubstr("no scheduler answers"));
}

// A serve's GET /v1/ab document (serving/ab_results.h).
constexpr char kAb[] = R"({"confidence": 0.95, "control": "frozen",
  "arms": [
    {"arm": "frozen", "impressions": 2000, "clicks": 380, "purchases": 4,
     "ctr": 0.19, "ctr_low": 0.1733, "ctr_high": 0.2079, "versions": []},
    {"arm": "fresh", "impressions": 2000, "clicks": 417, "purchases": 6,
     "ctr": 0.2085, "ctr_low": 0.1912, "ctr_high": 0.2269, "versions": []}],
  "tests": [{"arm": "fresh", "versus": "frozen", "ctr_difference": 0.0185, "z": 1.4566,
             "p_value": 0.1452}]})";

TEST(StatusCommandTest, AbResultsAreOneLinePerArmWithTheTestAgainstTheControl) {
  ASSERT_OK_AND_ASSIGN(std::string table, RenderAbTable(kAb, "127.0.0.1:8501"));
  EXPECT_THAT(table, HasSubstr("A/B (serve 127.0.0.1:8501)"));
  EXPECT_THAT(Row(table, "frozen"), ::testing::StartsWith(
                                       "frozen 2000 380 19.00% 17.33% .. 20.79% (control)"));
  EXPECT_EQ(Row(table, "fresh"), "fresh 2000 417 20.85% 19.12% .. 22.69% frozen 1.46 0.1452");
  EXPECT_FALSE(RenderAbTable(R"({"nodes": []})", "x").ok());
  EXPECT_FALSE(RenderAbTable("not json", "x").ok());
}

}  // namespace
}  // namespace tessera::cli
