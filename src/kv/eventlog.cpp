// SPDX-License-Identifier: Apache-2.0
#include "kv/eventlog.h"

#include <algorithm>
#include <stdexcept>

namespace dengine::kv {

void EventLog::reset(raft::Index revision)
{
    m_events.clear();
    m_bytes = 0;
    m_compacted = revision;
    m_last = revision;
}

void EventLog::append(raft::Index revision, std::vector<Event> &&events)
{
    if (revision <= m_last)
        throw std::logic_error("eventlog: revision " + std::to_string(revision) + " after " + std::to_string(m_last));
    m_last = revision;
    for (Event &e : events) {
        m_bytes += e.bytes();
        m_events.push_back(std::move(e));
    }
    trim();
}

void EventLog::trim()
{
    // By revisions: keep (last - maxRevisions, last].
    if (m_last > m_maxRevisions && m_compacted < m_last - m_maxRevisions)
        m_compacted = m_last - m_maxRevisions;
    // By bytes: the oldest revisions go whole.
    while (!m_events.empty()) {
        const raft::Index oldest = m_events.front().revision;
        if (oldest > m_compacted && m_bytes <= m_maxBytes)
            break;
        while (!m_events.empty() && m_events.front().revision == oldest) {
            m_bytes -= m_events.front().bytes();
            m_events.pop_front();
        }
        m_compacted = std::max(m_compacted, oldest);
    }
}

bool EventLog::read(raft::Index from, std::string_view begin, std::string_view end, std::size_t maxBytes, Slice &out) const
{
    out.events.clear();
    out.bytes = 0;
    if (from <= m_compacted)
        return false;
    if (from > m_last) {
        out.upTo = from - 1;
        return true;
    }
    auto it = std::lower_bound(m_events.begin(), m_events.end(), from, [](const Event &e, raft::Index r) { return e.revision < r; });
    for (; it != m_events.end(); ++it) {
        if (out.bytes >= maxBytes && it->revision != (it == m_events.begin() ? 0 : std::prev(it)->revision)) {
            // Full: stop at the revision boundary; what was read covers up to the one before.
            out.upTo = it->revision - 1;
            return true;
        }
        if (it->key < begin || (!end.empty() && !(it->key < end)))
            continue;
        out.bytes += it->bytes();
        out.events.push_back(*it);
    }
    out.upTo = m_last;
    return true;
}

} // namespace dengine::kv
