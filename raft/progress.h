// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dengine::raft {

// The Append messages in flight to one follower: a ring of (last index, bytes) with limits on
// count and bytes. The leader stops sending when it is full and frees slots as the follower
// acknowledges, which bounds both the follower's receive queue and the leader's memory.
class Inflights {
public:
    Inflights(std::size_t maxCount, std::uint64_t maxBytes) : m_maxCount(maxCount), m_maxBytes(maxBytes) {}

    void add(Index lastIndex, std::uint64_t bytes, std::uint64_t sentTick);
    // Frees every message whose last index is <= index (the follower acknowledged up to it).
    void freeLE(Index index);
    void reset();
    bool full() const { return m_count == m_maxCount || m_bytes >= m_maxBytes; }
    std::size_t count() const { return m_count; }
    std::uint64_t bytes() const { return m_bytes; }
    // The tick at which the oldest unacknowledged message went out (only when count() > 0).
    std::uint64_t oldestSentTick() const { return m_ring[m_start].sentTick; }

private:
    struct Slot {
        Index index;
        std::uint64_t bytes;
        std::uint64_t sentTick;
    };
    std::vector<Slot> m_ring; // maxCount slots once used
    std::size_t m_start = 0;
    std::size_t m_count = 0;
    std::uint64_t m_bytes = 0;
    std::size_t m_maxCount;
    std::uint64_t m_maxBytes;
};

// How the leader replicates to one follower.
//  Probe:     the match point is unknown; one Append at a time, then wait for the answer (or a
//             heartbeat response) before the next, stepping `next` back on rejection.
//  Replicate: the follower matched; send optimistically (next = last sent + 1), many messages in
//             flight up to the Inflights window.
//  Snapshot:  the follower needs entries the leader compacted: a snapshot is on its way to it, and
//             nothing else is sent until it is acknowledged or reported lost (RawNode::reportSnapshot).
enum class ProgressState : std::uint8_t { Probe, Replicate, Snapshot };

struct Progress {
    Progress(Index next, std::size_t maxInflight, std::uint64_t maxInflightBytes)
        : next(next), inflights(maxInflight, maxInflightBytes)
    {
    }

    Index match = 0;       // highest index known to be durable on the follower
    Index next = 1;        // next index to send
    Index sentCommit = 0;  // highest commit index sent to the follower
    std::uint64_t ackedRound = 0; // highest heartbeat (read) round the follower acknowledged
    ProgressState state = ProgressState::Probe;
    bool probeSent = false;    // Probe: an Append is outstanding, wait for its answer
    bool recentActive = false; // heard from since the last check-quorum round
    bool isLearner = false;    // reserved (learners)
    bool lossReported = false; // the follower was seen to have lost entries it acknowledged (logged once)
    Index pendingSnapshot = 0; // Snapshot: the index of the snapshot sent
    Inflights inflights;

    void becomeProbe();
    void becomeReplicate();
    void becomeSnapshot(Index snapshotIndex);
    // An acknowledgement of `index`: returns true if match moved forward.
    bool maybeUpdate(Index index);
    // A rejection of the Append at `rejected`; `hint` is where the leader wants to probe next.
    // Returns false if the rejection is stale (for an Append already superseded).
    bool maybeDecrTo(Index rejected, Index hint);
    // Records that an Append carrying `count` entries (`bytes` of them), ending at lastIndex, went out.
    void sentEntries(std::size_t count, std::uint64_t bytes, Index lastIndex, std::uint64_t nowTick);
    bool isPaused() const;
    std::string describe() const;
};

} // namespace dengine::raft
