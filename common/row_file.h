// Row files: the on-disk form of one server's part of one table, the unit of
// saved models and (later) of full and delta snapshots. A streaming writer
// that publishes a file atomically, and a streaming reader that verifies
// everything (hostile files give DataLoss naming the file, never a crash or
// an unbounded allocation).
//
// Format, version 1. Integers are little-endian, floats IEEE-754 binary32
// little-endian (the only byte order we build for; row_file.cc checks it).
//
//   file   := header(64 bytes) body footer(32 bytes)
//
//   header:
//     0  magic          8 bytes "TESSROWS"
//     8  u32 version    1 (kRowFileVersion); a larger one is Unimplemented
//    12  u32 header_bytes  64
//    16  u8  kind       0 sparse, 1 dense
//    17  u8  flags      bit 0 has_state (records carry optimizer state),
//                       bit 1 is_delta (rows are changes on top of a base
//                       snapshot; only deltas may list deleted keys);
//                       other bits must be 0
//    18  u16 reserved   0
//    20  u32 table_id
//    24  u32 dim        sparse: value floats per row (1 .. kMaxRowDim); dense: 0
//    28  u32 state_floats  sparse: optimizer state floats per row; dense: per
//                       element. Recorded even without has_state (then the
//                       records carry none).
//    32  u64 table_size dense: elements of the whole table; sparse: 0
//    40  20 bytes reserved, 0
//    60  u32 header_crc CRC-32C of bytes [0, 60)
//
//   body := record* deleted_key*
//     sparse record (16 + 4 * (dim + S) bytes, S = has_state ? state_floats : 0):
//       u64 key | u32 update_count | u32 last_update_unix_s | f32 value[dim] | f32 state[S]
//       (the EmbeddingTable row layout: RowHeader, value, state)
//     dense record (24 + 4 * n * (1 + S) bytes, n = end - begin, S as above):
//       u64 begin | u64 end | u32 step | u32 reserved 0 | f32 values[n] |
//       f32 state[S * n] (planar: S arrays of n floats, as DenseShard keeps it)
//       with begin < end <= table_size; one record per owned range.
//     deleted_key (sparse deltas only): u64 key, a tombstone.
//
//   footer:
//     0  u64 record_count
//     8  u64 deleted_count
//    16  u32 crc        CRC-32C of everything before it (header, body, counts)
//    20  u32 reserved   0
//    24  magic          8 bytes "TROWSEND"
//
// The counts live in the footer so the writer streams without seeking. The
// reader checks the header (magic, version, crc, limits), then the footer
// (magic, counts against the file size), then every record's bounds as it
// goes, and the crc once the body is consumed: a truncated file fails at
// Open (footer magic or size), a flipped bit at the latest in Finish().
//
// Publishing: the writer writes "<path>.tmp", and Finish() fsyncs it, renames
// it to <path> and fsyncs the directory, so <path> is either absent or
// complete. A reader must still treat records as provisional until Finish()
// returns OK.
//
// Thread safety: thread-compatible (one thread per writer or reader).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto w, RowFileWriter::Create(path, {.table_id = 3,
//       .kind = RowFileKind::kSparse, .dim = 8, .state_floats = 8, .has_state = true}));
//   TESSERA_RETURN_IF_ERROR(w->AddRow(key, updates, last_update, value, state));
//   TESSERA_RETURN_IF_ERROR(w->Finish());
//
//   TESSERA_ASSIGN_OR_RETURN(auto r, RowFileReader::Open(path));
//   SparseRecord row;
//   while (true) {
//     TESSERA_ASSIGN_OR_RETURN(bool more, r->NextRow(&row));
//     if (!more) break;
//     ...
//   }
//   TESSERA_RETURN_IF_ERROR(r->Finish());
#ifndef TESSERA_COMMON_ROW_FILE_H_
#define TESSERA_COMMON_ROW_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace tessera {

inline constexpr uint32_t kRowFileVersion = 1;
inline constexpr size_t kRowFileHeaderBytes = 64;
inline constexpr size_t kRowFileFooterBytes = 32;
// Limits a reader accepts (far above what tables use: dim <= 4096, at most
// 2 state floats per dimension).
inline constexpr uint32_t kMaxRowDim = 1 << 16;
inline constexpr uint32_t kMaxStateFloatsPerDim = 8;
inline constexpr uint64_t kMaxDenseTableSize = uint64_t{1} << 40;

enum class RowFileKind : uint8_t { kSparse = 0, kDense = 1 };

// What the header says about a file.
struct RowFileInfo {
  TableId table_id = 0;
  RowFileKind kind = RowFileKind::kSparse;
  uint32_t dim = 0;           // sparse only
  uint32_t state_floats = 0;  // per row (sparse) or per element (dense)
  bool has_state = false;
  bool is_delta = false;
  uint64_t table_size = 0;    // dense only

  // Floats of state each record carries per row / element.
  uint32_t stored_state_floats() const { return has_state ? state_floats : 0; }
  friend bool operator==(const RowFileInfo&, const RowFileInfo&) = default;
};

// One sparse row as read; the spans stay valid until the reader's next call.
struct SparseRecord {
  Key key = 0;
  uint32_t update_count = 0;
  uint32_t last_update_unix_s = 0;
  std::span<const float> value;
  std::span<const float> state;  // empty unless has_state
};

// One dense range as read; the spans stay valid until the reader's next call.
struct DenseRecord {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint32_t step = 0;
  std::span<const float> values;  // end - begin
  std::span<const float> state;   // planar, stored_state_floats() * (end - begin)
};

class RowFileWriter {
 public:
  // Creates "<path>.tmp" (replacing a stale one). InvalidArgument if `info`
  // breaks the limits above; NotFound if the directory does not exist.
  static StatusOr<std::unique_ptr<RowFileWriter>> Create(const std::string& path,
                                                         const RowFileInfo& info);
  // Removes the temporary file unless Finish() succeeded.
  ~RowFileWriter();
  RowFileWriter(const RowFileWriter&) = delete;
  RowFileWriter& operator=(const RowFileWriter&) = delete;

  // Appends a sparse row. REQUIRES (else InvalidArgument / FailedPrecondition):
  // a sparse file, value.size() == dim, state.size() == stored_state_floats(),
  // no deleted key added yet. Errors are sticky: after one, every call
  // returns it.
  Status AddRow(Key key, uint32_t update_count, uint32_t last_update_unix_s,
                std::span<const float> value, std::span<const float> state);
  // Appends a dense range [begin, end). REQUIRES: a dense file,
  // begin < end <= table_size, values.size() == end - begin,
  // state.size() == stored_state_floats() * (end - begin).
  Status AddRange(uint64_t begin, uint64_t end, uint32_t step, std::span<const float> values,
                  std::span<const float> state);
  // Appends a tombstone. REQUIRES: a sparse delta file; after every record.
  Status AddDeletedKey(Key key);

  // Writes the footer, fsyncs, renames to `path` and fsyncs the directory.
  Status Finish();

  uint64_t record_count() const { return record_count_; }
  const Status& status() const { return status_; }

 private:
  RowFileWriter(std::string path, const RowFileInfo& info, int fd);
  Status Append(const void* data, size_t n);
  Status Flush();
  Status Fail(Status s);

  const std::string path_;
  const std::string tmp_path_;
  const RowFileInfo info_;
  int fd_;
  std::vector<std::byte> buffer_;
  uint32_t crc_ = 0;
  uint64_t record_count_ = 0;
  uint64_t deleted_count_ = 0;
  bool finished_ = false;
  Status status_;
};

class RowFileReader {
 public:
  // Opens `path` and verifies its header and footer. NotFound if absent;
  // DataLoss (naming the file) if it is truncated or corrupt; Unimplemented
  // for a newer format version.
  static StatusOr<std::unique_ptr<RowFileReader>> Open(const std::string& path);
  ~RowFileReader();
  RowFileReader(const RowFileReader&) = delete;
  RowFileReader& operator=(const RowFileReader&) = delete;

  const RowFileInfo& info() const { return info_; }
  const std::string& path() const { return path_; }
  uint64_t record_count() const { return record_count_; }
  uint64_t deleted_count() const { return deleted_count_; }

  // The next sparse row / dense range; false after the last record.
  // FailedPrecondition for the other kind; DataLoss for bad data.
  StatusOr<bool> NextRow(SparseRecord* row);
  StatusOr<bool> NextRange(DenseRecord* range);
  // The next deleted key; false after the last. FailedPrecondition while
  // records remain unread.
  StatusOr<bool> NextDeletedKey(Key* key);

  // Reads what was not read yet and verifies the checksum and that the body
  // ends where the footer begins. DataLoss otherwise.
  Status Finish();

 private:
  RowFileReader(std::string path, int fd, const RowFileInfo& info, uint64_t body_bytes,
                uint64_t record_count, uint64_t deleted_count, uint32_t expected_crc,
                std::span<const std::byte> header, std::span<const std::byte> footer_counts);
  // Copies the next `n` body bytes to `out`, summing them into the crc.
  Status Read(void* out, size_t n);
  Status ReadFloats(std::vector<float>* out, size_t n);
  Status Corrupt(const std::string& what) const;

  const std::string path_;
  const int fd_;
  const RowFileInfo info_;
  const uint64_t body_bytes_;
  const uint64_t record_count_;
  const uint64_t deleted_count_;
  const uint32_t expected_crc_;
  std::vector<std::byte> footer_counts_;
  std::vector<std::byte> buffer_;
  size_t buffer_pos_ = 0;
  size_t buffer_end_ = 0;
  uint64_t body_read_ = 0;  // body bytes consumed
  uint32_t crc_ = 0;
  uint64_t records_read_ = 0;
  uint64_t deleted_read_ = 0;
  std::vector<float> values_;
  std::vector<float> state_;
};

// Where server `rank` saves table `table_name`, relative to the model
// directory: "<table_name>/part-<rank as 5 digits>.rows".
std::string RowFileRelativePath(std::string_view table_name, int32_t rank);

// InvalidArgument unless `name` is usable as one directory name: 1 to 255
// characters of [A-Za-z0-9_.-], and not "." or "..".
Status ValidateTableDirName(std::string_view name);

// Writes `contents` to "<path>.tmp", fsyncs it, renames it to `path` and
// fsyncs the directory (the manifest of a saved model is published so).
Status WriteFileAtomically(const std::string& path, std::string_view contents);

}  // namespace tessera

#endif  // TESSERA_COMMON_ROW_FILE_H_
