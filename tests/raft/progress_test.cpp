// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of the leader's per-follower replication state: Inflights and Progress.

#include "raft/progress.h"

#include <gtest/gtest.h>

namespace dengine::raft {
namespace {

// ---- Inflights --------------------------------------------------------------------------------

TEST(Inflights, FullWhenTheCountLimitIsReached)
{
    Inflights in(3, 1000);
    in.add(1, 10, 0);
    in.add(2, 10, 0);
    EXPECT_FALSE(in.full());
    in.add(3, 10, 0);
    EXPECT_TRUE(in.full());
    EXPECT_EQ(in.count(), 3u);
    EXPECT_EQ(in.bytes(), 30u);
    in.add(4, 10, 0); // callers check full() first; the window never grows past its limit
    EXPECT_EQ(in.count(), 3u);
    EXPECT_EQ(in.bytes(), 30u);
}

TEST(Inflights, FullWhenTheByteLimitIsReached)
{
    Inflights in(10, 100);
    in.add(1, 60, 0);
    EXPECT_FALSE(in.full());
    in.add(2, 40, 0);
    EXPECT_TRUE(in.full());
    in.freeLE(1);
    EXPECT_FALSE(in.full());
    EXPECT_EQ(in.bytes(), 40u);
}

TEST(Inflights, FreeLEReleasesEveryMessageUpToTheAcknowledgedIndex)
{
    Inflights in(10, 1000);
    for (Index i = 1; i <= 5; ++i)
        in.add(i * 2, i, 0); // last indexes 2, 4, 6, 8, 10 with 1..5 bytes
    in.freeLE(5);
    EXPECT_EQ(in.count(), 3u) << "messages ending at 2 and 4 are acknowledged";
    EXPECT_EQ(in.bytes(), 3u + 4u + 5u);
    in.freeLE(3); // stale acknowledgement
    EXPECT_EQ(in.count(), 3u);
    in.freeLE(100);
    EXPECT_EQ(in.count(), 0u);
    EXPECT_EQ(in.bytes(), 0u);
}

TEST(Inflights, TheRingWrapsAround)
{
    Inflights in(3, 1000);
    in.add(1, 1, 0);
    in.add(2, 2, 0);
    in.add(3, 3, 0);
    in.freeLE(2);
    in.add(4, 4, 0);
    in.add(5, 5, 0);
    EXPECT_TRUE(in.full());
    EXPECT_EQ(in.bytes(), 3u + 4u + 5u);
    in.freeLE(4);
    EXPECT_EQ(in.count(), 1u);
    EXPECT_EQ(in.bytes(), 5u);
    in.add(6, 6, 0);
    in.add(7, 7, 0);
    in.freeLE(6);
    EXPECT_EQ(in.count(), 1u);
    EXPECT_EQ(in.bytes(), 7u);
}

// The leader uses the age of the oldest unacknowledged message to notice Appends lost on the way.
TEST(Inflights, RemembersWhenTheOldestMessageWentOut)
{
    Inflights in(4, 1000);
    in.add(1, 1, 7);
    in.add(2, 1, 9);
    EXPECT_EQ(in.oldestSentTick(), 7u);
    in.freeLE(1);
    EXPECT_EQ(in.oldestSentTick(), 9u);
}

TEST(Inflights, ResetEmptiesTheWindow)
{
    Inflights in(2, 100);
    in.add(1, 50, 0);
    in.add(2, 50, 0);
    in.reset();
    EXPECT_EQ(in.count(), 0u);
    EXPECT_EQ(in.bytes(), 0u);
    EXPECT_FALSE(in.full());
}

// ---- Progress ---------------------------------------------------------------------------------

TEST(Progress, StartsProbingAtTheGivenNextIndex)
{
    Progress pr(5, 10, 1000);
    EXPECT_EQ(pr.state, ProgressState::Probe);
    EXPECT_EQ(pr.next, 5u);
    EXPECT_EQ(pr.match, 0u);
    EXPECT_FALSE(pr.isPaused());
}

TEST(Progress, ProbeSendsOneAppendAndWaitsForTheAnswer)
{
    Progress pr(5, 10, 1000);
    pr.sentEntries(2, 50, 6, 0);
    EXPECT_TRUE(pr.isPaused());
    EXPECT_EQ(pr.next, 5u) << "a probe does not advance next optimistically";
    EXPECT_EQ(pr.inflights.count(), 0u);
    EXPECT_TRUE(pr.maybeUpdate(6));
    EXPECT_FALSE(pr.isPaused());
    EXPECT_EQ(pr.match, 6u);
    EXPECT_EQ(pr.next, 7u);
}

TEST(Progress, MaybeUpdateNeverMovesBackwards)
{
    Progress pr(1, 10, 1000);
    EXPECT_TRUE(pr.maybeUpdate(6));
    EXPECT_FALSE(pr.maybeUpdate(4));
    EXPECT_FALSE(pr.maybeUpdate(6));
    EXPECT_EQ(pr.match, 6u);
    EXPECT_EQ(pr.next, 7u);
}

TEST(Progress, ReplicateSendsOptimisticallyWithinTheWindow)
{
    Progress pr(1, 2, 1000);
    pr.maybeUpdate(3);
    pr.becomeReplicate();
    EXPECT_EQ(pr.state, ProgressState::Replicate);
    EXPECT_EQ(pr.next, 4u);
    pr.sentEntries(2, 20, 5, 0);
    EXPECT_EQ(pr.next, 6u);
    EXPECT_FALSE(pr.isPaused());
    pr.sentEntries(1, 10, 6, 0);
    EXPECT_TRUE(pr.isPaused()) << "two messages in flight fill a window of two";
    pr.sentEntries(0, 0, 6, 0); // an empty Append occupies no slot
    EXPECT_EQ(pr.inflights.count(), 2u);

    pr.maybeUpdate(5);
    pr.inflights.freeLE(5);
    EXPECT_FALSE(pr.isPaused());
}

TEST(Progress, RejectionInReplicateFallsBackToMatchPlusOne)
{
    Progress pr(1, 10, 1000);
    pr.maybeUpdate(3);
    pr.becomeReplicate();
    pr.sentEntries(3, 30, 6, 0);
    EXPECT_FALSE(pr.maybeDecrTo(2, 0)) << "a rejection at or below match is stale";
    EXPECT_EQ(pr.next, 7u);
    EXPECT_TRUE(pr.maybeDecrTo(6, 1));
    EXPECT_EQ(pr.next, 4u);
    pr.becomeProbe();
    EXPECT_EQ(pr.state, ProgressState::Probe);
    EXPECT_EQ(pr.next, 4u);
    EXPECT_EQ(pr.inflights.count(), 0u);
}

TEST(Progress, RejectionInProbeCountsOnlyForTheOutstandingProbe)
{
    Progress pr(10, 10, 1000);
    pr.maybeUpdate(3);
    pr.next = 10;
    pr.sentEntries(1, 10, 10, 0); // probe after index 9
    EXPECT_FALSE(pr.maybeDecrTo(8, 5)) << "an answer to an older probe";
    EXPECT_TRUE(pr.isPaused());
    EXPECT_TRUE(pr.maybeDecrTo(9, 5));
    EXPECT_EQ(pr.next, 6u) << "next follows the hint";
    EXPECT_FALSE(pr.isPaused());
    EXPECT_TRUE(pr.maybeDecrTo(5, 1));
    EXPECT_EQ(pr.next, 4u) << "never below match + 1";
    EXPECT_TRUE(pr.maybeDecrTo(3, 9));
    EXPECT_EQ(pr.next, 4u) << "a hint beyond the rejected index does not move next forward";
}

TEST(Progress, SnapshotStateIsAlwaysPaused)
{
    Progress pr(1, 10, 1000);
    pr.state = ProgressState::Snapshot;
    EXPECT_TRUE(pr.isPaused());
}

TEST(Progress, DescribeNamesStateAndIndexes)
{
    Progress pr(1, 10, 1000);
    pr.maybeUpdate(4);
    EXPECT_EQ(pr.describe(), "probe match=4 next=5 inflight=0");
    pr.becomeReplicate();
    EXPECT_EQ(pr.describe().rfind("replicate", 0), 0u);
}

} // namespace
} // namespace dengine::raft
