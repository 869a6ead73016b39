// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the benchmarks (bench/*.cpp and `dengine bench`) share: an event loop that sleeps while
// it waits, and the reference workload's keys.

#include <QtCore/QByteArray>
#include <QtCore/QCoreApplication>
#include <QtCore/QElapsedTimer>
#include <QtCore/QTimer>

#include <functional>

namespace dengine::bench {

// Runs the event loop until done() or limitMs pass. It sleeps while nothing happens (a timer wakes
// it every 5 ms to check): a spinning client would take a core from the nodes it measures.
inline void pump(const std::function<bool()> &done, qint64 limitMs)
{
    QElapsedTimer t;
    t.start();
    QTimer wake;
    wake.start(5);
    while (!done() && t.elapsed() < limitMs)
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
}

// Key i of the reference workload: 16 bytes, "key" and 13 digits.
inline QByteArray keyOf(quint64 i) { return QByteArray("key") + QByteArray::number(i).rightJustified(13, '0'); }

} // namespace dengine::bench
