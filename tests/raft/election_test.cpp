// SPDX-License-Identifier: Apache-2.0
//
// Terms and leader election: Raft paper (Ongaro & Ousterhout, extended version) §5.1, §5.2 and
// §5.4.1; Pre-Vote (thesis §9.6) and the check-quorum lease (thesis §4.2.3, §6.2).

#include "network.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace dengine::raft::test {
namespace {

Message voteRequest(MessageType type, NodeId candidate, NodeId voter, Term term, Index lastIndex, Term lastTerm)
{
    Message m = makeMessage(type, candidate, voter, term);
    m.index = lastIndex;
    m.logTerm = lastTerm;
    return m;
}

// The single vote response of `voter` to `candidate` now on the wire (taken off it).
Message takeVoteResponse(Network &net, MessageType type, NodeId voter, NodeId candidate)
{
    std::vector<Message> out = net.take(allOf({ofType(type), between(voter, candidate)}));
    EXPECT_EQ(out.size(), 1u) << "expected one " << toString(type) << " from " << voter << " to " << candidate;
    return out.empty() ? Message{} : out.front();
}

// Ticks the given nodes and delivers after every round until one of them leads, at most `rounds`.
std::optional<NodeId> tickUntilLeader(Network &net, const std::vector<NodeId> &nodes, int rounds)
{
    for (int i = 0; i < rounds; ++i) {
        for (NodeId id : nodes)
            net.tick(id);
        net.deliverAll();
        for (NodeId id : nodes)
            if (net.raft(id).role() == Role::Leader)
                return id;
    }
    return std::nullopt;
}

// ---- §5.1 Terms -------------------------------------------------------------------------------

// §5.1: "Current terms are exchanged whenever servers communicate; if one server's current term is
// smaller than the other's, then it updates its current term to the larger value."
TEST(Section5_1_Terms, NodeAdoptsTheHigherTermItSees)
{
    Network net(3, classicRaft);
    net.step(makeMessage(MessageType::Heartbeat, 1, 2, 5));
    EXPECT_EQ(net.raft(2).term(), 5u);
    EXPECT_EQ(net.raft(2).role(), Role::Follower);
    EXPECT_EQ(net.raft(2).leader(), 1u);

    Message rejection = makeMessage(MessageType::VoteResponse, 1, 3, 7);
    rejection.reject = true;
    net.step(rejection);
    EXPECT_EQ(net.raft(3).term(), 7u);
    EXPECT_EQ(net.raft(3).leader(), NoNode);

    // The new term is part of the persistent state (Figure 2), so it reaches storage.
    net.drainAll();
    EXPECT_EQ(net.storage(2).hardState().term, 5u);
    EXPECT_EQ(net.storage(3).hardState().term, 7u);
}

// §5.1: "If a server receives a request with a stale term number, it rejects the request."
TEST(Section5_1_Terms, StaleTermRequestsAreRejected)
{
    Preset preset{{1, 1}, HardState{3, NoNode, 0}};
    Network net(3, classicRaft, {{2, preset}});

    Message append = makeMessage(MessageType::Append, 1, 2, 2);
    append.index = 2;
    append.logTerm = 1;
    append.entries = {Entry{2, 3, EntryType::Normal, Payload("stale")}};
    EXPECT_EQ(net.step(append), Status::Ok);
    EXPECT_EQ(net.raft(2).log().lastIndex(), 2u) << "a stale leader's entries must not be appended";

    EXPECT_EQ(net.step(voteRequest(MessageType::Vote, 3, 2, 2, 10, 2)), Status::Ok);
    EXPECT_EQ(net.raft(2).vote(), NoNode) << "a stale candidate must not get the vote";
    EXPECT_EQ(net.raft(2).term(), 3u);

    net.drainAll();
    EXPECT_EQ(net.count(ofType(MessageType::AppendResponse)), 0u);
    // The stale candidate is told the current term (the paper's RequestVote reply carries it), so
    // it stops campaigning in a term that is over.
    const auto replies = net.peek(ofType(MessageType::VoteResponse));
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_TRUE(replies[0].reject);
    EXPECT_EQ(replies[0].term, 3u);
}

// §5.1: "If a candidate or leader discovers that its term is out of date, it immediately reverts to
// follower state."
TEST(Section5_1_Terms, CandidateWithStaleTermRevertsToFollower)
{
    Network net(3, classicRaft);
    net.campaign(1);
    ASSERT_EQ(net.raft(1).role(), Role::Candidate);
    net.step(makeMessage(MessageType::Heartbeat, 2, 1, 4));
    EXPECT_EQ(net.raft(1).role(), Role::Follower);
    EXPECT_EQ(net.raft(1).term(), 4u);
    EXPECT_EQ(net.raft(1).leader(), 2u);
}

// §5.1: "If a candidate or leader discovers that its term is out of date, it immediately reverts to
// follower state."
TEST(Section5_1_Terms, LeaderSeeingAHigherTermInAResponseRevertsToFollower)
{
    Network net(3, classicRaft);
    net.elect(1);
    const Term term = net.raft(1).term();
    net.step(makeMessage(MessageType::AppendResponse, 2, 1, term + 3));
    EXPECT_EQ(net.raft(1).role(), Role::Follower);
    EXPECT_EQ(net.raft(1).term(), term + 3);
    EXPECT_EQ(net.raft(1).leader(), NoNode);
}

// §5.1: "If a candidate or leader discovers that its term is out of date, it immediately reverts to
// follower state." With pre-vote and check-quorum the others never campaign against a stale leader,
// so it learns the newer term from the answer to its own heartbeat.
TEST(Section5_1_Terms, StaleLeaderBackFromAPartitionRevertsToFollower)
{
    Network net(3);
    net.elect(1);
    const Term oldTerm = net.raft(1).term();
    net.isolate(1);
    const auto newLeader = tickUntilLeader(net, {2, 3}, 10 * net.config(2).electionTick);
    ASSERT_TRUE(newLeader.has_value());
    const Term newTerm = net.raft(*newLeader).term();
    ASSERT_GT(newTerm, oldTerm);
    EXPECT_EQ(net.raft(1).role(), Role::Leader) << "the stale leader has heard nothing yet";

    net.heal();
    net.tick(1); // a heartbeat in its stale term
    net.deliver(allOf({ofType(MessageType::Heartbeat), from(1)}));
    const std::vector<Message> answers = net.peek(to(1));
    ASSERT_FALSE(answers.empty());
    for (const Message &m : answers)
        EXPECT_EQ(m.term, newTerm) << toString(m.type) << " from " << m.from << " should carry the newer term";
    net.deliver(to(1));
    EXPECT_EQ(net.raft(1).role(), Role::Follower);
    EXPECT_EQ(net.raft(1).term(), newTerm);
}

// ---- §5.2 Leader election ---------------------------------------------------------------------

// §5.2: "If a follower receives no communication over a period of time called the election timeout,
// then it assumes there is no viable leader and begins an election to choose a new leader." and
// "election timeouts are chosen randomly from a fixed interval"; here [electionTick, 2*electionTick).
TEST(Section5_2_Election, FollowerCampaignsAfterARandomizedTimeoutWithinTheElectionRange)
{
    std::set<int> timeouts;
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        Network net(3, both(classicRaft, [seed](Config &c) { c.seed = seed * 7919 + c.id; }));
        const int electionTick = net.config(1).electionTick;
        const int timeout = static_cast<int>(net.raft(1).randomizedElectionTimeout());
        EXPECT_GE(timeout, electionTick);
        EXPECT_LT(timeout, 2 * electionTick);
        int ticks = 0;
        while (net.raft(1).role() == Role::Follower && ticks < 3 * electionTick) {
            net.tick(1);
            ++ticks;
        }
        EXPECT_EQ(ticks, timeout) << "seed " << seed;
        EXPECT_EQ(net.raft(1).role(), Role::Candidate);
        timeouts.insert(ticks);
    }
    EXPECT_GE(timeouts.size(), 4u) << "election timeouts do not look randomized";
}

// §5.2: "Each candidate restarts its randomized election timeout at the start of an election".
TEST(Section5_2_Election, EachElectionDrawsANewTimeout)
{
    Network net(3, classicRaft);
    net.isolate(1);
    std::set<std::uint64_t> drawn;
    for (int i = 0; i < 20; ++i) {
        net.campaign(1);
        drawn.insert(net.raft(1).randomizedElectionTimeout());
    }
    EXPECT_GE(drawn.size(), 3u);
}

// §5.2: "To begin an election, a follower increments its current term and transitions to candidate
// state. It then votes for itself and issues RequestVote RPCs in parallel to each of the other
// servers in the cluster."
TEST(Section5_2_Election, CandidateIncrementsTermVotesForItselfAndRequestsVotes)
{
    Network net(3, classicRaft);
    net.campaign(1);
    EXPECT_EQ(net.raft(1).role(), Role::Candidate);
    EXPECT_EQ(net.raft(1).term(), 1u);
    EXPECT_EQ(net.raft(1).vote(), 1u);

    ASSERT_EQ(net.drain(1), 1u);
    const Ready &rd = net.readys(1).back();
    ASSERT_TRUE(rd.hardState.has_value());
    EXPECT_EQ(rd.hardState->term, 1u);
    EXPECT_EQ(rd.hardState->vote, 1u);
    EXPECT_TRUE(rd.mustSync);
    std::set<NodeId> asked;
    for (const Message &m : rd.messagesAfterPersist) {
        if (m.type != MessageType::Vote)
            continue;
        asked.insert(m.to);
        EXPECT_EQ(m.term, 1u);
        EXPECT_EQ(m.index, net.raft(1).log().lastIndex());
        EXPECT_EQ(m.logTerm, net.raft(1).log().lastTerm());
    }
    EXPECT_EQ(asked, (std::set<NodeId>{2, 3}));
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the servers in the
// full cluster for the same term."
TEST(Section5_2_Election, CandidateWinsWithAMajorityAndNotWithLess)
{
    Network net(5, classicRaft);
    net.cut(1, 4);
    net.cut(1, 5);
    net.campaign(1);
    net.deliverAll();
    EXPECT_EQ(net.raft(1).role(), Role::Leader) << "votes from 1, 2, 3 are a majority of five";

    Network minority(5, classicRaft);
    minority.cut(1, 3);
    minority.cut(1, 4);
    minority.cut(1, 5);
    minority.campaign(1);
    minority.deliverAll();
    EXPECT_EQ(minority.raft(1).role(), Role::Candidate) << "votes from 1 and 2 are not a majority of five";
}

// §5.2: "Each server will vote for at most one candidate in a given term, on a
// first-come-first-served basis".
TEST(Section5_2_Election, VoterGrantsOneVotePerTermFirstComeFirstServed)
{
    Network net(3, classicRaft);
    net.campaign(1);
    net.campaign(2);
    net.deliver(allOf({ofType(MessageType::Vote), between(1, 3)}));
    net.deliver(allOf({ofType(MessageType::Vote), between(2, 3)}));
    const Message toFirst = takeVoteResponse(net, MessageType::VoteResponse, 3, 1);
    const Message toSecond = takeVoteResponse(net, MessageType::VoteResponse, 3, 2);
    EXPECT_FALSE(toFirst.reject);
    EXPECT_TRUE(toSecond.reject);
    EXPECT_EQ(net.storage(3).hardState().vote, 1u);

    // Asking again is answered the same way: the vote is for 1 for the rest of the term.
    net.step(voteRequest(MessageType::Vote, 1, 3, 1, 0, 0));
    net.step(voteRequest(MessageType::Vote, 2, 3, 1, 0, 0));
    EXPECT_FALSE(takeVoteResponse(net, MessageType::VoteResponse, 3, 1).reject);
    EXPECT_TRUE(takeVoteResponse(net, MessageType::VoteResponse, 3, 2).reject);

    net.send(toFirst);
    net.send(toSecond);
    net.deliverAll();
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.raft(2).role(), Role::Follower);
}

// §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC from another server
// claiming to be leader. If the leader's term (included in its RPC) is at least as large as the
// candidate's current term, then the candidate recognizes the leader as legitimate and returns to
// follower state."
TEST(Section5_2_Election, CandidateReceivingAppendFromLeaderOfItsTermBecomesFollower)
{
    Network net(3, classicRaft);
    net.campaign(1);
    net.campaign(2);
    net.deliver(allOf({ofType(MessageType::Vote), between(1, 3)}));
    net.deliver(allOf({ofType(MessageType::VoteResponse), between(3, 1)}));
    ASSERT_EQ(net.raft(1).role(), Role::Leader);
    ASSERT_EQ(net.raft(2).role(), Role::Candidate);
    ASSERT_EQ(net.raft(2).term(), net.raft(1).term());

    EXPECT_EQ(net.deliver(allOf({ofType(MessageType::Append), between(1, 2)})), 1u);
    EXPECT_EQ(net.raft(2).role(), Role::Follower);
    EXPECT_EQ(net.raft(2).leader(), 1u);
    EXPECT_EQ(net.raft(2).term(), net.raft(1).term());
}

// §5.2: "Raft uses randomized election timeouts to ensure that split votes are rare and that they
// are resolved quickly."
TEST(Section5_2_Election, SplitVoteIsResolvedByRandomizedTimeouts)
{
    Network net(4, classicRaft);
    net.campaign(1);
    net.campaign(2);
    net.deliver(allOf({ofType(MessageType::Vote), between(1, 3)}));
    net.deliver(allOf({ofType(MessageType::Vote), between(2, 4)}));
    net.deliverAll();
    ASSERT_FALSE(net.leader().has_value()) << "two votes each out of four: nobody wins term 1";
    EXPECT_EQ(net.raft(1).term(), 1u);
    EXPECT_EQ(net.raft(2).term(), 1u);

    const int electionTick = net.config(1).electionTick;
    int ticks = 0;
    while (!net.leader() && ticks < 10 * electionTick) {
        net.tickAll();
        net.deliverAll();
        ++ticks;
    }
    ASSERT_TRUE(net.leader().has_value()) << "no leader after " << ticks << " ticks";
    EXPECT_GE(net.raft(*net.leader()).term(), 2u);
    EXPECT_LE(ticks, 4 * electionTick) << "split votes should be resolved quickly";
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the servers in the
// full cluster": in a one-node cluster that is its own vote.
TEST(Section5_2_Election, SingleNodeClusterElectsItselfAndCommits)
{
    Network net(1);
    net.tick(1, 2 * net.config(1).electionTick);
    ASSERT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.raft(1).term(), 1u);
    EXPECT_EQ(net.propose(1, "solo"), Status::Ok);
    net.drainAll();
    EXPECT_EQ(net.appliedData(1), std::vector<std::string>{"solo"});
}

// ---- §5.4.1 Election restriction --------------------------------------------------------------

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the candidate."
// and "If the logs have last entries with different terms, then the log with the later term is more
// up-to-date."
TEST(Section5_4_1_ElectionRestriction, VoterRejectsCandidateWhoseLastTermIsOlder)
{
    Network net(3, classicRaft, {{1, Preset{{1, 1, 2}, HardState{2, NoNode, 0}}}});
    net.step(voteRequest(MessageType::Vote, 2, 1, 3, 10, 1)); // longer, but an older last term
    EXPECT_TRUE(takeVoteResponse(net, MessageType::VoteResponse, 1, 2).reject);
    EXPECT_EQ(net.raft(1).vote(), NoNode);

    net.step(voteRequest(MessageType::Vote, 3, 1, 3, 1, 3)); // shorter, but a later last term
    EXPECT_FALSE(takeVoteResponse(net, MessageType::VoteResponse, 1, 3).reject);
    EXPECT_EQ(net.raft(1).vote(), 3u);
}

// §5.4.1: "If the logs end with the same term, then whichever log is longer is more up-to-date."
TEST(Section5_4_1_ElectionRestriction, VoterRejectsShorterCandidateWithTheSameLastTerm)
{
    Network net(3, classicRaft, {{1, Preset{{1, 2, 2}, HardState{2, NoNode, 0}}}});
    net.step(voteRequest(MessageType::Vote, 2, 1, 3, 2, 2));
    EXPECT_TRUE(takeVoteResponse(net, MessageType::VoteResponse, 1, 2).reject);

    net.step(voteRequest(MessageType::Vote, 3, 1, 3, 3, 2)); // as long: at least as up to date
    EXPECT_FALSE(takeVoteResponse(net, MessageType::VoteResponse, 1, 3).reject);
}

// §5.4.1: "Raft uses the voting process to prevent a candidate from winning an election unless its
// log contains all committed entries."
TEST(Section5_4_1_ElectionRestriction, NodeMissingACommittedEntryCannotWin)
{
    Network net(3, classicRaft);
    net.elect(1);
    net.isolate(3);
    net.propose(1, "committed without 3");
    net.deliverAll();
    ASSERT_EQ(net.appliedData(2), std::vector<std::string>{"committed without 3"});

    net.heal();
    net.isolate(1);
    net.campaign(3);
    net.deliverAll();
    EXPECT_NE(net.raft(3).role(), Role::Leader);
    net.elect(2);
}

// ---- §9.6 Pre-Vote ----------------------------------------------------------------------------

// §9.6 (thesis): "In the Pre-Vote algorithm, a candidate only increments its term if it first learns
// from a majority of the cluster that they would be willing to grant the candidate their votes".
TEST(Section9_6_PreVote, PreCandidateDoesNotIncrementItsTerm)
{
    Network net(3);
    net.isolate(1);
    const int electionTick = net.config(1).electionTick;
    int ticks = 0;
    while (net.raft(1).role() == Role::Follower && ticks < 2 * electionTick) {
        net.tick(1);
        ++ticks;
    }
    ASSERT_EQ(net.raft(1).role(), Role::PreCandidate);
    EXPECT_EQ(net.raft(1).term(), 0u);
    EXPECT_EQ(net.raft(1).vote(), NoNode);

    net.drain(1);
    const std::vector<Message> preVotes = net.peek(ofType(MessageType::PreVote));
    ASSERT_EQ(preVotes.size(), 2u) << "pre-votes leave at once: they depend on nothing durable";
    for (const Message &m : preVotes)
        EXPECT_EQ(m.term, 1u) << "a pre-vote names the term the node would campaign in";

    for (int i = 0; i < 5 * electionTick; ++i) {
        net.tick(1);
        net.deliverAll();
    }
    EXPECT_EQ(net.raft(1).term(), 0u);
    for (const Ready &rd : net.readys(1))
        EXPECT_FALSE(rd.hardState.has_value()) << "failed pre-votes leave nothing to persist";
}

// §9.6 (thesis): "a server that has been partitioned from the cluster is likely to cause a
// disruption when it regains connectivity." Pre-Vote (with the §4.2.3 lease) prevents that.
TEST(Section9_6_PreVote, PartitionedNodeRejoiningDoesNotDisruptTheLeader)
{
    Network net(3);
    net.elect(1);
    const Term term = net.raft(1).term();
    net.isolate(3);
    const int electionTick = net.config(1).electionTick;
    for (int i = 0; i < 5 * electionTick; ++i) {
        net.tickAll();
        net.deliverAll();
    }
    EXPECT_EQ(net.raft(3).term(), term) << "an isolated pre-candidate must not inflate its term";

    net.heal();
    for (int i = 0; i < 3 * electionTick; ++i) {
        net.tickAll();
        net.deliverAll();
    }
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    for (NodeId id : net.ids()) {
        EXPECT_EQ(net.raft(id).term(), term) << "node " << id;
        EXPECT_EQ(net.raft(id).leader(), 1u) << "node " << id;
    }
}

// The counterpart that shows what the previous test guards against: without Pre-Vote the isolated
// node's term grows, and when it rejoins the leader has to step down.
TEST(Section9_6_PreVote, WithoutPreVoteARejoiningNodeDisruptsTheLeader)
{
    Network net(3, [](Config &c) { c.preVote = false; });
    net.elect(1);
    const Term term = net.raft(1).term();
    net.isolate(3);
    const int electionTick = net.config(1).electionTick;
    for (int i = 0; i < 5 * electionTick; ++i) {
        net.tickAll();
        net.deliverAll();
    }
    EXPECT_GT(net.raft(3).term(), term);

    net.heal();
    net.tick(1);
    net.deliverAll();
    EXPECT_NE(net.raft(1).role(), Role::Leader) << "the rejoining node's higher term deposes the leader";
    EXPECT_GT(net.raft(1).term(), term);
}

// §9.6 (thesis): a pre-candidate asks "whether its log was up-to-date enough"; a pre-vote commits
// the voter to nothing, so it is granted for a future term even by a node that voted in its own.
TEST(Section9_6_PreVote, PreVoteIsGrantedToUpToDateLogsOnly)
{
    Network net(3, {}, {{2, Preset{{1, 1, 2}, HardState{2, 3, 0}}}});
    net.step(voteRequest(MessageType::PreVote, 1, 2, 3, 3, 1));
    EXPECT_TRUE(takeVoteResponse(net, MessageType::PreVoteResponse, 2, 1).reject) << "older last term";
    net.step(voteRequest(MessageType::PreVote, 1, 2, 3, 2, 2));
    EXPECT_TRUE(takeVoteResponse(net, MessageType::PreVoteResponse, 2, 1).reject) << "same last term, shorter";
    net.step(voteRequest(MessageType::PreVote, 1, 2, 3, 3, 2));
    const Message granted = takeVoteResponse(net, MessageType::PreVoteResponse, 2, 1);
    EXPECT_FALSE(granted.reject);
    EXPECT_EQ(granted.term, 3u);

    EXPECT_EQ(net.raft(2).term(), 2u) << "a pre-vote changes no term";
    EXPECT_EQ(net.raft(2).vote(), 3u) << "a pre-vote changes no vote";
}

// ---- §4.2.3 / §6.2 Check-quorum ----------------------------------------------------------------

// §6.2 (thesis): "a leader in Raft steps down if an election timeout elapses without a successful
// round of heartbeats to a majority of its cluster".
TEST(Section4_2_3_CheckQuorum, LeaderWithoutAQuorumForAnElectionTimeoutStepsDown)
{
    Network net(3);
    net.elect(1);
    const int electionTick = net.config(1).electionTick;
    net.isolate(1);
    net.tick(1, electionTick - 1);
    EXPECT_EQ(net.raft(1).role(), Role::Leader) << "no election timeout has passed yet";
    int ticks = electionTick - 1;
    while (net.raft(1).role() == Role::Leader && ticks < 4 * electionTick) {
        net.tick(1);
        ++ticks;
    }
    EXPECT_EQ(net.raft(1).role(), Role::Follower);
    EXPECT_LE(ticks, 2 * electionTick) << "within two checks: the first may still count replies from before";
    EXPECT_EQ(net.raft(1).leader(), NoNode);
}

// The counterpart: a leader in touch with a quorum keeps leading however long it runs.
TEST(Section4_2_3_CheckQuorum, LeaderInTouchWithAQuorumKeepsLeading)
{
    Network net(3);
    net.elect(1);
    const Term term = net.raft(1).term();
    net.isolate(3);
    for (int i = 0; i < 6 * net.config(1).electionTick; ++i) {
        net.tick(1);
        net.tick(2);
        net.deliverAll();
    }
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.raft(1).term(), term);
}

// §4.2.3 (thesis): "if a server receives a RequestVote request within the minimum election timeout
// of hearing from a current leader, it does not update its term or grant its vote."
TEST(Section4_2_3_CheckQuorum, FollowerInLeaseIgnoresVoteRequestsOfAHigherTerm)
{
    Network net(3);
    net.elect(1);
    const Term term = net.raft(1).term();
    const Index last = net.raft(3).log().lastIndex();
    const Term lastTerm = net.raft(3).log().lastTerm();

    net.step(voteRequest(MessageType::Vote, 3, 2, term + 1, last, lastTerm));
    net.step(voteRequest(MessageType::PreVote, 3, 2, term + 1, last, lastTerm));
    EXPECT_EQ(net.raft(2).term(), term);
    EXPECT_EQ(net.raft(2).vote(), 1u);
    net.drain(2);
    EXPECT_EQ(net.count(to(3)), 0u) << "no answer at all while in lease";

    // Once an election timeout passes without word from the leader, the request counts again.
    net.tick(2, net.config(2).electionTick);
    net.drop(anything());
    net.step(voteRequest(MessageType::Vote, 3, 2, term + 1, last, lastTerm));
    EXPECT_EQ(net.raft(2).term(), term + 1);
    EXPECT_EQ(net.raft(2).vote(), 3u);
}

// ---- The checks can fail ----------------------------------------------------------------------

// Election Safety (Figure 3): "at most one leader can be elected in a given term". A voter that
// grants two votes in one term lets two leaders win it, and the harness reports that.
TEST(InjectedBugs, SecondVoteInATermIsCaughtAsTwoLeaders)
{
    Network net(3, both(classicRaft, [](Config &c) { c.bugs.grantSecondVoteInTerm = c.id == 3; }));
    net.expectViolations();
    net.campaign(1);
    net.campaign(2);
    net.deliver(allOf({ofType(MessageType::Vote), to(3)}));
    net.deliverAll();
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.raft(2).role(), Role::Leader);
    const auto &v = net.violations();
    EXPECT_TRUE(std::any_of(v.begin(), v.end(), [](const std::string &s) { return s.find("election safety") != std::string::npos; }))
        << (v.empty() ? std::string("no violation reported") : v.front());
}

} // namespace
} // namespace dengine::raft::test
