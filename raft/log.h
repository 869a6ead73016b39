// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/storage.h"
#include "raft/types.h"

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace dengine::raft {

// The tail of the log that is not yet known to be durable.
//
//   [offset, offsetInProgress)    handed to the runtime in a Ready, being written
//   [offsetInProgress, end)       not yet handed out
//
// Every Ready that writes gets a write id, one more than the last; the runtime acknowledges a write
// by its id once it and every earlier write are durable (writes reach the disk in the order they
// were handed out). Entries leave from the front when their write is acknowledged (stableTo).
//
// A write is never recognised by the (index, term) of its last entry: after a truncation the same
// (index, term) can be appended again by a later write, and the earlier write's acknowledgement must
// not pass for it. Each write that handed out entries leaves a mark, its id and the last index it
// wrote; a conflicting append that cuts into the handed-out part pulls every mark at or after the
// cut back to the entry before it (the later write replaces the rest on disk). An acknowledged id
// then makes durable exactly what that write and the ones before it left standing.
//
// A snapshot received from the leader replaces the whole log (restore): it waits here, before the
// entries that follow it, until the write that carries it is acknowledged.
class Unstable {
public:
    explicit Unstable(Index offset) : m_offset(offset), m_offsetInProgress(offset) {}

    Index offset() const { return m_offset; }
    bool empty() const { return m_entries.empty(); }
    std::optional<Index> lastIndex() const;
    std::optional<Term> term(Index index) const;

    // The snapshot not yet durable, if any (its index is offset() - 1).
    const std::optional<Snapshot> &snapshot() const { return m_snapshot; }
    bool hasSnapshotToHandOut() const { return m_snapshot && m_snapshotWriteId == 0; }
    // Replaces everything with the snapshot: the entries, and what earlier writes would make durable.
    void restore(Snapshot snapshot);

    bool hasNotInProgress() const { return m_offsetInProgress < m_offset + m_entries.size(); }
    // The entries not yet handed out, in order.
    std::vector<Entry> notInProgress() const;
    // They were handed out in the write with this id.
    void acceptInProgress(std::uint64_t writeId);
    // The writes up to `writeId` are durable. With `byIndexAndTerm` (an injected bug, for tests) the
    // write is matched by the (index, term) of its last entry instead, as before write ids.
    void stableTo(std::uint64_t writeId, bool byIndexAndTerm = false);
    void truncateAndAppend(const std::vector<Entry> &entries);
    void appendOne(Entry entry);
    // Entries in [lo, hi); both must lie within the unstable range.
    void slice(Index lo, Index hi, std::uint64_t &budget, std::vector<Entry> &out) const;

private:
    struct Mark {
        std::uint64_t writeId;
        Index last;         // what this write left standing: pulled back by truncations
        Index writtenLast;  // the last entry it wrote, as written (only the injected bug uses it)
        Term writtenTerm;
    };
    void dropThrough(Index index);

    std::vector<Entry> m_entries;
    Index m_offset;
    Index m_offsetInProgress;
    std::deque<Mark> m_marks; // ascending write ids, non-decreasing `last`
    std::optional<Snapshot> m_snapshot;
    std::uint64_t m_snapshotWriteId = 0; // the write it was handed out in; 0 while not handed out
};

// A node's view of its whole log: the durable part in Storage and the unstable tail in memory, the
// commit index and how far committed entries were handed out for applying.
class RaftLog {
public:
    RaftLog(Storage &storage, std::uint64_t maxApplyBytes);

    // The first index that has an entry (or would have: lastIndex() + 1 right after a snapshot); the
    // position before it holds the newest snapshot's term.
    Index firstIndex() const;
    Index lastIndex() const;
    Term lastTerm() const;
    // The term of an entry; nullopt when the index is compacted or beyond the log.
    std::optional<Term> term(Index index) const;
    Term termOrZero(Index index) const { return term(index).value_or(0); }
    bool matchTerm(Index index, Term t) const;
    // §5.4.1: is a candidate's log (lastIndex, lastTerm) at least as up to date as this one?
    bool isUpToDate(Index lastIdx, Term t) const;

    // The follower side of AppendEntries (Figure 2). Returns the index of the last new entry when
    // the log matched at (prevIndex, prevTerm), after removing conflicting entries and appending.
    std::optional<Index> maybeAppend(Index prevIndex, Term prevTerm, Index leaderCommit, const std::vector<Entry> &entries);
    // The leader side: appends entries whose indexes follow lastIndex().
    void appendOne(Entry entry) { m_unstable.appendOne(std::move(entry)); }
    void truncateAndAppend(const std::vector<Entry> &entries) { m_unstable.truncateAndAppend(entries); }

    // The largest index <= `index` whose term is <= `t`, with that term (0 if compacted).
    // Lets a leader skip a whole term of mismatches per round trip.
    std::pair<Index, Term> findConflictByTerm(Index index, Term t) const;

    Index committed() const { return m_committed; }
    void commitTo(Index index);
    // Handed out for applying: the core counts entries as applied once they are in a Ready.
    Index applied() const { return m_applying; }

    // The durable prefix: everything at or below this index is in Storage. While a received
    // snapshot is not yet durable, only what the storage's own snapshot covers counts (the rest of
    // the stored log is being replaced).
    Index stableLastIndex() const
    {
        return m_unstable.snapshot() ? m_storage.firstIndex() - 1 : m_unstable.offset() - 1;
    }
    void stableTo(std::uint64_t writeId, bool byIndexAndTerm = false) { m_unstable.stableTo(writeId, byIndexAndTerm); }
    bool hasUnstableToHandOut() const { return m_unstable.hasNotInProgress() || m_unstable.hasSnapshotToHandOut(); }
    std::vector<Entry> unstableToHandOut() const { return m_unstable.notInProgress(); }
    // The received snapshot to hand out with the next write, if any.
    const Snapshot *unstableSnapshotToHandOut() const
    {
        return m_unstable.hasSnapshotToHandOut() ? &*m_unstable.snapshot() : nullptr;
    }
    void acceptUnstable(std::uint64_t writeId) { m_unstable.acceptInProgress(writeId); }

    // The newest snapshot: a received one not yet durable, else the storage's.
    Snapshot snapshot() const;
    // Replaces the log with a snapshot from the leader (whose index is beyond the commit index; the
    // injected bug restoreCommittedSnapshot lets an older one through).
    void restore(Snapshot snapshot, bool allowAtOrBelowCommit = false);

    // Committed entries that are durable here and not yet handed out, up to maxApplyBytes. Throws
    // std::runtime_error when the storage cannot give back entries it holds as durable (it broke its
    // contract: the node must stop, not skip them).
    bool hasCommittedToApply() const;
    std::vector<Entry> committedToApply() const;
    void acceptApplying(Index index) { m_applying = index; }

    // Entries in [lo, hi) up to maxBytes (at least one). Returns false if lo is compacted.
    bool entries(Index lo, Index hi, std::uint64_t maxBytes, std::vector<Entry> &out) const;

private:
    Index findConflict(const std::vector<Entry> &entries) const;
    Index maxApplyIndex() const;

    Storage &m_storage;
    Unstable m_unstable;
    Index m_committed = 0;
    Index m_applying = 0;
    std::uint64_t m_maxApplyBytes;
};

} // namespace dengine::raft
