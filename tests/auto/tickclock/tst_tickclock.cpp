// SPDX-License-Identifier: Apache-2.0
// TickClock (src/engine/tickclock.h): the core is given one tick per interval of real time, also
// the intervals a paused worker missed, so that a lease counted in ticks is a lease in real time.
#include "engine/tickclock.h"

#include <QtTest/QTest>

using dengine::engine::TickClock;

namespace {
std::int64_t g_nowNs = 0;
std::int64_t fakeNow() { return g_nowNs; }
constexpr std::int64_t Ms = 1000000;
} // namespace

class TstTickClock : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init() { g_nowNs = 5000 * Ms; }

    void oneTickPerIntervalThatPassed()
    {
        TickClock clock(100, 22, &fakeNow);
        clock.start();
        QCOMPARE(clock.take(), 0u);
        g_nowNs += 99 * Ms;
        QCOMPARE(clock.take(), 0u);
        g_nowNs += 1 * Ms;
        QCOMPARE(clock.take(), 1u);
        QCOMPARE(clock.take(), 0u); // asked twice in the same interval
        g_nowNs += 150 * Ms;
        QCOMPARE(clock.take(), 1u);
        g_nowNs += 50 * Ms;
        QCOMPARE(clock.take(), 1u); // the half interval left over counts
    }

    // A worker paused for 700 ms gets the 7 ticks it missed at once, not one.
    void aPausedWorkerCatchesUp()
    {
        TickClock clock(100, 22, &fakeNow);
        clock.start();
        g_nowNs += 700 * Ms;
        QCOMPARE(clock.take(), 7u);
        QCOMPARE(clock.skipped(), 0u);
    }

    // Behind by more than the cap: the core gets the cap (past every lease and promise), the rest is
    // skipped and counted, and counting goes on from the present.
    void aLongPauseIsCappedAndCounted()
    {
        TickClock clock(100, 22, &fakeNow);
        clock.start();
        g_nowNs += 60 * 1000 * Ms;
        QCOMPARE(clock.take(), 22u);
        QCOMPARE(clock.skipped(), 600u - 22u);
        g_nowNs += 100 * Ms;
        QCOMPARE(clock.take(), 1u);
    }

    // The real source keeps counting (CLOCK_BOOTTIME) and never goes back.
    void theRealClockIsMonotonic()
    {
        const std::int64_t a = TickClock::bootTimeNs();
        const std::int64_t b = TickClock::bootTimeNs();
        QVERIFY(a > 0);
        QVERIFY(b >= a);
    }
};

QTEST_GUILESS_MAIN(TstTickClock)
#include "tst_tickclock.moc"
