// SPDX-License-Identifier: Apache-2.0
//
// Membership changes: thesis chapter 4 (§4.1 one server at a time, §4.2 learners and removing the
// leader, §4.3 joint consensus), with the rules of raft/confchange.h.

#include "network.h"

#include "raft/confchange.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace dengine::raft::test {
namespace {

using Op = ConfChangeOp;
using T = ConfChangeOp::Type;

std::vector<NodeId> voters(const Network &net, NodeId id) { return net.raft(id).confState().voters; }

// Nodes 1-3 are the cluster; the network's other nodes start with no configuration (joining).
Network clusterWithSpares(std::size_t spares, ConfigTweak tweak = {})
{
    return Network(3 + spares, std::move(tweak), {}, 3);
}

TEST(Membership_Plan, operationsMakeTheNextConfiguration)
{
    ConfState cs;
    cs.voters = {1, 2, 3};
    ConfState next;
    EXPECT_EQ(planConfChange(cs, {{T::AddLearner, 4}}, next), "");
    EXPECT_EQ(next.voters, (std::vector<NodeId>{1, 2, 3}));
    EXPECT_EQ(next.learners, (std::vector<NodeId>{4}));
    EXPECT_FALSE(isJoint(next));

    cs = next;
    EXPECT_EQ(planConfChange(cs, {{T::AddVoter, 4}}, next), "") << "promotion";
    EXPECT_EQ(next.voters, (std::vector<NodeId>{1, 2, 3, 4}));
    EXPECT_TRUE(next.learners.empty());
    EXPECT_FALSE(isJoint(next)) << "one voter more: no joint consensus needed";

    ConfState three;
    three.voters = {1, 2, 3};
    EXPECT_EQ(planConfChange(three, {{T::AddVoter, 5}, {T::Remove, 1}}, next), "");
    EXPECT_TRUE(isJoint(next)) << "a replacement changes two voters";
    EXPECT_EQ(next.voters, (std::vector<NodeId>{2, 3, 5}));
    EXPECT_EQ(next.votersOutgoing, (std::vector<NodeId>{1, 2, 3}));
    EXPECT_TRUE(next.autoLeave);
    ConfState left;
    EXPECT_EQ(planConfChange(next, {}, left), "");
    EXPECT_EQ(left.voters, (std::vector<NodeId>{2, 3, 5}));
    EXPECT_FALSE(isJoint(left));
}

TEST(Membership_Plan, impossibleChangesAreRefusedWithAReason)
{
    ConfState cs;
    cs.voters = {1, 2, 3};
    cs.learners = {4};
    ConfState next;
    EXPECT_NE(planConfChange(cs, {{T::AddVoter, 2}}, next).find("voter already"), std::string::npos);
    EXPECT_NE(planConfChange(cs, {{T::AddLearner, 4}}, next).find("learner already"), std::string::npos);
    EXPECT_NE(planConfChange(cs, {{T::AddLearner, 2}}, next).find("not supported"), std::string::npos) << "demotion";
    EXPECT_NE(planConfChange(cs, {{T::Remove, 9}}, next).find("not a member"), std::string::npos);
    EXPECT_NE(planConfChange(cs, {{T::AddVoter, 5}, {T::Remove, 5}}, next).find("twice"), std::string::npos);
    EXPECT_NE(planConfChange(cs, {{T::AddVoter, 0}}, next).find("id 0"), std::string::npos);
    ConfState one;
    one.voters = {1};
    EXPECT_NE(planConfChange(one, {{T::Remove, 1}}, next).find("no voters"), std::string::npos);
    EXPECT_NE(planConfChange(cs, {}, next).find("not joint"), std::string::npos);
    ConfState joint;
    joint.voters = {2, 3, 5};
    joint.votersOutgoing = {1, 2, 3};
    EXPECT_NE(planConfChange(joint, {{T::AddLearner, 7}}, next).find("joint"), std::string::npos);
}

TEST(Membership_Encoding, roundTripsAndRefusesMalformedBytes)
{
    ConfState cs;
    cs.voters = {2, 3, 5};
    cs.votersOutgoing = {1, 2, 3};
    cs.learners = {7};
    cs.autoLeave = true;
    ConfState back;
    ASSERT_TRUE(decodeConfState(encodeConfState(cs), back));
    EXPECT_EQ(back, cs);
    std::vector<ConfChangeOp> ops{{T::AddVoter, 5}, {T::Remove, 1}}, opsBack;
    ASSERT_TRUE(decodeConfChangeOps(encodeConfChangeOps(ops), opsBack));
    EXPECT_EQ(opsBack, ops);

    const std::string good = encodeConfState(cs).toString();
    for (std::size_t cut = 0; cut < good.size(); ++cut)
        EXPECT_FALSE(decodeConfState(Payload(good.substr(0, cut)), back)) << "cut at " << cut;
    EXPECT_FALSE(decodeConfState(Payload(good + "x"), back)) << "trailing bytes";
    EXPECT_FALSE(decodeConfChangeOps(encodeConfState(cs), opsBack)) << "a configuration is not a list of operations";
    ConfState bad = cs;
    bad.learners = {2}; // a voter cannot also be a learner
    EXPECT_FALSE(decodeConfState(encodeConfState(bad), back));
    // Random bytes never crash the decoders.
    std::uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; ++i) {
        std::string bytes;
        const int n = static_cast<int>(x % 64);
        for (int j = 0; j < n; ++j) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push_back(static_cast<char>(j < 2 ? "CK"[x % 2] + 0 * j : x));
        }
        if (bytes.size() > 1)
            bytes[1] = 1;
        decodeConfState(Payload(bytes), back);
        decodeConfChangeOps(Payload(bytes), opsBack);
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    }
}

// §4.2.1: a learner gets the log but neither votes nor counts for commits.
TEST(Membership, aLearnerCatchesUp_withoutCountingForCommits)
{
    Network net = clusterWithSpares(1);
    net.elect(1);
    net.propose(1, "before");
    net.deliverAll();
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddLearner, 4}}), Status::Ok);
    net.deliverAll();
    EXPECT_EQ(net.raft(4).confState().learners, (std::vector<NodeId>{4}));
    EXPECT_EQ(net.logTerms(4), net.logTerms(1)) << "a node that joined empty gets the whole log";
    EXPECT_EQ(net.appliedData(4).front(), "before");

    // With two voters cut off, the learner's acknowledgement does not make a majority.
    net.isolate(2);
    net.isolate(3);
    const Index commit = net.raft(1).log().committed();
    net.propose(1, "needs a voter");
    net.deliverAll();
    EXPECT_EQ(net.raft(4).log().lastIndex(), net.raft(1).log().lastIndex());
    EXPECT_EQ(net.raft(1).log().committed(), commit);
    EXPECT_EQ(net.node(4).campaign(), Status::Ok);
    EXPECT_NE(net.raft(4).role(), Role::PreCandidate) << "a learner never campaigns";
    EXPECT_NE(net.raft(4).role(), Role::Candidate);
}

// §4.1 (promotion): the learner, once a voter, counts.
TEST(Membership, aPromotedLearnerCounts)
{
    Network net = clusterWithSpares(1);
    net.elect(1);
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddLearner, 4}}), Status::Ok);
    net.deliverAll();
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddVoter, 4}}), Status::Ok);
    net.deliverAll();
    EXPECT_EQ(voters(net, 1), (std::vector<NodeId>{1, 2, 3, 4}));
    EXPECT_EQ(voters(net, 4), (std::vector<NodeId>{1, 2, 3, 4}));
    net.isolate(3);
    net.propose(1, "with 4's help");
    net.deliverAll();
    EXPECT_EQ(net.appliedData(1).back(), "with 4's help") << "1, 2 and 4 are three of four";
}

// §4.3: replacing a voter goes through the joint configuration, where both majorities must agree,
// and the leader leaves it once it is committed.
TEST(Membership, aReplacement_goesThroughJointConsensus_andLeavesIt)
{
    Network net = clusterWithSpares(1);
    net.elect(1);
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddVoter, 4}, {T::Remove, 3}}), Status::Ok);
    EXPECT_TRUE(isJoint(net.raft(1).confState())) << "in force as soon as it is in the leader's log";
    net.deliverAll();
    const ConfState end = net.raft(1).confState();
    EXPECT_FALSE(isJoint(end));
    EXPECT_EQ(end.voters, (std::vector<NodeId>{1, 2, 4}));
    EXPECT_EQ(voters(net, 2), end.voters);
    EXPECT_EQ(voters(net, 4), end.voters);
    // Both configurations are in the log, in order.
    std::vector<ConfState> seen;
    for (const Entry &e : net.applied(2))
        if (e.type == EntryType::ConfChange) {
            ConfState cs;
            ASSERT_TRUE(decodeConfState(e.data, cs));
            seen.push_back(cs);
        }
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_TRUE(isJoint(seen[0]));
    EXPECT_FALSE(isJoint(seen[1]));
}

TEST(Membership, inTheJointConfiguration_bothMajoritiesMustAgree)
{
    Network net = clusterWithSpares(2);
    net.elect(1);
    // Two new voters at once: {1,4,5} and {1,2,3}.
    net.isolate(4);
    net.isolate(5);
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddVoter, 4}, {T::AddVoter, 5}, {T::Remove, 2}, {T::Remove, 3}}), Status::Ok);
    net.deliverAll();
    EXPECT_TRUE(isJoint(net.raft(1).confState()));
    const Index joint = net.raft(1).log().lastIndex();
    EXPECT_LT(net.raft(1).log().committed(), joint) << "the old majority alone does not commit it";
    net.heal();
    net.tickAll();
    net.deliverAll();
    net.tickAll();
    net.deliverAll();
    EXPECT_GE(net.raft(1).log().committed(), joint);
    EXPECT_FALSE(isJoint(net.raft(1).confState()));
    EXPECT_EQ(voters(net, 1), (std::vector<NodeId>{1, 4, 5}));
}

// §4.2.2: a leader that removes itself leads on without counting itself until the change is
// committed, then hands over and steps down.
TEST(Membership, removingTheLeader_itStepsDownOnceCommitted_andHandsOver)
{
    Network net(3);
    net.elect(1);
    ASSERT_EQ(net.node(1).proposeConfChange({{T::Remove, 1}}), Status::Ok);
    EXPECT_EQ(net.raft(1).role(), Role::Leader) << "until the change is committed";
    net.deliverAll();
    EXPECT_NE(net.raft(1).role(), Role::Leader);
    const auto leader = net.leader();
    ASSERT_TRUE(leader.has_value()) << "handed over at once (TimeoutNow), without an election timeout";
    EXPECT_NE(*leader, 1u);
    EXPECT_EQ(voters(net, *leader), (std::vector<NodeId>{2, 3}));
    net.propose(*leader, "after");
    net.deliverAll();
    EXPECT_EQ(net.appliedData(*leader).back(), "after");
    EXPECT_EQ(net.node(1).campaign(), Status::Ok);
    EXPECT_EQ(net.raft(1).role(), Role::Follower) << "a removed node does not campaign";
}

TEST(Membership, theLeaderRefusesChangesItCannotMakeSafely)
{
    Network net = clusterWithSpares(2, classicRaft);
    net.elect(1);
    std::string why;
    EXPECT_EQ(net.node(2).proposeConfChange({{T::AddLearner, 4}}, &why), Status::Ok) << "a follower forwards";

    // One at a time: the first is not committed yet.
    net.isolate(2);
    net.isolate(3);
    net.drainAll();
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddLearner, 5}}, &why), Status::Ok);
    EXPECT_EQ(net.node(1).proposeConfChange({{T::AddLearner, 4}}, &why), Status::ProposalDropped);
    EXPECT_NE(why.find("in progress"), std::string::npos) << why;
    net.heal();
    net.deliverAll();
    EXPECT_EQ(net.node(1).proposeConfChange({{T::AddVoter, 2}}, &why), Status::ProposalDropped);
    EXPECT_NE(why.find("voter already"), std::string::npos) << why;

    // A new leader has not committed an entry of its term yet (Ongaro's fix for one-at-a-time).
    net.isolate(1);
    net.campaign(2);
    net.deliver(ofType(MessageType::Vote));
    net.deliver(ofType(MessageType::VoteResponse)); // elected; its no-op is not replicated yet
    ASSERT_EQ(net.raft(2).role(), Role::Leader);
    EXPECT_EQ(net.node(2).proposeConfChange({{T::AddLearner, 4}}, &why), Status::ProposalDropped);
    EXPECT_NE(why.find("not committed an entry of its term"), std::string::npos) << why;
}

// §4.1: a configuration is in force as soon as it is in the log, and a truncation that drops it
// brings back the one before.
TEST(Membership, anUncommittedConfigurationIsUndoneByTruncation)
{
    Network net = clusterWithSpares(1, classicRaft);
    net.elect(1);
    net.isolate(1);
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddLearner, 4}}), Status::Ok);
    EXPECT_EQ(net.raft(1).confState().learners, (std::vector<NodeId>{4}));
    net.drainAll();
    // 2 takes over and overwrites 1's uncommitted tail.
    net.campaign(2);
    net.deliverAll();
    ASSERT_EQ(net.raft(2).role(), Role::Leader);
    net.heal();
    net.propose(2, "x");
    net.deliverAll();
    net.tickAll();
    net.deliverAll();
    EXPECT_TRUE(net.raft(1).confState().learners.empty()) << "the change was truncated away";
    EXPECT_EQ(voters(net, 1), (std::vector<NodeId>{1, 2, 3}));
}

// A restart reads the configuration back from the snapshot and the log after it.
TEST(Membership, aRestartKeepsTheConfiguration)
{
    Network net = clusterWithSpares(1);
    net.elect(1);
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddLearner, 4}}), Status::Ok);
    net.deliverAll();
    ASSERT_EQ(net.node(1).proposeConfChange({{T::AddVoter, 4}, {T::Remove, 3}}), Status::Ok);
    net.deliverAll();
    const ConfState cs = net.raft(2).confState();
    EXPECT_EQ(cs.voters, (std::vector<NodeId>{1, 2, 4}));
    net.restart(2);
    EXPECT_EQ(net.raft(2).confState(), cs);
    net.snapshotAndCompact(4, net.raft(4).log().applied());
    EXPECT_EQ(net.storage(4).snapshot().metadata.confState, cs) << "a snapshot records the configuration at its index";
    net.restart(4);
    EXPECT_EQ(net.raft(4).confState(), cs);
}

} // namespace
} // namespace dengine::raft::test

namespace dengine::raft::test {
namespace {

// Found in review: a leader whose log removed it (configuration {2}, a single voter that is not
// itself) took the one-voter shortcut and answered reads at once; node 2 may already lead a newer
// term and have taken writes. Its reads need a quorum of the configuration, and it holds no lease.
TEST(Membership, aLeaderThatRemovedItself_answersNoReadWithoutTheRemainingVoter)
{
    Network net(2);
    net.elect(1);
    net.propose(1, "x");
    net.deliverAll();
    ASSERT_EQ(net.node(1).proposeConfChange({{T::Remove, 1}}), Status::Ok);
    ASSERT_EQ(voters(net, 1), (std::vector<NodeId>{2}));
    net.drop(anything()); // node 2 is cut off: it never hears of this change from node 1
    net.readIndex(1, 42);
    net.drainAll();
    const auto &answered = net.readStates(1);
    EXPECT_TRUE(std::none_of(answered.begin(), answered.end(), [](const ReadState &r) { return r.context == 42; }))
        << "answered without the only voter";
}

// Found in review: a joint configuration known only from a snapshot (or from the part of the log
// behind it) was never left, and every later change was refused as "joint".
TEST(Membership, aJointConfigurationFromASnapshot_isLeftByTheNextLeader)
{
    Network net(4, {}, {}, 3);
    Snapshot snap;
    snap.metadata.index = 5;
    snap.metadata.term = 1;
    snap.metadata.confState.voters = {1, 2, 4};
    snap.metadata.confState.votersOutgoing = {1, 2, 3};
    snap.metadata.confState.autoLeave = true;
    snap.data = Payload("state@5");
    for (NodeId id : {1, 2, 3, 4}) {
        ASSERT_TRUE(net.storage(id).applySnapshot(snap));
        net.storage(id).setHardState(HardState{1, NoNode, 5});
        net.restart(id);
    }
    ASSERT_TRUE(isJoint(net.raft(1).confState()));
    net.elect(1);
    net.deliverAll();
    EXPECT_FALSE(isJoint(net.raft(1).confState()));
    EXPECT_EQ(voters(net, 1), (std::vector<NodeId>{1, 2, 4}));
    EXPECT_EQ(voters(net, 4), (std::vector<NodeId>{1, 2, 4}));
    EXPECT_EQ(net.node(1).proposeConfChange({{T::AddLearner, 3}}), Status::Ok) << "changes go on";
}

} // namespace
} // namespace dengine::raft::test
