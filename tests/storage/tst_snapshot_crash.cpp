// SPDX-License-Identifier: Apache-2.0
// Power cuts at every operation point of a node's snapshot life, as the engine lives it: entries
// appended and synced, snapshots of the state machine streamed to disk and committed (temporary
// file, sync, rename, directory sync, pruning of older ones), the log compacted behind the
// snapshot before the newest, a snapshot received from the leader (an incoming file synced and
// renamed, adopted, then the log reset to it) and the log going on after it.
//
// After each cut, with unsynced data dropped, kept or torn, the node starts as the engine does
// (storage::openStartPoint: the newest intact snapshot the log reaches back to, the log reset to
// an adopted snapshot whose install was cut short) and replays the log after it. The state it
// reaches must be exactly the state after the entries up to its last index (no gap, nothing lost
// or invented), and that index must be at least the last acknowledged one (a sync, a compaction or
// a reset that returned).
//
// Replay one case: DENGINE_SNAPSHOT_CRASH_OP=<N> tst_snapshot_crash
#include "faultyfs.h"
#include "raft/bytes.h"
#include "storage/snapshotstore.h"
#include "storage/wal.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <sstream>

using namespace dengine;
using namespace dengine::storage;
using namespace dengine::storage::test;

namespace {

const std::string Dir = "/node";

// The state machine: entry i sets key (i % 37) to "v<i>". Its state at index i is a function of i.
using State = std::map<std::string, std::string>;
std::string keyOf(raft::Index i) { return "k" + std::to_string(i % 37); }
std::string valueOf(raft::Index i) { return "v" + std::to_string(i) + std::string(i % 5 * 40, 'x'); }

State stateAt(raft::Index index)
{
    State s;
    for (raft::Index i = 1; i <= index; ++i)
        s[keyOf(i)] = valueOf(i);
    return s;
}

std::string serialize(const State &s, raft::Index index)
{
    std::string out = "STATE";
    raft::putU64(out, index);
    raft::putU64(out, s.size());
    for (const auto &[k, v] : s) {
        raft::putU64(out, k.size());
        out += k;
        raft::putU64(out, v.size());
        out += v;
    }
    return out;
}

bool deserialize(std::string_view data, raft::Index expectIndex, State &out, std::string &why)
{
    if (data.substr(0, 5) != "STATE") {
        why = "not a state";
        return false;
    }
    raft::ByteReader r{data.substr(5)};
    const std::uint64_t index = r.take(8);
    const std::uint64_t n = r.take(8);
    State s;
    for (std::uint64_t i = 0; r.ok && i < n; ++i) {
        const std::uint64_t kl = r.take(8);
        if (!r.ok || kl > r.in.size())
            break;
        std::string k(r.in.substr(0, kl));
        r.in.remove_prefix(kl);
        const std::uint64_t vl = r.take(8);
        if (!r.ok || vl > r.in.size())
            break;
        s[k] = std::string(r.in.substr(0, vl));
        r.in.remove_prefix(vl);
    }
    if (!r.ok || s.size() != n || index != expectIndex || !r.in.empty()) {
        why = "a malformed state";
        return false;
    }
    out = std::move(s);
    return true;
}

raft::Entry entry(raft::Index i, raft::Term t) { return raft::Entry{t, i, raft::EntryType::Normal, raft::Payload(keyOf(i) + "=" + valueOf(i))}; }

raft::ConfState voters()
{
    raft::ConfState cs;
    cs.voters = {1, 2, 3};
    return cs;
}

// The log as the scenario writes it and as a start reads it back: small segments, so that
// compaction drops whole ones.
WalOptions walOptions(FileSystem &fs)
{
    WalOptions o;
    o.dir = Dir;
    o.segmentBytes = 16384;
    o.cacheBytes = 8192;
    o.fs = &fs;
    o.bootstrap = voters();
    return o;
}

struct ScenarioRun {
    std::unique_ptr<FaultyFileSystem> fs;
    raft::Index acknowledged = 0; // the last index a sync, compaction or reset made durable
    std::string interrupted;      // the step the power cut fell in
    std::string error;            // an unexpected failure of the scenario itself
};

// The scenario, up to a power cut at operation `crashAt` (0: none).
ScenarioRun runUntil(std::uint64_t crashAt)
{
    ScenarioRun run;
    run.fs = std::make_unique<FaultyFileSystem>();
    FaultyFileSystem &fs = *run.fs;
    if (crashAt)
        fs.crashAtOperation(crashAt);
    const WalOptions o = walOptions(fs);
    std::unique_ptr<Wal> wal;
    std::string step = "open";
    const auto failed = [&](const StorageStatus &st) {
        if (st)
            return false;
        if (fs.crashed())
            run.interrupted = step;
        else
            run.error = step + ": " + st.message;
        return true;
    };
    if (failed(Wal::open(o, wal)))
        return run;
    SnapshotStore store(Dir, &fs);
    raft::SnapshotMetadata previous;

    const auto append = [&](raft::Index from, raft::Index to, raft::Term term) {
        step = "append " + std::to_string(from) + ".." + std::to_string(to);
        for (raft::Index i = from; i <= to; i += 10) {
            std::vector<raft::Entry> batch;
            for (raft::Index j = i; j <= std::min(to, i + 9); ++j)
                batch.push_back(entry(j, term));
            if (failed(wal->append(batch, raft::HardState{term, 1, batch.back().index})))
                return false;
            step = "sync after " + std::to_string(batch.back().index);
            if (failed(wal->sync()))
                return false;
            run.acknowledged = batch.back().index;
        }
        return true;
    };
    // The engine's snapshot: streamed in pieces, committed; then the log compacted to the one before.
    const auto snapshot = [&](raft::Index index, raft::Term term) {
        step = "snapshot " + std::to_string(index);
        const raft::SnapshotMetadata meta{index, term, voters()};
        std::unique_ptr<SnapshotWriter> w;
        if (failed(SnapshotWriter::create(store, meta, w)))
            return false;
        const std::string data = serialize(stateAt(index), index);
        for (std::size_t at = 0; at < data.size(); at += 1000)
            if (failed(w->append(std::string_view(data).substr(at, 1000))))
                return false;
        if (failed(w->commit()))
            return false;
        w.reset();
        if (previous.index > 0) {
            step = "compact to " + std::to_string(previous.index);
            if (failed(wal->compact(previous.index, previous.term)))
                return false;
        }
        previous = meta;
        return true;
    };
    // A snapshot from the leader: received into an incoming file (synced, renamed to .recv, as the
    // transport does), adopted, and the log reset to it (as the engine does with the Ready).
    const auto install = [&](raft::Index index, raft::Term term) {
        step = "receive " + std::to_string(index);
        const raft::SnapshotMetadata meta{index, term, voters()};
        // The leader's file, made by a store of its own on another disk, arrives byte for byte.
        FaultyFileSystem leaderDisk;
        SnapshotStore leader("/leader", &leaderDisk);
        std::unique_ptr<SnapshotWriter> w;
        if (!SnapshotWriter::create(leader, meta, w) || !w->append(serialize(stateAt(index), index)) || !w->commit()) {
            run.error = "the leader's snapshot could not be made";
            return false;
        }
        const std::string bytes = *leaderDisk.contents(leader.pathOf(index, term));
        const std::string part = store.incomingPath(9);
        std::unique_ptr<File> f;
        if (failed(StorageStatus::fromIo(fs.open(part, OpenMode::CreateNew, f))))
            return false;
        for (std::size_t at = 0; at < bytes.size(); at += 1000)
            if (failed(StorageStatus::fromIo(f->write(bytes.data() + at, std::min<std::size_t>(1000, bytes.size() - at), at))))
                return false;
        if (failed(StorageStatus::fromIo(f->syncData())))
            return false;
        f.reset();
        raft::SnapshotMetadata checked;
        if (failed(SnapshotStore::inspect(fs, part, checked, nullptr, nullptr, &meta)))
            return false;
        const std::string received = store.receivedPath(index, term);
        if (failed(StorageStatus::fromIo(fs.rename(part, received))))
            return false;
        step = "adopt " + std::to_string(index);
        if (failed(store.adopt(received, meta)))
            return false;
        step = "reset to " + std::to_string(index);
        if (failed(wal->reset(index, term)))
            return false;
        run.acknowledged = index;
        previous = meta;
        return true;
    };

    if (!append(1, 150, 1) || !snapshot(100, 1) || !append(151, 300, 1) || !snapshot(250, 1) || !append(301, 450, 2)
        || !snapshot(400, 2) || !install(800, 3) || !append(801, 900, 3) || !snapshot(880, 3))
        return run;
    return run;
}

// Starts a node on what the power cut left, as the engine does; empty when it checks out.
std::string recoverAndCheck(FaultyFileSystem &fs, raft::Index acknowledged)
{
    const WalOptions o = walOptions(fs);
    std::unique_ptr<Wal> wal;
    if (StorageStatus st = Wal::open(o, wal); !st)
        return "the log does not open: " + st.message;
    SnapshotStore store(Dir, &fs);
    State state;
    raft::Index applied = 0;
    StartPoint start;
    const StorageStatus st = openStartPoint(
        store, *wal,
        [&](const raft::Snapshot &snap, std::string &why) {
            return deserialize(snap.data.view(), snap.metadata.index, state, why);
        },
        start);
    if (!st)
        return "no start point: " + st.message;
    for (const std::string &note : start.notes)
        if (note.find("damaged") != std::string::npos)
            return "a committed snapshot was found damaged: " + note;
    if (start.snapshot) {
        applied = start.snapshot->index;
        // The core starts from the log's view: it must hold the snapshot's point.
        if (wal->term(applied) != std::optional<raft::Term>(start.snapshot->term))
            return "the log does not hold the snapshot's point " + std::to_string(applied);
    }
    if (wal->firstIndex() > applied + 1)
        return "a gap between the snapshot at " + std::to_string(applied) + " and the log from " + std::to_string(wal->firstIndex());
    const raft::Index last = wal->lastIndex();
    if (last < acknowledged)
        return "the log ends at " + std::to_string(last) + ", before the acknowledged " + std::to_string(acknowledged);
    std::vector<raft::Entry> entries;
    if (last > applied && !wal->entries(applied + 1, last + 1, UINT64_MAX, entries))
        return "the log does not give back " + std::to_string(applied + 1) + ".." + std::to_string(last);
    for (const raft::Entry &e : entries) {
        const std::string data = e.data.toString();
        const std::size_t eq = data.find('=');
        if (eq == std::string::npos || data != keyOf(e.index) + "=" + valueOf(e.index))
            return "entry " + std::to_string(e.index) + " holds something never written";
        state[data.substr(0, eq)] = data.substr(eq + 1);
        applied = e.index;
    }
    if (applied != std::max<raft::Index>(last, start.snapshot ? start.snapshot->index : 0))
        return "applied " + std::to_string(applied) + ", not the log's end " + std::to_string(last);
    if (state != stateAt(applied))
        return "the state at " + std::to_string(applied) + " is not the one its entries make";
    return {};
}

} // namespace

TEST(SnapshotCrash, scenarioRunsWholeWithoutACut)
{
    ScenarioRun whole = runUntil(0);
    ASSERT_EQ(whole.error, "");
    ASSERT_EQ(whole.interrupted, "");
    EXPECT_EQ(whole.acknowledged, 900u);
    EXPECT_EQ(recoverAndCheck(*whole.fs, whole.acknowledged), "");
    std::vector<std::pair<raft::Index, raft::Term>> snaps;
    SnapshotStore(Dir, whole.fs.get()).list(snaps);
    ASSERT_EQ(snaps.size(), 2u); // 880 and the leader's 800
    EXPECT_EQ(snaps.front().first, 880u);
}

TEST(SnapshotCrash, everyOperationPoint_recoversAConsistentState)
{
    const std::uint64_t total = runUntil(0).fs->operations();
    ASSERT_GT(total, 100u);
    std::uint64_t first = 1, lastOp = total;
    if (const char *one = std::getenv("DENGINE_SNAPSHOT_CRASH_OP")) {
        first = lastOp = std::strtoull(one, nullptr, 10);
    }
    std::uint64_t cases = 0;
    for (std::uint64_t n = first; n <= lastOp; ++n) {
        for (UnsyncedData mode : {UnsyncedData::Drop, UnsyncedData::Keep, UnsyncedData::TornSectors}) {
            ScenarioRun run = runUntil(n);
            ASSERT_EQ(run.error, "") << "operation " << n;
            ASSERT_NE(run.interrupted, "") << "operation " << n << " was never reached";
            const std::vector<OpTrace> trace = run.fs->trace(1);
            run.fs->crash(mode, n);
            const std::string problem = recoverAndCheck(*run.fs, run.acknowledged);
            ASSERT_EQ(problem, "") << "power cut (" << toString(mode) << ") at operation " << n << " of " << total << ", during "
                                   << run.interrupted << " (" << (trace.empty() ? std::string("?") : trace.back().describe())
                                   << "); replay: DENGINE_SNAPSHOT_CRASH_OP=" << n;
            // Starting again on what the first start left works too (it may have reset the log).
            ASSERT_EQ(recoverAndCheck(*run.fs, run.acknowledged), "") << "second start after a cut at operation " << n;
            ++cases;
        }
    }
    std::printf("%llu power cuts over %llu operation points recovered\n", static_cast<unsigned long long>(cases),
                static_cast<unsigned long long>(total));
}
