// SPDX-License-Identifier: Apache-2.0
#include "raft/progress.h"

#include <algorithm>

namespace dengine::raft {

void Inflights::add(Index lastIndex, std::uint64_t bytes, std::uint64_t sentTick)
{
    if (m_count == m_maxCount)
        return; // callers check full() first; never grow past the limit
    if (m_ring.empty())
        m_ring.resize(m_maxCount); // allocated on first use: idle followers cost nothing
    m_ring[(m_start + m_count) % m_maxCount] = {lastIndex, bytes, sentTick};
    ++m_count;
    m_bytes += bytes;
}

void Inflights::freeLE(Index index)
{
    while (m_count > 0) {
        const Slot &s = m_ring[m_start];
        if (s.index > index)
            break;
        m_bytes -= s.bytes;
        m_start = (m_start + 1) % m_maxCount;
        --m_count;
    }
    if (m_count == 0)
        m_start = 0;
}

void Inflights::reset()
{
    m_start = 0;
    m_count = 0;
    m_bytes = 0;
}

void Progress::becomeProbe()
{
    // Out of Snapshot state, the follower has (or will have had) the snapshot: probe after it.
    next = state == ProgressState::Snapshot ? std::max(match + 1, pendingSnapshot + 1) : match + 1;
    state = ProgressState::Probe;
    pendingSnapshot = 0;
    probeSent = false;
    inflights.reset();
}

void Progress::becomeSnapshot(Index snapshotIndex)
{
    state = ProgressState::Snapshot;
    pendingSnapshot = snapshotIndex;
    probeSent = false;
    inflights.reset();
}

void Progress::becomeReplicate()
{
    state = ProgressState::Replicate;
    pendingSnapshot = 0;
    next = match + 1;
    probeSent = false;
    inflights.reset();
}

bool Progress::maybeUpdate(Index index)
{
    bool updated = false;
    if (match < index) {
        match = index;
        updated = true;
        probeSent = false;
    }
    next = std::max(next, index + 1);
    return updated;
}

bool Progress::maybeDecrTo(Index rejected, Index hint)
{
    if (state == ProgressState::Replicate) {
        // A rejection at or below match was for an Append sent before the follower matched.
        if (rejected <= match)
            return false;
        next = match + 1;
        return true;
    }
    // In probe, only the answer to the outstanding probe (at next - 1) counts.
    if (next == 0 || next - 1 != rejected)
        return false;
    next = std::max(std::min(rejected, hint + 1), match + 1);
    probeSent = false;
    return true;
}

void Progress::sentEntries(std::size_t count, std::uint64_t bytes, Index lastIndex, std::uint64_t nowTick)
{
    switch (state) {
    case ProgressState::Replicate:
        if (count > 0) {
            next = lastIndex + 1;
            inflights.add(lastIndex, bytes, nowTick);
        }
        break;
    case ProgressState::Probe:
        probeSent = true;
        break;
    case ProgressState::Snapshot:
        break;
    }
}

bool Progress::isPaused() const
{
    switch (state) {
    case ProgressState::Probe:
        return probeSent;
    case ProgressState::Replicate:
        return inflights.full();
    case ProgressState::Snapshot:
        return true;
    }
    return true;
}

std::string Progress::describe() const
{
    static const char *names[] = {"probe", "replicate", "snapshot"};
    return std::string(names[static_cast<int>(state)]) + " match=" + std::to_string(match) + " next=" + std::to_string(next)
        + " inflight=" + std::to_string(inflights.count())
        + (state == ProgressState::Snapshot ? " snapshot=" + std::to_string(pendingSnapshot) : std::string());
}

} // namespace dengine::raft
