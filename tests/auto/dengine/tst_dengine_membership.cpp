// SPDX-License-Identifier: Apache-2.0
// Membership changes in a running cluster, through the public API:
//  - a three-node cluster writes many keys with a small snapshot threshold; each node restarts
//    from its snapshot (the time and the log it replayed are printed next to the history);
//  - a fourth node starts in join mode (knowing one member), is added as a learner and catches up
//    through a streamed snapshot while writes go on, is promoted, and the old leader is removed
//    (it hands over and stops); every acknowledged write is then on every member;
//  - what the rules rule out is refused with a reason, a repeated call is Ok, leadership moves
//    where it is asked to;
//  - a join configuration is checked, and a data directory made by join is not taken for a founder.
//
// DENGINE_MEMBERSHIP_KEYS sets the number of keys (default 200000).
#include "enginetestkit.h"

#include <QtCore/QDir>
#include <QtCore/QDirIterator>
#include <QtCore/QElapsedTimer>
#include <QtCore/QFile>

#include <set>

using namespace dengine::test;

namespace {

QByteArray key(int i) { return QByteArray("k/") + QByteArray::number(i).rightJustified(7, '0'); }
QByteArray value(int i) { return QByteArray("v") + QByteArray::number(i * 7919); }

int keyCount()
{
    const int n = qEnvironmentVariableIntValue("DENGINE_MEMBERSHIP_KEYS");
    return n > 0 ? n : 200000;
}

qint64 dirBytes(const QString &path)
{
    qint64 total = 0;
    QDirIterator it(path, QDir::Files, QDirIterator::Subdirectories);
    while (it.hasNext()) {
        it.next();
        total += it.fileInfo().size();
    }
    return total;
}

// Keeps `window` puts in flight through one engine, keys [from, to), and remembers which were
// acknowledged. Every call's result is counted; failures (a Timeout while leadership moves) are
// allowed but not counted as acknowledged.
class Writer : public QObject {
public:
    Writer(DEngine *via, int from, int to, int window) : m_via(via), m_next(from), m_to(to)
    {
        for (int i = 0; i < window; ++i)
            issue();
    }
    void stop() { m_stopped = true; }
    bool idle() const { return m_inFlight == 0; }
    bool done() const { return m_next >= m_to && m_inFlight == 0; }
    const std::set<int> &acknowledged() const { return m_acked; }
    int failed() const { return m_failed; }
    QString lastFailure() const { return m_lastFailure; }

private:
    void issue()
    {
        if (m_stopped || m_next >= m_to)
            return;
        const int i = m_next++;
        ++m_inFlight;
        m_via->put(key(i), value(i)).then(this, [this, i](const DEngineResult &r) {
            --m_inFlight;
            if (r.ok()) {
                m_acked.insert(i);
            } else {
                ++m_failed;
                m_lastFailure = r.message;
            }
            issue();
        });
    }

    DEngine *m_via;
    int m_next;
    int m_to;
    int m_inFlight = 0;
    bool m_stopped = false;
    std::set<int> m_acked;
    int m_failed = 0;
    QString m_lastFailure;
};

// Awaits a membership call, calling again while it times out (each call is safe to repeat).
DEngineResult untilDone(const std::function<QFuture<DEngineResult>()> &call, int attempts = 12)
{
    DEngineResult r;
    for (int i = 0; i < attempts; ++i) {
        r = await(call());
        if (r.status != Status::Timeout && r.status != Status::NoQuorum)
            return r;
    }
    return r;
}

} // namespace

class TestDEngineMembership : public QObject {
    Q_OBJECT

private:
    // Founders 1..3 (the cluster has room for a fourth, which joins later).
    static DEngineConfig founder(const Cluster &c, NodeId id)
    {
        DEngineConfig cfg = c.config(id);
        cfg.peers.remove(4);
        cfg.snapshotEntries = 20000;
        cfg.walSegmentBytes = 1 << 20;
        cfg.requestTimeoutMs = 10000;
        return cfg;
    }
    static DEngineConfig joiner(const Cluster &c, NodeId id, NodeId known)
    {
        DEngineConfig cfg = founder(c, id);
        cfg.join = true;
        cfg.peers.clear();
        cfg.peers.insert(id, c.peers().value(id));
        cfg.peers.insert(known, c.peers().value(known));
        return cfg;
    }
    static DEngine *startWith(Cluster &c, const DEngineConfig &cfg, Counters *sm = nullptr)
    {
        DEngine *e = c.make(cfg.nodeId, &cfg);
        if (sm)
            e->setStateMachine(sm);
        return e->start() ? e : nullptr;
    }
    static bool writeRange(DEngine *via, int from, int to)
    {
        Writer w(via, from, to, 256);
        [&] { QTRY_VERIFY_WITH_TIMEOUT(w.done(), 600000); }();
        if (w.failed() > 0)
            qWarning() << w.failed() << "writes failed, the last:" << w.lastFailure();
        return w.done() && w.failed() == 0;
    }
    static NodeId runningLeader(Cluster &c)
    {
        NodeId leader = 0;
        for (const auto &[id, e] : c.engines) {
            if (!e->isRunning())
                continue;
            if (e->currentLeader() == 0 || (leader != 0 && e->currentLeader() != leader))
                return 0;
            leader = e->currentLeader();
        }
        return leader;
    }

private Q_SLOTS:
    void bigCluster_restarts_addsAFourthNodeUnderWrites_andRemovesTheOldLeader()
    {
        const int keys = keyCount();
        const int firstPart = keys / 2;
        Counters sm[4]; // before the cluster: its engines use them until they are destroyed
        Cluster c(4);
        for (NodeId id = 1; id <= 3; ++id)
            QVERIFY(startWith(c, founder(c, id), &sm[id - 1]));
        QTRY_VERIFY_WITH_TIMEOUT(c.allReady(), Long);
        QCOMPARE(c.node(1)->members(), (QList<NodeId>{1, 2, 3}));

        QElapsedTimer timer;
        timer.start();
        const NodeId firstLeader = runningLeader(c);
        QVERIFY(firstLeader != 0);
        QVERIFY(writeRange(c.node(firstLeader), 0, firstPart));
        qInfo().noquote() << QStringLiteral("wrote %1 keys through node %2 in %3 ms").arg(firstPart).arg(firstLeader).arg(timer.elapsed());

        // Each node restarts in turn: it loads its newest snapshot and replays only the log after it.
        for (NodeId id = 1; id <= 3; ++id) {
            const DEngineConfig cfg = founder(c, id);
            QTRY_VERIFY_WITH_TIMEOUT(c.node(id)->appliedIndex() >= c.node(runningLeader(c))->commitIndex(), Long);
            const quint64 history = c.node(id)->appliedIndex();
            c.node(id)->stop();
            QVERIFY(c.node(id)->waitForStopped(Long));
            c.engines.erase(id);
            const qint64 walBytes = dirBytes(cfg.dataDirectory + "/wal");
            const qint64 snapBytes = dirBytes(cfg.dataDirectory + "/snap");
            const QStringList snaps = QDir(cfg.dataDirectory + "/snap").entryList({"*.snap"}, QDir::Files, QDir::Name);
            QVERIFY(!snaps.isEmpty());
            const quint64 snapshotIndex = snaps.last().left(16).toULongLong(nullptr, 16); // <index hex>-<term hex>.snap
            sm[id - 1] = Counters();
            timer.restart();
            DEngine *e = startWith(c, cfg, &sm[id - 1]);
            QVERIFY(e);
            QTRY_VERIFY_WITH_TIMEOUT(e->appliedIndex() >= history, Long);
            const qint64 restartMs = timer.elapsed();
            QTRY_VERIFY_WITH_TIMEOUT(e->isReady(), Long);
            QCOMPARE(sm[id - 1].restores, 1);
            qInfo().noquote() << QStringLiteral("node %1 restarted to index %2 in %3 ms (ready after %4 ms): history %2 entries; "
                                                "restored the snapshot at %5 (%6 KiB of snapshots on disk) and replayed %7 entries "
                                                "(%8 KiB of log on disk)")
                                     .arg(id)
                                     .arg(history)
                                     .arg(restartMs)
                                     .arg(timer.elapsed())
                                     .arg(snapshotIndex)
                                     .arg(snapBytes / 1024)
                                     .arg(history - std::min(history, snapshotIndex))
                                     .arg(walBytes / 1024);
            QVERIFY(snapshotIndex + 2 * 20000 >= history); // replays at most about two snapshot intervals
            // The log on disk is bounded by the snapshot interval, not the history.
            QVERIFY2(walBytes < 24LL << 20, qPrintable(QStringLiteral("%1 bytes of log").arg(walBytes)));
        }
        QTRY_VERIFY_WITH_TIMEOUT(c.allReady() && runningLeader(c) != 0, Long);
        const NodeId leaderAtJoin = runningLeader(c);
        const NodeId writerNode = leaderAtJoin == 1 ? 2 : 1; // a founder that stays
        const NodeId other = 6 - leaderAtJoin - writerNode;

        // Writes go on through a member that stays, while node 4 joins.
        Writer writer(c.node(writerNode), firstPart, keys, 64);
        QVERIFY(startWith(c, joiner(c, 4, writerNode), &sm[3]));
        QCOMPARE(c.node(4)->members(), QList<NodeId>{});
        const QString address4 = c.peers().value(4);
        const DEngineResult added = untilDone([&] { return c.node(writerNode)->addLearner(4, address4); });
        QVERIFY2(added.ok(), qPrintable(added.message));
        QVERIFY(added.revision > 0);
        // Again: Ok at once, nothing changes.
        const DEngineResult again = await(c.node(other)->addLearner(4, address4));
        QVERIFY2(again.ok(), qPrintable(again.message));
        QTRY_VERIFY_WITH_TIMEOUT(c.node(other)->learners() == QList<NodeId>{4}, Long);
        QCOMPARE(c.node(other)->memberAddress(4), address4);

        // It catches up through a snapshot (the leader's log was compacted long ago) and the log.
        QTRY_VERIFY_WITH_TIMEOUT(c.node(4)->isReady(), Long);
        QTRY_VERIFY_WITH_TIMEOUT(c.node(4)->appliedIndex() >= added.revision, Long);
        QCOMPARE(sm[3].restores, 1);
        QCOMPARE(c.node(4)->learners(), QList<NodeId>{4});
        QVERIFY(c.node(4)->memberAddress(leaderAtJoin) != QString());
        // A learner does not vote: promoting it makes it one once it is close to the leader's log.
        const DEngineResult promoted = untilDone([&] { return c.node(writerNode)->promote(4); });
        QVERIFY2(promoted.ok(), qPrintable(promoted.message));
        for (NodeId id : {NodeId(1), NodeId(2), NodeId(3), NodeId(4)})
            QTRY_COMPARE_WITH_TIMEOUT(c.node(id)->voters(), (QList<NodeId>{1, 2, 3, 4}), Long);

        // The leader is removed: it commits its own removal, hands over, and stops. (Leadership may
        // have moved meanwhile, on a slow machine: the leader of now, unless that is the writer's
        // node, which hands it on first.)
        if (runningLeader(c) == writerNode) {
            const DEngineResult moved = untilDone([&] { return c.node(writerNode)->transferLeadership(other); });
            QVERIFY2(moved.ok(), qPrintable(moved.message));
        }
        QTRY_VERIFY_WITH_TIMEOUT(runningLeader(c) != 0 && runningLeader(c) != writerNode, Long);
        const NodeId oldLeader = runningLeader(c);
        const DEngineResult removed = untilDone([&] { return c.node(writerNode)->removeMember(oldLeader); });
        QVERIFY2(removed.ok(), qPrintable(removed.message));
        QTRY_COMPARE_WITH_TIMEOUT(c.node(oldLeader)->state(), DEngine::State::Stopped, Long);
        QCOMPARE(c.node(oldLeader)->error(), DEngine::Error::NoError);
        QCOMPARE(c.recorders[oldLeader]->count("stopped"), 1);
        c.engines.erase(oldLeader);
        QTRY_VERIFY_WITH_TIMEOUT(runningLeader(c) != 0 && runningLeader(c) != oldLeader, Long);
        QList<NodeId> remaining{1, 2, 3, 4};
        remaining.removeAll(oldLeader);
        for (const auto &[id, e] : c.engines)
            QTRY_COMPARE_WITH_TIMEOUT(e->members(), remaining, Long);

        QTRY_VERIFY_WITH_TIMEOUT(writer.done(), 600000);
        qInfo().noquote() << QStringLiteral("during the changes: %1 writes acknowledged, %2 failed (last: %3)")
                                 .arg(writer.acknowledged().size())
                                 .arg(writer.failed())
                                 .arg(writer.lastFailure());
        QVERIFY(writer.acknowledged().size() > static_cast<std::size_t>((keys - firstPart) / 2));

        // Every acknowledged write, on every member.
        const NodeId leader = runningLeader(c);
        QVERIFY(leader != 0);
        const quint64 commit = c.node(leader)->commitIndex();
        for (const auto &[id, e] : c.engines) {
            QTRY_VERIFY_WITH_TIMEOUT(e->appliedIndex() >= commit, Long);
            QByteArray from = "k/";
            std::map<QByteArray, QByteArray> held;
            for (;;) {
                const DEngineResult page = await(e->range(from, DEngine::prefixEnd("k/"), 0, DEngine::Consistency::Local));
                QCOMPARE(page.status, Status::Ok);
                for (const DEngineKeyValue &kv : page.items)
                    held.emplace(kv.key, kv.value);
                if (page.nextKey.isEmpty())
                    break;
                from = page.nextKey;
            }
            int missing = 0;
            for (int i = 0; i < firstPart; ++i)
                missing += held.count(key(i)) == 0 || held.at(key(i)) != value(i);
            for (int i : writer.acknowledged())
                missing += held.count(key(i)) == 0 || held.at(key(i)) != value(i);
            QVERIFY2(missing == 0, qPrintable(QStringLiteral("node %1 lacks %2 acknowledged writes").arg(id).arg(missing)));
            QVERIFY(c.recorders[id]->gettersMatched);
        }
    }

    void membershipCalls_refuseWhatTheRulesRuleOut_andMoveLeadership()
    {
        Cluster c(3);
        c.startAll();
        QTRY_VERIFY_WITH_TIMEOUT(c.allReady(), Long);
        const NodeId leader = runningLeader(c);
        QVERIFY(leader != 0);
        const NodeId follower = leader == 1 ? 2 : 1;

        DEngineResult r = await(c.node(follower)->promote(9));
        QCOMPARE(r.status, Status::Refused);
        QVERIFY2(r.message.contains("not a member"), qPrintable(r.message));
        r = await(c.node(leader)->removeMember(9));
        QVERIFY2(r.ok(), qPrintable(r.message)); // already not a member
        r = await(c.node(leader)->addLearner(9, QStringLiteral("no-port")));
        QCOMPARE(r.status, Status::InvalidArgument);
        r = await(c.node(leader)->addLearner(0, QStringLiteral("127.0.0.1:1")));
        QCOMPARE(r.status, Status::InvalidArgument);
        r = await(c.node(leader)->addLearner(leader, c.peers().value(leader)));
        QVERIFY2(r.ok(), qPrintable(r.message)); // a voter with that address already
        r = await(c.node(follower)->transferLeadership(follower));
        QCOMPARE(r.status, Status::Refused);
        QVERIFY2(r.message.contains(QString::number(leader)), qPrintable(r.message));
        r = await(c.node(leader)->transferLeadership(7));
        QCOMPARE(r.status, Status::Refused);

        // A learner that never starts: it can be added (the address book first), not promoted in
        // time, not handed leadership, and removed again.
        const QList<quint16> spare = freePorts(1);
        const QString address = QStringLiteral("127.0.0.1:%1").arg(spare[0]);
        r = untilDone([&] { return c.node(follower)->addLearner(5, address); });
        QVERIFY2(r.ok(), qPrintable(r.message));
        for (NodeId id = 1; id <= 3; ++id) {
            QTRY_COMPARE_WITH_TIMEOUT(c.node(id)->learners(), QList<NodeId>{5}, Long);
            QCOMPARE(c.node(id)->memberAddress(5), address);
        }
        r = await(c.node(leader)->promote(5));
        QCOMPARE(r.status, Status::Timeout); // it never catches up
        QCOMPARE(c.node(leader)->voters(), (QList<NodeId>{1, 2, 3}));
        r = await(c.node(leader)->transferLeadership(5));
        QCOMPARE(r.status, Status::Refused);
        r = untilDone([&] { return c.node(leader)->removeMember(5); });
        QVERIFY2(r.ok(), qPrintable(r.message));
        for (NodeId id = 1; id <= 3; ++id)
            QTRY_COMPARE_WITH_TIMEOUT(c.node(id)->members(), (QList<NodeId>{1, 2, 3}), Long);

        // A running follower is removed: a removed follower hears nothing more from the leader, but
        // every member tells it once it applied the change, and it stops.
        {
            Cluster d(3);
            d.startAll();
            QTRY_VERIFY_WITH_TIMEOUT(d.allReady(), Long);
            const NodeId lead = runningLeader(d);
            const NodeId gone = lead == 3 ? 2 : 3;
            const DEngineResult out = untilDone([&] { return d.node(lead)->removeMember(gone); });
            QVERIFY2(out.ok(), qPrintable(out.message));
            QTRY_COMPARE_WITH_TIMEOUT(d.node(gone)->state(), DEngine::State::Stopped, Long);
            QCOMPARE(d.node(gone)->error(), DEngine::Error::NoError);
            QCOMPARE(d.recorders[gone]->count("stopping"), 1);
            d.engines.erase(gone);
            QVERIFY(await(d.node(lead)->put("two", "voters")).ok());
        }

        // Leadership moves where it is asked to; every node sees it.
        QSignalSpy changed(c.node(follower), &DEngine::membersChanged);
        r = await(c.node(leader)->transferLeadership(follower));
        QVERIFY2(r.ok(), qPrintable(r.message));
        for (NodeId id = 1; id <= 3; ++id)
            QTRY_COMPARE_WITH_TIMEOUT(c.node(id)->currentLeader(), follower, Long);
        QCOMPARE(changed.count(), 0); // no membership change in a hand-over
        QVERIFY(await(c.node(leader)->put("after", "transfer")).ok());
    }

    // Each member writes where it serves clients (DEngineConfig::clientAddress) into the replicated
    // address book: every member learns every member's, a restart with a new one replaces it, and
    // an invalid one is refused at start.
    void clientAddresses_eachAdvertisesItsOwn_everyMemberLearnsAll()
    {
        Cluster c(3);
        const auto clientAddress = [](NodeId id, int generation) { return QStringLiteral("127.0.0.1:%1").arg(9000 + 100 * generation + id); };
        for (NodeId id = 1; id <= 3; ++id) {
            DEngineConfig cfg = c.config(id);
            cfg.clientAddress = clientAddress(id, 0);
            QVERIFY(c.make(id, &cfg)->start());
        }
        QTRY_VERIFY_WITH_TIMEOUT(c.allReady(), Long);
        for (NodeId at = 1; at <= 3; ++at)
            for (NodeId id = 1; id <= 3; ++id)
                QTRY_COMPARE_WITH_TIMEOUT(c.node(at)->memberClientAddress(id), clientAddress(id, 0), Long);
        QVERIFY(c.node(1)->memberClientAddress(4).isEmpty());

        // Node 2 comes back serving clients elsewhere: the book follows, on every member.
        DEngine *two = c.node(2);
        two->stop();
        QVERIFY(two->waitForStopped(Long));
        DEngineConfig cfg = two->config();
        cfg.clientAddress = clientAddress(2, 1);
        QVERIFY(two->setConfig(cfg));
        QVERIFY(two->start());
        QVERIFY2(!two->setConfig(cfg), "not while it runs");
        for (NodeId at = 1; at <= 3; ++at)
            QTRY_COMPARE_WITH_TIMEOUT(c.node(at)->memberClientAddress(2), clientAddress(2, 1), Long);

        cfg.clientAddress = QStringLiteral("127.0.0.1:0");
        QVERIFY(cfg.validate().contains("clientAddress"));
        DEngineConfig other = cfg;
        other.nodeId = 7;
        two->stop();
        QVERIFY(two->waitForStopped(Long));
        QVERIFY2(!two->setConfig(other), "the node id is constant");
    }

    void joinConfiguration_isChecked_andAJoinersDirectoryIsNotAFounders()
    {
        Cluster c(3);
        DEngineConfig cfg = c.config(3);
        cfg.join = true;
        cfg.peers.clear();
        cfg.peers.insert(3, c.peers().value(3));
        QVERIFY(cfg.validate().contains("at least one member"));
        cfg.peers.insert(1, c.peers().value(1));
        QCOMPARE(cfg.validate(), QString());

        // Started in join mode, never added, then started as if it had founded the cluster.
        DEngine *e = c.make(3, &cfg);
        QVERIFY(e->start());
        QTRY_COMPARE_WITH_TIMEOUT(e->listeningPort() != 0, true, Long);
        QCOMPARE(e->members(), QList<NodeId>{});
        e->stop();
        QVERIFY(e->waitForStopped(Long));
        c.engines.erase(3);
        e = c.make(3); // join off, the full peer list
        QVERIFY(e->start());
        QTRY_COMPARE_WITH_TIMEOUT(e->state(), DEngine::State::Stopped, Long);
        QCOMPARE(e->error(), DEngine::Error::ConfigurationError);
        QVERIFY2(e->errorString().contains("join"), qPrintable(e->errorString()));
    }
};

QTEST_GUILESS_MAIN(TestDEngineMembership)
#include "tst_dengine_membership.moc"
