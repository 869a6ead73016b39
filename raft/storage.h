// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <cstdint>
#include <vector>

namespace dengine::raft {

enum class StorageError : std::uint8_t {
    None,
    Compacted,   // the index lies below firstIndex() - 1: only a snapshot can provide it
    Unavailable, // beyond lastIndex(), or the storage failed (the runtime then stops the node)
};

struct InitialState {
    HardState hardState;
    // The configuration in force at the newest snapshot (the first configuration if there is none):
    // the node applies the configuration changes in its log after that as it applies the entries.
    ConfState confState;
};

// The stable part of a node's log, as the core reads it. The core never writes through this
// interface: the runtime persists what a Ready hands out and then acknowledges it
// (RawNode::acknowledgePersisted). The contract the core relies on:
//  - everything readable here is durable (it survives a crash);
//  - an index in [firstIndex() - 1, lastIndex()] has a term, the one below firstIndex() being the
//    snapshot's (the log's "dummy" position);
//  - calls come from the thread that steps the node; implementations need no locking for it.
class Storage {
public:
    virtual ~Storage() = default;

    virtual InitialState initialState() const = 0;
    // Appends the entries in [lo, hi) to `out`, stopping before the total entrySize would exceed
    // maxBytes; at least one entry is appended when lo < hi.
    virtual StorageError entries(Index lo, Index hi, std::uint64_t maxBytes, std::vector<Entry> &out) const = 0;
    virtual StorageError term(Index index, Term &out) const = 0;
    virtual Index firstIndex() const = 0;
    virtual Index lastIndex() const = 0;
    // The newest snapshot: what a leader sends to a follower that needs compacted entries. Its
    // index is firstIndex() - 1 or later (the log may keep entries behind it). Empty (index 0)
    // when the log was never compacted.
    virtual Snapshot snapshot() const = 0;
};

// A Storage held in memory: the simulator's and the unit tests' stable storage, and a reference for
// what any Storage must do. "Durable" here means what the owner chose to append; the simulator
// models crashes by appending only what its simulated disk synced.
class MemoryStorage final : public Storage {
public:
    // A new, empty log whose first configuration has the given voters.
    explicit MemoryStorage(std::vector<NodeId> voters = {});

    // The configuration is the newest snapshot's (the one in force where the node starts applying),
    // or the first one when there is no snapshot.
    InitialState initialState() const override
    {
        return {m_hardState, m_snapshot.empty() ? m_confState : m_snapshot.metadata.confState};
    }
    StorageError entries(Index lo, Index hi, std::uint64_t maxBytes, std::vector<Entry> &out) const override;
    StorageError term(Index index, Term &out) const override;
    Index firstIndex() const override { return m_offset + 1; }
    Index lastIndex() const override { return m_offset + m_entries.size(); }
    Snapshot snapshot() const override { return m_snapshot; }

    void setHardState(const HardState &hs) { m_hardState = hs; }
    const HardState &hardState() const { return m_hardState; }
    // Appends entries, replacing any existing suffix from the first entry's index on. The first
    // entry's index must be in [firstIndex(), lastIndex() + 1]; returns false otherwise.
    bool append(std::vector<Entry> entries);

    // A snapshot a Ready handed out (one this node received): it replaces the whole log, whose first
    // index becomes the snapshot's index + 1, and the configuration. Returns false, changing
    // nothing, for a snapshot older than the one held.
    bool applySnapshot(Snapshot snapshot);
    // Records a snapshot this node made of its own state machine at `index` (applied there), with
    // the configuration in force at that index. The index must lie in (snapshot().metadata.index,
    // lastIndex()]; returns false otherwise. The entries stay until compact() drops them.
    bool createSnapshot(Index index, const ConfState &confState, Payload data);
    // Drops the entries up to `index`, which the newest snapshot must cover (index <= its index);
    // returns false otherwise. Entries below firstIndex() are gone already: a no-op.
    bool compact(Index index);

private:
    HardState m_hardState;
    ConfState m_confState;
    Snapshot m_snapshot;
    Index m_offset = 0; // index of the position before m_entries[0] (the snapshot's index)
    Term m_offsetTerm = 0;
    std::vector<Entry> m_entries;
};

} // namespace dengine::raft
