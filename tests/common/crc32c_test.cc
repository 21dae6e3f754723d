#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace tessera {
namespace {

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// RFC 3720 (iSCSI) appendix B.4 test vectors, and the usual check value.
TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c(Bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(Bytes(std::string(32, '\0'))), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(Bytes(std::string(32, '\xff'))), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Crc32c(Bytes(ascending)), 0x46DD794Eu);
  EXPECT_EQ(Crc32c({}), 0u);
  EXPECT_EQ(TEST_Crc32cExtendPortable(0, Bytes("123456789")), 0xE3069283u);
}

TEST(Crc32cTest, ExtendEqualsWholeAndPortableEqualsFast) {
  std::mt19937 rng(5);
  std::vector<std::byte> data(1000);
  for (auto& b : data) b = static_cast<std::byte>(rng());
  for (size_t n : {0, 1, 7, 8, 9, 63, 64, 65, 999, 1000}) {
    const std::span<const std::byte> d(data.data(), n);
    const uint32_t whole = Crc32c(d);
    EXPECT_EQ(TEST_Crc32cExtendPortable(0, d), whole) << n;
    for (size_t split = 0; split <= n; split += 3) {
      EXPECT_EQ(Crc32cExtend(Crc32c(d.first(split)), d.subspan(split)), whole) << n << " " << split;
    }
  }
}

}  // namespace
}  // namespace tessera
