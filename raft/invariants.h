// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/rawnode.h"
#include "raft/types.h"

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace dengine::raft {

// Safety checks that tests and the simulator run after every step. Each check returns an empty
// string when the property holds, otherwise a sentence describing the violation.

// One node's own history within one run of the process (between restarts).
class NodeInvariants {
public:
    // Term and commit never decrease; the commit index lies within the log; applied <= commit; the
    // durable prefix lies within the log; a leader has voted for itself in its term.
    std::string check(const NodeStatus &s);
    // The node restarted from its storage: volatile state (commit) may legitimately be lower now.
    void restarted(const NodeStatus &s);

private:
    bool m_seen = false;
    NodeStatus m_last;
};

// Properties across the whole cluster (Raft Figure 3).
class ClusterInvariants {
public:
    // Election Safety: at most one leader per term.
    std::string observeRole(NodeId node, Term term, Role role);
    // Log Matching: every entry any node appends, with the term of the entry before the first one.
    // Two entries with the same index and term must carry the same payload and follow an entry of
    // the same term; by induction, the logs are then identical up to that index.
    std::string observeAppend(NodeId node, Term prevTerm, const std::vector<Entry> &entries);
    // State Machine Safety: no two nodes apply different entries at the same index, and each node
    // applies indexes in order without gaps.
    std::string observeApply(NodeId node, const Entry &entry);
    // Leader Completeness: a new leader's log holds every entry applied anywhere so far.
    std::string observeLeaderLog(NodeId node, Term term, const RaftLog &log);
    // A node restarted: it replays its log from the start (or from Config::applied).
    void restarted(NodeId node, Index appliedFloor) { m_nextApply[node] = appliedFloor + 1; }

    Index highestApplied() const { return m_applied.empty() ? 0 : m_applied.rbegin()->first; }

private:
    struct Seen {
        NodeId node;
        Term prevTerm;
        EntryType type;
        Payload data;
    };
    struct Key {
        Index index;
        Term term;
        friend bool operator==(const Key &, const Key &) = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key &k) const { return std::hash<std::uint64_t>()(k.index * 1000003ULL ^ k.term); }
    };
    std::map<Term, NodeId> m_leaders;
    std::unordered_map<Key, Seen, KeyHash> m_entries;
    std::map<Index, Entry> m_applied;
    std::map<NodeId, Index> m_nextApply;
    std::map<NodeId, Term> m_checkedLeaderTerm;
};

} // namespace dengine::raft
