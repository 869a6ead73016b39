// SPDX-License-Identifier: Apache-2.0
#include "storage/record.h"

#include "storage/crc32c.h"

#include <algorithm>
#include <cstring>

namespace dengine::storage {

namespace {

constexpr std::uint64_t SegmentMagic = 0x324c4157474e4544ULL; // "DENGWAL2"
constexpr std::size_t EntryPrefix = 17;                       // index, term, type

void put32(char *p, std::uint32_t v) { std::memcpy(p, &v, 4); }
void put64(char *p, std::uint64_t v) { std::memcpy(p, &v, 8); }
std::uint32_t get32(const char *p)
{
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
std::uint64_t get64(const char *p)
{
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
void add64(std::string &s, std::uint64_t v)
{
    char b[8];
    put64(b, v);
    s.append(b, 8);
}

// The checksum of a record of segment `sequence`: the segment number, the first 8 header bytes,
// then the payload.
std::uint32_t recordCrc(std::uint64_t sequence, const char *header, std::string_view a, std::string_view b = {})
{
    char salt[8];
    put64(salt, sequence);
    std::uint32_t crc = crc32c(salt, 8);
    crc = crc32c(header, 8, crc);
    crc = crc32c(a.data(), a.size(), crc);
    return crc32c(b.data(), b.size(), crc);
}

std::uint16_t tagOf(std::uint64_t sequence) { return static_cast<std::uint16_t>(sequence & 0xffff); }

// The latest segment number below `sequence` whose tag is `tag`, or 0.
std::uint64_t earlierWithTag(std::uint64_t sequence, std::uint16_t tag)
{
    std::uint64_t c = (sequence & ~std::uint64_t(0xffff)) | tag;
    if (c >= sequence) {
        if (c < 0x10000)
            return 0;
        c -= 0x10000;
    }
    return c;
}

// Frames a record whose payload is the concatenation of `a` and `b`.
void appendFramed(std::string &out, RecordType type, std::string_view a, std::string_view b, std::uint64_t sequence)
{
    const std::size_t length = a.size() + b.size();
    char header[RecordHeaderSize] = {};
    put32(header, static_cast<std::uint32_t>(length));
    header[4] = static_cast<char>(type);
    header[5] = static_cast<char>(RecordVersion);
    const std::uint16_t tag = tagOf(sequence);
    std::memcpy(header + 6, &tag, 2);
    put32(header + 8, recordCrc(sequence, header, a, b));
    out.append(header, RecordHeaderSize);
    out.append(a);
    out.append(b);
    out.append(paddedSize(length) - RecordHeaderSize - length, '\0');
}

bool plausibleHeader(const char *h)
{
    const std::uint32_t length = get32(h);
    const auto type = static_cast<std::uint8_t>(h[4]);
    return length <= MaxRecordPayload && type >= 1 && type <= 8 && static_cast<std::uint8_t>(h[5]) == RecordVersion;
}

bool allZero(const char *p, std::size_t n)
{
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] != 0)
            return false;
    return true;
}

} // namespace

const char *toString(RecordType type)
{
    switch (type) {
    case RecordType::SegmentHeader: return "segment-header";
    case RecordType::Entry: return "entry";
    case RecordType::HardState: return "hard-state";
    case RecordType::ConfState: return "conf-state";
    case RecordType::LogStart: return "log-start";
    case RecordType::Synced: return "synced";
    case RecordType::SegmentEnd: return "segment-end";
    case RecordType::LogReset: return "log-reset";
    }
    return "unknown";
}

void appendRecord(std::string &out, RecordType type, std::string_view payload, std::uint64_t sequence)
{
    appendFramed(out, type, payload, {}, sequence);
}

std::uint32_t recordChecksum(std::uint64_t sequence, const char *header, std::string_view payload)
{
    return recordCrc(sequence, header, payload);
}

bool isRecordOf(std::string_view data, std::uint64_t sequence, RecordType *type, std::size_t *size)
{
    if (data.size() < RecordHeaderSize)
        return false;
    const char *h = data.data();
    std::uint16_t tag;
    std::memcpy(&tag, h + 6, 2);
    if (tag != tagOf(sequence) || !plausibleHeader(h))
        return false;
    const std::uint32_t length = get32(h);
    if (data.size() < RecordHeaderSize + length || recordCrc(sequence, h, data.substr(RecordHeaderSize, length)) != get32(h + 8))
        return false;
    if (type)
        *type = static_cast<RecordType>(h[4]);
    if (size)
        *size = paddedSize(length);
    return true;
}

DecodeStatus decodeRecord(std::string_view data, DecodedRecord &out, std::string &why, std::uint64_t fileOffset, std::uint64_t sequence)
{
    if (data.size() < RecordHeaderSize) {
        if (allZero(data.data(), data.size()))
            return DecodeStatus::End;
        return DecodeStatus::Truncated;
    }
    const char *h = data.data();
    if (allZero(h, RecordHeaderSize))
        return DecodeStatus::End;
    const std::uint32_t length = get32(h);
    const auto type = static_cast<std::uint8_t>(h[4]);
    const auto version = static_cast<std::uint8_t>(h[5]);
    const std::uint32_t stored = get32(h + 8);
    std::uint16_t tag;
    std::memcpy(&tag, h + 6, 2);
    if (!plausibleHeader(h)) {
        // A header that was half written (zeros in its second half) is a torn write too.
        if (allZero(h + 4, 8) || allZero(h, 4)) {
            why = "record header partly written";
            return DecodeStatus::Torn;
        }
        why = "impossible record header (length " + std::to_string(length) + ", type " + std::to_string(type) + ", version "
            + std::to_string(version) + ")";
        return DecodeStatus::Corrupt;
    }
    const std::size_t total = paddedSize(length);
    if (data.size() < RecordHeaderSize + length)
        return DecodeStatus::Truncated;
    const std::string_view payload = data.substr(RecordHeaderSize, length);
    const std::uint32_t crc = recordCrc(sequence, h, payload);
    if (crc != stored && tag != tagOf(sequence)) {
        if (const std::uint64_t earlier = earlierWithTag(sequence, tag); earlier != 0 && recordCrc(earlier, h, payload) == stored) {
            why = "a record left by segment " + std::to_string(earlier) + ", which used this file before";
            return DecodeStatus::Stale;
        }
    }
    if (crc != stored) {
        // Was part of the record never written? A crash mid-write leaves whole sectors of the
        // file unwritten, and unwritten space in a zero-filled segment reads as zeros. The sectors
        // are the file's: each one after the one the record starts in that lies in the record and
        // reads as zeros all the way to its end (or the end of the data) is one the write never
        // reached. In the sector the record starts in only the record's own bytes can be checked
        // (others records' may precede it): when they are all zero, the length field is, which no
        // written record has, so that sector was lost too. (When the header lies wholly in that
        // sector, a lost one already showed as an all-zero header above.)
        const std::uint64_t end = fileOffset + RecordHeaderSize + length; // the checksummed bytes
        const std::size_t firstPiece =
            static_cast<std::size_t>(std::min<std::uint64_t>((fileOffset / SectorSize + 1) * SectorSize - fileOffset, data.size()));
        if (allZero(h, firstPiece)) {
            why = "record torn: its first " + std::to_string(firstPiece) + " bytes (to the end of their sector) were never written";
            return DecodeStatus::Torn;
        }
        for (std::uint64_t sector = (fileOffset / SectorSize + 1) * SectorSize; sector < end; sector += SectorSize) {
            const std::size_t off = static_cast<std::size_t>(sector - fileOffset);
            if (off >= data.size())
                break;
            const std::size_t n = std::min<std::size_t>(SectorSize, data.size() - off);
            if (allZero(h + off, n)) {
                why = "record torn: the sector at file offset " + std::to_string(sector) + " (bytes " + std::to_string(off) + ".."
                    + std::to_string(std::min<std::uint64_t>(off + n, end - fileOffset)) + " of the record) was never written";
                return DecodeStatus::Torn;
            }
        }
        why = "checksum mismatch (stored " + std::to_string(stored) + ", computed " + std::to_string(crc) + ")";
        return DecodeStatus::Corrupt;
    }
    out.type = static_cast<RecordType>(type);
    out.payload = payload;
    out.size = std::min(total, data.size());
    return DecodeStatus::Ok;
}

std::string encodeSegmentHeader(const SegmentHeader &h)
{
    std::string s;
    add64(s, SegmentMagic);
    add64(s, h.sequence);
    add64(s, h.prevIndex);
    add64(s, h.prevTerm);
    add64(s, h.recycled ? 1 : 0);
    return s;
}

bool decodeSegmentHeader(std::string_view p, SegmentHeader &out)
{
    if (p.size() != 40 || get64(p.data()) != SegmentMagic || get64(p.data() + 32) > 1)
        return false;
    out.sequence = get64(p.data() + 8);
    out.prevIndex = get64(p.data() + 16);
    out.prevTerm = get64(p.data() + 24);
    out.recycled = get64(p.data() + 32) == 1;
    return true;
}

void appendEntryRecord(std::string &out, const raft::Entry &e, std::uint64_t sequence)
{
    char prefix[EntryPrefix];
    put64(prefix, e.index);
    put64(prefix + 8, e.term);
    prefix[16] = static_cast<char>(e.type);
    appendFramed(out, RecordType::Entry, std::string_view(prefix, EntryPrefix), e.data.view(), sequence);
}

bool peekEntry(std::string_view p, raft::Index &index, raft::Term &term)
{
    if (p.size() < EntryPrefix)
        return false;
    index = get64(p.data());
    term = get64(p.data() + 8);
    return static_cast<std::uint8_t>(p[16]) <= static_cast<std::uint8_t>(raft::EntryType::ConfChange);
}

bool decodeEntry(std::string_view p, raft::Entry &out)
{
    if (!peekEntry(p, out.index, out.term))
        return false;
    out.type = static_cast<raft::EntryType>(p[16]);
    out.data = raft::Payload(p.substr(EntryPrefix));
    return true;
}

std::string encodeHardState(const raft::HardState &hs)
{
    std::string s;
    add64(s, hs.term);
    add64(s, hs.vote);
    add64(s, hs.commit);
    return s;
}

bool decodeHardState(std::string_view p, raft::HardState &out)
{
    if (p.size() != 24)
        return false;
    out.term = get64(p.data());
    out.vote = get64(p.data() + 8);
    out.commit = get64(p.data() + 16);
    return true;
}

std::string encodeConfState(const raft::ConfState &cs)
{
    std::string s;
    add64(s, cs.voters.size());
    for (raft::NodeId id : cs.voters)
        add64(s, id);
    return s;
}

bool decodeConfState(std::string_view p, raft::ConfState &out)
{
    if (p.size() < 8)
        return false;
    const std::uint64_t n = get64(p.data());
    if (n > 1024 || p.size() != 8 + 8 * n)
        return false;
    out = {};
    for (std::uint64_t i = 0; i < n; ++i)
        out.voters.push_back(get64(p.data() + 8 + 8 * i));
    return true;
}

std::string encodeLogStart(raft::Index index, raft::Term term)
{
    std::string s;
    add64(s, index);
    add64(s, term);
    return s;
}

bool decodeLogStart(std::string_view p, raft::Index &index, raft::Term &term)
{
    if (p.size() != 16)
        return false;
    index = get64(p.data());
    term = get64(p.data() + 8);
    return true;
}

std::string encodeSynced(std::uint64_t offset)
{
    std::string s;
    add64(s, offset);
    return s;
}

bool decodeSynced(std::string_view p, std::uint64_t &offset)
{
    if (p.size() != 8)
        return false;
    offset = get64(p.data());
    return true;
}

} // namespace dengine::storage
