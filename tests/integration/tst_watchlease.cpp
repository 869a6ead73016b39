// SPDX-License-Identifier: Apache-2.0
// Watches, leases and sequential puts, through the shared surface (DEngineInterface): one body run
// on an embedded DEngine cluster and on a DEngineClient of three dengined processes. Then what
// needs a failure: a client's watch resumed on another member after the leader is killed (nothing
// missed, nothing twice), an engine's watch across a leadership change, a lease that outlives a
// leader change with its TTL restarted and then expires through the log, a watch that falls
// behind a small history (Compacted, never a gap). Every wait is a QTRY_* with a generous limit.
#include "../auto/dengine/enginetestkit.h"
#include "clientconfig.h"
#include "denginedcluster.h"

#include <dengine/dengine.h>
#include <dengine/dengineclient.h>

#include <QtTest/QtTest>

using namespace dengine::test;

namespace {

// What a watcher delivered, and how it finished.
struct WatchLog {
    QList<DEngineWatchEvent> events;
    bool finished = false;
    Status status = Status::Ok;
    QString message;
    bool ordered = true; // revisions never went back
    void attach(DEngineWatcher *w)
    {
        QObject::connect(w, &DEngineWatcher::eventsReceived, w, [this](const QList<DEngineWatchEvent> &batch) {
            for (const DEngineWatchEvent &e : batch) {
                if (!events.isEmpty() && e.revision < events.last().revision)
                    ordered = false;
                events << e;
            }
        });
        QObject::connect(w, &DEngineWatcher::finished, w, [this](Status s, const QString &m) {
            finished = true;
            status = s;
            message = m;
        });
    }
    QList<QByteArray> keys(DEngineWatchEvent::Type type) const
    {
        QList<QByteArray> out;
        for (const DEngineWatchEvent &e : events)
            if (e.type == type)
                out << e.key;
        return out;
    }
};

} // namespace

class TestWatchLease : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<DEnginedCluster> m_cluster;

    // The behaviour both implementations share, on a started, ready subject.
    void featuresBody(DEngineInterface *subject)
    {
        QVERIFY(subject->waitForReady(Long));
        // A watch from now sees the puts, a delete and a txn's writes, in order, each with its
        // revision and the key's history; keys outside the prefix are not delivered.
        std::unique_ptr<DEngineWatcher> w(subject->watchPrefix("w/"));
        WatchLog log;
        log.attach(w.get());
        QTRY_VERIFY_WITH_TIMEOUT(w->revision() > 0, Long); // it heard where it starts
        const quint64 start = w->revision();
        DEngineResult r = await(subject->put("w/a", "1"));
        QVERIFY2(r.ok(), qPrintable(r.message));
        const quint64 first = r.revision;
        QVERIFY(first > start);
        QVERIFY(await(subject->put("other", "x")).ok());
        QVERIFY(await(subject->put("w/a", "2")).ok());
        r = await(subject->batch({DEngineOperation::put("w/b", "3"), DEngineOperation::remove("w/a")}));
        QVERIFY(r.ok());
        const quint64 batchRevision = r.revision;
        QVERIFY(await(subject->txn({DEngineCompare::exists("w/b")}, {DEngineOperation::put("w/c", "4")})).succeeded);
        QTRY_COMPARE_WITH_TIMEOUT(log.events.size(), 5, Long);
        QVERIFY(log.ordered);
        QCOMPARE(log.events[0], (DEngineWatchEvent{DEngineWatchEvent::Type::Put, "w/a", "1", first, first, 1, 0}));
        QCOMPARE(log.events[1].value, QByteArray("2"));
        QCOMPARE(log.events[1].version, quint64(2));
        QCOMPARE(log.events[2].key, QByteArray("w/b"));
        QCOMPARE(log.events[2].revision, batchRevision);
        QCOMPARE(log.events[3].type, DEngineWatchEvent::Type::Delete);
        QCOMPARE(log.events[3].key, QByteArray("w/a"));
        QCOMPARE(log.events[3].revision, batchRevision); // one revision, delivered together
        QCOMPARE(log.events[4].key, QByteArray("w/c"));
        QVERIFY(!log.keys(DEngineWatchEvent::Type::Put).contains("other"));
        QTRY_VERIFY_WITH_TIMEOUT(w->revision() >= log.events[4].revision, Long);

        // From a past revision: read, write, then watch from the read's revision + 1.
        r = await(subject->get("w/c"));
        QVERIFY(r.ok());
        const quint64 seen = r.revision;
        QVERIFY(await(subject->put("w/d", "5")).ok());
        QVERIFY(await(subject->remove("w/c")).ok());
        std::unique_ptr<DEngineWatcher> past(subject->watch("w/", "w/z", seen + 1));
        WatchLog pastLog;
        pastLog.attach(past.get());
        QTRY_COMPARE_WITH_TIMEOUT(pastLog.events.size(), 2, Long);
        QCOMPARE(pastLog.events[0].key, QByteArray("w/d"));
        QCOMPARE(pastLog.events[1].type, DEngineWatchEvent::Type::Delete);
        QVERIFY(!pastLog.finished);
        past->cancel();
        QVERIFY(!past->isActive());

        // Bad arguments finish the watch at once, with a status.
        std::unique_ptr<DEngineWatcher> bad(subject->watch("b", "a"));
        WatchLog badLog;
        badLog.attach(bad.get());
        QTRY_VERIFY_WITH_TIMEOUT(badLog.finished, Long);
        QCOMPARE(badLog.status, Status::InvalidArgument);

        // Sequential puts: keys in commit order, named by the revision.
        r = await(subject->batch({DEngineOperation::putSequential("q/", "m1"), DEngineOperation::putSequential("q/", "m2")}));
        QVERIFY2(r.ok(), qPrintable(r.message));
        const quint64 seq = r.revision;
        r = await(subject->put("q/", "x")); // a plain key inside the prefix sorts before them
        QVERIFY(r.ok());
        QVERIFY(await(subject->batch({DEngineOperation::putSequential("q/", "m3")})).ok());
        r = await(subject->scan("q/0"));
        QCOMPARE(r.items.size(), 3);
        QCOMPARE(r.items[0].key, DEngineOperation::sequentialKey("q/", seq, 0));
        QCOMPARE(r.items[1].key, DEngineOperation::sequentialKey("q/", seq, 1));
        QCOMPARE(r.items[2].value, QByteArray("m3"));
        QVERIFY(r.items[1].key < r.items[2].key);

        // Leases: granted, keys attached, renewed, looked at, revoked (its keys go, one revision).
        r = await(subject->grantLease(60000));
        QVERIFY2(r.ok(), qPrintable(r.message));
        const quint64 lease = r.lease;
        QVERIFY(lease != 0);
        QCOMPARE(r.ttlMs, qint64(60000));
        QVERIFY(await(subject->batch({DEngineOperation::put("l/a", "1", lease), DEngineOperation::put("l/b", "2", lease)})).ok());
        QVERIFY(await(subject->put("l/c", "free")).ok());
        r = await(subject->keepAliveLease(lease));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QCOMPARE(r.ttlMs, qint64(60000));
        r = await(subject->leaseTimeToLive(lease));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QCOMPARE(r.items.size(), 2);
        QCOMPARE(r.items[0].key, QByteArray("l/a"));
        std::unique_ptr<DEngineWatcher> lw(subject->watchPrefix("l/", 0));
        WatchLog leaseLog;
        leaseLog.attach(lw.get());
        QTRY_VERIFY_WITH_TIMEOUT(lw->revision() > 0, Long);
        r = await(subject->revokeLease(lease));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QCOMPARE(await(subject->get("l/a")).status, Status::NotFound);
        QCOMPARE(await(subject->get("l/c")).value, QByteArray("free"));
        QTRY_COMPARE_WITH_TIMEOUT(leaseLog.keys(DEngineWatchEvent::Type::Delete), (QList<QByteArray>{"l/a", "l/b"}), Long);
        QCOMPARE(leaseLog.events[0].revision, r.revision);
        QCOMPARE(leaseLog.events[1].revision, r.revision);
        QCOMPARE(await(subject->keepAliveLease(lease)).status, Status::NotFound);
        QCOMPARE(await(subject->revokeLease(lease)).status, Status::NotFound);
        QCOMPARE(await(subject->leaseTimeToLive(lease)).status, Status::NotFound);
        r = await(subject->batch({DEngineOperation::put("l/y", "1", lease)}));
        QCOMPARE(r.status, Status::NotFound); // a gone lease: nothing written
        QCOMPARE(await(subject->get("l/y")).status, Status::NotFound);
        QCOMPARE(await(subject->grantLease(10)).status, Status::InvalidArgument);

        // Expiry: nobody renews it, the leader writes its end, every member deletes the key.
        r = await(subject->grantLease(1000));
        QVERIFY(r.ok());
        const quint64 shortLease = r.lease;
        QVERIFY(await(subject->batch({DEngineOperation::put("l/short", "1", shortLease)})).ok());
        QTRY_VERIFY_WITH_TIMEOUT(leaseLog.keys(DEngineWatchEvent::Type::Delete).contains("l/short"), Long);
        QCOMPARE(await(subject->get("l/short")).status, Status::NotFound);
        QCOMPARE(await(subject->leaseTimeToLive(shortLease)).status, Status::NotFound);
        QVERIFY(log.ordered && leaseLog.ordered);
        QVERIFY(!log.finished);

        // Stopping ends the watches with Stopping.
        subject->stop();
        QTRY_VERIFY_WITH_TIMEOUT(log.finished, Long);
        QCOMPARE(log.status, Status::Stopping);
        QVERIFY(subject->waitForStopped(Long));
    }

private Q_SLOTS:
    void initTestCase()
    {
        m_cluster = std::make_unique<DEnginedCluster>(3);
        QVERIFY(m_cluster->isValid());
        for (quint64 id = 1; id <= 3; ++id)
            QVERIFY(m_cluster->writeConfig(id, QStringLiteral(", \"insecure\": true, \"watchHistoryRevisions\": 300")));
        for (quint64 id = 1; id <= 3; ++id)
            QVERIFY(m_cluster->start(id));
    }
    void cleanupTestCase() { m_cluster.reset(); }

    void sharedFeatures_data()
    {
        QTest::addColumn<bool>("standalone");
        QTest::newRow("embedded DEngine (a follower)") << false;
        QTest::newRow("DEngineClient of dengined") << true;
    }
    void sharedFeatures()
    {
        QFETCH(bool, standalone);
        if (standalone) {
            DEngineClient client(insecureClientConfig(m_cluster->clientAddresses()));
            QVERIFY(client.start());
            featuresBody(&client);
            return;
        }
        Cluster cluster(3);
        cluster.startAll();
        QTRY_VERIFY_WITH_TIMEOUT(cluster.allReady() && cluster.agreedLeader() != 0, Long);
        const NodeId follower = cluster.agreedLeader() == 1 ? 2 : 1; // a follower serves watches too
        featuresBody(cluster.node(follower));
    }

    // An engine's watch goes on across a leadership change, and a lease outlives it: the new
    // leader restarts its timer (leaseTimeToLive says so), then it expires through the log.
    void embedded_watchAndLeaseAcrossLeaderChange()
    {
        Cluster cluster(3);
        cluster.startAll();
        QTRY_VERIFY_WITH_TIMEOUT(cluster.allReady() && cluster.agreedLeader() != 0, Long);
        const NodeId leader = cluster.agreedLeader();
        const NodeId other = leader == 1 ? 2 : 1;
        DEngine *watcherNode = cluster.node(other);
        std::unique_ptr<DEngineWatcher> w(watcherNode->watchPrefix("k/"));
        WatchLog log;
        log.attach(w.get());
        QTRY_VERIFY_WITH_TIMEOUT(w->revision() > 0, Long);
        DEngineResult r = await(cluster.node(leader)->grantLease(3000));
        QVERIFY(r.ok());
        const quint64 lease = r.lease;
        QVERIFY(await(cluster.node(leader)->batch({DEngineOperation::put("k/leased", "1", lease)})).ok());
        for (int i = 0; i < 20; ++i)
            QVERIFY(await(cluster.node(leader)->put(QByteArray("k/") + QByteArray::number(i), "v")).ok());
        QVERIFY(await(cluster.node(leader)->transferLeadership(other)).ok());
        QTRY_COMPARE_WITH_TIMEOUT(cluster.node(other)->role(), DEngineInterface::Role::Leader, Long);
        // The new leader states the time left: its whole TTL, restarted when it took over.
        QTRY_VERIFY_WITH_TIMEOUT(await(cluster.node(other)->leaseTimeToLive(lease)).remainingMs > 0, Long);
        r = await(cluster.node(other)->leaseTimeToLive(lease));
        QVERIFY(r.ok());
        QCOMPARE(r.ttlMs, qint64(3000));
        QVERIFY2(r.remainingMs > 0 && r.remainingMs <= 3000, qPrintable(QString::number(r.remainingMs)));
        // A follower does not know the time left: it says whom to ask.
        r = await(cluster.node(leader)->leaseTimeToLive(lease));
        QVERIFY(r.ok());
        QCOMPARE(r.remainingMs, qint64(-1));
        for (int i = 20; i < 40; ++i)
            QVERIFY(await(cluster.node(leader)->put(QByteArray("k/") + QByteArray::number(i), "v")).ok());
        // Every put once, in order, and then the lease's expiry as a delete, on the watching node.
        QTRY_VERIFY_WITH_TIMEOUT(log.keys(DEngineWatchEvent::Type::Delete).contains("k/leased"), Long);
        QList<QByteArray> expected{"k/leased"};
        for (int i = 0; i < 40; ++i)
            expected << QByteArray("k/") + QByteArray::number(i);
        QCOMPARE(log.keys(DEngineWatchEvent::Type::Put), expected);
        QVERIFY(log.ordered);
        for (NodeId id : {NodeId(1), NodeId(2), NodeId(3)})
            QCOMPARE(await(cluster.node(id)->get("k/leased", DEngineInterface::Consistency::Linearizable)).status, Status::NotFound);
    }

    // A watcher whose consumer stops (paused) while more than the history is written finishes with
    // Compacted when it resumes: never a silent gap. One that resumes in time gets everything.
    void slowWatcher_compactedNotAGap()
    {
        Cluster cluster(1);
        DEngineConfig c = cluster.config(1);
        c.watchHistoryRevisions = 50;
        DEngine *e = cluster.make(1, &c);
        QVERIFY(e->start());
        QVERIFY(e->waitForReady(Long));
        std::unique_ptr<DEngineWatcher> slow(e->watchPrefix("s/"));
        std::unique_ptr<DEngineWatcher> onTime(e->watchPrefix("s/"));
        WatchLog slowLog, onTimeLog;
        slowLog.attach(slow.get());
        onTimeLog.attach(onTime.get());
        QTRY_VERIFY_WITH_TIMEOUT(slow->revision() > 0 && onTime->revision() > 0, Long);
        // 4 MiB of credit in flight at most: writes of 256 KiB pass it in a few puts.
        slow->setPaused(true);
        onTime->setPaused(true);
        const QByteArray big(256 * 1024, 'x');
        for (int i = 0; i < 30; ++i)
            QVERIFY(await(e->put(QByteArray("s/") + QByteArray::number(i), big)).ok());
        onTime->setPaused(false);
        QTRY_COMPARE_WITH_TIMEOUT(onTimeLog.events.size(), 30, Long);
        for (int i = 0; i < 80; ++i)
            QVERIFY(await(e->put(QByteArray("s/more") + QByteArray::number(i), "v")).ok());
        slow->setPaused(false);
        QTRY_VERIFY_WITH_TIMEOUT(slowLog.finished, Long);
        QCOMPARE(slowLog.status, Status::Compacted);
        QVERIFY(slowLog.events.size() < 110);
        // What it did get has no gap: a prefix of the writes, in order.
        for (int i = 0; i < slowLog.events.size(); ++i)
            QCOMPARE(slowLog.events[i].key, QByteArray("s/") + QByteArray::number(i));
        QTRY_COMPARE_WITH_TIMEOUT(onTimeLog.events.size(), 110, Long);
        // From before the history: Compacted at once.
        std::unique_ptr<DEngineWatcher> old(e->watchPrefix("s/", 1));
        WatchLog oldLog;
        oldLog.attach(old.get());
        QTRY_VERIFY_WITH_TIMEOUT(oldLog.finished, Long);
        QCOMPARE(oldLog.status, Status::Compacted);
    }

    // A client's watch resumes on the next member when its member is killed: every change once,
    // in order. A watch from before a member's history: Compacted.
    void client_watchResumesAfterLeaderKilled()
    {
        DEngineClient probe(insecureClientConfig(m_cluster->clientAddresses()));
        QVERIFY(probe.start());
        QVERIFY(probe.waitForReady(Long));
        DEngineClient watcherClient(insecureClientConfig(m_cluster->clientAddresses()));
        QVERIFY(watcherClient.start());
        QVERIFY(watcherClient.waitForReady(Long));
        QTRY_COMPARE_WITH_TIMEOUT(watcherClient.nodeId(), watcherClient.currentLeader(), Long); // it follows the leader
        std::unique_ptr<DEngineWatcher> w(watcherClient.watchPrefix("f/"));
        WatchLog log;
        log.attach(w.get());
        QTRY_VERIFY_WITH_TIMEOUT(w->revision() > 0, Long);
        QList<QByteArray> written;
        for (int i = 0; i < 20; ++i) {
            const QByteArray k = QByteArray("f/") + QByteArray::number(i).rightJustified(3, '0');
            QVERIFY(await(probe.put(k, "v")).ok());
            written << k;
        }
        QTRY_COMPARE_WITH_TIMEOUT(log.events.size(), 20, Long);
        const quint64 victim = watcherClient.nodeId();
        m_cluster->signal(victim, SIGKILL);
        QTRY_VERIFY_WITH_TIMEOUT(!m_cluster->running(victim), Long);
        // Writes during and after the failover (retried on Timeout/NoQuorum: each key must land once).
        for (int i = 20; i < 60; ++i) {
            const QByteArray k = QByteArray("f/") + QByteArray::number(i).rightJustified(3, '0');
            DEngineResult r;
            QTRY_VERIFY_WITH_TIMEOUT((r = await(probe.txn({DEngineCompare::absent(k)}, {DEngineOperation::put(k, "v")}))).ok(), Long);
            written << k;
        }
        QTRY_COMPARE_WITH_TIMEOUT(log.keys(DEngineWatchEvent::Type::Put), written, Long);
        QVERIFY(log.ordered);
        QVERIFY(!log.finished);
        QVERIFY(watcherClient.nodeId() != victim);
        // Its history holds 300 revisions: a watch from revision 1 cannot be served any more.
        for (int i = 0; i < 320; ++i)
            QVERIFY(await(probe.put("f/filler", QByteArray::number(i))).ok());
        std::unique_ptr<DEngineWatcher> old(watcherClient.watchPrefix("f/", 1));
        WatchLog oldLog;
        oldLog.attach(old.get());
        QTRY_VERIFY_WITH_TIMEOUT(oldLog.finished, Long);
        QCOMPARE(oldLog.status, Status::Compacted);
        // The killed member comes back (the rest of the suite may want it).
        QVERIFY(m_cluster->start(victim));
    }
};

QTEST_GUILESS_MAIN(TestWatchLease)
#include "tst_watchlease.moc"
