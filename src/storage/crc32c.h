// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>

namespace dengine::storage {

// CRC-32C (Castagnoli), the checksum of every log record and snapshot file. Uses the SSE4.2 crc32
// instruction when the processor has it and a table-driven fallback otherwise; both give the same
// values. `crc` chains: crc32c(b, crc32c(a)) == crc32c(a || b).
std::uint32_t crc32c(const void *data, std::size_t size, std::uint32_t crc = 0);

// The table-driven version alone (what crc32c falls back to), for checking one against the other.
std::uint32_t crc32cPortable(const void *data, std::size_t size, std::uint32_t crc = 0);

} // namespace dengine::storage
