#include "common/row_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera {
namespace {

using testing::TempDir;

struct Row {
  Key key;
  uint32_t updates;
  uint32_t last;
  std::vector<float> value;
  std::vector<float> state;
  friend bool operator==(const Row&, const Row&) = default;
};
struct Range {
  uint64_t begin, end;
  uint32_t step;
  std::vector<float> values;
  std::vector<float> state;
  friend bool operator==(const Range&, const Range&) = default;
};
struct Contents {
  RowFileInfo info;
  std::vector<Row> rows;
  std::vector<Range> ranges;
  std::vector<Key> deleted;
};

// Reads a whole file through the streaming reader.
StatusOr<Contents> ReadAll(const std::string& path) {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<RowFileReader> r, RowFileReader::Open(path));
  Contents c;
  c.info = r->info();
  if (c.info.kind == RowFileKind::kSparse) {
    SparseRecord rec;
    while (true) {
      TESSERA_ASSIGN_OR_RETURN(bool more, r->NextRow(&rec));
      if (!more) break;
      c.rows.push_back({rec.key, rec.update_count, rec.last_update_unix_s,
                        {rec.value.begin(), rec.value.end()},
                        {rec.state.begin(), rec.state.end()}});
    }
  } else {
    DenseRecord rec;
    while (true) {
      TESSERA_ASSIGN_OR_RETURN(bool more, r->NextRange(&rec));
      if (!more) break;
      c.ranges.push_back({rec.begin, rec.end, rec.step, {rec.values.begin(), rec.values.end()},
                          {rec.state.begin(), rec.state.end()}});
    }
  }
  Key key;
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(bool more, r->NextDeletedKey(&key));
    if (!more) break;
    c.deleted.push_back(key);
  }
  TESSERA_RETURN_IF_ERROR(r->Finish());
  return c;
}

std::vector<Row> SomeRows(int n, uint32_t dim, uint32_t state) {
  std::vector<Row> rows;
  for (int i = 0; i < n; ++i) {
    Row r{Key{0xABCDull << 40} + static_cast<Key>(i) * 7, static_cast<uint32_t>(i),
          1700000000u + i, {}, {}};
    for (uint32_t d = 0; d < dim; ++d) r.value.push_back(0.25f * i - 0.5f * d);
    for (uint32_t d = 0; d < state; ++d) r.state.push_back(1.0f + i + d);
    rows.push_back(r);
  }
  return rows;
}

Status WriteSparse(const std::string& path, const RowFileInfo& info, const std::vector<Row>& rows,
                   const std::vector<Key>& deleted = {}) {
  TESSERA_ASSIGN_OR_RETURN(auto w, RowFileWriter::Create(path, info));
  for (const Row& r : rows) {
    TESSERA_RETURN_IF_ERROR(w->AddRow(r.key, r.updates, r.last, r.value, r.state));
  }
  for (Key k : deleted) TESSERA_RETURN_IF_ERROR(w->AddDeletedKey(k));
  return w->Finish();
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
// Removes, then creates: truncating an existing file makes ext4 flush it on
// close (auto_da_alloc), which made the corruption loops take seconds.
void WriteBytes(const std::string& path, const std::string& bytes) {
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << bytes;
}

const RowFileInfo kSparseInfo{.table_id = 7, .kind = RowFileKind::kSparse, .dim = 3,
                              .state_floats = 3, .has_state = true};

TEST(RowFileTest, SparseRoundTripWithState) {
  TempDir dir;
  const std::string path = dir.File("t.rows");
  const std::vector<Row> rows = SomeRows(100, 3, 3);
  ASSERT_OK(WriteSparse(path, kSparseInfo, rows));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  ASSERT_OK_AND_ASSIGN(Contents c, ReadAll(path));
  EXPECT_EQ(c.info, kSparseInfo);
  EXPECT_EQ(c.rows, rows);
  EXPECT_TRUE(c.deleted.empty());
}

TEST(RowFileTest, SparseWithoutStateKeepsTheStateCountInTheHeader) {
  TempDir dir;
  const std::string path = dir.File("t.rows");
  RowFileInfo info = kSparseInfo;
  info.has_state = false;
  const std::vector<Row> rows = SomeRows(5, 3, 0);
  ASSERT_OK(WriteSparse(path, info, rows));
  ASSERT_OK_AND_ASSIGN(Contents c, ReadAll(path));
  EXPECT_EQ(c.info.state_floats, 3u);
  EXPECT_EQ(c.info.stored_state_floats(), 0u);
  EXPECT_EQ(c.rows, rows);
  EXPECT_EQ(std::filesystem::file_size(path),
            kRowFileHeaderBytes + kRowFileFooterBytes + 5 * (16 + 3 * 4));
}

TEST(RowFileTest, DenseRangesRoundTripIncludingOneLargerThanTheBuffer) {
  TempDir dir;
  const std::string path = dir.File("d.rows");
  const uint64_t size = 400000;
  const RowFileInfo info{.table_id = 9, .kind = RowFileKind::kDense, .state_floats = 2,
                         .has_state = true, .table_size = size};
  std::vector<Range> ranges = {{0, 10, 3, {}, {}}, {100, size, 77, {}, {}}};
  for (Range& r : ranges) {
    for (uint64_t i = r.begin; i < r.end; ++i) r.values.push_back(0.001f * static_cast<float>(i));
    for (uint64_t i = 0; i < 2 * (r.end - r.begin); ++i) r.state.push_back(static_cast<float>(i));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto w, RowFileWriter::Create(path, info));
    for (const Range& r : ranges) ASSERT_OK(w->AddRange(r.begin, r.end, r.step, r.values, r.state));
    EXPECT_EQ(w->AddRange(5, 20, 1, std::vector<float>(14), std::vector<float>(28)).code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(w->AddRow(1, 0, 0, {}, {}).code(), StatusCode::kFailedPrecondition);
    ASSERT_OK(w->Finish());
  }
  ASSERT_OK_AND_ASSIGN(Contents c, ReadAll(path));
  EXPECT_EQ(c.info, info);
  EXPECT_EQ(c.ranges, ranges);
}

TEST(RowFileTest, EmptyFileRoundTrips) {
  TempDir dir;
  const std::string path = dir.File("e.rows");
  ASSERT_OK(WriteSparse(path, kSparseInfo, {}));
  EXPECT_EQ(std::filesystem::file_size(path), kRowFileHeaderBytes + kRowFileFooterBytes);
  ASSERT_OK_AND_ASSIGN(Contents c, ReadAll(path));
  EXPECT_TRUE(c.rows.empty());
}

TEST(RowFileTest, ZeroByteAndMissingFiles) {
  TempDir dir;
  WriteBytes(dir.File("zero.rows"), "");
  StatusOr<Contents> zero = ReadAll(dir.File("zero.rows"));
  EXPECT_EQ(zero.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(zero.status().message().find("zero.rows"), std::string::npos);
  EXPECT_EQ(ReadAll(dir.File("absent.rows")).status().code(), StatusCode::kNotFound);
}

TEST(RowFileTest, DeltaCarriesDeletedKeys) {
  TempDir dir;
  const std::string path = dir.File("delta.rows");
  RowFileInfo info = kSparseInfo;
  info.is_delta = true;
  const std::vector<Row> rows = SomeRows(3, 3, 3);
  ASSERT_OK(WriteSparse(path, info, rows, {11, 12, 0xFFFFFFFFFFFFFFFFull}));
  ASSERT_OK_AND_ASSIGN(Contents c, ReadAll(path));
  EXPECT_TRUE(c.info.is_delta);
  EXPECT_EQ(c.rows, rows);
  EXPECT_EQ(c.deleted, (std::vector<Key>{11, 12, 0xFFFFFFFFFFFFFFFFull}));
}

TEST(RowFileTest, WriterRefusesMisuse) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto w, RowFileWriter::Create(dir.File("m.rows"), kSparseInfo));
  EXPECT_EQ(w->AddDeletedKey(1).code(), StatusCode::kFailedPrecondition);  // not a delta
  EXPECT_EQ(w->AddRow(1, 0, 0, std::vector<float>(2), std::vector<float>(3)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w->AddRow(1, 0, 0, std::vector<float>(3), std::vector<float>(0)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RowFileWriter::Create(dir.File("x.rows"), {.kind = RowFileKind::kSparse, .dim = 0})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RowFileWriter::Create(dir.File("no/such/dir.rows"), kSparseInfo).status().code(),
            StatusCode::kNotFound);
}

TEST(RowFileTest, AbandonedWriterLeavesNoFile) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto w, RowFileWriter::Create(dir.File("a.rows"), kSparseInfo));
    ASSERT_OK(w->AddRow(1, 1, 1, std::vector<float>(3), std::vector<float>(3)));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// A small file cut at every length: each prefix is refused as DataLoss.
TEST(RowFileTest, TruncationAtEveryLengthIsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("t.rows");
  RowFileInfo info = kSparseInfo;
  info.is_delta = true;
  ASSERT_OK(WriteSparse(path, info, SomeRows(4, 3, 3), {5, 6}));
  const std::string bytes = ReadBytes(path);
  const std::string cut = dir.File("cut.rows");
  for (size_t len = 0; len < bytes.size(); ++len) {
    WriteBytes(cut, bytes.substr(0, len));
    StatusOr<Contents> c = ReadAll(cut);
    ASSERT_EQ(c.status().code(), StatusCode::kDataLoss) << "length " << len;
    EXPECT_NE(c.status().message().find("cut.rows"), std::string::npos);
  }
}

// Every single-bit flip anywhere in the file is detected.
TEST(RowFileTest, EveryBitFlipIsDetected) {
  TempDir dir;
  const std::string path = dir.File("t.rows");
  RowFileInfo info = kSparseInfo;
  info.is_delta = true;
  ASSERT_OK(WriteSparse(path, info, SomeRows(3, 3, 3), {5}));
  const std::string bytes = ReadBytes(path);
  const std::string bad = dir.File("bad.rows");
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      WriteBytes(bad, flipped);
      ASSERT_EQ(ReadAll(bad).status().code(), StatusCode::kDataLoss) << "byte " << i << " bit " << bit;
    }
  }
}

// A header that passes its checksum but claims absurd sizes is refused
// before anything is allocated; a newer version is Unimplemented.
TEST(RowFileTest, HostileHeadersAreRefused) {
  TempDir dir;
  const std::string path = dir.File("t.rows");
  ASSERT_OK(WriteSparse(path, kSparseInfo, SomeRows(2, 3, 3)));
  const std::string bytes = ReadBytes(path);
  auto patched = [&](size_t offset, uint32_t value) {
    std::string b = bytes;
    std::memcpy(&b[offset], &value, 4);
    const uint32_t crc = Crc32c(std::as_bytes(std::span(b.data(), 60)));
    std::memcpy(&b[60], &crc, 4);
    return b;
  };
  const std::string p = dir.File("p.rows");
  WriteBytes(p, patched(24, 0x7FFFFFFF));  // dim
  EXPECT_EQ(ReadAll(p).status().code(), StatusCode::kDataLoss);
  WriteBytes(p, patched(28, 0xFFFFFFFF));  // state floats
  EXPECT_EQ(ReadAll(p).status().code(), StatusCode::kDataLoss);
  WriteBytes(p, patched(24, 4));  // a plausible dim that does not match the body
  EXPECT_EQ(ReadAll(p).status().code(), StatusCode::kDataLoss);
  WriteBytes(p, patched(8, kRowFileVersion + 1));
  EXPECT_EQ(ReadAll(p).status().code(), StatusCode::kUnimplemented);
}

TEST(RowFileTest, PathsAndNames) {
  EXPECT_EQ(RowFileRelativePath("item", 3), "item/part-00003.rows");
  EXPECT_EQ(RowFileRelativePath("dense.mlp.0.weight", 12), "dense.mlp.0.weight/part-00012.rows");
  EXPECT_OK(ValidateTableDirName("dense.mlp.0.weight"));
  for (std::string bad : std::vector<std::string>{"", ".", "..", "a/b", "a b", std::string(256, 'x')}) {
    EXPECT_EQ(ValidateTableDirName(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(RowFileTest, WriteFileAtomicallyReplacesTheFile) {
  TempDir dir;
  const std::string path = dir.File("manifest.json");
  ASSERT_OK(WriteFileAtomically(path, "one"));
  ASSERT_OK(WriteFileAtomically(path, "two"));
  EXPECT_EQ(ReadBytes(path), "two");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

}  // namespace
}  // namespace tessera
