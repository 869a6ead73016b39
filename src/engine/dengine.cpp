// SPDX-License-Identifier: Apache-2.0
#include <dengine/dengine.h>
#include <dengine/denginestatemachine.h>

#include "engine/engineworker.h"
#include "engine/hostport.h"
#include "engine/limits.h"
#include "engine/watcher_p.h"
#include "storage/logwriter.h"

#include <QtCore/QCoreApplication>
#include <QtCore/QEventLoop>
#include <QtCore/QFutureWatcher>
#include <QtCore/QLoggingCategory>
#include <QtCore/QPointer>
#include <QtCore/QThread>
#include <QtCore/QTimer>

#include <algorithm>
#include <climits>
#include <functional>
#include <limits>

Q_DECLARE_LOGGING_CATEGORY(lcEngine)

using dengine::engine::EngineRequest;
using dengine::engine::EngineWorker;

// The owner-thread half of DEngine: the cache the getters read, and the worker thread's lifetime.
class DEnginePrivate {
public:
    DEnginePrivate(DEngine *q, const DEngineConfig &config) : q(q), config(config) {}

    using State = DEngine::State;

    DEngine *q;
    DEngineConfig config;
    State state = State::Idle;
    DEngine::Error error = DEngine::Error::NoError;
    QString errorString;
    QTimer *stopDeadline = nullptr; // owner side: stopped() comes by stopTimeoutMs, whatever the worker does
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
    // The applied configuration, as the worker last announced it (before: the configured peers).
    QList<NodeId> voters;
    QList<NodeId> learners;
    QMap<NodeId, QString> addresses;
    QMap<NodeId, QString> clientAddresses;

    // Results come back through the courier and finish here, on the owner thread. Calls and bytes in
    // flight (counted from the call until its future finishes) are bounded at the call.
    QObject *courierTarget = nullptr;
    std::shared_ptr<dengine::engine::ResultCourier> courier;
    std::shared_ptr<dengine::engine::MetricsBox> metrics = std::make_shared<dengine::engine::MetricsBox>();
    qint64 callsInFlight = 0;
    qint64 bytesInFlight = 0;

    void beginStop();
    void onWorkerFinished();
    // The worker's latest indexes into the cache, and their signals: when the worker tells of a
    // move, and before it goes.
    void takeIndexes()
    {
        const auto [c, a] = worker->takeIndexes();
        update(commit, c, &DEngine::commitIndexChanged);
        update(applied, a, &DEngine::appliedIndexChanged);
    }
    // The cache changes, then the matching signal (when the value did change).
    template <typename T, typename Signal>
    void update(T &field, T value, Signal signal)
    {
        if (field == value)
            return;
        field = value;
        Q_EMIT(q->*signal)(value);
    }
    void setState(State s);
    void reportError(DEngine::Error e, const QString &message);
    void announceStopping();
    void announceStopped();
    // The worker did not finish by the deadline: leave it to finish on its own, and say stopped.
    void abandonWorker();
    // Lets the worker and its thread delete themselves when the thread ends; forgets both.
    void leaveBehind();
    QFuture<DEngineResult> call(std::shared_ptr<EngineRequest> request);
    // Delivers what the courier still holds for the owner thread, then lets results finish where
    // they are (the engine is going away).
    void flushCourier();
    // A read (or query) of `kind` about `key` at `consistency`, handed to call().
    QFuture<DEngineResult> read(EngineRequest::Kind kind, const QByteArray &key, DEngine::Consistency consistency,
                                const std::function<void(EngineRequest &)> &more = {});
    QFuture<DEngineResult> refuse(DEngine::Status status, const QString &message) const;
    QString checkKey(const QByteArray &key, const char *what) const;
    // batch() and txn(): checks the limits, then one write request.
    QFuture<DEngineResult> write(const QString &what, const QList<DEngineCompare> &compares, const QList<DEngineOperation> &success,
                                 const QList<DEngineOperation> &failure, bool txn);
    QFuture<DEngineResult> membership(EngineRequest::Change change, NodeId node, const QString &address = {});
    // A lease call: a write (keepAliveLease, revokeLease: `command`) or the read leaseTimeToLive.
    QFuture<DEngineResult> leaseCall(EngineRequest::Kind kind, dengine::kv::LeaseCommand::Kind command, quint64 lease);
};

namespace {

std::string toStd(const QByteArray &b) { return std::string(b.constData(), static_cast<std::size_t>(b.size())); }

} // namespace

DEngine::DEngine(const DEngineConfig &config, QObject *parent) : DEngineInterface(parent), d(std::make_unique<DEnginePrivate>(this, config))
{
    if (!config.join)
        d->voters = config.peers.keys();
    d->addresses = config.peers;
    // A child: it moves with the engine if the engine moves to another thread.
    d->courierTarget = new QObject(this);
    DEnginePrivate *p = d.get();
    d->courier = std::make_shared<dengine::engine::ResultCourier>(d->courierTarget, [p](qint64 bytes) {
        --p->callsInFlight;
        p->bytesInFlight -= bytes;
    });
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
        // As stop() does, a leader hands over first; there is no event loop to wait in, so wait for
        // the worker's thread, which ends when the worker has finished (bounded by stopTimeoutMs).
        // A thread still running then is left behind (deleting it would abort).
        if (d->worker)
            QMetaObject::invokeMethod(d->worker, &EngineWorker::stopGracefully, Qt::QueuedConnection);
        else
            d->thread->quit();
        if (d->thread->wait(d->config.stopTimeoutMs)) {
            if (d->worker)
                d->takeIndexes();
            delete d->worker; // its thread has ended: safe from here
            delete d->thread;
        } else {
            qCCritical(lcEngine) << "node" << d->config.nodeId << "worker thread did not finish within stopTimeoutMs; left running";
            d->leaveBehind();
        }
        d->thread = nullptr;
        d->worker = nullptr;
    }
    d->flushCourier();
    if (running)
        d->announceStopped();
}

void DEnginePrivate::flushCourier()
{
    QCoreApplication::sendPostedEvents(courierTarget, QEvent::MetaCall);
    courier->detach();
}

bool DEngine::start()
{
    if (d->state != DEnginePrivate::State::Idle && d->state != DEnginePrivate::State::Stopped) {
        qCWarning(lcEngine) << "node" << d->config.nodeId << "start(): the engine is running or stopping";
        return false;
    }
    d->error = Error::NoError;
    d->errorString.clear();
    if (const QString why = d->config.validate(); !why.isEmpty()) {
        d->reportError(Error::ConfigurationError, why);
        return false;
    }
    d->setState(DEnginePrivate::State::Running);
    d->update(d->role, Role::Follower, &DEngine::roleChanged);
    // A new run replays the log from its start: its indexes begin again.
    d->update(d->commit, quint64(0), &DEngine::commitIndexChanged);
    d->update(d->applied, quint64(0), &DEngine::appliedIndexChanged);
    d->thread = new QThread;
    d->thread->setObjectName(QStringLiteral("dengine-node-%1").arg(d->config.nodeId));
    d->worker = new EngineWorker(d->config, d->stateMachine, d->metrics);
    d->worker->moveToThread(d->thread);
    // The thread ends when the worker has finished, whoever waits for it (the destructor has no
    // event loop to take onWorkerFinished from).
    connect(d->worker, &EngineWorker::finished, d->thread, &QThread::quit, Qt::DirectConnection);

    // Every worker signal arrives queued, in the order emitted; the cache changes just before the
    // matching public signal. Only the current worker's count: one left behind at a stop deadline
    // (or before a restart) may still emit.
    DEnginePrivate *p = d.get();
    EngineWorker *w = d->worker;
    connect(w, &EngineWorker::listening, this, [p, w](quint16 port) {
        if (p->worker == w && p->state == DEnginePrivate::State::Running)
            p->update(p->port, port, &DEngine::listeningPortChanged);
    });
    connect(w, &EngineWorker::failed, this, [p, w](Error error, const QString &message) {
        if (p->worker != w)
            return;
        p->reportError(error, message);
        p->beginStop();
    });
    connect(w, &EngineWorker::softStateChanged, this, [p, w](NodeId leader, Role role) {
        if (p->worker != w || p->state != DEnginePrivate::State::Running)
            return;
        p->update(p->leader, leader, &DEngine::leaderChanged);
        p->update(p->role, role, &DEngine::roleChanged);
    });
    connect(w, &EngineWorker::termChanged, this, [p, w](quint64 term) {
        if (p->worker == w && p->state == DEnginePrivate::State::Running)
            p->update(p->term, term, &DEngine::termChanged);
    });
    connect(w, &EngineWorker::readyReached, this, [this, p, w] {
        if (p->worker != w || p->state != DEnginePrivate::State::Running || p->ready)
            return;
        p->update(p->ready, true, &DEngine::readyChanged);
        Q_EMIT ready();
    });
    connect(w, &EngineWorker::firstCommit, this, [this, p, w](quint64 index) {
        if (p->worker == w && p->state == DEnginePrivate::State::Running)
            Q_EMIT firstCommit(index);
    });
    connect(w, &EngineWorker::indexesChanged, this, [p, w] {
        if (p->worker == w)
            p->takeIndexes();
    });
    connect(w, &EngineWorker::membersChanged, this,
            [this, p, w](const QList<NodeId> &voters, const QList<NodeId> &learners, const QMap<NodeId, QString> &addresses,
                         const QMap<NodeId, QString> &clientAddresses) {
                if (p->worker != w || p->state != DEnginePrivate::State::Running)
                    return;
                if (p->voters == voters && p->learners == learners && p->addresses == addresses && p->clientAddresses == clientAddresses)
                    return;
                p->voters = voters;
                p->learners = learners;
                p->addresses = addresses;
                p->clientAddresses = clientAddresses;
                Q_EMIT membersChanged();
            });
    connect(w, &EngineWorker::finished, this, [p, w] {
        if (p->worker == w)
            p->onWorkerFinished();
    });

    d->thread->start();
    QMetaObject::invokeMethod(d->worker, &EngineWorker::start, Qt::QueuedConnection);
    return true;
}

void DEnginePrivate::setState(State s)
{
    if (state == s)
        return;
    state = s;
    Q_EMIT q->stateChanged(s);
}

void DEnginePrivate::reportError(DEngine::Error e, const QString &message)
{
    error = e;
    errorString = message;
    Q_EMIT q->errorOccurred(e, message);
}

void DEnginePrivate::announceStopping()
{
    setState(State::Stopping);
    update(ready, false, &DEngine::readyChanged);
    Q_EMIT q->stopping();
}

void DEnginePrivate::announceStopped()
{
    if (stopDeadline)
        stopDeadline->stop();
    update(leader, NodeId(0), &DEngine::leaderChanged);
    update(role, DEngine::Role::Stopped, &DEngine::roleChanged);
    update(port, quint16(0), &DEngine::listeningPortChanged);
    setState(State::Stopped);
    Q_EMIT q->stopped();
}

void DEnginePrivate::beginStop()
{
    if (state != State::Running)
        return;
    announceStopping();
    if (worker)
        QMetaObject::invokeMethod(worker, &EngineWorker::stopGracefully, Qt::QueuedConnection);
    if (!stopDeadline) {
        stopDeadline = new QTimer(q);
        stopDeadline->setSingleShot(true);
        QObject::connect(stopDeadline, &QTimer::timeout, q, [this] { abandonWorker(); });
    }
    // The worker bounds its own part (a hand-over takes half of it); this is for a worker that
    // cannot finish at all.
    stopDeadline->start(config.stopTimeoutMs);
}

void DEnginePrivate::leaveBehind()
{
    QObject::connect(thread, &QThread::finished, worker, &QObject::deleteLater);
    QObject::connect(thread, &QThread::finished, thread, &QObject::deleteLater);
    thread = nullptr;
    worker = nullptr;
}

void DEnginePrivate::abandonWorker()
{
    if (state != State::Stopping || !thread)
        return;
    reportError(DEngine::Error::StorageFailure,
                QStringLiteral("the node did not finish stopping within stopTimeoutMs (%1 ms): a write or fsync may be hanging; "
                               "stopped without it, and its data directory stays locked until it finishes")
                    .arg(config.stopTimeoutMs));
    leaveBehind();
    announceStopped();
}

void DEnginePrivate::onWorkerFinished()
{
    if (state == State::Stopped)
        return;
    if (state == State::Running)
        announceStopping(); // the worker stopped on its own (a fatal error already reported)
    thread->quit();
    thread->wait();
    takeIndexes();
    delete worker; // owned here until its thread has ended (a worker deleted early would leave queued
                   // calls to it dangling)
    delete thread;
    thread = nullptr;
    worker = nullptr;
    announceStopped();
}

void DEngine::stop() { d->beginStop(); } // nothing to do unless running

NodeId DEngine::nodeId() const { return d->config.nodeId; }
DEngine::State DEngine::state() const { return d->state; }
DEngine::Error DEngine::error() const { return d->error; }
QString DEngine::errorString() const { return d->errorString; }
NodeId DEngine::currentLeader() const { return d->leader; }
quint64 DEngine::currentTerm() const { return d->term; }
bool DEngine::isReady() const { return d->ready; }
DEngine::Role DEngine::role() const { return d->role; }
// The worker's latest (its notifications are spaced out; a getter need not wait for one).
quint64 DEngine::commitIndex() const { return d->worker ? d->worker->peekIndexes().first : d->commit; }
quint64 DEngine::appliedIndex() const { return d->worker ? d->worker->peekIndexes().second : d->applied; }
QList<NodeId> DEngine::voters() const { return d->voters; }
QList<NodeId> DEngine::learners() const { return d->learners; }
QString DEngine::memberAddress(NodeId id) const { return d->addresses.value(id); }
QString DEngine::memberClientAddress(NodeId id) const
{
    if (id == d->config.nodeId && !d->config.clientAddress.isEmpty())
        return d->config.clientAddress;
    return d->clientAddresses.value(id);
}
DEngineConfig DEngine::config() const { return d->config; }

bool DEngine::setConfig(const DEngineConfig &config)
{
    if (d->state == DEnginePrivate::State::Running || d->state == DEnginePrivate::State::Stopping) {
        qCWarning(lcEngine) << "node" << d->config.nodeId << "setConfig(): the engine is running or stopping";
        return false;
    }
    if (config.nodeId != d->config.nodeId) {
        qCWarning(lcEngine) << "node" << d->config.nodeId << "setConfig(): the node id cannot change (" << config.nodeId << "given)";
        return false;
    }
    d->config = config;
    return true;
}
quint16 DEngine::listeningPort() const { return d->port; }

DEngineMetrics DEngine::metrics() const
{
    DEngineMetrics m;
    {
        std::lock_guard lock(d->metrics->mutex);
        m = d->metrics->published;
    }
    m.proposalsCommitted = d->courier->writesCommitted.load(std::memory_order_relaxed);
    m.proposalsFailed = d->courier->writesFailed.load(std::memory_order_relaxed);
    if (m.fsyncBuckets.isEmpty())
        m.fsyncBuckets = QList<quint64>(DEngineMetrics::fsyncBucketBounds().size(), 0);
    return m;
}

QList<double> DEngineMetrics::fsyncBucketBounds()
{
    QList<double> bounds;
    for (double b : dengine::storage::LogWriter::SyncBucketBounds)
        bounds << b;
    bounds << std::numeric_limits<double>::infinity();
    return bounds;
}

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
    qint64 bytes = static_cast<qint64>(request->key.size() + request->end.size() + request->application.value_or(std::string()).size());
    for (const auto *ops : {&request->operations, &request->failure})
        for (const dengine::kv::Operation &op : *ops)
            bytes += static_cast<qint64>(op.key.size() + op.value.size());
    for (const dengine::kv::Compare &c : request->compares)
        bytes += static_cast<qint64>(c.key.size() + c.value.size());
    if (callsInFlight >= config.maxPendingRequests)
        return refuse(DEngine::Status::Busy, QStringLiteral("%1 calls in flight, the limit (maxPendingRequests)").arg(callsInFlight));
    if (bytesInFlight > 0 && bytesInFlight + bytes > config.maxPendingBytes)
        return refuse(DEngine::Status::Busy, QStringLiteral("%1 bytes in flight, and this call's %2 would pass the limit of %3 (maxPendingBytes)")
                                                 .arg(bytesInFlight)
                                                 .arg(bytes)
                                                 .arg(config.maxPendingBytes));
    ++callsInFlight;
    bytesInFlight += bytes;
    request->bytes = bytes;
    request->courier = courier;
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
    return d->write(QStringLiteral("batch"), {}, operations, {}, false);
}

QFuture<DEngineResult> DEngine::txn(const QList<DEngineCompare> &compares, const QList<DEngineOperation> &success,
                                    const QList<DEngineOperation> &failure)
{
    return d->write(QStringLiteral("txn"), compares, success, failure, true);
}

QFuture<DEngineResult> DEnginePrivate::write(const QString &what, const QList<DEngineCompare> &compares, const QList<DEngineOperation> &success,
                                             const QList<DEngineOperation> &failure, bool txn)
{
    const qsizetype count = compares.size() + success.size() + failure.size();
    if (count > config.maxBatchOperations)
        return refuse(DEngine::Status::InvalidArgument, QStringLiteral("%1: %2 operations and compares, over the limit of %3 (maxBatchOperations)")
                                                   .arg(what)
                                                   .arg(count)
                                                   .arg(config.maxBatchOperations));
    // One batch is one log entry: its keys and values together stay within a few values' worth,
    // so that any entry fits in a message between nodes.
    qint64 bytes = 0;
    for (const QList<DEngineOperation> *ops : {&success, &failure})
        for (const DEngineOperation &op : *ops)
            bytes += op.key.size() + op.value.size();
    for (const DEngineCompare &c : compares)
        bytes += c.key.size() + c.value.size();
    const qint64 maxBatchBytes = dengine::engine::EngineLimits::maxBatchBytes(config);
    if (bytes > maxBatchBytes)
        return refuse(DEngine::Status::InvalidArgument,
                      QStringLiteral("%1: %2 bytes of keys and values, over the limit of %3 (4 x maxValueBytes + maxKeyBytes)")
                          .arg(what)
                          .arg(bytes)
                          .arg(maxBatchBytes));
    auto request = std::make_shared<EngineRequest>();
    request->kind = EngineRequest::Kind::Write;
    request->txn = txn;
    const auto convert = [&](const QList<DEngineOperation> &ops, std::vector<dengine::kv::Operation> &into) -> QString {
        into.reserve(static_cast<std::size_t>(ops.size()));
        for (const DEngineOperation &op : ops) {
            if (const QString why = checkKey(op.key, "key"); !why.isEmpty())
                return why;
            if (op.kind == DEngineOperation::Kind::Put && op.value.size() > config.maxValueBytes)
                return QStringLiteral("value: %1 bytes, over the limit of %2 (maxValueBytes)").arg(op.value.size()).arg(config.maxValueBytes);
            if (op.kind == DEngineOperation::Kind::Put && op.sequential && op.key.size() + qsizetype(dengine::kv::SequentialSuffixBytes) > config.maxKeyBytes)
                return QStringLiteral("key: a sequential put's prefix of %1 bytes leaves no room for its %2-byte suffix within maxKeyBytes (%3)")
                    .arg(op.key.size())
                    .arg(dengine::kv::SequentialSuffixBytes)
                    .arg(config.maxKeyBytes);
            dengine::kv::Operation o;
            o.kind = op.kind == DEngineOperation::Kind::Put ? dengine::kv::Operation::Kind::Put : dengine::kv::Operation::Kind::Remove;
            o.key = toStd(op.key);
            if (op.kind == DEngineOperation::Kind::Put) {
                o.value = toStd(op.value);
                o.lease = op.lease;
                o.sequential = op.sequential;
            }
            into.push_back(std::move(o));
        }
        return {};
    };
    if (QString why = convert(success, request->operations); !why.isEmpty())
        return refuse(DEngine::Status::InvalidArgument, why);
    if (QString why = convert(failure, request->failure); !why.isEmpty())
        return refuse(DEngine::Status::InvalidArgument, why);
    request->compares.reserve(static_cast<std::size_t>(compares.size()));
    for (const DEngineCompare &c : compares) {
        if (const QString why = checkKey(c.key, "compare key"); !why.isEmpty())
            return refuse(DEngine::Status::InvalidArgument, why);
        if (int(c.target) < int(DEngineCompare::Target::Value) || int(c.target) > int(DEngineCompare::Target::ModRevision) || int(c.op) < int(DEngineCompare::Op::Equal)
            || int(c.op) > int(DEngineCompare::Op::Greater))
            return refuse(DEngine::Status::InvalidArgument, QStringLiteral("compare: an unknown target or op"));
        if (c.value.size() > config.maxValueBytes)
            return refuse(DEngine::Status::InvalidArgument, QStringLiteral("compare value: %1 bytes, over the limit of %2 (maxValueBytes)")
                                                       .arg(c.value.size())
                                                       .arg(config.maxValueBytes));
        request->compares.push_back(dengine::kv::Compare{static_cast<dengine::kv::Compare::Target>(c.target),
                                                         static_cast<dengine::kv::Compare::Op>(c.op), toStd(c.key), toStd(c.value), c.number});
    }
    return call(std::move(request));
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

// ---- watches and leases ----------------------------------------------------------------------------

DEngineWatcher *DEngine::watch(const QByteArray &begin, const QByteArray &end, quint64 fromRevision, QObject *parent)
{
    DEngineWatcher *w = DEngineWatcherPrivate::create(parent, begin, end, fromRevision);
    const auto refuse = [w](Status status, const QString &why) {
        DEngineWatcherPrivate::finishLater(w, status, why);
        return w;
    };
    if (d->state != DEnginePrivate::State::Running || !d->worker)
        return refuse(Status::Stopping, d->state == DEnginePrivate::State::Idle ? QStringLiteral("the engine was not started")
                                                                                : QStringLiteral("the engine is stopping"));
    if (begin.size() > d->config.maxKeyBytes || end.size() > d->config.maxKeyBytes)
        return refuse(Status::InvalidArgument, QStringLiteral("watch: a bound longer than maxKeyBytes"));
    if (!end.isEmpty() && end <= begin)
        return refuse(Status::InvalidArgument, QStringLiteral("watch: end does not come after begin"));
    auto sink = std::make_shared<dengine::engine::WatchSink>(w);
    DEngineWatcherPrivate *wd = DEngineWatcherPrivate::of(w);
    wd->onCancel = [sink] {
        sink->cancelled.store(true, std::memory_order_release);
        sink->detach();
    };
    wd->onConsumed = [sink](qint64 bytes) { sink->credit.fetch_add(bytes, std::memory_order_acq_rel); };
    EngineWorker *worker = d->worker;
    QMetaObject::invokeMethod(
        worker, [worker, sink, b = toStd(begin), e = toStd(end), fromRevision]() mutable { worker->addWatch(std::move(sink), std::move(b), std::move(e), fromRevision); },
        Qt::QueuedConnection);
    return w;
}

QFuture<DEngineResult> DEngine::grantLease(qint64 ttlMs)
{
    if (ttlMs < qint64(dengine::kv::MinLeaseTtlMs) || ttlMs > qint64(dengine::kv::MaxLeaseTtlMs))
        return d->refuse(Status::InvalidArgument, QStringLiteral("grantLease: a TTL of %1 ms is outside %2 ms .. 30 days")
                                                     .arg(ttlMs)
                                                     .arg(dengine::kv::MinLeaseTtlMs));
    auto request = std::make_shared<EngineRequest>();
    request->kind = EngineRequest::Kind::Write;
    request->lease = dengine::kv::LeaseCommand{dengine::kv::LeaseCommand::Kind::Grant, 0, static_cast<std::uint64_t>(ttlMs), 0};
    return d->call(std::move(request));
}

QFuture<DEngineResult> DEnginePrivate::leaseCall(EngineRequest::Kind kind, dengine::kv::LeaseCommand::Kind command, quint64 lease)
{
    if (lease == 0)
        return refuse(DEngine::Status::InvalidArgument, QStringLiteral("lease: 0 is no lease"));
    auto request = std::make_shared<EngineRequest>();
    request->kind = kind;
    request->lease = dengine::kv::LeaseCommand{command, lease, 0, 0};
    return call(std::move(request));
}

QFuture<DEngineResult> DEngine::keepAliveLease(quint64 lease)
{
    return d->leaseCall(EngineRequest::Kind::Write, dengine::kv::LeaseCommand::Kind::KeepAlive, lease);
}

QFuture<DEngineResult> DEngine::revokeLease(quint64 lease)
{
    return d->leaseCall(EngineRequest::Kind::Write, dengine::kv::LeaseCommand::Kind::Revoke, lease);
}

QFuture<DEngineResult> DEngine::leaseTimeToLive(quint64 lease)
{
    return d->leaseCall(EngineRequest::Kind::LeaseInfo, dengine::kv::LeaseCommand::Kind::KeepAlive, lease);
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

// ---- membership ---------------------------------------------------------------------------------

QFuture<DEngineResult> DEnginePrivate::membership(EngineRequest::Change change, NodeId node, const QString &address)
{
    auto request = std::make_shared<EngineRequest>();
    request->kind = EngineRequest::Kind::Membership;
    request->change = change;
    request->node = node;
    request->address = address.toStdString();
    return call(std::move(request));
}

QFuture<DEngineResult> DEngine::addLearner(NodeId id, const QString &address)
{
    if (id == 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("addLearner: node id 0 is not allowed"));
    if (!dengine::engine::parseHostPort(address, nullptr, nullptr) || address.toUtf8().size() > 200)
        return d->refuse(Status::InvalidArgument, QStringLiteral("addLearner: address \"%1\" is not host:port (port 1..65535)").arg(address));
    return d->membership(EngineRequest::Change::AddLearner, id, address);
}

QFuture<DEngineResult> DEngine::promote(NodeId id)
{
    if (id == 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("promote: node id 0 is not allowed"));
    return d->membership(EngineRequest::Change::Promote, id);
}

QFuture<DEngineResult> DEngine::removeMember(NodeId id)
{
    if (id == 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("removeMember: node id 0 is not allowed"));
    return d->membership(EngineRequest::Change::Remove, id);
}

QFuture<DEngineResult> DEngine::transferLeadership(NodeId id)
{
    if (id == 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("transferLeadership: node id 0 is not allowed"));
    return d->membership(EngineRequest::Change::TransferLeadership, id);
}
