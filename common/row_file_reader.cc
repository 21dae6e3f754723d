#include "common/row_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "common/row_file_internal.h"

// RowFileReader (the rest of row_file.h is in row_file.cc).
namespace tessera {

using row_file_internal::DecodeHeader;
using row_file_internal::Get;
using row_file_internal::HeaderBytes;
using row_file_internal::IoError;
using row_file_internal::kBufferBytes;
using row_file_internal::kDenseRecordHeader;
using row_file_internal::kFooterMagic;
using row_file_internal::kSparseRecordHeader;
using row_file_internal::MulAdd;

StatusOr<std::unique_ptr<RowFileReader>> RowFileReader::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path, "open", errno);
  // Closes fd on every early return; disarmed once the reader owns it.
  struct FdGuard {
    int fd;
    ~FdGuard() {
      if (fd >= 0) ::close(fd);
    }
  } guard{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return IoError(path, "stat", errno);
  const auto corrupt = [&](const std::string& what) {
    return DataLossError(absl::StrCat(path, ": truncated or corrupt row file: ", what));
  };
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode)) return corrupt("not a regular file");
  if (size < kRowFileHeaderBytes + kRowFileFooterBytes) {
    return corrupt(absl::StrCat("only ", size, " bytes"));
  }
  HeaderBytes header;
  std::array<std::byte, kRowFileFooterBytes> footer;
  if (::pread(fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size()) ||
      ::pread(fd, footer.data(), footer.size(), static_cast<off_t>(size - footer.size())) !=
          static_cast<ssize_t>(footer.size())) {
    return IoError(path, "read", errno);
  }
  StatusOr<RowFileInfo> info = DecodeHeader(header);
  if (info.status().code() == StatusCode::kUnimplemented) {
    return UnimplementedError(absl::StrCat(path, ": ", info.status().message()));
  }
  if (!info.ok()) return corrupt(std::string(info.status().message()));
  if (std::memcmp(&footer[24], kFooterMagic, 8) != 0) return corrupt("no footer (truncated?)");
  const uint64_t records = Get<uint64_t>(&footer[0]);
  const uint64_t deleted = Get<uint64_t>(&footer[8]);
  const uint64_t body = size - kRowFileHeaderBytes - kRowFileFooterBytes;
  if (deleted > 0 && (!info->is_delta || info->kind != RowFileKind::kSparse)) {
    return corrupt("deleted keys in a full or dense file");
  }
  uint64_t need = 0;
  const uint64_t state = info->stored_state_floats();
  const uint64_t min_record = info->kind == RowFileKind::kSparse
                                  ? kSparseRecordHeader + 4 * (info->dim + state)
                                  : kDenseRecordHeader + 4 * (1 + state);
  if (!MulAdd(deleted, sizeof(Key), 0, &need) || !MulAdd(records, min_record, need, &need) ||
      need > body || (info->kind == RowFileKind::kSparse && need != body) ||
      Get<uint32_t>(&footer[20]) != 0) {
    return corrupt(absl::StrCat(records, " records and ", deleted, " deleted keys do not fit ",
                                body, " body bytes"));
  }
  guard.fd = -1;
  return std::unique_ptr<RowFileReader>(
      new RowFileReader(path, fd, *info, body, records, deleted, Get<uint32_t>(&footer[16]),
                        header, std::span(footer).first(16)));
}

RowFileReader::RowFileReader(std::string path, int fd, const RowFileInfo& info,
                             uint64_t body_bytes, uint64_t record_count, uint64_t deleted_count,
                             uint32_t expected_crc, std::span<const std::byte> header,
                             std::span<const std::byte> footer_counts)
    : path_(std::move(path)),
      fd_(fd),
      info_(info),
      body_bytes_(body_bytes),
      record_count_(record_count),
      deleted_count_(deleted_count),
      expected_crc_(expected_crc),
      footer_counts_(footer_counts.begin(), footer_counts.end()),
      buffer_(kBufferBytes),
      crc_(Crc32c(header)) {}

RowFileReader::~RowFileReader() { ::close(fd_); }

Status RowFileReader::Corrupt(const std::string& what) const {
  return DataLossError(absl::StrCat(path_, ": truncated or corrupt row file: ", what));
}

Status RowFileReader::Read(void* out, size_t n) {
  if (n > body_bytes_ - body_read_) return Corrupt("a record runs past the footer");
  auto* dst = static_cast<std::byte*>(out);
  size_t left = n;
  while (left > 0) {
    if (buffer_pos_ == buffer_end_) {
      const uint64_t remaining = body_bytes_ - body_read_ - (n - left);
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buffer_.size(), remaining));
      const off_t at = static_cast<off_t>(kRowFileHeaderBytes + body_read_ + (n - left));
      const ssize_t got = ::pread(fd_, buffer_.data(), want, at);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return IoError(path_, "read", errno);
      if (got == 0) return Corrupt("file shrank while reading");
      crc_ = Crc32cExtend(crc_, std::span(buffer_).first(static_cast<size_t>(got)));
      buffer_pos_ = 0;
      buffer_end_ = static_cast<size_t>(got);
    }
    const size_t take = std::min(left, buffer_end_ - buffer_pos_);
    std::memcpy(dst, &buffer_[buffer_pos_], take);
    buffer_pos_ += take;
    dst += take;
    left -= take;
  }
  body_read_ += n;
  return OkStatus();
}

Status RowFileReader::ReadFloats(std::vector<float>* out, size_t n) {
  if (n > (body_bytes_ - body_read_) / sizeof(float)) {
    return Corrupt("a record runs past the footer");
  }
  out->resize(n);
  return Read(out->data(), n * sizeof(float));
}

StatusOr<bool> RowFileReader::NextRow(SparseRecord* row) {
  if (info_.kind != RowFileKind::kSparse) {
    return FailedPreconditionError(path_ + ": NextRow on a dense row file");
  }
  if (records_read_ == record_count_) return false;
  std::byte head[kSparseRecordHeader];
  TESSERA_RETURN_IF_ERROR(Read(head, sizeof(head)));
  TESSERA_RETURN_IF_ERROR(ReadFloats(&values_, info_.dim));
  TESSERA_RETURN_IF_ERROR(ReadFloats(&state_, info_.stored_state_floats()));
  row->key = Get<uint64_t>(&head[0]);
  row->update_count = Get<uint32_t>(&head[8]);
  row->last_update_unix_s = Get<uint32_t>(&head[12]);
  row->value = values_;
  row->state = state_;
  ++records_read_;
  return true;
}

StatusOr<bool> RowFileReader::NextRange(DenseRecord* range) {
  if (info_.kind != RowFileKind::kDense) {
    return FailedPreconditionError(path_ + ": NextRange on a sparse row file");
  }
  if (records_read_ == record_count_) return false;
  std::byte head[kDenseRecordHeader];
  TESSERA_RETURN_IF_ERROR(Read(head, sizeof(head)));
  const uint64_t begin = Get<uint64_t>(&head[0]);
  const uint64_t end = Get<uint64_t>(&head[8]);
  if (begin >= end || end > info_.table_size || Get<uint32_t>(&head[20]) != 0) {
    return Corrupt(absl::StrCat("bad dense range [", begin, ", ", end, ") of a table of ",
                                info_.table_size));
  }
  const uint64_t n = end - begin;
  TESSERA_RETURN_IF_ERROR(ReadFloats(&values_, n));
  // n * state <= table_size * kMaxStateFloatsPerDim: no overflow.
  TESSERA_RETURN_IF_ERROR(ReadFloats(&state_, n * info_.stored_state_floats()));
  range->begin = begin;
  range->end = end;
  range->step = Get<uint32_t>(&head[16]);
  range->values = values_;
  range->state = state_;
  ++records_read_;
  return true;
}

StatusOr<bool> RowFileReader::NextDeletedKey(Key* key) {
  if (records_read_ != record_count_) {
    return FailedPreconditionError(path_ + ": read the records before the deleted keys");
  }
  if (deleted_read_ == deleted_count_) return false;
  TESSERA_RETURN_IF_ERROR(Read(key, sizeof(*key)));
  ++deleted_read_;
  return true;
}

Status RowFileReader::Finish() {
  SparseRecord row;
  DenseRecord range;
  while (records_read_ < record_count_) {
    if (info_.kind == RowFileKind::kSparse) {
      TESSERA_RETURN_IF_ERROR(NextRow(&row).status());
    } else {
      TESSERA_RETURN_IF_ERROR(NextRange(&range).status());
    }
  }
  Key key;
  while (deleted_read_ < deleted_count_) TESSERA_RETURN_IF_ERROR(NextDeletedKey(&key).status());
  if (body_read_ != body_bytes_) {
    return Corrupt(absl::StrCat(body_bytes_ - body_read_, " bytes after the last record"));
  }
  if (Crc32cExtend(crc_, footer_counts_) != expected_crc_) return Corrupt("checksum mismatch");
  return OkStatus();
}

}  // namespace tessera
