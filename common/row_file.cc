#include "common/row_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crc32c.h"
#include "common/row_file_internal.h"

namespace tessera {

// Records are copied between memory and disk as they are laid out in memory.
static_assert(std::endian::native == std::endian::little,
              "row files are little-endian; add byte swapping for this target");

namespace row_file_internal {

Status IoError(const std::string& path, const char* op, int err) {
  std::string msg = absl::StrCat(path, ": ", op, ": ", std::strerror(err));
  if (err == ENOENT) return NotFoundError(msg);
  if (err == ENOSPC || err == EDQUOT) return ResourceExhaustedError(msg);
  return UnavailableError(msg);
}

Status WriteAll(int fd, const std::string& path, const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError(path, "write", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return OkStatus();
}

// Renames tmp -> path and fsyncs the directory, so the rename is durable.
Status Publish(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) return IoError(path, "rename", errno);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError(dir, "open", errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  return rc == 0 ? OkStatus() : IoError(dir, "fsync", err);
}

// The limits of row_file.h.
Status CheckInfo(const RowFileInfo& info) {
  const uint32_t per_dim = info.kind == RowFileKind::kSparse ? info.dim : 1;
  if (info.kind == RowFileKind::kSparse) {
    if (info.dim == 0 || info.dim > kMaxRowDim) return InvalidArgumentError("bad row dim");
    if (info.table_size != 0) return InvalidArgumentError("sparse table with a size");
  } else if (info.kind == RowFileKind::kDense) {
    if (info.dim != 0) return InvalidArgumentError("dense table with a row dim");
    if (info.table_size == 0 || info.table_size > kMaxDenseTableSize) {
      return InvalidArgumentError("bad dense table size");
    }
  } else {
    return InvalidArgumentError("unknown table kind");
  }
  if (info.state_floats > uint64_t{kMaxStateFloatsPerDim} * per_dim) {
    return InvalidArgumentError("too many state floats");
  }
  return OkStatus();
}

HeaderBytes EncodeHeader(const RowFileInfo& info) {
  HeaderBytes h{};
  std::memcpy(h.data(), kHeaderMagic, 8);
  Put<uint32_t>(&h[8], kRowFileVersion);
  Put<uint32_t>(&h[12], kRowFileHeaderBytes);
  h[16] = static_cast<std::byte>(info.kind);
  h[17] = static_cast<std::byte>((info.has_state ? kHasState : 0) | (info.is_delta ? kIsDelta : 0));
  Put<uint32_t>(&h[20], info.table_id);
  Put<uint32_t>(&h[24], info.dim);
  Put<uint32_t>(&h[28], info.state_floats);
  Put<uint64_t>(&h[32], info.table_size);
  Put<uint32_t>(&h[60], Crc32c(std::span(h).first(60)));
  return h;
}

// Decodes and checks a header; the message says what is wrong.
StatusOr<RowFileInfo> DecodeHeader(const HeaderBytes& h) {
  if (std::memcmp(h.data(), kHeaderMagic, 8) != 0) return DataLossError("not a row file (magic)");
  if (Get<uint32_t>(&h[60]) != Crc32c(std::span(h).first(60))) {
    return DataLossError("header checksum mismatch");
  }
  const uint32_t version = Get<uint32_t>(&h[8]);
  if (version > kRowFileVersion) {
    return UnimplementedError(absl::StrCat("format version ", version, " is newer than ",
                                           kRowFileVersion, " (written by a newer tessera)"));
  }
  if (version == 0 || Get<uint32_t>(&h[12]) != kRowFileHeaderBytes) {
    return DataLossError("bad version or header size");
  }
  const auto flags = static_cast<uint8_t>(h[17]);
  if ((flags & ~(kHasState | kIsDelta)) != 0 || Get<uint16_t>(&h[18]) != 0 ||
      std::any_of(&h[40], &h[60], [](std::byte b) { return b != std::byte{0}; })) {
    return DataLossError("unknown flags or non-zero reserved bytes");
  }
  RowFileInfo info;
  info.kind = static_cast<RowFileKind>(h[16]);
  info.has_state = (flags & kHasState) != 0;
  info.is_delta = (flags & kIsDelta) != 0;
  info.table_id = Get<uint32_t>(&h[20]);
  info.dim = Get<uint32_t>(&h[24]);
  info.state_floats = Get<uint32_t>(&h[28]);
  info.table_size = Get<uint64_t>(&h[32]);
  if (Status s = CheckInfo(info); !s.ok()) return DataLossError(s.message());
  return info;
}

// a * b + c, or false on overflow.
bool MulAdd(uint64_t a, uint64_t b, uint64_t c, uint64_t* out) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b + c;
  if (r > ~uint64_t{0}) return false;
  *out = static_cast<uint64_t>(r);
  return true;
}

}  // namespace row_file_internal

using row_file_internal::CheckInfo;
using row_file_internal::EncodeHeader;
using row_file_internal::HeaderBytes;
using row_file_internal::IoError;
using row_file_internal::kBufferBytes;
using row_file_internal::kDenseRecordHeader;
using row_file_internal::kFooterMagic;
using row_file_internal::kSparseRecordHeader;
using row_file_internal::Publish;
using row_file_internal::Put;
using row_file_internal::WriteAll;

// ---- writer -------------------------------------------------------------------

StatusOr<std::unique_ptr<RowFileWriter>> RowFileWriter::Create(const std::string& path,
                                                               const RowFileInfo& info) {
  if (Status s = CheckInfo(info); !s.ok()) {
    return InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  if (info.is_delta && info.kind == RowFileKind::kDense) {
    return InvalidArgumentError(path + ": dense deltas are not supported");
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(tmp, "open", errno);
  std::unique_ptr<RowFileWriter> w(new RowFileWriter(path, info, fd));
  const HeaderBytes header = EncodeHeader(info);
  TESSERA_RETURN_IF_ERROR(w->Append(header.data(), header.size()));
  return w;
}

RowFileWriter::RowFileWriter(std::string path, const RowFileInfo& info, int fd)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp"), info_(info), fd_(fd) {
  buffer_.reserve(kBufferBytes);
}

RowFileWriter::~RowFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(tmp_path_.c_str());
}

Status RowFileWriter::Fail(Status s) {
  if (status_.ok()) status_ = std::move(s);
  return status_;
}

Status RowFileWriter::Flush() {
  if (buffer_.empty()) return OkStatus();
  crc_ = Crc32cExtend(crc_, buffer_);
  Status s = WriteAll(fd_, tmp_path_, buffer_.data(), buffer_.size());
  buffer_.clear();
  return s.ok() ? s : Fail(s);
}

Status RowFileWriter::Append(const void* data, size_t n) {
  const auto* p = static_cast<const std::byte*>(data);
  if (buffer_.size() + n > kBufferBytes) {
    TESSERA_RETURN_IF_ERROR(Flush());
    if (n >= kBufferBytes) {  // A large dense range: straight to the file.
      crc_ = Crc32cExtend(crc_, {p, n});
      Status s = WriteAll(fd_, tmp_path_, p, n);
      return s.ok() ? s : Fail(s);
    }
  }
  buffer_.insert(buffer_.end(), p, p + n);
  return OkStatus();
}

Status RowFileWriter::AddRow(Key key, uint32_t update_count, uint32_t last_update_unix_s,
                             std::span<const float> value, std::span<const float> state) {
  TESSERA_RETURN_IF_ERROR(status_);
  if (info_.kind != RowFileKind::kSparse || deleted_count_ > 0 || finished_) {
    return FailedPreconditionError(path_ + ": AddRow on a dense file, after a deleted key or Finish");
  }
  if (value.size() != info_.dim || state.size() != info_.stored_state_floats()) {
    return InvalidArgumentError(absl::StrCat(path_, ": row of ", value.size(), "+", state.size(),
                                             " floats, expected ", info_.dim, "+",
                                             info_.stored_state_floats()));
  }
  std::byte head[kSparseRecordHeader];
  Put<uint64_t>(&head[0], key);
  Put<uint32_t>(&head[8], update_count);
  Put<uint32_t>(&head[12], last_update_unix_s);
  TESSERA_RETURN_IF_ERROR(Append(head, sizeof(head)));
  TESSERA_RETURN_IF_ERROR(Append(value.data(), value.size_bytes()));
  TESSERA_RETURN_IF_ERROR(Append(state.data(), state.size_bytes()));
  ++record_count_;
  return OkStatus();
}

Status RowFileWriter::AddRange(uint64_t begin, uint64_t end, uint32_t step,
                               std::span<const float> values, std::span<const float> state) {
  TESSERA_RETURN_IF_ERROR(status_);
  if (info_.kind != RowFileKind::kDense || finished_) {
    return FailedPreconditionError(path_ + ": AddRange on a sparse file or after Finish");
  }
  if (begin >= end || end > info_.table_size || values.size() != end - begin ||
      state.size() != uint64_t{info_.stored_state_floats()} * (end - begin)) {
    return InvalidArgumentError(absl::StrCat(path_, ": bad dense range [", begin, ", ", end,
                                             ") with ", values.size(), "+", state.size(),
                                             " floats"));
  }
  std::byte head[kDenseRecordHeader] = {};
  Put<uint64_t>(&head[0], begin);
  Put<uint64_t>(&head[8], end);
  Put<uint32_t>(&head[16], step);
  TESSERA_RETURN_IF_ERROR(Append(head, sizeof(head)));
  TESSERA_RETURN_IF_ERROR(Append(values.data(), values.size_bytes()));
  TESSERA_RETURN_IF_ERROR(Append(state.data(), state.size_bytes()));
  ++record_count_;
  return OkStatus();
}

Status RowFileWriter::AddDeletedKey(Key key) {
  TESSERA_RETURN_IF_ERROR(status_);
  if (info_.kind != RowFileKind::kSparse || !info_.is_delta || finished_) {
    return FailedPreconditionError(path_ + ": deleted keys need a sparse delta file");
  }
  TESSERA_RETURN_IF_ERROR(Append(&key, sizeof(key)));
  ++deleted_count_;
  return OkStatus();
}

Status RowFileWriter::Finish() {
  TESSERA_RETURN_IF_ERROR(status_);
  if (finished_) return FailedPreconditionError(path_ + ": Finish called twice");
  std::byte footer[kRowFileFooterBytes] = {};
  Put<uint64_t>(&footer[0], record_count_);
  Put<uint64_t>(&footer[8], deleted_count_);
  TESSERA_RETURN_IF_ERROR(Flush());
  Put<uint32_t>(&footer[16], Crc32cExtend(crc_, std::span(footer).first(16)));
  std::memcpy(&footer[24], kFooterMagic, 8);
  TESSERA_RETURN_IF_ERROR(Append(footer, sizeof(footer)));
  TESSERA_RETURN_IF_ERROR(Flush());
  if (::fsync(fd_) != 0) return Fail(IoError(tmp_path_, "fsync", errno));
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return Fail(IoError(tmp_path_, "close", errno));
  if (Status s = Publish(tmp_path_, path_); !s.ok()) return Fail(s);
  finished_ = true;
  return OkStatus();
}


// ---- paths --------------------------------------------------------------------

std::string RowFileRelativePath(std::string_view table_name, int32_t rank) {
  return absl::StrFormat("%s/part-%05d.rows", std::string(table_name), rank);
}

Status ValidateTableDirName(std::string_view name) {
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  });
  if (name.empty() || name.size() > 255 || !chars_ok || name == "." || name == "..") {
    return InvalidArgumentError(absl::StrCat("table name \"", std::string(name),
                                             "\" cannot be a directory name"));
  }
  return OkStatus();
}

Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(tmp, "open", errno);
  Status s = WriteAll(fd, tmp, contents.data(), contents.size());
  if (s.ok() && ::fsync(fd) != 0) s = IoError(tmp, "fsync", errno);
  if (::close(fd) != 0 && s.ok()) s = IoError(tmp, "close", errno);
  if (s.ok()) s = Publish(tmp, path);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}


}  // namespace tessera
