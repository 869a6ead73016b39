// SPDX-License-Identifier: Apache-2.0
// The WAL reader fuzzer's entry point without libFuzzer: the seed corpus replayed (so that every
// compiler exercises it), and the generator of that corpus, which also checks that each generated
// input has the outcome it was made for.
//
// Regenerate the corpus: DENGINE_WRITE_CORPUS=tests/storage/corpus tst_wal_corpus
#include "faultyfs.h"
#include "fuzz_wal_reader.h"
#include "storage/record.h"
#include "wal_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace dengine;
using namespace dengine::storage;
using namespace dengine::storage::test;

namespace {

struct Case {
    std::string name;
    std::string input;
    enum Expect { Opens, OpensWithTornTail, Corrupt } expect;
};

WalOptions smallLog(FaultyFileSystem &fs)
{
    WalOptions o;
    o.dir = "/f";
    o.segmentBytes = 4096;
    o.fs = &fs;
    o.bootstrap.voters = {1, 2, 3};
    return o;
}

std::vector<std::string> segmentFiles(const FaultyFileSystem &fs)
{
    std::vector<std::string> out;
    for (const std::string &path : fs.files())
        if (path.rfind("/f/wal/", 0) == 0 && path.size() > 4 && path.compare(path.size() - 4, 4, ".wal") == 0)
            out.push_back(*fs.contents(path));
    return out;
}

std::string text(raft::Index i, std::size_t n) { return std::string(n, static_cast<char>('a' + i % 26)); }

// A log of `entries` entries of `size` bytes, synced, with a hard state after each.
void writeLog(Wal &wal, raft::Index from, raft::Index to, raft::Term term, std::size_t size)
{
    for (raft::Index i = from; i <= to; ++i) {
        ASSERT_TRUE(wal.append({makeEntry(i, term, text(i, size))}, raft::HardState{term, 1, i > 3 ? i - 3 : 0}).ok());
        ASSERT_TRUE(wal.sync().ok());
    }
}

std::vector<Case> generateCases()
{
    std::vector<Case> cases;
    auto build = [](auto &&fill) {
        FaultyFileSystem fs;
        std::unique_ptr<Wal> wal;
        EXPECT_TRUE(Wal::open(smallLog(fs), wal).ok());
        fill(*wal, fs);
        wal.reset();
        return segmentFiles(fs);
    };

    const auto one = build([](Wal &w, FaultyFileSystem &) { writeLog(w, 1, 6, 1, 40); });
    cases.push_back({"valid-one-segment", makeWalReaderInput(one, false, false), Case::Opens});
    cases.push_back({"valid-repaired-one-segment", makeWalReaderInput(one, true, false, 3), Case::Opens});

    const auto three = build([](Wal &w, FaultyFileSystem &) { writeLog(w, 1, 21, 1, 400); });
    EXPECT_EQ(three.size(), 3u);
    cases.push_back({"valid-three-segments", makeWalReaderInput(three, false, false), Case::Opens});

    // Compacted: segments 1 and 2 deleted, a log-start record in the last one.
    const auto compacted = build([](Wal &w, FaultyFileSystem &) {
        writeLog(w, 1, 30, 1, 400);
        EXPECT_TRUE(w.compact(20, 1).ok());
    });
    cases.push_back({"valid-compacted", makeWalReaderInput(compacted, false, true), Case::Opens});

    // Compacted, then written on: segments 4 and 5 are the files of segments 1 and 2, reused, with
    // their old records behind the new ones.
    const auto recycled = build([](Wal &w, FaultyFileSystem &) {
        writeLog(w, 1, 30, 1, 400);
        EXPECT_TRUE(w.compact(20, 1).ok());
        writeLog(w, 31, 45, 2, 150);
    });
    EXPECT_GE(recycled.size(), 2u);
    cases.push_back({"valid-recycled", makeWalReaderInput(recycled, false, true), Case::Opens});

    // A conflict rewrote entries from below the next segment's start, and a compaction then
    // deleted the segment that held them.
    const auto rebased = build([](Wal &w, FaultyFileSystem &) {
        writeLog(w, 1, 17, 1, 400);  // segments 1 and 2 full, 17 starts segment 3
        writeLog(w, 16, 26, 2, 400); // from 16 on, in segment 3 (which began after 16)
        EXPECT_TRUE(w.compact(20, 2).ok()); // deletes segments 1 and 2
    });
    cases.push_back({"valid-rewritten-below-oldest-start", makeWalReaderInput(rebased, false, true), Case::Opens});

    // Torn tail: the last record's second sector never reached the disk.
    {
        FaultyFileSystem fs;
        std::unique_ptr<Wal> wal;
        EXPECT_TRUE(Wal::open(smallLog(fs), wal).ok());
        writeLog(*wal, 1, 3, 1, 40);
        EXPECT_TRUE(wal->append({makeEntry(4, 1, text(4, 1500))}, std::nullopt).ok());
        wal.reset();
        auto segs = segmentFiles(fs);
        std::string &s = segs.back();
        std::uint64_t off = 0, lastOff = 0;
        DecodedRecord rec;
        std::string why;
        while (decodeRecord(std::string_view(s).substr(off), rec, why, off, segs.size()) == DecodeStatus::Ok) {
            lastOff = off;
            off += rec.size;
        }
        const std::uint64_t sector = (lastOff / SectorSize + 1) * SectorSize;
        std::fill(s.begin() + static_cast<std::ptrdiff_t>(sector), s.begin() + static_cast<std::ptrdiff_t>(sector + SectorSize), '\0');
        cases.push_back({"torn-tail", makeWalReaderInput(segs, false, false), Case::OpensWithTornTail});
    }

    {
        auto segs = three;
        segs[1][700] = static_cast<char>(segs[1][700] ^ 0x10);
        cases.push_back({"corrupt-bit-flip", makeWalReaderInput(segs, false, false), Case::Corrupt});
    }
    {
        auto segs = three;
        segs[0].resize(1000);
        cases.push_back({"corrupt-truncated-middle", makeWalReaderInput(segs, false, false), Case::Corrupt});
    }
    {
        auto segs = three;
        std::swap(segs[1], segs[2]);
        cases.push_back({"corrupt-reordered", makeWalReaderInput(segs, false, false), Case::Corrupt});
    }
    {
        // The header names another segment number, with a valid checksum.
        auto segs = one;
        segs[0][RecordHeaderSize + 8] = 7;
        cases.push_back({"corrupt-wrong-number-repaired", makeWalReaderInput(segs, true, false), Case::Corrupt});
    }
    {
        // A header (valid checksum) claiming the log stood at the largest index: the log would
        // start at index 0.
        auto segs = one;
        DecodedRecord rec;
        std::string why;
        std::uint64_t off = 0;
        for (int k = 0; k < 3; ++k) { // segment header, configuration, hard state
            EXPECT_EQ(decodeRecord(std::string_view(segs[0]).substr(off), rec, why, off, 1), DecodeStatus::Ok);
            off += rec.size;
        }
        segs[0].replace(off, std::string::npos, std::string(600, '\0'));
        std::fill(segs[0].begin() + RecordHeaderSize + 16, segs[0].begin() + RecordHeaderSize + 24, '\xff');
        cases.push_back({"corrupt-header-index-max", makeWalReaderInput(segs, true, false), Case::Corrupt});
    }
    {
        std::mt19937_64 rng(42);
        cases.push_back({"corrupt-garbage", makeWalReaderInput({randomBytes(rng, 600)}, false, false), Case::Corrupt});
        cases.push_back({"corrupt-empty-segment", makeWalReaderInput({std::string()}, false, false), Case::Corrupt});
    }
    return cases;
}

WalReaderOutcome check(const std::string &input)
{
    return checkWalReaderInput(reinterpret_cast<const std::uint8_t *>(input.data()), input.size());
}

} // namespace

TEST(WalCorpusTest, GeneratedInputsHaveTheirOutcomes)
{
    const auto cases = generateCases();
    ASSERT_GE(cases.size(), 10u);
    const char *dir = std::getenv("DENGINE_WRITE_CORPUS");
    for (const Case &c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_LT(c.input.size(), 20000u);
        const WalReaderOutcome out = check(c.input);
        EXPECT_TRUE(out.violation.empty()) << out.violation;
        switch (c.expect) {
        case Case::Opens:
            EXPECT_TRUE(out.open.ok()) << out.open.message;
            EXPECT_TRUE(out.report.tornTail.empty()) << out.report.tornTail;
            EXPECT_GT(out.last, 0u);
            break;
        case Case::OpensWithTornTail:
            EXPECT_TRUE(out.open.ok()) << out.open.message;
            EXPECT_FALSE(out.report.tornTail.empty());
            break;
        case Case::Corrupt:
            EXPECT_EQ(out.open.code, StorageErrorCode::Corrupt) << out.open.message;
            break;
        }
        if (dir && *dir) {
            std::ofstream f(std::string(dir) + "/" + c.name, std::ios::binary);
            f << c.input;
            ASSERT_TRUE(f.good());
        }
    }
}

TEST(WalCorpusTest, SeedCorpusReplays)
{
    std::vector<std::filesystem::path> files;
    for (const auto &e : std::filesystem::directory_iterator(DENGINE_WAL_CORPUS_DIR))
        if (e.is_regular_file())
            files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_GE(files.size(), 10u) << "corpus missing in " << DENGINE_WAL_CORPUS_DIR;
    std::size_t opened = 0, corrupt = 0;
    for (const auto &path : files) {
        std::ifstream f(path, std::ios::binary);
        const std::string input((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        const WalReaderOutcome out = check(input);
        EXPECT_TRUE(out.violation.empty()) << path << ": " << out.violation;
        (out.open.ok() ? opened : corrupt)++;
    }
    EXPECT_GT(opened, 0u);
    EXPECT_GT(corrupt, 0u);
}

TEST(WalCorpusTest, TruncationsAndBitFlipsOfAValidLogNeverBreakTheReader)
{
    // A cheap deterministic sweep in the spirit of the fuzzer: every prefix length (in steps) and
    // a bit flip at many offsets of a valid three-segment bundle.
    const auto cases = generateCases();
    const std::string &valid = std::find_if(cases.begin(), cases.end(), [](const Case &c) { return c.name == "valid-three-segments"; })->input;
    std::size_t corrupt = 0;
    for (std::size_t n = 0; n <= valid.size(); n += 97) {
        const WalReaderOutcome out = check(valid.substr(0, n));
        ASSERT_TRUE(out.violation.empty()) << "prefix " << n << ": " << out.violation;
    }
    for (std::size_t off = 1; off < valid.size(); off += 61) {
        std::string damaged = valid;
        damaged[off] = static_cast<char>(damaged[off] ^ (1 << (off % 8)));
        const WalReaderOutcome out = check(damaged);
        ASSERT_TRUE(out.violation.empty()) << "bit flip at " << off << ": " << out.violation;
        corrupt += out.open.code == StorageErrorCode::Corrupt;
    }
    EXPECT_GT(corrupt, 10u);
}
