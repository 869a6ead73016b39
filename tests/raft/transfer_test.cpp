// SPDX-License-Identifier: Apache-2.0
// Leadership transfer (Raft thesis §3.10): "the prior leader sends a TimeoutNow request to the
// target server. This request has the same effect as the target server's election timer firing".
// Used when a leader stops, so the cluster does not wait an election timeout for a new one.
#include "network.h"

#include <gtest/gtest.h>

using namespace dengine::raft;
using namespace dengine::raft::test;

// "the prior leader stops accepting new client requests" and, once the target is up to date,
// sends TimeoutNow; the target wins at once, without waiting for its timer or a pre-vote.
TEST(Section3_10_Transfer, UpToDateTargetIsToldToCampaignAndWinsAtOnce)
{
    Network net(3);
    net.elect(1);
    net.propose(1, "a");
    net.deliverAll();
    const Term before = net.raft(1).term();
    ASSERT_EQ(net.node(1).transferLeadership(2), Status::Ok);
    EXPECT_EQ(net.raft(1).leadTransferee(), 2u);
    EXPECT_EQ(net.propose(1, "refused while handing over"), Status::ProposalDropped);
    net.deliverAll();
    EXPECT_EQ(net.leader(), std::optional<NodeId>(2));
    EXPECT_EQ(net.raft(2).term(), before + 1) << "one election, no pre-vote round";
    EXPECT_EQ(net.raft(1).role(), Role::Follower);
    EXPECT_EQ(net.raft(1).leadTransferee(), NoNode);
    // Nothing committed was lost, and the new leader takes writes.
    EXPECT_EQ(net.propose(2, "b"), Status::Ok);
    net.deliverAll();
    EXPECT_EQ(net.appliedData(3), (std::vector<std::string>{"a", "b"}));
}

// "the prior leader ... transfers its log entries to the target server" first when it lags.
TEST(Section3_10_Transfer, LaggingTargetIsBroughtUpToDateBeforeTimeoutNow)
{
    Network net(3);
    net.elect(1);
    net.isolate(3);
    net.propose(1, "a");
    net.propose(1, "b");
    net.deliverAll();
    ASSERT_LT(net.raft(3).log().lastIndex(), net.raft(1).log().lastIndex());
    net.heal();
    ASSERT_EQ(net.node(1).transferLeadership(3), Status::Ok);
    net.drainAll();
    EXPECT_EQ(net.count(ofType(MessageType::TimeoutNow)), 0u) << "not before the target has the whole log";
    // Heartbeats reveal the gap; Appends fill it; then TimeoutNow goes and 3 wins.
    for (int i = 0; i < 5 && net.leader() != std::optional<NodeId>(3); ++i) {
        net.tick(1);
        net.deliverAll();
    }
    EXPECT_EQ(net.leader(), std::optional<NodeId>(3));
    EXPECT_EQ(net.appliedData(3), (std::vector<std::string>{"a", "b"}));
}

// Voters grant a transfer campaign's votes even while they hear from the leader (check-quorum
// lease), which would make them ignore any other candidate.
TEST(Section3_10_Transfer, VotersInTheLeaderLeaseStillVoteForTheTransferTarget)
{
    Network net(3); // check-quorum and pre-vote on (the defaults)
    net.elect(1);
    net.deliverAll();
    ASSERT_TRUE(net.config(3).checkQuorum);
    // An ordinary campaign by 2 now gets nowhere: 3 heard from the leader within the timeout.
    net.campaign(2);
    net.deliverAll();
    EXPECT_EQ(net.leader(), std::optional<NodeId>(1));
    ASSERT_EQ(net.node(1).transferLeadership(2), Status::Ok);
    net.deliverAll();
    EXPECT_EQ(net.leader(), std::optional<NodeId>(2));
}

// "If the transfer does not complete within an election timeout, the prior leader aborts the
// transfer and resumes accepting client requests."
TEST(Section3_10_Transfer, TransferToAnUnreachableTargetIsAbandonedAfterAnElectionTimeout)
{
    Network net(3);
    net.elect(1);
    net.isolate(2);
    ASSERT_EQ(net.node(1).transferLeadership(2), Status::Ok);
    EXPECT_EQ(net.propose(1, "x"), Status::ProposalDropped);
    for (int i = 0; i < net.config(1).electionTick; ++i) {
        net.tick(1);
        net.deliverAll();
    }
    EXPECT_EQ(net.raft(1).leadTransferee(), NoNode);
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.propose(1, "y"), Status::Ok);
}

TEST(Section3_10_Transfer, OnlyALeaderTransfersAndOnlyToAnotherVoter)
{
    Network net(3);
    net.elect(1);
    EXPECT_EQ(net.node(2).transferLeadership(3), Status::NoLeader);
    EXPECT_EQ(net.node(1).transferLeadership(1), Status::UnknownPeer);
    EXPECT_EQ(net.node(1).transferLeadership(9), Status::UnknownPeer);
    EXPECT_EQ(net.raft(1).leadTransferee(), NoNode);
}

// A leader that is handing over stops serving lease reads at once: the target may win before
// the lease would have run out.
TEST(Section3_10_Transfer, LeaderStopsLeaseReadsWhenItStartsATransfer)
{
    Network net(3, [](Config &c) { c.readOnlyOption = ReadOnlyOption::LeaseOnRequest; });
    for (NodeId id : net.ids())
        net.tick(id, net.config(id).electionTick); // past the restart quarantine
    net.elect(1);
    net.tick(1);
    net.deliverAll();
    ASSERT_TRUE(net.raft(1).leaseReadable());
    ASSERT_EQ(net.node(1).transferLeadership(2), Status::Ok);
    EXPECT_FALSE(net.raft(1).leaseReadable());
}
