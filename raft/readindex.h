// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <cstdint>
#include <deque>
#include <vector>

namespace dengine::raft {

// The leader's side of ReadIndex (Raft thesis §6.4), batched by heartbeat rounds.
//
// Every heartbeat broadcast is a numbered round. A read that arrives records the commit index and
// waits for the first round started *after* it: once a quorum has acknowledged that round (or any
// later one), the leader was still the leader when the read arrived, so the recorded index is safe.
// All reads that arrive between two rounds share the next one, so a thousand concurrent reads cost
// one heartbeat round trip, and rounds may overlap (no read waits for an older round to finish).
//
// The confirmed round is the quorum-th highest acknowledged round over the voters (the leader
// counting its latest), computed like a commit index. The same acknowledgements give the lease:
// the start tick of the latest confirmed round.
class ReadIndexRounds {
public:
    struct Read {
        std::uint64_t context;
        NodeId from; // this node for local reads, else the follower that forwarded the batch
        Index index;
        std::uint64_t round;
        std::uint64_t arrivedTick;
    };

    // A read to confirm with the next round.
    void add(std::uint64_t context, NodeId from, Index index, std::uint64_t nowTick)
    {
        m_waiting.push_back({context, from, index, m_lastRound + 1, nowTick});
    }
    bool roundNeeded() const { return !m_waiting.empty() && m_waiting.back().round > m_lastRound; }
    std::uint64_t lastRound() const { return m_lastRound; }
    std::uint64_t confirmedRound() const { return m_confirmedRound; }
    std::size_t waiting() const { return m_waiting.size(); }

    std::uint64_t startRound(std::uint64_t nowTick)
    {
        ++m_lastRound;
        m_starts.push_back({m_lastRound, nowTick});
        if (m_starts.size() > MaxTrackedRounds)
            m_starts.pop_front(); // an unanswered leader: old rounds can no longer grant a lease
        return m_lastRound;
    }

    // The quorum confirmed `round`: returns the reads it releases, in arrival order.
    std::vector<Read> confirm(std::uint64_t round)
    {
        std::vector<Read> released;
        if (round <= m_confirmedRound)
            return released;
        m_confirmedRound = round;
        while (!m_starts.empty() && m_starts.front().round <= round) {
            if (m_starts.front().round == round) {
                m_leaseStartTick = m_starts.front().tick;
                m_hasLease = true;
            }
            m_starts.pop_front();
        }
        while (!m_waiting.empty() && m_waiting.front().round <= round) {
            released.push_back(m_waiting.front());
            m_waiting.pop_front();
        }
        return released;
    }

    // The configuration changed: a lease needs a round confirmed from now on.
    void revokeLease() { m_hasLease = false; }
    // The tick at which the latest confirmed round started, if any round was confirmed.
    bool hasLease() const { return m_hasLease; }
    std::uint64_t leaseStartTick() const { return m_leaseStartTick; }

    // Reads that have waited since before `tick`: taken out (their leader cannot reach a quorum).
    std::vector<Read> expire(std::uint64_t tick)
    {
        std::vector<Read> expired;
        while (!m_waiting.empty() && m_waiting.front().arrivedTick < tick) {
            expired.push_back(m_waiting.front());
            m_waiting.pop_front();
        }
        return expired;
    }

    // Leadership ended or began: everything waiting is returned to be dropped.
    std::vector<Read> reset()
    {
        std::vector<Read> dropped(m_waiting.begin(), m_waiting.end());
        *this = ReadIndexRounds();
        return dropped;
    }

private:
    static constexpr std::size_t MaxTrackedRounds = 4096;
    struct RoundStart {
        std::uint64_t round;
        std::uint64_t tick;
    };
    std::deque<Read> m_waiting; // ordered by round (and arrival)
    std::deque<RoundStart> m_starts;
    std::uint64_t m_lastRound = 0;
    std::uint64_t m_confirmedRound = 0;
    std::uint64_t m_leaseStartTick = 0;
    bool m_hasLease = false;
};

} // namespace dengine::raft
