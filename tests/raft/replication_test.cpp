// SPDX-License-Identifier: Apache-2.0
//
// Log replication and commitment: Raft paper (extended version) §5.3 and §5.4.2, with the thesis on
// batching and pipelining (§10.2.2); proposal forwarding (thesis §6.2) and flow control.

#include "network.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

namespace dengine::raft::test {
namespace {

Filter appendsFrom(NodeId leader, NodeId follower)
{
    return allOf({ofType(MessageType::Append), between(leader, follower)});
}

Filter carrying(const std::string &data)
{
    return [data](const Message &m) {
        return std::any_of(m.entries.begin(), m.entries.end(), [&](const Entry &e) { return e.data.toString() == data; });
    };
}

std::size_t rejectionsDelivered(const Network &net, NodeId follower, NodeId leader)
{
    return static_cast<std::size_t>(std::count_if(net.deliveries().begin(), net.deliveries().end(), [&](const Delivery &d) {
        const Message &m = d.message;
        return m.type == MessageType::AppendResponse && m.from == follower && m.to == leader && m.reject;
    }));
}

// ---- §5.3 Log replication ---------------------------------------------------------------------

// §5.3: "The leader appends the command to its log as a new entry, then issues AppendEntries RPCs in
// parallel to each of the other servers to replicate the entry."
TEST(Section5_3_Replication, LeaderAppendsAProposalAndReplicatesIt)
{
    Network net(3);
    net.elect(1);
    const Index before = net.raft(1).log().lastIndex();
    ASSERT_EQ(net.propose(1, "x"), Status::Ok);
    EXPECT_EQ(net.raft(1).log().lastIndex(), before + 1);
    EXPECT_EQ(net.raft(1).log().termOrZero(before + 1), net.raft(1).term());

    net.drain(1);
    EXPECT_EQ(net.count(allOf({ofType(MessageType::Append), from(1), carrying("x")})), 2u);
    net.deliverAll();
    for (NodeId id : net.ids()) {
        EXPECT_EQ(net.raft(id).log().committed(), before + 1) << "node " << id;
        EXPECT_EQ(net.appliedData(id), std::vector<std::string>{"x"}) << "node " << id;
    }
}

// §5.3: "When sending an AppendEntries RPC, the leader includes the index and term of the entry in
// its log that immediately precedes the new entries. If the follower does not find an entry in its
// log with the same index and term, then it refuses the new entries."
TEST(Section5_3_Replication, FollowerRefusesAppendWhosePreviousEntryDoesNotMatch)
{
    Network net(3, classicRaft, {{2, Preset{{1, 1}, HardState{1, NoNode, 0}}}});
    Message append = makeMessage(MessageType::Append, 1, 2, 2);
    append.index = 2;
    append.logTerm = 2; // node 2 has term 1 at index 2
    append.entries = {Entry{2, 3, EntryType::Normal, Payload("new")}};
    net.step(append);
    EXPECT_EQ(net.logTerms(2), (std::vector<std::uint64_t>{1, 1}));

    Message beyond = makeMessage(MessageType::Append, 1, 2, 2);
    beyond.index = 5; // node 2 has no entry 5 at all
    beyond.logTerm = 2;
    beyond.entries = {Entry{2, 6, EntryType::Normal, Payload("far")}};
    net.step(beyond);
    EXPECT_EQ(net.logTerms(2), (std::vector<std::uint64_t>{1, 1}));

    const std::vector<Message> answers = net.take(allOf({ofType(MessageType::AppendResponse), between(2, 1)}));
    ASSERT_EQ(answers.size(), 2u);
    for (const Message &m : answers) {
        EXPECT_TRUE(m.reject);
        EXPECT_LE(m.rejectHint, 2u) << "the hint never points past the follower's log";
    }
    EXPECT_EQ(answers[0].index, 2u);
    EXPECT_EQ(answers[1].index, 5u);
}

// §5.3: "In Raft, the leader handles inconsistencies by forcing the followers' logs to duplicate its
// own. This means that conflicting entries in follower logs will be overwritten with entries from
// the leader's log." Figure 2: "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it".
TEST(Section5_3_Replication, ConflictingEntriesAreDeletedAndReplaced)
{
    Network net(3, classicRaft, {{2, Preset{{1, 1, 2, 2}, HardState{2, NoNode, 0}}}});
    Message append = makeMessage(MessageType::Append, 1, 2, 3);
    append.index = 2;
    append.logTerm = 1;
    append.entries = {Entry{3, 3, EntryType::Normal, Payload("leader's")}};
    net.step(append);
    EXPECT_EQ(net.logTerms(2), (std::vector<std::uint64_t>{1, 1, 3})) << "entries 3 and 4 of term 2 go, 3 of term 3 comes";
    net.drain(2);
    EXPECT_EQ(net.storage(2).lastIndex(), 3u);
    Term stored = 0;
    ASSERT_EQ(net.storage(2).term(3, stored), StorageError::None);
    EXPECT_EQ(stored, 3u);
    const std::vector<Message> ack = net.take(ofType(MessageType::AppendResponse));
    ASSERT_EQ(ack.size(), 1u);
    EXPECT_FALSE(ack[0].reject);
    EXPECT_EQ(ack[0].index, 3u);

    // Figure 2: "Append any new entries not already in the log": an entry already present is not a
    // conflict, and what follows it stays.
    Message old = makeMessage(MessageType::Append, 1, 2, 3);
    old.index = 1;
    old.logTerm = 1;
    old.entries = {Entry{1, 2, EntryType::Normal, presetPayload(2, 1)}};
    net.step(old);
    EXPECT_EQ(net.logTerms(2), (std::vector<std::uint64_t>{1, 1, 3}));
}

// §5.3: "the follower can include the term of the conflicting entry and the first index it stores
// for that term. With this information, the leader can decrement nextIndex to bypass all of the
// conflicting entries in that term; one AppendEntries RPC will be required for each term with
// conflicting entries, rather than one RPC per entry."
TEST(Section5_3_Replication, ConflictHintSkipsAWholeTermPerRoundTrip)
{
    //            index: 1  2  3  4  5  6  7  8  9  10 11 12
    // leader (1), 3:    1  2  2  2  2  4  4  4  4
    // follower (2):     1  3  3  3  3  3  3  3  3  3  3  3
    const std::vector<Term> leaderLog{1, 2, 2, 2, 2, 4, 4, 4, 4};
    const std::vector<Term> followerLog{1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
    Network net(3, classicRaft,
                {{1, Preset{leaderLog, HardState{4, NoNode, 0}}},
                 {2, Preset{followerLog, HardState{4, NoNode, 0}}},
                 {3, Preset{leaderLog, HardState{4, NoNode, 0}}}});
    net.elect(1);
    ASSERT_EQ(net.raft(1).term(), 5u);

    // The first probe (after index 9, term 4) is refused: the follower hints its entry 9 of term 3,
    // and the leader skips its whole term-4 run to index 5. The second probe (after index 5, term 2)
    // is refused: the follower hints index 1, skipping its whole term-3 run. The third matches.
    // Stepping back one entry per refusal would have taken eight refusals.
    EXPECT_EQ(rejectionsDelivered(net, 2, 1), 2u);
    EXPECT_EQ(net.logTerms(2), net.logTerms(1));
    EXPECT_EQ(net.logTerms(2), (std::vector<std::uint64_t>{1, 2, 2, 2, 2, 4, 4, 4, 4, 5}));
}

// §5.3: "The leader keeps track of the highest index it knows to be committed, and it includes that
// index in future AppendEntries RPCs (including heartbeats) so that the other servers eventually
// find out." A heartbeat carries no entries, so it tells a follower no more than the follower is
// known to hold: min(match, commit).
TEST(Section5_3_Replication, HeartbeatsCarryTheCommitIndexCappedAtTheFollowersMatch)
{
    Network net(3);
    net.elect(1);
    net.cut(1, 3);
    net.propose(1, "x");
    net.deliverAll();
    const Index commit = net.raft(1).log().committed();
    const Index match3 = net.raft(1).progress().at(3).match;
    ASSERT_LT(match3, commit);

    net.tick(1);
    net.drain(1);
    const std::vector<Message> toTwo = net.peek(allOf({ofType(MessageType::Heartbeat), to(2)}));
    const std::vector<Message> toThree = net.peek(allOf({ofType(MessageType::Heartbeat), to(3)}));
    ASSERT_EQ(toTwo.size(), 1u);
    ASSERT_EQ(toThree.size(), 1u);
    EXPECT_EQ(toTwo[0].commit, commit);
    EXPECT_EQ(toThree[0].commit, match3);
    EXPECT_TRUE(toTwo[0].entries.empty());
}

// Figure 2, AppendEntries: "entries[] log entries to store (empty for heartbeat; may send more than
// one for efficiency)". Thesis §10.2.2: "Leaders in LogCabin send as many entries as are available
// between the follower's next index and the end of the log, up to one megabyte in size."
TEST(Section5_3_Replication, ManyEntriesTravelInOneAppendUpToTheSizeLimit)
{
    Network net(3);
    net.elect(1);
    for (int i = 0; i < 10; ++i)
        net.propose(1, "e" + std::to_string(i));
    net.drain(1);
    const std::vector<Message> one = net.peek(appendsFrom(1, 2));
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].entries.size(), 10u);
    net.deliverAll();
    EXPECT_EQ(net.appliedData(2).size(), 10u);

    // With room for three entries per message, ten entries take four messages.
    Network limited(3, [](Config &c) { c.maxSizePerMsg = 3 * (EntryOverheadBytes + 2); });
    limited.elect(1);
    for (int i = 0; i < 10; ++i)
        limited.propose(1, "p" + std::to_string(i));
    limited.drain(1);
    const std::vector<Message> split = limited.peek(appendsFrom(1, 2));
    ASSERT_EQ(split.size(), 4u);
    EXPECT_EQ(split[0].entries.size(), 3u);
    EXPECT_EQ(split[3].entries.size(), 1u);
    limited.deliverAll();
    EXPECT_EQ(limited.appliedData(2).size(), 10u);
}

// Thesis §10.2.2: "The AppendEntries consistency check guarantees that pipelining is safe". The
// pipeline to a follower is bounded by an inflight window (messages): full, the leader sends
// nothing more until the follower acknowledges.
TEST(Section5_3_Replication, InflightWindowByCountStopsSendingWhenFullAndResumesOnAcknowledgement)
{
    Network net(3, [](Config &c) { c.maxInflightMsgs = 2; });
    net.elect(1);
    for (const char *d : {"a", "b", "c"}) {
        net.propose(1, d);
        net.drain(1);
    }
    EXPECT_EQ(net.count(appendsFrom(1, 2)), 2u);
    EXPECT_EQ(net.count(allOf({appendsFrom(1, 2), carrying("c")})), 0u) << "the window holds a and b";
    EXPECT_TRUE(net.raft(1).progress().at(2).inflights.full());

    ASSERT_EQ(net.deliver(allOf({appendsFrom(1, 2), carrying("a")})), 1u);
    ASSERT_EQ(net.deliver(allOf({ofType(MessageType::AppendResponse), between(2, 1)})), 1u);
    EXPECT_EQ(net.count(allOf({appendsFrom(1, 2), carrying("c")})), 1u) << "the acknowledgement freed a slot";
    EXPECT_EQ(net.count(allOf({appendsFrom(1, 3), carrying("c")})), 0u) << "node 3 acknowledged nothing yet";

    net.deliverAll();
    for (NodeId id : net.ids())
        EXPECT_EQ(net.appliedData(id), (std::vector<std::string>{"a", "b", "c"})) << "node " << id;
}

// The same window bounded by bytes.
TEST(Section5_3_Replication, InflightWindowByBytesStopsSendingWhenFull)
{
    const std::uint64_t entryBytes = EntryOverheadBytes + 100;
    Network net(3, [entryBytes](Config &c) {
        c.maxSizePerMsg = entryBytes; // one entry per message
        c.maxInflightBytes = 2 * entryBytes;
    });
    net.elect(1);
    for (char c : {'1', '2', '3'})
        net.propose(1, std::string(100, c));
    net.drain(1);
    const std::vector<Message> sent = net.peek(appendsFrom(1, 2));
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(net.raft(1).progress().at(2).inflights.bytes(), 2 * entryBytes);

    ASSERT_EQ(net.deliver(allOf({appendsFrom(1, 2), carrying(std::string(100, '1'))})), 1u);
    net.deliver(allOf({ofType(MessageType::AppendResponse), between(2, 1)}));
    EXPECT_EQ(net.count(allOf({appendsFrom(1, 2), carrying(std::string(100, '3'))})), 1u);
    net.deliverAll();
    EXPECT_EQ(net.appliedData(3).size(), 3u);
}

// §5.3: "After a rejection, the leader decrements nextIndex and retries the AppendEntries RPC."
// Until a follower's match point is known, the leader probes it with one Append at a time; once it
// matched, Appends are pipelined.
TEST(Section5_3_Replication, FollowerInProbeStateGetsOneAppendAtATime)
{
    Network net(3);
    net.campaign(1);
    for (int i = 0; i < 5 && net.raft(1).role() != Role::Leader; ++i)
        net.deliver([](const Message &m) { return m.type != MessageType::Append; });
    ASSERT_EQ(net.raft(1).role(), Role::Leader);
    ASSERT_EQ(net.raft(1).progress().at(2).state, ProgressState::Probe);

    net.propose(1, "a");
    net.drain(1);
    net.propose(1, "b");
    net.drain(1);
    EXPECT_EQ(net.count(appendsFrom(1, 2)), 1u) << "only the first probe is outstanding";

    net.deliverAll();
    ASSERT_EQ(net.raft(1).progress().at(2).state, ProgressState::Replicate);
    net.propose(1, "c");
    net.drain(1);
    net.propose(1, "d");
    net.drain(1);
    EXPECT_EQ(net.count(appendsFrom(1, 2)), 2u) << "a matched follower gets Appends pipelined";
    net.deliverAll();
    EXPECT_EQ(net.appliedData(2), (std::vector<std::string>{"a", "b", "c", "d"}));
}

// §5.3: "If followers crash or run slowly, or if network packets are lost, the leader retries
// AppendEntries RPCs indefinitely (even after it has responded to the client) until all followers
// eventually store all log entries."
TEST(Section5_3_Replication, LostAppendsAreRetriedUntilEveryFollowerHasTheEntries)
{
    Network net(3);
    net.elect(1);
    net.propose(1, "a");
    net.propose(1, "b");
    EXPECT_EQ(net.drop(ofType(MessageType::Append)), 2u);
    net.deliverAll();
    EXPECT_TRUE(net.appliedData(1).empty()) << "nobody got the entries";

    // No new proposal comes to expose the gap: the leader itself must notice and send again.
    const int electionTick = net.config(1).electionTick;
    int ticks = 0;
    while (ticks < 4 * electionTick && net.appliedData(2).size() < 2) {
        net.tick(1);
        net.deliverAll();
        ++ticks;
    }
    for (NodeId id : net.ids())
        EXPECT_EQ(net.appliedData(id), (std::vector<std::string>{"a", "b"})) << "node " << id;
    EXPECT_LE(ticks, 2 * electionTick) << "the retry should come within about an election timeout";
}

// The same when the lost Appends filled the follower's inflight window: the leader must not wait
// for acknowledgements that will never come.
TEST(Section5_3_Replication, LostAppendsAreRetriedEvenWhenTheyFilledTheInflightWindow)
{
    Network net(3, [](Config &c) { c.maxInflightMsgs = 2; });
    net.elect(1);
    for (const char *d : {"a", "b", "c"}) {
        net.propose(1, d);
        net.drain(1);
    }
    ASSERT_TRUE(net.raft(1).progress().at(2).inflights.full());
    net.drop(appendsFrom(1, 2));
    net.deliverAll();
    EXPECT_EQ(net.appliedData(3), (std::vector<std::string>{"a", "b", "c"}));

    for (int i = 0; i < 3 * net.config(1).electionTick && net.appliedData(2).size() < 3; ++i) {
        net.tick(1);
        net.deliverAll();
    }
    EXPECT_EQ(net.appliedData(2), (std::vector<std::string>{"a", "b", "c"}));
}

// RawNode::reportUnreachable: when the transport says a connection broke, replication to that peer
// restarts from its last acknowledged index at once instead of after a timeout.
TEST(Section5_3_Replication, UnreachableReportRestartsReplicationAtOnce)
{
    Network net(3);
    net.elect(1);
    net.propose(1, "a");
    ASSERT_EQ(net.drop(appendsFrom(1, 2)), 1u);
    ASSERT_EQ(net.raft(1).progress().at(2).state, ProgressState::Replicate);
    net.node(1).reportUnreachable(2);
    EXPECT_EQ(net.raft(1).progress().at(2).state, ProgressState::Probe);
    net.drain(1);
    EXPECT_EQ(net.count(allOf({appendsFrom(1, 2), carrying("a")})), 1u) << "sent again without any tick";
    net.deliverAll();
    EXPECT_EQ(net.appliedData(2), std::vector<std::string>{"a"});
}

// ---- §5.4.2 Committing entries from previous terms (Figure 8) ----------------------------------

// Figure 8, built by hand and driven to (c). Before it, after (b):
//   S1: 1 2      term 3   led term 2 and got its entry 2 to S2 only
//   S2: 1 2      term 2
//   S3: 1        term 3   voted for S5
//   S4: 1        term 3   voted for S5
//   S5: 1 3      term 3   led term 3 and wrote its own entry 2, then crashed
// (c): S1 is elected for term 4 (with S2, S3, S4) and gets its entry 2 of term 2 onto S3, so that
// entry is on a majority, but not the no-op of term 4 (held back here and returned to the caller).
struct Figure8 {
    std::unique_ptr<Network> net;
    std::vector<Message> heldNoOps; // S1's Appends to S3 carrying the term-4 entry
};

Figure8 figure8AtC(ConfigTweak extra = {}, bool crashLeaderOnCommit = false)
{
    const std::map<NodeId, Preset> presets{
        {1, Preset{{1, 2}, HardState{3, NoNode, 1}}}, {2, Preset{{1, 2}, HardState{2, NoNode, 1}}},
        {3, Preset{{1}, HardState{3, 5, 1}}},         {4, Preset{{1}, HardState{3, 5, 1}}},
        {5, Preset{{1, 3}, HardState{3, 5, 1}}},
    };
    // One entry per Append from S1, so entry 2 can reach S3 without the no-op behind it.
    const ConfigTweak oneEntryPerMessage = [](Config &c) {
        if (c.id == 1)
            c.maxSizePerMsg = 1;
    };
    Figure8 f;
    f.net = std::make_unique<Network>(5, both(both(classicRaft, oneEntryPerMessage), std::move(extra)), presets);
    Network &net = *f.net;
    net.isolate(5);
    net.campaign(1);
    net.deliver(ofType(MessageType::Vote));
    net.deliver(ofType(MessageType::VoteResponse));
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.raft(1).term(), 4u);
    net.cut(1, 4); // S4 keeps only entry 1, as in the figure

    // Hold back S1's Appends that S3 would accept with the term-4 entry in them. (The first probe
    // carries it too, but S3 refuses that one: it lacks entry 2.)
    const Filter noOpToS3 = [&net](const Message &m) {
        return m.type == MessageType::Append && m.from == 1 && m.to == 3 && net.raft(3).log().matchTerm(m.index, m.logTerm)
            && std::any_of(m.entries.begin(), m.entries.end(), [](const Entry &e) { return e.term == 4; });
    };
    for (int i = 0; i < 50; ++i) {
        for (Message &m : net.take(noOpToS3))
            f.heldNoOps.push_back(std::move(m));
        if (net.inFlight().empty())
            break;
        net.deliver(anything());
        if (crashLeaderOnCommit && net.raft(1).log().committed() >= 2) {
            net.isolate(1); // S1 crashes before anyone else learns the commit index
            break;
        }
    }
    return f;
}

// §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log entries
// from the leader's current term are committed by counting replicas".
TEST(Section5_4_2_Commitment, LeaderNeverCommitsAnEarlierTermsEntryByCountingReplicas)
{
    Figure8 f = figure8AtC();
    Network &net = *f.net;
    EXPECT_EQ(net.logTerms(1), (std::vector<std::uint64_t>{1, 2, 4}));
    EXPECT_EQ(net.logTerms(2), (std::vector<std::uint64_t>{1, 2, 4}));
    EXPECT_EQ(net.logTerms(3), (std::vector<std::uint64_t>{1, 2}));
    ASSERT_FALSE(f.heldNoOps.empty());
    EXPECT_EQ(net.raft(1).progress().at(3).match, 2u) << "entry 2 (term 2) is on S1, S2 and S3: a majority";
    EXPECT_EQ(net.raft(1).log().committed(), 1u) << "but it is of an earlier term, so it is not committed";
    EXPECT_EQ(net.applied(1).size(), 1u);
}

// §5.4.2: "If S1 crashes as in (d), S5 could be elected leader (with votes from S2, S3, and S4) and
// overwrite the entry with its own entry from term 3." That is safe only because entry 2 was never
// committed.
TEST(Section5_4_2_Commitment, Figure8UncommittedEntryOnAMajorityMayBeOverwritten)
{
    Figure8 f = figure8AtC();
    Network &net = *f.net;
    net.heal();
    net.isolate(1);
    net.campaign(5);
    net.deliverAll();
    EXPECT_NE(net.raft(5).role(), Role::Leader) << "term 4: every voter already voted for S1";
    net.campaign(5);
    net.deliverAll();
    ASSERT_EQ(net.raft(5).role(), Role::Leader) << "term 5: S3 and S4 vote for S5's log (last term 3)";
    for (NodeId id : {2, 3, 4, 5}) {
        EXPECT_EQ(net.raft(id).log().termOrZero(2), 3u) << "node " << id;
        ASSERT_GE(net.applied(id).size(), 2u) << "node " << id;
        EXPECT_EQ(net.applied(id)[1].term, 3u) << "node " << id;
    }
    EXPECT_TRUE(net.violations().empty());
}

// §5.4.2: "once an entry from the current term has been committed in this way, then all prior
// entries are committed indirectly because of the Log Matching Property" (Figure 8 (e)). §8: "Raft
// handles this by having each leader commit a blank no-op entry into the log at the start of its
// term."
TEST(Section5_4_2_Commitment, NoOpOfTheNewTermCommitsTheOlderEntriesWithIt)
{
    Figure8 f = figure8AtC();
    Network &net = *f.net;
    for (Message &m : f.heldNoOps)
        net.send(std::move(m));
    net.deliverAll();
    EXPECT_EQ(net.raft(1).log().committed(), 3u);
    EXPECT_EQ(net.raft(1).log().termOrZero(3), 4u);
    for (NodeId id : {1, 2, 3}) {
        ASSERT_EQ(net.applied(id).size(), 3u) << "node " << id;
        EXPECT_EQ(net.applied(id)[1].term, 2u) << "node " << id << ": entry 2 of term 2 is committed now";
        EXPECT_TRUE(net.applied(id)[2].data.empty()) << "entry 3 is the leader's no-op";
    }

    // Now S5 can no longer win: a majority holds a log ending in term 4.
    net.heal();
    for (int attempt = 0; attempt < 3; ++attempt) {
        net.campaign(5);
        net.deliverAll();
        EXPECT_NE(net.raft(5).role(), Role::Leader) << "attempt " << attempt;
    }
    EXPECT_EQ(net.raft(3).log().termOrZero(2), 2u);
}

// The check the first Figure 8 test relies on can fail: with the injected bug the leader commits
// entry 2 of term 2 by counting replicas, applies it, and crashes; S5 is then elected and its
// entry 2 of term 3 is applied elsewhere. The harness reports it as a State Machine Safety
// violation.
TEST(InjectedBugs, CommittingAnEarlierTermByCountingIsCaughtAsDivergentApply)
{
    Figure8 f = figure8AtC([](Config &c) { c.bugs.commitOldTermByCounting = c.id == 1; }, true);
    Network &net = *f.net;
    net.expectViolations();
    ASSERT_EQ(net.raft(1).log().committed(), 2u);
    ASSERT_EQ(net.applied(1).size(), 2u);
    EXPECT_EQ(net.applied(1)[1].term, 2u);

    net.heal();
    net.isolate(1);
    net.campaign(5);
    net.deliverAll();
    net.campaign(5);
    net.deliverAll();
    ASSERT_EQ(net.raft(5).role(), Role::Leader);
    const auto &v = net.violations();
    EXPECT_TRUE(std::any_of(v.begin(), v.end(), [](const std::string &s) { return s.find("state machine safety") != std::string::npos; }))
        << (v.empty() ? std::string("no violation reported") : v.front());
}

// ---- Proposal forwarding (thesis §6.2) ---------------------------------------------------------

// Thesis §6.2 (paraphrased): a server that is not the leader either rejects a client's request and
// points it to the leader, or proxies the request to the leader. Here a follower proxies proposals
// (unless Config::disableProposalForwarding); they commit like the leader's own.
TEST(ProposalForwarding, ProposalOnAFollowerReachesTheLeaderAndCommits)
{
    Network net(3);
    net.elect(1);
    EXPECT_EQ(net.propose(2, "via follower"), Status::Ok);
    net.drain(2);
    EXPECT_EQ(net.count(allOf({ofType(MessageType::Propose), between(2, 1)})), 1u);
    net.deliverAll();
    for (NodeId id : net.ids())
        EXPECT_EQ(net.appliedData(id), std::vector<std::string>{"via follower"}) << "node " << id;
}

TEST(ProposalForwarding, ProposalWithoutALeaderReturnsNoLeader)
{
    Network net(3, classicRaft);
    EXPECT_EQ(net.propose(2, "nobody leads"), Status::NoLeader);
    net.campaign(1);
    EXPECT_EQ(net.propose(1, "candidate"), Status::NoLeader);
    net.drainAll();
    EXPECT_EQ(net.count(ofType(MessageType::Propose)), 0u);
}

TEST(ProposalForwarding, DisabledForwardingDropsFollowerProposals)
{
    Network net(3, [](Config &c) { c.disableProposalForwarding = true; });
    net.elect(1);
    EXPECT_EQ(net.propose(2, "refused"), Status::ProposalDropped);
    EXPECT_EQ(net.propose(1, "accepted"), Status::Ok);
    net.deliverAll();
    EXPECT_EQ(net.appliedData(2), std::vector<std::string>{"accepted"});
}

// ---- Flow control -----------------------------------------------------------------------------

// Config::maxUncommittedEntriesSize: the leader refuses proposals while its uncommitted tail is
// over budget and accepts them again once the tail commits.
TEST(FlowControl, LeaderRefusesProposalsWhileTheUncommittedTailIsOverBudget)
{
    const std::uint64_t budget = 3 * (EntryOverheadBytes + 10);
    Network net(3, [budget](Config &c) { c.maxUncommittedEntriesSize = budget; });
    net.elect(1);
    net.isolate(2);
    net.isolate(3);
    for (char c : {'a', 'b', 'c'})
        EXPECT_EQ(net.propose(1, std::string(10, c)), Status::Ok);
    EXPECT_EQ(net.propose(1, std::string(10, 'd')), Status::ProposalDropped);

    net.heal();
    for (int i = 0; i < 3 * net.config(1).electionTick && net.appliedData(2).size() < 3; ++i) {
        net.tick(1);
        net.deliverAll();
    }
    EXPECT_EQ(net.appliedData(2).size(), 3u);
    EXPECT_EQ(net.propose(1, std::string(10, 'e')), Status::Ok);
}

// A proposal larger than the whole budget is still admitted into an empty tail, or it could never
// be proposed at all.
TEST(FlowControl, OversizedProposalIsAdmittedIntoAnEmptyTail)
{
    Network net(3, [](Config &c) { c.maxUncommittedEntriesSize = 64; });
    net.elect(1);
    EXPECT_EQ(net.propose(1, std::string(500, 'x')), Status::Ok);
    EXPECT_EQ(net.propose(1, "more"), Status::ProposalDropped);
    net.deliverAll();
    EXPECT_EQ(net.propose(1, "more"), Status::Ok);
}

// Every proposal that commits gives its bytes back to the budget, empty ones included.
TEST(FlowControl, CommittedProposalsReturnTheirBudgetEvenWhenEmpty)
{
    Network net(3, [](Config &c) { c.maxUncommittedEntriesSize = 100; });
    net.elect(1);
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(net.propose(1, ""), Status::Ok) << "proposal " << i;
        net.deliverAll();
    }
    EXPECT_EQ(net.applied(2).size(), 21u) << "the no-op and twenty empty proposals";
}

// A follower that rejects an Append below what it acknowledged in this term lost durable data
// (a wiped data directory under its old id): replication cannot repair it, and the leader says so,
// once, instead of probing in silence.
TEST(Replication, AFollowerThatLostAcknowledgedEntries_isReportedOnce)
{
    struct Capture final : Logger {
        std::vector<std::string> errors;
        void log(LogLevel level, std::string_view message) override
        {
            if (level == LogLevel::Error)
                errors.emplace_back(message);
        }
    } capture;
    Network net(3, [&](Config &c) { c.logger = &capture; });
    net.elect(1);
    for (int i = 0; i < 5; ++i)
        ASSERT_EQ(net.propose(1, "x" + std::to_string(i)), Status::Ok);
    net.deliverAll();
    const Index match = net.raft(1).progress().at(2).match;
    ASSERT_GE(match, 5u);
    Message lost;
    lost.type = MessageType::AppendResponse;
    lost.from = 2;
    lost.to = 1;
    lost.term = net.raft(1).term();
    lost.index = match + 1; // an Append after what it acknowledged ...
    lost.reject = true;
    lost.rejectHint = 0; // ... refused by a node that now holds nothing
    net.step(lost);
    net.step(lost);
    ASSERT_EQ(capture.errors.size(), 1u);
    EXPECT_NE(capture.errors[0].find("node 2 acknowledged entries up to index " + std::to_string(match)), std::string::npos) << capture.errors[0];
    EXPECT_NE(capture.errors[0].find("lost data"), std::string::npos);
    EXPECT_EQ(net.raft(1).progress().at(2).match, match) << "what counted for commits stays";
}

} // namespace
} // namespace dengine::raft::test
