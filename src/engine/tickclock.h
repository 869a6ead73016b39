// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <ctime>

namespace dengine::engine {

// The consensus core counts time in ticks, and the lease is measured in them (raft/config.h, "The
// lease"): a leader may serve reads from a round that started at tick S until tick S + electionTick
// - 1 - leaseDriftTicks. That is only true in real time if the core has been ticked once for every
// interval that really passed before it decides anything. A QTimer does not do that: a worker thread
// that was paused (a stop signal, a debugger, a long slot, a machine swapping) gets one timeout
// afterwards, not the ones it missed, and its leader would go on counting its lease from a stale
// tick while the followers' promises ran out.
//
// TickClock says how many ticks are due by a clock that never stops and never steps: CLOCK_BOOTTIME,
// which is CLOCK_MONOTONIC plus the time the machine was suspended (a suspended leader's followers
// did not stop counting). The worker ticks the core up to due() before it steps a message, before a
// lease decision and on every timer. Behind by more than maxCatchUp ticks (a long pause, a suspend),
// it gives the core maxCatchUp ticks, which is more than any lease or promise lasts, and skips the
// rest: counting from there on is consistent again.
//
// Drift margin: the lease assumes no node's clock runs faster than another's by more than
// leaseDriftTicks / (electionTick - 1 - leaseDriftTicks), 12% with the defaults (electionTick 10,
// leaseDriftTicks 1). CLOCK_BOOTTIME is disciplined by NTP only in rate (at most 500 ppm), far inside.
//
// Thread: one thread (the worker's). Blocking: never.
class TickClock {
public:
    using Source = std::int64_t (*)(); // nanoseconds; tests pass a clock of their own

    explicit TickClock(std::int64_t intervalMs, std::uint64_t maxCatchUp, Source now = &TickClock::bootTimeNs)
        : m_now(now), m_intervalNs(intervalMs * 1000000), m_maxCatchUp(maxCatchUp)
    {
    }

    void start()
    {
        m_startNs = m_now();
        m_counted = 0;
    }

    // How many ticks to give the core now: the intervals that passed since the last call, at most
    // maxCatchUp. Zero until the next interval is complete.
    std::uint64_t take()
    {
        const std::uint64_t due = static_cast<std::uint64_t>((m_now() - m_startNs) / m_intervalNs);
        if (due <= m_counted)
            return 0;
        const std::uint64_t n = due - m_counted;
        m_counted = due;
        if (n > m_maxCatchUp) {
            m_skipped += n - m_maxCatchUp;
            return m_maxCatchUp;
        }
        return n;
    }

    // Ticks given up so far because the worker was behind by more than maxCatchUp.
    std::uint64_t skipped() const { return m_skipped; }

    static std::int64_t bootTimeNs()
    {
        timespec ts{};
#ifdef CLOCK_BOOTTIME
        clock_gettime(CLOCK_BOOTTIME, &ts);
#else
        clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
        return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    }

private:
    Source m_now;
    std::int64_t m_intervalNs;
    std::uint64_t m_maxCatchUp;
    std::int64_t m_startNs = 0;
    std::uint64_t m_counted = 0;
    std::uint64_t m_skipped = 0;
};

} // namespace dengine::engine
