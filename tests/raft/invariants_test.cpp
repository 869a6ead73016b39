// SPDX-License-Identifier: Apache-2.0
//
// The safety checks the harness runs after every step must be able to fail: each one is shown a
// violation here. Figure 3 of the paper lists the properties.

#include "raft/invariants.h"

#include <gtest/gtest.h>

namespace dengine::raft {
namespace {

NodeStatus status(Term term, NodeId vote, Index commit, Index last, Role role = Role::Follower)
{
    NodeStatus s;
    s.id = 1;
    s.hardState = HardState{term, vote, commit};
    s.softState = SoftState{role == Role::Leader ? NodeId{1} : NoNode, role};
    s.lastIndex = last;
    s.stableIndex = last;
    s.applied = commit;
    return s;
}

bool mentions(const std::string &text, const char *what) { return text.find(what) != std::string::npos; }

TEST(NodeInvariants, AcceptsAConsistentHistory)
{
    NodeInvariants inv;
    EXPECT_EQ(inv.check(status(1, 2, 0, 0)), "");
    EXPECT_EQ(inv.check(status(1, 2, 1, 1)), "");
    EXPECT_EQ(inv.check(status(2, 1, 1, 2, Role::Leader)), "");
}

TEST(NodeInvariants, ReportsEachViolation)
{
    {
        NodeInvariants inv;
        inv.check(status(3, 0, 0, 0));
        EXPECT_TRUE(mentions(inv.check(status(2, 0, 0, 0)), "term went back"));
    }
    {
        NodeInvariants inv;
        inv.check(status(1, 0, 2, 2));
        EXPECT_TRUE(mentions(inv.check(status(1, 0, 1, 2)), "commit went back"));
    }
    {
        NodeInvariants inv;
        inv.check(status(1, 2, 0, 0));
        EXPECT_TRUE(mentions(inv.check(status(1, 3, 0, 0)), "vote changed"));
    }
    NodeInvariants inv;
    EXPECT_TRUE(mentions(inv.check(status(1, 0, 5, 4)), "beyond last index"));
    NodeStatus applied = status(1, 0, 2, 4);
    applied.applied = 3;
    EXPECT_TRUE(mentions(inv.check(applied), "applied 3 beyond commit 2"));
    EXPECT_TRUE(mentions(inv.check(status(1, 2, 0, 0, Role::Leader)), "has not voted for itself"));
}

TEST(NodeInvariants, RestartAllowsTheCommitIndexToStartLower)
{
    NodeInvariants inv;
    inv.check(status(2, 1, 5, 5));
    inv.restarted(status(2, 1, 3, 5));
    EXPECT_EQ(inv.check(status(2, 1, 3, 5)), "");
}

TEST(ClusterInvariants, ElectionSafetyAllowsOneLeaderPerTerm)
{
    ClusterInvariants c;
    EXPECT_EQ(c.observeRole(1, 1, Role::Leader), "");
    EXPECT_EQ(c.observeRole(1, 1, Role::Leader), "");
    EXPECT_EQ(c.observeRole(2, 1, Role::Candidate), "");
    EXPECT_EQ(c.observeRole(2, 2, Role::Leader), "");
    EXPECT_TRUE(mentions(c.observeRole(3, 1, Role::Leader), "election safety"));
}

TEST(ClusterInvariants, LogMatchingRequiresTheSameEntryAndPredecessorTerm)
{
    ClusterInvariants c;
    const Entry a{1, 1, EntryType::Normal, Payload("a")};
    const Entry b{2, 2, EntryType::Normal, Payload("b")};
    EXPECT_EQ(c.observeAppend(1, 0, {a, b}), "");
    EXPECT_EQ(c.observeAppend(2, 1, {b}), "") << "the same entry after the same term";
    EXPECT_TRUE(mentions(c.observeAppend(3, 1, {Entry{2, 2, EntryType::Normal, Payload("other")}}), "log matching"));
    EXPECT_TRUE(mentions(c.observeAppend(3, 2, {b}), "log matching")) << "same entry after a different term";
}

TEST(ClusterInvariants, StateMachineSafetyAndApplyOrder)
{
    ClusterInvariants c;
    const Entry one{1, 1, EntryType::Normal, Payload("one")};
    const Entry two{1, 2, EntryType::Normal, Payload("two")};
    EXPECT_EQ(c.observeApply(1, one), "");
    EXPECT_EQ(c.observeApply(1, two), "");
    EXPECT_EQ(c.observeApply(2, one), "");
    EXPECT_TRUE(mentions(c.observeApply(2, Entry{2, 2, EntryType::Normal, Payload("two'")}), "state machine safety"));
    EXPECT_TRUE(mentions(c.observeApply(3, two), "apply order")) << "node 3 skipped index 1";
    EXPECT_EQ(c.highestApplied(), 2u);
    c.restarted(1, 0);
    EXPECT_EQ(c.observeApply(1, one), "") << "a restarted node replays from the start";
}

TEST(ClusterInvariants, LeaderCompletenessRequiresEveryAppliedEntry)
{
    ClusterInvariants c;
    c.observeApply(1, Entry{1, 1, EntryType::Normal, Payload("x")});
    MemoryStorage empty({1, 2, 3});
    RaftLog emptyLog(empty, 1 << 20);
    EXPECT_TRUE(mentions(c.observeLeaderLog(2, 2, emptyLog), "leader completeness"));

    MemoryStorage full({1, 2, 3});
    ASSERT_TRUE(full.append({Entry{1, 1, EntryType::Normal, Payload("x")}}));
    RaftLog fullLog(full, 1 << 20);
    EXPECT_EQ(c.observeLeaderLog(3, 2, fullLog), "");
}

} // namespace
} // namespace dengine::raft
