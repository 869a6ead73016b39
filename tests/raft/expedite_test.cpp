// SPDX-License-Identifier: Apache-2.0
// Elections that need not wait a whole randomized timeout: a node that starts, and a follower whose
// transport lost its connection to the leader (RawNode::expediteElection, reportUnreachable).
// Pre-vote keeps both from disturbing a leader that is alive.
#include "network.h"

#include <gtest/gtest.h>

using namespace dengine::raft;
using namespace dengine::raft::test;

namespace {

// Ticks `id` until it leaves the follower role; returns how many ticks that took (or limit + 1).
int ticksUntilCampaign(Network &net, NodeId id, int limit)
{
    for (int t = 1; t <= limit; ++t) {
        net.tick(id);
        if (net.raft(id).role() != Role::Follower)
            return t;
    }
    return limit + 1;
}

} // namespace

TEST(ExpediteElection, AStartingNodeCampaignsWithinOneElectionTimeout)
{
    for (int trial = 0; trial < 20; ++trial) {
        Network net(3, [trial](Config &c) { c.seed = 100 + static_cast<std::uint64_t>(trial); });
        net.node(1).expediteElection();
        const int e = net.config(1).electionTick;
        const int t = ticksUntilCampaign(net, 1, 2 * e);
        EXPECT_GE(t, 1);
        EXPECT_LE(t, e) << "trial " << trial << ": a plain timeout is drawn from [" << e << ", " << 2 * e << ")";
    }
}

TEST(ExpediteElection, AFollowerThatLosesItsLeaderForgetsItAndCampaignsSoon)
{
    Network net(3);
    net.elect(1);
    net.deliverAll();
    net.node(2).reportUnreachable(1);
    EXPECT_EQ(net.raft(2).leader(), NoNode) << "without lease reads the follower stops counting on the leader at once";
    EXPECT_LE(ticksUntilCampaign(net, 2, 2 * net.config(2).electionTick), net.config(2).electionTick);
}

TEST(ExpediteElection, ALostConnectionToALiveLeaderDisturbsNothing)
{
    // Only node 2's link broke: node 3 still hears the leader, so 2's pre-vote fails and the
    // leader and its term stay.
    Network net(3);
    net.elect(1);
    net.deliverAll();
    const Term term = net.raft(1).term();
    net.node(2).reportUnreachable(1);
    ticksUntilCampaign(net, 2, 2 * net.config(2).electionTick);
    net.deliverAll();
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    EXPECT_EQ(net.raft(1).term(), term);
    // The next heartbeat brings 2 back to the leader.
    net.tick(1);
    net.deliverAll();
    EXPECT_EQ(net.raft(2).leader(), 1u);
}

TEST(ExpediteElection, WithLeaseReadsTheFollowerKeepsTheLeaderUntilItsLeaseRunsOut)
{
    // The leader may be serving reads from its lease: this follower must not vote for another
    // before the lease it granted has run out, however its connection fares.
    Network net(3, [](Config &c) { c.readOnlyOption = ReadOnlyOption::LeaseOnRequest; });
    for (NodeId id : net.ids())
        net.tick(id, net.config(id).electionTick); // past the restart quarantine
    net.elect(1);
    net.deliverAll();
    net.node(2).reportUnreachable(1);
    EXPECT_EQ(net.raft(2).leader(), 1u);
}

TEST(ExpediteElection, LeadersAndNonVotersIgnoreIt)
{
    Network net(3);
    net.elect(1);
    const auto before = net.raft(1).role();
    net.node(1).expediteElection();
    net.tick(1);
    EXPECT_EQ(net.raft(1).role(), before);
}
