// SPDX-License-Identifier: Apache-2.0
// Fuzzer for the log's reading side: arbitrary bytes as segment files through recovery (on the
// in-memory FaultyFileSystem) and through decodeRecord. Neither may crash or hang; recovery either
// fails with Corrupt and a message naming the log's directory, or yields a consistent log: every
// index from first - 1 to last has a term, terms never decrease, every entry reads back with its
// index and term, the commit index is within the log, a second recovery finds the same log, and the
// log takes an append that survives a restart.
//
// Build with clang -fsanitize=fuzzer (see CMakeLists.txt); tst_wal_corpus replays the seed corpus
// through the same function with any compiler.
#include "fuzz_wal_reader.h"

#include "faultyfs.h"
#include "storage/crc32c.h"
#include "storage/record.h"
#include "wal_model.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace dengine::storage::test {

namespace {

constexpr const char *Dir = "/f";
constexpr const char *WalDir = "/f/wal";

std::string segmentPath(std::uint64_t n)
{
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.wal", static_cast<unsigned long long>(n));
    return std::string(WalDir) + "/" + name;
}

WalOptions options(FileSystem &fs)
{
    WalOptions o;
    o.dir = Dir;
    o.segmentBytes = 4096;
    o.cacheBytes = 1024;
    o.fs = &fs;
    o.bootstrap.voters = {1, 2, 3};
    return o;
}

// Runs decodeRecord over `bytes` the way a scanner would, and the payload decoders on what decodes.
void scanRecords(std::string_view bytes, std::uint64_t fileOffset, std::uint64_t sequence)
{
    std::uint64_t off = 0;
    while (off < bytes.size()) {
        DecodedRecord rec;
        std::string why;
        const DecodeStatus ds = decodeRecord(bytes.substr(off), rec, why, fileOffset + off, sequence);
        if (ds != DecodeStatus::Ok) {
            if ((ds == DecodeStatus::Torn || ds == DecodeStatus::Corrupt || ds == DecodeStatus::Stale) && why.empty())
                std::abort(); // a stale, torn or corrupt record must say why
            if (isRecordOf(bytes.substr(off), sequence))
                std::abort(); // the scanner's test agrees with the decoder
            off += 8;
            continue;
        }
        if (rec.size < RecordHeaderSize || rec.size > bytes.size() - off || rec.payload.size() + RecordHeaderSize > rec.size)
            std::abort();
        switch (rec.type) {
        case RecordType::SegmentHeader: {
            SegmentHeader h;
            (void)decodeSegmentHeader(rec.payload, h);
            break;
        }
        case RecordType::Entry: {
            raft::Entry e;
            raft::Index i;
            raft::Term t;
            const bool peeked = peekEntry(rec.payload, i, t);
            if (decodeEntry(rec.payload, e) != peeked || (peeked && (e.index != i || e.term != t)))
                std::abort();
            break;
        }
        case RecordType::HardState: {
            raft::HardState hs;
            (void)decodeHardState(rec.payload, hs);
            break;
        }
        case RecordType::ConfState: {
            raft::ConfState cs;
            (void)decodeConfState(rec.payload, cs);
            break;
        }
        case RecordType::LogStart:
        case RecordType::LogReset: {
            raft::Index i;
            raft::Term t;
            (void)decodeLogStart(rec.payload, i, t);
            break;
        }
        case RecordType::Synced: {
            std::uint64_t o;
            (void)decodeSynced(rec.payload, o);
            break;
        }
        case RecordType::SegmentEnd:
            break;
        }
        if (!isRecordOf(bytes.substr(off), sequence))
            std::abort();
        off += rec.size;
    }
}

// The log as read back, or a violation.
std::string consistentLog(const Wal &wal, LogModel &out)
{
    if (std::string e = readBack(wal, out); !e.empty())
        return e;
    if (out.first == 0)
        return "first index 0";
    raft::Term prev = out.startTerm;
    for (raft::Index i = out.first; i <= out.last(); ++i) {
        if (out.at(i).term < prev)
            return "term of entry " + std::to_string(i) + " decreases";
        prev = out.at(i).term;
    }
    if (out.hardState.commit > out.last())
        return "commit index " + std::to_string(out.hardState.commit) + " beyond the last entry " + std::to_string(out.last());
    if (wal.confState().voters.empty())
        return "no voters";
    return {};
}

} // namespace

void repairChecksums(std::string &seg, std::uint64_t sequence)
{
    std::size_t off = 0;
    while (off + RecordHeaderSize <= seg.size()) {
        std::uint32_t length;
        std::memcpy(&length, seg.data() + off, 4);
        if (length == 0 && seg[off + 4] == 0)
            break; // the end of the records
        if (length > seg.size() - off - RecordHeaderSize)
            break;
        const std::uint16_t tag = static_cast<std::uint16_t>(sequence & 0xffff);
        std::memcpy(seg.data() + off + 6, &tag, 2);
        const std::uint32_t crc = recordChecksum(sequence, seg.data() + off, std::string_view(seg).substr(off + RecordHeaderSize, length));
        std::memcpy(seg.data() + off + 8, &crc, 4);
        off += paddedSize(length);
    }
}

std::string makeWalReaderInput(const std::vector<std::string> &segments, bool repair, bool fromThree, unsigned salt)
{
    std::string out(1, '\0');
    out[0] = static_cast<char>((segments.size() - 1) | (repair ? 4 : 0) | (fromThree ? 8 : 0) | ((salt & 15) << 4));
    for (std::size_t k = 0; k + 1 < segments.size(); ++k) {
        const std::uint16_t n = static_cast<std::uint16_t>(segments[k].size());
        out.push_back(static_cast<char>(n & 0xff));
        out.push_back(static_cast<char>(n >> 8));
        out += segments[k].substr(0, n);
    }
    out += segments.back();
    return out;
}

WalReaderOutcome checkWalReaderInput(const std::uint8_t *data, std::size_t size)
{
    WalReaderOutcome result;
    if (size == 0)
        return result;
    const std::string_view all(reinterpret_cast<const char *>(data), size);
    const unsigned flags = data[0];
    scanRecords(all, 8 * (flags >> 4), 1);

    // Split the bundle into segment files.
    const std::size_t count = (flags & 3) + 1;
    std::vector<std::string> segments;
    std::size_t pos = 1;
    for (std::size_t k = 0; k + 1 < count; ++k) {
        std::size_t n = 0;
        if (pos + 2 <= size)
            n = data[pos] | static_cast<std::size_t>(data[pos + 1]) << 8;
        pos = std::min(pos + 2, size);
        n = std::min(n, size - pos);
        segments.emplace_back(all.substr(pos, n));
        pos += n;
    }
    segments.emplace_back(all.substr(pos));
    const std::uint64_t firstNumber = (flags & 8) ? 3 : 1;

    FaultyFileSystem fs;
    for (std::size_t k = 0; k < segments.size(); ++k) {
        if (flags & 4)
            repairChecksums(segments[k], firstNumber + k);
        scanRecords(segments[k], 0, firstNumber + k);
        fs.putFile(segmentPath(firstNumber + k), segments[k]);
    }

    std::unique_ptr<Wal> wal;
    result.open = Wal::open(options(fs), wal, &result.report);
    if (!result.open) {
        if (result.open.code != StorageErrorCode::Corrupt)
            result.violation = "recovery failed with a status other than Corrupt: " + result.open.message;
        else if (result.open.message.find(WalDir) == std::string::npos)
            result.violation = "the Corrupt message does not name the log: " + result.open.message;
        return result;
    }
    LogModel got;
    if (std::string e = consistentLog(*wal, got); !e.empty()) {
        result.violation = "recovered log is inconsistent: " + e;
        return result;
    }
    result.first = got.first;
    result.last = got.last();

    // Recovery is idempotent: a second one (after the first cut any torn tail) finds the same log.
    wal.reset();
    RecoveryReport second;
    if (StorageStatus st = Wal::open(options(fs), wal, &second); !st) {
        result.violation = "second recovery failed: " + st.message;
        return result;
    }
    LogModel again;
    if (std::string e = consistentLog(*wal, again); !e.empty() || !(again == got)) {
        result.violation = "second recovery found another log " + e;
        return result;
    }
    if (!second.tornTail.empty()) {
        result.violation = "second recovery found a torn tail again: " + second.tornTail;
        return result;
    }

    // The log takes an append that survives a power cut (unless its indexes or terms are so large
    // that the next one would overflow).
    const raft::Term lastTerm = std::max(got.entries.empty() ? got.startTerm : got.entries.back().term, got.hardState.term);
    if (got.last() < (std::uint64_t(1) << 62) && lastTerm < (std::uint64_t(1) << 62)) {
        const raft::Term t = lastTerm + 1;
        const raft::Entry e = makeEntry(got.last() + 1, t, "fuzz");
        const raft::HardState hs{t, 1, got.hardState.commit};
        StorageStatus st = wal->append({e}, hs);
        if (st)
            st = wal->sync();
        if (!st) {
            result.violation = "append to the recovered log failed: " + st.message;
            return result;
        }
        got.append({e});
        got.hardState = hs;
        wal.reset();
        fs.crash(UnsyncedData::Drop);
        if (st = Wal::open(options(fs), wal); !st) {
            result.violation = "recovery after an append failed: " + st.message;
            return result;
        }
        if (std::string diff = compareWal(*wal, got); !diff.empty())
            result.violation = "after an append and a power cut: " + diff;
    }
    return result;
}

} // namespace dengine::storage::test

#ifndef DENGINE_NO_FUZZ_MAIN
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const auto outcome = dengine::storage::test::checkWalReaderInput(data, size);
    if (!outcome.violation.empty()) {
        std::fprintf(stderr, "WAL reader property violated: %s\n", outcome.violation.c_str());
        std::abort();
    }
    return 0;
}
#endif
