// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace dengine::raft {

enum class VoteResult : std::uint8_t { Pending, Won, Lost };

// A set of voters deciding by simple majority.
class MajorityConfig {
public:
    MajorityConfig() = default;
    explicit MajorityConfig(std::vector<NodeId> voters);

    const std::vector<NodeId> &voters() const { return m_voters; }
    bool contains(NodeId id) const { return std::binary_search(m_voters.begin(), m_voters.end(), id); }
    std::size_t size() const { return m_voters.size(); }
    bool empty() const { return m_voters.empty(); }

    // The largest value that a majority has acknowledged (at least): with values sorted in
    // descending order, the one at position size/2. An empty config yields the maximum (it does
    // not restrict a joint config). `acked` returns nullopt for a voter not heard from (counts 0).
    std::uint64_t committedIndex(const std::function<std::optional<std::uint64_t>(NodeId)> &acked) const;
    // Won once a majority granted, Lost once a majority can no longer be reached.
    VoteResult voteResult(const std::function<std::optional<bool>(NodeId)> &vote) const;

private:
    std::vector<NodeId> m_voters; // sorted, unique
};

// The voters of a configuration: `incoming` alone, or during a joint-consensus transition both
// `incoming` and `outgoing`, each of which must agree. Only the non-joint form is in use until
// membership changes land; the joint rules are here because quorum logic is where they belong.
struct JointConfig {
    MajorityConfig incoming;
    MajorityConfig outgoing;

    bool contains(NodeId id) const { return incoming.contains(id) || outgoing.contains(id); }
    std::vector<NodeId> ids() const;
    std::uint64_t committedIndex(const std::function<std::optional<std::uint64_t>(NodeId)> &acked) const
    {
        return std::min(incoming.committedIndex(acked), outgoing.committedIndex(acked));
    }
    VoteResult voteResult(const std::function<std::optional<bool>(NodeId)> &vote) const;
    bool isSingleton() const { return outgoing.empty() && incoming.size() == 1; }
};

} // namespace dengine::raft
