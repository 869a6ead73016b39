// SPDX-License-Identifier: Apache-2.0
//
// The lease rule (raft/lease.h) against the four ways an old leader could keep believing in its lease
// while another node had been elected and had committed a newer write. A Lease read served in such a
// window is stale. Each scenario runs on three nodes and checks, after every step, that no node is
// lease-readable while another node has committed an entry it lacks; each has a control that shows
// the trigger is what matters, or that the cluster still elects a new leader once the lease is over.

#include "network.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace dengine::raft::test {
namespace {

ConfigTweak readOnly(ReadOnlyOption option, std::uint64_t seed = 0)
{
    return [option, seed](Config &c) {
        c.readOnlyOption = option;
        if (seed != 0)
            c.seed = seed * 16 + c.id;
    };
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

// Three nodes past the restart quarantine, node 1 leading with its no-op committed everywhere and a
// heartbeat round acknowledged by both followers: its lease holds.
std::unique_ptr<Network> leasedByOne(ReadOnlyOption option, std::uint64_t seed = 0)
{
    auto net = std::make_unique<Network>(3, readOnly(option, seed));
    net->tickAll(net->config(1).electionTick);
    net->drop(anything());
    net->elect(1);
    net->tick(1);
    net->deliverAll();
    EXPECT_TRUE(net->raft(1).leaseReadable());
    return net;
}

// The highest commit index among the nodes other than `old`.
Index commitElsewhere(const Network &net, NodeId old)
{
    Index best = 0;
    for (NodeId id : net.ids())
        if (id != old)
            best = std::max(best, net.raft(id).log().committed());
    return best;
}

// A stale-lease window: `old` would serve a lease read at its commit index while another node has
// committed more. Under LeaseBased the read path is the core's own (readIndex answered at once), so
// that is tried too, with a fresh context; a read answered below the others' commit is stale.
std::string staleWindow(Network &net, NodeId old, std::uint64_t &context)
{
    const Index elsewhere = commitElsewhere(net, old);
    const Index mine = net.raft(old).log().committed();
    if (elsewhere <= mine)
        return {};
    std::ostringstream out;
    if (net.raft(old).leaseReadable())
        out << "node " << old << " is lease-readable at commit " << mine << " while another node committed " << elsewhere << "; ";
    if (net.config(old).readOnlyOption == ReadOnlyOption::LeaseBased && net.raft(old).role() == Role::Leader) {
        const std::uint64_t ctx = ++context;
        const std::size_t before = net.readStates(old).size();
        net.readIndex(old, ctx);
        net.drain(old);
        const auto &states = net.readStates(old);
        for (std::size_t i = before; i < states.size(); ++i)
            if (states[i].context == ctx && states[i].index < elsewhere)
                out << "node " << old << " answered a read at " << states[i].index << " while another node committed " << elsewhere
                    << " (LeaseBased read path)";
    }
    return out.str();
}

// Runs `steps` rounds of: every node ticks, the network delivers, node `writer` proposes once it
// leads with its no-op committed; after each step, looks for a stale window at `old`. Returns the
// first window found (empty if none) and whether a new leader committed a write.
struct Outcome {
    std::string stale;
    bool newLeaderWrote = false;
};
Outcome runAndWatch(Network &net, NodeId old, int steps)
{
    Outcome o;
    std::uint64_t context = 1000;
    bool proposed = false;
    for (int s = 0; s < steps; ++s) {
        net.tickAll();
        net.deliverAll();
        for (NodeId id : net.ids()) {
            const Raft &r = net.raft(id);
            if (id != old && !proposed && r.role() == Role::Leader && r.committedInTerm() && r.term() > net.raft(old).term()) {
                net.propose(id, "newer");
                net.deliverAll();
                proposed = true;
            }
        }
        if (proposed && !o.newLeaderWrote)
            for (NodeId id : net.ids())
                if (id != old)
                    for (const std::string &d : net.appliedData(id))
                        o.newLeaderWrote = o.newLeaderWrote || d == "newer";
        if (o.stale.empty()) {
            const std::string w = staleWindow(net, old, context);
            if (!w.empty())
                o.stale = "after " + std::to_string(s + 1) + " ticks: " + w;
        }
    }
    return o;
}

// 1. LeaseBased, after TimeoutNow: leader 1 hands over to 2 and is isolated right after the
//    TimeoutNow left. Node 3 votes for 2 inside 1's lease (a transfer campaign), 2 commits. 1 must
//    not answer from its lease, on the read path (readIndex) as well as leaseReadable().
TEST(LeaseSafety, LeaseBasedLeaderServesNothingFromItsLeaseAfterSendingTimeoutNow)
{
    auto net = leasedByOne(ReadOnlyOption::LeaseBased);
    ASSERT_EQ(net->node(1).transferLeadership(2), Status::Ok);
    ASSERT_EQ(net->deliver(ofType(MessageType::TimeoutNow)), 1u);
    net->isolate(1);
    net->deliverAll();
    ASSERT_EQ(net->leader(), std::optional<NodeId>(2));
    ASSERT_EQ(net->raft(1).role(), Role::Leader) << "node 1 is cut off and does not know";
    net->propose(2, "newer");
    net->deliverAll();
    ASSERT_GT(net->raft(2).log().committed(), net->raft(1).log().committed());

    std::uint64_t context = 0;
    EXPECT_EQ(staleWindow(*net, 1, context), "");
    net->deliver(anything());
    EXPECT_TRUE(net->readStates(1).empty()) << "a read at node 1 waits for a quorum round it cannot get";
}

// Control for 1: without the TimeoutNow, node 3 keeps its promise to 1 and 2 cannot be elected, so
// node 1 may go on serving from its lease.
TEST(LeaseSafety, Control_WithoutTimeoutNowNoOneIsElectedInsideTheLease)
{
    auto net = leasedByOne(ReadOnlyOption::LeaseBased);
    net->isolate(1);
    net->campaign(2);
    net->deliverAll();
    EXPECT_NE(net->leader(), std::optional<NodeId>(2));
    EXPECT_TRUE(net->raft(1).leaseReadable());
    std::uint64_t context = 0;
    EXPECT_EQ(staleWindow(*net, 1, context), "");
}

// 2. A TimeoutNow delayed past the end of its transfer. The transfer to 2 times out on leader 1,
//    heartbeat rounds go on and are acknowledged; then the old TimeoutNow reaches 2 (1 isolated by
//    then). 2 campaigns, the voters ignore the lease for a transfer, 2 commits. 1's lease ended for
//    good when it sent the TimeoutNow.
TEST(LeaseSafety, DelayedTimeoutNowAfterAnAbortedTransferFindsNoLease)
{
    for (ReadOnlyOption option : {ReadOnlyOption::LeaseOnRequest, ReadOnlyOption::LeaseBased}) {
        SCOPED_TRACE(name(option));
        auto net = leasedByOne(option);
        ASSERT_EQ(net->node(1).transferLeadership(2), Status::Ok);
        const std::vector<Message> timeoutNow = net->take(ofType(MessageType::TimeoutNow));
        ASSERT_EQ(timeoutNow.size(), 1u);
        for (int t = 0; t < net->config(1).electionTick; ++t) {
            net->tick(1);
            net->deliverAll();
        }
        ASSERT_EQ(net->raft(1).leadTransferee(), NoNode) << "the transfer timed out";
        ASSERT_EQ(net->raft(1).role(), Role::Leader);
        EXPECT_FALSE(net->raft(1).leaseReadable()) << "no lease for the rest of the term once a TimeoutNow left";

        net->isolate(1);
        net->step(timeoutNow[0]); // the late TimeoutNow arrives
        net->deliverAll();
        if (net->leader() == std::optional<NodeId>(2)) {
            net->propose(2, "newer");
            net->deliverAll();
        }
        std::uint64_t context = 0;
        EXPECT_EQ(staleWindow(*net, 1, context), "");
    }
}

// A TimeoutNow is honoured only for the transfer that is still current: once the leader took writes
// again after giving the transfer up, a follower that has them knows the TimeoutNow is stale.
TEST(LeaseSafety, TimeoutNowOlderThanTheFollowersLogIsRefused)
{
    auto net = leasedByOne(ReadOnlyOption::LeaseOnRequest);
    ASSERT_EQ(net->node(1).transferLeadership(2), Status::Ok);
    const std::vector<Message> timeoutNow = net->take(ofType(MessageType::TimeoutNow));
    ASSERT_EQ(timeoutNow.size(), 1u);
    for (int t = 0; t < net->config(1).electionTick; ++t) {
        net->tick(1);
        net->deliverAll();
    }
    ASSERT_EQ(net->raft(1).leadTransferee(), NoNode);
    ASSERT_EQ(net->propose(1, "after the transfer"), Status::Ok);
    net->deliverAll();
    const Term term = net->raft(2).term();
    net->step(timeoutNow[0]);
    net->deliverAll();
    EXPECT_EQ(net->raft(2).term(), term) << "node 2 did not campaign";
    EXPECT_EQ(net->leader(), std::optional<NodeId>(1));
}

// The set-up of scenarios 3 and 4: node 1 leads; node 3 is cut from 1 for two election timeouts, so
// its promise to 1 has run out and it will vote for another; node 2 acknowledges a last round of
// 1's, which gives 1 its lease; then 1 is isolated but alive (it keeps ticking).
std::unique_ptr<Network> leaseOnlyFromTwo(std::uint64_t seed)
{
    auto net = leasedByOne(ReadOnlyOption::LeaseOnRequest, seed);
    net->cut(1, 3);
    for (int t = 0; t < 2 * net->config(1).electionTick; ++t) {
        net->tickAll();
        net->deliverAll();
    }
    EXPECT_EQ(net->raft(1).role(), Role::Leader) << "node 2 keeps node 1 in office";
    net->tick(1);
    net->deliverAll();
    EXPECT_TRUE(net->raft(1).leaseReadable());
    net->isolate(1);
    return net;
}

// 3. LeaseOnRequest, reportUnreachable on a follower inside the lease: node 2's transport reports 1
//    unreachable, which brings node 2's election forward. It must still vote for nobody, itself
//    included, until the lease it granted is over. Over 30 seeds of election timers.
TEST(LeaseSafety, UnreachableLeaderDoesNotLetAFollowerCampaignInsideItsPromise)
{
    int elected = 0;
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        auto net = leaseOnlyFromTwo(seed);
        net->node(2).reportUnreachable(1);
        const Outcome o = runAndWatch(*net, 1, 4 * net->config(1).electionTick);
        EXPECT_EQ(o.stale, "");
        elected += o.newLeaderWrote ? 1 : 0;
    }
    EXPECT_EQ(elected, 30) << "once the lease is over, 2 and 3 elect a leader and commit";
}

// 4. LeaseOnRequest, a restart and expediteElection (as the engine does at start): node 2 restarts
//    right after acknowledging 1's round. It may not vote for itself either until the lease it may
//    have granted before the crash is over.
TEST(LeaseSafety, RestartedNodeDoesNotCampaignInsideItsQuarantine)
{
    int elected = 0;
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        auto net = leaseOnlyFromTwo(seed);
        net->restart(2);
        net->node(2).expediteElection();
        net->drain(2);
        const Outcome o = runAndWatch(*net, 1, 4 * net->config(1).electionTick);
        EXPECT_EQ(o.stale, "");
        elected += o.newLeaderWrote ? 1 : 0;
    }
    EXPECT_EQ(elected, 30) << "once the quarantine is over, 2 and 3 elect a leader and commit";
}

// Control for 3 and 4: with Safe reads there is no lease to protect, so the same triggers elect a
// new leader at once, and the old one never claims a lease.
TEST(LeaseSafety, Control_SafeReadsElectAtOnceAndNeverClaimALease)
{
    auto net = std::make_unique<Network>(3, readOnly(ReadOnlyOption::Safe, 3));
    net->elect(1);
    net->cut(1, 3);
    for (int t = 0; t < 2 * net->config(1).electionTick; ++t) {
        net->tickAll();
        net->deliverAll();
    }
    net->isolate(1);
    net->node(2).reportUnreachable(1);
    const Outcome o = runAndWatch(*net, 1, 2 * net->config(1).electionTick);
    EXPECT_EQ(o.stale, "");
    EXPECT_TRUE(o.newLeaderWrote);
}

} // namespace
} // namespace dengine::raft::test
