// SPDX-License-Identifier: Apache-2.0
// DEngine after the review of issue 8: where results are delivered, what bounds a caller's calls,
// what a leader proposes again, what a stop promises, and the object's life (restart, state, errors,
// port 0). Each test failed before its fix. Clusters run on 127.0.0.1 in this process with short
// ticks; every wait is a QTRY_* or a signal with a generous limit; nothing sleeps.
#include "enginetestkit.h"

#include <QtCore/QDir>
#include <QtCore/QDirIterator>
#include <QtCore/QSemaphore>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

using namespace dengine::test;

namespace {

// How many times `marker` occurs in the node's write-ahead log files: the copies of one write.
int copiesInLog(const QString &dataDirectory, const QByteArray &marker)
{
    int copies = 0;
    QDirIterator it(dataDirectory + QStringLiteral("/wal"), {QStringLiteral("*.wal")}, QDir::Files);
    while (it.hasNext()) {
        QFile f(it.next());
        if (!f.open(QIODevice::ReadOnly))
            continue;
        const QByteArray bytes = f.readAll();
        for (qsizetype at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + marker.size()))
            ++copies;
    }
    return copies;
}

// Whether no one holds the data directory (the log's LOCK file).
bool lockFree(const QString &dataDirectory)
{
    const int fd = ::open(QFile::encodeName(dataDirectory + QStringLiteral("/LOCK")).constData(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);
    return free;
}

// A state machine whose apply() waits for the test: it holds the worker thread, as a hung fsync
// would.
class Gate final : public DEngineStateMachine {
public:
    QByteArray apply(quint64, const QByteArray &) override
    {
        entered.release();
        open.acquire();
        return QByteArray("done");
    }
    QByteArray query(const QByteArray &) override { return {}; }
    QByteArray snapshot(quint64) override { return {}; }
    bool restore(quint64, const QByteArray &) override { return true; }
    QSemaphore entered;
    QSemaphore open;
};

} // namespace

class TestDEngineHardening : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void continuationWithoutContext_runsOnTheOwnerThread();
    void busy_isDecidedAtTheCall_byCallsAndBytes();
    void leader_doesNotProposeItsOwnPendingWriteAgain();
    void storageFailure_writeThatReachedTheLeader_isAnUnknownOutcome();
    void scan_isCappedAndPages();
    void start_announcesTheFollowerRole_andTheState();
    void stopBeforeStart_isANoOp_andStartStillWorks();
    void start_afterStopped_runsAgainOnTheSameData();
    void listenPortZero_theChosenPortIsAnnounced();
    void destroyingTheLeader_handsLeadershipOver();
    void stop_isBoundedEvenWhenTheWorkerHangs();
    void manyRestarts_everyWriteAppliesOnce();
    void errors_areKeptForTheGetters();
    void results_areGadgets();
};

void TestDEngineHardening::continuationWithoutContext_runsOnTheOwnerThread()
{
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e && e->waitForReady(Long));
    QThread *ranOn = nullptr;
    bool engineUsable = false;
    // No context object: before, this ran on the Raft thread (where a slow continuation stalls
    // consensus, and calling the engine races its owner).
    e->put("k", "v").then([&](const DEngineResult &r) {
        ranOn = QThread::currentThread();
        engineUsable = r.ok() && e->isReady();
    });
    QTRY_VERIFY_WITH_TIMEOUT(ranOn != nullptr, Long);
    QCOMPARE(ranOn, QThread::currentThread());
    QVERIFY(engineUsable);
    // And waiting for one call on the owner thread works.
    QCOMPARE(DEngine::waitForResult(e->get("k")).value, QByteArray("v"));
}

void TestDEngineHardening::busy_isDecidedAtTheCall_byCallsAndBytes()
{
    Cluster c(1);
    DEngineConfig config = c.config(1);
    config.maxPendingRequests = 3;
    config.maxPendingBytes = 1000;
    DEngine *e = c.make(1, &config);
    QVERIFY(e->start());
    QVERIFY(e->waitForReady(Long));
    // Calls in flight: the fourth is refused at the call (its future is finished already).
    QList<QFuture<DEngineResult>> calls;
    for (int i = 0; i < 3; ++i)
        calls << e->put(QByteArray::number(i), "v");
    const QFuture<DEngineResult> fourth = e->put("4", "v");
    QVERIFY(fourth.isFinished());
    QCOMPARE(fourth.result().status, Status::Busy);
    for (const auto &f : calls)
        QVERIFY(await(f).ok());
    // Bytes in flight: 600 + 600 is over 1000; one call alone may be larger.
    const QFuture<DEngineResult> first = e->put("a", QByteArray(600, 'x'));
    const QFuture<DEngineResult> second = e->put("b", QByteArray(600, 'y'));
    QVERIFY(second.isFinished());
    QCOMPARE(second.result().status, Status::Busy);
    QVERIFY2(second.result().message.contains(QStringLiteral("maxPendingBytes")), qPrintable(second.result().message));
    QVERIFY(await(first).ok());
    QVERIFY(await(e->put("c", QByteArray(2000, 'z'))).ok()); // alone, over the bound
}

void TestDEngineHardening::leader_doesNotProposeItsOwnPendingWriteAgain()
{
    // Without check-quorum a leader whose followers are gone stays leader: its write waits in its
    // own log for the request timeout (many election timeouts). It used to be proposed again every
    // two election timeouts, each time as a new log entry.
    Cluster c(3);
    for (NodeId id : {1, 2, 3}) {
        DEngineConfig config = c.config(id);
        config.checkQuorum = false;
        config.requestTimeoutMs = 2000; // 20 election timeouts
        QVERIFY(c.make(id, &config)->start());
    }
    QTRY_VERIFY_WITH_TIMEOUT(c.allReady() && c.agreedLeader() != 0, Long);
    const NodeId leader = c.agreedLeader();
    for (NodeId id : {1, 2, 3}) {
        if (id == leader)
            continue;
        c.node(id)->stop();
        QVERIFY(c.node(id)->waitForStopped(Long));
    }
    const QByteArray marker = "unique-marker-" + QByteArray::number(QRandomGenerator::global()->generate64());
    const DEngineResult r = await(c.node(leader)->put("k", marker));
    QCOMPARE(r.status, Status::Timeout);
    const QString dir = c.node(leader)->config().dataDirectory;
    c.node(leader)->stop();
    QVERIFY(c.node(leader)->waitForStopped(Long));
    QCOMPARE(copiesInLog(dir, marker), 1);
}

void TestDEngineHardening::storageFailure_writeThatReachedTheLeader_isAnUnknownOutcome()
{
    // A file-size limit below where the log writes next makes the next write fail (EFBIG), after the
    // leader (this node) has taken the write into its log.
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e && e->waitForReady(Long));
    rlimit old{};
    QCOMPARE(getrlimit(RLIMIT_FSIZE, &old), 0);
    const auto previous = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old;
    small.rlim_cur = 256 << 10;
    QCOMPARE(setrlimit(RLIMIT_FSIZE, &small), 0);
    DEngineResult last;
    for (int i = 0; i < 8 && (last.ok() || i == 0); ++i)
        last = await(e->put(QByteArray::number(i), QByteArray(100 << 10, 'v')));
    QCOMPARE(setrlimit(RLIMIT_FSIZE, &old), 0);
    std::signal(SIGXFSZ, previous);
    QCOMPARE(last.status, Status::Timeout); // before: StorageFailure, as if it could not have happened
    QVERIFY2(last.message.contains(QStringLiteral("may or may not")), qPrintable(last.message));
    QVERIFY(e->waitForStopped(Long));
    QCOMPARE(e->error(), DEngine::Error::StorageFailure);
}

void TestDEngineHardening::scan_isCappedAndPages()
{
    Cluster c(1);
    DEngineConfig config = c.config(1);
    config.maxScanItems = 5;
    DEngine *e = c.make(1, &config);
    QVERIFY(e->start());
    QVERIFY(e->waitForReady(Long));
    for (int i = 0; i < 12; ++i)
        QVERIFY(await(e->put("p/" + QByteArray::number(100 + i), "v")).ok());
    QVERIFY(await(e->put("q", "outside")).ok());
    const DEngineResult first = await(e->scan("p/")); // no limit of the caller's: the cap applies
    QVERIFY(first.ok());
    QCOMPARE(first.items.size(), 5);
    QCOMPARE(first.nextKey, QByteArray("p/105"));
    QList<QByteArray> keys;
    for (const DEngineKeyValue &kv : first.items)
        keys << kv.key;
    for (QByteArray from = first.nextKey; !from.isEmpty();) {
        const DEngineResult page = await(e->range(from, DEngine::prefixEnd("p/")));
        QVERIFY(page.ok());
        for (const DEngineKeyValue &kv : page.items)
            keys << kv.key;
        from = page.nextKey;
    }
    QCOMPARE(keys.size(), 12);
    QCOMPARE(keys.front(), QByteArray("p/100"));
    QCOMPARE(keys.back(), QByteArray("p/111"));
    QCOMPARE(DEngine::prefixEnd("p/"), QByteArray("p0"));
    QCOMPARE(DEngine::prefixEnd(QByteArray("a\xff", 2)), QByteArray("b"));
    QCOMPARE(DEngine::prefixEnd(QByteArray("\xff", 1)), QByteArray());
}

void TestDEngineHardening::start_announcesTheFollowerRole_andTheState()
{
    Cluster c(1);
    DEngine *e = c.make(1);
    QCOMPARE(e->state(), DEngine::State::Idle);
    QCOMPARE(e->role(), DEngine::Role::Stopped);
    QSignalSpy roles(e, &DEngine::roleChanged);
    QSignalSpy states(e, &DEngine::stateChanged);
    QVERIFY(e->start());
    QVERIFY(!roles.isEmpty());
    QCOMPARE(roles.first().at(0).value<DEngine::Role>(), DEngine::Role::Follower); // before: changed silently
    QCOMPARE(e->state(), DEngine::State::Running);
    QVERIFY(e->waitForReady(Long));
    e->stop();
    QVERIFY(e->waitForStopped(Long));
    QList<DEngine::State> seen;
    for (const QList<QVariant> &s : states)
        seen << s.at(0).value<DEngine::State>();
    QCOMPARE(seen, (QList<DEngine::State>{DEngine::State::Running, DEngine::State::Stopping, DEngine::State::Stopped}));
}

void TestDEngineHardening::stopBeforeStart_isANoOp_andStartStillWorks()
{
    Cluster c(1);
    DEngine *e = c.make(1);
    QSignalSpy stopping(e, &DEngine::stopping);
    e->stop();
    QCOMPARE(e->state(), DEngine::State::Idle);
    QCOMPARE(stopping.size(), 0);
    QVERIFY(e->start()); // before: refused, the object stuck in a state nothing announced
    QVERIFY(e->waitForReady(Long));
}

void TestDEngineHardening::start_afterStopped_runsAgainOnTheSameData()
{
    Cluster c(1);
    DEngine *e = c.startNode(1);
    QVERIFY(e && e->waitForReady(Long));
    QVERIFY(await(e->put("kept", "1")).ok());
    e->stop();
    QVERIFY(e->waitForStopped(Long));
    QSignalSpy ready(e, &DEngine::ready);
    QVERIFY(e->start()); // before: an engine ran once
    QVERIFY(e->waitForReady(Long));
    QCOMPARE(ready.size(), 1);
    QCOMPARE(await(e->get("kept")).value, QByteArray("1"));
    QCOMPARE(c.recorders[1]->count(QStringLiteral("ready")), 2);
    QCOMPARE(c.recorders[1]->count(QStringLiteral("stopped")), 1);
}

void TestDEngineHardening::listenPortZero_theChosenPortIsAnnounced()
{
    Cluster c(1);
    DEngineConfig config = c.config(1);
    config.peers = {{1, QStringLiteral("127.0.0.1:0")}};
    QCOMPARE(config.validate(), QString()); // before: port 0 was refused
    DEngine *e = c.make(1, &config);
    QSignalSpy ports(e, &DEngine::listeningPortChanged);
    QVERIFY(e->start());
    QVERIFY(e->waitForReady(Long));
    QCOMPARE(ports.size(), 1);
    QVERIFY(ports.first().at(0).value<quint16>() != 0);
    QCOMPARE(e->listeningPort(), ports.first().at(0).value<quint16>());
    e->stop();
    QVERIFY(e->waitForStopped(Long));
    QCOMPARE(e->listeningPort(), quint16(0));
}

void TestDEngineHardening::destroyingTheLeader_handsLeadershipOver()
{
    Cluster c(3);
    c.startAll();
    QTRY_VERIFY_WITH_TIMEOUT(c.allReady() && c.agreedLeader() != 0, Long);
    const NodeId leader = c.agreedLeader();
    static QStringList logged;
    logged.clear();
    const QtMessageHandler previous = qInstallMessageHandler([](QtMsgType, const QMessageLogContext &, const QString &text) { logged << text; });
    QLoggingCategory::setFilterRules(QStringLiteral("dengine.engine.info=true"));
    c.engines.erase(leader); // the destructor, not stop()
    qInstallMessageHandler(previous);
    QLoggingCategory::setFilterRules(QString());
    bool handedOver = false;
    for (const QString &line : logged)
        handedOver = handedOver || line.contains(QStringLiteral("handing leadership to node"));
    QVERIFY2(handedOver, qPrintable(logged.join(QLatin1Char('\n'))));
    QTRY_VERIFY_WITH_TIMEOUT(c.agreedLeader() != 0 && c.agreedLeader() != leader, Long);
}

void TestDEngineHardening::stop_isBoundedEvenWhenTheWorkerHangs()
{
    Cluster c(1);
    DEngineConfig config = c.config(1);
    config.stopTimeoutMs = 1000;
    auto gate = std::make_unique<Gate>();
    DEngine *e = c.make(1, &config);
    QVERIFY(e->setStateMachine(gate.get()));
    QVERIFY(e->start());
    QVERIFY(e->waitForReady(Long));
    const QFuture<DEngineResult> held = e->propose("hold");
    QVERIFY(gate->entered.tryAcquire(1, Long)); // the worker is inside apply(), and stays there
    QSignalSpy errors(e, &DEngine::errorOccurred);
    e->stop();
    QVERIFY(e->waitForStopped(Long)); // before: nothing until the worker came back
    QCOMPARE(e->state(), DEngine::State::Stopped);
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors.first().at(0).value<DEngine::Error>(), DEngine::Error::StorageFailure);
    gate->open.release(); // the worker left behind finishes on its own
    QTRY_VERIFY_WITH_TIMEOUT(held.isFinished(), Long);
    QTRY_VERIFY_WITH_TIMEOUT(lockFree(config.dataDirectory), Long); // and lets go of the directory
    c.engines.clear(); // before the gate goes
}

void TestDEngineHardening::manyRestarts_everyWriteAppliesOnce()
{
    Cluster c(1);
    DEngine *e = c.make(1);
    for (int round = 0; round < 12; ++round) {
        QVERIFY(e->start());
        QVERIFY(e->waitForReady(Long));
        QVERIFY(await(e->put("round/" + QByteArray::number(100 + round), "x")).ok());
        const DEngineResult all = await(e->scan("round/"));
        QCOMPARE(all.items.size(), round + 1);
        e->stop();
        QVERIFY(e->waitForStopped(Long));
    }
}

void TestDEngineHardening::errors_areKeptForTheGetters()
{
    Cluster c(1);
    DEngineConfig bad = c.config(1);
    bad.electionTicks = 1;
    DEngine *e = c.make(1, &bad);
    QVERIFY(!e->start());
    QCOMPARE(e->error(), DEngine::Error::ConfigurationError);
    QVERIFY(e->errorString().startsWith(QStringLiteral("electionTicks")));
}

// DEngineResult and its parts are gadgets: their fields read by name (QML, QVariant).
void TestDEngineHardening::results_areGadgets()
{
    DEngineResult r;
    r.status = Status::NotFound;
    r.revision = 7;
    r.items = {DEngineKeyValue{"k", "v"}};
    const QMetaObject &mo = DEngineResult::staticMetaObject;
    const auto read = [&](const char *name) { return mo.property(mo.indexOfProperty(name)).readOnGadget(&r); };
    QCOMPARE(read("status").value<DEngine::Status>(), Status::NotFound);
    QCOMPARE(read("revision").toULongLong(), 7ULL);
    QCOMPARE(read("ok").toBool(), false);
    const QList<DEngineKeyValue> items = read("items").value<QList<DEngineKeyValue>>();
    QCOMPARE(items.size(), 1);
    const QMetaObject &kv = DEngineKeyValue::staticMetaObject;
    QCOMPARE(kv.property(kv.indexOfProperty("key")).readOnGadget(&items[0]).toByteArray(), QByteArray("k"));
    QCOMPARE(QVariant::fromValue(r).value<DEngineResult>().revision, 7ULL);
    QCOMPARE(DEngineOperation::staticMetaObject.indexOfEnumerator("Kind") >= 0, true);
}

QTEST_GUILESS_MAIN(TestDEngineHardening)
#include "tst_dengine_hardening.moc"
