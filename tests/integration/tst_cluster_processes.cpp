// SPDX-License-Identifier: Apache-2.0
// The lifecycle contract (../shared/docs/lifecycle.md) with every node in a process of its own:
// three dengine-node processes on 127.0.0.1, driven through their stdin and read through their
// stdout (one line per lifecycle signal, one answer line per command; see dengine-node --help).
// Unlike the in-process tests, a node here can die for real (SIGKILL: no stop, no flush, no goodbye
// on its connections) and come back as a new process on the same data directory.
//
// Time is short ticks (20 ms, election timeout 10 ticks); every wait is a QTRY_* on what the
// processes printed, with a generous limit. Nothing sleeps. Timings (failover, stop) are printed
// with qInfo, never asserted.
#include "../auto/common/testports.h"

#include <QtCore/QElapsedTimer>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QProcess>
#include <QtCore/QTemporaryDir>
#include <QtNetwork/QTcpServer>
#include <QtTest/QtTest>

#include <algorithm>
#include <map>
#include <memory>

#ifndef DENGINE_NODE_PATH
#error "DENGINE_NODE_PATH must name the dengine-node executable"
#endif

using dengine::test::freePorts;
using NodeId = quint64;

namespace {

constexpr int Long = 30000; // ms: the limit of every wait

bool isLifecycleLine(const QString &line)
{
    static const QStringList words = {QStringLiteral("ready"),    QStringLiteral("leader"),  QStringLiteral("term"),
                                      QStringLiteral("first"),    QStringLiteral("stopping"), QStringLiteral("stopped"),
                                      QStringLiteral("error")};
    return words.contains(line.section(QLatin1Char(' '), 0, 0));
}

// One run of dengine-node: its process and everything it printed, split into lifecycle lines
// (with the time each arrived) and answers.
struct NodeRun {
    std::unique_ptr<QProcess> process;
    QStringList events;     // lifecycle lines, in order
    QList<qint64> eventAt;  // when each arrived (ms on the test's clock)
    QStringList answers;    // answer lines, in order (dengine-node answers in command order)
    QList<qint64> answerAt;
    QByteArray partial;
    QByteArray stderrText;
    bool finished = false;
    qint64 finishedAt = 0;
    int exitCode = -1;
    QProcess::ExitStatus exitStatus = QProcess::NormalExit;

    int count(const QString &line) const { return static_cast<int>(events.count(line)); }
    int indexOf(const QString &line, int from = 0) const { return static_cast<int>(events.indexOf(line, from)); }
    bool running() const { return process && !finished; }
    // The leader named by the last "leader" line at or after `from`; 0 when none.
    NodeId lastLeader(int from = 0) const
    {
        for (qsizetype i = events.size() - 1; i >= from; --i)
            if (events[i].startsWith(QLatin1String("leader ")))
                return events[i].section(QLatin1Char(' '), 1, 1).toULongLong();
        return 0;
    }
    // Every "leader" line at or after `from`, as ids.
    QList<NodeId> leaders(int from = 0) const
    {
        QList<NodeId> out;
        for (qsizetype i = from; i < events.size(); ++i)
            if (events[i].startsWith(QLatin1String("leader ")))
                out << events[i].section(QLatin1Char(' '), 1, 1).toULongLong();
        return out;
    }
    // The index of the "first" line that comes right after "ready" among the lifecycle lines, or -1.
    qint64 firstAfterReady() const
    {
        const int r = indexOf(QStringLiteral("ready"));
        if (r < 0 || r + 1 >= events.size() || !events[r + 1].startsWith(QLatin1String("first ")))
            return -1;
        return events[r + 1].section(QLatin1Char(' '), 1, 1).toLongLong();
    }
};

// Three (or `size`) members on 127.0.0.1, each a dengine-node process with its own configuration
// file and data directory under one temporary directory.
class ProcessCluster {
public:
    explicit ProcessCluster(int size = 3)
    {
        const QList<quint16> ports = freePorts(size);
        for (int i = 0; i < size; ++i)
            m_peers.insert(NodeId(i + 1), QStringLiteral("127.0.0.1:%1").arg(ports[i]));
        m_clock.start();
    }
    ~ProcessCluster()
    {
        if (QTest::currentTestFailed())
            dump();
        // Whatever still runs after a failure: SIGKILL (the directory goes with the test anyway).
        for (auto &[id, run] : m_runs) {
            if (run && run->running()) {
                run->process->kill();
                run->process->waitForFinished(5000);
            }
        }
    }

    QJsonObject config(NodeId id) const
    {
        QJsonObject peers;
        for (auto it = m_peers.cbegin(); it != m_peers.cend(); ++it)
            peers.insert(QString::number(it.key()), it.value());
        QJsonObject o;
        o.insert(QStringLiteral("nodeId"), qint64(id));
        o.insert(QStringLiteral("clusterId"), 7);
        o.insert(QStringLiteral("dataDirectory"), m_dir.filePath(QStringLiteral("node%1").arg(id)));
        o.insert(QStringLiteral("peers"), peers);
        o.insert(QStringLiteral("tickIntervalMs"), 20);
        o.insert(QStringLiteral("electionTicks"), 10);
        o.insert(QStringLiteral("heartbeatTicks"), 1);
        o.insert(QStringLiteral("requestTimeoutMs"), 5000);
        o.insert(QStringLiteral("stopTimeoutMs"), 5000);
        o.insert(QStringLiteral("insecure"), true); // one machine; TLS has its own tests
        return o;
    }
    QString writeConfig(NodeId id, const QJsonObject &config) const
    {
        const QString path = m_dir.filePath(QStringLiteral("node%1.json").arg(id));
        QFile f(path);
        if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate))
            qFatal("cannot write %s", qPrintable(path));
        f.write(QJsonDocument(config).toJson());
        return path;
    }

    // Starts a new process for `id` (a restart when one ran before: the same data directory).
    NodeRun &start(NodeId id, const QJsonObject *custom = nullptr) { return startWithFile(id, writeConfig(id, custom ? *custom : config(id))); }
    NodeRun &startWithFile(NodeId id, const QString &configPath)
    {
        if (auto old = m_runs.find(id); old != m_runs.end() && old->second)
            m_past.push_back(std::move(old->second)); // keep its output for dump()
        auto run = std::make_unique<NodeRun>();
        NodeRun *r = run.get();
        r->process = std::make_unique<QProcess>();
        QProcess *p = r->process.get();
        p->setProgram(QStringLiteral(DENGINE_NODE_PATH));
        p->setArguments({QStringLiteral("--config"), configPath});
        p->setProcessChannelMode(QProcess::SeparateChannels);
        QObject::connect(p, &QProcess::readyReadStandardOutput, p, [this, r, p] {
            r->partial += p->readAllStandardOutput();
            qsizetype nl;
            while ((nl = r->partial.indexOf('\n')) >= 0) {
                const QString line = QString::fromUtf8(r->partial.left(nl));
                r->partial.remove(0, nl + 1);
                if (isLifecycleLine(line)) {
                    r->events << line;
                    r->eventAt << m_clock.elapsed();
                } else {
                    r->answers << line;
                    r->answerAt << m_clock.elapsed();
                }
            }
        });
        QObject::connect(p, &QProcess::readyReadStandardError, p, [r, p] { r->stderrText += p->readAllStandardError(); });
        QObject::connect(p, &QProcess::finished, p, [this, r](int code, QProcess::ExitStatus status) {
            r->finished = true;
            r->finishedAt = m_clock.elapsed();
            r->exitCode = code;
            r->exitStatus = status;
        });
        QObject::connect(p, &QProcess::errorOccurred, p, [r](QProcess::ProcessError e) {
            if (e == QProcess::FailedToStart)
                r->finished = true;
        });
        p->start();
        m_runs[id] = std::move(run);
        return *r;
    }
    void startAll()
    {
        for (NodeId id : m_peers.keys())
            start(id);
    }

    NodeRun &node(NodeId id) { return *m_runs.at(id); }
    QList<NodeId> ids() const { return m_peers.keys(); }
    const QMap<NodeId, QString> &peers() const { return m_peers; }
    qint64 now() const { return m_clock.elapsed(); }

    bool allReady(const QList<NodeId> &which) const
    {
        for (NodeId id : which)
            if (m_runs.at(id)->count(QStringLiteral("ready")) == 0)
                return false;
        return true;
    }
    // The leader the given nodes' last "leader" lines (at or after their `from` marks) agree on, or 0.
    NodeId agreedLeader(const QList<NodeId> &which, const std::map<NodeId, int> &from = {}) const
    {
        NodeId leader = 0;
        for (NodeId id : which) {
            const auto f = from.find(id);
            const NodeId l = m_runs.at(id)->lastLeader(f == from.end() ? 0 : f->second);
            if (l == 0 || (leader != 0 && l != leader))
                return 0;
            leader = l;
        }
        return leader;
    }

    // Sends one command and returns its answer line ("" when none came within the limit).
    QString command(NodeId id, const QString &line)
    {
        NodeRun &r = node(id);
        const qsizetype before = r.answers.size();
        r.process->write(line.toUtf8() + '\n');
        [&] { QTRY_VERIFY2_WITH_TIMEOUT(r.answers.size() > before || r.finished, qPrintable(QStringLiteral("no answer to \"%1\" from node %2").arg(line).arg(id)), Long); }();
        return r.answers.value(before);
    }

    // Stops every running node with `stop` and checks each exits 0 after "stopping" and "stopped".
    void stopAll()
    {
        std::vector<NodeRun *> stopped;
        for (auto &[id, r] : m_runs) {
            if (r->running()) {
                r->process->write("stop\n");
                stopped.push_back(r.get());
            }
        }
        for (NodeRun *r : stopped) {
            QTRY_VERIFY_WITH_TIMEOUT(r->finished, Long);
            QCOMPARE(r->exitStatus, QProcess::NormalExit);
            QCOMPARE(r->exitCode, 0);
        }
    }

    void dump() const
    {
        const auto show = [](NodeId id, const NodeRun &r, const char *what) {
            qInfo().noquote() << QStringLiteral("---- node %1 (%2): exit %3/%4").arg(id).arg(QLatin1String(what)).arg(r.exitCode).arg(r.exitStatus == QProcess::NormalExit ? QLatin1String("normal") : QLatin1String("crash"));
            qInfo().noquote() << "  events:" << r.events.join(QStringLiteral(" | "));
            qInfo().noquote() << "  answers:" << r.answers.join(QStringLiteral(" | "));
            qInfo().noquote() << "  stderr (last 4000 bytes):\n" << QString::fromUtf8(r.stderrText.right(4000));
        };
        for (const auto &r : m_past)
            show(0, *r, "an earlier run");
        for (const auto &[id, r] : m_runs)
            show(id, *r, "last run");
    }

private:
    QTemporaryDir m_dir;
    QMap<NodeId, QString> m_peers;
    QElapsedTimer m_clock;
    std::map<NodeId, std::unique_ptr<NodeRun>> m_runs;
    std::vector<std::unique_ptr<NodeRun>> m_past;
};

// "ok 12" -> 12; "value 12 x" -> 12; anything else -> 0.
quint64 revisionOf(const QString &answer) { return answer.section(QLatin1Char(' '), 1, 1).toULongLong(); }

} // namespace

class TestClusterProcesses : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void threeProcesses_readyOnce_sameFirstCommit_agreeOnLeader();
    void followerPut_isForwarded_linearizableGetOnAnotherProcess();
    void leaderKilled_survivorsElectANewLeader_andTakeWrites();
    void killedLeader_restartsOnItsDataDirectory_andServesAllData();
    void stopCommand_stoppingThenStopped_exitsZero();
    void endOfStdin_stopsTheNode();
    void peersAllDown_neverReady_putFailsNoQuorum_stopIsPrompt();
    void startFailure_exitCodeOne_errorOnStderr();

private:
    // Starts three nodes and waits for all to be ready and to agree on a leader; returns it (0 on failure).
    NodeId startReadyCluster(ProcessCluster &c);
    // Kills (SIGKILL) the leader and waits for the two survivors to agree on a new one, which it
    // returns. Checks each survivor said "leader 0" first and the new leader last.
    NodeId killLeaderAndFailOver(ProcessCluster &c, NodeId old, qint64 *killedAt);
};

void TestClusterProcesses::initTestCase()
{
    QVERIFY2(QFileInfo(QStringLiteral(DENGINE_NODE_PATH)).isExecutable(), DENGINE_NODE_PATH " is not built");
}

NodeId TestClusterProcesses::startReadyCluster(ProcessCluster &c)
{
    c.startAll();
    NodeId leader = 0;
    [&] {
        QTRY_VERIFY_WITH_TIMEOUT(c.allReady(c.ids()), Long);
        QTRY_VERIFY_WITH_TIMEOUT(c.agreedLeader(c.ids()) != 0, Long);
        leader = c.agreedLeader(c.ids());
    }();
    return leader;
}

NodeId TestClusterProcesses::killLeaderAndFailOver(ProcessCluster &c, NodeId old, qint64 *killedAt)
{
    QList<NodeId> survivors = c.ids();
    survivors.removeOne(old);
    std::map<NodeId, int> mark;
    for (NodeId id : survivors)
        mark[id] = static_cast<int>(c.node(id).events.size());

    *killedAt = c.now();
    c.node(old).process->kill(); // SIGKILL: no stop(), no leadership transfer, connections reset
    NodeId now = 0;
    [&] {
        QTRY_VERIFY_WITH_TIMEOUT(c.node(old).finished, Long);
        QCOMPARE(c.node(old).exitStatus, QProcess::CrashExit);
        QTRY_VERIFY_WITH_TIMEOUT(c.agreedLeader(survivors, mark) != 0 && c.agreedLeader(survivors, mark) != old, Long);
        now = c.agreedLeader(survivors, mark);
        qint64 elected = 0;
        for (NodeId id : survivors) {
            const NodeRun &r = c.node(id);
            const QList<NodeId> seen = r.leaders(mark[id]);
            // The old leader goes (0) before the new one comes; the new one is the last word.
            QVERIFY2(!seen.isEmpty(), "no leader line after the leader was killed");
            QCOMPARE(seen.first(), NodeId(0));
            QCOMPARE(seen.last(), now);
            elected = std::max(elected, r.eventAt[r.events.lastIndexOf(QStringLiteral("leader %1").arg(now))]);
        }
        qInfo("failover: node %llu killed; both survivors named node %llu after %lld ms", old, now, elected - *killedAt);
    }();
    return now;
}

void TestClusterProcesses::threeProcesses_readyOnce_sameFirstCommit_agreeOnLeader()
{
    ProcessCluster c;
    const NodeId leader = startReadyCluster(c);
    QVERIFY(leader != 0);
    qint64 first = -1;
    for (NodeId id : c.ids()) {
        NodeRun &r = c.node(id);
        // "first <i>" comes right after "ready" (wait for it: it may still be on its way).
        QTRY_VERIFY_WITH_TIMEOUT(r.indexOf(QStringLiteral("ready")) + 1 < r.events.size(), Long);
        QCOMPARE(r.count(QStringLiteral("ready")), 1);
        const qint64 i = r.firstAfterReady();
        QVERIFY2(i > 0, qPrintable(QStringLiteral("node %1: no \"first\" right after \"ready\": %2").arg(id).arg(r.events.join(QStringLiteral(" | ")))));
        if (first < 0)
            first = i;
        QCOMPARE(i, first); // the same entry everywhere: the leader's first of its term
        QCOMPARE(r.count(QStringLiteral("error")), 0);
    }
    // Agreement holds, and every node still says ready once.
    QCOMPARE(c.agreedLeader(c.ids()), leader);
    QCOMPARE(c.command(leader, QStringLiteral("status")).section(QLatin1Char(' '), 5, 6), QStringLiteral("role Leader"));
    c.stopAll();
    for (NodeId id : c.ids())
        QCOMPARE(c.node(id).count(QStringLiteral("ready")), 1);
}

void TestClusterProcesses::followerPut_isForwarded_linearizableGetOnAnotherProcess()
{
    ProcessCluster c;
    const NodeId leader = startReadyCluster(c);
    QVERIFY(leader != 0);
    const NodeId follower = leader == 1 ? 2 : 1;
    const NodeId other = 6 - leader - follower;

    const QString w = c.command(follower, QStringLiteral("put from-follower x1"));
    QVERIFY2(w.startsWith(QLatin1String("ok ")), qPrintable(w));
    const quint64 rev = revisionOf(w);
    QVERIFY(rev > 0);
    // Read-your-writes on the node that took it, without a quorum round.
    QCOMPARE(c.command(follower, QStringLiteral("get from-follower local")).section(QLatin1Char(' '), 2), QStringLiteral("x1"));
    // A linearizable read on the other follower, and on the leader, sees it.
    for (NodeId id : {other, leader}) {
        const QString g = c.command(id, QStringLiteral("get from-follower linearizable"));
        QVERIFY2(g.startsWith(QLatin1String("value ")), qPrintable(g));
        QCOMPARE(g.section(QLatin1Char(' '), 2), QStringLiteral("x1"));
        QVERIFY(revisionOf(g) >= rev);
    }
    QVERIFY(c.command(other, QStringLiteral("get never-written")).startsWith(QLatin1String("notfound ")));
    c.stopAll();
}

void TestClusterProcesses::leaderKilled_survivorsElectANewLeader_andTakeWrites()
{
    ProcessCluster c;
    const NodeId old = startReadyCluster(c);
    QVERIFY(old != 0);
    QVERIFY(c.command(old, QStringLiteral("put before 1")).startsWith(QLatin1String("ok ")));

    qint64 killedAt = 0;
    const NodeId now = killLeaderAndFailOver(c, old, &killedAt);
    QVERIFY(now != 0 && now != old);
    // A write through the survivor that is not the leader (forwarded), then read on the leader.
    const NodeId survivor = 6 - old - now;
    const qint64 askedAt = c.now();
    const QString w = c.command(survivor, QStringLiteral("put after 2"));
    QVERIFY2(w.startsWith(QLatin1String("ok ")), qPrintable(w));
    const qint64 writtenAt = c.node(survivor).answerAt.last();
    qInfo("failover: kill -> put through a survivor succeeded: %lld ms (the put itself: %lld ms)", writtenAt - killedAt, writtenAt - askedAt);
    QCOMPARE(c.command(now, QStringLiteral("get before")).section(QLatin1Char(' '), 2), QStringLiteral("1"));
    QCOMPARE(c.command(now, QStringLiteral("get after")).section(QLatin1Char(' '), 2), QStringLiteral("2"));
    // The survivors were ready all along: no second "ready" in one run.
    QCOMPARE(c.node(now).count(QStringLiteral("ready")), 1);
    QCOMPARE(c.node(survivor).count(QStringLiteral("ready")), 1);
    c.stopAll();
}

void TestClusterProcesses::killedLeader_restartsOnItsDataDirectory_andServesAllData()
{
    ProcessCluster c;
    const NodeId old = startReadyCluster(c);
    QVERIFY(old != 0);
    for (int i = 0; i < 20; ++i)
        QVERIFY(c.command(NodeId(i % 3 + 1), QStringLiteral("put before/%1 b%1").arg(i)).startsWith(QLatin1String("ok ")));
    qint64 killedAt = 0;
    const NodeId now = killLeaderAndFailOver(c, old, &killedAt);
    QVERIFY(now != 0);
    const NodeId survivor = 6 - old - now;
    for (int i = 0; i < 20; ++i)
        QVERIFY(c.command(i % 2 ? now : survivor, QStringLiteral("put after/%1 a%1").arg(i)).startsWith(QLatin1String("ok ")));
    const QString last = c.command(now, QStringLiteral("put after/last z"));
    QVERIFY(last.startsWith(QLatin1String("ok ")));

    // A new process on the same data directory (the lock died with the old one).
    const qint64 restartedAt = c.now();
    NodeRun &again = c.start(old);
    QTRY_VERIFY_WITH_TIMEOUT(again.count(QStringLiteral("ready")) == 1 || again.finished, Long);
    QVERIFY2(!again.finished, qPrintable(QString::fromUtf8(again.stderrText)));
    QTRY_VERIFY_WITH_TIMEOUT(again.firstAfterReady() > 0, Long);
    qInfo("restart: node %llu ready again %lld ms after its process started; it said: %s", old,
          again.eventAt[again.indexOf(QStringLiteral("ready"))] - restartedAt, qPrintable(again.events.join(QStringLiteral(" | "))));
    QTRY_VERIFY_WITH_TIMEOUT(c.agreedLeader(c.ids()) != 0, Long); // it follows the survivors' leader
    QCOMPARE(again.count(QStringLiteral("error")), 0);

    for (int i = 0; i < 20; i += 3) {
        const QString b = c.command(old, QStringLiteral("get before/%1 linearizable").arg(i));
        QCOMPARE(b, QStringLiteral("value %1 b%2").arg(revisionOf(b)).arg(i));
        const QString a = c.command(old, QStringLiteral("get after/%1 linearizable").arg(i));
        QCOMPARE(a, QStringLiteral("value %1 a%2").arg(revisionOf(a)).arg(i));
    }
    const QString g = c.command(old, QStringLiteral("get after/last linearizable"));
    QCOMPARE(g.section(QLatin1Char(' '), 2), QStringLiteral("z"));
    QVERIFY(revisionOf(g) >= revisionOf(last));
    // And it takes writes again, which the others see.
    QVERIFY(c.command(old, QStringLiteral("put back yes")).startsWith(QLatin1String("ok ")));
    QCOMPARE(c.command(survivor, QStringLiteral("get back")).section(QLatin1Char(' '), 2), QStringLiteral("yes"));
    c.stopAll();
}

void TestClusterProcesses::stopCommand_stoppingThenStopped_exitsZero()
{
    ProcessCluster c;
    const NodeId leader = startReadyCluster(c);
    QVERIFY(leader != 0);
    QVERIFY(c.command(leader, QStringLiteral("put k v")).startsWith(QLatin1String("ok ")));

    // Stop the leader: the contract has it hand leadership over first; either way the process
    // must say stopping, then stopped, and exit 0 within the limit.
    QList<NodeId> survivors = c.ids();
    survivors.removeOne(leader);
    std::map<NodeId, int> mark;
    for (NodeId id : survivors)
        mark[id] = static_cast<int>(c.node(id).events.size());
    NodeRun &r = c.node(leader);
    const qint64 stopAt = c.now();
    r.process->write("stop\n");
    QTRY_VERIFY_WITH_TIMEOUT(r.finished, Long);
    qInfo("stop: the leader's process exited %lld ms after \"stop\"", r.finishedAt - stopAt);
    QCOMPARE(r.exitStatus, QProcess::NormalExit);
    QCOMPARE(r.exitCode, 0);
    QCOMPARE(r.count(QStringLiteral("stopping")), 1);
    QCOMPARE(r.count(QStringLiteral("stopped")), 1);
    QVERIFY(r.indexOf(QStringLiteral("stopping")) < r.indexOf(QStringLiteral("stopped")));
    QCOMPARE(r.events.last(), QStringLiteral("stopped"));
    QCOMPARE(r.count(QStringLiteral("ready")), 1);
    QCOMPARE(r.count(QStringLiteral("error")), 0);

    // The others go on under a new leader.
    QTRY_VERIFY_WITH_TIMEOUT(c.agreedLeader(survivors, mark) != 0 && c.agreedLeader(survivors, mark) != leader, Long);
    const NodeId now = c.agreedLeader(survivors, mark);
    const qint64 elected = c.node(now).eventAt[c.node(now).events.lastIndexOf(QStringLiteral("leader %1").arg(now))];
    qInfo("stop: node %llu named the next leader (itself) %lld ms after \"stop\"", now, elected - stopAt);
    QCOMPARE(c.command(survivors.first(), QStringLiteral("get k")).section(QLatin1Char(' '), 2), QStringLiteral("v"));
    c.stopAll();
}

void TestClusterProcesses::endOfStdin_stopsTheNode()
{
    ProcessCluster c;
    const NodeId leader = startReadyCluster(c);
    QVERIFY(leader != 0);
    const NodeId follower = leader == 1 ? 2 : 1;
    NodeRun &r = c.node(follower);
    r.process->closeWriteChannel(); // EOF on its stdin
    QTRY_VERIFY_WITH_TIMEOUT(r.finished, Long);
    QCOMPARE(r.exitStatus, QProcess::NormalExit);
    QCOMPARE(r.exitCode, 0);
    QVERIFY(r.indexOf(QStringLiteral("stopping")) >= 0);
    QVERIFY(r.indexOf(QStringLiteral("stopping")) < r.indexOf(QStringLiteral("stopped")));
    c.stopAll();
}

void TestClusterProcesses::peersAllDown_neverReady_putFailsNoQuorum_stopIsPrompt()
{
    ProcessCluster c; // three members configured; only node 1 ever runs
    QJsonObject cfg = c.config(1);
    cfg.insert(QStringLiteral("requestTimeoutMs"), 1000);
    NodeRun &r = c.start(1, &cfg);

    const qint64 putAt = c.now();
    const QString w = c.command(1, QStringLiteral("put k v"));
    QVERIFY2(w.startsWith(QLatin1String("fail NoQuorum ")), qPrintable(w));
    qInfo("no quorum: the put failed %lld ms after the process was started with it (requestTimeoutMs 1000)", r.answerAt.last() - putAt);
    QVERIFY(c.command(1, QStringLiteral("get k")).startsWith(QLatin1String("fail NoQuorum ")));
    QVERIFY(c.command(1, QStringLiteral("get k local")).startsWith(QLatin1String("notfound ")));
    QCOMPARE(r.count(QStringLiteral("ready")), 0); // over two request timeouts alone: never ready

    const qint64 stopAt = c.now();
    r.process->write("stop\n");
    QTRY_VERIFY_WITH_TIMEOUT(r.finished, Long);
    qInfo("no quorum: the process exited %lld ms after \"stop\"", r.finishedAt - stopAt);
    QCOMPARE(r.exitStatus, QProcess::NormalExit);
    QCOMPARE(r.exitCode, 0);
    QVERIFY(r.indexOf(QStringLiteral("stopping")) >= 0);
    QVERIFY(r.indexOf(QStringLiteral("stopping")) < r.indexOf(QStringLiteral("stopped")));
    QCOMPARE(r.count(QStringLiteral("ready")), 0);
    QCOMPARE(r.count(QStringLiteral("error")), 0);
}

void TestClusterProcesses::startFailure_exitCodeOne_errorOnStderr()
{
    ProcessCluster c;
    // The port is taken: the engine says AddressInUse, stops, and the process exits 1.
    QTcpServer squatter;
    const quint16 port = static_cast<quint16>(c.peers().value(1).section(QLatin1Char(':'), 1).toUInt());
    QVERIFY(squatter.listen(QHostAddress::LocalHost, port));
    NodeRun &inUse = c.start(1);
    QTRY_VERIFY_WITH_TIMEOUT(inUse.finished, Long);
    QCOMPARE(inUse.exitStatus, QProcess::NormalExit);
    QCOMPARE(inUse.exitCode, 1);
    QVERIFY2(inUse.indexOf(QStringLiteral("stopped")) >= 0, qPrintable(inUse.events.join(QStringLiteral(" | "))));
    QVERIFY(inUse.events.first().startsWith(QLatin1String("error AddressInUse ")));
    QVERIFY(inUse.stderrText.contains("AddressInUse"));
    QVERIFY(inUse.stderrText.contains(QByteArray::number(port)));
    QCOMPARE(inUse.count(QStringLiteral("ready")), 0);

    // An invalid configuration (no dataDirectory; DEngineConfig::fromFile validates it): exit 1
    // before any engine exists, the field named on stderr.
    QJsonObject bad = c.config(2);
    bad.remove(QStringLiteral("dataDirectory"));
    NodeRun &invalid = c.start(2, &bad);
    QTRY_VERIFY_WITH_TIMEOUT(invalid.finished, Long);
    QCOMPARE(invalid.exitStatus, QProcess::NormalExit);
    QCOMPARE(invalid.exitCode, 1);
    QVERIFY(invalid.events.isEmpty());
    QVERIFY(invalid.stderrText.contains("dataDirectory"));

    // An unknown field: the same.
    QJsonObject unknown = c.config(3);
    unknown.insert(QStringLiteral("noSuchField"), 1);
    NodeRun &unreadable = c.start(3, &unknown);
    QTRY_VERIFY_WITH_TIMEOUT(unreadable.finished, Long);
    QCOMPARE(unreadable.exitCode, 1);
    QVERIFY(unreadable.events.isEmpty());
    QVERIFY(unreadable.stderrText.contains("noSuchField"));
}

QTEST_GUILESS_MAIN(TestClusterProcesses)
#include "tst_cluster_processes.moc"
