// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected; the checksum of iSCSI, ext4 and LevelDB),
// used to checksum every stored job record and finished-job bitmap (doc/storage.md).
//
// Why this one: any change confined to 32 consecutive bits (so any flipped byte, or any four
// bytes) is detected with certainty, and random damage with probability 1 - 2^-32. x86-64
// processors since 2008 compute it in hardware (SSE4.2 `crc32`), used when the CPU has it;
// elsewhere a table-driven (slicing-by-8) version gives the same values. zlib's crc32 is another
// polynomial with no hardware instruction, so it would be slower and a new dependency.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace roundhouse::storage {

// Extends `crc` (the value returned for the bytes before; 0 to start) over `bytes`.
// Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32c(uint32_t crc, std::string_view bytes);

inline uint32_t Crc32c(std::string_view bytes) { return Crc32c(0, bytes); }

// For tests: the table-driven version alone, and whether Crc32c uses the CPU's instruction.
uint32_t Crc32cPortable(uint32_t crc, std::string_view bytes);
bool Crc32cUsesHardware();

}  // namespace roundhouse::storage
