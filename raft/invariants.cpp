// SPDX-License-Identifier: Apache-2.0
#include "raft/invariants.h"

#include <sstream>

namespace dengine::raft {

namespace {

std::string describe(const Entry &e)
{
    std::ostringstream out;
    out << "(index " << e.index << ", term " << e.term << ", " << e.data.size() << " bytes)";
    return out.str();
}

} // namespace

std::string NodeInvariants::check(const NodeStatus &s)
{
    std::ostringstream err;
    const HardState &hs = s.hardState;
    if (hs.commit > s.lastIndex)
        err << "commit " << hs.commit << " beyond last index " << s.lastIndex;
    else if (s.applied > hs.commit)
        err << "applied " << s.applied << " beyond commit " << hs.commit;
    else if (s.stableIndex > s.lastIndex)
        err << "durable index " << s.stableIndex << " beyond last index " << s.lastIndex;
    else if (s.softState.role == Role::Leader && (s.softState.leader != s.id || hs.vote != s.id))
        err << "leader of term " << hs.term << " has not voted for itself (vote " << hs.vote << ")";
    else if (m_seen && hs.term < m_last.hardState.term)
        err << "term went back from " << m_last.hardState.term << " to " << hs.term;
    else if (m_seen && hs.commit < m_last.hardState.commit)
        err << "commit went back from " << m_last.hardState.commit << " to " << hs.commit;
    else if (m_seen && hs.term == m_last.hardState.term && m_last.hardState.vote != NoNode && hs.vote != m_last.hardState.vote)
        err << "vote changed within term " << hs.term << " from " << m_last.hardState.vote << " to " << hs.vote;
    m_seen = true;
    m_last = s;
    const std::string text = err.str();
    return text.empty() ? text : "node " + std::to_string(s.id) + ": " + text;
}

void NodeInvariants::restarted(const NodeStatus &s)
{
    m_seen = true;
    m_last = s;
}

std::string ClusterInvariants::observeRole(NodeId node, Term term, Role role)
{
    if (role != Role::Leader)
        return {};
    const auto [it, inserted] = m_leaders.emplace(term, node);
    if (!inserted && it->second != node)
        return "election safety: nodes " + std::to_string(it->second) + " and " + std::to_string(node) + " both led term "
            + std::to_string(term);
    return {};
}

std::string ClusterInvariants::observeAppend(NodeId node, Term prevTerm, const std::vector<Entry> &entries)
{
    for (const Entry &e : entries) {
        const auto [it, inserted] = m_entries.emplace(Key{e.index, e.term}, Seen{node, prevTerm, e.type, e.data});
        if (!inserted) {
            const Seen &s = it->second;
            if (s.prevTerm != prevTerm || s.type != e.type || !(s.data == e.data)) {
                std::ostringstream out;
                out << "log matching: node " << node << " appended " << describe(e) << " after term " << prevTerm
                    << ", but node " << s.node << " has a different entry with that index and term (after term " << s.prevTerm
                    << ", " << s.data.size() << " bytes)";
                return out.str();
            }
        }
        prevTerm = e.term;
    }
    return {};
}

std::string ClusterInvariants::observeApply(NodeId node, const Entry &entry)
{
    Index &next = m_nextApply.try_emplace(node, 1).first->second;
    if (entry.index != next) {
        std::ostringstream out;
        out << "apply order: node " << node << " applied index " << entry.index << " but its next was " << next;
        return out.str();
    }
    ++next;
    const auto [it, inserted] = m_applied.emplace(entry.index, entry);
    if (!inserted && (it->second.term != entry.term || !(it->second.data == entry.data))) {
        std::ostringstream out;
        out << "state machine safety: node " << node << " applied " << describe(entry) << " where another node applied "
            << describe(it->second);
        return out.str();
    }
    return {};
}

std::string ClusterInvariants::observeLeaderLog(NodeId node, Term term, const RaftLog &log)
{
    auto &checked = m_checkedLeaderTerm[node];
    if (checked == term)
        return {};
    checked = term;
    for (const auto &[index, entry] : m_applied) {
        const auto have = log.term(index);
        if (index < log.firstIndex())
            continue; // compacted: covered by the snapshot
        if (!have || *have != entry.term) {
            std::ostringstream out;
            out << "leader completeness: node " << node << " leads term " << term << " without applied entry " << describe(entry);
            return out.str();
        }
    }
    return {};
}

} // namespace dengine::raft
