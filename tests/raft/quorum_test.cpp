// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of majority and joint quorums: the commit index a quorum has acknowledged and the
// outcome of an election.

#include "raft/quorum.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>

namespace dengine::raft {
namespace {

std::function<std::optional<std::uint64_t>(NodeId)> acks(std::map<NodeId, std::uint64_t> values)
{
    return [values = std::move(values)](NodeId id) -> std::optional<std::uint64_t> {
        const auto it = values.find(id);
        if (it == values.end())
            return std::nullopt;
        return it->second;
    };
}

std::function<std::optional<bool>(NodeId)> votes(std::map<NodeId, bool> values)
{
    return [values = std::move(values)](NodeId id) -> std::optional<bool> {
        const auto it = values.find(id);
        if (it == values.end())
            return std::nullopt;
        return it->second;
    };
}

TEST(MajorityConfig, VotersAreSortedAndUnique)
{
    const MajorityConfig c({3, 1, 3, 2});
    EXPECT_EQ(c.voters(), (std::vector<NodeId>{1, 2, 3}));
    EXPECT_EQ(c.size(), 3u);
    EXPECT_TRUE(c.contains(2));
    EXPECT_FALSE(c.contains(4));
}

// §5.3: "A log entry is committed once the leader that created the entry has replicated it on a
// majority of the servers".
TEST(MajorityConfig, CommittedIndexIsTheHighestIndexAMajorityHasAcknowledged)
{
    const MajorityConfig three({1, 2, 3});
    EXPECT_EQ(three.committedIndex(acks({{1, 5}, {2, 3}, {3, 1}})), 3u);
    EXPECT_EQ(three.committedIndex(acks({{1, 5}, {2, 5}, {3, 1}})), 5u);
    EXPECT_EQ(three.committedIndex(acks({{1, 5}})), 0u) << "voters not heard from count as 0";

    const MajorityConfig four({1, 2, 3, 4});
    EXPECT_EQ(four.committedIndex(acks({{1, 4}, {2, 3}, {3, 2}, {4, 1}})), 2u) << "three of four";

    const MajorityConfig five({1, 2, 3, 4, 5});
    EXPECT_EQ(five.committedIndex(acks({{1, 9}, {2, 7}, {3, 5}, {4, 3}, {5, 1}})), 5u);

    EXPECT_EQ(MajorityConfig({7}).committedIndex(acks({{7, 12}})), 12u);
    EXPECT_EQ(MajorityConfig().committedIndex(acks({})), std::numeric_limits<std::uint64_t>::max())
        << "an empty config does not restrict a joint one";
}

TEST(MajorityConfig, CommittedIndexWorksBeyondTheStackBuffer)
{
    std::vector<NodeId> ids;
    std::map<NodeId, std::uint64_t> values;
    for (NodeId id = 1; id <= 21; ++id) {
        ids.push_back(id);
        values[id] = id * 10;
    }
    // Eleven of 21 acknowledged at least 110 (nodes 11..21).
    EXPECT_EQ(MajorityConfig(ids).committedIndex(acks(values)), 110u);
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the servers in the
// full cluster for the same term."
TEST(MajorityConfig, VoteResultIsWonLostOrPending)
{
    const MajorityConfig three({1, 2, 3});
    EXPECT_EQ(three.voteResult(votes({{1, true}})), VoteResult::Pending);
    EXPECT_EQ(three.voteResult(votes({{1, true}, {2, true}})), VoteResult::Won);
    EXPECT_EQ(three.voteResult(votes({{1, true}, {2, false}})), VoteResult::Pending);
    EXPECT_EQ(three.voteResult(votes({{1, true}, {2, false}, {3, false}})), VoteResult::Lost);
    EXPECT_EQ(three.voteResult(votes({{2, false}, {3, false}})), VoteResult::Lost);

    const MajorityConfig four({1, 2, 3, 4});
    EXPECT_EQ(four.voteResult(votes({{1, true}, {2, true}, {3, false}, {4, false}})), VoteResult::Lost) << "a tie loses";
    EXPECT_EQ(four.voteResult(votes({{1, true}, {2, true}})), VoteResult::Pending);
    EXPECT_EQ(four.voteResult(votes({{1, true}, {2, true}, {3, true}})), VoteResult::Won);

    EXPECT_EQ(MajorityConfig().voteResult(votes({})), VoteResult::Won);
}

TEST(JointConfig, WithoutAnOutgoingHalfItIsTheIncomingMajority)
{
    JointConfig c;
    c.incoming = MajorityConfig({1, 2, 3});
    EXPECT_EQ(c.committedIndex(acks({{1, 5}, {2, 3}, {3, 1}})), 3u);
    EXPECT_EQ(c.voteResult(votes({{1, true}, {2, true}})), VoteResult::Won);
    EXPECT_FALSE(c.isSingleton());
    EXPECT_EQ(c.ids(), (std::vector<NodeId>{1, 2, 3}));

    JointConfig single;
    single.incoming = MajorityConfig({4});
    EXPECT_TRUE(single.isSingleton());
}

// Joint consensus (thesis §4.3): "agreement requires both 2 of the 3 servers in the old
// configuration and 5 of the 9 servers in the new configuration" (here: a majority of each half).
TEST(JointConfig, BothHalvesMustAgree)
{
    JointConfig c;
    c.incoming = MajorityConfig({1, 2, 3});
    c.outgoing = MajorityConfig({3, 4, 5});
    EXPECT_EQ(c.ids(), (std::vector<NodeId>{1, 2, 3, 4, 5}));
    EXPECT_TRUE(c.contains(5));
    EXPECT_FALSE(c.isSingleton());

    // Incoming acknowledged 10 (1, 2), outgoing only 1 (4, 5 at 1; 3 at 5).
    EXPECT_EQ(c.committedIndex(acks({{1, 10}, {2, 10}, {3, 5}, {4, 1}, {5, 1}})), 1u);
    EXPECT_EQ(c.committedIndex(acks({{1, 10}, {2, 10}, {3, 5}, {4, 5}, {5, 1}})), 5u);

    EXPECT_EQ(c.voteResult(votes({{1, true}, {2, true}})), VoteResult::Pending) << "outgoing has not decided";
    EXPECT_EQ(c.voteResult(votes({{1, true}, {2, true}, {3, true}, {4, true}})), VoteResult::Won);
    EXPECT_EQ(c.voteResult(votes({{1, true}, {2, true}, {4, false}, {5, false}})), VoteResult::Lost)
        << "losing either half loses";
}

} // namespace
} // namespace dengine::raft
