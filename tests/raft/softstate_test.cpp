// SPDX-License-Identifier: Apache-2.0
//
// Ready::softStates and Raft::takeSoftStateLog (raft/rawnode.h): every (leader, role, term) the node
// passed through since the last Ready, in order, without repeats, so that an application told of
// transitions (lifecycle: "Every transition is delivered, in the order it happened. Nothing is
// coalesced away.") misses none that happen between two Readys, and announces each term before the
// leaders of that term.

#include "network.h"

#include <gtest/gtest.h>

#include <ostream>
#include <sstream>

namespace dengine::raft {
// Readable SoftStates in failure messages.
static void PrintTo(const SoftState &s, std::ostream *out)
{
    *out << "{leader " << s.leader << ", " << toString(s.role) << ", term " << s.term << "}";
}
} // namespace dengine::raft

namespace dengine::raft::test {
namespace {

SoftState follower(NodeId leader, Term term) { return {leader, Role::Follower, term}; }

std::string describe(const std::vector<SoftState> &states)
{
    std::ostringstream out;
    for (const SoftState &s : states)
        out << "{leader " << s.leader << ", " << toString(s.role) << ", term " << s.term << "} ";
    return out.str();
}

// The one message of `type` from `sender` to `recipient` on the wire, copied (left in flight).
// Unlike deliver() and take(), peeking drains no node: the recipient's Ready stays untaken.
Message peekOne(const Network &net, MessageType type, NodeId sender, NodeId recipient)
{
    const std::vector<Message> found = net.peek(allOf({ofType(type), between(sender, recipient)}));
    EXPECT_EQ(found.size(), 1u) << toString(type) << " from " << sender << " to " << recipient;
    return found.empty() ? Message{} : found.front();
}

// A three-node cluster (classic Raft: a vote request of a newer term is heard at once) in which
// node 1 leads term 1 and every node has taken its Readys.
struct LedByOne {
    Network net{3, classicRaft};
    LedByOne()
    {
        net.elect(1);
        net.deliverAll();
        net.clearReadys();
        EXPECT_EQ(net.raft(2).softState(), follower(1, 1));
        EXPECT_FALSE(net.node(2).hasReady());
    }
};

// The rule of the field: a follower that loses its leader (a candidate of a newer term asks for its
// vote) and learns the next one (that candidate won and sends its Append) before the runtime takes
// a Ready reports both steps, X -> 0 -> Y, not just the end.
TEST(ReadySoftStates, LeaderLostAndNewLeaderLearnedWithinOneReadyAreBothReported)
{
    LedByOne c;
    Network &net = c.net;
    // Node 3 campaigns in term 2; nodes 1 and 3 are drained as they go, node 2 never is.
    net.campaign(3);
    net.drain(3);
    net.step(peekOne(net, MessageType::Vote, 3, 2));
    ASSERT_EQ(net.raft(2).softState(), follower(NoNode, 2));
    net.step(peekOne(net, MessageType::Vote, 3, 1));
    net.drain(1);
    net.step(peekOne(net, MessageType::VoteResponse, 1, 3));
    ASSERT_EQ(net.raft(3).role(), Role::Leader);
    net.drain(3);
    net.step(peekOne(net, MessageType::Append, 3, 2));
    ASSERT_EQ(net.raft(2).softState(), follower(3, 2));
    ASSERT_TRUE(net.readys(2).empty()) << "node 2 must not have been drained in between";

    net.drain(2);
    ASSERT_EQ(net.readys(2).size(), 1u);
    const Ready &rd = net.readys(2).front();
    EXPECT_EQ(rd.softStates, (std::vector<SoftState>{follower(NoNode, 2), follower(3, 2)})) << describe(rd.softStates);
    ASSERT_TRUE(rd.softState.has_value());
    EXPECT_EQ(*rd.softState, follower(3, 2));
}

// The same within one Ready, but the leader that comes back is the one that left (X -> 0 -> X: the
// lifecycle's re-election "where the node saw the election"): softStates has both steps, each with
// the new term, and hasReady() announces them (also checked through its parts: the transition log,
// and a Ready holding only transitions not being empty).
TEST(ReadySoftStates, SameLeaderRegainedWithinOneReadyIsReportedThoughSoftStateIsUnchanged)
{
    LedByOne c;
    Network &net = c.net;
    const Term term = net.raft(2).term();
    const Index last = net.raft(2).log().lastIndex();
    const Term lastTerm = net.raft(2).log().lastTerm();
    // Node 1, re-elected in term + 1 (by node 3, say), asks node 2 for its vote, then sends its
    // first Append of the term. Node 2 takes no Ready in between.
    Message vote = makeMessage(MessageType::Vote, 1, 2, term + 1);
    vote.index = last;
    vote.logTerm = lastTerm;
    net.step(vote);
    ASSERT_EQ(net.raft(2).softState(), follower(NoNode, term + 1));
    Message append = makeMessage(MessageType::Append, 1, 2, term + 1);
    append.index = last;
    append.logTerm = lastTerm;
    append.commit = net.raft(2).log().committed();
    net.step(append);
    ASSERT_EQ(net.raft(2).softState(), follower(1, term + 1));

    EXPECT_TRUE(net.raft(2).hasSoftStateLog());
    EXPECT_TRUE(net.node(2).hasReady());
    Ready onlyTransitions;
    onlyTransitions.softStates = {follower(NoNode, term + 1), follower(1, term + 1)};
    EXPECT_FALSE(onlyTransitions.empty());
    net.drain(2);
    ASSERT_EQ(net.readys(2).size(), 1u);
    const Ready &rd = net.readys(2).front();
    EXPECT_EQ(rd.softStates, (std::vector<SoftState>{follower(NoNode, term + 1), follower(1, term + 1)})) << describe(rd.softStates);
    ASSERT_TRUE(rd.softState.has_value()) << "the term changed";
    EXPECT_EQ(*rd.softState, follower(1, term + 1));
    EXPECT_FALSE(net.raft(2).hasSoftStateLog()) << "taken with the Ready";
    EXPECT_FALSE(net.node(2).hasReady());
}

// Two heartbeats of a leader the node never saw elected, in terms 3 and 5, arrive in one frame: each
// term is reported, in order, with the leader it came with, and never a leader of a newer term
// before that term (the engine used to say "term 5, leader 3, leader 0, leader 3").
TEST(ReadySoftStates, EachTermIsReportedInOrderWithItsLeader)
{
    LedByOne c;
    Network &net = c.net;
    for (Term t : {Term{3}, Term{5}}) {
        Message heartbeat = makeMessage(MessageType::Heartbeat, 3, 2, t);
        heartbeat.commit = net.raft(2).log().committed();
        net.step(heartbeat);
    }
    net.drain(2);
    ASSERT_EQ(net.readys(2).size(), 1u);
    const Ready &rd = net.readys(2).front();
    EXPECT_EQ(rd.softStates, (std::vector<SoftState>{follower(3, 3), follower(3, 5)})) << describe(rd.softStates);
}

// A Ready taken when nothing about leader or role changed carries neither field.
TEST(ReadySoftStates, ReadyWithoutTransitionsHasNoSoftStates)
{
    LedByOne c;
    Network &net = c.net;
    ASSERT_EQ(net.propose(1, "a"), Status::Ok);
    ASSERT_EQ(net.propose(3, "b"), Status::Ok); // forwarded
    net.readIndex(2, 1);
    net.tickAll(3);
    net.deliverAll();
    ASSERT_EQ(net.appliedData(2), (std::vector<std::string>{"a", "b"}));
    std::size_t readys = 0;
    for (NodeId id : net.ids()) {
        for (const Ready &rd : net.readys(id)) {
            ++readys;
            EXPECT_TRUE(rd.softStates.empty()) << "node " << id << ": " << describe(rd.softStates);
            EXPECT_FALSE(rd.softState.has_value()) << "node " << id;
        }
    }
    EXPECT_GT(readys, 6u);
}

// Failovers in both election modes: the leader is cut off until another node leads a newer term,
// then the partition heals (in classic Raft the old leader, still leading its term, learns of the
// new one from an Append; with check-quorum it has stepped down and is pre-voting in vain), twice.
void runFailovers(Network &net)
{
    const int electionTick = net.config(1).electionTick;
    net.elect(1);
    net.propose(1, "one");
    net.deliverAll();
    for (int failover = 0; failover < 2; ++failover) {
        const std::optional<NodeId> old = net.leader();
        ASSERT_TRUE(old.has_value());
        const Term before = net.raft(*old).term();
        net.isolate(*old);
        std::optional<NodeId> next;
        for (int round = 0; round < 10 * electionTick && !next; ++round) {
            net.tickAll();
            net.deliverAll();
            const std::optional<NodeId> leader = net.leader();
            if (leader && *leader != *old && net.raft(*leader).term() > before)
                next = leader;
        }
        ASSERT_TRUE(next.has_value()) << "no new leader after node " << *old << " was cut off";
        net.heal();
        net.propose(*next, "after failover " + std::to_string(failover));
        net.deliverAll();
        net.tickAll();
        net.deliverAll();
        ASSERT_EQ(net.raft(*old).softState(), follower(*next, net.raft(*next).term()));
    }
}

// The rules of the field over whole runs, for every node and every Ready:
//   - in order, without repeats: no element equals the one before it, and the first differs from
//     where the previous Ready ended;
//   - softState, when set, is the last element;
//   - when softState is not set, the elements (if any) lead back to where the previous Ready ended;
//   - the end of the last Ready is the node's state.
TEST(ReadySoftStates, EveryTransitionIsReportedOnceAndInOrderAndTheLastOneIsSoftState)
{
    for (const bool classic : {true, false}) {
        SCOPED_TRACE(classic ? "classic Raft" : "pre-vote and check-quorum");
        Network net(3, classic ? ConfigTweak(classicRaft) : ConfigTweak());
        runFailovers(net);
        if (::testing::Test::HasFatalFailure())
            return;
        net.drainAll();
        for (NodeId id : net.ids()) {
            SoftState at{}; // a node starts as a follower that knows no leader
            std::size_t transitions = 0;
            for (std::size_t k = 0; k < net.readys(id).size(); ++k) {
                const Ready &rd = net.readys(id)[k];
                const std::string where = "node " + std::to_string(id) + ", Ready " + std::to_string(k) + ": " + describe(rd.softStates);
                SoftState prev = at;
                for (const SoftState &s : rd.softStates) {
                    EXPECT_NE(s, prev) << where << "(a repeat)";
                    prev = s;
                }
                if (rd.softState) {
                    ASSERT_FALSE(rd.softStates.empty()) << where << "softState set without transitions";
                    EXPECT_EQ(rd.softStates.back(), *rd.softState) << where;
                    EXPECT_NE(*rd.softState, at) << where;
                } else if (!rd.softStates.empty()) {
                    EXPECT_EQ(rd.softStates.back(), at) << where << "(ends elsewhere, but softState is not set)";
                }
                if (!rd.softStates.empty())
                    at = rd.softStates.back();
                transitions += rd.softStates.size();
            }
            EXPECT_EQ(at, net.raft(id).softState()) << "node " << id;
            EXPECT_GE(transitions, 2u) << "node " << id;
        }
    }
}

// Every state reported is one the node was in: a leader names itself, a node that names itself is
// the leader, and a (pre-)candidate knows no leader. Steps inside a role change, where the leader
// field is already updated and the role not yet (or the other way round), are not transitions.
TEST(ReadySoftStates, EveryReportedStateIsAConsistentLeaderAndRole)
{
    for (const bool classic : {true, false}) {
        SCOPED_TRACE(classic ? "classic Raft" : "pre-vote and check-quorum");
        Network net(3, classic ? ConfigTweak(classicRaft) : ConfigTweak());
        runFailovers(net);
        if (::testing::Test::HasFatalFailure())
            return;
        net.drainAll();
        for (NodeId id : net.ids()) {
            for (std::size_t k = 0; k < net.readys(id).size(); ++k) {
                const Ready &rd = net.readys(id)[k];
                for (const SoftState &s : rd.softStates) {
                    const std::string where = "node " + std::to_string(id) + ", Ready " + std::to_string(k) + ": " + describe(rd.softStates);
                    EXPECT_EQ(s.role == Role::Leader, s.leader == id) << where;
                    if (s.role == Role::PreCandidate || s.role == Role::Candidate) {
                        EXPECT_EQ(s.leader, NoNode) << where;
                    }
                }
            }
        }
    }
}

// A node elected at once (a single voter) reports the whole way in its first Ready, and a leader
// deposed by a newer leader's Append reports the way down: neither passes through a state mixing
// the old role with the new leader.
TEST(ReadySoftStates, ElectionWonAndLeadershipLostAreReportedAsTheRolesTheNodeHeld)
{
    {
        Network net(1);
        net.campaign(1);
        net.drain(1);
        ASSERT_EQ(net.raft(1).role(), Role::Leader);
        ASSERT_FALSE(net.readys(1).empty());
        const Ready &rd = net.readys(1).front();
        EXPECT_EQ(rd.softStates, (std::vector<SoftState>{{NoNode, Role::PreCandidate, 0}, {NoNode, Role::Candidate, 1}, {1, Role::Leader, 1}}))
            << describe(rd.softStates);
    }
    {
        LedByOne c;
        Network &net = c.net;
        // Node 3 leads term 2 (as if elected by node 2); its first Append reaches node 1.
        Message append = makeMessage(MessageType::Append, 3, 1, net.raft(1).term() + 1);
        append.index = net.raft(1).log().lastIndex();
        append.logTerm = net.raft(1).log().lastTerm();
        append.commit = net.raft(1).log().committed();
        net.step(append);
        ASSERT_EQ(net.raft(1).softState(), follower(3, 2));
        net.drain(1);
        ASSERT_FALSE(net.readys(1).empty());
        const Ready &rd = net.readys(1).front();
        // Straight from leading term 1 to following 3 in term 2: it never knew no leader.
        EXPECT_EQ(rd.softStates, (std::vector<SoftState>{follower(3, 2)})) << describe(rd.softStates);
    }
}

} // namespace
} // namespace dengine::raft::test
