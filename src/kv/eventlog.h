// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "kv/kvstore.h"

#include <deque>

namespace dengine::kv {

// The recent history of changes a node applied (KvStore's events), for watches: every put and
// delete of the revisions (compacted(), last()], in order. Bounded: it keeps at most
// `maxRevisions` revisions and about `maxBytes` of events, dropping the oldest revisions whole;
// compacted() says how far back it no longer reaches. Not replicated: each node keeps its own
// (after a snapshot is installed, from that snapshot's index on).
//
// Not thread-safe: the engine's worker thread owns it.
class EventLog {
public:
    EventLog(std::uint64_t maxRevisions, std::size_t maxBytes) : m_maxRevisions(maxRevisions ? maxRevisions : 1), m_maxBytes(maxBytes) {}

    // Forgets everything: the history starts after `revision` (a restored snapshot's index).
    void reset(raft::Index revision);
    // Adds the events of `revision` (greater than last(); empty for an entry that changed no key).
    void append(raft::Index revision, std::vector<Event> &&events);
    // Revisions up to this one may have had events that are gone.
    raft::Index compacted() const { return m_compacted; }
    raft::Index last() const { return m_last; }
    std::size_t bytes() const { return m_bytes; }
    std::size_t size() const { return m_events.size(); }

    struct Slice {
        std::vector<Event> events;
        raft::Index upTo = 0;  // every event of the range up to this revision is in `events`
        std::size_t bytes = 0; // of the events (Event::bytes())
    };
    // The events of keys in [begin, end) (an empty end: no bound) from revision `from` on, whole
    // revisions, stopping after the revision in which they reach `maxBytes`. Nothing (false) when
    // `from` is not after compacted(): some of its events may be gone.
    bool read(raft::Index from, std::string_view begin, std::string_view end, std::size_t maxBytes, Slice &out) const;

private:
    void trim();
    std::deque<Event> m_events;
    std::uint64_t m_maxRevisions;
    std::size_t m_maxBytes;
    std::size_t m_bytes = 0;
    raft::Index m_compacted = 0;
    raft::Index m_last = 0;
};

} // namespace dengine::kv
