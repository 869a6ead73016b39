// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dengine::storage {

// The on-disk record of the write-ahead log (all integers little-endian):
//
//   u32 length     payload bytes
//   u8  type       RecordType
//   u8  version    RecordVersion
//   u16 reserved   zero
//   u32 crc32c     of the 8 bytes above, then of the payload
//   payload        `length` bytes, then zero padding to a multiple of 8
//
// A preallocated segment is zero-filled, so unwritten space reads as an all-zero header: the end of
// the data. A record some of whose 512-byte sectors still read as zeros was torn by a crash in the
// middle of its write. Anything else that fails the checksum is damage.
enum class RecordType : std::uint8_t {
    SegmentHeader = 1, // first record of every segment
    Entry = 2,         // one log entry
    HardState = 3,     // term, vote, commit
    ConfState = 4,     // the voters the log was created with
    LogStart = 5,      // the log begins after (index, term): written when a prefix is compacted
};
const char *toString(RecordType type);

inline constexpr std::uint8_t RecordVersion = 1;
inline constexpr std::size_t RecordHeaderSize = 12;
inline constexpr std::uint32_t MaxRecordPayload = 256u << 20; // a larger length is damage, not data
inline constexpr std::size_t SectorSize = 512;

inline constexpr std::size_t paddedSize(std::size_t payload) { return RecordHeaderSize + ((payload + 7) & ~std::size_t(7)); }

// Appends one framed record to `out`.
void appendRecord(std::string &out, RecordType type, std::string_view payload);

enum class DecodeStatus {
    Ok,
    End,       // an all-zero header: no record here
    Truncated, // the record runs past the available bytes
    Torn,      // checksum mismatch and a sector of the record is all zeros: an interrupted write
    Corrupt,   // checksum mismatch or an impossible header: damage
};

struct DecodedRecord {
    RecordType type{};
    std::string_view payload;
    std::size_t size = 0; // bytes the record occupies, padding included
};

// Decodes the record at the start of `data`, which lies at `fileOffset` in its file (sectors are
// aligned to the file, not to the record). `why` explains Torn and Corrupt.
DecodeStatus decodeRecord(std::string_view data, DecodedRecord &out, std::string &why, std::uint64_t fileOffset = 0);

// ---- payloads ----------------------------------------------------------------------------------

struct SegmentHeader {
    std::uint64_t sequence = 0;  // segments are numbered 1, 2, 3... without gaps
    raft::Index prevIndex = 0;   // the last index of the log when this segment was started
    raft::Term prevTerm = 0;     // its term
};
std::string encodeSegmentHeader(const SegmentHeader &h);
bool decodeSegmentHeader(std::string_view payload, SegmentHeader &out);

// Entries are framed without copying their data: header and prefix, then the payload bytes.
void appendEntryRecord(std::string &out, const raft::Entry &e);
// Decodes an entry; the data is copied into a new Payload.
bool decodeEntry(std::string_view payload, raft::Entry &out);
// Only the index and term (for indexing a segment without copying data).
bool peekEntry(std::string_view payload, raft::Index &index, raft::Term &term);

std::string encodeHardState(const raft::HardState &hs);
bool decodeHardState(std::string_view payload, raft::HardState &out);

std::string encodeConfState(const raft::ConfState &cs);
bool decodeConfState(std::string_view payload, raft::ConfState &out);

std::string encodeLogStart(raft::Index index, raft::Term term);
bool decodeLogStart(std::string_view payload, raft::Index &index, raft::Term &term);

} // namespace dengine::storage
