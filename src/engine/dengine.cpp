// SPDX-License-Identifier: Apache-2.0
#include <dengine/dengine.h>
#include <dengine/denginestatemachine.h>

#include "engine/engineworker.h"

#include <QtCore/QEventLoop>
#include <QtCore/QLoggingCategory>
#include <QtCore/QPointer>
#include <QtCore/QThread>
#include <QtCore/QTimer>

#include <functional>

Q_DECLARE_LOGGING_CATEGORY(lcEngine)

using dengine::engine::EngineRequest;
using dengine::engine::EngineWorker;

// The owner-thread half of DEngine: the cache the getters read, and the worker thread's lifetime.
class DEnginePrivate {
public:
    DEnginePrivate(DEngine *q, const DEngineConfig &config) : q(q), config(config) {}

    enum class State { Idle, Running, Stopping, Stopped };

    DEngine *q;
    DEngineConfig config;
    State state = State::Idle;
    QThread *thread = nullptr;
    EngineWorker *worker = nullptr;
    DEngineStateMachine *stateMachine = nullptr;

    NodeId leader = 0;
    quint64 term = 0;
    bool ready = false;
    DEngine::Role role = DEngine::Role::Stopped;
    quint64 commit = 0;
    quint64 applied = 0;
    quint16 port = 0;

    void beginStop();
    void onWorkerFinished();
    // The cache changes, then the matching signal (when the value did change).
    template <typename T, typename Signal>
    void update(T &field, T value, Signal signal)
    {
        if (field == value)
            return;
        field = value;
        Q_EMIT(q->*signal)(value);
    }
    void announceStopping();
    void announceStopped();
    QFuture<DEngineResult> call(std::shared_ptr<EngineRequest> request);
    // A read (or query) of `kind` about `key` at `consistency`, handed to call().
    QFuture<DEngineResult> read(EngineRequest::Kind kind, const QByteArray &key, DEngine::Consistency consistency,
                                const std::function<void(EngineRequest &)> &more = {});
    QFuture<DEngineResult> refuse(DEngine::Status status, const QString &message) const;
    QString checkKey(const QByteArray &key, const char *what) const;
};

namespace {

std::string toStd(const QByteArray &b) { return std::string(b.constData(), static_cast<std::size_t>(b.size())); }

} // namespace

DEngine::DEngine(const DEngineConfig &config, QObject *parent) : QObject(parent), d(std::make_unique<DEnginePrivate>(this, config))
{
    qRegisterMetaType<DEngineResult>();
    qRegisterMetaType<NodeId>("NodeId");
    qRegisterMetaType<DEngine::Error>();
    qRegisterMetaType<DEngine::Role>();
}

DEngine::~DEngine()
{
    const bool running = d->state == DEnginePrivate::State::Running || d->state == DEnginePrivate::State::Stopping;
    if (d->state == DEnginePrivate::State::Running)
        d->announceStopping();
    if (d->thread) {
        // No event loop to wait in: the worker shuts down and ends its thread itself; wait for
        // that, bounded. A thread still running then is left behind (deleting it would abort).
        if (d->worker) {
            EngineWorker *w = d->worker;
            QMetaObject::invokeMethod(
                w,
                [w] {
                    w->shutdown();
                    QThread::currentThread()->quit();
                },
                Qt::QueuedConnection);
        } else {
            d->thread->quit();
        }
        if (d->thread->wait(d->config.stopTimeoutMs)) {
            delete d->thread;
        } else {
            qCCritical(lcEngine) << "node" << d->config.nodeId << "worker thread did not finish within stopTimeoutMs; left running";
            QObject::connect(d->thread, &QThread::finished, d->thread, &QObject::deleteLater);
        }
        d->thread = nullptr;
    }
    if (running)
        d->announceStopped();
}

bool DEngine::start()
{
    if (d->state != DEnginePrivate::State::Idle) {
        qCWarning(lcEngine) << "node" << d->config.nodeId << "start(): the engine was started before";
        return false;
    }
    if (const QString why = d->config.validate(); !why.isEmpty()) {
        Q_EMIT errorOccurred(Error::ConfigurationError, why);
        return false;
    }
    d->state = DEnginePrivate::State::Running;
    d->role = Role::Follower;
    d->thread = new QThread;
    d->thread->setObjectName(QStringLiteral("dengine-node-%1").arg(d->config.nodeId));
    d->worker = new EngineWorker(d->config, d->stateMachine);
    d->worker->moveToThread(d->thread);
    connect(d->thread, &QThread::finished, d->worker, &QObject::deleteLater);

    // Every worker signal arrives queued, in the order emitted; the cache changes just before the
    // matching public signal.
    DEnginePrivate *p = d.get();
    connect(d->worker, &EngineWorker::listening, this, [p](quint16 port) { p->port = port; });
    connect(d->worker, &EngineWorker::failed, this, [this](Error error, const QString &message) {
        Q_EMIT errorOccurred(error, message);
        d->beginStop();
    });
    connect(d->worker, &EngineWorker::softStateChanged, this, [this](NodeId leader, Role role) {
        if (d->state != DEnginePrivate::State::Running)
            return;
        d->update(d->leader, leader, &DEngine::leaderChanged);
        d->update(d->role, role, &DEngine::roleChanged);
    });
    connect(d->worker, &EngineWorker::termChanged, this, [this](quint64 term) {
        if (d->state == DEnginePrivate::State::Running)
            d->update(d->term, term, &DEngine::termChanged);
    });
    connect(d->worker, &EngineWorker::readyReached, this, [this] {
        if (d->state != DEnginePrivate::State::Running || d->ready)
            return;
        d->update(d->ready, true, &DEngine::readyChanged);
        Q_EMIT ready();
    });
    connect(d->worker, &EngineWorker::firstCommit, this, [this](quint64 index) {
        if (d->state == DEnginePrivate::State::Running)
            Q_EMIT firstCommit(index);
    });
    connect(d->worker, &EngineWorker::indexesChanged, this, [this, w = d->worker] {
        // The latest values (the worker queues one of these at a time; the indexes only grow).
        const auto [commit, applied] = w->takeIndexes();
        d->update(d->commit, commit, &DEngine::commitIndexChanged);
        d->update(d->applied, applied, &DEngine::appliedIndexChanged);
    });
    connect(d->worker, &EngineWorker::finished, this, [p] { p->onWorkerFinished(); });

    d->thread->start();
    QMetaObject::invokeMethod(d->worker, &EngineWorker::start, Qt::QueuedConnection);
    return true;
}

void DEnginePrivate::announceStopping()
{
    state = State::Stopping;
    update(ready, false, &DEngine::readyChanged);
    Q_EMIT q->stopping();
}

void DEnginePrivate::announceStopped()
{
    state = State::Stopped;
    update(leader, NodeId(0), &DEngine::leaderChanged);
    update(role, DEngine::Role::Stopped, &DEngine::roleChanged);
    Q_EMIT q->stopped();
}

void DEnginePrivate::beginStop()
{
    if (state != State::Running)
        return;
    announceStopping();
    if (worker)
        QMetaObject::invokeMethod(worker, &EngineWorker::stopGracefully, Qt::QueuedConnection);
}

void DEnginePrivate::onWorkerFinished()
{
    if (state == State::Stopped)
        return;
    if (state == State::Running)
        announceStopping(); // the worker stopped on its own (a fatal error already reported)
    thread->quit();
    thread->wait();
    delete thread;
    thread = nullptr;
    worker = nullptr; // deleted with its thread's end
    announceStopped();
}

void DEngine::stop()
{
    if (d->state == DEnginePrivate::State::Idle) {
        d->state = DEnginePrivate::State::Stopped;
        return;
    }
    d->beginStop();
}

bool DEngine::waitForReady(int msecs)
{
    if (d->ready || d->state != DEnginePrivate::State::Running)
        return d->ready;
    QEventLoop loop;
    QTimer timer;
    timer.setSingleShot(true);
    connect(&timer, &QTimer::timeout, &loop, &QEventLoop::quit);
    connect(this, &DEngine::ready, &loop, &QEventLoop::quit);
    connect(this, &DEngine::stopping, &loop, &QEventLoop::quit);
    timer.start(msecs);
    loop.exec();
    return d->ready;
}

bool DEngine::waitForStopped(int msecs)
{
    if (d->state == DEnginePrivate::State::Idle || d->state == DEnginePrivate::State::Stopped)
        return true;
    QEventLoop loop;
    QTimer timer;
    timer.setSingleShot(true);
    connect(&timer, &QTimer::timeout, &loop, &QEventLoop::quit);
    connect(this, &DEngine::stopped, &loop, &QEventLoop::quit);
    timer.start(msecs);
    loop.exec();
    return d->state == DEnginePrivate::State::Stopped;
}

NodeId DEngine::nodeId() const { return d->config.nodeId; }
NodeId DEngine::currentLeader() const { return d->leader; }
quint64 DEngine::currentTerm() const { return d->term; }
bool DEngine::isReady() const { return d->ready; }
bool DEngine::isRunning() const { return d->state == DEnginePrivate::State::Running || d->state == DEnginePrivate::State::Stopping; }
DEngine::Role DEngine::role() const { return d->role; }
quint64 DEngine::commitIndex() const { return d->commit; }
quint64 DEngine::appliedIndex() const { return d->applied; }
QList<NodeId> DEngine::members() const { return d->config.peers.keys(); }
DEngineConfig DEngine::config() const { return d->config; }
quint16 DEngine::listeningPort() const { return d->port; }

// ---- calls ----------------------------------------------------------------------------------------

QFuture<DEngineResult> DEnginePrivate::refuse(DEngine::Status status, const QString &message) const
{
    DEngineResult r;
    r.status = status;
    r.message = message;
    r.leaderHint = leader;
    r.revision = applied;
    QPromise<DEngineResult> promise;
    promise.start();
    promise.addResult(r);
    promise.finish();
    return promise.future();
}

QString DEnginePrivate::checkKey(const QByteArray &key, const char *what) const
{
    if (key.isEmpty())
        return QStringLiteral("%1: must not be empty").arg(QLatin1String(what));
    if (key.size() > config.maxKeyBytes)
        return QStringLiteral("%1: %2 bytes, over the limit of %3 (maxKeyBytes)").arg(QLatin1String(what)).arg(key.size()).arg(config.maxKeyBytes);
    return {};
}

QFuture<DEngineResult> DEnginePrivate::call(std::shared_ptr<EngineRequest> request)
{
    if (state != State::Running || !worker)
        return refuse(DEngine::Status::Stopping, state == State::Idle ? QStringLiteral("the engine was not started")
                                                                       : QStringLiteral("the engine is stopping"));
    request->promise = std::make_shared<QPromise<DEngineResult>>();
    request->promise->start();
    QFuture<DEngineResult> future = request->promise->future();
    worker->enqueue(std::move(request));
    return future;
}

QFuture<DEngineResult> DEnginePrivate::read(EngineRequest::Kind kind, const QByteArray &key, DEngine::Consistency consistency,
                                            const std::function<void(EngineRequest &)> &more)
{
    auto request = std::make_shared<EngineRequest>();
    request->kind = kind;
    request->key = toStd(key);
    request->consistency = consistency;
    if (more)
        more(*request);
    return call(std::move(request));
}

QFuture<DEngineResult> DEngine::put(const QByteArray &key, const QByteArray &value)
{
    return batch({DEngineOperation::put(key, value)});
}

QFuture<DEngineResult> DEngine::remove(const QByteArray &key) { return batch({DEngineOperation::remove(key)}); }

QFuture<DEngineResult> DEngine::batch(const QList<DEngineOperation> &operations)
{
    if (operations.isEmpty())
        return d->refuse(Status::InvalidArgument, QStringLiteral("batch: no operations"));
    if (operations.size() > d->config.maxBatchOperations)
        return d->refuse(Status::InvalidArgument, QStringLiteral("batch: %1 operations, over the limit of %2 (maxBatchOperations)")
                                                      .arg(operations.size())
                                                      .arg(d->config.maxBatchOperations));
    // One batch is one log entry: its keys and values together stay within a few values' worth,
    // so that any entry fits in a message between nodes.
    qint64 bytes = 0;
    for (const DEngineOperation &op : operations)
        bytes += op.key.size() + op.value.size();
    const qint64 maxBatchBytes = 4LL * d->config.maxValueBytes + d->config.maxKeyBytes;
    if (bytes > maxBatchBytes)
        return d->refuse(Status::InvalidArgument,
                         QStringLiteral("batch: %1 bytes of keys and values, over the limit of %2 (4 x maxValueBytes + maxKeyBytes)")
                             .arg(bytes)
                             .arg(maxBatchBytes));
    auto request = std::make_shared<EngineRequest>();
    request->kind = EngineRequest::Kind::Write;
    request->operations.reserve(static_cast<std::size_t>(operations.size()));
    for (const DEngineOperation &op : operations) {
        if (const QString why = d->checkKey(op.key, "key"); !why.isEmpty())
            return d->refuse(Status::InvalidArgument, why);
        if (op.kind == DEngineOperation::Kind::Put && op.value.size() > d->config.maxValueBytes)
            return d->refuse(Status::InvalidArgument, QStringLiteral("value: %1 bytes, over the limit of %2 (maxValueBytes)")
                                                          .arg(op.value.size())
                                                          .arg(d->config.maxValueBytes));
        dengine::kv::Operation o;
        o.kind = op.kind == DEngineOperation::Kind::Put ? dengine::kv::Operation::Kind::Put : dengine::kv::Operation::Kind::Remove;
        o.key = toStd(op.key);
        if (op.kind == DEngineOperation::Kind::Put)
            o.value = toStd(op.value);
        request->operations.push_back(std::move(o));
    }
    return d->call(std::move(request));
}

QFuture<DEngineResult> DEngine::get(const QByteArray &key, Consistency consistency)
{
    if (const QString why = d->checkKey(key, "key"); !why.isEmpty())
        return d->refuse(Status::InvalidArgument, why);
    return d->read(EngineRequest::Kind::Get, key, consistency);
}

QFuture<DEngineResult> DEngine::scan(const QByteArray &prefix, int limit, Consistency consistency)
{
    if (limit < 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("limit: must not be negative"));
    if (prefix.size() > d->config.maxKeyBytes)
        return d->refuse(Status::InvalidArgument, QStringLiteral("prefix: longer than maxKeyBytes"));
    return d->read(EngineRequest::Kind::Scan, prefix, consistency, [limit](EngineRequest &r) { r.limit = static_cast<std::size_t>(limit); });
}

QFuture<DEngineResult> DEngine::range(const QByteArray &begin, const QByteArray &end, int limit, Consistency consistency)
{
    if (limit < 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("limit: must not be negative"));
    if (begin.size() > d->config.maxKeyBytes || end.size() > d->config.maxKeyBytes)
        return d->refuse(Status::InvalidArgument, QStringLiteral("range: a bound longer than maxKeyBytes"));
    if (!end.isEmpty() && end < begin)
        return d->refuse(Status::InvalidArgument, QStringLiteral("range: end comes before begin"));
    return d->read(EngineRequest::Kind::Range, begin, consistency, [&end, limit](EngineRequest &r) {
        r.end = toStd(end);
        r.limit = static_cast<std::size_t>(limit);
    });
}

// ---- the application's state machine ------------------------------------------------------------

DEngineStateMachine::~DEngineStateMachine() = default;

bool DEngine::setStateMachine(DEngineStateMachine *stateMachine)
{
    if (d->state != DEnginePrivate::State::Idle)
        return false;
    d->stateMachine = stateMachine;
    return true;
}

QFuture<DEngineResult> DEngine::propose(const QByteArray &command)
{
    if (!d->stateMachine)
        return d->refuse(Status::InvalidArgument, QStringLiteral("propose: no state machine installed (setStateMachine)"));
    if (command.isEmpty())
        return d->refuse(Status::InvalidArgument, QStringLiteral("propose: the command is empty"));
    if (command.size() > d->config.maxValueBytes)
        return d->refuse(Status::InvalidArgument, QStringLiteral("propose: %1 bytes, over the limit of %2 (maxValueBytes)")
                                                      .arg(command.size())
                                                      .arg(d->config.maxValueBytes));
    auto request = std::make_shared<EngineRequest>();
    request->kind = EngineRequest::Kind::Write;
    request->application = toStd(command);
    return d->call(std::move(request));
}

QFuture<DEngineResult> DEngine::query(const QByteArray &query, Consistency consistency)
{
    if (!d->stateMachine)
        return d->refuse(Status::InvalidArgument, QStringLiteral("query: no state machine installed (setStateMachine)"));
    return d->read(EngineRequest::Kind::Query, query, consistency);
}
