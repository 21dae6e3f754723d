// The CLI side of privacy: the id salt from the environment
// (tools/cli/id_salt.h), the keys `tessera forget` computes and where it
// finds a local job's scheduler (tools/cli/forget_command.h).
#include "tools/cli/forget_command.h"

#include <stdlib.h>

#include <fstream>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tools/cli/cluster_file.h"
#include "tools/cli/id_salt.h"

namespace tessera::cli {
namespace {

class IdSaltEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { Clear(); }
  void TearDown() override { Clear(); }
  static void Clear() {
    ::unsetenv(kIdSaltEnv);
    ::unsetenv(kIdSaltFileEnv);
  }
  testing::TempDir dir_;
};

TEST_F(IdSaltEnvTest, NoneIsUnsalted) {
  StatusOr<models::FeatureHasher> h = ReadIdSaltHasher();
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_FALSE(h->salted());
}

TEST_F(IdSaltEnvTest, TheValueOrTheFileGiveTheSameSalt) {
  ::setenv(kIdSaltEnv, "s3cret", 1);
  StatusOr<models::FeatureHasher> from_value = ReadIdSaltHasher();
  ASSERT_TRUE(from_value.ok()) << from_value.status();
  Clear();
  std::ofstream(dir_.File("salt")) << "  s3cret\n";
  ::setenv(kIdSaltFileEnv, dir_.File("salt").c_str(), 1);
  StatusOr<models::FeatureHasher> from_file = ReadIdSaltHasher();
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_TRUE(from_value->salted());
  EXPECT_TRUE(*from_value == *from_file);
  EXPECT_TRUE(*from_file == models::FeatureHasher::FromSalt("s3cret"));
}

TEST_F(IdSaltEnvTest, BothSetAMissingOrEmptyFileAreErrors) {
  ::setenv(kIdSaltEnv, "a", 1);
  ::setenv(kIdSaltFileEnv, dir_.File("salt").c_str(), 1);
  EXPECT_EQ(ReadIdSaltHasher().status().code(), StatusCode::kInvalidArgument);
  ::unsetenv(kIdSaltEnv);
  EXPECT_EQ(ReadIdSaltHasher().status().code(), StatusCode::kNotFound);
  std::ofstream(dir_.File("salt")) << " \n";
  EXPECT_EQ(ReadIdSaltHasher().status().code(), StatusCode::kInvalidArgument);
}

TEST(ForgetKeysTest, FieldsAndTablesMapToTheWorkersKeys) {
  StatusOr<models::Schema> schema = models::Schema::Parse(
      "fields:\n"
      "  - {name: user_id, type: categorical}\n"
      "  - {name: item_id, type: categorical, table: item}\n"
      "  - {name: price, type: numeric}\n"
      "  - {name: hist, type: sequence, table: item}\n",
      "test");
  ASSERT_TRUE(schema.ok()) << schema.status();
  const models::FeatureHasher salt = models::FeatureHasher::FromSalt("s");
  schema->set_hasher(salt);
  StatusOr<std::vector<Key>> users = ForgetKeys(*schema, "user_id", {"u1", "u2", "u1"});
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(*users, (std::vector<Key>{salt.Hash(0, "u1"), salt.Hash(0, "u2")}));
  // A sequence field means its table; so does the table's own name.
  StatusOr<std::vector<Key>> by_field = ForgetKeys(*schema, "hist", {"i9"});
  StatusOr<std::vector<Key>> by_table = ForgetKeys(*schema, "item", {"i9"});
  ASSERT_TRUE(by_field.ok() && by_table.ok());
  EXPECT_EQ(*by_field, (std::vector<Key>{salt.Hash(1, "i9")}));
  EXPECT_EQ(*by_field, *by_table);
  EXPECT_EQ(ForgetKeys(*schema, "price", {"x"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ForgetKeys(*schema, "nope", {"x"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ForgetKeys(*schema, "user_id", {""}).status().code(), StatusCode::kInvalidArgument);
}

TEST(SchedulerAddressOfRunTest, ReadsTheSchedulerOfClusterJson) {
  testing::TempDir dir;
  EXPECT_EQ(SchedulerAddressOfRun(dir.path().string()).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(WriteFileAtomically(dir.File("cluster.json"),
                                  ClusterJson({{Role::kScheduler, 0, 10, "tcp://h:5555", 9000},
                                               {Role::kServer, 0, 11, "tcp://h:6000", 9001}}))
                  .ok());
  StatusOr<std::string> addr = SchedulerAddressOfRun(dir.path().string());
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, "tcp://h:5555");
}

}  // namespace
}  // namespace tessera::cli
