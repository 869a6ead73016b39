// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengineinterface.h>

#include <atomic>
#include <functional>
#include <mutex>

// The state behind a DEngineWatcher and the hooks its source (an engine's worker, a client's
// connection) installs. Owner thread only, except WatchSink below.
class DEngineWatcherPrivate {
public:
    QByteArray begin;
    QByteArray end;
    quint64 revision = 0;
    bool started = false; // a client's: the member said where the watch starts (or it named a revision)
    bool active = true;
    bool paused = false;
    qint64 owed = 0; // bytes delivered while paused, handed back on resume
    DEngineInterface::Status status = DEngineInterface::Status::Ok;
    QString message;
    std::function<void()> onCancel;          // the source forgets the watch
    std::function<void(qint64)> onConsumed;  // the source may send this many more bytes
    std::function<void(bool)> onPaused;      // optional

    static DEngineWatcher *create(QObject *parent, QByteArray begin, QByteArray end, quint64 fromRevision);
    static DEngineWatcherPrivate *of(DEngineWatcher *w) { return w->d.get(); }
    // Delivers the next changes (possibly none: progress only) up to revision `upTo`; `bytes` is
    // what they counted against the source's credit. Nothing once finished or cancelled.
    static void deliver(DEngineWatcher *w, const QList<DEngineWatchEvent> &events, quint64 upTo, qint64 bytes);
    // The watch ended: finished(status, message) once, unless cancelled.
    static void finish(DEngineWatcher *w, DEngineInterface::Status status, const QString &message);
    // finish(), queued to the watcher's thread: for a watch refused as it is made (its caller
    // connects to finished() first).
    static void finishLater(DEngineWatcher *w, DEngineInterface::Status status, const QString &message);
};

namespace dengine::engine {

// The worker's handle on one watcher: posts deliveries to the owner thread, and holds the credit
// (bytes the worker may send before the owner has delivered them). Detached when the watcher goes.
// Threads: post()/finish() from the worker; detach() and the credit from the owner.
class WatchSink {
public:
    static constexpr qint64 Credit = 4 << 20;
    explicit WatchSink(DEngineWatcher *target) : m_target(target) {}
    std::atomic<qint64> credit{Credit};
    std::atomic<bool> cancelled{false};
    void post(QList<DEngineWatchEvent> events, quint64 upTo, qint64 bytes);
    void finish(DEngineInterface::Status status, const QString &message);
    void detach();

private:
    std::mutex m_mutex;
    DEngineWatcher *m_target; // guarded by m_mutex
};

} // namespace dengine::engine
