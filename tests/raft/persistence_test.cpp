// SPDX-License-Identifier: Apache-2.0
//
// Persistence and the Ready contract: Raft paper (extended version) Figure 2 and §5.5; thesis §3.8
// (persisted state) and §10.2.1 (the leader writing its log in parallel with replication).

#include "network.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace dengine::raft::test {
namespace {

bool hasMessage(const std::vector<Message> &messages, MessageType type, NodeId recipient)
{
    return std::any_of(messages.begin(), messages.end(), [&](const Message &m) { return m.type == type && m.to == recipient; });
}

std::size_t deliveredFrom(const Network &net, MessageType type, NodeId sender)
{
    return static_cast<std::size_t>(std::count_if(net.deliveries().begin(), net.deliveries().end(), [&](const Delivery &d) {
        return d.message.type == type && d.message.from == sender;
    }));
}

// Figure 2: "Persistent state on all servers: (Updated on stable storage before responding to
// RPCs)". A vote leaves in messagesAfterPersist and waits for the write that records it.
TEST(Section5_5_Persistence, VoteLeavesOnlyOnceTheVoteIsDurable)
{
    Network net(3, classicRaft);
    net.holdWrites(2);
    net.campaign(1);
    net.deliver(allOf({ofType(MessageType::Vote), to(2)}));
    EXPECT_EQ(net.raft(2).vote(), 1u);
    EXPECT_EQ(net.storage(2).hardState().vote, NoNode) << "the vote is not durable yet";
    EXPECT_EQ(net.count(allOf({ofType(MessageType::VoteResponse), from(2)})), 0u);
    ASSERT_FALSE(net.readys(2).empty());
    const Ready &rd = net.readys(2).back();
    EXPECT_TRUE(hasMessage(rd.messagesAfterPersist, MessageType::VoteResponse, 1));
    EXPECT_FALSE(hasMessage(rd.messages, MessageType::VoteResponse, 1));
    EXPECT_TRUE(rd.mustSync);

    net.releaseWrites(2);
    EXPECT_EQ(net.storage(2).hardState().vote, 1u);
    EXPECT_EQ(net.count(allOf({ofType(MessageType::VoteResponse), from(2)})), 1u);
}

// Figure 2 again, for the log: an AppendEntries acknowledgement says the entries are stored, so it
// waits until they are.
TEST(Section5_5_Persistence, AppendResponseLeavesOnlyOnceTheEntriesAreDurable)
{
    Network net(3);
    net.elect(1);
    const std::size_t answered = deliveredFrom(net, MessageType::AppendResponse, 2);
    net.holdWrites(2);
    net.propose(1, "x");
    net.deliverAll();
    const Index x = net.raft(1).log().lastIndex();
    EXPECT_EQ(net.raft(2).log().lastIndex(), x) << "node 2 has the entry in memory";
    EXPECT_LT(net.storage(2).lastIndex(), x);
    EXPECT_LT(net.raft(1).progress().at(2).match, x) << "the leader heard nothing from node 2";
    EXPECT_EQ(deliveredFrom(net, MessageType::AppendResponse, 2), answered);

    net.releaseWrites(2);
    EXPECT_EQ(net.storage(2).lastIndex(), x);
    net.deliverAll();
    EXPECT_EQ(net.raft(1).progress().at(2).match, x);
}

// Thesis §10.2.1: "The leader may even commit an entry before it has been written to its own disk,
// if a majority of followers have written it to their disks; this is still safe." So the leader's
// Appends leave in `messages`, in the same Ready as the entries it is writing.
TEST(Section5_5_Persistence, LeaderSendsAppendsBeforeItsOwnWriteIsDurable)
{
    Network net(3);
    net.elect(1);
    net.holdWrites(1);
    net.propose(1, "x");
    ASSERT_EQ(net.drain(1), 1u);
    const Ready &rd = net.readys(1).back();
    ASSERT_EQ(rd.entries.size(), 1u);
    EXPECT_EQ(rd.entries[0].data.toString(), "x");
    EXPECT_TRUE(hasMessage(rd.messages, MessageType::Append, 2));
    EXPECT_TRUE(hasMessage(rd.messages, MessageType::Append, 3));
    EXPECT_EQ(net.pendingWrites(1), 1u);
    EXPECT_LT(net.storage(1).lastIndex(), rd.entries[0].index);
    EXPECT_EQ(net.count(ofType(MessageType::Append)), 2u) << "on the wire while the leader's write is pending";
}

// Thesis §3.8 and §10.2.1: an entry counts toward commitment on a server only once it is on that
// server's disk; the leader is no exception.
TEST(Section5_5_Persistence, LeaderCountsItselfTowardCommitOnlyOnceItsWriteIsDurable)
{
    Network net(3);
    net.elect(1);
    net.isolate(3);
    net.holdWrites(1);
    net.propose(1, "x");
    net.deliverAll();
    const Index x = net.raft(1).log().lastIndex();
    EXPECT_EQ(net.raft(1).progress().at(2).match, x);
    EXPECT_LT(net.raft(1).log().committed(), x) << "node 2 alone is not a majority of three";

    net.releaseWrites(1);
    EXPECT_EQ(net.raft(1).log().committed(), x) << "the leader's own write makes the majority";
    net.deliverAll();
    EXPECT_EQ(net.appliedData(1), std::vector<std::string>{"x"});
    EXPECT_EQ(net.appliedData(2), std::vector<std::string>{"x"});
}

// Thesis §10.2.1 (quoted above): commitment may come from the followers alone, but the leader's
// state machine still waits for the entry to be durable locally (Ready field 5).
TEST(Section5_5_Persistence, LeaderAppliesAnEntryCommittedByFollowersOnlyOnceItIsDurableLocally)
{
    Network net(3);
    net.elect(1);
    net.holdWrites(1);
    net.propose(1, "x");
    net.deliverAll();
    const Index x = net.raft(1).log().lastIndex();
    EXPECT_EQ(net.raft(1).log().committed(), x) << "nodes 2 and 3 are a majority";
    EXPECT_TRUE(net.appliedData(1).empty());
    EXPECT_EQ(net.appliedData(2), std::vector<std::string>{"x"});

    net.releaseWrites(1);
    net.drain(1);
    EXPECT_EQ(net.appliedData(1), std::vector<std::string>{"x"});
}

// The same rule on a follower that learns the commit index before its own write is durable.
TEST(Section5_5_Persistence, FollowerAppliesACommittedEntryOnlyOnceItIsDurableLocally)
{
    Network net(3);
    net.elect(1);
    net.holdWrites(2);
    net.propose(1, "x");
    net.deliverAll();
    const Index x = net.raft(1).log().lastIndex();
    EXPECT_EQ(net.raft(2).log().committed(), x) << "the leader told node 2 the entry is committed";
    EXPECT_TRUE(net.appliedData(2).empty()) << "but node 2 has not made it durable";

    net.releaseWrites(2);
    net.drain(2);
    EXPECT_EQ(net.appliedData(2), std::vector<std::string>{"x"});
}

// Thesis §3.8: "each server persists its current term and vote; this is necessary to prevent the
// server from voting twice in the same term". A restart from storage keeps term, vote and log.
TEST(Section5_5_Persistence, RestartKeepsTermVoteAndLog)
{
    Network net(3);
    net.elect(1);
    net.propose(1, "a");
    net.propose(1, "b");
    net.deliverAll();
    const Term term = net.raft(2).term();
    const NodeId vote = net.raft(2).vote();
    const Index commit = net.raft(2).log().committed();
    const std::vector<std::uint64_t> log = net.logTerms(2);

    net.restart(2);
    EXPECT_EQ(net.raft(2).term(), term);
    EXPECT_EQ(net.raft(2).vote(), vote);
    EXPECT_EQ(net.logTerms(2), log);
    EXPECT_EQ(net.raft(2).log().committed(), commit) << "the persisted commit index";
    EXPECT_EQ(net.raft(2).role(), Role::Follower);
    EXPECT_EQ(net.raft(2).leader(), NoNode);

    // The state machine is rebuilt by applying the log again (Config::applied = 0).
    EXPECT_TRUE(net.applied(2).empty());
    net.drain(2);
    EXPECT_EQ(net.appliedData(2), (std::vector<std::string>{"a", "b"}));
}

// Thesis §3.8 (quoted above): a voter that restarts still refuses a second candidate in the term.
TEST(Section5_5_Persistence, RestartedVoterDoesNotVoteTwiceInATerm)
{
    Network net(3, classicRaft);
    net.campaign(1);
    net.campaign(2);
    net.deliver(allOf({ofType(MessageType::Vote), between(1, 3)}));
    net.drop(anything());
    net.restart(3);
    EXPECT_EQ(net.raft(3).term(), 1u);
    EXPECT_EQ(net.raft(3).vote(), 1u);

    Message request = makeMessage(MessageType::Vote, 2, 3, 1);
    net.step(request);
    const std::vector<Message> answer = net.take(allOf({ofType(MessageType::VoteResponse), to(2)}));
    ASSERT_EQ(answer.size(), 1u);
    EXPECT_TRUE(answer[0].reject);
}

// Figure 2 from the other side: what was not made durable is lost in a crash, and so are the
// messages that attested to it, because they never left.
TEST(Section5_5_Persistence, UnsyncedVoteIsLostTogetherWithItsResponse)
{
    Network net(3, classicRaft);
    net.isolate(2);
    net.holdWrites(3);
    net.campaign(1);
    net.deliver(allOf({ofType(MessageType::Vote), to(3)}));
    EXPECT_EQ(net.raft(3).vote(), 1u);

    net.restart(3);
    EXPECT_EQ(net.raft(3).term(), 0u);
    EXPECT_EQ(net.raft(3).vote(), NoNode);
    net.deliverAll();
    EXPECT_EQ(deliveredFrom(net, MessageType::VoteResponse, 3), 0u);
    EXPECT_EQ(net.raft(1).role(), Role::Candidate);
}

// Config::applied: a node restarted with the index its state machine had applied does not get those
// entries again; the next batch follows on directly.
TEST(Section5_5_Persistence, RestartWithAppliedIndexSkipsTheReplay)
{
    Network net(3);
    net.elect(1);
    net.propose(1, "a");
    net.deliverAll();
    const Index applied = net.applied(2).back().index;
    net.restart(2, [applied](Config &c) { c.applied = applied; });
    net.drain(2);
    EXPECT_TRUE(net.applied(2).empty());
    net.propose(1, "b");
    net.deliverAll();
    ASSERT_EQ(net.applied(2).size(), 1u);
    EXPECT_EQ(net.applied(2)[0].index, applied + 1);
    EXPECT_EQ(net.appliedData(2), std::vector<std::string>{"b"});
}

// Ready field 4: messagesAfterPersist go "only after the writes of this Ready, and of every earlier
// one, are durable". Writes become durable in order, and each acknowledgement covers its own.
TEST(ReadyContract, WritesBecomeDurableInOrderWithTheirMessages)
{
    Network net(3);
    net.elect(1);
    net.holdWrites(2);
    net.propose(1, "a");
    net.deliver(allOf({ofType(MessageType::Append), to(2)}));
    net.propose(1, "b");
    net.deliver(allOf({ofType(MessageType::Append), to(2)}));
    ASSERT_EQ(net.pendingWrites(2), 2u);
    const Index a = net.raft(1).log().lastIndex() - 1;
    const auto acksFromTwo = allOf({ofType(MessageType::AppendResponse), from(2)});
    EXPECT_EQ(net.count(acksFromTwo), 0u);
    EXPECT_LT(net.raft(2).log().stableLastIndex(), a);

    net.persist(2, 1);
    EXPECT_EQ(net.raft(2).log().stableLastIndex(), a);
    EXPECT_EQ(net.storage(2).lastIndex(), a);
    const std::vector<Message> first = net.peek(acksFromTwo);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].index, a) << "only the first write's acknowledgement leaves";

    net.persist(2);
    EXPECT_EQ(net.raft(2).log().stableLastIndex(), a + 1);
    EXPECT_EQ(net.count(acksFromTwo), 2u);
}

// Ready::mustSync: "false only when the sole change is the commit index, which Raft can recover if
// lost" (thesis §3.8: "the commit index, which can safely be reinitialized to zero on a restart").
TEST(ReadyContract, OnlyACommitIndexChangeNeedsNoSync)
{
    Network net(3);
    net.elect(1);
    net.clearReadys();
    net.propose(1, "x");
    net.deliverAll();
    bool sawCommitOnly = false, sawEntries = false;
    for (const Ready &rd : net.readys(2)) {
        if (!rd.entries.empty()) {
            sawEntries = true;
            EXPECT_TRUE(rd.mustSync);
        } else if (rd.hardState) {
            sawCommitOnly = true;
            EXPECT_FALSE(rd.mustSync);
        }
    }
    EXPECT_TRUE(sawEntries);
    EXPECT_TRUE(sawCommitOnly);
}

// Ready field 5: committed entries come in order, each batch following the previous one, and a
// batch stays within Config::maxCommittedSizePerReady (at least one entry).
TEST(ReadyContract, CommittedEntriesComeInOrderInBoundedBatches)
{
    const std::uint64_t entryBytes = EntryOverheadBytes + 4;
    Network net(3, [entryBytes](Config &c) { c.maxCommittedSizePerReady = 2 * entryBytes; });
    net.elect(1);
    for (int i = 0; i < 7; ++i)
        net.propose(1, "e" + std::to_string(i) + "xx");
    net.deliverAll();
    Index next = 1;
    std::size_t batches = 0;
    for (const Ready &rd : net.readys(3)) {
        if (rd.committedEntries.empty())
            continue;
        ++batches;
        EXPECT_LE(rd.committedEntries.size(), 2u);
        for (const Entry &e : rd.committedEntries)
            EXPECT_EQ(e.index, next++);
    }
    EXPECT_EQ(next, 9u) << "the no-op and seven proposals";
    EXPECT_GE(batches, 4u);
}

// A write's acknowledgement names that write, not the (index, term) of its last entry: the same
// (index, term) can come back after a truncation, and an old write's acknowledgement must not pass
// for the new one's. Follower 3 keeps three writes on its disk while leadership moves:
//   A: 2@1, 3@1 from leader 1 (term 1);
//   B: 2@2 from leader 2 (term 2), whose log was only [1@1]: 3 truncates;
//   C: 2@1, 3@1 again, from 1 re-elected in term 3 by nodes with short logs, with commit 3.
// A's acknowledgement (3, 1) matches the re-appended entry, but only C made it durable: after A and
// B the disk holds [1@1, 2@2]. Before the fix the core took 1..3 as durable, read 2@2 back from disk
// as committed and crashed building the next Ready.
//
// Builds the state with A, B and C written but none durable; returns how many of node 3's pending
// writes go up to B.
std::size_t threeWritesOfOneIndexInFlight(Network &net)
{
    net.elect(1);
    net.deliverAll();
    net.holdWrites(3);
    EXPECT_EQ(net.propose(1, "a"), Status::Ok);
    EXPECT_EQ(net.propose(1, "b"), Status::Ok);
    net.deliver(allOf({ofType(MessageType::Append), between(1, 3)}));
    net.drop(from(1));
    EXPECT_EQ(net.pendingWrites(3), 1u) << "write A";
    EXPECT_EQ(net.raft(3).log().lastIndex(), 3u);

    // Leader 2 of term 2, elected by 4 and 5 (logs [1@1]); only node 3 hears from it.
    net.isolate(1);
    net.campaign(2);
    net.deliver(ofType(MessageType::Vote));
    net.deliver(ofType(MessageType::VoteResponse));
    EXPECT_EQ(net.raft(2).role(), Role::Leader);
    net.deliver(allOf({ofType(MessageType::Append), between(2, 3)}));
    net.drop(anything());
    const std::size_t throughB = net.pendingWrites(3); // B, and the new term before it
    EXPECT_GE(throughB, 2u);
    EXPECT_EQ(net.logTerms(3), (std::vector<std::uint64_t>{1, 2}));

    // Node 1 hears of term 2 (a heartbeat of 2's, which carries no entries) and steps down; then it
    // is elected in term 3 by 4 and 5 and commits its no-op with them.
    Message heartbeat = makeMessage(MessageType::Heartbeat, 2, 1, net.raft(2).term());
    heartbeat.commit = 1;
    net.step(heartbeat);
    EXPECT_EQ(net.raft(1).role(), Role::Follower);
    net.drop(anything());
    net.heal();
    net.isolate(2);
    const auto awayFrom3 = [](const Message &m) { return m.from != 3 && m.to != 3; };
    for (int attempt = 0; attempt < 3 && net.raft(1).role() != Role::Leader; ++attempt) {
        net.campaign(1); // its first try, in term 2, finds 4 and 5 voted already
        for (int i = 0; i < 5; ++i)
            net.deliver(awayFrom3);
    }
    for (int i = 0; i < 20 && net.raft(1).log().committed() < 4; ++i)
        net.deliver(awayFrom3);
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.raft(1).log().committed(), 4u);
    net.drop(anything());

    // What node 1 sends node 3 once its probe found the match point: 2@1, 3@1 and its commit.
    Message append = makeMessage(MessageType::Append, 1, 3, net.raft(1).term());
    append.index = 1;
    append.logTerm = 1;
    append.commit = net.raft(1).log().committed();
    EXPECT_TRUE(net.raft(1).log().entries(2, 4, UINT64_MAX, append.entries));
    net.step(append);
    net.drain(3);
    EXPECT_GT(net.pendingWrites(3), throughB) << "write C";
    EXPECT_EQ(net.raft(3).log().committed(), 3u);
    return throughB;
}

TEST(Section5_5_Persistence, LateAcknowledgementOfAReplacedWriteMakesNothingDurable)
{
    Network net(5, classicRaft);
    const std::size_t throughB = threeWritesOfOneIndexInFlight(net);
    ASSERT_FALSE(HasFailure());

    // A and B become durable: the disk holds [1@1, 2@2], and nothing past entry 1 is durable as the
    // core's log has it.
    net.persist(3, throughB);
    EXPECT_EQ(net.logTerms(3), (std::vector<std::uint64_t>{1, 1, 1}));
    EXPECT_EQ(net.raft(3).log().stableLastIndex(), 1u);
    net.drain(3);
    EXPECT_EQ(net.applied(3).size(), 1u) << "entries 2 and 3 are committed but not durable here yet";

    // C becomes durable: now they are applied, and they are leader 1's.
    net.releaseWrites(3);
    net.drain(3);
    EXPECT_EQ(net.raft(3).log().stableLastIndex(), 3u);
    EXPECT_EQ(net.appliedData(3), (std::vector<std::string>{"a", "b"}));
}

// The same with the old matching switched back on (InjectedBugs::acknowledgeByIndexAndTerm, what the
// simulator's sweep must catch): A's acknowledgement makes 2 and 3 durable, which the disk does not
// hold; the core's log shrinks to the disk's, below its commit index, and the next Ready cannot
// read the committed entries back (before the fix: 2@2 handed out as committed, then an empty list
// dereferenced).
TEST(Section5_5_Persistence, LateAcknowledgement_withTheInjectedBug_breaksDurability)
{
    Network net(5, both(classicRaft, [](Config &c) { c.bugs.acknowledgeByIndexAndTerm = true; }));
    net.expectViolations();
    const std::size_t throughB = threeWritesOfOneIndexInFlight(net);
    ASSERT_FALSE(HasFailure());
    net.persist(3, throughB);
    EXPECT_EQ(net.raft(3).log().stableLastIndex(), 3u) << "A's (3, 1) was taken for C's";
    EXPECT_EQ(net.storage(3).lastIndex(), 2u) << "but the disk holds [1@1, 2@2]";
    const auto &v = net.violations();
    EXPECT_TRUE(std::any_of(v.begin(), v.end(), [](const std::string &s) { return s.find("beyond last index") != std::string::npos; }))
        << "its log shrank below its commit index";
    EXPECT_THROW(net.drain(3), std::runtime_error) << "and the committed entries cannot be read back";
}

} // namespace
} // namespace dengine::raft::test
