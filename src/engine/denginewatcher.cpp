// SPDX-License-Identifier: Apache-2.0
#include "engine/watcher_p.h"

#include <QtCore/QPointer>

DEngineWatcher::DEngineWatcher(QObject *parent) : QObject(parent), d(std::make_unique<DEngineWatcherPrivate>()) {}

DEngineWatcher::~DEngineWatcher() { cancel(); }

QByteArray DEngineWatcher::begin() const { return d->begin; }
QByteArray DEngineWatcher::end() const { return d->end; }
quint64 DEngineWatcher::revision() const { return d->revision; }
bool DEngineWatcher::isActive() const { return d->active; }
DEngineInterface::Status DEngineWatcher::status() const { return d->status; }
QString DEngineWatcher::message() const { return d->message; }
bool DEngineWatcher::isPaused() const { return d->paused; }

void DEngineWatcher::cancel()
{
    if (!d->active)
        return;
    d->active = false;
    d->message = QStringLiteral("cancelled");
    if (d->onCancel)
        d->onCancel();
    d->onCancel = nullptr;
    d->onConsumed = nullptr;
    d->onPaused = nullptr;
}

void DEngineWatcher::setPaused(bool paused)
{
    if (d->paused == paused)
        return;
    d->paused = paused;
    if (d->onPaused)
        d->onPaused(paused);
    if (!paused && d->owed > 0 && d->onConsumed) {
        const qint64 owed = d->owed;
        d->owed = 0;
        d->onConsumed(owed);
    }
}

DEngineWatcher *DEngineWatcherPrivate::create(QObject *parent, QByteArray begin, QByteArray end, quint64 fromRevision)
{
    qRegisterMetaType<DEngineWatchEvent>();
    qRegisterMetaType<QList<DEngineWatchEvent>>();
    auto *w = new DEngineWatcher(parent);
    w->d->begin = std::move(begin);
    w->d->end = std::move(end);
    w->d->revision = fromRevision > 0 ? fromRevision - 1 : 0;
    return w;
}

void DEngineWatcherPrivate::deliver(DEngineWatcher *w, const QList<DEngineWatchEvent> &events, quint64 upTo, qint64 bytes)
{
    DEngineWatcherPrivate *d = w->d.get();
    if (!d->active)
        return;
    QPointer<DEngineWatcher> alive(w);
    const bool moved = upTo > d->revision;
    if (moved)
        d->revision = upTo;
    if (!events.isEmpty())
        Q_EMIT w->eventsReceived(events);
    if (!alive || !d->active)
        return; // deleted or cancelled in a slot
    if (moved)
        Q_EMIT w->progressed(d->revision);
    if (!alive || !d->active || bytes <= 0)
        return;
    if (d->paused)
        d->owed += bytes;
    else if (d->onConsumed)
        d->onConsumed(bytes);
}

void DEngineWatcherPrivate::finish(DEngineWatcher *w, DEngineInterface::Status status, const QString &message)
{
    DEngineWatcherPrivate *d = w->d.get();
    if (!d->active)
        return;
    d->active = false;
    d->status = status;
    d->message = message;
    d->onCancel = nullptr;
    d->onConsumed = nullptr;
    d->onPaused = nullptr;
    Q_EMIT w->finished(status, message);
}

void DEngineWatcherPrivate::finishLater(DEngineWatcher *w, DEngineInterface::Status status, const QString &message)
{
    QMetaObject::invokeMethod(w, [w, status, message] { finish(w, status, message); }, Qt::QueuedConnection);
}

namespace dengine::engine {

void WatchSink::post(QList<DEngineWatchEvent> events, quint64 upTo, qint64 bytes)
{
    std::lock_guard lock(m_mutex);
    if (!m_target)
        return;
    DEngineWatcher *w = m_target;
    // Queued to the watcher itself: dropped by Qt if it is deleted before it runs.
    QMetaObject::invokeMethod(
        w, [w, events = std::move(events), upTo, bytes] { DEngineWatcherPrivate::deliver(w, events, upTo, bytes); }, Qt::QueuedConnection);
}

void WatchSink::finish(DEngineInterface::Status status, const QString &message)
{
    std::lock_guard lock(m_mutex);
    if (!m_target)
        return;
    DEngineWatcherPrivate::finishLater(m_target, status, message);
}

void WatchSink::detach()
{
    std::lock_guard lock(m_mutex);
    m_target = nullptr;
}

} // namespace dengine::engine
