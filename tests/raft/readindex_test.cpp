// SPDX-License-Identifier: Apache-2.0
//
// Linearizable reads without the log: thesis §6.4 (ReadIndex) and §6.4.1 (leases).

#include "network.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace dengine::raft::test {
namespace {

std::size_t occurrences(const std::vector<std::uint64_t> &contexts, std::uint64_t context)
{
    return static_cast<std::size_t>(std::count(contexts.begin(), contexts.end(), context));
}

// ---- §6.4 ReadIndex ---------------------------------------------------------------------------

// §6.4 (thesis), step 1: "If the leader has not yet marked an entry from its current term committed,
// it waits until it has done so." Here the new leader's commit index (0) lags the log it inherited;
// answering with it would return stale data.
TEST(Section6_4_ReadIndex, LeaderAnswersOnlyAfterCommittingAnEntryOfItsTerm)
{
    const Preset inherited{{1, 1}, HardState{1, NoNode, 0}};
    Network net(3, {}, {{1, inherited}, {2, inherited}, {3, inherited}});
    net.campaign(1);
    for (int i = 0; i < 5 && net.raft(1).role() != Role::Leader; ++i)
        net.deliver([](const Message &m) { return m.type != MessageType::Append; });
    ASSERT_EQ(net.raft(1).role(), Role::Leader);
    ASSERT_FALSE(net.raft(1).committedInTerm());

    EXPECT_EQ(net.readIndex(1, 42), Status::Ok);
    net.drain(1);
    EXPECT_TRUE(net.readStates(1).empty());
    EXPECT_EQ(net.count(ofType(MessageType::Heartbeat)), 0u) << "no round before the no-op commits";

    net.deliverAll();
    ASSERT_TRUE(net.raft(1).committedInTerm());
    EXPECT_EQ(net.readStates(1), (std::vector<ReadState>{{42, 3}})) << "index 3: the no-op, after the inherited 1 and 2";
}

// §6.4 (thesis), step 3: "It issues a new round of heartbeats and waits for their acknowledgments
// from a majority of the cluster."
TEST(Section6_4_ReadIndex, LeaderConfirmsWithAQuorumHeartbeatRound)
{
    Network net(5);
    net.elect(1);
    const Index commit = net.raft(1).log().committed();
    net.readIndex(1, 7);
    net.drain(1);
    const std::vector<Message> round = net.peek(ofType(MessageType::Heartbeat));
    ASSERT_EQ(round.size(), 4u);
    std::set<std::uint64_t> contexts;
    for (const Message &m : round)
        contexts.insert(m.context);
    EXPECT_EQ(contexts.size(), 1u) << "one round, one number";
    EXPECT_TRUE(net.readStates(1).empty());

    net.deliver(allOf({ofType(MessageType::Heartbeat), to(2)}));
    net.deliver(allOf({ofType(MessageType::HeartbeatResponse), from(2)}));
    EXPECT_TRUE(net.readStates(1).empty()) << "leader and node 2 are two of five";

    net.deliver(allOf({ofType(MessageType::Heartbeat), to(3)}));
    net.deliver(allOf({ofType(MessageType::HeartbeatResponse), from(3)}));
    EXPECT_EQ(net.readStates(1), (std::vector<ReadState>{{7, commit}}));
}

// §6.4 (thesis): "Once these acknowledgments are received, the leader knows that there could not
// have existed a leader for a greater term at the moment it sent the heartbeats." That holds only
// for heartbeats sent after the read arrived: answers to an earlier round prove nothing about it.
TEST(Section6_4_ReadIndex, ReadIsConfirmedOnlyByARoundStartedAfterIt)
{
    Network net(3);
    net.elect(1);
    net.tick(1); // an ordinary heartbeat round, before the read
    net.drain(1);
    const std::vector<Message> before = net.peek(ofType(MessageType::Heartbeat));
    ASSERT_EQ(before.size(), 2u);
    const std::uint64_t oldRound = before[0].context;

    net.readIndex(1, 8);
    net.drain(1);
    const auto isOld = [oldRound](const Message &m) { return m.type == MessageType::Heartbeat && m.context == oldRound; };
    net.deliver(isOld);
    net.deliver(ofType(MessageType::HeartbeatResponse));
    EXPECT_TRUE(net.readStates(1).empty()) << "acknowledgements of the earlier round do not count";

    net.deliverAll();
    EXPECT_EQ(net.readStates(1).size(), 1u);
}

// §6.4 (thesis): "To improve efficiency further, the leader can amortize the cost of confirming its
// leadership: it can use a single round of heartbeats for any number of read-only queries that it
// has accumulated."
TEST(Section6_4_ReadIndex, ReadsBetweenTwoReadysShareOneHeartbeatRound)
{
    Network net(3);
    net.elect(1);
    const Index commit = net.raft(1).log().committed();
    for (std::uint64_t ctx = 1; ctx <= 100; ++ctx)
        ASSERT_EQ(net.readIndex(1, ctx), Status::Ok);
    net.drain(1);
    EXPECT_EQ(net.count(ofType(MessageType::Heartbeat)), 2u) << "one heartbeat per follower for all hundred reads";

    net.deliverAll();
    ASSERT_EQ(net.readStates(1).size(), 100u);
    for (std::uint64_t ctx = 1; ctx <= 100; ++ctx)
        EXPECT_EQ(net.readStates(1)[ctx - 1], (ReadState{ctx, commit}));
}

// §6.4 (thesis): "If the partitioned leader responded to a read-only query without consulting the
// other servers, it would return stale results, which are not linearizable." A partitioned leader
// never answers; after the expiry (two election timeouts) the read is handed back as dropped.
TEST(Section6_4_ReadIndex, PartitionedLeaderNeverAnswersAndDropsTheReadAfterTheExpiry)
{
    Network net(3, [](Config &c) { c.checkQuorum = false; }); // so it stays leader throughout
    net.elect(1);
    net.isolate(1);
    net.readIndex(1, 9);
    const int electionTick = net.config(1).electionTick;
    for (int i = 0; i < electionTick; ++i) {
        net.tick(1);
        net.deliverAll();
    }
    EXPECT_TRUE(net.droppedReads(1).empty()) << "not expired yet";
    int ticks = electionTick;
    while (net.droppedReads(1).empty() && ticks < 4 * electionTick) {
        net.tick(1);
        net.deliverAll();
        ++ticks;
    }
    EXPECT_EQ(net.droppedReads(1), std::vector<std::uint64_t>{9});
    EXPECT_LE(ticks, 2 * electionTick + 1);
    EXPECT_TRUE(net.readStates(1).empty());
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
}

// With check-quorum the partitioned leader steps down first, and its pending reads are dropped then.
TEST(Section6_4_ReadIndex, PartitionedLeaderDropsItsReadsWhenItStepsDown)
{
    Network net(3);
    net.elect(1);
    net.isolate(1);
    net.readIndex(1, 10);
    const int electionTick = net.config(1).electionTick;
    for (int i = 0; i < 2 * electionTick && net.raft(1).role() == Role::Leader; ++i) {
        net.tick(1);
        net.deliverAll();
    }
    ASSERT_EQ(net.raft(1).role(), Role::Follower);
    net.drain(1);
    EXPECT_EQ(net.droppedReads(1), std::vector<std::uint64_t>{10});
    EXPECT_TRUE(net.readStates(1).empty());
}

// §6.4 (thesis): "the follower could issue a request to the leader that just asked for a current
// readIndex". The answer carries the leader's commit index, which may be ahead of the follower's.
TEST(Section6_4_ReadIndex, FollowerReadGoesThroughTheLeaderAndReturnsItsCommitIndex)
{
    Network net(3);
    net.elect(1);
    net.propose(1, "a");
    net.deliver(ofType(MessageType::Append));
    net.deliver(ofType(MessageType::AppendResponse));
    net.drop(allOf({ofType(MessageType::Append), to(2)})); // node 2 misses the new commit index
    net.deliverAll();
    const Index leaderCommit = net.raft(1).log().committed();
    ASSERT_LT(net.raft(2).log().committed(), leaderCommit);

    for (std::uint64_t ctx = 1; ctx <= 5; ++ctx)
        ASSERT_EQ(net.readIndex(2, ctx), Status::Ok);
    net.drain(2);
    EXPECT_EQ(net.count(allOf({ofType(MessageType::ReadIndex), between(2, 1)})), 1u) << "one request for the batch";

    net.deliverAll();
    ASSERT_EQ(net.readStates(2).size(), 5u);
    for (std::uint64_t ctx = 1; ctx <= 5; ++ctx)
        EXPECT_EQ(net.readStates(2)[ctx - 1], (ReadState{ctx, leaderCommit}));
    EXPECT_TRUE(net.readStates(1).empty()) << "the leader's own ReadStates are for its own reads";
}

// Ready::droppedReads: "Reads that will get no answer (no leader, leadership changed...)".
TEST(Section6_4_ReadIndex, ReadsWithoutALeaderAreRefusedOrDropped)
{
    Network net(3, classicRaft);
    EXPECT_EQ(net.readIndex(2, 1), Status::NoLeader);

    net.elect(1);
    EXPECT_EQ(net.readIndex(2, 11), Status::Ok);
    // Before node 2 forwards the read, a candidate of a newer term makes it forget the leader.
    Message vote = makeMessage(MessageType::Vote, 3, 2, net.raft(2).term() + 1);
    vote.index = net.raft(3).log().lastIndex();
    vote.logTerm = net.raft(3).log().lastTerm();
    net.step(vote);
    ASSERT_EQ(net.raft(2).leader(), NoNode);
    net.drain(2);
    EXPECT_EQ(net.droppedReads(2), std::vector<std::uint64_t>{11});
    EXPECT_EQ(net.count(ofType(MessageType::ReadIndex)), 0u);
}

TEST(Section6_4_ReadIndex, ForwardedReadsAreDroppedWhenTheLeaderChanges)
{
    Network net(3, classicRaft);
    net.elect(1);
    net.readIndex(2, 21);
    net.drain(2);
    ASSERT_EQ(net.drop(ofType(MessageType::ReadIndex)), 1u); // the request is lost on the way
    EXPECT_TRUE(net.droppedReads(2).empty());

    net.isolate(1);
    net.elect(3);
    EXPECT_EQ(net.droppedReads(2), std::vector<std::uint64_t>{21});
    EXPECT_TRUE(net.readStates(2).empty());
}

// Reads waiting at a leader that steps down are dropped, its own and forwarded ones alike, and each
// is reported exactly once.
TEST(Section6_4_ReadIndex, LeaderSteppingDownDropsEveryWaitingReadOnce)
{
    Network net(3, classicRaft);
    net.elect(1);
    net.readIndex(1, 31);
    net.readIndex(2, 32);
    net.deliver(ofType(MessageType::ReadIndex));
    net.drop(ofType(MessageType::Heartbeat)); // no round completes

    net.campaign(3);
    net.deliver(allOf({ofType(MessageType::Vote), between(3, 1)}));
    EXPECT_NE(net.raft(1).role(), Role::Leader);
    net.deliverAll();
    EXPECT_EQ(occurrences(net.droppedReads(1), 31), 1u);
    EXPECT_EQ(occurrences(net.droppedReads(2), 32), 1u);
    EXPECT_TRUE(net.readStates(1).empty());
    EXPECT_TRUE(net.readStates(2).empty());
}

// ---- §6.4.1 Leases ----------------------------------------------------------------------------

// §6.4.1 (thesis): "The lease approach assumes a bound on clock drift across servers"; it is only
// sound when followers refuse votes within the lease, which is the check-quorum rule.
TEST(Section6_4_LeaseReads, ConfigRefusesLeaseReadsWithoutCheckQuorum)
{
    Config c;
    c.id = 1;
    c.readOnlyOption = ReadOnlyOption::LeaseBased;
    c.checkQuorum = false;
    const std::string problem = c.validate();
    EXPECT_EQ(problem.rfind("readOnlyOption:", 0), 0u) << problem;
    MemoryStorage storage({1, 2, 3});
    EXPECT_THROW(RawNode(c, storage), std::invalid_argument);
    c.checkQuorum = true;
    EXPECT_EQ(c.validate(), "");
}

// §6.4.1 (thesis): "it would extends its lease to start + election timeout / clock drift bound, since
// the followers shouldn't time out before then." Here the lease lasts electionTick - 1 -
// leaseDriftTicks ticks from the start of the acknowledged round (Config::leaseDriftTicks). Within
// it a read needs no round; once it has run out, the leader falls back to a heartbeat round.
TEST(Section6_4_LeaseReads, FreshLeaseAnswersWithoutARoundAndExpiredLeaseFallsBackToOne)
{
    Network net(3, [](Config &c) { c.readOnlyOption = ReadOnlyOption::LeaseBased; });
    const int electionTick = net.config(1).electionTick;
    const int lease = electionTick - 1 - net.config(1).leaseDriftTicks;
    net.tickAll(electionTick); // a restarted LeaseBased node refuses votes for an election timeout
    net.drop(anything());
    net.elect(1);
    net.tick(1); // a heartbeat round a quorum acknowledges: the lease starts with it
    net.deliverAll();
    const Index commit = net.raft(1).log().committed();

    net.readIndex(1, 5);
    net.drain(1);
    EXPECT_EQ(net.readStates(1), (std::vector<ReadState>{{5, commit}}));
    EXPECT_EQ(net.count(ofType(MessageType::Heartbeat)), 0u) << "answered from the lease";

    net.isolate(1);
    net.tick(1, lease - 1);
    net.drop(anything());
    net.readIndex(1, 6);
    net.drain(1);
    EXPECT_EQ(net.readStates(1).size(), 2u) << "the lease still holds one tick before its end";
    EXPECT_EQ(net.count(ofType(MessageType::Heartbeat)), 0u);

    net.tick(1);
    net.drop(anything());
    net.readIndex(1, 7);
    net.drain(1);
    EXPECT_EQ(net.readStates(1).size(), 2u) << "the lease ran out: a round is needed";
    EXPECT_EQ(net.count(ofType(MessageType::Heartbeat)), 2u);

    net.heal();
    net.deliverAll();
    ASSERT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.readStates(1).back(), (ReadState{7, commit}));
}

// ---- The checks can fail ----------------------------------------------------------------------

// With the injected bug a partitioned leader answers at once: exactly what the partition test above
// asserts cannot happen.
TEST(InjectedBugs, ReadWithoutQuorumLetsAPartitionedLeaderAnswer)
{
    Network net(3, [](Config &c) { c.bugs.readWithoutQuorum = c.id == 1; });
    net.elect(1);
    net.isolate(1);
    net.readIndex(1, 9);
    net.drain(1);
    EXPECT_EQ(net.readStates(1).size(), 1u);
}

} // namespace
} // namespace dengine::raft::test
