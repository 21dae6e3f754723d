#include "tools/cli/cluster_file.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace tessera::cli {
namespace {

TEST(ClusterFileTest, RecordsListSchedulerThenServersThenWorkers) {
  protocol::ClusterView view;
  view.servers = {{{Role::kServer, 0}, "tcp://h:2", 9002, 102, "h"},
                  {{Role::kServer, 1}, "tcp://h:3", 9003, 103, "h"}};
  view.workers = {{{Role::kWorker, 0}, "tcp://h:4", 9004, 104, "h"}};
  protocol::NodeInfo scheduler{kSchedulerId, "tcp://h:1", 9001, 101, "h"};
  std::vector<ClusterNodeRecord> nodes = ClusterRecords(scheduler, view);
  std::vector<ClusterNodeRecord> want = {{Role::kScheduler, 0, 101, "tcp://h:1", 9001},
                                         {Role::kServer, 0, 102, "tcp://h:2", 9002},
                                         {Role::kServer, 1, 103, "tcp://h:3", 9003},
                                         {Role::kWorker, 0, 104, "tcp://h:4", 9004}};
  EXPECT_EQ(nodes, want);
}

TEST(ClusterFileTest, JsonRoundTrips) {
  std::vector<ClusterNodeRecord> nodes = {{Role::kScheduler, 0, 11, "tcp://127.0.0.1:5555", 9100},
                                          {Role::kWorker, 3, 12, "tcp://127.0.0.1:5556", 9101}};
  std::string json = ClusterJson(nodes);
  EXPECT_NE(json.find("\"role\": \"scheduler\""), std::string::npos) << json;
  StatusOr<std::vector<ClusterNodeRecord>> parsed = ParseClusterJson(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, nodes);
}

TEST(ClusterFileTest, ParseRejectsMalformedDocuments) {
  for (const char* bad :
       {"", "[]", "{\"nodes\": 3}", "{\"nodes\": [1]}", "{\"nodes\": [{\"role\": \"server\"}]}",
        "{\"nodes\": [{\"role\": \"king\", \"id\": 0, \"pid\": 1, \"addr\": \"a\", "
        "\"metrics_port\": 1}]}",
        "{\"nodes\": [{\"role\": \"server\", \"id\": \"0\", \"pid\": 1, \"addr\": \"a\", "
        "\"metrics_port\": 1}]}"}) {
    EXPECT_FALSE(ParseClusterJson(bad).ok()) << bad;
  }
}

TEST(ClusterFileTest, AtomicWriteReplacesTheFileAndLeavesNoTemporary) {
  testing::TempDir dir;
  const std::string path = dir.File("cluster.json");
  ASSERT_TRUE(WriteFileAtomically(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "two").ok());
  StatusOr<std::string> text = ReadWholeFile(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "two");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
  EXPECT_FALSE(WriteFileAtomically(dir.File("missing/dir/file"), "x").ok());
  EXPECT_EQ(ReadWholeFile(dir.File("absent")).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera::cli
