// SPDX-License-Identifier: Apache-2.0
// Unit tests of the write-ahead log: round trips, conflicts, segments, compaction, the directory
// lock, damage detection, torn tails, IO errors and the raft::Storage view.
#include "faultyfs.h"
#include "storage/crc32c.h"
#include "storage/wal.h"
#include "wal_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>

using namespace dengine;
using namespace dengine::storage;
using namespace dengine::storage::test;

namespace {

constexpr std::uint64_t NoLimit = std::numeric_limits<std::uint64_t>::max();

std::string segPath(std::uint64_t n, const std::string &dir = "/data")
{
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.wal", static_cast<unsigned long long>(n));
    return dir + "/wal/" + name;
}

struct RecordPos {
    std::uint64_t offset = 0;
    RecordType type{};
    std::size_t size = 0;
    raft::Index index = 0; // entries only
};

// The records of a segment file, in order, up to the first that does not decode.
std::vector<RecordPos> scan(const std::string &bytes, std::uint64_t sequence)
{
    std::vector<RecordPos> out;
    std::uint64_t off = 0;
    for (;;) {
        DecodedRecord rec;
        std::string why;
        if (decodeRecord(std::string_view(bytes).substr(off), rec, why, off, sequence) != DecodeStatus::Ok)
            break;
        RecordPos p{off, rec.type, rec.size, 0};
        raft::Term t;
        if (rec.type == RecordType::Entry)
            peekEntry(rec.payload, p.index, t);
        out.push_back(p);
        off += rec.size;
    }
    return out;
}

std::string payloadFor(raft::Index i, std::size_t size)
{
    std::string s(size, '\0');
    for (std::size_t k = 0; k < size; ++k)
        s[k] = static_cast<char>('a' + (i * 7 + k) % 26);
    return s;
}

class WalTest : public ::testing::Test {
protected:
    WalTest()
    {
        opts.dir = "/data";
        opts.segmentBytes = 8192;
        opts.fs = &fs;
        opts.bootstrap.voters = {1, 2, 3};
    }

    std::unique_ptr<Wal> open(RecoveryReport *report = nullptr)
    {
        std::unique_ptr<Wal> wal;
        StorageStatus st = Wal::open(opts, wal, report);
        EXPECT_TRUE(st.ok()) << st.message;
        return wal;
    }

    StorageStatus openFails()
    {
        std::unique_ptr<Wal> wal;
        StorageStatus st = Wal::open(opts, wal);
        EXPECT_FALSE(st.ok()) << "open succeeded";
        EXPECT_EQ(wal, nullptr);
        return st;
    }

    // Appends entries lo..hi (term t, `size` bytes each) one call each, and a hard state.
    void fill(Wal &wal, raft::Index lo, raft::Index hi, raft::Term t, std::size_t size, bool sync = true)
    {
        for (raft::Index i = lo; i <= hi; ++i) {
            const raft::Entry e = makeEntry(i, t, payloadFor(i, size));
            ASSERT_TRUE(wal.append({e}, raft::HardState{t, 1, i > 2 ? i - 2 : 0}).ok());
            model.append({e});
            model.hardState = raft::HardState{t, 1, i > 2 ? i - 2 : 0};
        }
        if (sync) {
            ASSERT_TRUE(wal.sync().ok());
        }
    }

    void expectModel(const Wal &wal)
    {
        const std::string diff = compareWal(wal, model);
        EXPECT_TRUE(diff.empty()) << diff;
    }

    FaultyFileSystem fs;
    WalOptions opts;
    LogModel model;
};

} // namespace

// ---- record decoding: torn or corrupt ------------------------------------------------------------

namespace {

// One entry record of `size` payload bytes placed at `offset` in an otherwise zero file of `fileSize`.
std::string fileWithRecordAt(std::uint64_t offset, std::size_t size, std::size_t fileSize = 4096)
{
    std::string rec;
    appendEntryRecord(rec, makeEntry(7, 3, payloadFor(7, size)), 1);
    std::string file(fileSize, '\0');
    file.replace(offset, rec.size(), rec);
    return file;
}

DecodeStatus decodeAt(const std::string &file, std::uint64_t offset, std::string &why)
{
    DecodedRecord rec;
    return decodeRecord(std::string_view(file).substr(offset), rec, why, offset, 1);
}

void zero(std::string &file, std::uint64_t from, std::uint64_t to) { std::fill(file.begin() + static_cast<std::ptrdiff_t>(from), file.begin() + static_cast<std::ptrdiff_t>(to), '\0'); }

} // namespace

TEST(RecordTest, ALostSectorOfTheFileMakesTheRecordTorn)
{
    // The record spans [300, 300 + 12 + 17 + 1200): file sectors 0 (part), 1 (whole), 2 (part).
    for (std::uint64_t lost : {512u, 1024u}) {
        std::string file = fileWithRecordAt(300, 1200);
        std::string why;
        ASSERT_EQ(decodeAt(file, 300, why), DecodeStatus::Ok);
        zero(file, lost, lost + SectorSize);
        EXPECT_EQ(decodeAt(file, 300, why), DecodeStatus::Torn) << "lost sector at " << lost << ": " << why;
        EXPECT_NE(why.find(std::to_string(lost)), std::string::npos) << why;
    }
    // Sectors are the file's, not the record's: 512 zero bytes from the record's start + 512 are
    // not a lost sector when they straddle two sectors that hold other bytes of the record.
    std::string file = fileWithRecordAt(300, 1200);
    zero(file, 812, 1324);
    std::string why;
    EXPECT_EQ(decodeAt(file, 300, why), DecodeStatus::Corrupt) << why;
}

TEST(RecordTest, ALostFirstSectorHoldingOnlyTheLengthMakesTheRecordTorn)
{
    // The record starts 4 bytes before a sector boundary: only its length field is in that sector.
    std::string file = fileWithRecordAt(1020, 100);
    std::string why;
    ASSERT_EQ(decodeAt(file, 1020, why), DecodeStatus::Ok);
    zero(file, 1020, 1024);
    EXPECT_EQ(decodeAt(file, 1020, why), DecodeStatus::Torn) << why;
    // Only its type byte in the lost sector (8 bytes): the header is impossible, and torn.
    file = fileWithRecordAt(1016, 100);
    zero(file, 1016, 1024);
    EXPECT_EQ(decodeAt(file, 1016, why), DecodeStatus::Torn) << why;
}

TEST(RecordTest, ALostLastSectorIsTornOnlyIfTheWholeSectorReadsAsZeros)
{
    // The record's last 40 payload bytes are in sector 2, and another record follows them there.
    std::string file = fileWithRecordAt(1024 - 12 - 17 - 60, 100);
    std::string second;
    appendRecord(second, RecordType::HardState, encodeHardState(raft::HardState{1, 2, 3}), 1);
    file.replace(1024 + 48, second.size(), second);
    const std::uint64_t off = 1024 - 12 - 17 - 60;
    std::string why;
    ASSERT_EQ(decodeAt(file, off, why), DecodeStatus::Ok);
    std::string lostTail = file;
    zero(lostTail, 1024, 1024 + 40);
    EXPECT_EQ(decodeAt(lostTail, off, why), DecodeStatus::Corrupt) << why; // the sector is not all zero
    zero(lostTail, 1024, 1536);
    EXPECT_EQ(decodeAt(lostTail, off, why), DecodeStatus::Torn) << why; // the whole sector was lost
}

TEST(Crc32cTest, KnownValueAndBothVersionsAgreeOnEveryLengthAndAlignment)
{
    EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u); // the CRC-32C check value
    EXPECT_EQ(crc32cPortable("123456789", 9), 0xE3069283u);
    std::mt19937_64 rng(7);
    std::string data(40000, '\0');
    for (char &c : data)
        c = static_cast<char>(rng());
    // Lengths around the three-lane block sizes (3 x 128 and 3 x 4096 bytes), at odd offsets.
    for (std::size_t len : {0u, 1u, 7u, 8u, 383u, 384u, 385u, 1000u, 12287u, 12288u, 12289u, 25000u, 36900u}) {
        for (std::size_t at : {0u, 1u, 3u, 8u}) {
            const std::uint32_t seed = static_cast<std::uint32_t>(rng());
            EXPECT_EQ(crc32c(data.data() + at, len, seed), crc32cPortable(data.data() + at, len, seed)) << len << " at " << at;
        }
    }
    // Chaining: the CRC of a whole equals the CRC of its parts fed in turn.
    EXPECT_EQ(crc32c(data.data() + 5000, 20000, crc32c(data.data(), 5000)), crc32c(data.data(), 25000));
}

TEST(RecordTest, ABitFlipIsCorrupt)
{
    for (std::uint64_t at : {0u, 13u, 40u, 600u, 1100u}) {
        std::string file = fileWithRecordAt(300, 1200);
        file[300 + at] = static_cast<char>(file[300 + at] ^ 4);
        std::string why;
        EXPECT_EQ(decodeAt(file, 300, why), DecodeStatus::Corrupt) << "flip at " << at << ": " << why;
    }
}

// ---- round trips ---------------------------------------------------------------------------------

TEST_F(WalTest, CreateAndReopenRoundTrip)
{
    RecoveryReport report;
    auto wal = open(&report);
    ASSERT_TRUE(wal);
    EXPECT_TRUE(report.created);
    EXPECT_EQ(wal->firstIndex(), 1u);
    EXPECT_EQ(wal->lastIndex(), 0u);
    EXPECT_EQ(wal->term(0), raft::Term{0});
    EXPECT_EQ(wal->confState().voters, (std::vector<raft::NodeId>{1, 2, 3}));

    std::vector<raft::Entry> es = {makeEntry(1, 1, ""), makeEntry(2, 1, "set x 1"),
                                   makeEntry(3, 2, std::string("\0conf\0", 6), raft::EntryType::ConfChange), makeEntry(4, 2, payloadFor(4, 3000))};
    const raft::HardState hs{2, 3, 3};
    ASSERT_TRUE(wal->append(es, hs).ok());
    ASSERT_TRUE(wal->sync().ok());
    model.append(es);
    model.hardState = hs;
    expectModel(*wal);
    wal.reset();

    // Bootstrap voters are ignored for an existing log.
    opts.bootstrap.voters = {9};
    wal = open(&report);
    ASSERT_TRUE(wal);
    EXPECT_FALSE(report.created);
    EXPECT_EQ(report.entries, 4u);
    EXPECT_TRUE(report.tornTail.empty()) << report.tornTail;
    expectModel(*wal);
    EXPECT_EQ(wal->confState().voters, (std::vector<raft::NodeId>{1, 2, 3}));
    std::vector<raft::Entry> back;
    ASSERT_TRUE(wal->entries(3, 4, NoLimit, back));
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].type, raft::EntryType::ConfChange);
    EXPECT_EQ(back[0].data.toString(), std::string("\0conf\0", 6));

    // And across a power cut: everything was synced.
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open();
    ASSERT_TRUE(wal);
    expectModel(*wal);
}

TEST_F(WalTest, NewLogNeedsVoters)
{
    opts.bootstrap.voters.clear();
    StorageStatus st = openFails();
    EXPECT_EQ(st.code, StorageErrorCode::Config);
    EXPECT_NE(st.message.find("voters"), std::string::npos) << st.message;
}

TEST_F(WalTest, HardStateOnlyAppendsSurviveReopen)
{
    auto wal = open();
    ASSERT_TRUE(wal->append({}, raft::HardState{5, 2, 0}).ok());
    ASSERT_TRUE(wal->append({}, raft::HardState{6, 0, 0}).ok());
    ASSERT_TRUE(wal->sync().ok());
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open();
    EXPECT_EQ(wal->hardState(), (raft::HardState{6, 0, 0}));
    EXPECT_EQ(wal->lastIndex(), 0u);
}

TEST_F(WalTest, ConflictOverwritesTheSuffixAndSurvivesReopen)
{
    auto wal = open();
    fill(*wal, 1, 10, 1, 50);
    // A new leader's entries conflict from index 6 on.
    std::vector<raft::Entry> es = {makeEntry(6, 2, "x6"), makeEntry(7, 2, "x7")};
    ASSERT_TRUE(wal->append(es, std::nullopt).ok());
    model.append(es);
    EXPECT_EQ(wal->lastIndex(), 7u);
    EXPECT_EQ(wal->syncedLastIndex(), 5u);
    EXPECT_EQ(wal->term(6), raft::Term{2});
    EXPECT_FALSE(wal->term(8).has_value());
    expectModel(*wal);

    // Unsynced: a crash brings back the old, synced suffix.
    {
        auto copy = fs.crashedCopy(UnsyncedData::Drop);
        WalOptions o = opts;
        o.fs = copy.get();
        std::unique_ptr<Wal> w;
        ASSERT_TRUE(Wal::open(o, w).ok());
        EXPECT_EQ(w->lastIndex(), 10u);
        EXPECT_EQ(w->term(6), raft::Term{1});
    }
    ASSERT_TRUE(wal->sync().ok());
    EXPECT_EQ(wal->syncedLastIndex(), 7u);
    // Overwrite again at the very end and at the first index.
    ASSERT_TRUE(wal->append({makeEntry(8, 3, "y8")}, std::nullopt).ok());
    ASSERT_TRUE(wal->append({makeEntry(1, 3, "z1"), makeEntry(2, 3, "z2")}, raft::HardState{3, 0, 0}).ok());
    ASSERT_TRUE(wal->sync().ok());
    model.append({makeEntry(8, 3, "y8")});
    model.append({makeEntry(1, 3, "z1"), makeEntry(2, 3, "z2")});
    model.hardState = raft::HardState{3, 0, 0};
    expectModel(*wal);
    wal.reset();
    wal = open();
    expectModel(*wal);
}

TEST_F(WalTest, AppendThatDoesNotAttachIsRefusedWithoutFailingTheLog)
{
    auto wal = open();
    fill(*wal, 1, 3, 1, 10);
    StorageStatus st = wal->append({makeEntry(5, 1, "gap")}, std::nullopt);
    EXPECT_EQ(st.code, StorageErrorCode::Config);
    st = wal->append({makeEntry(4, 1, "a"), makeEntry(6, 1, "b")}, std::nullopt);
    EXPECT_EQ(st.code, StorageErrorCode::Config);
    EXPECT_TRUE(wal->failure().ok());
    EXPECT_TRUE(wal->append({makeEntry(4, 1, "ok")}, std::nullopt).ok());
    EXPECT_EQ(wal->lastIndex(), 4u);
}

// ---- segments ---------------------------------------------------------------------------------------

TEST_F(WalTest, EntriesLargerThanASegment)
{
    auto wal = open();
    fill(*wal, 1, 2, 1, 100);
    const std::string big = payloadFor(3, 20000); // 2.5 segments
    ASSERT_TRUE(wal->append({makeEntry(3, 1, big)}, std::nullopt).ok());
    model.append({makeEntry(3, 1, big)});
    fill(*wal, 4, 5, 1, 100);
    const std::string huge = payloadFor(6, 50000);
    ASSERT_TRUE(wal->append({makeEntry(6, 1, huge), makeEntry(7, 1, "after")}, std::nullopt).ok());
    model.append({makeEntry(6, 1, huge), makeEntry(7, 1, "after")});
    ASSERT_TRUE(wal->sync().ok());
    EXPECT_GE(wal->segmentCount(), 3u);
    expectModel(*wal);
    std::vector<raft::Entry> back;
    ASSERT_TRUE(wal->entries(3, 4, 1, back));
    ASSERT_EQ(back.size(), 1u); // at least one, whatever the limit
    EXPECT_EQ(back[0].data.toString(), big);
    const std::size_t segments = wal->segmentCount();
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    RecoveryReport report;
    wal = open(&report);
    EXPECT_EQ(report.segments, segments);
    expectModel(*wal);
    // Appends go on after a reopen.
    fill(*wal, 8, 12, 2, 1000);
    expectModel(*wal);
}

TEST_F(WalTest, RotationAndReadingAcrossSegments)
{
    opts.cacheBytes = 2000; // most reads come from the files
    auto wal = open();
    fill(*wal, 1, 120, 1, 300);
    EXPECT_GE(wal->segmentCount(), 4u);
    std::vector<std::string> names;
    ASSERT_TRUE(fs.list("/data/wal", names).ok());
    ASSERT_EQ(names.size(), wal->segmentCount());
    for (std::size_t k = 0; k < names.size(); ++k)
        EXPECT_EQ("/data/wal/" + names[k], segPath(k + 1));
    expectModel(*wal);
    // Every segment holds at most segmentBytes (no entry here is larger than a segment).
    for (const std::string &n : names)
        EXPECT_EQ(fs.contents("/data/wal/" + n)->size(), opts.segmentBytes) << n;

    // Byte-limited reads across segment boundaries follow the raft::Storage rule.
    for (std::uint64_t maxBytes : {0ull, 323ull, 324ull, 1000ull, 5000ull, 20000ull}) {
        for (raft::Index lo : {1ull, 20ull, 27ull, 100ull}) {
            std::vector<raft::Entry> back;
            ASSERT_TRUE(wal->entries(lo, 121, maxBytes, back));
            const auto want = model.slice(lo, 121, maxBytes);
            ASSERT_EQ(back.size(), want.size()) << "lo " << lo << " maxBytes " << maxBytes;
            for (std::size_t k = 0; k < back.size(); ++k)
                EXPECT_EQ(back[k].data.toString(), want[k].data);
        }
    }
    wal.reset();
    wal = open();
    expectModel(*wal);
}

TEST_F(WalTest, OldestSegmentDeletedWithoutACompactionIsCorrupt)
{
    {
        auto wal = open();
        fill(*wal, 1, 100, 1, 300);
        ASSERT_GE(wal->segmentCount(), 3u);
    }
    // Looks like a compaction from the outside, but no log-start record says one happened.
    ASSERT_TRUE(fs.deleteFile(segPath(1)));
    std::unique_ptr<Wal> wal;
    const StorageStatus st = Wal::open(opts, wal);
    EXPECT_EQ(st.code, StorageErrorCode::Corrupt) << st.message;
    EXPECT_NE(st.message.find(segPath(1) + " is missing"), std::string::npos) << st.message;
}

TEST_F(WalTest, CompactionDeletesWholeSegmentsAndReopenKeepsTheStart)
{
    auto wal = open();
    fill(*wal, 1, 100, 1, 300);
    fill(*wal, 101, 110, 2, 300);
    const std::size_t before = wal->segmentCount();
    ASSERT_GE(before, 4u);
    // Find the segment that holds entry 45: all segments before it can go, it must stay.
    std::uint64_t holder = 0;
    for (std::uint64_t s = 1; s <= before; ++s)
        for (const RecordPos &p : scan(*fs.contents(segPath(s)), s))
            if (p.type == RecordType::Entry && p.index == 45)
                holder = s;
    ASSERT_GT(holder, 1u);

    ASSERT_TRUE(wal->compact(45, 1).ok());
    model.compact(45, 1);
    EXPECT_EQ(wal->firstIndex(), 46u);
    EXPECT_EQ(wal->term(45), raft::Term{1});
    EXPECT_FALSE(wal->term(44).has_value());
    std::vector<raft::Entry> back;
    EXPECT_FALSE(wal->entries(45, 50, NoLimit, back));
    EXPECT_EQ(wal->segmentCount(), before - (holder - 1));
    for (std::uint64_t s = 1; s < holder; ++s)
        EXPECT_FALSE(fs.exists(segPath(s))) << segPath(s);
    EXPECT_TRUE(fs.exists(segPath(holder)));
    // The deletions are durable.
    for (std::uint64_t s = 1; s < holder; ++s)
        EXPECT_FALSE(fs.syncedContents(segPath(s)).has_value()) << segPath(s);
    expectModel(*wal);
    EXPECT_EQ(wal->hardState(), model.hardState);

    // Compacting below the start does nothing; beyond the synced log is refused.
    EXPECT_TRUE(wal->compact(10, 1).ok());
    EXPECT_EQ(wal->firstIndex(), 46u);
    EXPECT_EQ(wal->compact(111, 2).code, StorageErrorCode::Config);

    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open();
    expectModel(*wal);
    EXPECT_EQ(wal->confState().voters, (std::vector<raft::NodeId>{1, 2, 3}));

    // Compact everything: the log is empty but knows where it stands.
    ASSERT_TRUE(wal->compact(110, 2).ok());
    model.compact(110, 2);
    expectModel(*wal);
    EXPECT_EQ(wal->segmentCount(), 1u);
    wal.reset();
    wal = open();
    expectModel(*wal);
    fill(*wal, 111, 140, 3, 300);
    ASSERT_TRUE(wal->compact(139, 3).ok());
    model.compact(139, 3);
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open();
    expectModel(*wal);
    EXPECT_EQ(wal->confState().voters, (std::vector<raft::NodeId>{1, 2, 3}));
}

// A conflict can rewrite entries from below where the current segment began; once a compaction has
// deleted the older segment, the oldest one left holds entries below its own start.
class WalRewriteBelowStartTest : public WalTest {
protected:
    void SetUp() override
    {
        wal = open();
        fill(*wal, 1, 30, 1, 300);
        ASSERT_GE(wal->segmentCount(), 2u);
        // The first index in the last segment.
        rewriteSegment = wal->segmentCount();
        const auto recs = scan(*fs.contents(segPath(rewriteSegment)), rewriteSegment);
        for (const RecordPos &p : recs)
            if (p.type == RecordType::Entry && !lastStart)
                lastStart = p.index;
        ASSERT_GT(lastStart, 3u);
        // A new leader replaces everything from two entries before that.
        fill(*wal, lastStart - 2, 40, 2, 300);
        ASSERT_EQ(wal->term(lastStart - 2), raft::Term{2});
    }
    std::unique_ptr<Wal> wal;
    raft::Index lastStart = 0;
    std::uint64_t rewriteSegment = 0; // the segment the rewrite went to
};

TEST_F(WalRewriteBelowStartTest, CompactionPastTheOlderSegmentsKeepsTheLogReadable)
{
    ASSERT_TRUE(wal->compact(lastStart + 5, 2).ok());
    model.compact(lastStart + 5, 2);
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    ASSERT_FALSE(fs.exists(segPath(1)));
    wal = open();
    ASSERT_TRUE(wal);
    expectModel(*wal);
}

TEST_F(WalRewriteBelowStartTest, LosingTheOlderSegmentWithoutACompactionIsCorrupt)
{
    wal.reset();
    ASSERT_TRUE(fs.exists(segPath(rewriteSegment + 1))); // the rewrite went on into later segments
    for (std::uint64_t k = 1; k < rewriteSegment; ++k)
        ASSERT_TRUE(fs.deleteFile(segPath(k)));
    StorageStatus st = openFails();
    EXPECT_EQ(st.code, StorageErrorCode::Corrupt) << st.message;
    EXPECT_NE(st.message.find(segPath(rewriteSegment)), std::string::npos) << st.message;
    EXPECT_NE(st.message.find("missing"), std::string::npos) << st.message;
}

// ---- the directory lock ------------------------------------------------------------------------------

TEST_F(WalTest, SecondOpenOfTheSameDirectoryIsLocked)
{
    auto wal = open();
    ASSERT_TRUE(wal);
    std::unique_ptr<Wal> second;
    StorageStatus st = Wal::open(opts, second);
    EXPECT_EQ(st.code, StorageErrorCode::Locked);
    EXPECT_EQ(second, nullptr);
    EXPECT_NE(st.message.find("/data"), std::string::npos) << st.message;
    EXPECT_NE(st.message.find("in use"), std::string::npos) << st.message;
    wal.reset();
    EXPECT_TRUE(open());
}

TEST(WalPosixTest, LockAndRoundTripOnTheRealFileSystem)
{
    char tmpl[] = "/tmp/dengine-wal-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    struct Cleanup {
        std::string dir;
        ~Cleanup() { std::filesystem::remove_all(dir); }
    } cleanup{dir};

    WalOptions opts;
    opts.dir = dir;
    opts.segmentBytes = 4096;
    opts.bootstrap.voters = {1};
    std::unique_ptr<Wal> wal;
    ASSERT_TRUE(Wal::open(opts, wal).ok());
    std::unique_ptr<Wal> second;
    StorageStatus st = Wal::open(opts, second);
    EXPECT_EQ(st.code, StorageErrorCode::Locked);
    EXPECT_NE(st.message.find(dir), std::string::npos) << st.message;
    EXPECT_NE(st.message.find("in use"), std::string::npos) << st.message;

    LogModel model;
    for (raft::Index i = 1; i <= 40; ++i) {
        const raft::Entry e = makeEntry(i, 1, payloadFor(i, 250));
        ASSERT_TRUE(wal->append({e}, raft::HardState{1, 1, i - 1}).ok());
        model.append({e});
    }
    model.hardState = raft::HardState{1, 1, 39};
    ASSERT_TRUE(wal->sync().ok());
    EXPECT_GE(wal->segmentCount(), 3u);
    wal.reset();
    ASSERT_TRUE(Wal::open(opts, wal).ok());
    const std::string diff = compareWal(*wal, model);
    EXPECT_TRUE(diff.empty()) << diff;
}

// ---- damage ---------------------------------------------------------------------------------------------

class WalDamageTest : public WalTest {
protected:
    // Three or more full segments of synced entries; the log is closed afterwards.
    void SetUp() override
    {
        auto wal = open();
        fill(*wal, 1, 90, 1, 300);
        segments = wal->segmentCount();
        ASSERT_GE(segments, 4u);
    }

    void expectCorrupt(const std::string &path, std::optional<std::uint64_t> offset, const std::string &words = {})
    {
        StorageStatus st = openFails();
        EXPECT_EQ(st.code, StorageErrorCode::Corrupt) << st.message;
        EXPECT_NE(st.message.find(path), std::string::npos) << "message does not name " << path << ": " << st.message;
        if (offset) {
            EXPECT_NE(st.message.find("at offset " + std::to_string(*offset)), std::string::npos)
                << "message does not name offset " << *offset << ": " << st.message;
        }
        if (!words.empty()) {
            EXPECT_NE(st.message.find(words), std::string::npos) << st.message;
        }
    }

    RecordPos entryRecord(std::uint64_t segment, std::size_t nth)
    {
        std::vector<RecordPos> entries;
        for (const RecordPos &p : scan(*fs.contents(segPath(segment)), segment))
            if (p.type == RecordType::Entry)
                entries.push_back(p);
        EXPECT_GT(entries.size(), nth);
        return entries.at(nth);
    }

    std::size_t segments = 0;
};

TEST_F(WalDamageTest, BitFlipInAnOldRecordIsCorrupt)
{
    const RecordPos r = entryRecord(2, 3);
    ASSERT_TRUE(fs.flipBit(segPath(2), r.offset + RecordHeaderSize + 40, 3));
    expectCorrupt(segPath(2), r.offset, "checksum");
}

TEST_F(WalDamageTest, BitFlipInASyncedRecordOfTheLastSegmentIsCorrupt)
{
    // Not a torn tail: the record is followed by intact records.
    const RecordPos r = entryRecord(segments, 1);
    ASSERT_TRUE(fs.flipBit(segPath(segments), r.offset + RecordHeaderSize + 100, 0));
    expectCorrupt(segPath(segments), r.offset, "checksum");
}

TEST_F(WalDamageTest, BitFlipInARecordHeaderIsCorrupt)
{
    const RecordPos r = entryRecord(1, 2);
    ASSERT_TRUE(fs.flipBit(segPath(1), r.offset + 4, 5)); // the type byte
    expectCorrupt(segPath(1), r.offset);
}

TEST_F(WalDamageTest, BitFlipInASegmentHeaderIsCorrupt)
{
    ASSERT_TRUE(fs.flipBit(segPath(3), RecordHeaderSize + 9));
    expectCorrupt(segPath(3), 0u);
}

TEST_F(WalDamageTest, MissingMiddleSegmentIsCorrupt)
{
    ASSERT_TRUE(fs.deleteFile(segPath(2)));
    expectCorrupt(segPath(2), std::nullopt, "missing");
}

TEST_F(WalDamageTest, ReorderedSegmentsAreCorrupt)
{
    ASSERT_TRUE(fs.renameFile(segPath(2), "/data/wal/swap"));
    ASSERT_TRUE(fs.renameFile(segPath(3), segPath(2)));
    ASSERT_TRUE(fs.renameFile("/data/wal/swap", segPath(3)));
    expectCorrupt(segPath(2), 0u, "renamed or reordered");
}

TEST_F(WalDamageTest, RenumberedSegmentsAreCorrupt)
{
    // Every segment renamed to the next number: no gap, but each header names another number.
    for (std::uint64_t k = segments; k >= 1; --k)
        ASSERT_TRUE(fs.renameFile(segPath(k), segPath(k + 1)));
    expectCorrupt(segPath(2), 0u, "renamed or reordered");
}

TEST_F(WalDamageTest, TruncatedNonLastSegmentIsCorrupt)
{
    const RecordPos r = entryRecord(2, 4);
    ASSERT_TRUE(fs.truncateFile(segPath(2), r.offset + 30)); // in the middle of the record
    expectCorrupt(segPath(2), r.offset, "not the last");
}

TEST_F(WalDamageTest, NonLastSegmentTruncatedAtARecordBoundaryIsCorrupt)
{
    const RecordPos r = entryRecord(2, 4);
    ASSERT_TRUE(fs.truncateFile(segPath(2), r.offset)); // whole records missing
    expectCorrupt(segPath(2), r.offset, "before the segment-end record");
}

TEST_F(WalDamageTest, NonLastSegmentWithoutItsEndRecordIsCorrupt)
{
    std::string bytes = *fs.contents(segPath(1));
    const RecordPos last = scan(bytes, 1).back();
    ASSERT_EQ(last.type, RecordType::SegmentEnd);
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(last.offset), bytes.begin() + static_cast<std::ptrdiff_t>(last.offset + last.size), '\0');
    fs.putFile(segPath(1), bytes);
    expectCorrupt(segPath(1), last.offset, "before the segment-end record");
}

TEST_F(WalDamageTest, BytesAfterTheEndRecordOfANonLastSegmentAreNotRead)
{
    // What follows a segment's end record is an earlier use's leftovers (or zeros): never records.
    const std::string bytes = *fs.contents(segPath(1));
    const RecordPos last = scan(bytes, 1).back();
    ASSERT_EQ(last.type, RecordType::SegmentEnd);
    const std::uint64_t end = last.offset + last.size;
    ASSERT_LT(end + 300, bytes.size());
    std::string damaged = bytes;
    damaged[end + 200] = 'G';
    fs.putFile(segPath(1), damaged);
    auto wal = open();
    EXPECT_EQ(wal->firstIndex(), 1u);
    EXPECT_EQ(wal->lastIndex(), 90u);
}

// ---- torn tails -----------------------------------------------------------------------------------------

TEST_F(WalTest, TornTailOfTheLastSegmentIsCut)
{
    auto wal = open();
    fill(*wal, 1, 5, 1, 100);
    const raft::HardState syncedHs = wal->hardState();
    // Entry 6 spans several sectors; it is written but the power fails before the sync.
    const std::string big = payloadFor(6, 2000);
    ASSERT_TRUE(wal->append({makeEntry(6, 1, big), makeEntry(7, 1, "seven")}, raft::HardState{1, 1, 7}).ok());
    const std::uint64_t lastSegment = wal->segmentCount();
    const std::string path = segPath(lastSegment);
    wal.reset();
    fs.crash(UnsyncedData::Keep);
    // Make it torn: the second sector of entry 6 never reached the disk.
    std::string bytes = *fs.contents(path);
    const auto recs = scan(bytes, lastSegment);
    ASSERT_EQ(recs.at(recs.size() - 3).index, 6u);
    const std::uint64_t off6 = recs.at(recs.size() - 3).offset;
    const std::uint64_t sector = (off6 / SectorSize + 2) * SectorSize;
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(sector), bytes.begin() + static_cast<std::ptrdiff_t>(sector + SectorSize), '\0');
    fs.putFile(path, bytes);

    RecoveryReport report;
    wal = open(&report);
    ASSERT_TRUE(wal);
    EXPECT_NE(report.tornTail.find(path), std::string::npos) << report.tornTail;
    EXPECT_NE(report.tornTail.find("offset " + std::to_string(off6)), std::string::npos) << report.tornTail;
    EXPECT_EQ(wal->lastIndex(), 5u);
    EXPECT_EQ(wal->hardState(), syncedHs);
    expectModel(*wal);
    // The cut is on disk: the next recovery finds a clean tail, and new entries go where 6 was.
    fill(*wal, 6, 8, 2, 100);
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open(&report);
    EXPECT_TRUE(report.tornTail.empty()) << report.tornTail;
    expectModel(*wal);
}

TEST_F(WalTest, TailWithAMissingFirstSectorIsCutToo)
{
    auto wal = open();
    fill(*wal, 1, 3, 1, 100);
    const std::string path = segPath(1);
    const std::uint64_t end = scan(*fs.contents(path), 1).back().offset + scan(*fs.contents(path), 1).back().size;
    ASSERT_TRUE(wal->append({makeEntry(4, 1, payloadFor(4, 1500))}, std::nullopt).ok());
    wal.reset();
    fs.crash(UnsyncedData::Keep);
    // The sector with the record's header was lost; later sectors of it arrived.
    std::string bytes = *fs.contents(path);
    const std::uint64_t firstSector = end / SectorSize * SectorSize;
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(end), bytes.begin() + static_cast<std::ptrdiff_t>(firstSector + SectorSize), '\0');
    fs.putFile(path, bytes);
    RecoveryReport report;
    wal = open(&report);
    ASSERT_TRUE(wal);
    EXPECT_NE(report.tornTail.find(path), std::string::npos) << report.tornTail;
    expectModel(*wal);
}

TEST_F(WalTest, LastSegmentEndingInsideARecordsPaddingTakesNewRecordsWhereThePaddingEnds)
{
    // A file cut short (damage, or a size update lost) right after the last record's payload: the
    // record is whole, its padding is missing. New records must still start after the padding.
    auto wal = open();
    for (raft::Index i = 1; i <= 3; ++i) {
        const raft::Entry e = makeEntry(i, 1, std::string(5, 'p')); // 17 + 5 bytes: 2 bytes of padding
        ASSERT_TRUE(wal->append({e}, std::nullopt).ok());
        model.append({e});
    }
    ASSERT_TRUE(wal->sync().ok());
    wal.reset();
    const auto recs = scan(*fs.contents(segPath(1)), 1);
    const RecordPos last = recs.back();
    ASSERT_EQ(last.index, 3u);
    ASSERT_TRUE(fs.truncateFile(segPath(1), last.offset + RecordHeaderSize + 17 + 5));
    wal = open();
    expectModel(*wal);
    fill(*wal, 4, 6, 2, 33);
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open();
    expectModel(*wal);
}

// ---- IO errors -------------------------------------------------------------------------------------------

class WalIoErrorTest : public WalTest, public ::testing::WithParamInterface<int> {};

TEST_P(WalIoErrorTest, FailedWriteFailsTheLogForGood)
{
    const int error = GetParam();
    const StorageErrorCode code = error == ENOSPC ? StorageErrorCode::NoSpace : StorageErrorCode::Io;
    auto wal = open();
    fill(*wal, 1, 5, 1, 100);
    fs.failNext(OpKind::Write, error, 0, ".wal");
    StorageStatus st = wal->append({makeEntry(6, 1, "six")}, raft::HardState{1, 1, 6});
    EXPECT_EQ(st.code, code) << st.message;
    EXPECT_NE(st.message.find("/data/wal/"), std::string::npos) << st.message;
    EXPECT_EQ(wal->failure().code, code);
    // Nothing later is accepted, even though the disk would now take it.
    StorageStatus again = wal->append({makeEntry(6, 1, "six")}, std::nullopt);
    EXPECT_EQ(again.code, code);
    EXPECT_EQ(again.message, st.message);
    EXPECT_EQ(wal->sync().code, code);
    EXPECT_EQ(wal->compact(3, 1).code, code);
    EXPECT_EQ(wal->failure().code, code);
    EXPECT_EQ(wal->syncedLastIndex(), 5u);
    WalStorage view(*wal);
    EXPECT_EQ(view.lastIndex(), 5u);
    // What was synced is still there after a restart.
    wal.reset();
    fs.crash(UnsyncedData::Keep);
    wal = open();
    expectModel(*wal);
}

TEST_P(WalIoErrorTest, FailedSegmentPreallocationFailsTheLog)
{
    const int error = GetParam();
    auto wal = open();
    fill(*wal, 1, 5, 1, 100);
    fs.failNext(OpKind::Preallocate, error);
    StorageStatus st = wal->append({makeEntry(6, 1, payloadFor(6, 9000))}, std::nullopt); // needs a new segment
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(st.code, error == ENOSPC ? StorageErrorCode::NoSpace : StorageErrorCode::Io) << st.message;
    EXPECT_FALSE(wal->failure().ok());
    EXPECT_FALSE(wal->append({makeEntry(6, 1, "x")}, std::nullopt).ok());
    EXPECT_FALSE(wal->sync().ok());
    wal.reset();
    fs.crash(UnsyncedData::Keep);
    wal = open();
    expectModel(*wal);
}

INSTANTIATE_TEST_SUITE_P(Errors, WalIoErrorTest, ::testing::Values(ENOSPC, EIO),
                         [](const ::testing::TestParamInfo<int> &p) { return p.param == ENOSPC ? "ENOSPC" : "EIO"; });

TEST_F(WalTest, FailedSyncIsFatalAndNothingAfterItIsAcknowledged)
{
    auto wal = open();
    fill(*wal, 1, 5, 1, 100);
    ASSERT_TRUE(wal->append({makeEntry(6, 1, "six")}, raft::HardState{1, 1, 6}).ok());
    fs.failNext(OpKind::SyncData, EIO);
    StorageStatus st = wal->sync();
    EXPECT_EQ(st.code, StorageErrorCode::Io) << st.message;
    EXPECT_EQ(wal->failure().code, StorageErrorCode::Io);
    EXPECT_EQ(wal->syncedLastIndex(), 5u);
    WalStorage view(*wal);
    EXPECT_EQ(view.lastIndex(), 5u);
    raft::Term t;
    EXPECT_EQ(view.term(6, t), raft::StorageError::Unavailable);
    // A retry must not "succeed": the kernel forgot the dirty pages, so a second fsync would
    // report success for data that never reached the disk.
    EXPECT_EQ(wal->sync().code, StorageErrorCode::Io);
    EXPECT_EQ(wal->append({makeEntry(7, 1, "seven")}, std::nullopt).code, StorageErrorCode::Io);
    EXPECT_EQ(wal->syncedLastIndex(), 5u);
    wal.reset();
    fs.crash(UnsyncedData::Keep);
    wal = open();
    expectModel(*wal); // entry 6 and its hard state are gone, and they were never acknowledged
}

TEST_F(WalTest, FailedSyncDuringCompactionFailsTheLog)
{
    auto wal = open();
    fill(*wal, 1, 60, 1, 300);
    fs.failNext(OpKind::SyncData, EIO);
    EXPECT_EQ(wal->compact(30, 1).code, StorageErrorCode::Io);
    EXPECT_EQ(wal->failure().code, StorageErrorCode::Io);
    EXPECT_EQ(wal->firstIndex(), 1u);
    wal.reset();
    fs.crash(UnsyncedData::Keep);
    wal = open();
    expectModel(*wal);
}

// ---- the raft::Storage view ------------------------------------------------------------------------------

TEST_F(WalTest, StorageViewShowsOnlySyncedEntries)
{
    auto wal = open();
    WalStorage view(*wal);
    EXPECT_EQ(view.firstIndex(), 1u);
    EXPECT_EQ(view.lastIndex(), 0u);
    EXPECT_EQ(view.initialState().confState.voters, (std::vector<raft::NodeId>{1, 2, 3}));
    fill(*wal, 1, 4, 1, 30);
    ASSERT_TRUE(wal->append({makeEntry(5, 2, "five"), makeEntry(6, 2, "six")}, std::nullopt).ok());
    EXPECT_EQ(wal->lastIndex(), 6u);
    EXPECT_EQ(view.lastIndex(), 4u);
    raft::Term t = 0;
    EXPECT_EQ(view.term(4, t), raft::StorageError::None);
    EXPECT_EQ(t, 1u);
    EXPECT_EQ(view.term(5, t), raft::StorageError::Unavailable);
    std::vector<raft::Entry> out;
    EXPECT_EQ(view.entries(1, 6, NoLimit, out), raft::StorageError::Unavailable);
    out.clear();
    EXPECT_EQ(view.entries(1, 5, NoLimit, out), raft::StorageError::None);
    EXPECT_EQ(out.size(), 4u);
    ASSERT_TRUE(wal->sync().ok());
    EXPECT_EQ(view.lastIndex(), 6u);
    EXPECT_EQ(view.term(6, t), raft::StorageError::None);
    EXPECT_EQ(t, 2u);

    // An unsynced conflict hides the replaced suffix until it is synced.
    ASSERT_TRUE(wal->append({makeEntry(4, 3, "four")}, std::nullopt).ok());
    EXPECT_EQ(view.lastIndex(), 3u);
    EXPECT_EQ(view.term(4, t), raft::StorageError::Unavailable);
    ASSERT_TRUE(wal->sync().ok());
    EXPECT_EQ(view.lastIndex(), 4u);
    EXPECT_EQ(view.term(4, t), raft::StorageError::None);
    EXPECT_EQ(t, 3u);

    // Compacted entries, and the term of the position before the first.
    ASSERT_TRUE(wal->compact(2, 1).ok());
    out.clear();
    EXPECT_EQ(view.entries(2, 4, NoLimit, out), raft::StorageError::Compacted);
    EXPECT_EQ(view.term(1, t), raft::StorageError::Compacted);
    EXPECT_EQ(view.term(2, t), raft::StorageError::None);
    EXPECT_EQ(t, 1u);
    EXPECT_EQ(view.firstIndex(), 3u);

    // Byte limits: at least one entry, then only what fits.
    out.clear();
    EXPECT_EQ(view.entries(3, 5, 0, out), raft::StorageError::None);
    EXPECT_EQ(out.size(), 1u);
    out.clear();
    EXPECT_EQ(view.entries(3, 5, 30 + 24 + 4 + 24, out), raft::StorageError::None);
    EXPECT_EQ(out.size(), 2u);
    out.clear();
    EXPECT_EQ(view.entries(3, 5, 30 + 24 + 4 + 23, out), raft::StorageError::None);
    EXPECT_EQ(out.size(), 1u);
}

// ---- recycled segments and synced records ----------------------------------------------------------

namespace {

std::vector<std::string> namesEndingWith(FaultyFileSystem &fs, const std::string &suffix)
{
    std::vector<std::string> names, out;
    EXPECT_TRUE(fs.list("/data/wal", names).ok());
    for (const std::string &n : names)
        if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
            out.push_back(n);
    return out;
}

bool headerSaysRecycled(const std::string &bytes, std::uint64_t sequence)
{
    DecodedRecord rec;
    std::string why;
    SegmentHeader h;
    return decodeRecord(bytes, rec, why, 0, sequence) == DecodeStatus::Ok && rec.type == RecordType::SegmentHeader
        && decodeSegmentHeader(rec.payload, h) && h.recycled;
}

} // namespace

class WalRecycleTest : public WalTest {
protected:
    // Fills segments 1..4 or so, compacts the first ones (which wait as .free files), then writes on
    // until the log's last segment is a recycled file, with stale records after its own.
    void SetUp() override
    {
        opts.recycleSegments = 2;
        auto wal = open();
        fill(*wal, 1, 60, 1, 300);
        ASSERT_GE(wal->segmentCount(), 3u);
        ASSERT_TRUE(wal->compact(55, 1).ok());
        model.compact(55, 1);
        ASSERT_EQ(namesEndingWith(fs, ".free").size(), 2u);
        // Write on until a recycled file becomes the last segment, and a little into it.
        lastEntry = 60;
        for (int guard = 0; guard < 100 && !headerSaysRecycled(*fs.contents(segPath(segmentNumber(*wal))), segmentNumber(*wal)); ++guard) {
            fill(*wal, lastEntry + 1, lastEntry + 1, 1, 300);
            ++lastEntry;
        }
        fill(*wal, lastEntry + 1, lastEntry + 3, 1, 300);
        lastEntry += 3;
        last = segmentNumber(*wal);
        ASSERT_TRUE(headerSaysRecycled(*fs.contents(segPath(last)), last)) << "segment " << last << " is not a recycled file";
    }

    std::uint64_t segmentNumber(const Wal &wal)
    {
        const auto names = namesEndingWith(fs, ".wal");
        EXPECT_EQ(names.size(), wal.segmentCount());
        return std::stoull(names.back().substr(0, 16), nullptr, 16);
    }

    std::uint64_t last = 0;      // the last segment's number
    raft::Index lastEntry = 0;   // the last entry written
};

TEST_F(WalRecycleTest, CompactedSegmentsAreReusedAndTheirOldRecordsNeverRead)
{
    // One .free file was taken for the segment being written; the rest wait (and survive a reopen).
    RecoveryReport report;
    auto wal = open(&report);
    ASSERT_TRUE(wal);
    EXPECT_TRUE(report.tornTail.empty()) << report.tornTail;
    EXPECT_EQ(report.recycledFiles, namesEndingWith(fs, ".free").size());
    expectModel(*wal);
    // The old records behind the new ones are another segment's: they check out only as stale.
    const std::string bytes = *fs.contents(segPath(last));
    const auto recs = scan(bytes, last);
    const std::uint64_t end = recs.back().offset + recs.back().size;
    DecodedRecord rec;
    std::string why;
    EXPECT_NE(decodeRecord(std::string_view(bytes).substr(end), rec, why, end, last), DecodeStatus::Ok);
    // Writing on over them, through more segment switches and reopens, keeps the log exact.
    fill(*wal, lastEntry + 1, lastEntry + 65, 2, 300);
    wal.reset();
    wal = open(&report);
    ASSERT_TRUE(wal);
    EXPECT_TRUE(report.tornTail.empty()) << report.tornTail;
    expectModel(*wal);
}

class WalRecycleCrashTest : public WalRecycleTest, public ::testing::WithParamInterface<UnsyncedData> {};

TEST_P(WalRecycleCrashTest, AWriteInterruptedInARecycledSegmentLeavesAPrefixAndNoDamage)
{
    // The power fails before the sync: each lost sector of the write reads as the older segment's
    // bytes again, not as zeros.
    auto wal = open();
    const std::string big = payloadFor(lastEntry + 1, 3000);
    ASSERT_TRUE(wal->append({makeEntry(lastEntry + 1, 1, big), makeEntry(lastEntry + 2, 1, "next")}, raft::HardState{1, 1, lastEntry}).ok());
    wal.reset();
    fs.crash(GetParam());
    RecoveryReport report;
    wal = open(&report);
    ASSERT_TRUE(wal);
    ASSERT_GE(wal->lastIndex(), lastEntry);
    ASSERT_LE(wal->lastIndex(), lastEntry + 2);
    std::vector<raft::Entry> got;
    ASSERT_TRUE(wal->entries(56, wal->lastIndex() + 1, ~0ULL, got));
    for (const raft::Entry &e : got) {
        const std::string want = e.index == lastEntry + 1 ? big : e.index == lastEntry + 2 ? std::string("next") : payloadFor(e.index, 300);
        EXPECT_EQ(std::string(e.data.view()), want) << "entry " << e.index;
    }
    // A second recovery finds the same log and nothing more to cut; appends go on.
    const raft::Index last = wal->lastIndex();
    wal.reset();
    wal = open(&report);
    ASSERT_TRUE(wal);
    EXPECT_TRUE(report.tornTail.empty()) << report.tornTail;
    EXPECT_EQ(wal->lastIndex(), last);
    ASSERT_TRUE(wal->append({makeEntry(last + 1, 2, "after")}, std::nullopt).ok());
    ASSERT_TRUE(wal->sync().ok());
    wal.reset();
    wal = open();
    ASSERT_TRUE(wal);
    EXPECT_EQ(wal->lastIndex(), last + 1);
}

INSTANTIATE_TEST_SUITE_P(Modes, WalRecycleCrashTest, ::testing::Values(UnsyncedData::Drop, UnsyncedData::Keep, UnsyncedData::TornSectors),
                         [](const auto &info) { return std::string(toString(info.param)).substr(0, 4); });

namespace {

// Two synced batches after the records present: damage in the first (at `at` bytes into entry
// `index`'s record) lies before the Synced record that the second batch starts with.
void damageBeforeASyncedRecord(FaultyFileSystem &fs, const std::string &path, std::uint64_t sequence, raft::Index index,
                               bool flipNotZeroSector)
{
    std::string bytes = *fs.contents(path);
    const auto recs = scan(bytes, sequence);
    const auto it = std::find_if(recs.begin(), recs.end(), [&](const RecordPos &p) { return p.type == RecordType::Entry && p.index == index; });
    ASSERT_NE(it, recs.end());
    const bool markerAfter = std::any_of(it, recs.end(), [](const RecordPos &p) { return p.type == RecordType::Synced; });
    ASSERT_TRUE(markerAfter) << "no synced record after entry " << index;
    if (flipNotZeroSector) {
        bytes[it->offset + 100] = static_cast<char>(bytes[it->offset + 100] ^ 1);
    } else {
        const std::uint64_t sector = (it->offset / SectorSize + 1) * SectorSize;
        ASSERT_LT(sector + SectorSize, it->offset + it->size);
        std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(sector), bytes.begin() + static_cast<std::ptrdiff_t>(sector + SectorSize), '\0');
    }
    fs.putFile(path, bytes);
}

} // namespace

TEST_F(WalRecycleTest, DamageInSyncedDataOfARecycledSegmentIsCorruptNotCut)
{
    auto wal = open();
    fill(*wal, lastEntry + 1, lastEntry + 2, 1, 1500); // synced
    fill(*wal, lastEntry + 3, lastEntry + 3, 1, 100);  // starts with a Synced record covering them
    wal.reset();
    damageBeforeASyncedRecord(fs, segPath(last), last, lastEntry + 2, true);
    const StorageStatus st = openFails();
    EXPECT_EQ(st.code, StorageErrorCode::Corrupt) << st.message;
    EXPECT_NE(st.message.find(segPath(last)), std::string::npos) << st.message;
    EXPECT_NE(st.message.find("durable up to"), std::string::npos) << st.message;
}

TEST_F(WalTest, ALostSectorInDataThatWasSyncedIsCorruptNotATornTail)
{
    // In a fresh segment a zero sector looks like a torn write; the Synced record after it says
    // that this data was durable, so it is damage (a sector the disk lost), not a tail to cut.
    auto wal = open();
    fill(*wal, 1, 3, 1, 100);
    fill(*wal, 4, 4, 1, 2000);
    fill(*wal, 5, 5, 1, 100);
    wal.reset();
    damageBeforeASyncedRecord(fs, segPath(1), 1, 4, false);
    const StorageStatus st = openFails();
    EXPECT_EQ(st.code, StorageErrorCode::Corrupt) << st.message;
    EXPECT_NE(st.message.find("durable up to"), std::string::npos) << st.message;
}

TEST_F(WalRecycleTest, ABitFlipInTheLastBatchOfARecycledSegmentIsCutLikeATornWrite)
{
    // The documented limit: with no Synced record after it, a damaged last batch in a recycled
    // segment cannot be told from a torn write. It is cut, and the cut is reported.
    auto wal = open();
    fill(*wal, lastEntry + 1, lastEntry + 1, 1, 1500);
    wal.reset();
    std::string bytes = *fs.contents(segPath(last));
    const auto recs = scan(bytes, last);
    const auto it = std::find_if(recs.begin(), recs.end(), [&](const RecordPos &p) { return p.index == lastEntry + 1; });
    ASSERT_NE(it, recs.end());
    bytes[it->offset + 100] = static_cast<char>(bytes[it->offset + 100] ^ 1);
    fs.putFile(segPath(last), bytes);
    RecoveryReport report;
    wal = open(&report);
    ASSERT_TRUE(wal);
    EXPECT_EQ(wal->lastIndex(), lastEntry);
    EXPECT_FALSE(report.tornTail.empty());
}

TEST_F(WalTest, ASegmentEndedBeforeItsSuccessorExistedIsFollowedByANewOne)
{
    // A crash after a segment's end record was synced and before the next segment's rename.
    auto wal = open();
    fill(*wal, 1, 40, 1, 300);
    const std::uint64_t count = wal->segmentCount();
    wal.reset();
    ASSERT_TRUE(fs.deleteFile(segPath(count))); // as if the new segment never got its name
    wal = open();
    ASSERT_TRUE(wal);
    EXPECT_EQ(wal->segmentCount(), count); // a fresh last segment replaced it
    const raft::Index last = wal->lastIndex();
    ASSERT_TRUE(wal->append({makeEntry(last + 1, 1, "next")}, std::nullopt).ok());
    ASSERT_TRUE(wal->sync().ok());
    wal.reset();
    wal = open();
    ASSERT_TRUE(wal);
    EXPECT_EQ(wal->lastIndex(), last + 1);
}

// ---- a snapshot from the leader replaces the log -------------------------------------------------

TEST_F(WalTest, ResetEmptiesTheLogPastItsEndAndSurvivesReopen)
{
    auto wal = open();
    fill(*wal, 1, 60, 1, 300);
    ASSERT_GE(wal->segmentCount(), 2u);
    // A snapshot at 100 (beyond the log) in term 3 replaces everything.
    ASSERT_TRUE(wal->reset(100, 3).ok());
    model.reset(100, 3);
    EXPECT_EQ(wal->firstIndex(), 101u);
    EXPECT_EQ(wal->lastIndex(), 100u);
    EXPECT_EQ(wal->syncedLastIndex(), 100u);
    EXPECT_EQ(wal->term(100), raft::Term{3});
    EXPECT_EQ(wal->segmentCount(), 1u) << "the older segments hold nothing live";
    expectModel(*wal);
    // Durable without another sync: a power cut now keeps it.
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open();
    expectModel(*wal);
    fill(*wal, 101, 130, 3, 300);
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open();
    expectModel(*wal);
    EXPECT_EQ(wal->confState().voters, (std::vector<raft::NodeId>{1, 2, 3}));
}

TEST_F(WalTest, ResetInsideTheLogDropsTheSuffixToo)
{
    auto wal = open();
    fill(*wal, 1, 40, 1, 300);
    // The commit index is 38: a snapshot at 39 (past it, as Raft installs them) drops entry 40,
    // which came after it in another leader's log.
    ASSERT_TRUE(wal->reset(39, 2).ok());
    model.reset(39, 2);
    EXPECT_EQ(wal->lastIndex(), 39u);
    std::vector<raft::Entry> back;
    EXPECT_FALSE(wal->entries(40, 41, NoLimit, back));
    expectModel(*wal);
    wal.reset();
    wal = open();
    expectModel(*wal);
    // The log continues after it; a later compaction behind a newer snapshot still works.
    fill(*wal, 40, 80, 2, 300);
    ASSERT_TRUE(wal->compact(70, 2).ok());
    model.compact(70, 2);
    wal.reset();
    fs.crash(UnsyncedData::Drop);
    wal = open();
    expectModel(*wal);
}

TEST_F(WalTest, AJoiningNodeStartsWithNoVotersAndKeepsThemEmpty)
{
    opts.bootstrap = {};
    EXPECT_EQ(openFails().code, StorageErrorCode::Config) << "an empty configuration only when joining";
    opts.joining = true;
    auto wal = open();
    EXPECT_TRUE(wal->confState().voters.empty());
    ASSERT_TRUE(wal->reset(500, 4).ok());
    model.reset(500, 4);
    fill(*wal, 501, 520, 4, 300);
    wal.reset();
    opts.joining = false; // a restart of a node that joined: the log exists, the flag does not matter
    wal = open();
    expectModel(*wal);
    EXPECT_TRUE(wal->confState().voters.empty());
}
