// SPDX-License-Identifier: Apache-2.0
// The entry point of the WAL reader fuzzer, shared by the libFuzzer target and the corpus replay test.
#pragma once

#include "storage/wal.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dengine::storage::test {

// An input is a bundle of segment files:
//   byte 0: flags
//     bits 0-1  number of segments - 1 (1 to 4)
//     bit 2     repair the records' checksums first (so that mutations reach past the CRC check)
//     bit 3     the segments are numbered from 3, as after a compaction (else from 1)
//     bits 4-7  k: decodeRecord is also run on the whole input as if it lay at file offset 8 * k
//   then, for every segment but the last: a little-endian u16 length and that many bytes
//   the rest: the last segment
struct WalReaderOutcome {
    std::string violation; // empty, or the broken property: the fuzzer aborts on it
    StorageStatus open;    // what Wal::open said
    RecoveryReport report;
    raft::Index first = 0;
    raft::Index last = 0;
};

WalReaderOutcome checkWalReaderInput(const std::uint8_t *data, std::size_t size);

std::string makeWalReaderInput(const std::vector<std::string> &segments, bool repairChecksums, bool numberedFromThree,
                               unsigned offsetSalt = 0);

// Makes every record whose header is plausible one of segment `sequence`: sets its tag and
// recomputes its checksum (what flag bit 2 does).
void repairChecksums(std::string &segment, std::uint64_t sequence);

} // namespace dengine::storage::test
