// SPDX-License-Identifier: Apache-2.0
// DEngine against the lifecycle contract (../shared/docs/lifecycle.md), one rule per test where it
// can be: one-node and three-node clusters on 127.0.0.1 in this process. Time is short ticks
// (10 ms) and every wait is a QTRY_* with a generous limit; nothing sleeps.
#include <dengine/dengine.h>
#include <dengine/denginestatemachine.h>

#include "enginetestkit.h"

#include <QtCore/QTemporaryDir>
#include <QtNetwork/QTcpServer>
#include <QtTest/QtTest>

#include <sys/resource.h>

#include <csignal>
#include <map>
#include <memory>

using dengine::test::freePorts;
using Status = DEngine::Status;

using namespace dengine::test;

class TestDEngine : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // ---- one node ----
    void oneNode_readyOnce_afterTheTermsFirstEntryIsApplied();
    void oneNode_keyValueCalls();
    void oneNode_badInput_isRefusedAndWritesNothing();
    void calls_beforeStartAndAfterStop_failWithStopping();
    void stop_stoppingBeforeStopped_onceEach_idempotent();
    void restart_sameDirectory_keepsTheData();
    void badConfiguration_startFailsAndSaysWhy();
    void portInUse_errorOccurred_thenStopped();
    void dataDirectoryInUse_isRefused();
    void destruction_whileRunning_stopsCleanly();
    void corruptDataDirectory_isRefusedWithFileAndOffset();
    void storageFailure_isReportedAndTheEngineStops();
    void slots_mayCallStopAndKeyValueCalls();

    // ---- three nodes in one process ----
    void threeNodes_allReady_agreeOnLeaderAndFirstCommit();
    void threeNodes_followerWrite_isForwarded_andReadEverywhere();
    void threeNodes_batchIsAtomic();
    void threeNodes_leaderStops_othersFollowTheNewLeader();
    void noQuorum_notReady_callsFail_stopIsPrompt();
    void majority_isEnough_toBecomeReady();
    void stop_failsCallsInFlight_noneHangs();

    // ---- the application's state machine ----
    void stateMachine_commandsApplyOnEveryNode_onceEach_andSurviveARestart();
    void stateMachine_badUse_isRefused();
};

void TestDEngine::oneNode_readyOnce_afterTheTermsFirstEntryIsApplied()
{
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e);
    QVERIFY(e->waitForReady(Long));
    const Recorder &r = *c.recorders[1];
    QCOMPARE(r.count(QStringLiteral("ready")), 1);
    QCOMPARE(e->currentLeader(), NodeId(1));
    QCOMPARE(e->role(), DEngine::Role::Leader);
    QVERIFY(e->currentTerm() >= 1);
    // The first firstCommit after start() comes right after ready(), naming the term's first entry.
    QTRY_COMPARE_WITH_TIMEOUT(r.firstCommits.size(), 1, Long);
    QCOMPARE(r.indexOf(QStringLiteral("first %1").arg(r.firstCommits[0])), r.indexOf(QStringLiteral("ready")) + 1);
    QVERIFY(e->appliedIndex() >= r.firstCommits[0]);
    QVERIFY(r.gettersMatched);
    QVERIFY(r.onOwnerThread);
    // Writes do not make it ready again.
    QVERIFY(await(e->put("k", "v")).ok());
    QCOMPARE(r.count(QStringLiteral("ready")), 1);
}

void TestDEngine::oneNode_keyValueCalls()
{
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e && e->waitForReady(Long));

    const DEngineResult p1 = await(e->put("app/1", "one"));
    QVERIFY2(p1.ok(), qPrintable(p1.message));
    QVERIFY(p1.revision > 0);
    QCOMPARE(p1.leaderHint, NodeId(1));
    const DEngineResult p2 = await(e->put("app/2", "two"));
    QVERIFY(p2.revision > p1.revision);
    QVERIFY(await(e->put("apple", "fruit")).ok());
    QVERIFY(await(e->put("b", "bee")).ok());

    for (auto consistency : {DEngine::Consistency::Linearizable, DEngine::Consistency::Lease, DEngine::Consistency::Local}) {
        const DEngineResult g = await(e->get("app/1", consistency));
        QCOMPARE(g.status, Status::Ok);
        QCOMPARE(g.value, QByteArray("one"));
        QVERIFY(g.revision >= p2.revision);
    }
    QCOMPARE(await(e->get("missing")).status, Status::NotFound);

    const DEngineResult s = await(e->scan("app/"));
    QCOMPARE(s.status, Status::Ok);
    QCOMPARE(s.items.size(), 2);
    QCOMPARE(s.items[0].key, QByteArray("app/1"));
    QCOMPARE(s.items[1].value, QByteArray("two"));
    QCOMPARE(await(e->scan("app", 2)).items.size(), 2); // limit
    QCOMPARE(await(e->scan("app")).items.size(), 3);

    const DEngineResult r = await(e->range("app/2", "b"));
    QCOMPARE(r.items.size(), 2); // byte order: "app/2" < "apple" < "b" (excluded)
    QCOMPARE(r.items[1].key, QByteArray("apple"));
    QCOMPARE(await(e->range("app/2", QByteArray())).items.size(), 3); // no upper bound

    QVERIFY(await(e->remove("app/1")).ok());
    QCOMPARE(await(e->get("app/1")).status, Status::NotFound);
    QVERIFY(await(e->remove("never-there")).ok()); // removing nothing is not an error

    const DEngineResult b = await(e->batch({DEngineOperation::put("x", "1"), DEngineOperation::put("y", "2"), DEngineOperation::remove("b")}));
    QVERIFY(b.ok());
    QCOMPARE(await(e->get("x")).value, QByteArray("1"));
    QCOMPARE(await(e->get("y")).value, QByteArray("2"));
    QCOMPARE(await(e->get("b")).status, Status::NotFound);
    QTRY_VERIFY_WITH_TIMEOUT(e->appliedIndex() >= b.revision, Long);
}

void TestDEngine::oneNode_badInput_isRefusedAndWritesNothing()
{
    Cluster c(1);
    DEngineConfig cfg = c.config(1);
    cfg.maxKeyBytes = 8;
    cfg.maxValueBytes = 16;
    cfg.maxBatchOperations = 8;
    DEngine *e = c.make(1, &cfg);
    QVERIFY(e->start());
    QVERIFY(e->waitForReady(Long));
    // A new leader records the members' addresses in the log as its term starts (for nodes that
    // join later), before it says ready: a write made now comes after that entry.
    const DEngineResult first = await(e->put("first", "1"));
    QVERIFY(first.ok());
    const quint64 before = first.revision;

    const QList<QFuture<DEngineResult>> bad = {
        e->put("", "v"),
        e->put("123456789", "v"),
        e->put("k", QByteArray(17, 'v')),
        e->remove(""),
        e->batch({}),
        e->batch(QList<DEngineOperation>(9, DEngineOperation::put("a", "1"))), // over maxBatchOperations
        e->batch({DEngineOperation::put("a", "1"), DEngineOperation::put("", "2")}),
        e->get(""),
        e->get("123456789"),
        e->scan("p", -1),
        e->range("b", "a"),
        e->range("a", "b", -5),
        // a batch's keys and values together: at most 4 x maxValueBytes + maxKeyBytes
        e->batch(QList<DEngineOperation>(5, DEngineOperation::put("a", QByteArray(16, 'v')))), // 85 bytes > 72
    };
    for (const auto &f : bad) {
        const DEngineResult r = await(f);
        QCOMPARE(r.status, Status::InvalidArgument);
        QVERIFY(!r.message.isEmpty());
    }
    // Nothing reached the log: a write after them is the next entry.
    const DEngineResult ok = await(e->put("a", "1"));
    QVERIFY(ok.ok());
    QCOMPARE(ok.revision, before + 1);
    QCOMPARE(await(e->get("b")).status, Status::NotFound); // the refused batch left no trace
}

void TestDEngine::calls_beforeStartAndAfterStop_failWithStopping()
{
    Cluster c(1);
    DEngine *e = c.make(1);
    QCOMPARE(await(e->put("k", "v")).status, Status::Stopping);
    QCOMPARE(await(e->get("k")).status, Status::Stopping);
    QVERIFY(e->start());
    QVERIFY(e->waitForReady(Long));
    e->stop();
    QCOMPARE(await(e->put("k", "v")).status, Status::Stopping); // at once, after stopping()
    QVERIFY(e->waitForStopped(Long));
    QCOMPARE(await(e->get("k", DEngine::Consistency::Local)).status, Status::Stopping);
}

void TestDEngine::stop_stoppingBeforeStopped_onceEach_idempotent()
{
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e && e->waitForReady(Long));
    QSignalSpy stopping(e, &DEngine::stopping);
    QSignalSpy stopped(e, &DEngine::stopped);
    e->stop();
    QCOMPARE(stopping.size(), 1); // at once
    QVERIFY(!e->isReady());
    e->stop();
    QVERIFY(e->waitForStopped(Long));
    e->stop();
    QCOMPARE(stopping.size(), 1);
    QCOMPARE(stopped.size(), 1);
    const Recorder &r = *c.recorders[1];
    QVERIFY(r.indexOf(QStringLiteral("stopping")) < r.indexOf(QStringLiteral("stopped")));
    QCOMPARE(r.events.last(), QStringLiteral("stopped"));
    QCOMPARE(e->role(), DEngine::Role::Stopped);
    QCOMPARE(e->currentLeader(), NodeId(0));
}

void TestDEngine::restart_sameDirectory_keepsTheData()
{
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e && e->waitForReady(Long));
    for (int i = 0; i < 50; ++i)
        QVERIFY(await(e->put(QByteArray("key") + QByteArray::number(i), QByteArray::number(i * i))).ok());
    const quint64 term = e->currentTerm();
    e->stop();
    QVERIFY(e->waitForStopped(Long));

    // stopped() means every file is closed: a new engine opens the same directory at once.
    DEngine *again = c.startNode(1);
    QVERIFY(again);
    QVERIFY(again->waitForReady(Long));
    QVERIFY(again->currentTerm() > term);
    for (int i = 0; i < 50; i += 7) {
        const DEngineResult g = await(again->get(QByteArray("key") + QByteArray::number(i)));
        QCOMPARE(g.status, Status::Ok);
        QCOMPARE(g.value, QByteArray::number(i * i));
    }
    QCOMPARE(await(again->scan("key")).items.size(), 50);
}

void TestDEngine::badConfiguration_startFailsAndSaysWhy()
{
    DEngineConfig cfg;
    cfg.nodeId = 1;
    cfg.peers.insert(1, QStringLiteral("127.0.0.1:7001"));
    // dataDirectory missing
    DEngine e(cfg);
    QSignalSpy errors(&e, &DEngine::errorOccurred);
    QVERIFY(!e.start());
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors[0][0].value<DEngine::Error>(), DEngine::Error::ConfigurationError);
    QVERIFY(errors[0][1].toString().contains(QStringLiteral("dataDirectory")));
    QVERIFY(!e.isRunning());
}

void TestDEngine::portInUse_errorOccurred_thenStopped()
{
    Cluster c(1);
    QTcpServer squatter;
    const quint16 port = static_cast<quint16>(c.peers().value(1).section(QLatin1Char(':'), 1).toUInt());
    QVERIFY(squatter.listen(QHostAddress::LocalHost, port));
    DEngine *e = c.make(1);
    QSignalSpy errors(e, &DEngine::errorOccurred);
    QVERIFY(e->start());
    QVERIFY(e->waitForStopped(Long));
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors[0][0].value<DEngine::Error>(), DEngine::Error::AddressInUse);
    QVERIFY(errors[0][1].toString().contains(QString::number(port)));
    const Recorder &r = *c.recorders[1];
    QVERIFY(r.indexOf(QStringLiteral("error %1").arg(static_cast<int>(DEngine::Error::AddressInUse))) < r.indexOf(QStringLiteral("stopping")));
    QVERIFY(r.indexOf(QStringLiteral("stopping")) < r.indexOf(QStringLiteral("stopped")));
    QCOMPARE(r.count(QStringLiteral("ready")), 0);
}

void TestDEngine::dataDirectoryInUse_isRefused()
{
    Cluster c(1);
    DEngine *first = c.startNode(1);
    QVERIFY(first && first->waitForReady(Long));
    DEngineConfig cfg = c.config(1);
    cfg.peers.insert(1, QStringLiteral("127.0.0.1:%1").arg(freePorts(1)[0])); // another port, same directory
    DEngine second(cfg);
    QSignalSpy errors(&second, &DEngine::errorOccurred);
    QVERIFY(second.start());
    QVERIFY(second.waitForStopped(Long));
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors[0][0].value<DEngine::Error>(), DEngine::Error::DataDirectoryLocked);
    // The first one is unharmed.
    QVERIFY(await(first->put("still", "here")).ok());
}

void TestDEngine::destruction_whileRunning_stopsCleanly()
{
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e && e->waitForReady(Long));
    QSignalSpy stopping(e, &DEngine::stopping);
    QSignalSpy stopped(e, &DEngine::stopped);
    const QFuture<DEngineResult> inFlight = e->put("k", "v");
    c.engines.erase(1); // destroys the engine while it runs
    QCOMPARE(stopping.size(), 1);
    QCOMPARE(stopped.size(), 1);
    QVERIFY(inFlight.isFinished());
    // The directory is free again.
    DEngine *again = c.startNode(1);
    QVERIFY(again && again->waitForReady(Long));
}

void TestDEngine::corruptDataDirectory_isRefusedWithFileAndOffset()
{
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e && e->waitForReady(Long));
    for (int i = 0; i < 20; ++i)
        QVERIFY(await(e->put(QByteArray::number(i), QByteArray(300, 'v'))).ok());
    const QString dir = e->config().dataDirectory;
    e->stop();
    QVERIFY(e->waitForStopped(Long));
    // Flip a byte in the middle of the acknowledged records.
    const QString segment = dir + QStringLiteral("/wal/0000000000000001.wal");
    QFile f(segment);
    QVERIFY(f.open(QIODevice::ReadWrite));
    f.seek(2000);
    char b = 0;
    QVERIFY(f.getChar(&b));
    f.seek(2000);
    QVERIFY(f.putChar(static_cast<char>(b ^ 0x40)));
    f.close();
    DEngine *again = c.make(1);
    QSignalSpy errors(again, &DEngine::errorOccurred);
    QVERIFY(again->start());
    QVERIFY(again->waitForStopped(Long));
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors[0][0].value<DEngine::Error>(), DEngine::Error::CorruptData);
    const QString message = errors[0][1].toString();
    QVERIFY2(message.contains(segment) && message.contains(QStringLiteral("offset")), qPrintable(message));
    QCOMPARE(c.recorders[1]->count(QStringLiteral("ready")), 0);
}

void TestDEngine::storageFailure_isReportedAndTheEngineStops()
{
    // A disk that refuses to grow files: a 1 MiB file-size limit on this process makes the log's
    // 64 MiB segment preallocation fail (EFBIG), as a full disk would (ENOSPC).
    Cluster c(1);
    DEngine *e = c.make(1);
    QSignalSpy errors(e, &DEngine::errorOccurred);
    rlimit old{};
    QCOMPARE(getrlimit(RLIMIT_FSIZE, &old), 0);
    const auto previous = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small{1u << 20, old.rlim_max};
    QCOMPARE(setrlimit(RLIMIT_FSIZE, &small), 0);
    const bool started = e->start();
    const bool stopped = e->waitForStopped(Long);
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, previous);
    QVERIFY(started);
    QVERIFY(stopped);
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors[0][0].value<DEngine::Error>(), DEngine::Error::StorageFailure);
    QVERIFY2(errors[0][1].toString().contains(QStringLiteral("wal")), qPrintable(errors[0][1].toString()));
    const Recorder &r = *c.recorders[1];
    QVERIFY(r.indexOf(QStringLiteral("stopping")) < r.indexOf(QStringLiteral("stopped")));
    QCOMPARE(r.count(QStringLiteral("ready")), 0);
}

void TestDEngine::slots_mayCallStopAndKeyValueCalls()
{
    // Delivery rule 4: a slot may call any public method, stop() and the key-value calls included.
    Cluster c(1);
    DEngine *e = c.make(1);
    QFuture<DEngineResult> fromSlot;
    QObject::connect(e, &DEngine::ready, e, [&] { fromSlot = e->put("from-a-slot", "1"); });
    QObject::connect(e, &DEngine::firstCommit, e, [&] {
        QCOMPARE(await(fromSlot).status, Status::Ok); // waiting inside a slot does not stall the node
        e->stop();
    });
    QVERIFY(e->start());
    QVERIFY(e->waitForStopped(Long));
    QCOMPARE(c.recorders[1]->count(QStringLiteral("stopped")), 1);
}

// ---- three nodes ---------------------------------------------------------------------------------

void TestDEngine::threeNodes_allReady_agreeOnLeaderAndFirstCommit()
{
    Cluster c(3);
    c.startAll();
    QTRY_VERIFY_WITH_TIMEOUT(c.allReady(), Long);
    QTRY_VERIFY_WITH_TIMEOUT(c.agreedLeader() != 0, Long);
    const NodeId leader = c.agreedLeader();
    QCOMPARE(c.node(leader)->role(), DEngine::Role::Leader);
    const quint64 term = c.node(leader)->currentTerm();
    for (auto &[id, r] : c.recorders) {
        QTRY_COMPARE_WITH_TIMEOUT(r->firstCommits.size(), 1, Long);
        QCOMPARE(r->count(QStringLiteral("ready")), 1);
        // firstCommit names the same entry everywhere: the leader's first of the term.
        QCOMPARE(r->firstCommits[0], c.recorders[leader]->firstCommits[0]);
        QCOMPARE(r->indexOf(QStringLiteral("first %1").arg(r->firstCommits[0])), r->indexOf(QStringLiteral("ready")) + 1);
        QCOMPARE(c.node(id)->currentTerm(), term);
        QVERIFY(r->gettersMatched);
        QVERIFY(r->onOwnerThread);
        QCOMPARE(c.node(id)->members(), (QList<NodeId>{1, 2, 3}));
    }
}

void TestDEngine::threeNodes_followerWrite_isForwarded_andReadEverywhere()
{
    Cluster c(3);
    c.startAll();
    QTRY_VERIFY_WITH_TIMEOUT(c.allReady() && c.agreedLeader() != 0, Long);
    const NodeId leader = c.agreedLeader();
    const NodeId follower = leader == 1 ? 2 : 1;
    const NodeId other = 6 - leader - follower;

    const DEngineResult w = await(c.node(follower)->put("from-follower", "x"));
    QVERIFY2(w.ok(), qPrintable(w.message));
    QCOMPARE(w.leaderHint, leader);
    // Applied on the node that took the call before it answered (read-your-writes), and a
    // linearizable read on any other node sees it.
    QCOMPARE(await(c.node(follower)->get("from-follower", DEngine::Consistency::Local)).value, QByteArray("x"));
    for (NodeId id : {leader, other}) {
        const DEngineResult g = await(c.node(id)->get("from-follower"));
        QCOMPARE(g.status, Status::Ok);
        QCOMPARE(g.value, QByteArray("x"));
        QVERIFY(g.revision >= w.revision);
    }
    // Many writes at once from every node: all succeed, each with its own index.
    QList<QFuture<DEngineResult>> writes;
    for (int i = 0; i < 300; ++i)
        writes << c.node(NodeId(i % 3 + 1))->put(QByteArray("many/") + QByteArray::number(i), QByteArray::number(i));
    QSet<quint64> revisions;
    for (const auto &f : writes) {
        const DEngineResult r = await(f);
        QVERIFY2(r.ok(), qPrintable(r.message));
        revisions.insert(r.revision);
    }
    QCOMPARE(revisions.size(), 300);
    QCOMPARE(await(c.node(other)->scan("many/")).items.size(), 300);
}

void TestDEngine::threeNodes_batchIsAtomic()
{
    Cluster c(3);
    c.startAll();
    QTRY_VERIFY_WITH_TIMEOUT(c.allReady() && c.agreedLeader() != 0, Long);
    QVERIFY(await(c.node(1)->put("acct/a", "100")).ok());
    QVERIFY(await(c.node(1)->put("acct/b", "0")).ok());
    // Move 40 from a to b in one batch, while another node keeps reading both: it must never see
    // the money half moved.
    const DEngineResult b = await(c.node(2)->batch({DEngineOperation::put("acct/a", "60"), DEngineOperation::put("acct/b", "40")}));
    QVERIFY(b.ok());
    for (NodeId id : {1, 2, 3}) {
        const DEngineResult s = await(c.node(NodeId(id))->scan("acct/"));
        QCOMPARE(s.items.size(), 2);
        QCOMPARE(s.items[0].value.toInt() + s.items[1].value.toInt(), 100);
        QCOMPARE(s.items[0].value, QByteArray("60"));
    }
    // A batch with one bad operation writes none of them.
    const DEngineResult bad = await(c.node(3)->batch({DEngineOperation::put("acct/a", "0"), DEngineOperation::put(QByteArray(), "100")}));
    QCOMPARE(bad.status, Status::InvalidArgument);
    QCOMPARE(await(c.node(1)->get("acct/a")).value, QByteArray("60"));
}

void TestDEngine::threeNodes_leaderStops_othersFollowTheNewLeader()
{
    Cluster c(3);
    c.startAll();
    QTRY_VERIFY_WITH_TIMEOUT(c.allReady() && c.agreedLeader() != 0, Long);
    const NodeId old = c.agreedLeader();
    QVERIFY(await(c.node(old)->put("before", "1")).ok());
    for (auto &[id, r] : c.recorders)
        r->leaders.clear();
    c.node(old)->stop();
    QVERIFY(c.node(old)->waitForStopped(Long));
    QTRY_VERIFY_WITH_TIMEOUT(c.agreedLeader() != 0 && c.agreedLeader() != old, Long);
    const NodeId now = c.agreedLeader();
    for (auto &[id, r] : c.recorders) {
        if (id == old)
            continue;
        // Every survivor saw the old leader go (0) before the new one came; the new one is the
        // last it announced, and it is the same everywhere.
        QVERIFY2(!r->leaders.isEmpty(), "no leaderChanged after the leader stopped");
        QCOMPARE(r->leaders.first(), NodeId(0));
        QCOMPARE(r->leaders.last(), now);
        QVERIFY(r->gettersMatched);
    }
    // The cluster goes on: writes and linearizable reads on the survivors.
    const NodeId survivor = 6 - old - now; // the follower that is left
    QVERIFY(await(c.node(survivor)->put("after", "2")).ok());
    QCOMPARE(await(c.node(now)->get("before")).value, QByteArray("1"));
    QCOMPARE(await(c.node(now)->get("after")).value, QByteArray("2"));
}

void TestDEngine::noQuorum_notReady_callsFail_stopIsPrompt()
{
    Cluster c(3);
    DEngineConfig cfg = c.config(1);
    cfg.requestTimeoutMs = 300;
    DEngine *e = c.make(1, &cfg);
    QVERIFY(e->start());
    QVERIFY(!e->waitForReady(500)); // alone of three: never ready
    const DEngineResult w = await(e->put("k", "v"));
    QCOMPARE(w.status, Status::NoQuorum);
    QCOMPARE(await(e->get("k")).status, Status::NoQuorum);
    QCOMPARE(await(e->get("k", DEngine::Consistency::Local)).status, Status::NotFound); // local reads answer at once
    e->stop();
    QVERIFY(e->waitForStopped(Long));
    QCOMPARE(c.recorders[1]->count(QStringLiteral("ready")), 0);
}

void TestDEngine::majority_isEnough_toBecomeReady()
{
    // Two of three members: no start-up step waits for the third.
    Cluster c(3);
    DEngine *a = c.startNode(1);
    DEngine *b = c.startNode(2);
    QVERIFY(a && b);
    QVERIFY(a->waitForReady(Long));
    QVERIFY(b->waitForReady(Long));
    QVERIFY(await(a->put("two", "of three")).ok());
    QCOMPARE(await(b->get("two")).value, QByteArray("of three"));
}

void TestDEngine::stop_failsCallsInFlight_noneHangs()
{
    Cluster c(3);
    DEngine *e = c.startNode(1); // no quorum: nothing can complete
    QVERIFY(e);
    QList<QFuture<DEngineResult>> calls;
    for (int i = 0; i < 100; ++i) {
        calls << e->put(QByteArray::number(i), "v");
        calls << e->get(QByteArray::number(i));
    }
    e->stop();
    QVERIFY(e->waitForStopped(Long));
    for (const auto &f : calls) {
        QVERIFY(f.isFinished());
        QCOMPARE(f.result().status, Status::Stopping);
    }
}

void TestDEngine::stateMachine_commandsApplyOnEveryNode_onceEach_andSurviveARestart()
{
    Cluster c(3);
    std::map<NodeId, std::unique_ptr<Counters>> sm;
    for (NodeId id : {1, 2, 3}) {
        sm[id] = std::make_unique<Counters>();
        DEngine *e = c.make(id);
        QVERIFY(e->setStateMachine(sm[id].get()));
        QVERIFY(e->start());
        QVERIFY(!e->setStateMachine(nullptr)); // only before start()
    }
    QTRY_VERIFY_WITH_TIMEOUT(c.allReady() && c.agreedLeader() != 0, Long);
    // Proposals from every node, interleaved with key-value writes in the same log.
    QList<QFuture<DEngineResult>> calls;
    for (int i = 0; i < 60; ++i) {
        calls << c.node(NodeId(i % 3 + 1))->propose("add hits 1");
        calls << c.node(NodeId((i + 1) % 3 + 1))->put(QByteArray::number(i), "x");
    }
    QSet<QByteArray> totals;
    for (int i = 0; i < calls.size(); ++i) {
        const DEngineResult r = await(calls[i]);
        QVERIFY2(r.ok(), qPrintable(r.message));
        if (i % 2 == 0)
            totals.insert(r.value); // each proposer sees the total its command produced
    }
    QCOMPARE(totals.size(), 60); // 1..60, each exactly once: no command applied twice
    for (NodeId id : {1, 2, 3}) {
        const DEngineResult q = await(c.node(id)->query("hits"));
        QCOMPARE(q.status, Status::Ok);
        QCOMPARE(q.value, QByteArray("60")); // linearizable: sees every acknowledged command
        QTRY_COMPARE_WITH_TIMEOUT(sm[id]->applied, 60, Long);
        QVERIFY(sm[id]->thread != QThread::currentThread()); // the worker thread, not the owner's
    }
    // A restarted node applies the log again into a fresh state machine.
    c.node(2)->stop();
    QVERIFY(c.node(2)->waitForStopped(Long));
    auto fresh = std::make_unique<Counters>();
    DEngine *again = c.make(2);
    QVERIFY(again->setStateMachine(fresh.get()));
    QVERIFY(again->start());
    QVERIFY(again->waitForReady(Long));
    QCOMPARE(await(again->query("hits")).value, QByteArray("60"));
    QCOMPARE(fresh->applied, 60);
    c.engines.erase(2); // before `fresh` goes
}

void TestDEngine::stateMachine_badUse_isRefused()
{
    Cluster c(1);
    DEngineConfig cfg = c.config(1);
    cfg.maxValueBytes = 10;
    DEngine *e = c.make(1, &cfg);
    QVERIFY(e->start());
    QVERIFY(e->waitForReady(Long));
    QCOMPARE(await(e->propose("add x 1")).status, Status::InvalidArgument); // no state machine
    QCOMPARE(await(e->query("x")).status, Status::InvalidArgument);
    Counters counters;
    Cluster c2(1);
    DEngineConfig cfg2 = c2.config(1);
    cfg2.maxValueBytes = 10;
    DEngine *withSm = c2.make(1, &cfg2);
    QVERIFY(withSm->setStateMachine(&counters));
    QVERIFY(withSm->start());
    QVERIFY(withSm->waitForReady(Long));
    QCOMPARE(await(withSm->propose("")).status, Status::InvalidArgument);
    QCOMPARE(await(withSm->propose("add x 12345678")).status, Status::InvalidArgument);
    QCOMPARE(counters.applied, 0);
    QCOMPARE(await(withSm->propose("add x 2")).value, QByteArray("2"));
    c2.engines.clear(); // before `counters` goes
}

QTEST_GUILESS_MAIN(TestDEngine)
#include "tst_dengine.moc"
