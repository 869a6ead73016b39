// SPDX-License-Identifier: Apache-2.0
// What DEngine and DEngineClient share: the waits, built on the signals and getters alone.
#include <dengine/dengineinterface.h>

#include <QtCore/QEventLoop>
#include <QtCore/QFutureWatcher>
#include <QtCore/QTimer>

#include <algorithm>
#include <climits>

DEngineInterface::DEngineInterface(QObject *parent) : QObject(parent)
{
    qRegisterMetaType<DEngineResult>();
    qRegisterMetaType<NodeId>("NodeId");
    qRegisterMetaType<DEngineInterface::Error>();
    qRegisterMetaType<DEngineInterface::Role>();
    qRegisterMetaType<DEngineInterface::State>();
}

namespace {
// Runs a local event loop until `until` quits it or the deadline passes.
template <typename Connect> void waitIn(QDeadlineTimer deadline, Connect until)
{
    QEventLoop loop;
    QTimer timer;
    timer.setSingleShot(true);
    QObject::connect(&timer, &QTimer::timeout, &loop, &QEventLoop::quit);
    until(loop);
    if (!deadline.isForever())
        timer.start(static_cast<int>(std::clamp<qint64>(deadline.remainingTime(), 0, INT_MAX)));
    loop.exec();
}
} // namespace

bool DEngineInterface::waitForReady(QDeadlineTimer deadline)
{
    if (isReady() || state() != State::Running)
        return isReady();
    waitIn(deadline, [this](QEventLoop &loop) {
        connect(this, &DEngineInterface::ready, &loop, &QEventLoop::quit);
        connect(this, &DEngineInterface::stopping, &loop, &QEventLoop::quit);
    });
    return isReady();
}

bool DEngineInterface::waitForStopped(QDeadlineTimer deadline)
{
    if (state() == State::Idle || state() == State::Stopped)
        return true;
    waitIn(deadline, [this](QEventLoop &loop) { connect(this, &DEngineInterface::stopped, &loop, &QEventLoop::quit); });
    return state() == State::Stopped;
}

DEngineResult DEngineInterface::waitForResult(const QFuture<DEngineResult> &future, QDeadlineTimer deadline)
{
    if (!future.isFinished()) {
        QEventLoop loop;
        QFutureWatcher<DEngineResult> watcher;
        QTimer timer;
        timer.setSingleShot(true);
        QObject::connect(&watcher, &QFutureWatcherBase::finished, &loop, &QEventLoop::quit);
        QObject::connect(&timer, &QTimer::timeout, &loop, &QEventLoop::quit);
        watcher.setFuture(future);
        if (!deadline.isForever())
            timer.start(static_cast<int>(std::clamp<qint64>(deadline.remainingTime(), 0, INT_MAX)));
        if (!future.isFinished())
            loop.exec();
    }
    if (future.isFinished() && future.resultCount() > 0)
        return future.result();
    DEngineResult r;
    r.status = Status::Timeout;
    r.message = future.isCanceled() ? QStringLiteral("the call was abandoned (the engine was destroyed)")
                                    : QStringLiteral("waitForResult: the deadline passed before the call finished");
    return r;
}


QList<NodeId> DEngineInterface::members() const
{
    QList<NodeId> all = voters() + learners();
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    return all;
}

QByteArray DEngineInterface::prefixEnd(const QByteArray &prefix)
{
    QByteArray end = prefix;
    while (!end.isEmpty()) {
        if (static_cast<unsigned char>(end.back()) != 0xff) {
            end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
            return end;
        }
        end.chop(1);
    }
    return end;
}


DEngineWatcher *DEngineInterface::watchPrefix(const QByteArray &prefix, quint64 fromRevision, QObject *parent)
{
    return watch(prefix, prefixEnd(prefix), fromRevision, parent);
}

QByteArray DEngineOperation::sequentialKey(const QByteArray &prefix, quint64 revision, int ordinal)
{
    return prefix + QByteArray::number(revision).rightJustified(20, '0') + '-' + QByteArray::number(ordinal % 10000).rightJustified(4, '0');
}
