// Internals shared by row_file.cc (writer, paths) and row_file_reader.cc:
// the constants and header coding of the format documented in row_file.h.
// Not part of the API.
#ifndef TESSERA_COMMON_ROW_FILE_INTERNAL_H_
#define TESSERA_COMMON_ROW_FILE_INTERNAL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/row_file.h"
#include "common/status.h"

namespace tessera::row_file_internal {

inline constexpr char kHeaderMagic[8] = {'T', 'E', 'S', 'S', 'R', 'O', 'W', 'S'};
inline constexpr char kFooterMagic[8] = {'T', 'R', 'O', 'W', 'S', 'E', 'N', 'D'};
inline constexpr uint8_t kHasState = 1;
inline constexpr uint8_t kIsDelta = 2;
inline constexpr size_t kSparseRecordHeader = 16;
inline constexpr size_t kDenseRecordHeader = 24;
inline constexpr size_t kBufferBytes = 1 << 20;

using HeaderBytes = std::array<std::byte, kRowFileHeaderBytes>;

// Little-endian field access (the host is little-endian; row_file.cc checks).
template <typename T>
void Put(std::byte* at, T v) {
  std::memcpy(at, &v, sizeof(T));
}
template <typename T>
T Get(const std::byte* at) {
  T v;
  std::memcpy(&v, at, sizeof(T));
  return v;
}

// "path: op: strerror", as NotFound, ResourceExhausted (disk full) or Unavailable.
Status IoError(const std::string& path, const char* op, int err);
Status WriteAll(int fd, const std::string& path, const void* data, size_t n);
// Renames tmp -> path and fsyncs the directory, so the rename is durable.
Status Publish(const std::string& tmp, const std::string& path);
// The limits of row_file.h (InvalidArgument).
Status CheckInfo(const RowFileInfo& info);
HeaderBytes EncodeHeader(const RowFileInfo& info);
// Decodes and checks a header: DataLoss, or Unimplemented for a newer version.
StatusOr<RowFileInfo> DecodeHeader(const HeaderBytes& h);
// *out = a * b + c, or false on overflow.
bool MulAdd(uint64_t a, uint64_t b, uint64_t c, uint64_t* out);

}  // namespace tessera::row_file_internal

#endif  // TESSERA_COMMON_ROW_FILE_INTERNAL_H_
