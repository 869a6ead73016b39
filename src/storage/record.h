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
//   u16 tag        the low 16 bits of the number of the segment the record was written into
//   u32 crc32c     of that segment number (8 bytes), of the 8 header bytes above, then of the payload
//   payload        `length` bytes, then zero padding to a multiple of 8
//
// Salting the checksum with the segment number lets a segment file be reused (recycled) for a later
// segment without clearing it: what an earlier use left behind checks out only under the earlier
// number, so it reads as Stale, the end of the data, never as a record of this segment.
//
// In a fresh segment (preallocated, so unwritten space reads as zeros) an all-zero header is the
// end of the data, and a record some of whose 512-byte sectors still read as zeros was torn by a
// crash in the middle of its write. Anything else that fails the checksum is damage. In a recycled
// segment a torn write shows stale bytes instead of zeros; there the Synced records tell damage
// from a torn tail (see Wal).
enum class RecordType : std::uint8_t {
    SegmentHeader = 1, // first record of every segment
    Entry = 2,         // one log entry
    HardState = 3,     // term, vote, commit
    ConfState = 4,     // the voters the log was created with
    LogStart = 5,      // the log begins after (index, term): written when a prefix is compacted
    Synced = 6,        // every byte of this segment before the offset it names was durable
    SegmentEnd = 7,    // the segment's records end here; the log goes on in the next segment
    LogReset = 8,      // the log is empty after (index, term): a snapshot from the leader replaced it
};
const char *toString(RecordType type);

inline constexpr std::uint8_t RecordVersion = 2;
inline constexpr std::size_t RecordHeaderSize = 12;
inline constexpr std::uint32_t MaxRecordPayload = 256u << 20; // a larger length is damage, not data
inline constexpr std::size_t SectorSize = 512;

inline constexpr std::size_t paddedSize(std::size_t payload) { return RecordHeaderSize + ((payload + 7) & ~std::size_t(7)); }

// Appends one framed record, for the segment numbered `sequence`, to `out`.
void appendRecord(std::string &out, RecordType type, std::string_view payload, std::uint64_t sequence);

enum class DecodeStatus {
    Ok,
    End,       // an all-zero header: no record here
    Truncated, // the record runs past the available bytes
    Stale,     // a whole record written for an earlier segment in a recycled file: no record here
    Torn,      // checksum mismatch and a sector of the record is all zeros: an interrupted write
    Corrupt,   // checksum mismatch or an impossible header: damage
};

struct DecodedRecord {
    RecordType type{};
    std::string_view payload;
    std::size_t size = 0; // bytes the record occupies, padding included
};

// Decodes the record at the start of `data`, which lies at `fileOffset` in the file of segment
// `sequence` (sectors are aligned to the file, not to the record). `why` explains Stale, Torn and
// Corrupt.
DecodeStatus decodeRecord(std::string_view data, DecodedRecord &out, std::string &why, std::uint64_t fileOffset, std::uint64_t sequence);

// The checksum a record of segment `sequence` with this header (its first 8 bytes) and payload has.
std::uint32_t recordChecksum(std::uint64_t sequence, const char *header, std::string_view payload);

// Whether a whole, valid record of segment `sequence` starts at `data` (cheap for anything else):
// for scanning the space after the end of the records.
bool isRecordOf(std::string_view data, std::uint64_t sequence, RecordType *type = nullptr, std::size_t *size = nullptr);

// ---- payloads ----------------------------------------------------------------------------------

struct SegmentHeader {
    std::uint64_t sequence = 0;  // segments are numbered 1, 2, 3... without gaps
    raft::Index prevIndex = 0;   // the last index of the log when this segment was started
    raft::Term prevTerm = 0;     // its term
    bool recycled = false;       // the file held an earlier segment: unwritten space is not zeros
};
std::string encodeSegmentHeader(const SegmentHeader &h);
bool decodeSegmentHeader(std::string_view payload, SegmentHeader &out);

// Entries are framed without copying their data: header and prefix, then the payload bytes.
void appendEntryRecord(std::string &out, const raft::Entry &e, std::uint64_t sequence);
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

std::string encodeSynced(std::uint64_t offset);
bool decodeSynced(std::string_view payload, std::uint64_t &offset);

} // namespace dengine::storage
