// SPDX-License-Identifier: Apache-2.0
#include "raft/log.h"

#include <algorithm>
#include <cassert>
#include <stdexcept>
#include <string>

namespace dengine::raft {

// ---- Unstable ---------------------------------------------------------------------------------

std::optional<Index> Unstable::lastIndex() const
{
    if (m_entries.empty())
        return std::nullopt;
    return m_offset + m_entries.size() - 1;
}

std::optional<Term> Unstable::term(Index index) const
{
    if (m_snapshot && index == m_snapshot->metadata.index)
        return m_snapshot->metadata.term;
    if (index < m_offset || index >= m_offset + m_entries.size())
        return std::nullopt;
    return m_entries[index - m_offset].term;
}

std::vector<Entry> Unstable::notInProgress() const
{
    return {m_entries.begin() + (m_offsetInProgress - m_offset), m_entries.end()};
}

void Unstable::restore(Snapshot snapshot)
{
    m_entries.clear();
    m_offset = snapshot.metadata.index + 1;
    m_offsetInProgress = m_offset;
    // Writes handed out before it wrote entries the snapshot replaces: their acknowledgements make
    // nothing durable any more (the snapshot's own write, later, does).
    m_marks.clear();
    m_snapshot = std::move(snapshot);
    m_snapshotWriteId = 0;
}

void Unstable::acceptInProgress(std::uint64_t writeId)
{
    if (m_snapshot && m_snapshotWriteId == 0)
        m_snapshotWriteId = writeId;
    const Index end = m_offset + m_entries.size();
    if (m_offsetInProgress < end)
        m_marks.push_back(Mark{writeId, end - 1, end - 1, m_entries.back().term});
    m_offsetInProgress = end;
}

void Unstable::stableTo(std::uint64_t writeId, bool byIndexAndTerm)
{
    if (m_snapshot && m_snapshotWriteId != 0 && m_snapshotWriteId <= writeId) {
        m_snapshot.reset();
        m_snapshotWriteId = 0;
    }
    if (byIndexAndTerm) {
        // The bug this replaced: look the write's last entry up by (index, term), which a later
        // write may have appended again after a truncation.
        for (const Mark &m : m_marks) {
            if (m.writeId != writeId)
                continue;
            const auto have = term(m.writtenLast);
            if (have && *have == m.writtenTerm)
                dropThrough(m.writtenLast);
        }
        while (!m_marks.empty() && m_marks.front().writeId <= writeId)
            m_marks.pop_front();
        return;
    }
    Index durable = 0;
    bool any = false;
    while (!m_marks.empty() && m_marks.front().writeId <= writeId) {
        durable = m_marks.front().last; // non-decreasing: the last one popped is the furthest
        any = true;
        m_marks.pop_front();
    }
    if (any && durable >= m_offset)
        dropThrough(durable);
}

void Unstable::dropThrough(Index index)
{
    const std::size_t drop = index - m_offset + 1;
    m_entries.erase(m_entries.begin(), m_entries.begin() + static_cast<std::ptrdiff_t>(drop));
    m_offset = index + 1;
    m_offsetInProgress = std::max(m_offsetInProgress, m_offset);
    if (m_entries.empty() && m_entries.capacity() > 4096)
        m_entries.shrink_to_fit(); // after a burst, do not keep its memory forever
}

void Unstable::truncateAndAppend(const std::vector<Entry> &entries)
{
    if (entries.empty())
        return;
    // Nothing at or below a pending snapshot is ever replaced: that is all committed.
    assert(!m_snapshot || entries.front().index > m_snapshot->metadata.index);
    const Index from = entries.front().index;
    const Index end = m_offset + m_entries.size();
    if (from == end) {
        // the common case: the entries directly follow
    } else if (from <= m_offset) {
        // Replace the whole unstable tail; the storage below `from` stays as it is. Entries between
        // `from` and the old offset are durable but conflict: the runtime's next write replaces
        // them on disk, because it writes these entries at their indexes.
        m_entries.clear();
        m_offset = from;
        m_offsetInProgress = from;
    } else {
        m_entries.resize(from - m_offset);
        m_offsetInProgress = std::min(m_offsetInProgress, from);
    }
    // Writes handed out earlier stand only up to the cut: what they wrote from `from` on is
    // replaced by a later write, and their acknowledgement no longer covers it.
    for (Mark &m : m_marks)
        m.last = std::min(m.last, from - 1);
    m_entries.insert(m_entries.end(), entries.begin(), entries.end());
}

void Unstable::appendOne(Entry entry)
{
    assert(entry.index == m_offset + m_entries.size());
    m_entries.push_back(std::move(entry));
}

void Unstable::slice(Index lo, Index hi, std::uint64_t &budget, std::vector<Entry> &out) const
{
    for (Index i = lo; i < hi; ++i) {
        const Entry &e = m_entries[i - m_offset];
        const std::uint64_t size = entrySize(e);
        if (!out.empty() && size > budget) {
            budget = 0;
            return;
        }
        budget = size > budget ? 0 : budget - size;
        out.push_back(e);
    }
}

// ---- RaftLog ----------------------------------------------------------------------------------

RaftLog::RaftLog(Storage &storage, std::uint64_t maxApplyBytes)
    : m_storage(storage), m_unstable(storage.lastIndex() + 1), m_maxApplyBytes(maxApplyBytes)
{
    // Everything up to the snapshot is committed and applied by definition (the runtime restores its
    // state machine from the newest snapshot at start); the log may keep entries behind it.
    m_committed = std::max(storage.firstIndex() - 1, storage.snapshot().metadata.index);
    m_applying = m_committed;
}

Index RaftLog::firstIndex() const
{
    if (const auto &snap = m_unstable.snapshot())
        return snap->metadata.index + 1;
    return m_storage.firstIndex();
}

Index RaftLog::lastIndex() const
{
    if (auto last = m_unstable.lastIndex())
        return *last;
    if (const auto &snap = m_unstable.snapshot())
        return snap->metadata.index;
    return m_storage.lastIndex();
}

Snapshot RaftLog::snapshot() const
{
    if (const auto &snap = m_unstable.snapshot())
        return *snap;
    return m_storage.snapshot();
}

void RaftLog::restore(Snapshot snapshot, bool allowAtOrBelowCommit)
{
    if (snapshot.metadata.index <= m_committed && !allowAtOrBelowCommit)
        throw std::logic_error("raft: restoring snapshot " + std::to_string(snapshot.metadata.index) + " at or below commit "
                               + std::to_string(m_committed));
    m_committed = snapshot.metadata.index;
    m_unstable.restore(std::move(snapshot));
}

Term RaftLog::lastTerm() const { return termOrZero(lastIndex()); }

std::optional<Term> RaftLog::term(Index index) const
{
    if (index + 1 < firstIndex())
        return std::nullopt; // compacted
    if (auto t = m_unstable.term(index))
        return t;
    // Indexes at or above the unstable offset that the unstable part lacks are beyond the log, even
    // if the storage still holds an older, conflicting entry there.
    if (index >= m_unstable.offset())
        return std::nullopt;
    Term t = 0;
    if (m_storage.term(index, t) != StorageError::None)
        return std::nullopt;
    return t;
}

bool RaftLog::matchTerm(Index index, Term t) const
{
    const auto have = term(index);
    return have && *have == t;
}

bool RaftLog::isUpToDate(Index lastIdx, Term t) const
{
    const Term myTerm = lastTerm();
    return t > myTerm || (t == myTerm && lastIdx >= lastIndex());
}

Index RaftLog::findConflict(const std::vector<Entry> &entries) const
{
    for (const Entry &e : entries) {
        if (!matchTerm(e.index, e.term))
            return e.index;
    }
    return 0;
}

std::optional<Index> RaftLog::maybeAppend(Index prevIndex, Term prevTerm, Index leaderCommit, const std::vector<Entry> &entries)
{
    if (!matchTerm(prevIndex, prevTerm))
        return std::nullopt;
    const Index lastNew = prevIndex + entries.size();
    const Index conflict = findConflict(entries);
    if (conflict != 0) {
        if (conflict <= m_committed) {
            // Log Matching guarantees a leader never sends an entry that conflicts with a committed
            // one; seeing it means a safety bug or corrupt storage, and going on would lose data.
            throw std::logic_error("raft: entry " + std::to_string(conflict) + " conflicts with committed index "
                                   + std::to_string(m_committed));
        }
        const std::size_t skip = conflict - (prevIndex + 1);
        m_unstable.truncateAndAppend(std::vector<Entry>(entries.begin() + skip, entries.end()));
    }
    commitTo(std::min(leaderCommit, lastNew));
    return lastNew;
}

std::pair<Index, Term> RaftLog::findConflictByTerm(Index index, Term t) const
{
    for (;;) {
        const auto have = term(index);
        if (!have)
            return {index, 0};
        if (*have <= t)
            return {index, *have};
        if (index == 0)
            return {0, 0};
        --index;
    }
}

void RaftLog::commitTo(Index index)
{
    if (index <= m_committed)
        return; // commit never decreases
    if (index > lastIndex())
        throw std::logic_error("raft: commit " + std::to_string(index) + " beyond last index " + std::to_string(lastIndex()));
    m_committed = index;
}

Index RaftLog::maxApplyIndex() const
{
    // Committed means durable on a quorum, but this node applies only what it has itself made
    // durable, so the applied state never runs ahead of what a restart can rebuild from its log.
    return std::min(m_committed, stableLastIndex());
}

bool RaftLog::hasCommittedToApply() const { return m_applying < maxApplyIndex(); }

std::vector<Entry> RaftLog::committedToApply() const
{
    std::vector<Entry> out;
    const Index hi = maxApplyIndex();
    if (m_applying >= hi)
        return out;
    if (hi > lastIndex() || !entries(m_applying + 1, hi + 1, m_maxApplyBytes, out) || out.empty())
        throw std::runtime_error("raft: the storage cannot give back committed entries " + std::to_string(m_applying + 1) + ".."
                                 + std::to_string(hi) + ", which it holds as durable");
    return out;
}

bool RaftLog::entries(Index lo, Index hi, std::uint64_t maxBytes, std::vector<Entry> &out) const
{
    hi = std::min(hi, lastIndex() + 1);
    if (lo >= hi)
        return true;
    if (lo < firstIndex())
        return false;
    std::uint64_t budget = maxBytes;
    const Index stableEnd = std::min(hi, m_unstable.offset());
    if (lo < stableEnd) {
        const std::size_t before = out.size();
        if (m_storage.entries(lo, stableEnd, maxBytes, out) != StorageError::None)
            return false;
        std::uint64_t used = 0;
        for (std::size_t i = before; i < out.size(); ++i)
            used += entrySize(out[i]);
        if (out.size() - before < stableEnd - lo)
            return true; // the byte limit stopped the storage read
        budget = used >= maxBytes ? 0 : maxBytes - used;
        if (budget == 0)
            return true;
    }
    const Index unstableLo = std::max(lo, m_unstable.offset());
    if (unstableLo < hi)
        m_unstable.slice(unstableLo, hi, budget, out);
    return true;
}

} // namespace dengine::raft
