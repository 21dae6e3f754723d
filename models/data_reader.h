// The data path from files to Examples:
//   ExpandInputs    files, globs and directories -> a sorted list of files
//   SplitIntoChunks files -> line-aligned byte ranges of about N bytes
//   LineReader      the lines of one chunk, plain or gzip (streamed)
//   ExampleReader   parsed Examples of a list of chunks, with counters
//
// Chunks use Hadoop's split semantics: a line belongs to the chunk in which
// it starts. A reader of [begin, end) skips the partial first line unless
// begin == 0 (a line starting exactly at `begin` is kept) and reads past
// `end` to finish its last line, so chunks that tile a file read each line
// exactly once. Gzip files cannot be split: they are one chunk each (a
// resumed one may start past 0: the bytes before are decompressed and
// dropped; offsets of a gzip file count uncompressed bytes).
//
// Memory is bounded by the read buffer (and the longest line), never by the
// file: nothing is loaded whole.
//
// Thread-compatible: one reader per thread.
//
// Example:
//   ASSIGN_OR_RETURN(auto files, ExpandInputs({"data/train/", "extra/*.tsv.gz"}));
//   ASSIGN_OR_RETURN(auto chunks, SplitIntoChunks(files, 64 << 20));
//   ExampleReader reader(&schema, chunks, {});
//   Example ex;
//   while (true) {
//     ASSIGN_OR_RETURN(bool more, reader.Next(&ex));
//     if (!more) break;
//     ...
//   }
//   RETURN_IF_ERROR(CheckBadRatio(reader.stats(), 0.01));
#ifndef TESSERA_MODELS_DATA_READER_H_
#define TESSERA_MODELS_DATA_READER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "models/batch.h"
#include "models/batch_builder.h"
#include "models/schema.h"
#include "models/tsv_parser.h"

namespace tessera::models {

inline constexpr uint64_t kToEndOfFile = ~uint64_t{0};
// Longer lines are DataLoss: a binary or corrupt file must not eat memory.
inline constexpr size_t kMaxLineBytes = size_t{64} << 20;

// The lines of `path` that start in [begin, end).
struct FileChunk {
  std::string path;
  uint64_t begin = 0;
  uint64_t end = kToEndOfFile;

  friend bool operator==(const FileChunk&, const FileChunk&) = default;
};

// True for names ending in ".gz" (read through zlib).
bool IsGzipPath(std::string_view path);

// Each input is a file, a directory (its regular files, not recursive,
// skipping names that start with '.' or '_' such as _SUCCESS) or a glob
// pattern (* ? [...]); each input expands to its files sorted by name, in
// input order. NotFound for a missing file or a pattern matching nothing.
StatusOr<std::vector<std::string>> ExpandInputs(std::span<const std::string> inputs);

// Tiles each file with chunks of about `chunk_bytes` (the last one shorter),
// in file order. Gzip files and all files when chunk_bytes == 0 are one
// whole-file chunk; empty plain files yield none.
StatusOr<std::vector<FileChunk>> SplitIntoChunks(std::span<const std::string> files, uint64_t chunk_bytes);

// Reads the lines of one chunk through a buffer.
class LineReader {
 public:
  // NotFound if the file cannot be opened; InvalidArgument for a gzip chunk
  // that does not run to kToEndOfFile. Lines may be up to max_line_bytes
  // long (rounded up to a power of two MiB).
  static StatusOr<std::unique_ptr<LineReader>> Open(const FileChunk& chunk,
                                                    size_t max_line_bytes = kMaxLineBytes);
  virtual ~LineReader() = default;

  // The next line without its '\n', valid until the next call; false at the
  // end of the chunk. DataLoss on a read error (e.g. a truncated gzip file)
  // or a line longer than the limit.
  virtual StatusOr<bool> Next(std::string_view* line) = 0;

  // The byte offset just past the last line returned, its '\n' (and any
  // '\r' before it) included; the file's size after a last line without a
  // '\n'. Before the first line: where the chunk's first line starts (or
  // the end of the data if none does).
  virtual uint64_t end_offset() const = 0;

  // Where the last line returned is: "path:N" (line number, 1-based) when
  // the chunk starts at byte 0, else "path@B" (B = byte offset of the line).
  virtual std::string Location() const = 0;
};

// Counters of the lines read. "short" lines are valid examples (counted in
// examples()); "bad" lines are skipped.
struct DataStats {
  static constexpr size_t kMaxBadSamples = 20;

  uint64_t lines = 0;
  uint64_t short_lines = 0;
  uint64_t bad_lines = 0;
  // "location: reason" of the first kMaxBadSamples bad lines.
  std::vector<std::string> bad_samples;

  uint64_t examples() const { return lines - bad_lines; }
  double bad_ratio() const { return lines == 0 ? 0.0 : static_cast<double>(bad_lines) / lines; }
  // Adds `other`'s counts (e.g. from another reader); keeps samples up to the cap.
  void Merge(const DataStats& other);
};

// InvalidArgument when bad_ratio() > max_bad_ratio, with the counts and the
// first reasons ("12 of 1000 lines bad (1.2% > 1%); first: a.tsv:7: ...").
Status CheckBadRatio(const DataStats& stats, double max_bad_ratio);

struct ExampleReaderOptions {
  // The first this many bad lines are also logged (warning), with location and reason.
  int max_logged_bad = 5;
};

// Parses the valid examples of a list of chunks, in order, skipping (and
// counting) bad lines.
class ExampleReader {
 public:
  // `schema` is borrowed and must remain live.
  ExampleReader(const Schema* schema, std::vector<FileChunk> chunks, ExampleReaderOptions options);

  // The next valid example; false after the last chunk. Errors of opening
  // or reading a file (NotFound, DataLoss) name the file.
  StatusOr<bool> Next(Example* example);

  // Starts `builder` on *batch, adds up to `max_examples` examples and
  // finishes it; returns how many (0 at the end of the data).
  StatusOr<int> NextBatch(BatchBuilder* builder, Batch* batch, int max_examples);

  const DataStats& stats() const { return stats_; }

  // How far the reader got, for resumable positions: `chunk` indexes the
  // chunks given to the constructor and `offset` is the byte offset in its
  // file just past the last line consumed from it. Consumed lines are those
  // of the examples returned and the bad lines skipped before them ('\r',
  // '\n' and a final line without '\n' included; gzip: uncompressed
  // bytes). The offset is at most the chunk's `end` (a last line running
  // past `end` counts up to `end`) and equals `end` (possibly
  // kToEndOfFile) once the reader found no more lines in the chunk. So
  // [offset, end) is exactly what is left to read of the chunk:
  // FileChunk{path, offset, end} reads the remaining lines and no others.
  // Before any read: {0, chunks[0].begin}.
  struct Position {
    size_t chunk = 0;
    uint64_t offset = 0;
    friend bool operator==(const Position&, const Position&) = default;
  };
  Position position() const { return position_; }

  // Where the example last returned by Next came from (for `tessera eval
  // --explain`): its file; its line number in its chunk, 1-based, counting
  // every line (bad ones too), which is the line of the file when the chunk
  // starts at byte 0 (e.g. SplitIntoChunks(files, 0)); and its text without
  // the '\n', valid until the next call of Next or NextBatch.
  // REQUIRES: the last call of Next returned true.
  const std::string& current_path() const { return chunks_[next_chunk_ - 1].path; }
  uint64_t current_line_number() const { return line_number_; }
  std::string_view current_line() const { return line_; }

 private:
  void RecordBad(std::string_view reason);

  const TsvParser parser_;
  const std::vector<FileChunk> chunks_;
  const ExampleReaderOptions options_;
  size_t next_chunk_ = 0;
  std::unique_ptr<LineReader> lines_;
  uint64_t line_number_ = 0;  // lines read from the current chunk
  Position position_;
  std::string_view line_;     // the last one
  Example example_;  // NextBatch's scratch
  std::string reason_;
  DataStats stats_;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_DATA_READER_H_
