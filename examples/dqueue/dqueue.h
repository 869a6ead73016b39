// SPDX-License-Identifier: Apache-2.0
#pragma once

// dqueue: a replicated work queue on DEngine's key-value API, for an embedded DEngine or a
// DEngineClient of a standalone cluster alike (it is written against DEngineInterface only).
//
// Why a library over the KV API, not a service inside dengined: the queue's state and every step
// of its protocol are ordinary replicated keys changed by transactions, so a producer or consumer
// needs nothing from the cluster beyond what any DEngine application has; the same code runs in
// the application's process (embedded) or talks to dengined (standalone), and the cluster stays a
// generic key-value store.
//
// Layout of queue Q (every key under "dq/Q/"):
//   m/<seq>         a message (its body), <seq> = the revision of its enqueue and its place in it
//                   (a sequential put): keys sort in commit order, so the queue is FIFO
//   m/<seq>/c       its claim while a consumer holds it: the consumer's name, attached to that
//                   consumer's claim lease; the message is invisible while the claim exists
//   idem/<key>      an idempotency key seen, attached to the producer's dedup lease
// Protocol:
//   enqueue   one txn: if idem/<key> is absent (no key: always), put it and put-sequential the body
//   dequeue   scan m/ for the first messages without a claim; in order, one txn per candidate: if
//             the message exists and has no claim, put its claim on the consumer's lease; the
//             first that succeeds is delivered (a consumer only moves past a message another one
//             just claimed: FIFO holds among messages not redelivered). Nothing to take: wait for
//             a watch event on m/ (no polling), up to the caller's wait.
//   ack       one txn: if the claim is still the one delivered (its revision), delete message and
//             claim. A claim whose lease ran out (the visibility timeout) is deleted by the
//             lease's replicated expiry: the message is visible again, at its place in the queue.
//   nack      one txn: if the claim is still ours, delete it (visible again at once).
//   A claim whose answer was lost (a Timeout in a failover) is found on the next scan by the
//   consumer's name in it, and delivered then: consumer names must be unique among live consumers.
// Visibility: a consumer claims on a lease of TTL visibility + reuse window, granted at most once
// per reuse window, so a claim stays invisible for at least the visibility timeout and at most
// that plus the window (one lease grant per window, not per message).
//
// Threads: the owner thread of the engine; results finish there. Never blocks.

#include <dengine/dengineinterface.h>

#include <QtCore/QElapsedTimer>
#include <QtCore/QFuture>
#include <QtCore/QObject>
#include <QtCore/QPromise>

#include <functional>
#include <set>
#include <memory>

struct DQueueOptions {
    QString consumerName = QStringLiteral("consumer"); // stored in claims (stats, debugging)
    qint64 visibilityTimeoutMs = 30000; // a dequeued message not acked by then is visible again
    qint64 leaseReuseMs = 1000;         // claims within this window share one lease
    qint64 dedupWindowMs = 600000;      // idempotency keys are remembered at least half of this, at most all
    int scanLimit = 64;                 // candidates read per scan
};

// A dequeued message, and what ack() and nack() need.
struct DQueueMessage {
    DEngineInterface::Status status = DEngineInterface::Status::Ok; // NotFound: nothing to take within the wait
    QString error;
    QByteArray id;   // the message key's <seq>: the revision of its enqueue and its place in it
    QByteArray body;
    quint64 claimRevision = 0; // the revision at which this consumer claimed it
    quint64 lease = 0;         // the claim's lease
    int attempts = 0;          // claim txns this dequeue took (contention with other consumers)
    bool ok() const { return status == DEngineInterface::Status::Ok; }
};

struct DQueueStats {
    DEngineInterface::Status status = DEngineInterface::Status::Ok;
    QString error;
    qint64 ready = 0;    // messages without a claim
    qint64 inFlight = 0; // claimed, not acked
};

class DQueue : public QObject {
    Q_OBJECT
public:
    // `engine` is started (or about to be); not owned. `queue`: letters, digits, '-', '_' and '.'.
    DQueue(DEngineInterface *engine, QString queue, DQueueOptions options = {}, QObject *parent = nullptr);
    ~DQueue() override;
    static bool validName(const QString &queue);

    // Appends a message. With an idempotency key, at most once per key within the dedup window:
    // the result's `succeeded` is false when the key was seen (nothing was added) and true when
    // this call added it. Ok means durable on a majority. On Timeout, call again with the same key.
    QFuture<DEngineResult> enqueue(const QByteArray &body, const QByteArray &idempotencyKey = {});
    // Takes the oldest visible message, waiting up to `waitMs` for one (0: do not wait).
    QFuture<DQueueMessage> dequeue(int waitMs = 0);
    // Done with it: deleted. Ok also when an earlier ack of it went through (a retry after a
    // Timeout); NotFound when the claim was lost (the visibility timeout passed: it is visible
    // again, or another consumer has it).
    QFuture<DEngineResult> ack(const DQueueMessage &message);
    // Gives it back: visible again at once, at its place. NotFound when the claim was lost.
    QFuture<DEngineResult> nack(const DQueueMessage &message);
    // The oldest visible message, not claimed (status NotFound when there is none).
    QFuture<DQueueMessage> peek();
    QFuture<DQueueStats> stats();

    QByteArray prefix() const { return m_prefix; }
    DEngineInterface *engine() const { return m_engine; }

private:
    struct Dequeue;
    void scanFor(std::shared_ptr<Dequeue> op, const QByteArray &from);
    void tryClaim(std::shared_ptr<Dequeue> op);
    void waitForChange(std::shared_ptr<Dequeue> op, quint64 revision);
    void withClaimLease(std::function<void(quint64 lease, const QString &error)> then);
    void withDedupLease(std::function<void(quint64 lease, const QString &error)> then);
    void statsPage(std::shared_ptr<QPromise<DQueueStats>> promise, std::shared_ptr<DQueueStats> acc, const QByteArray &from);
    void enqueueWith(std::shared_ptr<QPromise<DEngineResult>> promise, QByteArray body, QByteArray key, int tries);

    DEngineInterface *m_engine;
    QString m_queue;
    DQueueOptions m_opts;
    QByteArray m_prefix;
    QByteArray m_messages; // dq/Q/m/
    QElapsedTimer m_clock;
    quint64 m_claimLease = 0;
    qint64 m_claimLeaseAt = -1; // ms on m_clock
    quint64 m_dedupLease = 0;
    qint64 m_dedupLeaseAt = -1;
    std::vector<std::function<void(quint64, const QString &)>> m_claimLeaseWaiters;
    std::vector<std::function<void(quint64, const QString &)>> m_dedupLeaseWaiters;
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);
    std::set<QByteArray> m_held; // message keys delivered here and not acked or nacked yet
};
