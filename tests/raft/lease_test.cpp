// SPDX-License-Identifier: Apache-2.0
//
// ReadOnlyOption::LeaseOnRequest and Raft::leaseReadable() (raft/config.h, raft/raft.h): reads
// through readIndex() always take a quorum round, and the lease of thesis §6.4.1 is kept beside
// them so that the runtime can serve chosen reads on the leader at once.

#include "network.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace dengine::raft::test {
namespace {

ConfigTweak readOnly(ReadOnlyOption option)
{
    return [option](Config &c) { c.readOnlyOption = option; };
}

const char *name(ReadOnlyOption option)
{
    switch (option) {
    case ReadOnlyOption::Safe: return "Safe";
    case ReadOnlyOption::LeaseBased: return "LeaseBased";
    case ReadOnlyOption::LeaseOnRequest: return "LeaseOnRequest";
    }
    return "?";
}

// A three-node cluster with the option, past the vote quarantine of a (re)started lease node, in
// which node 1 leads and has committed its no-op. No heartbeat round has been acknowledged yet.
std::unique_ptr<Network> ledByOne(ReadOnlyOption option)
{
    auto net = std::make_unique<Network>(3, readOnly(option));
    net->tickAll(net->config(1).electionTick); // a restarted lease node refuses votes for an election timeout
    net->drop(anything());
    net->elect(1);
    EXPECT_TRUE(net->raft(1).committedInTerm());
    return net;
}

// Ticks the leader once and delivers the heartbeat round it starts: a quorum acknowledges it.
void acknowledgedRound(Network &net, NodeId leader)
{
    net.tick(leader);
    net.deliverAll();
}

int leaseTicks(const Network &net)
{
    return net.config(1).electionTick - 1 - net.config(1).leaseDriftTicks;
}

// The rule of the option: readIndex() is the safe ReadIndex, whatever the lease. Even with a lease
// that would let a LeaseBased leader answer at once, the read waits for a quorum round.
TEST(LeaseOnRequest, ReadIndexStillTakesAQuorumRoundWithAValidLease)
{
    auto net = ledByOne(ReadOnlyOption::LeaseOnRequest);
    acknowledgedRound(*net, 1);
    ASSERT_TRUE(net->raft(1).leaseReadable()) << "the lease is valid";
    const Index commit = net->raft(1).log().committed();

    net->readIndex(1, 5);
    net->drain(1);
    EXPECT_TRUE(net->readStates(1).empty()) << "not answered from the lease";
    EXPECT_EQ(net->count(ofType(MessageType::Heartbeat)), 2u) << "a round for the read";

    net->deliver(allOf({ofType(MessageType::Heartbeat), to(2)}));
    net->deliver(allOf({ofType(MessageType::HeartbeatResponse), from(2)}));
    EXPECT_EQ(net->readStates(1), (std::vector<ReadState>{{5, commit}})) << "answered by the quorum round";
}

// The same on a follower: its read goes through the leader, which takes a round too.
TEST(LeaseOnRequest, ForwardedReadIndexTakesAQuorumRoundAtTheLeader)
{
    auto net = ledByOne(ReadOnlyOption::LeaseOnRequest);
    acknowledgedRound(*net, 1);
    ASSERT_TRUE(net->raft(1).leaseReadable());
    net->readIndex(2, 6);
    net->deliver(ofType(MessageType::ReadIndex));
    EXPECT_EQ(net->count(ofType(MessageType::ReadIndexResponse)), 0u) << "not answered from the lease";
    EXPECT_EQ(net->count(ofType(MessageType::Heartbeat)), 2u);
    net->deliverAll();
    EXPECT_EQ(net->readStates(2).size(), 1u);
}

// leaseReadable() holds on a leader from a quorum-acknowledged round for electionTick - 1 -
// leaseDriftTicks ticks after the round started, and not once they have passed without a newer
// acknowledged round.
TEST(LeaseOnRequest, LeaseReadableAfterAnAcknowledgedRoundUntilTheLeaseRunsOut)
{
    auto net = ledByOne(ReadOnlyOption::LeaseOnRequest);
    EXPECT_FALSE(net->raft(1).leaseReadable()) << "no round acknowledged yet in this term";
    acknowledgedRound(*net, 1);
    EXPECT_TRUE(net->raft(1).leaseReadable());

    net->isolate(1); // no acknowledgement from now on
    const int lease = leaseTicks(*net);
    for (int t = 1; t < lease; ++t) {
        net->tick(1);
        net->drop(anything());
        EXPECT_TRUE(net->raft(1).leaseReadable()) << t << " ticks after the round";
    }
    net->tick(1);
    net->drop(anything());
    ASSERT_EQ(net->raft(1).role(), Role::Leader) << "still leader (check-quorum has not stepped it down yet)";
    EXPECT_FALSE(net->raft(1).leaseReadable()) << "the lease ran out";

    net->heal();
    acknowledgedRound(*net, 1);
    EXPECT_TRUE(net->raft(1).leaseReadable()) << "a new acknowledged round renews it";
}

// The lease runs from the start of the acknowledged round, not from its acknowledgement: a round
// whose answers come late buys only what is left of its lease.
TEST(LeaseOnRequest, LeaseRunsFromTheStartOfTheRoundNotFromTheAcknowledgement)
{
    auto net = ledByOne(ReadOnlyOption::LeaseOnRequest);
    net->tick(1);
    net->drain(1);
    const std::vector<Message> first = net->take(ofType(MessageType::Heartbeat));
    ASSERT_EQ(first.size(), 2u);
    const int lease = leaseTicks(*net);
    net->tick(1, lease - 1); // later rounds, all lost
    net->drop(anything());
    for (const Message &m : first)
        net->send(m);
    net->deliver(ofType(MessageType::Heartbeat));
    net->deliver(ofType(MessageType::HeartbeatResponse));
    EXPECT_TRUE(net->raft(1).leaseReadable()) << "the first round's lease has one tick left";
    net->tick(1);
    net->drop(anything());
    EXPECT_FALSE(net->raft(1).leaseReadable()) << "and it is gone after it";
}

// Only a leader's lease counts: a follower that has just acknowledged a round is not lease-readable.
TEST(LeaseOnRequest, FollowersAreNeverLeaseReadable)
{
    for (ReadOnlyOption option : {ReadOnlyOption::LeaseOnRequest, ReadOnlyOption::LeaseBased}) {
        SCOPED_TRACE(name(option));
        auto net = ledByOne(option);
        acknowledgedRound(*net, 1);
        ASSERT_TRUE(net->raft(1).leaseReadable());
        EXPECT_FALSE(net->raft(2).leaseReadable());
        EXPECT_FALSE(net->raft(3).leaseReadable());
    }
}

// "Always false with ReadOnlyOption::Safe", at every point where the lease options report it.
TEST(LeaseOnRequest, LeaseReadableIsAlwaysFalseWithSafe)
{
    auto net = ledByOne(ReadOnlyOption::Safe);
    for (int t = 0; t < 3 * net->config(1).electionTick; ++t) {
        acknowledgedRound(*net, 1);
        for (NodeId id : net->ids())
            ASSERT_FALSE(net->raft(id).leaseReadable()) << "node " << id << " after " << t << " rounds";
    }
    ASSERT_EQ(net->raft(1).role(), Role::Leader);
    // The same steps with a lease option do report it (so the check above can fail).
    auto leased = ledByOne(ReadOnlyOption::LeaseOnRequest);
    acknowledgedRound(*leased, 1);
    EXPECT_TRUE(leased->raft(1).leaseReadable());
}

// The lease relies on followers refusing votes within it, which is check-quorum's rule: validation
// refuses the option without check-quorum, naming the field, and so does RawNode.
TEST(LeaseOnRequest, ConfigRefusesLeaseOnRequestWithoutCheckQuorum)
{
    Config c;
    c.id = 1;
    c.readOnlyOption = ReadOnlyOption::LeaseOnRequest;
    c.checkQuorum = false;
    const std::string problem = c.validate();
    EXPECT_EQ(problem.rfind("readOnlyOption:", 0), 0u) << problem;
    MemoryStorage storage({1, 2, 3});
    EXPECT_THROW(RawNode(c, storage), std::invalid_argument);
    c.checkQuorum = true;
    EXPECT_EQ(c.validate(), "");
    EXPECT_NO_THROW(RawNode(c, storage));
}

// A lease node that restarts may have acknowledged a leader's round just before it crashed: it
// refuses votes for an election timeout, so that lease runs out before it helps elect another
// leader. LeaseOnRequest keeps the lease, so it keeps the rule; Safe has no lease and no quarantine.
TEST(LeaseOnRequest, RestartedNodeRefusesVotesForAnElectionTimeoutLikeLeaseBased)
{
    for (ReadOnlyOption option : {ReadOnlyOption::LeaseOnRequest, ReadOnlyOption::LeaseBased, ReadOnlyOption::Safe}) {
        SCOPED_TRACE(name(option));
        auto net = ledByOne(option);
        net->deliverAll();
        net->restart(3);
        net->drain(3);
        const int electionTick = net->config(3).electionTick;
        const Term term = net->raft(3).term();

        // Node 2 asks for votes in a newer term (as after node 1 failed). Node 3 knows no leader
        // since its restart, so only the quarantine can make it ignore the request.
        const auto askForVote = [&] {
            Message vote = makeMessage(MessageType::Vote, 2, 3, net->raft(3).term() + 1);
            vote.index = net->raft(2).log().lastIndex();
            vote.logTerm = net->raft(2).log().lastTerm();
            net->step(vote);
            net->drain(3);
            return net->take(allOf({ofType(MessageType::VoteResponse), between(3, 2)}));
        };
        ASSERT_EQ(net->raft(3).leader(), NoNode);
        const std::vector<Message> early = askForVote();
        if (option == ReadOnlyOption::Safe) {
            ASSERT_EQ(early.size(), 1u) << "no lease, no quarantine";
            EXPECT_FALSE(early[0].reject);
            continue;
        }
        EXPECT_TRUE(early.empty()) << "a vote request right after the restart is ignored";
        EXPECT_EQ(net->raft(3).term(), term) << "and does not move the term";

        net->tick(3, electionTick - 1);
        net->drop(anything());
        EXPECT_TRUE(askForVote().empty()) << "still ignored one tick before the election timeout";
        EXPECT_EQ(net->raft(3).term(), term);

        net->tick(3);
        net->drop(anything());
        const std::vector<Message> late = askForVote();
        ASSERT_EQ(late.size(), 1u) << "answered once an election timeout has passed";
        EXPECT_FALSE(late[0].reject);
        EXPECT_GT(net->raft(3).term(), term);
    }
}

} // namespace
} // namespace dengine::raft::test
