// SPDX-License-Identifier: Apache-2.0
#include "storage/wal.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace dengine::storage {

namespace {

constexpr const char *SegmentSuffix = ".wal";
constexpr const char *FreeSuffix = ".free";
constexpr std::uint64_t PageSize = 4096;

// "<16 hex digits><suffix>"
bool parseNumberedName(const std::string &name, const char *suffix, std::uint64_t &sequence)
{
    const std::size_t n = std::strlen(suffix);
    if (name.size() != 16 + n || name.compare(16, n, suffix) != 0)
        return false;
    sequence = 0;
    for (int i = 0; i < 16; ++i) {
        const char c = name[static_cast<std::size_t>(i)];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return false;
        sequence = sequence << 4 | static_cast<std::uint64_t>(v);
    }
    return sequence > 0;
}

StorageStatus corrupt(const std::string &message) { return {StorageErrorCode::Corrupt, message}; }

// An index no log reaches: the log would start after it at index 0.
constexpr raft::Index NoIndex = ~raft::Index(0);

std::string where(const std::string &path, std::uint64_t offset) { return path + " at offset " + std::to_string(offset); }

// Index of the first non-zero byte in [p, p + n), or n.
std::size_t firstNonZero(const char *p, std::size_t n)
{
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (w != 0)
            break;
    }
    for (; i < n; ++i)
        if (p[i] != 0)
            return i;
    return n;
}

// Reads a segment in large chunks through one reusable buffer, so recovery streams the log at disk
// speed instead of allocating (and faulting in) a whole segment's worth of memory per file.
class ChunkReader {
public:
    static constexpr std::size_t Chunk = 8u << 20;

    ChunkReader(File &file, std::uint64_t size, std::vector<char> &buffer) : m_file(file), m_size(size), m_buf(buffer) {}

    // The bytes from `offset` on that are in memory, at least `atLeast` of them unless the file ends.
    IoStatus window(std::uint64_t offset, std::size_t atLeast, std::string_view &out)
    {
        if (offset < m_start || offset + atLeast > m_start + m_len) {
            const std::uint64_t left = offset < m_size ? m_size - offset : 0;
            const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(std::max(atLeast, Chunk), left));
            if (m_buf.size() < want)
                m_buf.resize(want);
            std::size_t got = 0;
            if (IoStatus st = m_file.read(m_buf.data(), want, offset, got); !st)
                return st;
            m_start = offset;
            m_len = got;
            m_read += got;
        }
        out = std::string_view(m_buf.data() + (offset - m_start), m_len - (offset - m_start));
        return {};
    }
    // Offset of the last non-zero byte at or after `from` (found by reading to the end), if any.
    IoStatus lastNonZero(std::uint64_t from, std::optional<std::uint64_t> &out)
    {
        out.reset();
        for (std::uint64_t off = from; off < m_size;) {
            std::string_view w;
            if (IoStatus st = window(off, 1, w); !st)
                return st;
            if (w.empty())
                break;
            std::size_t i = 0;
            while ((i += firstNonZero(w.data() + i, w.size() - i)) < w.size()) {
                out = off + i;
                ++i;
            }
            off += w.size();
        }
        return {};
    }
    std::uint64_t size() const { return m_size; }
    std::uint64_t bytesRead() const { return m_read; }

private:
    File &m_file;
    std::uint64_t m_size;
    std::vector<char> &m_buf;
    std::uint64_t m_start = 0;
    std::size_t m_len = 0;
    std::uint64_t m_read = 0;
};

// What lies after the point where a segment's records stop: the records of this segment that still
// check out there (left by a write that a crash interrupted), and any Synced record among them that
// says the point was durable.
struct TailScan {
    std::uint64_t furthestEnd = 0;            // end of the last such record, 0 if none
    std::optional<std::uint64_t> coveringAt;  // a Synced record naming a point past the stop
    std::uint64_t coveringClaim = 0;
};

IoStatus scanTail(ChunkReader &reader, std::uint64_t stop, std::uint64_t sequence, TailScan &out, std::uint64_t end)
{
    const std::uint16_t tag = static_cast<std::uint16_t>(sequence & 0xffff);
    // Records start at multiples of 4 (12-byte headers, payloads padded to 8). A record found is
    // skipped whole, so what a payload carries is never taken for a record of its own.
    end = std::min(end, reader.size());
    for (std::uint64_t off = stop + 4; off + RecordHeaderSize <= end;) {
        std::string_view w;
        if (IoStatus st = reader.window(off, RecordHeaderSize, w); !st)
            return st;
        if (w.size() < RecordHeaderSize)
            break;
        std::size_t i = 0;
        bool found = false;
        for (; i + RecordHeaderSize <= w.size(); i += 4) {
            std::uint16_t t;
            std::memcpy(&t, w.data() + i + 6, 2);
            if (t == tag && static_cast<std::uint8_t>(w[i + 5]) == RecordVersion) {
                found = true;
                break;
            }
        }
        off += i;
        if (!found)
            continue;
        std::uint32_t length;
        std::memcpy(&length, w.data() + i, 4);
        if (length <= MaxRecordPayload && off + RecordHeaderSize + length <= reader.size()) {
            if (IoStatus st = reader.window(off, RecordHeaderSize + length, w); !st)
                return st;
            RecordType type;
            std::size_t size = 0;
            if (isRecordOf(w, sequence, &type, &size)) {
                out.furthestEnd = off + size;
                std::uint64_t claim = 0;
                if (type == RecordType::Synced && decodeSynced(w.substr(RecordHeaderSize, length), claim) && claim > stop
                    && !out.coveringAt) {
                    out.coveringAt = off;
                    out.coveringClaim = claim;
                }
                off += size;
                continue;
            }
        }
        off += 4;
    }
    return {};
}

} // namespace

StorageStatus StorageStatus::fromIo(const IoStatus &io)
{
    if (io.ok())
        return {};
    if (io.code() == ENOSPC || io.code() == EDQUOT)
        return {StorageErrorCode::NoSpace, io.message()};
    if (io.code() == EWOULDBLOCK)
        return {StorageErrorCode::Locked, io.message()};
    return {StorageErrorCode::Io, io.message()};
}

Wal::~Wal() = default;

WalFileKind parseWalFileName(const std::string &name, std::uint64_t &sequence)
{
    if (parseNumberedName(name, SegmentSuffix, sequence))
        return WalFileKind::Segment;
    if (parseNumberedName(name, FreeSuffix, sequence))
        return WalFileKind::Free;
    return WalFileKind::Other;
}

std::string Wal::numberedPath(std::uint64_t sequence, const char *suffix) const
{
    char name[32];
    std::snprintf(name, sizeof name, "%016llx%s", static_cast<unsigned long long>(sequence), suffix);
    return joinPath(m_walDir, name);
}

std::string Wal::segmentPath(std::uint64_t sequence) const { return numberedPath(sequence, SegmentSuffix); }

std::string Wal::freePath(std::uint64_t sequence) const { return numberedPath(sequence, FreeSuffix); }

StorageStatus Wal::open(const WalOptions &options, std::unique_ptr<Wal> &out, RecoveryReport *report)
{
    if (options.dir.empty())
        return {StorageErrorCode::Config, "data directory: not set"};
    if (options.segmentBytes < 4096)
        return {StorageErrorCode::Config, "segment size: must be at least 4096 bytes"};
    std::unique_ptr<Wal> wal(new Wal());
    wal->m_opts = options;
    wal->m_fs = options.fs ? options.fs : &FileSystem::posix();
    wal->m_walDir = joinPath(options.dir, "wal");
    if (options.readOnly && !wal->m_fs->exists(wal->m_walDir))
        return {StorageErrorCode::Config, wal->m_walDir + ": no log here"};
    if (!options.readOnly)
        if (IoStatus st = wal->m_fs->createDirectories(wal->m_walDir); !st)
            return StorageStatus::fromIo(st);
    if (IoStatus st = wal->m_fs->lock(joinPath(options.dir, "LOCK"), wal->m_lock); !st) {
        if (st.code() == EWOULDBLOCK)
            return {StorageErrorCode::Locked, "data directory " + options.dir + " is in use by another process (" + st.message() + ")"};
        return StorageStatus::fromIo(st);
    }
    RecoveryReport local;
    RecoveryReport &rep = report ? *report : local;
    rep = {};
    wal->m_background = !options.readOnly && options.prepareInBackground && options.fs == nullptr;
    if (StorageStatus st = wal->recover(rep); !st)
        return st;
    if (wal->m_startNext && !options.readOnly) {
        // The last segment was finished when the process stopped, before its successor existed.
        if (StorageStatus st = wal->startSegment(wal->m_segments.back().sequence + 1); !st)
            return st;
    }
    out = std::move(wal);
    return {};
}

StorageStatus Wal::createFirstSegment(RecoveryReport &report)
{
    report.created = true;
    m_confState = m_opts.bootstrap;
    if (m_confState.voters.empty() && !m_opts.joining)
        return {StorageErrorCode::Config, "a new log needs the cluster's voters (bootstrap configuration is empty)"};
    if (StorageStatus st = startSegment(1); !st)
        return st;
    if (StorageStatus st = syncNow(); !st)
        return st;
    report.segments = 1;
    return {};
}

StorageStatus Wal::recover(RecoveryReport &report)
{
    std::vector<std::string> names;
    if (IoStatus st = m_fs->list(m_walDir, names); !st)
        return StorageStatus::fromIo(st);
    std::vector<std::uint64_t> sequences;
    for (const std::string &name : names) {
        std::uint64_t seq;
        const WalFileKind kind = parseWalFileName(name, seq);
        if (kind == WalFileKind::Segment)
            sequences.push_back(seq);
        else if (kind == WalFileKind::Free)
            m_free.push_back(seq);
        else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0)
            m_fs->remove(joinPath(m_walDir, name)); // a segment being prepared when the process died
    }
    if (sequences.empty()) {
        if (m_opts.readOnly)
            return {StorageErrorCode::Config, m_walDir + ": no log here"};
        return createFirstSegment(report);
    }
    std::sort(sequences.begin(), sequences.end());
    std::sort(m_free.begin(), m_free.end());
    report.recycledFiles = m_free.size();
    for (std::size_t k = 1; k < sequences.size(); ++k) {
        if (sequences[k] != sequences[k - 1] + 1)
            return corrupt("segment " + segmentPath(sequences[k - 1] + 1) + " is missing (found " + segmentPath(sequences[k - 1])
                           + " and then " + segmentPath(sequences[k]) + ")");
    }

    raft::Index last = 0;
    raft::Term lastTerm = 0;
    raft::Index oldestPrev = 0;    // where the oldest segment says the log stood when it began
    raft::Index latestLogStart = 0; // the highest compaction point recorded
    std::optional<std::string> rebasedAt; // see below: an entry under the oldest segment's start
    bool startRecorded = false;           // a log-start record set m_first
    bool resetSeen = false;               // a log-reset record discarded everything before it
    bool sawConf = false;                 // a configuration record (possibly empty: a joining node's)
    std::vector<char> buffer;
    for (std::size_t k = 0; k < sequences.size(); ++k) {
        const bool isLast = k + 1 == sequences.size();
        Segment seg;
        seg.sequence = sequences[k];
        seg.path = segmentPath(seg.sequence);
        std::unique_ptr<File> file;
        if (IoStatus st = m_fs->open(seg.path, m_opts.readOnly ? OpenMode::ReadOnly : OpenMode::ReadWrite, file); !st)
            return StorageStatus::fromIo(st);
        std::uint64_t size = 0;
        if (IoStatus st = file->size(size); !st)
            return StorageStatus::fromIo(st);
        ChunkReader reader(*file, size, buffer);

        std::uint64_t offset = 0;
        bool sawHeader = false;
        bool recycled = false; // the file held an earlier segment
        bool ended = false;    // a segment-end record closed the segment
        for (;;) {
            DecodedRecord rec;
            std::string why;
            std::string_view window;
            if (IoStatus st = reader.window(offset, 4096, window); !st)
                return StorageStatus::fromIo(st);
            DecodeStatus ds = decodeRecord(window, rec, why, offset, seg.sequence);
            if (ds == DecodeStatus::Truncated && offset + window.size() < size && window.size() >= RecordHeaderSize) {
                // The record straddles the chunk: read it whole (its length was checked against the
                // maximum, so this is bounded).
                std::uint32_t length;
                std::memcpy(&length, window.data(), 4);
                if (IoStatus st = reader.window(offset, paddedSize(length), window); !st)
                    return StorageStatus::fromIo(st);
                ds = decodeRecord(window, rec, why, offset, seg.sequence);
            }
            if (ds == DecodeStatus::Ok) {
                if (!sawHeader) {
                    SegmentHeader h;
                    if (rec.type != RecordType::SegmentHeader || !decodeSegmentHeader(rec.payload, h))
                        return corrupt(where(seg.path, offset) + ": the segment does not start with a segment header");
                    if (h.prevIndex == NoIndex)
                        return corrupt(where(seg.path, offset) + ": the segment header names an impossible index");
                    if (h.sequence != seg.sequence)
                        return corrupt(where(seg.path, offset) + ": the header says segment " + std::to_string(h.sequence)
                                       + ": segments were renamed or reordered");
                    if (k == 0) {
                        // The oldest segment left: the log begins where it says the log stood.
                        m_first = h.prevIndex + 1;
                        m_startTerm = h.prevTerm;
                        last = h.prevIndex;
                        lastTerm = h.prevTerm;
                        oldestPrev = h.prevIndex;
                    } else if (h.prevIndex != last || h.prevTerm != lastTerm) {
                        return corrupt(where(seg.path, offset) + ": the segment continues a log at (index " + std::to_string(h.prevIndex)
                                       + ", term " + std::to_string(h.prevTerm) + ") but the segments before it end at (index "
                                       + std::to_string(last) + ", term " + std::to_string(lastTerm) + ")");
                    }
                    sawHeader = true;
                    recycled = h.recycled;
                    offset += rec.size;
                    continue;
                }
                switch (rec.type) {
                case RecordType::SegmentHeader:
                    return corrupt(where(seg.path, offset) + ": a second segment header");
                case RecordType::Synced: {
                    std::uint64_t claim;
                    if (!decodeSynced(rec.payload, claim) || claim > offset)
                        return corrupt(where(seg.path, offset) + ": malformed synced record");
                    break;
                }
                case RecordType::SegmentEnd:
                    if (!rec.payload.empty())
                        return corrupt(where(seg.path, offset) + ": malformed segment-end record");
                    ended = true;
                    break;
                case RecordType::Entry: {
                    raft::Index index;
                    raft::Term term;
                    if (!peekEntry(rec.payload, index, term))
                        return corrupt(where(seg.path, offset) + ": malformed entry record");
                    if (!startRecorded && index >= 1 && index < m_first) {
                        // A conflict reached under the point where the oldest segment began, and the
                        // segment that held those entries was deleted since (a compaction past them):
                        // the log restarts here, and the log-start record that allowed the deletion,
                        // further on, says where it begins (checked after the loop).
                        m_index.clear();
                        m_first = index;
                        m_startTerm = 0;
                        last = index - 1;
                        lastTerm = 0;
                        if (!rebasedAt)
                            rebasedAt = where(seg.path, offset);
                    }
                    if (index < m_first || index > last + 1)
                        return corrupt(where(seg.path, offset) + ": entry " + std::to_string(index) + " does not follow the log (which spans "
                                       + std::to_string(m_first) + ".." + std::to_string(last) + "): entries are missing");
                    if (index <= last)
                        m_index.resize(index - m_first); // a later write replaced this suffix
                    const raft::Term prevTerm = index == m_first ? m_startTerm : m_index.back().term;
                    if (term < prevTerm)
                        return corrupt(where(seg.path, offset) + ": entry " + std::to_string(index) + " has term " + std::to_string(term)
                                       + ", lower than the entry before it (" + std::to_string(prevTerm) + ")");
                    m_index.push_back(Location{term, seg.sequence, offset, static_cast<std::uint32_t>(rec.size)});
                    last = index;
                    lastTerm = term;
                    seg.maxIndex = std::max(seg.maxIndex, index);
                    ++report.entries;
                    break;
                }
                case RecordType::HardState:
                    if (!decodeHardState(rec.payload, m_hardState))
                        return corrupt(where(seg.path, offset) + ": malformed hard state record");
                    break;
                case RecordType::ConfState:
                    if (!decodeConfState(rec.payload, m_confState))
                        return corrupt(where(seg.path, offset) + ": malformed configuration record");
                    sawConf = true;
                    break;
                case RecordType::LogReset: {
                    // A snapshot from the leader replaced everything before: the log is empty after
                    // (index, term), whatever came before this record.
                    raft::Index index;
                    raft::Term term;
                    if (!decodeLogStart(rec.payload, index, term) || index == NoIndex)
                        return corrupt(where(seg.path, offset) + ": malformed log-reset record");
                    latestLogStart = std::max(latestLogStart, index);
                    resetSeen = true;
                    startRecorded = true;
                    m_index.clear();
                    m_first = index + 1;
                    m_startTerm = term;
                    last = index;
                    lastTerm = term;
                    break;
                }
                case RecordType::LogStart: {
                    raft::Index index;
                    raft::Term term;
                    if (!decodeLogStart(rec.payload, index, term) || index == NoIndex)
                        return corrupt(where(seg.path, offset) + ": malformed log-start record");
                    latestLogStart = std::max(latestLogStart, index);
                    if (index >= m_first) {
                        startRecorded = true;
                        const raft::Index drop = std::min<raft::Index>(index - m_first + 1, m_index.size());
                        m_index.erase(m_index.begin(), m_index.begin() + static_cast<std::ptrdiff_t>(drop));
                        m_first = index + 1;
                        m_startTerm = term;
                        if (last < index) {
                            last = index;
                            lastTerm = term;
                        }
                    }
                    break;
                }
                }
                // The record's full size: at the end of a file cut short its padding may be missing,
                // and the next record must still go where the padding ends.
                offset += paddedSize(rec.payload.size());
                if (ended)
                    break; // what follows is an earlier segment's, or zeros
                continue;
            }
            if (!sawHeader) {
                // A whole record of another segment here: the file was renamed.
                if (window.size() >= RecordHeaderSize) {
                    std::uint16_t tag;
                    std::memcpy(&tag, window.data() + 6, 2);
                    const std::uint64_t base = (seg.sequence & ~std::uint64_t(0xffff)) | tag;
                    for (std::uint64_t other : {base, base + 0x10000, base - 0x10000})
                        if (other != seg.sequence && other != 0 && isRecordOf(window, other))
                            return corrupt(where(seg.path, offset) + ": the file holds the records of segment " + std::to_string(other)
                                           + ": segments were renamed or reordered");
                }
                return corrupt(where(seg.path, offset) + ": the segment does not start with a segment header ("
                               + (why.empty() ? "no record" : why) + ")");
            }
            const std::string stopped = ds == DecodeStatus::End ? std::string("the records stop")
                : ds == DecodeStatus::Truncated                 ? std::string("a record runs past the end of the file")
                                                                : why;
            if (!isLast)
                return corrupt(where(seg.path, offset) + ": " + stopped + " before the segment-end record, in a segment that is not the last one");
            // The last segment: the records stop here. Either a crash interrupted the writes from
            // here on, which were never durable and so never acknowledged, and they are cut; or the
            // data here was durable once and is damaged, which a Synced record further on proves.
            // In a fresh segment nothing lies past the last non-zero byte: scan no further.
            std::optional<std::uint64_t> tail;
            if (!recycled)
                if (IoStatus st = reader.lastNonZero(offset, tail); !st)
                    return StorageStatus::fromIo(st);
            TailScan scan;
            const std::uint64_t scanEnd = recycled ? reader.size() : (tail ? *tail + 1 : offset);
            if (IoStatus st = scanTail(reader, offset, seg.sequence, scan, scanEnd); !st)
                return StorageStatus::fromIo(st);
            if (scan.coveringAt)
                return corrupt(where(seg.path, offset) + ": " + stopped + ", but the synced record at offset " + std::to_string(*scan.coveringAt)
                               + " says the segment was durable up to offset " + std::to_string(scan.coveringClaim) + ": damage");
            std::uint64_t cutEnd = scan.furthestEnd;
            if (!recycled) {
                // Unwritten space reads as zeros here, so a torn write shows zero sectors and
                // anything else is damage.
                if (ds == DecodeStatus::Corrupt)
                    return corrupt(where(seg.path, offset) + ": " + why);
                if (ds == DecodeStatus::Stale)
                    return corrupt(where(seg.path, offset) + ": " + why + ", in a segment that was not recycled");
                cutEnd = tail ? *tail + 1 : 0;
            }
            // In a recycled segment the bytes after the records are an earlier segment's and stay;
            // what must go is every record of this segment there, so none can pass for the next
            // record after later appends.
            if (cutEnd > offset) {
                const std::uint64_t length = cutEnd - offset;
                report.tornTail = seg.path + (m_opts.readOnly ? ": would cut " : ": cut ") + std::to_string(length)
                    + " bytes of an interrupted write at offset " + std::to_string(offset) + (why.empty() ? "" : " (" + why + ")");
                if (m_opts.readOnly)
                    break;
                const std::string zeros(length, '\0');
                if (IoStatus st = file->write(zeros.data(), zeros.size(), offset); !st)
                    return StorageStatus::fromIo(st);
                if (IoStatus st = file->syncData(); !st)
                    return StorageStatus::fromIo(st);
            }
            break;
        }
        if (isLast && ended)
            m_startNext = true;
        report.bytesScanned += reader.bytesRead();
        seg.writeOffset = offset;
        seg.file = std::move(file);
        m_segments.push_back(std::move(seg));
    }
    report.segments = m_segments.size();
    // What was read may have come from the page cache only: the process that wrote it can have died
    // before its fsync. It becomes the synced log below (and the raft::Storage view shows it), so make
    // it durable first: the last segment's data, and the directory entries (a new segment's name).
    if (!m_opts.readOnly) {
        if (IoStatus st = m_segments.back().file->syncData(); !st)
            return StorageStatus::fromIo(st);
        if (IoStatus st = m_fs->syncDirectory(m_walDir); !st)
            return StorageStatus::fromIo(st);
    }
    // Segments before the oldest one may only be gone because a compaction removed them, and a
    // compaction first records where the log now starts. Without such a record, they were lost.
    if (sequences.front() > 1 && oldestPrev > 0 && latestLogStart < oldestPrev && !resetSeen)
        return corrupt(segmentPath(sequences.front() - 1) + " is missing: the oldest segment left, " + segmentPath(sequences.front())
                       + ", continues a log at index " + std::to_string(oldestPrev) + ", and no log-start record says it was compacted");
    if (rebasedAt && m_first <= oldestPrev && !resetSeen)
        return corrupt(*rebasedAt + ": entries are rewritten from below the oldest segment's start (index "
                       + std::to_string(oldestPrev + 1) + ") but no log-start record covers the entries before it: segments are missing");
    m_synced = last;
    m_durableOffset = m_segments.back().writeOffset;
    m_markedOffset = 0; // the first append says the recovered records are durable
    if (!sawConf)
        return corrupt(m_walDir + ": no segment records the cluster configuration");
    if (m_hardState.commit > last)
        return corrupt(m_walDir + ": the hard state's commit index " + std::to_string(m_hardState.commit) + " is beyond the last entry "
                       + std::to_string(last) + ": acknowledged entries are missing");
    return {};
}

bool Wal::takeRecycled(std::uint64_t sequence, PreparedFile &p)
{
    std::uint64_t old;
    {
        std::lock_guard lock(m_mutex);
        if (m_free.empty())
            return false;
        old = m_free.front();
        m_free.pop_front();
    }
    // The file keeps its blocks and its old records: those check out only under the old segment
    // number, so they read as stale, never as this segment's. Nothing is written here; the header
    // (written and synced before the rename to the segment's name) is what makes it a segment.
    const std::string tmp = segmentPath(sequence) + ".tmp";
    m_fs->remove(tmp);
    std::uint64_t size = 0;
    if (!m_fs->rename(freePath(old), tmp) || !m_fs->open(tmp, OpenMode::ReadWrite, p.file) || !p.file->size(size)) {
        p.file.reset();
        m_fs->remove(tmp);
        m_fs->remove(freePath(old));
        return false;
    }
    if (size < m_opts.segmentBytes) {
        if (IoStatus st = p.file->preallocate(m_opts.segmentBytes, false); !st) {
            p.file.reset();
            m_fs->remove(tmp);
            return false;
        }
    }
    p.recycled = true;
    return true;
}

Wal::PreparedFile Wal::prepareFile(std::uint64_t sequence, bool zeroFill)
{
    // Runs on the helper thread when preparing in the background: it touches only the file system,
    // the list of files to recycle (under the lock) and settings that never change after open.
    PreparedFile p;
    p.sequence = sequence;
    if (takeRecycled(sequence, p))
        return p;
    const std::string tmp = segmentPath(sequence) + ".tmp";
    m_fs->remove(tmp);
    p.status = m_fs->open(tmp, OpenMode::CreateNew, p.file);
    if (p.status)
        p.status = p.file->preallocate(m_opts.segmentBytes, zeroFill);
    if (!p.status)
        p.file.reset();
    return p;
}

void Wal::prepareNext(std::uint64_t sequence)
{
    if (!m_background)
        return;
    // Called once the current segment is half full (so a node that just started does not write
    // zeros while it serves its first requests). Zero-filled segments make small syncs cheaper but
    // cost a second write of the whole segment. A log that filled half its segment within a few
    // seconds is bandwidth-bound: there the second write would halve throughput, while its syncs
    // are large and amortize the extent updates of a plain preallocated file. A latency-bound log
    // has the idle bandwidth to spare. (A reused file, when there is one, needs neither.)
    const auto now = std::chrono::steady_clock::now();
    const bool fast = m_segmentStarted.has_value() && now - *m_segmentStarted < std::chrono::seconds(2);
    const bool zeroFill = m_opts.zeroFillSegments && !fast;
    m_next = std::async(std::launch::async, [this, sequence, zeroFill] { return prepareFile(sequence, zeroFill); });
}

StorageStatus Wal::startSegment(std::uint64_t sequence)
{
    const std::string path = segmentPath(sequence);
    const std::string tmp = path + ".tmp";
    PreparedFile prepared;
    if (m_next.valid())
        prepared = m_next.get(); // usually finished long ago
    if (prepared.sequence != sequence || !prepared.file) {
        // Not prepared in time, or its preparation failed: that failure is stale (a disk full then
        // may have room now) and cost nothing (no record was written), so try again here. Only a
        // failure now, when the segment is needed, fails the log.
        // On the writer's path (a new log's first segment, or no file prepared in time) the file is
        // only preallocated where a helper thread could have written the zeros: writing 64 MiB of
        // them here would stall every write behind it.
        prepared = prepareFile(sequence, m_opts.zeroFillSegments && !m_background);
    }
    if (!prepared.status)
        return fail(StorageStatus::fromIo(prepared.status));
    std::unique_ptr<File> file = std::move(prepared.file);
    // The segment begins with where the log stands, the configuration and the latest hard state,
    // so deleting older segments never loses them.
    std::string head;
    SegmentHeader h;
    h.sequence = sequence;
    h.prevIndex = lastIndex();
    h.prevTerm = term(h.prevIndex).value_or(0);
    h.recycled = prepared.recycled;
    appendRecord(head, RecordType::SegmentHeader, encodeSegmentHeader(h), sequence);
    appendRecord(head, RecordType::ConfState, encodeConfState(m_confState), sequence);
    appendRecord(head, RecordType::HardState, encodeHardState(m_hardState), sequence);
    if (IoStatus st = file->write(head.data(), head.size(), 0); !st)
        return fail(StorageStatus::fromIo(st));
    if (IoStatus st = file->syncData(); !st)
        return fail(StorageStatus::fromIo(st));
    if (IoStatus st = m_fs->rename(tmp, path); !st)
        return fail(StorageStatus::fromIo(st));
    if (IoStatus st = m_fs->syncDirectory(m_walDir); !st)
        return fail(StorageStatus::fromIo(st));
    Segment seg;
    seg.sequence = sequence;
    seg.path = path;
    seg.file = std::shared_ptr<File>(std::move(file));
    seg.writeOffset = head.size();
    m_durableOffset = m_markedOffset = head.size();
    {
        std::lock_guard lock(m_mutex);
        m_segments.push_back(std::move(seg));
    }
    m_segmentStarted = std::chrono::steady_clock::now();
    return {};
}

StorageStatus Wal::fail(StorageStatus st)
{
    std::lock_guard lock(m_mutex);
    if (m_failure.ok())
        m_failure = st;
    return st;
}

StorageStatus Wal::switchSegment()
{
    // The finished segment must be durable, closed by its end record, before a later one exists:
    // recovery requires every segment but the last to be whole, and the new header records the
    // log's end so far.
    Segment &old = m_segments.back();
    std::string end;
    appendRecord(end, RecordType::SegmentEnd, {}, old.sequence);
    if (IoStatus st = old.file->write(end.data(), end.size(), old.writeOffset); !st)
        return fail(StorageStatus::fromIo(st));
    {
        std::lock_guard lock(m_mutex);
        old.writeOffset += end.size();
        if (m_unsynced.empty() || m_unsynced.back() != old.file)
            m_unsynced.push_back(old.file);
    }
    if (StorageStatus st = syncNow(); !st)
        return st;
    return startSegment(old.sequence + 1);
}

StorageStatus Wal::append(const std::vector<raft::Entry> &entries, const std::optional<raft::HardState> &hardState)
{
    if (StorageStatus f = failure(); !f)
        return f;
    if (m_opts.readOnly)
        return {StorageErrorCode::Config, "append: the log was opened read-only"};
    if (entries.empty() && !hardState)
        return {};
    const raft::Index last = lastIndex();
    if (!entries.empty()) {
        const raft::Index from = entries.front().index;
        if (from < m_first || from > last + 1)
            return {StorageErrorCode::Config, "append: entries from " + std::to_string(from) + " do not attach to the log "
                                                  + std::to_string(m_first) + ".." + std::to_string(last)};
        for (std::size_t i = 1; i < entries.size(); ++i)
            if (entries[i].index != entries[i - 1].index + 1)
                return {StorageErrorCode::Config, "append: entry indexes are not consecutive"};
    }

    // The records are salted with the number of the segment they go to, so first decide where
    // they go. A batch that does not fit starts a new segment (one larger than a segment gets its
    // own).
    std::uint64_t need = hardState ? paddedSize(24) : 0;
    for (const raft::Entry &e : entries)
        need += paddedSize(17 + e.data.size());
    // The first append after a sync says how far the segment was durable (see the class comment).
    bool mark = m_durableOffset > m_markedOffset;
    if (m_segments.back().writeOffset + need + (mark ? paddedSize(8) : 0) > m_opts.segmentBytes) {
        // (The batch's hard state is not put in the new header: it goes after the batch's
        // entries, so it can never be durable without them.)
        if (StorageStatus st = switchSegment(); !st)
            return st;
        mark = false;
    }
    Segment &seg = m_segments.back();

    // One reused buffer: a fresh allocation per batch would cost page faults on every large append.
    std::string &buf = m_writeBuffer;
    buf.clear();
    if (mark)
        appendRecord(buf, RecordType::Synced, encodeSynced(m_durableOffset), seg.sequence);
    std::vector<std::uint64_t> &offsets = m_writeOffsets;
    offsets.clear();
    for (const raft::Entry &e : entries) {
        offsets.push_back(buf.size());
        appendEntryRecord(buf, e, seg.sequence);
    }
    offsets.push_back(buf.size());
    if (hardState)
        appendRecord(buf, RecordType::HardState, encodeHardState(*hardState), seg.sequence);

    const std::uint64_t base = seg.writeOffset;
    const std::size_t used = buf.size();
    // The write runs on to the end of its last page with zeros: a partly written page that is not
    // in the page cache (a recycled file's old blocks) would be read from the disk first, one
    // synchronous read per append. The zeros are not records; the next append writes over them.
    buf.append(static_cast<std::size_t>((PageSize - (base + used) % PageSize) % PageSize), '\0');
    if (IoStatus st = seg.file->write(buf.data(), buf.size(), base); !st)
        return fail(StorageStatus::fromIo(st));
    buf.resize(used);
    if (!m_next.valid() && base + used >= m_opts.segmentBytes / 2)
        prepareNext(seg.sequence + 1);
    if (mark)
        m_markedOffset = m_durableOffset;

    std::lock_guard lock(m_mutex);
    seg.writeOffset = base + buf.size();
    if (m_unsynced.empty() || m_unsynced.back() != seg.file)
        m_unsynced.push_back(seg.file);
    if (!entries.empty()) {
        const raft::Index from = entries.front().index;
        if (from <= last) {
            m_index.resize(from - m_first);
            m_synced = std::min(m_synced, from - 1);
            while (!m_cache.empty() && m_cache.back().index >= from) {
                m_cacheBytes -= raft::entrySize(m_cache.back());
                m_cache.pop_back();
            }
        }
        for (std::size_t i = 0; i < entries.size(); ++i) {
            m_index.push_back(Location{entries[i].term, seg.sequence, base + offsets[i],
                                       static_cast<std::uint32_t>(offsets[i + 1] - offsets[i])});
            if (!m_cache.empty() && m_cache.back().index + 1 != entries[i].index) {
                m_cache.clear();
                m_cacheBytes = 0;
            }
            m_cache.push_back(entries[i]);
            m_cacheBytes += raft::entrySize(entries[i]);
        }
        seg.maxIndex = std::max(seg.maxIndex, entries.back().index);
        while (m_cacheBytes > m_opts.cacheBytes && m_cache.size() > 1) {
            m_cacheBytes -= raft::entrySize(m_cache.front());
            m_cache.pop_front();
        }
    }
    if (hardState)
        m_hardState = *hardState;
    return {};
}

StorageStatus Wal::sync()
{
    if (m_opts.testAckBeforeSyncMs > 0) {
        if (StorageStatus f = failure(); !f)
            return f;
        const auto now = std::chrono::steady_clock::now();
        if (now - m_lastRealSync < std::chrono::milliseconds(m_opts.testAckBeforeSyncMs)) {
            const raft::Index target = lastIndex();
            std::lock_guard lock(m_mutex); // the files stay unsynced for a later call
            m_synced = std::max(m_synced, target);
            return {};
        }
        m_lastRealSync = now;
    }
    return syncNow();
}

StorageStatus Wal::syncNow()
{
    if (StorageStatus f = failure(); !f)
        return f;
    const raft::Index target = lastIndex();
    std::vector<std::shared_ptr<File>> files;
    std::uint64_t covered;
    {
        std::lock_guard lock(m_mutex);
        files.swap(m_unsynced);
        covered = m_segments.back().writeOffset;
    }
    for (const auto &file : files) {
        if (IoStatus st = file->syncData(); !st) {
            // After a failed fsync the kernel may have dropped the dirty pages: what the file holds
            // is unknown. Refuse everything from now on rather than acknowledge lost data.
            return fail(StorageStatus::fromIo(st));
        }
    }
    m_durableOffset = covered;
    std::lock_guard lock(m_mutex);
    m_synced = std::max(m_synced, target);
    return {};
}

StorageStatus Wal::compact(raft::Index index, raft::Term term)
{
    if (StorageStatus f = failure(); !f)
        return f;
    if (index < m_first)
        return {};
    if (index > syncedLastIndex())
        return {StorageErrorCode::Config, "compact: index " + std::to_string(index) + " is beyond the synced log"};
    // First make the new start durable, then forget and delete: a crash in between leaves extra
    // segments that the next recovery drops again.
    std::string rec;
    appendRecord(rec, RecordType::LogStart, encodeLogStart(index, term), m_segments.back().sequence);
    Segment &cur = m_segments.back();
    if (IoStatus st = cur.file->write(rec.data(), rec.size(), cur.writeOffset); !st)
        return fail(StorageStatus::fromIo(st));
    {
        std::lock_guard lock(m_mutex);
        cur.writeOffset += rec.size();
        m_unsynced.push_back(cur.file);
    }
    if (StorageStatus st = syncNow(); !st)
        return st;
    std::vector<std::pair<std::uint64_t, std::string>> doomed;
    std::size_t kept;
    {
        std::lock_guard lock(m_mutex);
        const raft::Index drop = std::min<raft::Index>(index - m_first + 1, m_index.size());
        m_index.erase(m_index.begin(), m_index.begin() + static_cast<std::ptrdiff_t>(drop));
        m_first = index + 1;
        m_startTerm = term;
        while (!m_cache.empty() && m_cache.front().index <= index) {
            m_cacheBytes -= raft::entrySize(m_cache.front());
            m_cache.pop_front();
        }
        // A segment can go once every entry it holds is covered and it is not the one being
        // written; its header, configuration and hard state are repeated in every later segment.
        while (m_segments.size() > 1 && m_segments.front().maxIndex <= index) {
            doomed.emplace_back(m_segments.front().sequence, m_segments.front().path);
            m_segments.pop_front();
        }
        kept = m_free.size();
    }
    return dropSegments(doomed, kept);
}

StorageStatus Wal::reset(raft::Index index, raft::Term term)
{
    if (StorageStatus f = failure(); !f)
        return f;
    if (m_opts.readOnly)
        return {StorageErrorCode::Config, "reset: the log was opened read-only"};
    if (index == 0 || index == NoIndex)
        return {StorageErrorCode::Config, "reset: index " + std::to_string(index) + " is not a snapshot's"};
    // The record first, synced: from then on recovery discards everything before it. Then the
    // older segments go, like a compaction's.
    std::string rec;
    appendRecord(rec, RecordType::LogReset, encodeLogStart(index, term), m_segments.back().sequence);
    if (m_segments.back().writeOffset + rec.size() + paddedSize(8) > m_opts.segmentBytes) {
        // No room (a segment-end record must still fit): the record opens the next segment.
        if (StorageStatus st = switchSegment(); !st)
            return st;
        rec.clear();
        appendRecord(rec, RecordType::LogReset, encodeLogStart(index, term), m_segments.back().sequence);
    }
    Segment &seg = m_segments.back();
    if (IoStatus st = seg.file->write(rec.data(), rec.size(), seg.writeOffset); !st)
        return fail(StorageStatus::fromIo(st));
    {
        std::lock_guard lock(m_mutex);
        seg.writeOffset += rec.size();
        m_unsynced.push_back(seg.file);
    }
    if (StorageStatus st = syncNow(); !st)
        return st;
    std::vector<std::pair<std::uint64_t, std::string>> doomed;
    std::size_t kept;
    {
        std::lock_guard lock(m_mutex);
        m_index.clear();
        m_first = index + 1;
        m_startTerm = term;
        m_synced = index;
        m_cache.clear();
        m_cacheBytes = 0;
        m_segments.back().maxIndex = index; // its entries before the record are dead
        while (m_segments.size() > 1) {
            doomed.emplace_back(m_segments.front().sequence, m_segments.front().path);
            m_segments.pop_front();
        }
        kept = m_free.size();
    }
    return dropSegments(doomed, kept);
}

StorageStatus Wal::dropSegments(const std::vector<std::pair<std::uint64_t, std::string>> &doomed, std::size_t kept)
{
    // The files go, or wait under a new name to be reused as later segments.
    for (const auto &[sequence, path] : doomed) {
        if (kept < m_opts.recycleSegments && !m_opts.readOnly) {
            if (IoStatus st = m_fs->rename(path, freePath(sequence)); !st)
                return fail(StorageStatus::fromIo(st));
            ++kept;
            std::lock_guard lock(m_mutex);
            m_free.push_back(sequence);
        } else if (IoStatus st = m_fs->remove(path); !st) {
            return fail(StorageStatus::fromIo(st));
        }
    }
    if (!doomed.empty())
        if (IoStatus st = m_fs->syncDirectory(m_walDir); !st)
            return fail(StorageStatus::fromIo(st));
    return {};
}

raft::Index Wal::firstIndex() const
{
    std::lock_guard lock(m_mutex);
    return m_first;
}

raft::Index Wal::lastIndex() const
{
    std::lock_guard lock(m_mutex);
    return m_first - 1 + m_index.size();
}

raft::Index Wal::syncedLastIndex() const
{
    std::lock_guard lock(m_mutex);
    return std::min<raft::Index>(m_synced, m_first - 1 + m_index.size());
}

std::optional<raft::Term> Wal::term(raft::Index index) const
{
    std::lock_guard lock(m_mutex);
    if (index + 1 == m_first)
        return m_startTerm;
    if (index < m_first || index >= m_first + m_index.size())
        return std::nullopt;
    return m_index[index - m_first].term;
}

raft::HardState Wal::hardState() const
{
    std::lock_guard lock(m_mutex);
    return m_hardState;
}

raft::ConfState Wal::confState() const
{
    std::lock_guard lock(m_mutex);
    return m_confState;
}

std::size_t Wal::segmentCount() const
{
    std::lock_guard lock(m_mutex);
    return m_segments.size();
}

StorageStatus Wal::failure() const
{
    std::lock_guard lock(m_mutex);
    return m_failure;
}

bool Wal::readEntry(const Location &loc, raft::Entry &out, StorageStatus *error) const
{
    std::shared_ptr<File> file;
    std::string path;
    {
        std::lock_guard lock(m_mutex);
        if (m_segments.empty() || loc.segment < m_segments.front().sequence)
            return false;
        const Segment &seg = m_segments[loc.segment - m_segments.front().sequence];
        file = seg.file;
        path = seg.path;
    }
    std::string buf(loc.size, '\0');
    std::size_t got = 0;
    if (IoStatus st = file->read(buf.data(), buf.size(), loc.offset, got); !st) {
        if (error)
            *error = StorageStatus::fromIo(st);
        return false;
    }
    DecodedRecord rec;
    std::string why;
    if (got != buf.size() || decodeRecord(std::string_view(buf).substr(0, got), rec, why, loc.offset, loc.segment) != DecodeStatus::Ok
        || rec.type != RecordType::Entry || !decodeEntry(rec.payload, out)) {
        if (error)
            *error = corrupt(where(path, loc.offset) + ": entry record unreadable on reread" + (why.empty() ? "" : " (" + why + ")"));
        return false;
    }
    return true;
}

bool Wal::entries(raft::Index lo, raft::Index hi, std::uint64_t maxBytes, std::vector<raft::Entry> &out, StorageStatus *error) const
{
    // The limit counts raft::entrySize, as raft::Storage says, whether an entry comes from the cache
    // or from a file. A file's record size only bounds it from below (entrySize >= record size - 12:
    // the record adds a 12-byte header, a 17-byte prefix and at most 7 bytes of padding), so the
    // entries are read first and counted exactly afterwards.
    std::uint64_t bytes = 0; // entrySize of what this call appended so far
    raft::Index i = lo;
    while (i < hi) {
        std::vector<Location> toRead;
        {
            std::lock_guard lock(m_mutex);
            const raft::Index last = m_first - 1 + m_index.size();
            if (lo < m_first || i < m_first || hi > last + 1 || lo > hi)
                return false;
            const raft::Index cacheFirst = m_cache.empty() ? last + 1 : m_cache.front().index;
            if (i >= cacheFirst) {
                for (; i < hi; ++i) {
                    const raft::Entry &e = m_cache[i - cacheFirst];
                    bytes += raft::entrySize(e);
                    if (i > lo && bytes > maxBytes)
                        return true;
                    out.push_back(e);
                }
                return true;
            }
            std::uint64_t atLeast = bytes;
            for (raft::Index j = i; j < hi && j < cacheFirst; ++j) {
                const Location &loc = m_index[j - m_first];
                atLeast += loc.size > RecordHeaderSize ? loc.size - RecordHeaderSize : 0;
                if (j > lo && atLeast > maxBytes)
                    break;
                toRead.push_back(loc);
            }
        }
        if (toRead.empty())
            return true;
        for (const Location &loc : toRead) {
            raft::Entry e;
            if (!readEntry(loc, e, error))
                return false;
            bytes += raft::entrySize(e);
            if (i > lo && bytes > maxBytes)
                return true;
            out.push_back(std::move(e));
            ++i;
        }
    }
    return true;
}

raft::StorageError WalStorage::entries(raft::Index lo, raft::Index hi, std::uint64_t maxBytes, std::vector<raft::Entry> &out) const
{
    if (lo < m_wal.firstIndex())
        return raft::StorageError::Compacted;
    if (hi > m_wal.syncedLastIndex() + 1)
        return raft::StorageError::Unavailable;
    if (m_wal.entries(lo, hi, maxBytes, out))
        return raft::StorageError::None;
    // A compaction on the writer thread may have passed `lo` since the check above.
    return lo < m_wal.firstIndex() ? raft::StorageError::Compacted : raft::StorageError::Unavailable;
}

raft::InitialState WalStorage::initialState() const
{
    raft::InitialState s{m_wal.hardState(), m_wal.confState()};
    if (m_snapshot.index > 0) {
        // The snapshot's configuration is the one in force where the node starts applying, and
        // what it covers is committed (its hard state's commit may not have reached the disk).
        s.confState = m_snapshot.confState;
        s.hardState.commit = std::max(s.hardState.commit, m_snapshot.index);
    }
    return s;
}

raft::StorageError WalStorage::term(raft::Index index, raft::Term &out) const
{
    if (index + 1 < m_wal.firstIndex())
        return raft::StorageError::Compacted;
    if (index > m_wal.syncedLastIndex())
        return raft::StorageError::Unavailable;
    const auto t = m_wal.term(index);
    if (!t)
        return index + 1 < m_wal.firstIndex() ? raft::StorageError::Compacted : raft::StorageError::Unavailable;
    out = *t;
    return raft::StorageError::None;
}

} // namespace dengine::storage
