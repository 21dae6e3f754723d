// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the
// checksum of iSCSI, ext4 and leveldb's log and table files. Used by the row
// files of saved models (common/row_file.h) to detect truncation and
// corruption. Uses the SSE4.2 crc32 instruction when the CPU has it, else a
// slicing-by-8 table; both give the same values.
//
// Thread-safe (pure functions).
//
// Example:
//   uint32_t crc = Crc32cExtend(0, header);
//   crc = Crc32cExtend(crc, body);  // == Crc32c(header + body)
#ifndef TESSERA_COMMON_CRC32C_H_
#define TESSERA_COMMON_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace tessera {

// The CRC-32C of the bytes already summed into `crc` followed by `data`.
// Crc32cExtend(0, data) is the CRC-32C of `data`; e.g. of the ASCII bytes
// "123456789" it is 0xE3069283.
uint32_t Crc32cExtend(uint32_t crc, std::span<const std::byte> data);

inline uint32_t Crc32c(std::span<const std::byte> data) { return Crc32cExtend(0, data); }

// The table-driven implementation alone, so tests cover it on CPUs where
// Crc32cExtend uses the crc32 instruction.
uint32_t TEST_Crc32cExtendPortable(uint32_t crc, std::span<const std::byte> data);

}  // namespace tessera

#endif  // TESSERA_COMMON_CRC32C_H_
