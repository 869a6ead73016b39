// SPDX-License-Identifier: Apache-2.0
// Power cuts at every operation point of recorded workloads.
//
// A workload (random appends of random sizes, suffix overwrites, hard state updates, syncs,
// compactions, resets by a snapshot from the leader, many segment switches with 8 KiB segments) is generated from a seed. It is run
// once to count its operation points; then, for every operation point N (or a seeded sample when
// there are very many), it is run again with a power cut at N, and the disk that each kind of
// power cut leaves (unsynced data dropped, kept, or torn into random sectors) is recovered. The
// recovered log must be exactly the log after some prefix of the records the workload wrote, no
// shorter than what the last successful sync covered: every acknowledged entry present with its
// term and bytes, the hard state at least the synced one, no gap, nothing never written, and
// whatever lies beyond the synced point a latest-wins version of what was written there.
//
// Replay one case: DENGINE_WAL_CRASH_SEED=<seed> DENGINE_WAL_CRASH_OP=<N> tst_wal_crash
// A deeper run: DENGINE_WAL_CRASH_TORN_SEEDS=<k> tears each crash point k ways (default 3).
#include "faultyfs.h"
#include "storage/wal.h"
#include "wal_model.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <random>
#include <sstream>

using namespace dengine;
using namespace dengine::storage;
using namespace dengine::storage::test;

namespace {

// One record the workload asked the log to write, as it changes the model.
struct Delta {
    enum Kind { Entry, Hard, Start, Reset } kind = Entry;
    raft::Index index = 0;
    ModelEntry entry;
    raft::HardState hardState;
    raft::Term term = 0;
};

void apply(LogModel &m, const Delta &d)
{
    switch (d.kind) {
    case Delta::Entry: m.put(d.index, d.entry); break;
    case Delta::Hard: m.hardState = d.hardState; break;
    case Delta::Start: m.compact(d.index, d.term); break;
    case Delta::Reset: m.reset(d.index, d.term); break;
    }
}

struct Step {
    enum Kind { Append, Sync, Compact, Reset } kind = Append;
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hardState;
    raft::Index index = 0; // Compact, Reset
    raft::Term term = 0;   // Compact, Reset
    std::string describe() const
    {
        std::ostringstream s;
        switch (kind) {
        case Append:
            s << "append";
            if (!entries.empty())
                s << " " << entries.front().index << ".." << entries.back().index << " (term " << entries.back().term << ")";
            if (hardState)
                s << " hard state " << dengine::storage::test::describe(*hardState);
            break;
        case Sync: s << "sync"; break;
        case Compact: s << "compact " << index << " term " << term; break;
        case Reset: s << "reset " << index << " term " << term; break;
        }
        return s.str();
    }
};

struct Workload {
    std::uint64_t seed = 0;
    bool zeroFill = false;
    std::vector<Step> steps;
};

// Generates a Raft-like workload: terms never decrease along the log, committed entries are never
// overwritten, the commit index never passes the last entry, and only committed, synced entries are
// compacted.
Workload generate(std::uint64_t seed, std::size_t steps)
{
    Workload w;
    w.seed = seed;
    w.zeroFill = seed % 2 == 1;
    std::mt19937_64 rng(seed);
    LogModel m;
    raft::Index synced = 0;
    raft::Term term = 1;
    auto pick = [&](std::uint64_t lo, std::uint64_t hi) { return lo + rng() % (hi - lo + 1); };
    for (std::size_t k = 0; k < steps; ++k) {
        const unsigned r = static_cast<unsigned>(rng() % 100);
        Step s;
        if (r < 60) {
            s.kind = Step::Append;
            raft::Index from = m.last() + 1;
            const raft::Index commit = m.hardState.commit;
            if (rng() % 100 < 15 && m.last() > commit && m.last() >= m.first) {
                from = pick(std::max(commit + 1, m.first), m.last()); // a new leader's conflicting suffix
                ++term;
            } else if (rng() % 100 < 5) {
                ++term;
            }
            const std::size_t n = r < 5 ? 0 : static_cast<std::size_t>(pick(1, 4));
            for (std::size_t i = 0; i < n; ++i)
                s.entries.push_back(makeEntry(from + i, term, randomBytes(rng, randomPayloadSize(rng))));
            if (n == 0 || rng() % 2 == 0) {
                const raft::Index last = n ? from + n - 1 : m.last();
                raft::HardState hs = m.hardState;
                hs.term = std::max(hs.term, term);
                hs.vote = rng() % 4;
                if (last > hs.commit)
                    hs.commit = pick(hs.commit, last);
                s.hardState = hs;
            }
            m.append(s.entries);
            if (n && from <= synced)
                synced = from - 1;
            if (s.hardState)
                m.hardState = *s.hardState;
        } else if (r < 90) {
            s.kind = Step::Sync;
            synced = m.last();
        } else if (r >= 97) {
            // A snapshot from a leader replaces the log: at an index past the commit point, maybe
            // past the end of the log, maybe in a later term.
            s.kind = Step::Reset;
            s.index = pick(m.hardState.commit + 1, m.last() + 20);
            if (rng() % 2)
                ++term;
            s.term = term;
            m.reset(s.index, s.term);
            synced = m.last();
        } else {
            const raft::Index upTo = std::min(synced, m.hardState.commit);
            if (upTo < m.first)
                continue;
            s.kind = Step::Compact;
            s.index = pick(m.first, upTo);
            s.term = *m.term(s.index);
            m.compact(s.index, s.term);
        }
        w.steps.push_back(std::move(s));
    }
    Step last;
    last.kind = Step::Sync;
    w.steps.push_back(last);
    return w;
}

WalOptions optionsFor(const Workload &w, FileSystem &fs)
{
    WalOptions o;
    o.dir = "/node";
    o.segmentBytes = 8192;
    o.cacheBytes = 16384;
    o.zeroFillSegments = w.zeroFill;
    o.fs = &fs;
    o.bootstrap.voters = {1, 2, 3};
    return o;
}

// The outcome of running a workload up to a power cut.
struct WorkloadRun {
    std::unique_ptr<FaultyFileSystem> fs;
    LogModel synced;            // the log as of the last successful sync (what was acknowledged)
    std::vector<Delta> pending; // records written (or being written) since then, in order
    raft::Index maxIndex = 0;   // the highest index ever written
    std::string interrupted;    // the call the power cut interrupted
    std::string error;          // an unexpected failure of the workload itself
};

// An injected IO error: operation `op` fails with `error` (and has no effect).
struct Fault {
    std::uint64_t op = 0;
    int error = 0;
};

WorkloadRun runUntil(const Workload &w, std::uint64_t crashAt, Fault fault = {})
{
    WorkloadRun run;
    run.fs = std::make_unique<FaultyFileSystem>();
    if (crashAt)
        run.fs->crashAtOperation(crashAt);
    if (fault.op)
        run.fs->failOperation(fault.op, fault.error);
    std::unique_ptr<Wal> wal;
    StorageStatus st = Wal::open(optionsFor(w, *run.fs), wal);
    if (!st) {
        if (run.fs->crashed() || (fault.op && run.fs->operations() >= fault.op))
            run.interrupted = "open (creating the log)";
        else
            run.error = "open: " + st.message;
        return run;
    }
    auto settle = [&] {
        for (const Delta &d : run.pending)
            apply(run.synced, d);
        run.pending.clear();
    };
    for (const Step &s : w.steps) {
        switch (s.kind) {
        case Step::Append:
            for (const raft::Entry &e : s.entries) {
                run.pending.push_back(Delta{Delta::Entry, e.index, ModelEntry{e.term, e.type, e.data.toString()}, {}, 0});
                run.maxIndex = std::max(run.maxIndex, e.index);
            }
            if (s.hardState)
                run.pending.push_back(Delta{Delta::Hard, 0, {}, *s.hardState, 0});
            st = wal->append(s.entries, s.hardState);
            break;
        case Step::Sync:
            st = wal->sync();
            if (st)
                settle();
            break;
        case Step::Compact:
            run.pending.push_back(Delta{Delta::Start, s.index, {}, {}, s.term});
            st = wal->compact(s.index, s.term);
            if (st)
                settle(); // compact syncs the log before it deletes anything
            break;
        case Step::Reset:
            run.pending.push_back(Delta{Delta::Reset, s.index, {}, {}, s.term});
            run.maxIndex = std::max(run.maxIndex, s.index);
            st = wal->reset(s.index, s.term);
            if (st)
                settle(); // reset syncs the log before it deletes anything
            break;
        }
        if (run.fs->crashed()) {
            run.interrupted = s.describe();
            return run;
        }
        if (!st && fault.op && run.fs->operations() >= fault.op) {
            // The injected error: the log must say so, stay failed, and write nothing more.
            run.interrupted = s.describe();
            const StorageErrorCode code = fault.error == ENOSPC ? StorageErrorCode::NoSpace : StorageErrorCode::Io;
            if (st.code != code)
                run.error = s.describe() + ": failed with code " + std::to_string(static_cast<int>(st.code)) + ": " + st.message;
            if (wal->failure().code != code)
                run.error = s.describe() + ": failure() is not set after " + st.message;
            const std::uint64_t ops = run.fs->operations();
            for (const Step &later : w.steps) {
                StorageStatus again;
                switch (later.kind) {
                case Step::Append: again = wal->append(later.entries, later.hardState); break;
                case Step::Sync: again = wal->sync(); break;
                case Step::Compact: again = wal->compact(later.index, later.term); break;
                case Step::Reset: again = wal->reset(later.index, later.term); break;
                }
                if (again.ok())
                    run.error = "after the failure of '" + s.describe() + "' (" + st.message + "), '" + later.describe() + "' succeeded";
                if (again.code != code)
                    run.error = "after the failure of '" + s.describe() + "', '" + later.describe() + "' failed differently: " + again.message;
                if (!run.error.empty())
                    return run;
            }
            if (run.fs->operations() != ops)
                run.error = "the failed log went on writing to the disk after '" + s.describe() + "'";
            return run;
        }
        if (!st) {
            run.error = s.describe() + ": " + st.message;
            return run;
        }
    }
    return run;
}

std::string describeLog(const LogModel &m)
{
    std::ostringstream s;
    s << "[" << m.first << ".." << m.last() << "] start term " << m.startTerm << ", hard state " << dengine::storage::test::describe(m.hardState);
    return s.str();
}

// Recovers `disk` and checks the result against the run. Empty, or what is wrong.
std::string checkRecovery(FaultyFileSystem &disk, const Workload &w, const WorkloadRun &run, LogModel *recovered = nullptr)
{
    std::unique_ptr<Wal> wal;
    RecoveryReport report;
    StorageStatus st = Wal::open(optionsFor(w, disk), wal, &report);
    if (!st)
        return "recovery failed: " + st.message;
    LogModel got;
    if (std::string err = readBack(*wal, got); !err.empty())
        return "reading the recovered log: " + err;
    if (wal->confState().voters != std::vector<raft::NodeId>{1, 2, 3})
        return "the configuration was lost";
    if (recovered)
        *recovered = got;

    // The recovered log must be the log after some prefix of the records written since the sync.
    LogModel candidate = run.synced;
    if (candidate == got)
        return {};
    for (const Delta &d : run.pending) {
        apply(candidate, d);
        if (candidate == got)
            return {};
    }

    // No match: say why in the terms of the properties it breaks.
    std::ostringstream s;
    s << "recovered " << describeLog(got) << " is no prefix of what was written (synced " << describeLog(run.synced) << ", "
      << run.pending.size() << " records after it, last possible " << describeLog(candidate) << ")";
    if (!report.tornTail.empty())
        s << "; torn tail: " << report.tornTail;
    raft::Index overwritten = run.synced.last() + 1;
    for (const Delta &d : run.pending)
        if (d.kind == Delta::Entry)
            overwritten = std::min(overwritten, d.index);
    for (raft::Index i = std::max(got.first, run.synced.first); i < overwritten && i <= run.synced.last(); ++i) {
        if (i > got.last()) {
            s << "; acknowledged entry " << i << " is missing";
            break;
        }
        if (got.at(i) != run.synced.at(i)) {
            s << "; acknowledged entry " << i << " differs (term " << got.at(i).term << " vs " << run.synced.at(i).term << ")";
            break;
        }
    }
    if (got.hardState.term < run.synced.hardState.term || got.hardState.commit < run.synced.hardState.commit)
        s << "; the hard state went back";
    if (got.last() > std::max(run.maxIndex, run.synced.last()))
        s << "; entries beyond anything written";
    return s.str();
}

std::optional<std::uint64_t> envNumber(const char *name)
{
    const char *v = std::getenv(name);
    if (!v || !*v)
        return std::nullopt;
    return std::strtoull(v, nullptr, 10);
}

class WalCrashTest : public ::testing::TestWithParam<std::uint64_t> {};

constexpr std::size_t MaxPointsPerSeed = 2500;
constexpr std::uint64_t TornSeedsPerPoint = 3;

} // namespace

TEST_P(WalCrashTest, EveryOperationPoint)
{
    const std::uint64_t seed = envNumber("DENGINE_WAL_CRASH_SEED").value_or(GetParam());
    const Workload w = generate(seed, 300);

    // A clean run: how many operation points there are, and that the workload itself is sound.
    const WorkloadRun clean = runUntil(w, 0);
    ASSERT_TRUE(clean.error.empty()) << "seed " << seed << ": the workload fails without faults: " << clean.error;
    const std::uint64_t total = clean.fs->operations();
    {
        std::string why = checkRecovery(*clean.fs->crashedCopy(UnsyncedData::Drop), w, clean);
        ASSERT_TRUE(why.empty()) << "seed " << seed << ", clean shutdown: " << why;
    }
    ASSERT_GT(total, 300u) << "seed " << seed << ": the workload is too small to mean much";

    std::vector<std::uint64_t> points;
    if (auto only = envNumber("DENGINE_WAL_CRASH_OP")) {
        points.push_back(*only);
    } else {
        for (std::uint64_t n = 1; n <= total + 1; ++n) // total + 1: a power cut after the last operation
            points.push_back(n);
        if (points.size() > MaxPointsPerSeed) {
            std::mt19937_64 rng(seed ^ 0x5eed);
            std::shuffle(points.begin(), points.end(), rng);
            points.resize(MaxPointsPerSeed);
            std::sort(points.begin(), points.end());
        }
    }

    int failures = 0;
    std::size_t tornTails = 0;
    std::size_t recoveredPastSync = 0;
    for (const std::uint64_t n : points) {
        const WorkloadRun run = runUntil(w, n);
        ASSERT_TRUE(run.error.empty()) << "seed " << seed << ", crash at operation " << n << ": " << run.error;
        const auto trace = run.fs->trace(1);
        const std::string where = "seed " + std::to_string(seed) + ", power cut at operation " + std::to_string(n) + " of " + std::to_string(total)
            + (trace.empty() ? std::string() : " (" + trace.back().describe() + ")") + " during '" + run.interrupted + "'";

        std::vector<std::pair<UnsyncedData, std::uint64_t>> modes = {{UnsyncedData::Drop, 0}, {UnsyncedData::Keep, 0}};
        const std::uint64_t tornSeeds = envNumber("DENGINE_WAL_CRASH_TORN_SEEDS").value_or(TornSeedsPerPoint);
        for (std::uint64_t t = 0; t < tornSeeds; ++t)
            modes.emplace_back(UnsyncedData::TornSectors, seed * 1000003 + n * 31 + t);
        for (const auto &[mode, tornSeed] : modes) {
            auto disk = run.fs->crashedCopy(mode, tornSeed);
            LogModel got;
            const std::string why = checkRecovery(*disk, w, run, &got);
            if (!why.empty()) {
                ADD_FAILURE() << where << ", " << toString(mode) << " (torn seed " << tornSeed << "): " << why
                              << "\n  replay: DENGINE_WAL_CRASH_SEED=" << seed << " DENGINE_WAL_CRASH_OP=" << n;
                if (++failures >= 5)
                    return;
                continue;
            }
            if (got.last() > run.synced.last())
                ++recoveredPastSync;

            // The recovered log must take new writes: append after it, sync, lose power again.
            {
                auto again = run.fs->crashedCopy(mode, tornSeed);
                std::unique_ptr<Wal> wal;
                RecoveryReport report;
                StorageStatus st = Wal::open(optionsFor(w, *again), wal, &report);
                ASSERT_TRUE(st.ok()) << where << ": " << st.message;
                if (!report.tornTail.empty())
                    ++tornTails;
                raft::Term t = got.entries.empty() ? got.startTerm : got.entries.back().term;
                LogModel want = got;
                std::vector<raft::Entry> more;
                for (raft::Index i = got.last() + 1; i <= got.last() + 3; ++i)
                    more.push_back(makeEntry(i, t + 1, std::string(100 * (i % 7), static_cast<char>('A' + i % 26))));
                want.append(more);
                want.hardState = raft::HardState{std::max(t + 1, got.hardState.term), 2, got.hardState.commit};
                ASSERT_TRUE(wal->append(more, want.hardState).ok()) << where;
                ASSERT_TRUE(wal->sync().ok()) << where;
                wal.reset();
                auto after = again->crashedCopy(UnsyncedData::Drop);
                std::unique_ptr<Wal> reopened;
                st = Wal::open(optionsFor(w, *after), reopened);
                ASSERT_TRUE(st.ok()) << where << ", " << toString(mode) << ": reopening after new appends: " << st.message;
                const std::string diff = compareWal(*reopened, want);
                ASSERT_TRUE(diff.empty()) << where << ", " << toString(mode) << ": after recovery and new appends: " << diff;
            }

            // Only the process dies at this point (the page cache survives, unsynced data and all):
            // the restarted process serves what it recovered as synced, so a power cut right after
            // the restart must keep exactly that.
            if (mode == UnsyncedData::Drop) {
                auto machine = run.fs->processDeathCopy();
                LogModel restarted;
                std::string why2 = checkRecovery(*machine, w, run, &restarted);
                if (why2.empty()) {
                    machine->crash(UnsyncedData::Drop);
                    LogModel afterPowerCut;
                    std::unique_ptr<Wal> wal;
                    StorageStatus st = Wal::open(optionsFor(w, *machine), wal);
                    if (!st)
                        why2 = "power cut after the restart: recovery failed: " + st.message;
                    else if (std::string e = readBack(*wal, afterPowerCut); !e.empty())
                        why2 = "power cut after the restart: " + e;
                    else if (!(afterPowerCut == restarted))
                        why2 = "a power cut after the restart lost what the restarted log served as synced: had "
                            + describeLog(restarted) + ", now " + describeLog(afterPowerCut);
                }
                if (!why2.empty()) {
                    ADD_FAILURE() << where << ", process death: " << why2 << "\n  replay: DENGINE_WAL_CRASH_SEED=" << seed
                                  << " DENGINE_WAL_CRASH_OP=" << n;
                    if (++failures >= 5)
                        return;
                }
            }

            // A second power cut in the middle of recovery (while it cuts a torn tail) is harmless.
            if (mode == UnsyncedData::TornSectors) {
                auto twice = run.fs->crashedCopy(mode, tornSeed);
                twice->crashAtOperation(twice->operations() + 1 + tornSeed % 2);
                {
                    std::unique_ptr<Wal> wal;
                    (void)Wal::open(optionsFor(w, *twice), wal);
                }
                twice->crash(UnsyncedData::TornSectors, tornSeed + 1);
                LogModel second;
                const std::string why2 = checkRecovery(*twice, w, run, &second);
                if (!why2.empty()) {
                    ADD_FAILURE() << where << ", torn seed " << tornSeed << ", then a power cut during recovery: " << why2
                                  << "\n  replay: DENGINE_WAL_CRASH_SEED=" << seed << " DENGINE_WAL_CRASH_OP=" << n;
                    if (++failures >= 5)
                        return;
                }
            }
        }
    }
    // The sweep must have exercised what it claims to.
    if (!envNumber("DENGINE_WAL_CRASH_OP")) {
        EXPECT_GT(tornTails, 10u) << "seed " << seed << ": hardly any torn tails were produced";
        EXPECT_GT(recoveredPastSync, 10u) << "seed " << seed << ": unsynced data never survived a crash";
    }
    std::printf("seed %llu: %zu operation points, %zu recoveries past the synced point, %zu torn tails cut\n",
                static_cast<unsigned long long>(seed), points.size(), recoveredPastSync, tornTails);
}

// An IO error (EIO, ENOSPC) at every operation point instead of a power cut: the log reports it,
// stays failed without touching the disk again, and whatever a power cut then leaves recovers to a
// prefix of what was written that keeps everything acknowledged before the error.
class WalFailureTest : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(WalFailureTest, EveryOperationPointFailing)
{
    const std::uint64_t seed = envNumber("DENGINE_WAL_CRASH_SEED").value_or(GetParam());
    const Workload w = generate(seed + 100, 200);
    const std::uint64_t total = runUntil(w, 0).fs->operations();
    std::vector<std::uint64_t> points;
    if (auto only = envNumber("DENGINE_WAL_CRASH_OP"))
        points.push_back(*only);
    else
        for (std::uint64_t n = 1; n <= total; ++n)
            points.push_back(n);
    int failures = 0;
    std::size_t reported = 0;
    for (const std::uint64_t n : points) {
        for (const int error : {EIO, ENOSPC}) {
            const WorkloadRun run = runUntil(w, 0, Fault{n, error});
            const std::string where = "seed " + std::to_string(seed) + " (workload " + std::to_string(w.seed) + "), "
                + (error == EIO ? "EIO" : "ENOSPC") + " at operation " + std::to_string(n) + " during '" + run.interrupted + "'";
            ASSERT_TRUE(run.error.empty()) << where << ": " << run.error << "\n  replay: DENGINE_WAL_CRASH_SEED=" << seed
                                           << " DENGINE_WAL_CRASH_OP=" << n;
            if (!run.interrupted.empty())
                ++reported;
            const std::pair<UnsyncedData, std::uint64_t> modes[] = {
                {UnsyncedData::Drop, 0}, {UnsyncedData::Keep, 0}, {UnsyncedData::TornSectors, seed * 7919 + n}};
            for (const auto &[mode, tornSeed] : modes) {
                auto disk = run.fs->crashedCopy(mode, tornSeed);
                const std::string why = checkRecovery(*disk, w, run);
                if (!why.empty()) {
                    std::string ops;
                    for (const OpTrace &t : run.fs->trace(6))
                        ops += "\n    " + t.describe();
                    ADD_FAILURE() << where << ", then a power cut, " << toString(mode) << ": " << why << "\n  the last operations:" << ops
                                  << "\n  replay: DENGINE_WAL_CRASH_SEED=" << seed << " DENGINE_WAL_CRASH_OP=" << n;
                    if (++failures >= 5)
                        return;
                }
            }
        }
    }
    if (!envNumber("DENGINE_WAL_CRASH_OP")) {
        EXPECT_GT(reported, points.size()); // most operations' errors reach the caller (a leftover's removal need not)
    }
}

INSTANTIATE_TEST_SUITE_P(Seeds, WalCrashTest, ::testing::Values(1, 2, 3, 4, 5, 6, 7, 8),
                         [](const ::testing::TestParamInfo<std::uint64_t> &p) { return "seed" + std::to_string(p.param); });
INSTANTIATE_TEST_SUITE_P(Seeds, WalFailureTest, ::testing::Values(1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<std::uint64_t> &p) { return "seed" + std::to_string(p.param); });
