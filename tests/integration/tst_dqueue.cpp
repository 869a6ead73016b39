// SPDX-License-Identifier: Apache-2.0
// dqueue (examples/dqueue) on three dengined processes, with producers and consumers as processes
// of the dqueue tool: kill -9 of the leader (and its restart) and of a consumer (and a new one)
// while messages flow. The test follows the queue's keys with a watch of its own from before the
// first message (resumed across the failover like any client's), and checks, from that history
// and the tools' output lines: every acknowledged enqueue is delivered and acked at least once;
// no message is delivered after its ack; none is lost; messages claimed once were claimed in
// queue order (FIFO); each body was enqueued once (idempotent retries add nothing).
// Deterministic waits only (QTRY_* with generous limits); a failure prints the tools' output.
#include "../auto/dengine/enginetestkit.h"
#include "clientconfig.h"
#include "denginedcluster.h"
#include "dqueue.h"

#include <dengine/dengineclient.h>

#include <QtTest/QtTest>

#include <map>
#include <set>

#ifndef DQUEUE_PATH
#error "DQUEUE_PATH must name the dqueue tool"
#endif

using namespace dengine::test;

namespace {

// A dqueue tool process and the lines it printed.
struct Tool {
    std::unique_ptr<QProcess> process = std::make_unique<QProcess>();
    QList<QByteArray> lines;
    QByteArray partial;
    void start(const QStringList &args, const QStringList &endpoints)
    {
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("DENGINE_ENDPOINTS"), endpoints.join(QLatin1Char(',')));
        env.insert(QStringLiteral("QT_LOGGING_RULES"), QStringLiteral("dengine.*.info=false"));
        process->setProcessEnvironment(env);
        process->setProcessChannelMode(QProcess::ForwardedErrorChannel);
        QObject::connect(process.get(), &QProcess::readyReadStandardOutput, process.get(), [this] { read(); });
        process->start(QStringLiteral(DQUEUE_PATH), args);
    }
    void read()
    {
        partial += process->readAllStandardOutput();
        qsizetype nl;
        while ((nl = partial.indexOf('\n')) >= 0) {
            lines << partial.left(nl);
            partial.remove(0, nl + 1);
        }
    }
    int count(const QByteArray &kind) const
    {
        return int(std::count_if(lines.begin(), lines.end(), [&](const QByteArray &l) { return l.startsWith(kind + ' '); }));
    }
    bool running() const { return process->state() != QProcess::NotRunning; }
    void kill()
    {
        ::kill(static_cast<pid_t>(process->processId()), SIGKILL);
        process->waitForFinished(10000);
        read();
    }
    void terminate()
    {
        if (!running())
            return;
        process->terminate();
        if (!process->waitForFinished(20000))
            process->kill();
        read();
    }
};

// What the queue's keys went through, from the test's own watch.
struct History {
    std::map<QByteArray, QByteArray> bodyOf;             // message key -> body
    std::map<QByteArray, QList<quint64>> claims;         // message key -> claim revisions
    std::map<QByteArray, quint64> deleted;               // message key -> revision of its delete (ack)
    bool ordered = true;
    quint64 last = 0;
    void add(const QList<DEngineWatchEvent> &events, const QByteArray &prefix)
    {
        for (const DEngineWatchEvent &e : events) {
            if (e.revision < last)
                ordered = false;
            last = e.revision;
            const QByteArray rest = e.key.mid(prefix.size());
            if (rest.endsWith("/c")) {
                if (e.type == DEngineWatchEvent::Type::Put)
                    claims[e.key.chopped(2)] << e.revision;
            } else if (e.type == DEngineWatchEvent::Type::Put) {
                bodyOf[e.key] = e.value;
            } else {
                deleted[e.key] = e.revision;
            }
        }
    }
};

} // namespace

class TestDQueue : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<DEnginedCluster> m_cluster;

    NodeId leader()
    {
        DEngineClient probe(insecureClientConfig(m_cluster->clientAddresses()));
        probe.start();
        return probe.waitForReady(Long) ? probe.currentLeader() : 0;
    }

private Q_SLOTS:
    void initTestCase()
    {
        m_cluster = std::make_unique<DEnginedCluster>(3);
        QVERIFY(m_cluster->isValid());
        QVERIFY(m_cluster->startAll());
        QTRY_VERIFY_WITH_TIMEOUT(leader() != 0, Long);
    }
    void cleanupTestCase() { m_cluster.reset(); }

    // The library on its own, through a client: FIFO, visibility timeout, nack, idempotency across
    // a failover, a blocking dequeue woken by an enqueue.
    void library_semantics_andIdempotencyAcrossFailover()
    {
        DEngineClient client(insecureClientConfig(m_cluster->clientAddresses()));
        QVERIFY(client.start());
        QVERIFY(client.waitForReady(Long));
        DQueueOptions o;
        o.consumerName = QStringLiteral("lib-test");
        o.visibilityTimeoutMs = 1500;
        o.leaseReuseMs = 200;
        DQueue q(&client, QStringLiteral("lib"), o);
        for (int i = 0; i < 3; ++i) {
            const DEngineResult r = await(q.enqueue("m" + QByteArray::number(i), "k" + QByteArray::number(i)));
            QVERIFY2(r.ok() && r.succeeded, qPrintable(r.message));
        }
        // The same key again: nothing added.
        DEngineResult r = await(q.enqueue("m0-again", "k0"));
        QVERIFY(r.ok());
        QVERIFY(!r.succeeded);
        QFuture<DQueueMessage> fa = q.dequeue(0);
        QTRY_VERIFY_WITH_TIMEOUT(fa.isFinished(), Long);
        const DQueueMessage a = fa.result();
        QVERIFY2(a.ok(), qPrintable(a.error));
        QCOMPARE(a.body, QByteArray("m0"));
        QFuture<DQueueMessage> fb = q.dequeue(0);
        QTRY_VERIFY_WITH_TIMEOUT(fb.isFinished(), Long);
        const DQueueMessage b = fb.result();
        QCOMPARE(b.body, QByteArray("m1"));
        // nack: visible again at once, at its place (before m2).
        QVERIFY(await(q.nack(b)).ok());
        QFuture<DQueueMessage> fb2 = q.dequeue(0);
        QTRY_VERIFY_WITH_TIMEOUT(fb2.isFinished(), Long);
        const DQueueMessage b2 = fb2.result();
        QCOMPARE(b2.body, QByteArray("m1"));
        QCOMPARE(await(q.ack(b)).status, Status::NotFound); // the old claim is gone
        QVERIFY(await(q.ack(b2)).ok());
        QVERIFY(await(q.ack(b2)).ok()); // again (a retry after a Timeout): acked already
        QFuture<DQueueMessage> fc = q.dequeue(0);
        QTRY_VERIFY_WITH_TIMEOUT(fc.isFinished(), Long);
        const DQueueMessage c = fc.result();
        QCOMPARE(c.body, QByteArray("m2"));
        // Nothing visible now. Not acked within the visibility timeout, the claims' lease runs out
        // (a replicated expiry) and the messages come back, the oldest first; the dequeue waiting
        // for one wakes on the watch.
        QFuture<DQueueMessage> again = q.dequeue(20000);
        QTRY_VERIFY_WITH_TIMEOUT(again.isFinished(), Long);
        QVERIFY2(again.result().ok(), qPrintable(again.result().error));
        QCOMPARE(again.result().body, QByteArray("m0"));
        QCOMPARE(await(q.ack(a)).status, Status::NotFound); // too late
        QVERIFY(await(q.ack(again.result())).ok());
        QFuture<DQueueMessage> fc2 = q.dequeue(20000);
        QTRY_VERIFY_WITH_TIMEOUT(fc2.isFinished(), Long);
        QCOMPARE(fc2.result().body, QByteArray("m2"));
        QCOMPARE(await(q.ack(c)).status, Status::NotFound);
        QVERIFY(await(q.ack(fc2.result())).ok());
        // Empty: a blocking dequeue waits on the watch and wakes for the next enqueue.
        QFuture<DQueueMessage> waiting = q.dequeue(20000);
        QTest::qWait(1); // let it scan (an event-loop turn; not a timing)
        QVERIFY(!waiting.isFinished());
        QVERIFY(await(q.enqueue("late", "k-late")).ok());
        QTRY_VERIFY_WITH_TIMEOUT(waiting.isFinished(), Long);
        QCOMPARE(waiting.result().body, QByteArray("late"));
        QVERIFY(await(q.ack(waiting.result())).ok());
        QFuture<DQueueStats> st = q.stats();
        QTRY_VERIFY_WITH_TIMEOUT(st.isFinished(), Long);
        QCOMPARE(st.result().ready, qint64(0));
        QCOMPARE(st.result().inFlight, qint64(0));

        // Idempotency across a failover: enqueued through the leader, the leader killed, the same
        // key again through the next one: not added twice.
        QVERIFY(await(q.enqueue("failover", "k-failover")).succeeded);
        const NodeId old = leader();
        QVERIFY(old != 0);
        m_cluster->signal(old, SIGKILL);
        QTRY_VERIFY_WITH_TIMEOUT(!m_cluster->running(old), Long);
        QTRY_VERIFY_WITH_TIMEOUT((r = await(q.enqueue("failover-retry", "k-failover"))).ok(), Long);
        QVERIFY(!r.succeeded);
        QVERIFY(m_cluster->start(old));
        QFuture<DQueueMessage> fd = q.dequeue(0);
        QTRY_VERIFY_WITH_TIMEOUT(fd.isFinished(), Long);
        QCOMPARE(fd.result().body, QByteArray("failover"));
        QVERIFY(await(q.ack(fd.result())).ok());
        QFuture<DQueueMessage> fe = q.dequeue(0);
        QTRY_VERIFY_WITH_TIMEOUT(fe.isFinished(), Long);
        QCOMPARE(fe.result().status, Status::NotFound);
    }

    // The same queue code on embedded engines: a producer on one node, a consumer blocked on
    // another (woken by the watch), and a follower's view of the queue.
    void embedded_sameCodeOnDEngine()
    {
        Cluster cluster(3);
        cluster.startAll();
        QTRY_VERIFY_WITH_TIMEOUT(cluster.allReady() && cluster.agreedLeader() != 0, Long);
        const NodeId leader = cluster.agreedLeader();
        const NodeId follower = leader == 1 ? 2 : 1;
        DQueueOptions o;
        o.consumerName = QStringLiteral("embedded-consumer");
        DQueue producer(cluster.node(leader), QStringLiteral("emb"));
        DQueue consumer(cluster.node(follower), QStringLiteral("emb"), o);
        QFuture<DQueueMessage> waiting = consumer.dequeue(20000);
        QTest::qWait(1);
        QVERIFY(!waiting.isFinished());
        for (int i = 0; i < 5; ++i)
            QVERIFY(await(producer.enqueue("e" + QByteArray::number(i))).succeeded);
        QTRY_VERIFY_WITH_TIMEOUT(waiting.isFinished(), Long);
        QCOMPARE(waiting.result().body, QByteArray("e0"));
        QVERIFY(await(consumer.ack(waiting.result())).ok());
        for (int i = 1; i < 5; ++i) {
            QFuture<DQueueMessage> m = consumer.dequeue(0);
            QTRY_VERIFY_WITH_TIMEOUT(m.isFinished(), Long);
            QCOMPARE(m.result().body, "e" + QByteArray::number(i));
            QVERIFY(await(consumer.ack(m.result())).ok());
        }
        QFuture<DQueueMessage> peek = producer.peek();
        QTRY_VERIFY_WITH_TIMEOUT(peek.isFinished(), Long);
        QCOMPARE(peek.result().status, Status::NotFound);
    }

    // Processes: 3 producers, 3 consumers; the leader killed and restarted, a consumer killed and
    // replaced, mid-run.
    void processes_killLeaderAndConsumer_everyMessageOnce_fifo()
    {
        const int producers = 3, perProducer = 200;
        const QByteArray prefix = "dq/jobs/m/";
        // The test's own record of the queue, from before the first message.
        DEngineClient observer(insecureClientConfig(m_cluster->clientAddresses()));
        QVERIFY(observer.start());
        QVERIFY(observer.waitForReady(Long));
        const DEngineResult before = await(observer.get("dq/none"));
        History history;
        std::unique_ptr<DEngineWatcher> watch(observer.watchPrefix(prefix, before.revision + 1));
        connect(watch.get(), &DEngineWatcher::eventsReceived, this, [&](const QList<DEngineWatchEvent> &e) { history.add(e, prefix); });
        bool watchEnded = false;
        connect(watch.get(), &DEngineWatcher::finished, this, [&] { watchEnded = true; });

        const QStringList endpoints = m_cluster->clientAddresses();
        std::vector<std::unique_ptr<Tool>> tools;
        const auto spawn = [&](const QStringList &args) {
            tools.push_back(std::make_unique<Tool>());
            tools.back()->start(args, endpoints);
            return tools.back().get();
        };
        std::vector<Tool *> prod, cons;
        for (int i = 0; i < producers; ++i)
            prod.push_back(spawn({QStringLiteral("produce"), QStringLiteral("jobs"), QStringLiteral("--count"), QString::number(perProducer),
                                  QStringLiteral("--prefix"), QStringLiteral("p%1").arg(i), QStringLiteral("--idempotent")}));
        // Each message takes a consumer 10 ms before its ack: a consumer killed at random holds one.
        const QStringList consumeArgs{QStringLiteral("consume"), QStringLiteral("jobs"), QStringLiteral("--visibility"), QStringLiteral("3000"),
                                      QStringLiteral("--process-ms"), QStringLiteral("10")};
        for (int i = 0; i < 3; ++i)
            cons.push_back(spawn(consumeArgs));
        const auto total = [&](const QByteArray &kind) {
            int n = 0;
            for (const auto &t : tools)
                n += t->count(kind);
            return n;
        };
        const auto dump = [&] {
            QByteArray all;
            for (const auto &t : tools)
                all += t->lines.join('\n') + "\n----\n";
            return all;
        };
        // Mid-run: the leader goes (kill -9) while messages flow, then comes back.
        QTRY_VERIFY_WITH_TIMEOUT(total("ACK") >= 60, 60000);
        const NodeId old = leader();
        QVERIFY(old != 0);
        m_cluster->signal(old, SIGKILL);
        QTRY_VERIFY_WITH_TIMEOUT(!m_cluster->running(old), Long);
        const int acksAtKill = total("ACK");
        QTRY_VERIFY_WITH_TIMEOUT(total("ACK") >= acksAtKill + 30, 60000); // the flow goes on without it
        QVERIFY(m_cluster->start(old));
        // A consumer dies holding what it took (kill -9); a new one takes its place.
        Tool *victim = cons.front();
        QTRY_VERIFY_WITH_TIMEOUT((victim->read(), !victim->lines.isEmpty() && victim->lines.last().startsWith("GOT ")), Long);
        victim->kill();
        // What it held when it died (its last line, if that is still a GOT: the kill came before
        // its ack was answered) must come back after the visibility timeout, to another consumer.
        const QByteArray held = victim->lines.last().startsWith("GOT ") ? victim->lines.last().split(' ').at(1) : QByteArray();
        cons.push_back(spawn(consumeArgs));
        // Every producer finishes; every acknowledged enqueue gets acked.
        QTRY_VERIFY_WITH_TIMEOUT(std::none_of(prod.begin(), prod.end(), [](Tool *t) { return t->running(); }), 120000);
        for (Tool *t : prod)
            QCOMPARE(t->process->exitCode(), 0);
        std::set<QByteArray> enqueued, acked;
        for (Tool *t : prod)
            for (const QByteArray &l : t->lines)
                if (l.startsWith("ENQ ") || l.startsWith("DUP "))
                    enqueued.insert(l.split(' ').at(1));
        QCOMPARE(int(enqueued.size()), producers * perProducer);
        // Acked: an ACK line, or (a consumer killed between its ack's commit and its line) the
        // message's delete in the history: only an ack deletes a message.
        const auto collectAcks = [&] {
            acked.clear();
            for (Tool *t : cons)
                for (const QByteArray &l : t->lines)
                    if (l.startsWith("ACK "))
                        acked.insert(l.split(' ').at(1));
            for (const auto &[key, revision] : history.deleted)
                if (history.bodyOf.count(key))
                    acked.insert(history.bodyOf.at(key));
            return acked.size() == enqueued.size();
        };
        QTRY_VERIFY2_WITH_TIMEOUT(collectAcks(), dump().right(4000).constData(), 120000);
        QCOMPARE(acked, enqueued); // none lost, none unknown
        for (Tool *t : cons)
            t->terminate();

        // The test's history caught up to the end: every message key deleted (acked).
        QTRY_VERIFY_WITH_TIMEOUT(history.deleted.size() == history.bodyOf.size() && history.bodyOf.size() >= enqueued.size(), 60000);
        QVERIFY(!watchEnded);
        QVERIFY(history.ordered);
        // Each body in exactly one message key: idempotent retries added nothing.
        std::map<QByteArray, int> copies;
        for (const auto &[key, body] : history.bodyOf)
            ++copies[body];
        for (const auto &[body, n] : copies)
            QVERIFY2(n == 1, qPrintable(QStringLiteral("%1 enqueued %2 times").arg(QString::fromUtf8(body)).arg(n)));
        // No claim after a message's ack; no delivery (GOT) after it either.
        for (const auto &[key, revisions] : history.claims)
            for (quint64 rev : revisions)
                QVERIFY(rev < history.deleted.at(key));
        for (const auto &t : tools)
            for (const QByteArray &l : t->lines) {
                if (!l.startsWith("GOT "))
                    continue;
                const QList<QByteArray> f = l.split(' ');
                QVERIFY2(f.at(3).toULongLong() < history.deleted.at(prefix + f.at(2)), l.constData());
            }
        // FIFO: messages claimed once were claimed in queue order.
        std::vector<std::pair<quint64, QByteArray>> once; // claim revision, message key
        for (const auto &[key, revisions] : history.claims)
            if (revisions.size() == 1)
                once.emplace_back(revisions.front(), key);
        std::sort(once.begin(), once.end());
        for (std::size_t i = 1; i < once.size(); ++i)
            QVERIFY2(once[i - 1].second < once[i].second,
                     qPrintable(QStringLiteral("%1 claimed at %2 before %3 at %4")
                                    .arg(QString::fromUtf8(once[i].second))
                                    .arg(once[i].first)
                                    .arg(QString::fromUtf8(once[i - 1].second))
                                    .arg(once[i - 1].first)));
        QVERIFY(once.size() > enqueued.size() / 2); // most went once: the check saw real traffic
        if (!held.isEmpty()) {
            // Claimed again after the visibility timeout and acked by another consumer, unless the
            // dead one's own ack had gone through.
            QByteArray key;
            for (const auto &[k, body] : history.bodyOf)
                if (body == held)
                    key = k;
            int ackedElsewhere = 0;
            for (Tool *t : cons)
                if (t != victim)
                    for (const QByteArray &l : t->lines)
                        ackedElsewhere += l.startsWith("ACK " + held + ' ') ? 1 : 0;
            QVERIFY2(history.claims[key].size() == 1 || ackedElsewhere >= 1, held.constData());
        }
        qInfo("%d messages, %d acked, %d delivered more than once (the killed consumer's, the failover's)", int(enqueued.size()),
              total("ACK"), int(history.claims.size() - once.size()));
    }
};

QTEST_GUILESS_MAIN(TestDQueue)
#include "tst_dqueue.moc"
