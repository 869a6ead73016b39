// SPDX-License-Identifier: Apache-2.0
#include "raft/storage.h"

#include <algorithm>

namespace dengine::raft {

MemoryStorage::MemoryStorage(std::vector<NodeId> voters)
{
    m_confState.voters = std::move(voters);
    m_snapshot.metadata.confState = m_confState;
}

StorageError MemoryStorage::entries(Index lo, Index hi, std::uint64_t maxBytes, std::vector<Entry> &out) const
{
    if (lo <= m_offset)
        return StorageError::Compacted;
    if (hi > lastIndex() + 1 || lo > hi)
        return StorageError::Unavailable;
    std::uint64_t bytes = 0;
    for (Index i = lo; i < hi; ++i) {
        const Entry &e = m_entries[i - m_offset - 1];
        bytes += entrySize(e);
        if (i > lo && bytes > maxBytes)
            break;
        out.push_back(e);
    }
    return StorageError::None;
}

StorageError MemoryStorage::term(Index index, Term &out) const
{
    if (index < m_offset)
        return StorageError::Compacted;
    if (index > lastIndex())
        return StorageError::Unavailable;
    out = index == m_offset ? m_offsetTerm : m_entries[index - m_offset - 1].term;
    return StorageError::None;
}

bool MemoryStorage::append(std::vector<Entry> entries)
{
    if (entries.empty())
        return true;
    const Index first = entries.front().index;
    if (first <= m_offset || first > lastIndex() + 1)
        return false;
    m_entries.resize(first - m_offset - 1);
    m_entries.insert(m_entries.end(), std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
    return true;
}

bool MemoryStorage::applySnapshot(Snapshot snapshot)
{
    if (snapshot.metadata.index < m_snapshot.metadata.index)
        return false;
    m_entries.clear();
    m_offset = snapshot.metadata.index;
    m_offsetTerm = snapshot.metadata.term;
    m_confState = snapshot.metadata.confState;
    m_hardState.commit = std::max(m_hardState.commit, snapshot.metadata.index);
    m_snapshot = std::move(snapshot);
    return true;
}

bool MemoryStorage::createSnapshot(Index index, const ConfState &confState, Payload data)
{
    if (index <= m_snapshot.metadata.index || index > lastIndex() || index < m_offset)
        return false;
    Term t = 0;
    if (term(index, t) != StorageError::None)
        return false;
    m_snapshot.metadata = SnapshotMetadata{index, t, confState};
    m_snapshot.data = std::move(data);
    return true;
}

bool MemoryStorage::compact(Index index)
{
    if (index > m_snapshot.metadata.index)
        return false;
    if (index <= m_offset)
        return true;
    const Term t = m_entries[index - m_offset - 1].term;
    m_entries.erase(m_entries.begin(), m_entries.begin() + static_cast<std::ptrdiff_t>(index - m_offset));
    m_offset = index;
    m_offsetTerm = t;
    return true;
}

} // namespace dengine::raft
