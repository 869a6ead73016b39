// SPDX-License-Identifier: Apache-2.0
// Snapshots in a running cluster: taken while writes go on, the log compacted behind them, a
// restart that restores the newest snapshot and replays only what follows, a follower that fell
// behind the compacted log catching up through a streamed snapshot, and a damaged snapshot file
// on the leader refused by the follower and replaced by a fresh one.
#include "enginetestkit.h"

#include <QtCore/QDir>
#include <QtCore/QFile>

using namespace dengine::test;

namespace {

constexpr int Keys = 3000;

QByteArray key(int i) { return QByteArray("key/") + QByteArray::number(i).rightJustified(6, '0'); }
QByteArray value(int i) { return QByteArray("value-") + QByteArray::number(i * 7919); }

QStringList filesIn(const QString &dir, const QString &pattern)
{
    return QDir(dir).entryList({pattern}, QDir::Files, QDir::Name);
}

} // namespace

class TestDEngineSnapshots : public QObject {
    Q_OBJECT

private:
    // Small snapshots and segments, so a few thousand writes cross several of each.
    static DEngineConfig small(const Cluster &c, NodeId id)
    {
        DEngineConfig cfg = c.config(id);
        cfg.snapshotEntries = 400;
        cfg.walSegmentBytes = 64 << 10;
        return cfg;
    }
    void startSmall(Cluster &c, NodeId id, Counters *sm)
    {
        const DEngineConfig cfg = small(c, id);
        DEngine *e = c.make(id, &cfg);
        e->setStateMachine(sm);
        QVERIFY(e->start());
    }
    // Writes keys [from, to) from `via`, a window of calls at a time, and a counter per key.
    static bool writeKeys(DEngine *via, int from, int to)
    {
        constexpr int Window = 200;
        for (int base = from; base < to; base += Window) {
            QList<QFuture<DEngineResult>> calls;
            for (int i = base; i < std::min(to, base + Window); ++i) {
                calls << via->put(key(i), value(i));
                calls << via->propose(QByteArray("add total 1"));
            }
            for (const auto &f : calls) {
                const DEngineResult r = await(f);
                if (r.status != Status::Ok) {
                    qWarning() << "write failed:" << r.message;
                    return false;
                }
            }
        }
        return true;
    }
    static void verifyKeys(DEngine *on, int count)
    {
        for (int i = 0; i < count; i += 97) {
            const DEngineResult r = await(on->get(key(i), DEngine::Consistency::Local));
            QCOMPARE(r.status, Status::Ok);
            QCOMPARE(r.value, value(i));
        }
        const DEngineResult all = await(on->scan("key/", 0, DEngine::Consistency::Local));
        QCOMPARE(all.status, Status::Ok);
        QCOMPARE(all.items.size(), count);
    }

private Q_SLOTS:
    void restart_restoresTheSnapshot_andReplaysOnlyTheLogAfterIt()
    {
        Counters sm[3]; // before the cluster: its engines use them until they are destroyed
        Cluster c(3);
        for (NodeId id = 1; id <= 3; ++id)
            startSmall(c, id, &sm[id - 1]);
        QTRY_VERIFY_WITH_TIMEOUT(c.allReady(), Long);
        const NodeId leader = c.agreedLeader();
        QVERIFY(leader != 0);
        QVERIFY(writeKeys(c.node(leader), 0, Keys));

        // Every node took snapshots, and compaction kept its log short.
        for (NodeId id = 1; id <= 3; ++id) {
            const QString dir = small(c, id).dataDirectory;
            QTRY_VERIFY_WITH_TIMEOUT(!filesIn(dir + "/snap", "*.snap").isEmpty(), Long);
            QTRY_VERIFY_WITH_TIMEOUT(filesIn(dir + "/wal", "*.wal").size() <= 4, Long);
            // A snapshot is renamed into place before the oldest is deleted: wait out that moment.
            QTRY_VERIFY2_WITH_TIMEOUT(filesIn(dir + "/snap", "*.snap").size() <= 2, "old snapshots are deleted", Long);
        }

        // A follower restarts: it restores the newest snapshot, replays the rest, has every key.
        const NodeId follower = leader == 1 ? 2 : 1;
        const quint64 term = c.node(leader)->currentTerm();
        QVERIFY(!c.recorders[leader]->firstCommits.isEmpty());
        const quint64 termFirstIndex = c.recorders[leader]->firstCommits.last();
        c.engines.erase(follower);
        Counters &fsm = sm[follower - 1];
        fsm = Counters();
        startSmall(c, follower, &fsm);
        QTRY_VERIFY_WITH_TIMEOUT(c.node(follower)->isReady(), Long);
        QCOMPARE(fsm.restores, 1);
        // Its firstCommit names the term's first entry, which only the snapshot still knows of.
        QTRY_VERIFY_WITH_TIMEOUT(!c.recorders[follower]->firstCommits.isEmpty(), Long);
        if (c.node(leader)->currentTerm() == term)
            QCOMPARE(c.recorders[follower]->firstCommits.first(), termFirstIndex);
        else
            qWarning("the term changed during the test (an election): the first index is not compared");
        QTRY_VERIFY_WITH_TIMEOUT(c.node(follower)->appliedIndex() >= c.node(leader)->commitIndex(), Long);
        verifyKeys(c.node(follower), Keys);
        QCOMPARE(fsm.values.value("total"), qint64(Keys));
        QVERIFY(c.recorders[follower]->gettersMatched);
    }

    void laggingFollower_catchesUpThroughAStreamedSnapshot()
    {
        Counters sm[3]; // before the cluster: its engines use them until they are destroyed
        Cluster c(3);
        for (NodeId id = 1; id <= 3; ++id)
            startSmall(c, id, &sm[id - 1]);
        QTRY_VERIFY_WITH_TIMEOUT(c.allReady(), Long);
        NodeId leader = c.agreedLeader();
        QVERIFY(leader != 0);
        QVERIFY(writeKeys(c.node(leader), 0, 200));
        // One follower stops; the others go on far past it and compact the log it would need.
        const NodeId lagging = leader == 3 ? 2 : 3;
        c.engines.erase(lagging);
        QVERIFY(writeKeys(c.node(leader), 200, Keys));
        const QString leaderDir = small(c, leader).dataDirectory;
        QTRY_VERIFY_WITH_TIMEOUT(filesIn(leaderDir + "/snap", "*.snap").size() == 2, Long);

        Counters &lsm = sm[lagging - 1];
        lsm = Counters();
        startSmall(c, lagging, &lsm);
        // While it catches up the others keep taking writes.
        QVERIFY(writeKeys(c.node(leader), Keys, Keys + 300));
        QTRY_VERIFY_WITH_TIMEOUT(c.node(lagging)->appliedIndex() >= c.node(leader)->commitIndex(), Long);
        QVERIFY2(lsm.restores >= 1, "it caught up through a snapshot");
        verifyKeys(c.node(lagging), Keys + 300);
        QCOMPARE(lsm.values.value("total"), qint64(Keys + 300));
        QVERIFY(filesIn(small(c, lagging).dataDirectory + "/snap", "*.recv").isEmpty());
        QVERIFY(filesIn(small(c, lagging).dataDirectory + "/snap", "*.part").isEmpty());
    }

    void damagedSnapshotOnTheLeader_isRefused_andAFreshOneIsSent()
    {
        Counters sm[3]; // before the cluster: its engines use them until they are destroyed
        Cluster c(3);
        for (NodeId id = 1; id <= 3; ++id)
            startSmall(c, id, &sm[id - 1]);
        QTRY_VERIFY_WITH_TIMEOUT(c.allReady(), Long);
        const NodeId leader = c.agreedLeader();
        QVERIFY(leader != 0);
        const NodeId lagging = leader == 3 ? 2 : 3;
        c.engines.erase(lagging);
        QVERIFY(writeKeys(c.node(leader), 0, Keys));
        const QString snapDir = small(c, leader).dataDirectory + "/snap";
        QTRY_VERIFY_WITH_TIMEOUT(filesIn(snapDir, "*.snap").size() == 2, Long);
        // Damage the newest snapshot of every running member in the middle of its data, where only
        // the checksum notices: whichever leads when the lagging one comes back (a slow machine may
        // have moved leadership during the writes) must send from a damaged file. No more writes
        // come, so no newer snapshot replaces it.
        // The last write's index: every running member applies up to it, and no write comes after.
        const DEngineResult marker = DEngine::waitForResult(c.node(leader)->put("marker", "last"));
        QVERIFY2(marker.ok(), qPrintable(marker.message));
        const quint64 last = marker.revision;
        QList<NodeId> running;
        for (NodeId id = 1; id <= 3; ++id)
            if (id != lagging)
                running << id;
        for (NodeId id : running) {
            const QString dir = small(c, id).dataDirectory + "/snap";
            // The last snapshot these writes cause is written (the writer runs behind the log):
            // the newest file (named by its index, in hex) is within one interval of what applied.
            const auto newestIndex = [&] {
                const QStringList snaps = filesIn(dir, "*.snap");
                return snaps.isEmpty() ? quint64(0) : snaps.last().left(16).toULongLong(nullptr, 16);
            };
            QTRY_VERIFY_WITH_TIMEOUT(c.node(id)->appliedIndex() >= last && newestIndex() + small(c, id).snapshotEntries > last, Long);
            QFile f(dir + "/" + filesIn(dir, "*.snap").last());
            QVERIFY(f.open(QIODevice::ReadWrite));
            QVERIFY(f.seek(f.size() / 2));
            QByteArray b = f.read(1);
            b[0] = static_cast<char>(b[0] ^ 0x5a);
            QVERIFY(f.seek(f.size() / 2));
            QCOMPARE(f.write(b), 1);
        }
        Counters &lsm = sm[lagging - 1];
        lsm = Counters();
        startSmall(c, lagging, &lsm);
        QTRY_VERIFY_WITH_TIMEOUT(c.node(lagging)->appliedIndex() >= c.node(c.agreedLeader() ? c.agreedLeader() : leader)->commitIndex(), Long);
        QVERIFY(lsm.restores >= 1);
        verifyKeys(c.node(lagging), Keys);
        int damaged = 0;
        for (NodeId id : running)
            damaged += static_cast<int>(filesIn(small(c, id).dataDirectory + "/snap", "*.damaged").size());
        QVERIFY2(damaged >= 1, "the leader set its damaged file aside");
    }
};

QTEST_GUILESS_MAIN(TestDEngineSnapshots)
#include "tst_dengine_snapshots.moc"
