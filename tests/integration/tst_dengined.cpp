// SPDX-License-Identifier: Apache-2.0
// The standalone deployment: three dengined processes on 127.0.0.1 and the dengine command line.
// Every call through any member, human and JSON output, exit codes a script can use, a SIGTERM of
// the leader (it hands over and exits 0), a SIGKILL of the new leader (the survivor and a restarted
// member go on), and bad configurations refused with exit status 2. Every wait is a QTRY_* on what
// the processes printed or how they exited; nothing sleeps.
#include "denginedcluster.h"

#include <QtCore/QFile>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QProcess>
#include <QtCore/QTemporaryDir>
#include <QtTest/QtTest>

#include <csignal>
#include <map>
#include <memory>

#ifndef DENGINE_CLI_PATH
#error "DENGINE_CLI_PATH must name the dengine executable"
#endif

using dengine::test::DEnginedCluster;
using dengine::test::freePorts;
using NodeId = quint64;

namespace {

constexpr int Long = 30000;

struct Cli {
    int exitCode = -1;
    QString out;
    QString err;
};

} // namespace

class TestDEngined : public QObject {
    Q_OBJECT

private:
    // Three members, and room for a fourth that joins (its ports: index 3).
    DEnginedCluster m_cluster{3, 1};
    QStringList m_endpoints; // the members' client addresses (node 4 replaces a removed one)

    QString configPath(NodeId id) const { return m_cluster.configPath(id); }
    QString endpoints() const { return m_endpoints.join(QLatin1Char(',')); }
    static Cli cli(const QStringList &args, const QByteArray &input = {})
    {
        QProcess p;
        p.start(QStringLiteral(DENGINE_CLI_PATH), args);
        if (!input.isEmpty())
            p.write(input);
        p.closeWriteChannel();
        Cli r;
        if (!p.waitForFinished(Long))
            return r;
        r.exitCode = p.exitCode();
        r.out = QString::fromUtf8(p.readAllStandardOutput());
        r.err = QString::fromUtf8(p.readAllStandardError());
        return r;
    }
    Cli run(QStringList args, const QByteArray &input = {}) { return cli(QStringList{QStringLiteral("--endpoints"), endpoints()} + args, input); }
    // The leader every reachable member reports, or 0.
    NodeId leader()
    {
        const Cli s = run({QStringLiteral("--json"), QStringLiteral("status")});
        NodeId agreed = 0;
        for (const QString &line : s.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
            const QJsonObject o = QJsonDocument::fromJson(line.toUtf8()).object();
            if (o.contains(QStringLiteral("error")))
                continue;
            const NodeId l = o.value(QStringLiteral("leader")).toString().toULongLong();
            if (l == 0 || !o.value(QStringLiteral("ready")).toBool() || (agreed != 0 && l != agreed))
                return 0;
            agreed = l;
        }
        return agreed;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_cluster.isValid());
        m_endpoints = m_cluster.clientAddresses();
        QVERIFY(m_cluster.startAll());
        QTRY_VERIFY_WITH_TIMEOUT(leader() != 0, Long);
    }

    void cli_everyCommand_humanAndJson_withExitCodes()
    {
        Cli r = run({QStringLiteral("put"), QStringLiteral("greeting"), QStringLiteral("hello")});
        QCOMPARE(r.exitCode, 0);
        QVERIFY2(r.out.startsWith(QStringLiteral("OK (revision ")), qPrintable(r.out));
        // Through one member only, the last: a follower or the leader, it answers the same.
        r = cli({QStringLiteral("--endpoints"), m_cluster.clientAddress(3), QStringLiteral("get"), QStringLiteral("greeting")});
        QCOMPARE(r.exitCode, 0);
        QCOMPARE(r.out, QStringLiteral("hello\n"));
        r = run({QStringLiteral("--json"), QStringLiteral("get"), QStringLiteral("greeting")});
        const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(o.value(QStringLiteral("value")).toString(), QStringLiteral("hello"));
        QCOMPARE(o.value(QStringLiteral("status")).toString(), QStringLiteral("Ok"));
        // The key's history, and a compare and swap on it (txn).
        const QString modRevision = o.value(QStringLiteral("modRevision")).toString();
        QVERIFY(modRevision.toULongLong() > 0);
        QCOMPARE(o.value(QStringLiteral("version")).toString(), QStringLiteral("1"));
        const QByteArray cas = "if mod greeting = " + modRevision.toUtf8() + "\nthen put greeting swapped\nelse put cas lost\n";
        r = run({QStringLiteral("txn")}, cas);
        QCOMPARE(r.exitCode, 0);
        QVERIFY2(r.out.startsWith(QStringLiteral("SUCCEEDED")), qPrintable(r.out));
        r = run({QStringLiteral("--json"), QStringLiteral("txn")}, cas);
        QCOMPARE(QJsonDocument::fromJson(r.out.toUtf8()).object().value(QStringLiteral("succeeded")).toBool(true), false);
        QCOMPARE(run({QStringLiteral("get"), QStringLiteral("cas")}).out, QStringLiteral("lost\n"));
        QCOMPARE(run({QStringLiteral("get"), QStringLiteral("greeting")}).out, QStringLiteral("swapped\n"));
        QCOMPARE(run({QStringLiteral("txn")}, "if size greeting = 1\n").exitCode, 2);
        QCOMPARE(run({QStringLiteral("del"), QStringLiteral("cas")}).exitCode, 0);
        QCOMPARE(run({QStringLiteral("get"), QStringLiteral("absent")}).exitCode, 1);

        r = run({QStringLiteral("batch")}, "put fruit/apple red\nput fruit/banana yellow\n\ndel greeting\n");
        QCOMPARE(r.exitCode, 0);
        r = run({QStringLiteral("scan"), QStringLiteral("fruit/")});
        QCOMPARE(r.out, QStringLiteral("fruit/apple red\nfruit/banana yellow\n"));
        r = run({QStringLiteral("range"), QStringLiteral("fruit/b"), QStringLiteral("fruit/c"), QStringLiteral("--json")});
        QCOMPARE(QJsonDocument::fromJson(r.out.toUtf8()).object().value(QStringLiteral("items")).toArray().size(), 1);
        r = run({QStringLiteral("scan"), QStringLiteral("fruit/"), QStringLiteral("--limit"), QStringLiteral("1")});
        QCOMPARE(r.out, QStringLiteral("fruit/apple red\n"));
        QVERIFY2(r.err.contains(QStringLiteral("more keys from fruit/banana")), qPrintable(r.err));
        QCOMPARE(run({QStringLiteral("get"), QStringLiteral("greeting")}).exitCode, 1);
        QCOMPARE(run({QStringLiteral("del"), QStringLiteral("fruit/apple")}).exitCode, 0);

        r = run({QStringLiteral("status")});
        QCOMPARE(r.exitCode, 0);
        QCOMPARE(r.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts).size(), 3); // a line per member
        QCOMPARE(r.out.count(QStringLiteral("  ready  members 1,2,3")), 3);
        // One endpoint is enough: the members' client addresses are in the replicated book.
        QTRY_COMPARE_WITH_TIMEOUT(cli({QStringLiteral("--endpoints"), m_cluster.clientAddress(2), QStringLiteral("status")})
                                      .out.count(QStringLiteral("  ready  members 1,2,3")),
                                  3, Long);

        // What a script can tell apart.
        QCOMPARE(run({QStringLiteral("frobnicate")}).exitCode, 2);
        QCOMPARE(run({QStringLiteral("put"), QStringLiteral("onlykey")}).exitCode, 2);
        QCOMPARE(run({QStringLiteral("batch")}, "explode now\n").exitCode, 2);
        r = cli({QStringLiteral("--endpoints"), QStringLiteral("127.0.0.1:%1").arg(freePorts(1)[0]), QStringLiteral("get"), QStringLiteral("x")});
        QCOMPARE(r.exitCode, 3);
        r = run({QStringLiteral("put"), QString(), QStringLiteral("v")}); // an empty key
        QCOMPARE(r.exitCode, 4);
        QVERIFY2(r.err.contains(QStringLiteral("InvalidArgument")), qPrintable(r.err));
    }

    void sigterm_leaderHandsOverAndExitsZero_sigkill_survivorsGoOn()
    {
        const NodeId first = leader();
        QVERIFY(first != 0);
        QProcess *p = m_cluster.nodes.at(first).get();
        ::kill(static_cast<pid_t>(p->processId()), SIGTERM);
        QTRY_COMPARE_WITH_TIMEOUT(p->state(), QProcess::NotRunning, Long);
        QCOMPARE(p->exitStatus(), QProcess::NormalExit);
        QCOMPARE(p->exitCode(), 0);
        // The others have a leader at once (a hand-over, not an election timeout) and take writes.
        QTRY_VERIFY_WITH_TIMEOUT(leader() != 0 && leader() != first, Long);
        QCOMPARE(run({QStringLiteral("put"), QStringLiteral("after"), QStringLiteral("sigterm")}).exitCode, 0);

        // It comes back on its data directory; then the new leader dies hard.
        m_cluster.start(first);
        QTRY_COMPARE_WITH_TIMEOUT(run({QStringLiteral("status")}).out.count(QStringLiteral("  ready  ")), 3, Long);
        const NodeId second = leader();
        QVERIFY(second != 0);
        m_cluster.nodes.at(second)->kill();
        QTRY_COMPARE_WITH_TIMEOUT(m_cluster.nodes.at(second)->state(), QProcess::NotRunning, Long);
        QTRY_VERIFY_WITH_TIMEOUT(leader() != 0 && leader() != second, Long);
        const Cli r = run({QStringLiteral("get"), QStringLiteral("after")});
        QCOMPARE(r.exitCode, 0);
        QCOMPARE(r.out, QStringLiteral("sigterm\n"));
        m_cluster.start(second);
        QTRY_COMPARE_WITH_TIMEOUT(run({QStringLiteral("status")}).out.count(QStringLiteral("  ready  ")), 3, Long);
    }

    // Membership from the command line: a fourth dengined joins (knowing one member), is added,
    // promoted, and the leader is removed: it hands over and exits 0; the data is all there.
    void membership_joinPromoteRemoveTheLeader_fromTheCommandLine()
    {
        QFile f(configPath(4));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(QStringLiteral(R"({"nodeId": 4, "dataDirectory": "%1", "insecure": true, "tickIntervalMs": 20, "electionTicks": 10, "join": true,
              "peers": {"4": "127.0.0.1:%2", "1": "127.0.0.1:%3"}, "server": {"clientAddress": "127.0.0.1:%4"}})")
                    .arg(m_cluster.dir.filePath(QStringLiteral("data4")))
                    .arg(m_cluster.peerPorts[3])
                    .arg(m_cluster.peerPorts[0])
                    .arg(m_cluster.clientPorts[3])
                    .toUtf8());
        f.close();
        m_cluster.start(4);
        QCOMPARE(run({QStringLiteral("put"), QStringLiteral("before"), QStringLiteral("join")}).exitCode, 0);
        const QString address4 = m_cluster.peerAddress(4);
        Cli r = run({QStringLiteral("member"), QStringLiteral("add"), QStringLiteral("4"), address4});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        // Promotion waits for it to catch up (a repeat is safe).
        QTRY_COMPARE_WITH_TIMEOUT(run({QStringLiteral("member"), QStringLiteral("promote"), QStringLiteral("4")}).exitCode, 0, Long);
        r = run({QStringLiteral("members")});
        QCOMPARE(r.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts).size(), 4);
        QTRY_VERIFY_WITH_TIMEOUT((r = run({QStringLiteral("members")}))
                                     .out.contains(QStringLiteral("4  peers %1  clients 127.0.0.1:%2  voter").arg(address4).arg(m_cluster.clientPorts[3])),
                                 Long);
        QCOMPARE(run({QStringLiteral("member"), QStringLiteral("promote"), QStringLiteral("9")}).exitCode, 4); // Refused: not a member
        // Node 4 answers clients, with everything written before it joined.
        const QString four = m_cluster.clientAddress(4);
        QTRY_COMPARE_WITH_TIMEOUT(cli({QStringLiteral("--endpoints"), four, QStringLiteral("get"), QStringLiteral("after")}).out,
                                  QStringLiteral("sigterm\n"), Long);

        const NodeId old = leader();
        QVERIFY(old != 0);
        r = run({QStringLiteral("member"), QStringLiteral("remove"), QString::number(old)});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QProcess *p = m_cluster.nodes.at(old).get();
        QTRY_COMPARE_WITH_TIMEOUT(p->state(), QProcess::NotRunning, Long);
        QCOMPARE(p->exitCode(), 0); // removed: a clean stop
        QTRY_VERIFY_WITH_TIMEOUT(leader() != 0 && leader() != old, Long);
        r = cli({QStringLiteral("--endpoints"), four, QStringLiteral("members")});
        QCOMPARE(r.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts).size(), 3);
        QCOMPARE(cli({QStringLiteral("--endpoints"), four, QStringLiteral("put"), QStringLiteral("after"), QStringLiteral("removal")}).exitCode, 0);
        QCOMPARE(cli({QStringLiteral("--endpoints"), four, QStringLiteral("get"), QStringLiteral("before")}).out, QStringLiteral("join\n"));
        m_endpoints[int(old - 1)] = four; // the endpoints now: the three members
    }

    void badConfigurations_exitTwo_aTakenClientPortExitsThree()
    {
        QProcess p;
        p.start(QStringLiteral(DENGINED_PATH), {});
        QVERIFY(p.waitForFinished(Long));
        QCOMPARE(p.exitCode(), 2); // no configuration
        QFile bad(m_cluster.dir.filePath(QStringLiteral("bad.json")));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write(R"({"nodeId": 9, "dataDirectory": "x", "insecure": true, "peers": {"9": "127.0.0.1:1"}, "server": {"colour": "red"}})");
        bad.close();
        p.start(QStringLiteral(DENGINED_PATH), {QStringLiteral("--config"), bad.fileName()});
        QVERIFY(p.waitForFinished(Long));
        QCOMPARE(p.exitCode(), 2);
        QVERIFY(QString::fromUtf8(p.readAllStandardError()).contains(QStringLiteral("unknown field \"colour\"")));
        // A node on TLS serves clients on TLS with its own files: missing ones are named (exit 1).
        QFile tls(m_cluster.dir.filePath(QStringLiteral("tls.json")));
        QVERIFY(tls.open(QIODevice::WriteOnly));
        tls.write(R"({"nodeId": 9, "dataDirectory": "x", "peers": {"9": "127.0.0.1:1"}, "tlsCaFile": "ca.pem",
                     "tlsCertificateFile": "n.pem", "tlsKeyFile": "n.key", "server": {"clientAddress": "127.0.0.1:1"}})");
        tls.close();
        p.start(QStringLiteral(DENGINED_PATH), {QStringLiteral("--config"), tls.fileName()});
        QVERIFY(p.waitForFinished(Long));
        QCOMPARE(p.exitCode(), 1);
        QVERIFY(QString::fromUtf8(p.readAllStandardError()).contains(QStringLiteral("ca.pem")));
        // A running member's client port is taken (by it): a second copy exits 3 before it opens anything.
        NodeId running = 0;
        for (const auto &[id, proc] : m_cluster.nodes)
            if (proc->state() == QProcess::Running)
                running = id;
        QVERIFY(running != 0);
        p.start(QStringLiteral(DENGINED_PATH), {QStringLiteral("--config"), configPath(running), QStringLiteral("--data-dir"),
                                                 m_cluster.dir.filePath(QStringLiteral("elsewhere"))});
        QVERIFY(p.waitForFinished(Long));
        QCOMPARE(p.exitCode(), 3);
    }
};

QTEST_GUILESS_MAIN(TestDEngined)
#include "tst_dengined.moc"
