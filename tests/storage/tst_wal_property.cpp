// SPDX-License-Identifier: Apache-2.0
// Property tests: random sequences of append / overwrite / hard state / sync / compact / reopen /
// power cut, each step checked against an in-memory model of the log: first and last index, the
// term of every index (and none outside), entries(lo, hi, maxBytes) with byte limits from the cache
// and from the files alike, the hard state, and the raft::Storage view.
//
// Replay one sequence: DENGINE_WAL_PROPERTY_SEED=<seed> tst_wal_property
// More sequences (seeds 1..n): DENGINE_WAL_PROPERTY_SEEDS=<n> tst_wal_property
#include "faultyfs.h"
#include "storage/wal.h"
#include "wal_model.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <random>

using namespace dengine;
using namespace dengine::storage;
using namespace dengine::storage::test;

namespace {

constexpr std::uint64_t NoLimit = std::numeric_limits<std::uint64_t>::max();

class Sequence {
public:
    explicit Sequence(std::uint64_t seed) : m_rng(seed)
    {
        m_opts.dir = "/prop";
        m_opts.segmentBytes = (m_rng() % 2) ? 4096 : 8192;
        const std::uint64_t caches[] = {1, 3000, 64ULL << 20};
        m_opts.cacheBytes = caches[m_rng() % 3];
        m_opts.zeroFillSegments = m_rng() % 2 == 0;
        m_opts.fs = &m_fs;
        m_opts.bootstrap.voters = {4, 5, 6};
    }

    // Runs `steps` random steps; stops at the first violation and returns it (empty: none).
    std::string run(int steps)
    {
        if (std::string e = reopen("create"); !e.empty())
            return e;
        std::vector<std::string> history;
        auto recent = [&] {
            std::string s = "\n  the steps before it:";
            for (std::size_t i = history.size() > 12 ? history.size() - 12 : 0; i < history.size(); ++i)
                s += "\n    " + history[i];
            return s;
        };
        for (int k = 0; k < steps; ++k) {
            std::string what;
            const std::string e = step(what);
            history.push_back(std::to_string(k) + ": " + what + " -> log [" + std::to_string(m_model.first) + ".."
                              + std::to_string(m_model.last()) + "], commit " + std::to_string(m_model.hardState.commit));
            if (!e.empty())
                return "step " + std::to_string(k) + " (" + what + "): " + e + recent();
            if (std::string c = check(); !c.empty())
                return "after step " + std::to_string(k) + " (" + what + "): " + c + recent();
        }
        m_wal.reset();
        return {};
    }

    std::uint64_t compactions = 0, reopens = 0, overwrites = 0, rangeChecks = 0;

private:
    std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) { return lo + m_rng() % (hi - lo + 1); }

    std::string reopen(const std::string &why)
    {
        m_wal.reset();
        RecoveryReport report;
        StorageStatus st = Wal::open(m_opts, m_wal, &report);
        if (!st)
            return why + ": open failed: " + st.message;
        if (!report.tornTail.empty())
            return why + ": unexpected torn tail: " + report.tornTail;
        m_synced = m_model.last();
        return {};
    }

    std::string step(std::string &what)
    {
        const unsigned r = static_cast<unsigned>(m_rng() % 100);
        if (r < 50) {
            // Append, sometimes replacing a suffix (never a committed entry), with or without a
            // hard state.
            raft::Index from = m_model.last() + 1;
            if (m_rng() % 100 < 25 && m_model.last() > m_model.hardState.commit && m_model.last() >= m_model.first) {
                from = pick(std::max(m_model.hardState.commit + 1, m_model.first), m_model.last());
                ++m_term;
                ++overwrites;
            }
            const std::size_t n = static_cast<std::size_t>(pick(0, 5));
            std::vector<raft::Entry> es;
            for (std::size_t i = 0; i < n; ++i)
                es.push_back(makeEntry(from + i, m_term, randomBytes(m_rng, randomPayloadSize(m_rng)),
                                       m_rng() % 10 == 0 ? raft::EntryType::ConfChange : raft::EntryType::Normal));
            std::optional<raft::HardState> hs;
            if (n == 0 || m_rng() % 2) {
                raft::HardState h = m_model.hardState;
                h.term = std::max(h.term, m_term);
                h.vote = m_rng() % 7;
                const raft::Index last = n ? from + n - 1 : m_model.last();
                if (last > h.commit)
                    h.commit = pick(h.commit, last);
                hs = h;
            }
            what = "append " + std::to_string(n) + " from " + std::to_string(from) + (hs ? " with hard state" : "");
            StorageStatus st = m_wal->append(es, hs);
            if (!st)
                return st.message;
            m_model.append(es);
            if (hs)
                m_model.hardState = *hs;
            if (n && from <= m_synced)
                m_synced = from - 1;
            return {};
        }
        if (r < 70) {
            what = "sync";
            StorageStatus st = m_wal->sync();
            if (!st)
                return st.message;
            m_synced = m_model.last();
            if (m_wal->syncedLastIndex() != m_model.last())
                return "syncedLastIndex " + std::to_string(m_wal->syncedLastIndex()) + " after sync, last " + std::to_string(m_model.last());
            return {};
        }
        if (r < 80) {
            const raft::Index upTo = std::min(m_wal->syncedLastIndex(), m_model.hardState.commit);
            if (upTo < m_model.first) {
                what = "nothing (no compactable entry)";
                return {};
            }
            const raft::Index index = pick(m_model.first, upTo);
            const raft::Term term = *m_model.term(index);
            what = "compact " + std::to_string(index);
            const std::size_t before = m_wal->segmentCount();
            StorageStatus st = m_wal->compact(index, term);
            if (!st)
                return st.message;
            m_model.compact(index, term);
            m_synced = m_model.last();
            if (m_wal->segmentCount() > before)
                return "compaction added segments";
            ++compactions;
            return {};
        }
        if (r < 87) {
            // A clean close without a sync: the page cache still has everything.
            what = "close and reopen";
            ++reopens;
            return reopen(what);
        }
        if (r < 94) {
            // A power cut that happens to keep every write.
            what = "power cut keeping unsynced writes, reopen";
            m_wal.reset();
            m_fs.crash(UnsyncedData::Keep);
            ++reopens;
            return reopen(what);
        }
        // A power cut right after a sync: nothing may be lost.
        what = "sync, power cut dropping unsynced writes, reopen";
        if (StorageStatus st = m_wal->sync(); !st)
            return st.message;
        m_wal.reset();
        m_fs.crash(UnsyncedData::Drop, m_rng());
        ++reopens;
        return reopen(what);
    }

    std::string check()
    {
        const Wal &wal = *m_wal;
        if (std::string diff = compareWal(wal, m_model); !diff.empty())
            return diff;
        if (wal.confState().voters != m_opts.bootstrap.voters)
            return "configuration changed";
        if (!wal.failure().ok())
            return "failure set: " + wal.failure().message;
        const raft::Index first = m_model.first, last = m_model.last();
        if (wal.syncedLastIndex() < m_synced || wal.syncedLastIndex() > last)
            return "syncedLastIndex " + std::to_string(wal.syncedLastIndex()) + " outside [" + std::to_string(m_synced) + ", "
                + std::to_string(last) + "]";

        // Ranges with byte limits, from the cache and from the files.
        std::vector<raft::Entry> out;
        if (first >= 2 && wal.entries(first - 1, last + 1, NoLimit, out))
            return "entries below the first index were served";
        if (wal.entries(first, last + 2, NoLimit, out))
            return "entries beyond the last index were served";
        for (int k = 0; k < 6 && last >= first; ++k) {
            const raft::Index lo = pick(first, last);
            const raft::Index hi = pick(lo, last + 1);
            const std::uint64_t limits[] = {0, pick(1, 200), pick(200, 3000), pick(3000, 40000), NoLimit};
            const std::uint64_t maxBytes = limits[m_rng() % 5];
            out.clear();
            out.push_back(makeEntry(999999, 1, "already there")); // entries() appends
            StorageStatus err;
            if (!wal.entries(lo, hi, maxBytes, out, &err))
                return "entries(" + std::to_string(lo) + ", " + std::to_string(hi) + ") failed: " + err.message;
            const auto want = m_model.slice(lo, hi, maxBytes);
            if (out.size() != want.size() + 1)
                return "entries(" + std::to_string(lo) + ", " + std::to_string(hi) + ", " + std::to_string(maxBytes) + ") returned "
                    + std::to_string(out.size() - 1) + " entries, expected " + std::to_string(want.size());
            for (std::size_t i = 0; i < want.size(); ++i) {
                const raft::Entry &e = out[i + 1];
                if (e.index != lo + i || e.term != want[i].term || e.type != want[i].type || e.data.view() != want[i].data)
                    return "entries(" + std::to_string(lo) + ", " + std::to_string(hi) + ") entry " + std::to_string(lo + i) + " differs";
            }
            ++rangeChecks;
        }

        // The raft::Storage view: synced entries only, same byte rule.
        WalStorage view(wal);
        const raft::Index vlast = view.lastIndex();
        if (view.firstIndex() != first || vlast != wal.syncedLastIndex())
            return "storage view bounds";
        raft::Term t;
        if (view.term(vlast + 1, t) != raft::StorageError::Unavailable)
            return "storage view shows term " + std::to_string(vlast + 1) + " beyond the synced log";
        if (view.term(first - 1, t) != raft::StorageError::None || t != m_model.startTerm)
            return "storage view: term of first - 1";
        if (first >= 2 && view.term(first - 2, t) != raft::StorageError::Compacted)
            return "storage view: compacted term";
        if (vlast >= first) {
            const raft::Index lo = pick(first, vlast);
            const std::uint64_t maxBytes = pick(0, 5000);
            out.clear();
            if (view.entries(lo, vlast + 1, maxBytes, out) != raft::StorageError::None)
                return "storage view entries failed";
            if (out.size() != m_model.slice(lo, vlast + 1, maxBytes).size())
                return "storage view entries: byte limit";
            out.clear();
            if (view.entries(lo, vlast + 2, NoLimit, out) != raft::StorageError::Unavailable)
                return "storage view served entries beyond the synced log";
        }
        return {};
    }

    std::mt19937_64 m_rng;
    FaultyFileSystem m_fs;
    WalOptions m_opts;
    std::unique_ptr<Wal> m_wal;
    LogModel m_model;
    raft::Index m_synced = 0; // the synced prefix as far as the model knows (the log may know more)
    raft::Term m_term = 1;
};

std::vector<std::uint64_t> seeds()
{
    if (const char *v = std::getenv("DENGINE_WAL_PROPERTY_SEED"); v && *v)
        return {std::strtoull(v, nullptr, 10)};
    std::uint64_t count = 150;
    if (const char *v = std::getenv("DENGINE_WAL_PROPERTY_SEEDS"); v && *v)
        count = std::strtoull(v, nullptr, 10);
    std::vector<std::uint64_t> s;
    for (std::uint64_t i = 1; i <= count; ++i)
        s.push_back(i);
    return s;
}

} // namespace

TEST(WalPropertyTest, RandomSequencesMatchTheModel)
{
    std::uint64_t compactions = 0, reopens = 0, overwrites = 0, rangeChecks = 0;
    for (const std::uint64_t seed : seeds()) {
        Sequence seq(seed);
        const std::string err = seq.run(300);
        ASSERT_TRUE(err.empty()) << "seed " << seed << ": " << err << "\n  replay: DENGINE_WAL_PROPERTY_SEED=" << seed;
        compactions += seq.compactions;
        reopens += seq.reopens;
        overwrites += seq.overwrites;
        rangeChecks += seq.rangeChecks;
    }
    // The sequences did exercise what they are meant to.
    if (std::getenv("DENGINE_WAL_PROPERTY_SEED"))
        return;
    EXPECT_GT(compactions, 100u);
    EXPECT_GT(reopens, 100u);
    EXPECT_GT(overwrites, 100u);
    EXPECT_GT(rangeChecks, 10000u);
    std::printf("%zu sequences: %llu compactions, %llu reopens, %llu overwrites, %llu range reads checked\n", seeds().size(),
                static_cast<unsigned long long>(compactions),
                static_cast<unsigned long long>(reopens), static_cast<unsigned long long>(overwrites),
                static_cast<unsigned long long>(rangeChecks));
}
