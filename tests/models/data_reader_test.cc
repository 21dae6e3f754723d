#include "models/data_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::models {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

void WriteGzip(const std::string& path, std::string_view text) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

// Every line of `chunk`, or the error.
StatusOr<std::vector<std::string>> ReadLines(const FileChunk& chunk) {
  TESSERA_ASSIGN_OR_RETURN(auto reader, LineReader::Open(chunk));
  std::vector<std::string> lines;
  while (true) {
    std::string_view line;
    TESSERA_ASSIGN_OR_RETURN(bool more, reader->Next(&line));
    if (!more) return lines;
    lines.emplace_back(line);
  }
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t nl = text.find('\n', begin);
    const size_t end = nl == std::string::npos ? text.size() : nl;
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

// Random lines of 0..max_len bytes (empty lines included).
std::string RandomText(std::mt19937* rng, int lines, int max_len, bool final_newline) {
  std::string text;
  for (int i = 0; i < lines; ++i) {
    const int len = std::uniform_int_distribution<int>(0, max_len)(*rng);
    for (int j = 0; j < len; ++j) text += static_cast<char>('a' + (i + j) % 26);
    if (i + 1 < lines || final_newline) text += '\n';
  }
  return text;
}

TEST(ExpandInputsTest, DirectoriesGlobsAndFilesInOrder) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.path() / "d");
  std::filesystem::create_directory(dir.path() / "d" / "sub");
  for (const char* name :
       {"d/b.tsv", "d/a.tsv.gz", "d/_SUCCESS", "d/.crc", "d/sub/x.tsv", "g2.tsv", "g1.tsv", "z.txt"}) {
    WriteFile(dir.File(name), "1\n");
  }
  const std::vector<std::string> inputs = {dir.File("z.txt"), dir.File("d"), dir.File("g*.tsv")};
  ASSERT_OK_AND_ASSIGN(auto files, ExpandInputs(inputs));
  EXPECT_THAT(files, ElementsAre(dir.File("z.txt"), dir.File("d/a.tsv.gz"), dir.File("d/b.tsv"),
                                 dir.File("g1.tsv"), dir.File("g2.tsv")));
}

TEST(ExpandInputsTest, MissingInputsAreNotFound) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.path() / "empty");
  for (const std::string& input : {dir.File("nope.tsv"), dir.File("*.tsv"), dir.File("empty")}) {
    const std::vector<std::string> inputs = {input};
    const auto files = ExpandInputs(inputs);
    EXPECT_EQ(files.status().code(), StatusCode::kNotFound) << input;
    EXPECT_THAT(files.status().message(), HasSubstr(input));
  }
}

TEST(SplitIntoChunksTest, TilesPlainFilesAndKeepsGzipWhole) {
  testing::TempDir dir;
  WriteFile(dir.File("a.tsv"), std::string(250, 'x'));
  WriteFile(dir.File("empty.tsv"), "");
  WriteGzip(dir.File("b.tsv.gz"), std::string(1000, 'y'));
  const std::vector<std::string> files = {dir.File("a.tsv"), dir.File("empty.tsv"), dir.File("b.tsv.gz")};
  ASSERT_OK_AND_ASSIGN(auto chunks, SplitIntoChunks(files, 100));
  EXPECT_THAT(chunks,
              ElementsAre(FileChunk{dir.File("a.tsv"), 0, 100}, FileChunk{dir.File("a.tsv"), 100, 200},
                          FileChunk{dir.File("a.tsv"), 200, kToEndOfFile},
                          FileChunk{dir.File("b.tsv.gz"), 0, kToEndOfFile}));
  ASSERT_OK_AND_ASSIGN(auto whole, SplitIntoChunks(files, 0));
  EXPECT_EQ(whole.size(), 3u);
}

TEST(LineReaderTest, ReadsGzipTransparently) {
  testing::TempDir dir;
  std::mt19937 rng(7);
  const std::string text = RandomText(&rng, 20000, 200, true);  // > the 1 MiB buffer
  WriteGzip(dir.File("data.tsv.gz"), text);
  ASSERT_OK_AND_ASSIGN(auto lines, ReadLines({dir.File("data.tsv.gz")}));
  EXPECT_EQ(lines, SplitLines(text));
}

TEST(LineReaderTest, TruncatedGzipIsDataLoss) {
  testing::TempDir dir;
  std::mt19937 rng(8);
  WriteGzip(dir.File("full.gz"), RandomText(&rng, 5000, 100, true));
  std::ifstream in(dir.File("full.gz"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  WriteFile(dir.File("cut.gz"), std::string_view(bytes).substr(0, bytes.size() / 2));
  const auto lines = ReadLines({dir.File("cut.gz")});
  EXPECT_EQ(lines.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(lines.status().message(), HasSubstr("cut.gz"));
}

TEST(LineReaderTest, RejectsAByteRangeOfAGzipFile) {
  testing::TempDir dir;
  WriteGzip(dir.File("a.gz"), "1\n");
  EXPECT_EQ(LineReader::Open({dir.File("a.gz"), 10, 20}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LineReader::Open({dir.File("missing.tsv")}).status().code(), StatusCode::kNotFound);
}

TEST(LineReaderTest, LastLineWithoutNewlineAndCrossingTheBuffer) {
  testing::TempDir dir;
  const std::string text = "a\n" + std::string(3 << 20, 'x') + "\n\nlast";
  WriteFile(dir.File("t.tsv"), text);
  ASSERT_OK_AND_ASSIGN(auto lines, ReadLines({dir.File("t.tsv")}));
  EXPECT_EQ(lines, SplitLines(text));
  EXPECT_EQ(lines.size(), 4u);
}

TEST(LineReaderTest, OverlongLineIsDataLoss) {
  testing::TempDir dir;
  WriteFile(dir.File("big.bin"), "ok\n" + std::string((2 << 20) + 1, 'x'));
  ASSERT_OK_AND_ASSIGN(auto reader, LineReader::Open({dir.File("big.bin")}, 2 << 20));
  std::string_view line;
  ASSERT_OK_AND_ASSIGN(bool more, reader->Next(&line));
  EXPECT_TRUE(more);
  const auto next = reader->Next(&line);
  EXPECT_EQ(next.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(next.status().message(), HasSubstr("big.bin@3: line longer than"));
}

TEST(LineReaderTest, LocationIsLineNumberOrByteOffset) {
  testing::TempDir dir;
  WriteFile(dir.File("t.tsv"), "aa\nbb\ncc\n");
  ASSERT_OK_AND_ASSIGN(auto whole, LineReader::Open({dir.File("t.tsv")}));
  std::string_view line;
  ASSERT_OK(whole->Next(&line));
  ASSERT_OK(whole->Next(&line));
  EXPECT_EQ(whole->Location(), dir.File("t.tsv") + ":2");
  ASSERT_OK_AND_ASSIGN(auto part, LineReader::Open({dir.File("t.tsv"), 1, kToEndOfFile}));
  ASSERT_OK_AND_ASSIGN(bool more, part->Next(&line));
  ASSERT_TRUE(more);
  EXPECT_EQ(line, "bb");
  EXPECT_EQ(part->Location(), dir.File("t.tsv") + "@3");
}

// The property the scheduler relies on: chunks that tile a file read every
// line exactly once, in order, wherever the cuts fall.
TEST(LineReaderTest, ChunksCoverEveryLineExactlyOnce) {
  testing::TempDir dir;
  std::mt19937 rng(42);
  for (bool final_newline : {true, false}) {
    const std::string text = RandomText(&rng, 120, 30, final_newline);
    const std::string path = dir.File(final_newline ? "nl.tsv" : "no_nl.tsv");
    WriteFile(path, text);
    const std::vector<std::string> expected = SplitLines(text);
    const std::vector<std::string> files = {path};
    // Every chunk size, then random cut points.
    for (uint64_t size = 1; size <= 80; ++size) {
      ASSERT_OK_AND_ASSIGN(auto chunks, SplitIntoChunks(files, size));
      std::vector<std::string> got;
      for (const FileChunk& chunk : chunks) {
        ASSERT_OK_AND_ASSIGN(auto lines, ReadLines(chunk));
        got.insert(got.end(), lines.begin(), lines.end());
      }
      ASSERT_EQ(got, expected) << "chunk size " << size;
    }
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<uint64_t> cuts = {0};
      const int n = std::uniform_int_distribution<int>(1, 12)(rng);
      for (int i = 0; i < n; ++i) {
        cuts.push_back(std::uniform_int_distribution<uint64_t>(1, text.size() - 1)(rng));
      }
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      std::vector<std::string> got;
      for (size_t i = 0; i < cuts.size(); ++i) {
        const uint64_t end = i + 1 < cuts.size() ? cuts[i + 1] : kToEndOfFile;
        ASSERT_OK_AND_ASSIGN(auto lines, ReadLines({path, cuts[i], end}));
        got.insert(got.end(), lines.begin(), lines.end());
      }
      ASSERT_EQ(got, expected) << "trial " << trial;
    }
  }
}

constexpr const char* kSchema = R"(
fields:
  - {name: user_id, type: categorical}
  - {name: price, type: numeric, transform: log1p}
  - {name: hist, type: sequence, max_len: 5}
)";

TEST(ExampleReaderTest, CountsShortAndBadLinesWithReasons) {
  testing::TempDir dir;
  WriteFile(dir.File("a.tsv"), "1\tu1\t3\th1,h2\n0\tu2\n2\tu3\t1\t\n1\tu4\t1\th1\textra\n");
  WriteGzip(dir.File("b.tsv.gz"), "0\tu5\tabc\th\n1\tu6\t2\th3\n");
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(kSchema, "test"));
  ExampleReader reader(&schema, {{dir.File("a.tsv")}, {dir.File("b.tsv.gz")}}, {});
  Example ex;
  std::vector<float> labels;
  while (true) {
    ASSERT_OK_AND_ASSIGN(bool more, reader.Next(&ex));
    if (!more) break;
    labels.push_back(ex.label);
  }
  EXPECT_THAT(labels, ElementsAre(1.0f, 0.0f, 1.0f));
  const DataStats& stats = reader.stats();
  EXPECT_EQ(stats.lines, 6u);
  EXPECT_EQ(stats.short_lines, 1u);
  EXPECT_EQ(stats.bad_lines, 3u);
  EXPECT_EQ(stats.examples(), 3u);
  ASSERT_EQ(stats.bad_samples.size(), 3u);
  EXPECT_THAT(stats.bad_samples[0], HasSubstr("a.tsv:3: bad label '2'"));
  EXPECT_THAT(stats.bad_samples[1], HasSubstr("a.tsv:4: 5 columns, expected at most 4"));
  EXPECT_THAT(stats.bad_samples[2], HasSubstr("b.tsv.gz:1: field 1 (price): not a number: 'abc'"));
  EXPECT_DOUBLE_EQ(stats.bad_ratio(), 0.5);
}

TEST(ExampleReaderTest, NextBatchFillsUpToTheLimit) {
  testing::TempDir dir;
  std::string text;
  for (int i = 0; i < 10; ++i) text += "1\tu" + std::to_string(i % 3) + "\t1\th1\n";
  WriteFile(dir.File("a.tsv"), text);
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(kSchema, "test"));
  ASSERT_OK_AND_ASSIGN(auto builder, BatchBuilder::Create(&schema, {}));
  ExampleReader reader(&schema, {{dir.File("a.tsv")}}, {});
  Batch batch;
  std::vector<int> sizes;
  std::vector<size_t> users;
  while (true) {
    ASSERT_OK_AND_ASSIGN(int n, reader.NextBatch(builder.get(), &batch, 4));
    if (n == 0) break;
    sizes.push_back(n);
    users.push_back(batch.tables[0].keys.size());
    EXPECT_EQ(batch.size, n);
  }
  EXPECT_THAT(sizes, ElementsAre(4, 4, 2));
  EXPECT_THAT(users, ElementsAre(3u, 3u, 2u));  // u0 u1 u2 u0 | u1 u2 u0 u1 | u2 u0
  EXPECT_EQ(batch.size, 0);                     // the call at the end finishes an empty batch
}

// Lines are "label<TAB>user<TAB>id<TAB>hist": `id` tells examples apart.
constexpr const char* kIdSchema = R"(
fields:
  - {name: user_id, type: categorical}
  - {name: id, type: numeric}
  - {name: hist, type: sequence, max_len: 5}
)";

// The ids of the examples of `chunk`, the reader's position after each one
// and at the end.
struct ReadResult {
  std::vector<float> ids;
  std::vector<uint64_t> offsets;
  ExampleReader::Position end;
};
StatusOr<ReadResult> ReadExamples(const Schema& schema, const FileChunk& chunk) {
  ExampleReader reader(&schema, {chunk}, {.max_logged_bad = 0});
  ReadResult result;
  Example ex;
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(bool more, reader.Next(&ex));
    if (!more) break;
    result.ids.push_back(ex.numeric[0]);
    EXPECT_EQ(reader.position().chunk, 0u);
    result.offsets.push_back(reader.position().offset);
  }
  result.end = reader.position();
  return result;
}

TEST(ExampleReaderTest, PositionIsJustPastTheLastConsumedLine) {
  testing::TempDir dir;
  // CRLF lines, a bad line (label 2) consumed with the example after it, and
  // a last line without a newline.
  const std::string l0 = "1\tu1\t1\th1\r\n", l1 = "2\tu2\t2\th1\r\n", l2 = "0\tu3\t3\th1\r\n",
                    l3 = "1\tu4\t4\th1";
  WriteFile(dir.File("a.tsv"), l0 + l1 + l2 + l3);
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(kIdSchema, "test"));
  ExampleReader reader(&schema, {{dir.File("a.tsv")}}, {});
  EXPECT_EQ(reader.position(), (ExampleReader::Position{0, 0}));
  ASSERT_OK_AND_ASSIGN(ReadResult r, ReadExamples(schema, {dir.File("a.tsv")}));
  EXPECT_THAT(r.ids, ElementsAre(1.0f, 3.0f, 4.0f));
  const uint64_t a = l0.size(), b = a + l1.size() + l2.size(), c = b + l3.size();
  EXPECT_THAT(r.offsets, ElementsAre(a, b, c));
  EXPECT_EQ(r.end, (ExampleReader::Position{0, kToEndOfFile}));

  // A chunk ending inside l2: l2 is its last line, counted up to the end.
  ASSERT_OK_AND_ASSIGN(r, ReadExamples(schema, {dir.File("a.tsv"), 0, b - 3}));
  EXPECT_THAT(r.offsets, ElementsAre(a, b - 3));
  EXPECT_EQ(r.end.offset, b - 3);
  // Bad lines at the end of a chunk: consumed, the position is the end.
  ASSERT_OK_AND_ASSIGN(r, ReadExamples(schema, {dir.File("a.tsv"), 0, a + 1}));
  EXPECT_THAT(r.offsets, ElementsAre(a));
  EXPECT_EQ(r.end.offset, a + 1);
}

TEST(ExampleReaderTest, PositionsAcrossChunksOfOneReader) {
  testing::TempDir dir;
  WriteFile(dir.File("a.tsv"), "1\tu1\t3\th1\n");
  WriteFile(dir.File("b.tsv"), "0\tu2\t3\th1\n");
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(kSchema, "test"));
  ExampleReader reader(&schema, {{dir.File("a.tsv")}, {dir.File("b.tsv"), 0, 100}}, {});
  Example ex;
  ASSERT_OK_AND_ASSIGN(bool more, reader.Next(&ex));
  ASSERT_TRUE(more);
  EXPECT_EQ(reader.position(), (ExampleReader::Position{0, 10}));
  ASSERT_OK_AND_ASSIGN(more, reader.Next(&ex));
  ASSERT_TRUE(more);
  EXPECT_EQ(reader.position(), (ExampleReader::Position{1, 10}));
  ASSERT_OK_AND_ASSIGN(more, reader.Next(&ex));
  EXPECT_FALSE(more);
  EXPECT_EQ(reader.position(), (ExampleReader::Position{1, 100}));
}

// Stopping after any example and reading [position, end) again yields
// exactly the examples not read yet, for plain chunks (cut anywhere) and
// for a gzip file resumed past its start.
TEST(ExampleReaderTest, ResumingAtThePositionReadsTheRestExactlyOnce) {
  testing::TempDir dir;
  std::mt19937 rng(7);
  std::string text;
  for (int i = 0; i < 60; ++i) {
    const int kind = std::uniform_int_distribution<int>(0, 5)(rng);
    // Kind 0 is a bad line, 1 ends in CRLF.
    text += kind == 0 ? "x\tbad\n" : absl::StrCat("1\tu\t", i, "\th", kind == 1 ? "\r\n" : "\n");
  }
  text += "1\tu\t60\th";  // no final newline
  WriteFile(dir.File("a.tsv"), text);
  WriteGzip(dir.File("a.tsv.gz"), text);
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(kIdSchema, "test"));
  std::vector<FileChunk> chunks = {{dir.File("a.tsv.gz")}};
  for (uint64_t cut : {uint64_t{0}, uint64_t{37}, uint64_t{200}}) {
    chunks.push_back({dir.File("a.tsv"), cut, cut == 200 ? kToEndOfFile : cut + 163});
  }
  for (const FileChunk& chunk : chunks) {
    ASSERT_OK_AND_ASSIGN(ReadResult full, ReadExamples(schema, chunk));
    ASSERT_EQ(full.end.offset, chunk.end);
    ASSERT_GT(full.ids.size(), 5u);
    for (size_t k = 0; k < full.ids.size(); ++k) {
      FileChunk rest = chunk;
      rest.begin = full.offsets[k];
      std::vector<float> got(full.ids.begin(), full.ids.begin() + k + 1);
      if (rest.begin < rest.end) {
        ASSERT_OK_AND_ASSIGN(ReadResult tail, ReadExamples(schema, rest));
        got.insert(got.end(), tail.ids.begin(), tail.ids.end());
      }
      ASSERT_EQ(got, full.ids) << chunk.path << " from " << chunk.begin << ", resumed after " << k;
    }
  }
}

TEST(ExampleReaderTest, MissingFileIsAnError) {
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(kSchema, "test"));
  ExampleReader reader(&schema, {{"/nonexistent/x.tsv"}}, {});
  Example ex;
  EXPECT_EQ(reader.Next(&ex).status().code(), StatusCode::kNotFound);
}

TEST(DataStatsTest, CheckBadRatio) {
  DataStats stats;
  stats.lines = 1000;
  stats.bad_lines = 10;
  stats.bad_samples = {"a.tsv:7: bad label 'x' (must be 0 or 1)"};
  EXPECT_OK(CheckBadRatio(stats, 0.01));
  stats.bad_lines = 11;
  const Status status = CheckBadRatio(stats, 0.01);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("11 of 1000 lines bad (1.1% > max_bad_ratio 1%)"));
  EXPECT_THAT(status.message(), HasSubstr("a.tsv:7: bad label"));
  EXPECT_OK(CheckBadRatio(DataStats{}, 0.0));
}

TEST(DataStatsTest, MergeAddsCountsAndCapsSamples) {
  DataStats a, b;
  a.lines = 5;
  a.bad_lines = 1;
  a.bad_samples.assign(DataStats::kMaxBadSamples - 1, "a");
  b.lines = 7;
  b.short_lines = 2;
  b.bad_lines = 3;
  b.bad_samples = {"b1", "b2", "b3"};
  a.Merge(b);
  EXPECT_EQ(a.lines, 12u);
  EXPECT_EQ(a.short_lines, 2u);
  EXPECT_EQ(a.bad_lines, 4u);
  EXPECT_EQ(a.bad_samples.size(), DataStats::kMaxBadSamples);
  EXPECT_EQ(a.bad_samples.back(), "b1");
}

}  // namespace
}  // namespace tessera::models
