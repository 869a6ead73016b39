// SPDX-License-Identifier: Apache-2.0
#include "raft/quorum.h"

#include <limits>

namespace dengine::raft {

MajorityConfig::MajorityConfig(std::vector<NodeId> voters) : m_voters(std::move(voters))
{
    std::sort(m_voters.begin(), m_voters.end());
    m_voters.erase(std::unique(m_voters.begin(), m_voters.end()), m_voters.end());
}

std::uint64_t MajorityConfig::committedIndex(const std::function<std::optional<std::uint64_t>(NodeId)> &acked) const
{
    if (m_voters.empty())
        return std::numeric_limits<std::uint64_t>::max();
    // Small clusters are the rule: a stack buffer keeps this allocation-free on the hot path.
    constexpr std::size_t StackVoters = 16;
    std::uint64_t stack[StackVoters];
    std::vector<std::uint64_t> heap;
    std::uint64_t *values = stack;
    if (m_voters.size() > StackVoters) {
        heap.resize(m_voters.size());
        values = heap.data();
    }
    for (std::size_t i = 0; i < m_voters.size(); ++i)
        values[i] = acked(m_voters[i]).value_or(0);
    const std::size_t n = m_voters.size();
    // Descending order: values[n/2] is then acknowledged by values[0..n/2], a majority.
    std::nth_element(values, values + n / 2, values + n, std::greater<>());
    return values[n / 2];
}

VoteResult MajorityConfig::voteResult(const std::function<std::optional<bool>(NodeId)> &vote) const
{
    if (m_voters.empty())
        return VoteResult::Won; // an empty half of a joint config agrees to anything
    std::size_t granted = 0, missing = 0;
    for (NodeId id : m_voters) {
        const auto v = vote(id);
        if (!v)
            ++missing;
        else if (*v)
            ++granted;
    }
    const std::size_t majority = m_voters.size() / 2 + 1;
    if (granted >= majority)
        return VoteResult::Won;
    if (granted + missing >= majority)
        return VoteResult::Pending;
    return VoteResult::Lost;
}

std::vector<NodeId> JointConfig::ids() const
{
    std::vector<NodeId> out = incoming.voters();
    for (NodeId id : outgoing.voters())
        if (!incoming.contains(id))
            out.push_back(id);
    std::sort(out.begin(), out.end());
    return out;
}

VoteResult JointConfig::voteResult(const std::function<std::optional<bool>(NodeId)> &vote) const
{
    const VoteResult a = incoming.voteResult(vote);
    const VoteResult b = outgoing.voteResult(vote);
    if (a == b)
        return a;
    if (a == VoteResult::Lost || b == VoteResult::Lost)
        return VoteResult::Lost;
    return VoteResult::Pending;
}

} // namespace dengine::raft
