// SPDX-License-Identifier: Apache-2.0
//
// Snapshots and log compaction: Raft paper (extended version) §7 and Figure 13 (InstallSnapshot),
// thesis §5. A leader whose log no longer holds what a follower needs sends its snapshot instead;
// the follower replaces its log with it (or, when its log already has the snapshot's last entry,
// keeps what follows and only moves its commit index), makes it durable, and only then answers.

#include "network.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace dengine::raft::test {
namespace {

std::size_t countType(const std::vector<Delivery> &ds, MessageType type, NodeId recipient)
{
    return static_cast<std::size_t>(std::count_if(ds.begin(), ds.end(), [&](const Delivery &d) {
        return d.message.type == type && d.message.to == recipient;
    }));
}

// Node 3 misses `count` writes while cut off; the leader (1) then snapshots at its commit index and
// compacts its log behind it. Returns the snapshot's index.
Index leaveNode3Behind(Network &net, int count, Index keep = 0)
{
    net.elect(1);
    net.isolate(3);
    for (int i = 0; i < count; ++i)
        net.propose(1, "w" + std::to_string(i));
    net.deliverAll();
    const Index commit = net.raft(1).log().committed();
    EXPECT_GT(commit, net.raft(3).log().lastIndex());
    net.snapshotAndCompact(1, commit, keep);
    net.snapshotAndCompact(2, commit, keep);
    net.heal();
    // The transport saw the link to node 3 break: replication to it restarts from what it has.
    net.node(1).reportUnreachable(3);
    return commit;
}

// §7: "the leader must occasionally send snapshots to followers that lag behind" - when the entries
// it needs are compacted away.
TEST(Section7_Snapshots, aFollowerBehindTheCompactedLog_getsTheSnapshot_thenTheEntriesAfterIt)
{
    Network net(3);
    const Index snap = leaveNode3Behind(net, 10);
    const Index before = net.raft(3).log().applied();
    ASSERT_GT(net.raft(1).log().firstIndex(), net.raft(3).log().lastIndex() + 1);
    net.propose(1, "after");
    net.tickAll(); // a heartbeat round: node 3 answers, the leader probes it and finds it behind
    net.deliverAll();

    ASSERT_EQ(net.installed(3), std::vector<Index>{snap});
    EXPECT_EQ(countType(net.deliveries(), MessageType::Snapshot, 3), 1u) << "one snapshot, not one per probe";
    EXPECT_EQ(net.storage(3).snapshot().metadata.index, snap);
    EXPECT_EQ(net.storage(3).snapshot().data.toString(), "state@" + std::to_string(snap));
    EXPECT_EQ(net.storage(3).firstIndex(), snap + 1) << "the old log is replaced, not kept beside it";
    EXPECT_EQ(net.logTerms(3), net.logTerms(1));
    EXPECT_EQ(net.raft(3).log().committed(), net.raft(1).log().committed());
    // Before the snapshot it applied what it had; after it, the entries that follow the snapshot.
    const auto firstAfter = std::find_if(net.applied(3).begin(), net.applied(3).end(), [&](const Entry &e) { return e.index > before; });
    ASSERT_NE(firstAfter, net.applied(3).end());
    EXPECT_EQ(firstAfter->index, snap + 1) << "the state machine goes on from the snapshot";
    EXPECT_EQ(net.appliedData(3).back(), "after");
    EXPECT_EQ(net.raft(1).progress().at(3).state, ProgressState::Replicate);
}

// Figure 13: the follower answers only once the snapshot is saved (the leader counts the answer as
// the follower holding everything up to the snapshot's index).
TEST(Section7_Snapshots, theFollowerAnswers_onlyOnceTheSnapshotIsDurable)
{
    Network net(3);
    const Index snap = leaveNode3Behind(net, 6);
    net.holdWrites(3);
    net.tickAll();
    net.deliverAll();
    ASSERT_EQ(net.installed(3), std::vector<Index>{snap});
    const Ready &rd = *std::find_if(net.readys(3).begin(), net.readys(3).end(), [](const Ready &r) { return r.snapshot.has_value(); });
    EXPECT_TRUE(rd.mustSync);
    EXPECT_TRUE(rd.committedEntries.empty());
    EXPECT_TRUE(std::any_of(rd.messagesAfterPersist.begin(), rd.messagesAfterPersist.end(),
                            [&](const Message &m) { return m.type == MessageType::AppendResponse && m.index == snap; }));
    EXPECT_LT(net.raft(3).log().stableLastIndex(), snap) << "not durable before it is written";
    EXPECT_EQ(net.storage(3).snapshot().metadata.index, 0u);
    EXPECT_LT(net.raft(1).progress().at(3).match, snap);

    net.releaseWrites(3);
    net.deliverAll();
    EXPECT_EQ(net.raft(3).log().stableLastIndex(), net.raft(3).log().lastIndex());
    EXPECT_GE(net.raft(1).progress().at(3).match, snap);
}

// A crash before the snapshot is durable leaves the old log: the node starts from it, and the
// leader sends the snapshot again.
TEST(Section7_Snapshots, aCrashBeforeTheSnapshotIsDurable_losesNothing_andItIsSentAgain)
{
    Network net(3);
    const Index snap = leaveNode3Behind(net, 6);
    const Index before = net.raft(3).log().lastIndex();
    net.holdWrites(3);
    net.tickAll();
    net.deliverAll();
    ASSERT_EQ(net.installed(3), std::vector<Index>{snap});
    net.restart(3);
    EXPECT_EQ(net.raft(3).log().lastIndex(), before);
    EXPECT_EQ(net.storage(3).snapshot().metadata.index, 0u);
    for (int i = 0; i < 3 && net.installed(3).empty(); ++i) {
        net.tickAll();
        net.deliverAll();
    }
    EXPECT_EQ(net.installed(3), std::vector<Index>{snap});
    EXPECT_EQ(net.logTerms(3), net.logTerms(1));
}

// A snapshot that arrives late (the follower committed past it meanwhile) changes nothing.
TEST(Section7_Snapshots, aSnapshotAtOrBelowTheCommitIndex_isIgnored)
{
    Network net(3);
    const Index snap = leaveNode3Behind(net, 4);
    net.tickAll();
    net.deliverAll();
    ASSERT_EQ(net.installed(3), std::vector<Index>{snap});
    const Index commit = net.raft(3).log().committed();
    const Index last = net.raft(3).log().lastIndex();

    Message late = makeMessage(MessageType::Snapshot, 1, 3, net.raft(1).term());
    auto old = std::make_shared<Snapshot>(net.storage(1).snapshot());
    old->metadata.index = snap - 1;
    late.snapshot = old;
    EXPECT_EQ(net.step(late), Status::Ok);
    net.drainAll();
    EXPECT_EQ(net.installed(3).size(), 1u);
    EXPECT_EQ(net.raft(3).log().committed(), commit);
    EXPECT_EQ(net.raft(3).log().lastIndex(), last);
    const auto answers = net.peek(allOf({ofType(MessageType::AppendResponse), from(3)}));
    ASSERT_FALSE(answers.empty());
    EXPECT_EQ(answers.back().index, commit) << "it answers with what it has";
}

// §7: "If the follower receives a snapshot that describes a prefix of its log ... entries following
// the snapshot are still valid and must be retained."
TEST(Section7_Snapshots, aLogThatHasTheSnapshotsLastEntry_keepsWhatFollows_andOnlyCommits)
{
    std::map<NodeId, Preset> presets;
    for (NodeId id : {1, 2, 3})
        presets[id] = Preset{{1, 1, 1, 1, 1, 1}, HardState{1, 1, 1}};
    Network net(3, {}, presets);
    Message m = makeMessage(MessageType::Snapshot, 1, 3, 1);
    auto snap = std::make_shared<Snapshot>();
    snap->metadata.index = 4;
    snap->metadata.term = 1;
    snap->metadata.confState.voters = {1, 2, 3};
    snap->data = Payload("state@4");
    m.snapshot = snap;
    EXPECT_EQ(net.step(m), Status::Ok);
    net.drainAll();
    EXPECT_TRUE(net.installed(3).empty()) << "nothing to replace";
    EXPECT_EQ(net.raft(3).log().lastIndex(), 6u) << "the entries after the snapshot stay";
    EXPECT_EQ(net.raft(3).log().committed(), 4u);
    EXPECT_EQ(net.storage(3).snapshot().metadata.index, 0u);
    const auto answers = net.peek(allOf({ofType(MessageType::AppendResponse), from(3)}));
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers.back().index, 4u);
    EXPECT_FALSE(answers.back().reject);
}

// A follower whose entry at the snapshot's index has another term (from a deposed leader) throws its
// log away for the snapshot: Figure 13, "discard the entire log".
TEST(Section7_Snapshots, aConflictingEntryAtTheSnapshotsIndex_replacesTheWholeLog)
{
    // Node 3 holds a tail of term 1 that nobody else has.
    std::map<NodeId, Preset> presets;
    presets[1] = Preset{{1, 1, 2, 2, 2}, HardState{2, 1, 0}};
    presets[2] = Preset{{1, 1, 2, 2, 2}, HardState{2, 1, 0}};
    presets[3] = Preset{{1, 1, 1, 1, 1, 1}, HardState{1, 0, 0}};
    Network net(3, {}, presets);
    Message m = makeMessage(MessageType::Snapshot, 1, 3, 2);
    auto snap = std::make_shared<Snapshot>();
    snap->metadata.index = 4;
    snap->metadata.term = 2;
    snap->metadata.confState.voters = {1, 2, 3};
    snap->data = Payload("state@4");
    m.snapshot = snap;
    EXPECT_EQ(net.step(m), Status::Ok);
    net.drainAll();
    EXPECT_EQ(net.installed(3), std::vector<Index>{4});
    EXPECT_EQ(net.raft(3).log().lastIndex(), 4u);
    EXPECT_EQ(net.raft(3).log().firstIndex(), 5u);
    EXPECT_EQ(net.raft(3).log().termOrZero(4), 2u);
    EXPECT_EQ(net.raft(3).log().committed(), 4u);
    EXPECT_EQ(net.storage(3).lastIndex(), 4u);
    EXPECT_EQ(net.raft(3).leader(), 1u);
}

// A snapshot that is lost is sent again once the transport reports it, and only then: while one is
// on its way the follower gets nothing else.
TEST(Section7_Snapshots, aLostSnapshot_isSentAgainAfterTheReport)
{
    Network net(3);
    const Index snap = leaveNode3Behind(net, 5);
    net.tickAll();
    net.deliver(ofType(MessageType::HeartbeatResponse));
    net.deliver(allOf({ofType(MessageType::Append), to(3)}));
    net.deliver(allOf({ofType(MessageType::AppendResponse), from(3)}));
    ASSERT_EQ(net.drop(ofType(MessageType::Snapshot)), 1u);
    EXPECT_EQ(net.raft(1).progress().at(3).state, ProgressState::Snapshot);
    net.tickAll(3);
    net.drainAll();
    EXPECT_EQ(net.count(allOf({ofType(MessageType::Snapshot), to(3)})), 0u) << "paused while one is on its way";
    EXPECT_EQ(net.count(allOf({ofType(MessageType::Append), to(3)})), 0u);

    net.node(1).reportSnapshot(3, false);
    EXPECT_EQ(net.raft(1).progress().at(3).state, ProgressState::Probe);
    net.tickAll();
    net.deliverAll();
    EXPECT_EQ(net.installed(3), std::vector<Index>{snap});
    EXPECT_EQ(net.logTerms(3), net.logTerms(1));
}

// A node restarts from a compacted log: its state machine starts at the snapshot (Config::applied
// defaults to it), and it commits at least that far even if its stored commit index is older.
TEST(Section7_Snapshots, aRestart_startsFromTheSnapshot_andReplaysOnlyTheLogAfterIt)
{
    Network net(3);
    net.elect(1);
    for (int i = 0; i < 8; ++i)
        net.propose(1, "w" + std::to_string(i));
    net.deliverAll();
    const Index snap = net.raft(2).log().applied();
    ASSERT_GT(snap, 5u);
    net.snapshotAndCompact(2, snap - 3, 1);
    net.propose(1, "later");
    net.deliverAll();
    net.storage(2).setHardState(HardState{net.storage(2).hardState().term, net.storage(2).hardState().vote, 1});
    net.restart(2);
    EXPECT_EQ(net.raft(2).log().committed(), snap - 3);
    EXPECT_EQ(net.raft(2).log().firstIndex(), snap - 3);
    net.tickAll();
    net.deliverAll();
    ASSERT_FALSE(net.applied(2).empty());
    EXPECT_EQ(net.applied(2).front().index, snap - 2) << "only the entries after the snapshot are applied again";
    EXPECT_EQ(net.appliedData(2).back(), "later");
}

// The storage refuses a snapshot it cannot make and a compaction the snapshot does not cover.
TEST(Section7_Snapshots, memoryStorage_refusesSnapshotsAndCompactionsItCannotBackUp)
{
    MemoryStorage s({1});
    ConfState one;
    one.voters = {1};
    ASSERT_TRUE(s.append({Entry{1, 1, EntryType::Normal, Payload("a")}, Entry{1, 2, EntryType::Normal, Payload("b")},
                          Entry{2, 3, EntryType::Normal, Payload("c")}}));
    EXPECT_FALSE(s.compact(1)) << "no snapshot covers index 1";
    EXPECT_FALSE(s.createSnapshot(4, one, Payload("x"))) << "beyond the log";
    ASSERT_TRUE(s.createSnapshot(2, one, Payload("x")));
    EXPECT_FALSE(s.createSnapshot(2, one, Payload("y"))) << "not newer than the one held";
    EXPECT_FALSE(s.compact(3));
    ASSERT_TRUE(s.compact(2));
    EXPECT_EQ(s.firstIndex(), 3u);
    Term t = 0;
    EXPECT_EQ(s.term(2, t), StorageError::None);
    EXPECT_EQ(t, 1u);
    EXPECT_EQ(s.term(1, t), StorageError::Compacted);
    std::vector<Entry> out;
    EXPECT_EQ(s.entries(2, 4, UINT64_MAX, out), StorageError::Compacted);
    Snapshot older;
    older.metadata.index = 1;
    older.metadata.term = 1;
    EXPECT_FALSE(s.applySnapshot(older));
    EXPECT_EQ(s.lastIndex(), 3u);
}

} // namespace
} // namespace dengine::raft::test
