// SPDX-License-Identifier: Apache-2.0
#include "dqueue.h"

#include <QtCore/QPromise>
#include <QtCore/QRegularExpression>
#include <QtCore/QTimer>

#include <set>

#include <QtCore/QLoggingCategory>

Q_LOGGING_CATEGORY(lcQueue, "dengine.dqueue.queue", QtWarningMsg)

using Status = DEngineInterface::Status;

namespace {

const QByteArray ClaimSuffix = "/c";

// Runs `f` with the call's result on the owner thread, unless the queue is gone by then.
template <typename F> void onResult(QFuture<DEngineResult> future, const std::shared_ptr<bool> &alive, F f)
{
    std::weak_ptr<bool> weak = alive;
    // No context: the engine finishes its futures on its owner thread, so the continuation runs there.
    future.then([weak, f = std::move(f)](const DEngineResult &r) {
        if (weak.lock())
            f(r);
    });
}

template <typename T> QFuture<T> finished(T value)
{
    QPromise<T> p;
    p.start();
    p.addResult(std::move(value));
    p.finish();
    return p.future();
}

DEngineResult failure(Status status, const QString &why)
{
    DEngineResult r;
    r.status = status;
    r.message = why;
    return r;
}

} // namespace

struct DQueue::Dequeue {
    std::shared_ptr<QPromise<DQueueMessage>> promise = std::make_shared<QPromise<DQueueMessage>>();
    QDeadlineTimer deadline;
    bool peek = false;
    std::vector<std::pair<QByteArray, QByteArray>> candidates; // message key, body
    std::size_t next = 0;
    int attempts = 0;
    int scans = 0;
    std::unique_ptr<DEngineWatcher> watcher;
    std::unique_ptr<QTimer> timer;
    bool done = false;
    void finish(DQueueMessage m)
    {
        if (done)
            return;
        done = true;
        if (watcher) {
            watcher->cancel();
            watcher.release()->deleteLater(); // possibly inside its own signal
        }
        if (timer) {
            timer->stop();
            timer.release()->deleteLater();
        }
        promise->addResult(std::move(m));
        promise->finish();
    }
    void fail(Status status, const QString &why)
    {
        DQueueMessage m;
        m.status = status;
        m.error = why;
        m.attempts = attempts;
        finish(std::move(m));
    }
};

DQueue::DQueue(DEngineInterface *engine, QString queue, DQueueOptions options, QObject *parent)
    : QObject(parent), m_engine(engine), m_queue(std::move(queue)), m_opts(std::move(options))
{
    m_prefix = "dq/" + m_queue.toUtf8() + '/';
    m_messages = m_prefix + "m/";
    m_clock.start();
}

DQueue::~DQueue() { *m_alive = false; }

bool DQueue::validName(const QString &queue)
{
    static const QRegularExpression re(QStringLiteral("^[A-Za-z0-9._-]{1,128}$"));
    return re.match(queue).hasMatch();
}

// ---- leases ---------------------------------------------------------------------------------------

void DQueue::withClaimLease(std::function<void(quint64, const QString &)> then)
{
    if (m_claimLease != 0 && m_clock.elapsed() - m_claimLeaseAt < m_opts.leaseReuseMs) {
        then(m_claimLease, {});
        return;
    }
    m_claimLeaseWaiters.push_back(std::move(then));
    if (m_claimLeaseWaiters.size() > 1)
        return; // a grant is on its way
    const qint64 at = m_clock.elapsed();
    // TTL: the visibility timeout from the last claim made on it, at the latest.
    onResult(m_engine->grantLease(m_opts.visibilityTimeoutMs + m_opts.leaseReuseMs), m_alive, [this, at](const DEngineResult &r) {
        if (r.ok()) {
            m_claimLease = r.lease;
            m_claimLeaseAt = at;
        }
        auto waiters = std::move(m_claimLeaseWaiters);
        m_claimLeaseWaiters.clear();
        for (auto &w : waiters)
            w(r.ok() ? r.lease : 0, r.ok() ? QString() : r.message);
    });
}

void DQueue::withDedupLease(std::function<void(quint64, const QString &)> then)
{
    if (m_dedupLease != 0 && m_clock.elapsed() - m_dedupLeaseAt < m_opts.dedupWindowMs / 2) {
        then(m_dedupLease, {});
        return;
    }
    m_dedupLeaseWaiters.push_back(std::move(then));
    if (m_dedupLeaseWaiters.size() > 1)
        return;
    const qint64 at = m_clock.elapsed();
    onResult(m_engine->grantLease(m_opts.dedupWindowMs), m_alive, [this, at](const DEngineResult &r) {
        if (r.ok()) {
            m_dedupLease = r.lease;
            m_dedupLeaseAt = at;
        }
        auto waiters = std::move(m_dedupLeaseWaiters);
        m_dedupLeaseWaiters.clear();
        for (auto &w : waiters)
            w(r.ok() ? r.lease : 0, r.ok() ? QString() : r.message);
    });
}

// ---- enqueue ----------------------------------------------------------------------------------------

QFuture<DEngineResult> DQueue::enqueue(const QByteArray &body, const QByteArray &idempotencyKey)
{
    auto promise = std::make_shared<QPromise<DEngineResult>>();
    promise->start();
    QFuture<DEngineResult> future = promise->future();
    enqueueWith(promise, body, idempotencyKey, 0);
    return future;
}

void DQueue::enqueueWith(std::shared_ptr<QPromise<DEngineResult>> promise, QByteArray body, QByteArray key, int tries)
{
    const auto done = [promise](DEngineResult r) {
        promise->addResult(std::move(r));
        promise->finish();
    };
    const auto named = [](DEngineResult r) {
        // The message's id: where its sequential put landed.
        if (r.ok() && r.succeeded)
            r.value = DEngineOperation::sequentialKey({}, r.revision, 0);
        return r;
    };
    if (key.isEmpty()) {
        onResult(m_engine->txn({}, {DEngineOperation::putSequential(m_messages, body)}), m_alive, [done, named](const DEngineResult &r) { done(named(r)); });
        return;
    }
    withDedupLease([this, promise, body, key, tries, done, named](quint64 lease, const QString &error) {
        if (lease == 0) {
            done(failure(Status::NoQuorum, QStringLiteral("enqueue: no dedup lease: %1").arg(error)));
            return;
        }
        const QByteArray idem = m_prefix + "idem/" + key;
        onResult(m_engine->txn({DEngineCompare::absent(idem)}, {DEngineOperation::put(idem, {}, lease), DEngineOperation::putSequential(m_messages, body)}), m_alive,
                 [this, promise, body, key, tries, done, named, lease](const DEngineResult &r) {
                     if (r.status == Status::NotFound && tries < 3) {
                         // The dedup lease ran out (a long failover): another, and again.
                         if (m_dedupLease == lease)
                             m_dedupLease = 0;
                         enqueueWith(promise, body, key, tries + 1);
                         return;
                     }
                     done(named(r));
                 });
    });
}

// ---- dequeue ----------------------------------------------------------------------------------------

QFuture<DQueueMessage> DQueue::dequeue(int waitMs)
{
    auto op = std::make_shared<Dequeue>();
    op->promise->start();
    op->deadline = QDeadlineTimer(std::max(0, waitMs));
    QFuture<DQueueMessage> future = op->promise->future();
    scanFor(op, m_messages);
    return future;
}

QFuture<DQueueMessage> DQueue::peek()
{
    auto op = std::make_shared<Dequeue>();
    op->promise->start();
    op->peek = true;
    QFuture<DQueueMessage> future = op->promise->future();
    scanFor(op, m_messages);
    return future;
}

void DQueue::scanFor(std::shared_ptr<Dequeue> op, const QByteArray &from)
{
    if (op->done)
        return;
    ++op->scans;
    // Claims sort right after their message ("<seq>" < "<seq>/c"): one read shows both.
    onResult(m_engine->range(from, DEngineInterface::prefixEnd(m_messages), 2 * m_opts.scanLimit), m_alive, [this, op](const DEngineResult &r) {
        if (op->done)
            return;
        if (!r.ok()) {
            if (!op->deadline.hasExpired() && (r.status == Status::Timeout || r.status == Status::NoQuorum)) {
                QTimer::singleShot(50, this, [this, op] { scanFor(op, m_messages); });
                return;
            }
            op->fail(r.status, r.message);
            return;
        }
        std::set<QByteArray> claimed;
        const QByteArray me = m_opts.consumerName.toUtf8();
        for (const DEngineKeyValue &kv : r.items) {
            if (!kv.key.endsWith(ClaimSuffix))
                continue;
            const QByteArray message = kv.key.chopped(ClaimSuffix.size());
            claimed.insert(message);
            if (!op->peek && kv.value == me && !m_held.count(message)) {
                // Claimed under this consumer's name, but never delivered here: a claim whose
                // answer was lost in a failover. It is ours: deliver it now (it is the oldest
                // such), rather than leave it invisible until its lease runs out.
                for (const DEngineKeyValue &m : r.items) {
                    if (m.key != message)
                        continue;
                    DQueueMessage out;
                    out.id = message.mid(m_messages.size());
                    out.body = m.value;
                    out.claimRevision = kv.modRevision;
                    out.lease = 0;
                    out.attempts = op->attempts;
                    m_held.insert(message);
                    op->finish(std::move(out));
                    return;
                }
            }
        }
        op->candidates.clear();
        op->next = 0;
        for (const DEngineKeyValue &kv : r.items)
            if (!kv.key.endsWith(ClaimSuffix) && !claimed.count(kv.key))
                op->candidates.emplace_back(kv.key, kv.value);
        if (op->candidates.empty()) {
            if (!r.nextKey.isEmpty()) {
                scanFor(op, r.nextKey); // the first page was all claimed: read on
                return;
            }
            if (op->peek || op->deadline.hasExpired()) {
                op->fail(Status::NotFound, QStringLiteral("the queue has no visible message"));
                return;
            }
            waitForChange(op, r.revision);
            return;
        }
        if (op->peek) {
            DQueueMessage m;
            m.id = op->candidates.front().first.mid(m_messages.size());
            m.body = op->candidates.front().second;
            op->finish(std::move(m));
            return;
        }
        tryClaim(op);
    });
}

void DQueue::tryClaim(std::shared_ptr<Dequeue> op)
{
    if (op->done)
        return;
    if (op->next >= op->candidates.size()) {
        scanFor(op, m_messages); // every candidate was taken by others: read again
        return;
    }
    withClaimLease([this, op](quint64 lease, const QString &error) {
        if (op->done)
            return;
        if (lease == 0) {
            op->fail(Status::NoQuorum, QStringLiteral("dequeue: no claim lease: %1").arg(error));
            return;
        }
        const auto &[key, body] = op->candidates[op->next];
        const QByteArray claim = key + ClaimSuffix;
        ++op->attempts;
        onResult(m_engine->txn({DEngineCompare::exists(key), DEngineCompare::absent(claim)},
                               {DEngineOperation::put(claim, m_opts.consumerName.toUtf8(), lease)}),
                 m_alive, [this, op, lease](const DEngineResult &r) {
                     if (op->done)
                         return;
                     if (r.ok() && r.succeeded) {
                         const auto &taken = op->candidates[op->next];
                         DQueueMessage m;
                         m.id = taken.first.mid(m_messages.size());
                         m.body = taken.second;
                         m.claimRevision = r.revision;
                         m.lease = lease;
                         m.attempts = op->attempts;
                         m_held.insert(taken.first);
                         op->finish(std::move(m));
                         return;
                     }
                     if (r.ok()) {
                         ++op->next; // another consumer took it (or it was acked): the next one
                         tryClaim(op);
                         return;
                     }
                     if (r.status == Status::NotFound) {
                         // The claim lease is gone (it ran out while unused): a fresh one.
                         if (m_claimLease == lease)
                             m_claimLease = 0;
                         tryClaim(op);
                         return;
                     }
                     if (!op->deadline.hasExpired() && (r.status == Status::Timeout || r.status == Status::NoQuorum)) {
                         // A failover: the claim may or may not have been made. If it was, the
                         // message comes back when the lease runs out (at least once, never lost).
                         QTimer::singleShot(50, this, [this, op] { scanFor(op, m_messages); });
                         return;
                     }
                     op->fail(r.status, r.message);
                 });
    });
}

void DQueue::waitForChange(std::shared_ptr<Dequeue> op, quint64 revision)
{
    // Every change after the scan: a new message, or a claim gone (a message visible again).
    qCDebug(lcQueue) << "queue" << m_queue << "empty at revision" << revision << ": waiting";
    op->watcher.reset(m_engine->watchPrefix(m_messages, revision + 1));
    DEngineWatcher *w = op->watcher.get();
    // The watcher and the timer hold the operation while it waits (nothing else does); finish()
    // deletes both, which lets it go.
    const std::shared_ptr<Dequeue> &held = op;
    connect(w, &DEngineWatcher::eventsReceived, this, [this, held](const QList<DEngineWatchEvent> &events) {
        const std::shared_ptr<Dequeue> waiting = held;
        if (waiting->done)
            return;
        qCDebug(lcQueue) << "queue" << m_queue << events.size() << "change(s)";
        for (const DEngineWatchEvent &e : events) {
            const bool claim = e.key.endsWith(ClaimSuffix);
            if ((e.type == DEngineWatchEvent::Type::Put && !claim) || (e.type == DEngineWatchEvent::Type::Delete && claim)) {
                waiting->watcher->cancel();
                waiting->watcher.release()->deleteLater();
                if (waiting->timer)
                    waiting->timer->stop();
                scanFor(waiting, m_messages);
                return;
            }
        }
    });
    connect(w, &DEngineWatcher::finished, this, [this, held](Status, const QString &) {
        const std::shared_ptr<Dequeue> waiting = held;
        if (waiting->done)
            return;
        // Compacted, or its engine or member went away: read again (a client resumes elsewhere).
        waiting->watcher.release()->deleteLater(); // (not inside the watcher's own signal)
        QTimer::singleShot(50, this, [this, waiting] { scanFor(waiting, m_messages); });
    });
    if (!op->timer) {
        op->timer = std::make_unique<QTimer>();
        op->timer->setSingleShot(true);
        connect(op->timer.get(), &QTimer::timeout, this, [held] { held->fail(Status::NotFound, QStringLiteral("no message within the wait")); });
    }
    op->timer->start(static_cast<int>(std::max<qint64>(0, op->deadline.remainingTime())));
}

// ---- ack, nack, stats ---------------------------------------------------------------------------

QFuture<DEngineResult> DQueue::ack(const DQueueMessage &message)
{
    if (message.id.isEmpty() || message.claimRevision == 0)
        return finished(failure(Status::InvalidArgument, QStringLiteral("ack: not a dequeued message")));
    auto promise = std::make_shared<QPromise<DEngineResult>>();
    promise->start();
    const QByteArray key = m_messages + message.id;
    const QByteArray claim = key + ClaimSuffix;
    onResult(m_engine->txn({DEngineCompare::modRevisionIs(claim, message.claimRevision)}, {DEngineOperation::remove(key), DEngineOperation::remove(claim)}),
             m_alive, [this, promise, key](const DEngineResult &r) {
                 if (r.ok())
                     m_held.erase(key);
                 if (!r.ok() || r.succeeded) {
                     promise->addResult(r);
                     promise->finish();
                     return;
                 }
                 // Not our claim any more. Gone altogether: acked already (an earlier try of this
                 // ack, or the consumer it went to after ours ran out); otherwise it was lost.
                 onResult(m_engine->get(key), m_alive, [promise](const DEngineResult &g) {
                     DEngineResult out = g;
                     if (g.status == Status::NotFound) {
                         out.status = Status::Ok;
                         out.message = QStringLiteral("acked already");
                     } else if (g.ok()) {
                         out.status = Status::NotFound;
                         out.message = QStringLiteral("the claim was lost: the visibility timeout passed and the message is visible again");
                     }
                     promise->addResult(out);
                     promise->finish();
                 });
             });
    return promise->future();
}

QFuture<DEngineResult> DQueue::nack(const DQueueMessage &message)
{
    if (message.id.isEmpty() || message.claimRevision == 0)
        return finished(failure(Status::InvalidArgument, QStringLiteral("nack: not a dequeued message")));
    auto promise = std::make_shared<QPromise<DEngineResult>>();
    promise->start();
    const QByteArray key = m_messages + message.id;
    const QByteArray claim = key + ClaimSuffix;
    onResult(m_engine->txn({DEngineCompare::modRevisionIs(claim, message.claimRevision)}, {DEngineOperation::remove(claim)}), m_alive,
             [this, promise, key](DEngineResult r) {
                 if (r.ok())
                     m_held.erase(key);
                 if (r.ok() && !r.succeeded) {
                     r.status = Status::NotFound;
                     r.message = QStringLiteral("the claim was lost already");
                 }
                 promise->addResult(r);
                 promise->finish();
             });
    return promise->future();
}

QFuture<DQueueStats> DQueue::stats()
{
    auto promise = std::make_shared<QPromise<DQueueStats>>();
    promise->start();
    QFuture<DQueueStats> future = promise->future();
    statsPage(promise, std::make_shared<DQueueStats>(), m_messages);
    return future;
}

void DQueue::statsPage(std::shared_ptr<QPromise<DQueueStats>> promise, std::shared_ptr<DQueueStats> acc, const QByteArray &from)
{
    onResult(m_engine->range(from, DEngineInterface::prefixEnd(m_messages)), m_alive, [this, promise, acc](const DEngineResult &r) {
        if (!r.ok()) {
            acc->status = r.status;
            acc->error = r.message;
        } else {
            for (const DEngineKeyValue &kv : r.items) {
                if (kv.key.endsWith(ClaimSuffix)) {
                    ++acc->inFlight;
                    --acc->ready;
                } else {
                    ++acc->ready;
                }
            }
            if (!r.nextKey.isEmpty()) {
                statsPage(promise, acc, r.nextKey);
                return;
            }
        }
        promise->addResult(*acc);
        promise->finish();
    });
}
