// SPDX-License-Identifier: Apache-2.0
// The standalone deployment: three dengined processes on 127.0.0.1 and the dengine command line.
// Every call through any member, human and JSON output, exit codes a script can use, a SIGTERM of
// the leader (it hands over and exits 0), a SIGKILL of the new leader (the survivor and a restarted
// member go on), and bad configurations refused with exit status 2. Leases, sequential puts and
// watches from the command line (a watch read line by line from a running `dengine watch`) and
// through the members' HTTP gateways (etcd's lease calls; a /v3/watch stream read chunk by chunk;
// a watch from before a member's small history ends Compacted, in both). Every wait is a QTRY_* on
// what the processes printed, answered or how they exited, or a socket's bounded wait; nothing
// sleeps.
#include "denginedcluster.h"

#include <QtCore/QFile>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QProcess>
#include <QtCore/QTemporaryDir>
#include <QtNetwork/QTcpSocket>
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

QJsonObject jsonOf(const QString &line) { return QJsonDocument::fromJson(line.toUtf8()).object(); }
// "OK (revision N)", the first line of a write's answer: N.
quint64 revisionOf(const Cli &r) { return r.out.section(QLatin1Char('\n'), 0, 0).section(QStringLiteral("revision "), 1).chopped(1).toULongLong(); }
QString b64(const QByteArray &b) { return QString::fromLatin1(b.toBase64()); }

// A running command whose output is read as it comes (`dengine watch`, `lease keepalive --forever`).
struct Streaming {
    QProcess process;
    QByteArray out;
    // The whole lines printed so far.
    QStringList lines()
    {
        out += process.readAllStandardOutput();
        QStringList l = QString::fromUtf8(out.left(out.lastIndexOf('\n') + 1)).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        return l;
    }
};

struct HttpReply {
    int status = 0;
    QByteArray head;
    QByteArray body;
    QJsonObject json() const { return QJsonDocument::fromJson(body).object(); }
};

// One request on a connection of its own, as curl sends it (Connection: close): the whole answer.
HttpReply httpPost(quint16 port, const QByteArray &path, const QJsonObject &body)
{
    QTcpSocket s;
    s.connectToHost(QHostAddress::LocalHost, port);
    HttpReply r;
    if (!s.waitForConnected(Long))
        return r;
    const QByteArray b = QJsonDocument(body).toJson(QJsonDocument::Compact);
    s.write("POST " + path + " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
            + QByteArray::number(b.size()) + "\r\n\r\n" + b);
    QByteArray in;
    while (s.waitForReadyRead(Long)) // until the gateway closes the connection after its answer
        in += s.readAll();
    in += s.readAll();
    const qsizetype end = in.indexOf("\r\n\r\n");
    if (end < 0)
        return r;
    r.status = in.mid(9, 3).toInt();
    r.head = in.left(end);
    r.body = in.mid(end + 4);
    return r;
}

// A /v3/watch stream as a client reads it: the head, then one JSON message a line, each a chunk.
class WatchStream {
public:
    WatchStream(quint16 port, const QJsonObject &createRequest)
    {
        m_socket.connectToHost(QHostAddress::LocalHost, port);
        const QByteArray b = QJsonDocument(QJsonObject{{QStringLiteral("create_request"), createRequest}}).toJson(QJsonDocument::Compact);
        m_socket.write("POST /v3/watch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: " + QByteArray::number(b.size())
                       + "\r\n\r\n" + b);
    }
    // The messages ("result" objects) whole so far; `ended` once the last chunk came.
    QList<QJsonObject> messages()
    {
        m_in += m_socket.readAll();
        QList<QJsonObject> out;
        const qsizetype headEnd = m_in.indexOf("\r\n\r\n");
        if (headEnd < 0)
            return out;
        head = m_in.left(headEnd);
        qsizetype at = headEnd + 4;
        for (;;) {
            const qsizetype lineEnd = m_in.indexOf("\r\n", at);
            if (lineEnd < 0)
                break;
            bool ok = false;
            const qsizetype size = m_in.mid(at, lineEnd - at).toLongLong(&ok, 16);
            if (!ok || m_in.size() < lineEnd + 2 + size + 2)
                break;
            if (size == 0) {
                ended = true;
                break;
            }
            out << QJsonDocument::fromJson(m_in.mid(lineEnd + 2, size)).object().value(QStringLiteral("result")).toObject();
            at = lineEnd + 2 + size + 2;
        }
        return out;
    }
    bool closed() const { return m_socket.state() == QAbstractSocket::UnconnectedState; }
    void close() { m_socket.abort(); }
    QByteArray head;
    bool ended = false;

private:
    QTcpSocket m_socket;
    QByteArray m_in;
};

} // namespace

class TestDEngined : public QObject {
    Q_OBJECT

private:
    // Three members, and room for a fourth that joins (its ports: index 3).
    DEnginedCluster m_cluster{3, 1};
    QStringList m_endpoints; // the members' client addresses (node 4 replaces a removed one)
    QList<quint16> m_httpPorts = freePorts(3); // the founders' HTTP gateways

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
    quint16 httpPort(NodeId id) const { return m_httpPorts[int(id - 1)]; }
    static QString gatewayMetric(quint16 port, const QString &name)
    {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port);
        if (!s.waitForConnected(Long))
            return {};
        s.write("GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        QByteArray in;
        while (s.waitForReadyRead(Long))
            in += s.readAll();
        for (const QByteArray &line : in.split('\n'))
            if (line.startsWith(name.toUtf8() + ' '))
                return QString::fromUtf8(line.mid(name.size() + 1));
        return {};
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_cluster.isValid());
        m_endpoints = m_cluster.clientAddresses();
        // Every founder serves the HTTP gateway too.
        for (NodeId id = 1; id <= 3; ++id) {
            QVERIFY(m_cluster.writeConfig(id, {}, QStringLiteral(", \"httpAddress\": \"127.0.0.1:%1\"").arg(httpPort(id))));
            QVERIFY(m_cluster.start(id));
        }
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

    // Leases from the command line: a grant, keys attached (put --lease, batch and txn lines with
    // lease=, a sequential put), the TTL and the keys, a renewal, a revocation that deletes them
    // all; what is gone answers NotFound (exit 1). keepalive --forever prints each renewal until
    // SIGTERM (exit 0), and the lease expires once it stops.
    void cli_leases_grantAttachTtlRevoke_sequentialPuts()
    {
        Cli r = run({QStringLiteral("--json"), QStringLiteral("lease"), QStringLiteral("grant"), QStringLiteral("60000")});
        QCOMPARE(r.exitCode, 0);
        const QString id = jsonOf(r.out).value(QStringLiteral("lease")).toString();
        QVERIFY2(id.toULongLong() > 0, qPrintable(r.out));
        QCOMPARE(jsonOf(r.out).value(QStringLiteral("ttlMs")).toString(), QStringLiteral("60000"));
        QCOMPARE(run({QStringLiteral("put"), QStringLiteral("session/a"), QStringLiteral("alive"), QStringLiteral("--lease"), id}).exitCode, 0);
        QCOMPARE(run({QStringLiteral("put"), QStringLiteral("--lease"), id, QStringLiteral("session/b"), QStringLiteral("alive")}).exitCode, 0);
        // A batch: a put on the lease and two sequential puts (the second on the lease), in one write.
        r = run({QStringLiteral("batch")},
                "put session/c alive lease=" + id.toUtf8() + "\nput-seq queue/ first\nput-seq queue/ second lease=" + id.toUtf8() + "\n");
        QCOMPARE(r.exitCode, 0);
        const quint64 batchRevision = revisionOf(r);
        QVERIFY(batchRevision > 0);
        const QString first = QStringLiteral("queue/%1-0000").arg(batchRevision, 20, 10, QLatin1Char('0'));
        const QString second = QStringLiteral("queue/%1-0001").arg(batchRevision, 20, 10, QLatin1Char('0'));
        QCOMPARE(r.out, QStringLiteral("OK (revision %1)\n%2\n%3\n").arg(batchRevision).arg(first, second));
        QCOMPARE(run({QStringLiteral("scan"), QStringLiteral("queue/")}).out, QStringLiteral("%1 first\n%2 second\n").arg(first, second));

        // The TTL from the leader (asked on its client port when the first endpoint follows), and the keys.
        r = run({QStringLiteral("lease"), QStringLiteral("ttl"), id});
        QCOMPARE(r.exitCode, 0);
        QStringList lines = r.out.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QVERIFY2(lines.value(0).startsWith(QStringLiteral("lease %1  ttl 60000 ms  remaining ").arg(id)), qPrintable(r.out));
        QVERIFY2(lines.value(0).endsWith(QStringLiteral(" ms  keys 4")), qPrintable(r.out));
        lines.removeFirst();
        lines.sort();
        QCOMPARE(lines, (QStringList{second, QStringLiteral("session/a"), QStringLiteral("session/b"), QStringLiteral("session/c")}));
        r = run({QStringLiteral("--json"), QStringLiteral("lease"), QStringLiteral("ttl"), id});
        const QJsonObject ttl = jsonOf(r.out);
        QCOMPARE(ttl.value(QStringLiteral("ttlMs")).toString(), QStringLiteral("60000"));
        const qint64 remaining = ttl.value(QStringLiteral("remainingMs")).toString().toLongLong();
        QVERIFY2(remaining > 0 && remaining <= 60000, qPrintable(r.out));
        QCOMPARE(ttl.value(QStringLiteral("keys")).toArray().size(), 4);
        r = run({QStringLiteral("lease"), QStringLiteral("keepalive"), id});
        QCOMPARE(r.exitCode, 0);
        QVERIFY2(r.out.startsWith(QStringLiteral("lease %1 renewed, ttl 60000 ms (revision ").arg(id)), qPrintable(r.out));

        // A transaction's branch puts on a lease and sequentially too.
        r = run({QStringLiteral("txn")}, "if version session/a > 0\nthen put-seq queue/ third lease=" + id.toUtf8() + "\nelse del session/a\n");
        QCOMPARE(r.exitCode, 0);
        const QString third = QStringLiteral("queue/%1-0000").arg(revisionOf(r), 20, 10, QLatin1Char('0'));
        QCOMPARE(r.out.section(QLatin1Char('\n'), 1, 1), third);
        QCOMPARE(run({QStringLiteral("get"), third}).out, QStringLiteral("third\n"));

        // Revoked: every key on it goes, at one revision; the rest stays.
        r = run({QStringLiteral("lease"), QStringLiteral("revoke"), id});
        QCOMPARE(r.exitCode, 0);
        QVERIFY2(r.out.startsWith(QStringLiteral("lease %1 revoked (revision ").arg(id)), qPrintable(r.out));
        QCOMPARE(run({QStringLiteral("scan"), QStringLiteral("session/")}).exitCode, 1);
        QCOMPARE(run({QStringLiteral("scan"), QStringLiteral("queue/")}).out, QStringLiteral("%1 first\n").arg(first));
        for (const QString &call : {QStringLiteral("ttl"), QStringLiteral("keepalive"), QStringLiteral("revoke")}) {
            r = run({QStringLiteral("lease"), call, id});
            QCOMPARE(r.exitCode, 1);
            QVERIFY2(r.err.contains(QStringLiteral("NotFound")), qPrintable(r.err));
        }
        r = run({QStringLiteral("put"), QStringLiteral("late"), QStringLiteral("v"), QStringLiteral("--lease"), id});
        QCOMPARE(r.exitCode, 1); // nothing written
        QCOMPARE(run({QStringLiteral("get"), QStringLiteral("late")}).exitCode, 1);
        QCOMPARE(run({QStringLiteral("batch")}, "put a b lease=" + id.toUtf8() + "\n").exitCode, 1);

        // What a script can tell apart.
        QCOMPARE(run({QStringLiteral("lease"), QStringLiteral("grant")}).exitCode, 2);
        QCOMPARE(run({QStringLiteral("lease"), QStringLiteral("lend"), QStringLiteral("5")}).exitCode, 2);
        QCOMPARE(run({QStringLiteral("get"), QStringLiteral("x"), QStringLiteral("--lease"), QStringLiteral("5")}).exitCode, 2);
        QCOMPARE(run({QStringLiteral("put"), QStringLiteral("x"), QStringLiteral("y"), QStringLiteral("--lease"), QStringLiteral("x")}).exitCode, 2);
        QCOMPARE(run({QStringLiteral("batch")}, "put a b lease=x\n").exitCode, 2);
        QCOMPARE(run({QStringLiteral("batch")}, "put-seq a\n").exitCode, 2);
        QCOMPARE(run({QStringLiteral("lease"), QStringLiteral("grant"), QStringLiteral("10")}).exitCode, 4); // InvalidArgument: under 1 s

        // keepalive --forever: a renewal every third of the TTL, until SIGTERM.
        r = run({QStringLiteral("--json"), QStringLiteral("lease"), QStringLiteral("grant"), QStringLiteral("2000")});
        const QString shortLived = jsonOf(r.out).value(QStringLiteral("lease")).toString();
        QCOMPARE(run({QStringLiteral("put"), QStringLiteral("heartbeat"), QStringLiteral("on"), QStringLiteral("--lease"), shortLived}).exitCode, 0);
        Streaming keep;
        keep.process.start(QStringLiteral(DENGINE_CLI_PATH), {QStringLiteral("--endpoints"), endpoints(), QStringLiteral("lease"),
                                                              QStringLiteral("keepalive"), shortLived, QStringLiteral("--forever")});
        QTRY_VERIFY_WITH_TIMEOUT(keep.lines().size() >= 4, Long); // over a TTL: the lease lives on
        for (const QString &line : keep.lines())
            QVERIFY2(line.startsWith(QStringLiteral("lease %1 renewed, ttl 2000 ms").arg(shortLived)), qPrintable(line));
        QCOMPARE(run({QStringLiteral("get"), QStringLiteral("heartbeat")}).out, QStringLiteral("on\n"));
        ::kill(static_cast<pid_t>(keep.process.processId()), SIGTERM);
        QTRY_COMPARE_WITH_TIMEOUT(keep.process.state(), QProcess::NotRunning, Long);
        QCOMPARE(keep.process.exitStatus(), QProcess::NormalExit);
        QCOMPARE(keep.process.exitCode(), 0);
        // No more renewals: it expires, and its key with it.
        QTRY_COMPARE_WITH_TIMEOUT(run({QStringLiteral("get"), QStringLiteral("heartbeat")}).exitCode, 1, Long);
        QCOMPARE(run({QStringLiteral("lease"), QStringLiteral("ttl"), shortLived}).exitCode, 1);
    }

    // dengine watch prints every change as it comes, in order, whoever writes it; SIGTERM ends it
    // with exit 0. --json adds the history and the lease.
    void cli_watch_printsChangesInOrder_untilSigterm()
    {
        // Where to start so that nothing is missed: after a write the cluster answered.
        const quint64 from = revisionOf(run({QStringLiteral("put"), QStringLiteral("watched/start"), QStringLiteral("0")})) + 1;
        QVERIFY(from > 1);
        Streaming human, json;
        human.process.start(QStringLiteral(DENGINE_CLI_PATH), {QStringLiteral("--endpoints"), endpoints(), QStringLiteral("watch"),
                                                               QStringLiteral("watched/"), QStringLiteral("from"), QString::number(from)});
        json.process.start(QStringLiteral(DENGINE_CLI_PATH), {QStringLiteral("--endpoints"), endpoints(), QStringLiteral("--json"),
                                                              QStringLiteral("watch-range"), QStringLiteral("watched/b"), QStringLiteral("watched/c"),
                                                              QStringLiteral("from"), QString::number(from)});
        const QString lease = jsonOf(run({QStringLiteral("--json"), QStringLiteral("lease"), QStringLiteral("grant"), QStringLiteral("60000")}).out)
                                  .value(QStringLiteral("lease"))
                                  .toString();
        const quint64 a = revisionOf(run({QStringLiteral("put"), QStringLiteral("watched/a"), QStringLiteral("1")}));
        const quint64 b = revisionOf(run({QStringLiteral("put"), QStringLiteral("watched/b"), QStringLiteral("2"), QStringLiteral("--lease"), lease}));
        const quint64 del = revisionOf(run({QStringLiteral("del"), QStringLiteral("watched/a")}));
        QCOMPARE(run({QStringLiteral("put"), QStringLiteral("elsewhere"), QStringLiteral("x")}).exitCode, 0);
        const quint64 b2 = revisionOf(cli({QStringLiteral("--endpoints"), m_cluster.clientAddress(3), QStringLiteral("put"), QStringLiteral("watched/b"),
                                           QStringLiteral("3")}));
        QVERIFY(a > 0 && b > a && del > b && b2 > del);
        const QStringList expected{QStringLiteral("PUT watched/a 1 rev=%1").arg(a), QStringLiteral("PUT watched/b 2 rev=%1").arg(b),
                                   QStringLiteral("DEL watched/a rev=%1").arg(del), QStringLiteral("PUT watched/b 3 rev=%1").arg(b2)};
        QTRY_COMPARE_WITH_TIMEOUT(human.lines(), expected, Long);
        QTRY_COMPARE_WITH_TIMEOUT(json.lines().size(), 2, Long);
        const QJsonObject put = jsonOf(json.lines().at(0));
        QCOMPARE(put.value(QStringLiteral("type")).toString(), QStringLiteral("PUT"));
        QCOMPARE(put.value(QStringLiteral("key")).toString(), QStringLiteral("watched/b"));
        QCOMPARE(put.value(QStringLiteral("value")).toString(), QStringLiteral("2"));
        QCOMPARE(put.value(QStringLiteral("revision")).toString(), QString::number(b));
        QCOMPARE(put.value(QStringLiteral("createRevision")).toString(), QString::number(b));
        QCOMPARE(put.value(QStringLiteral("version")).toString(), QStringLiteral("1"));
        QCOMPARE(put.value(QStringLiteral("lease")).toString(), lease);
        const QJsonObject again = jsonOf(json.lines().at(1));
        QCOMPARE(again.value(QStringLiteral("version")).toString(), QStringLiteral("2"));
        QCOMPARE(again.value(QStringLiteral("createRevision")).toString(), QString::number(b));
        QCOMPARE(again.value(QStringLiteral("lease")).toString(), QStringLiteral("0"));
        // Revoking the lease deletes nothing watched now (the key was put again without it).
        QCOMPARE(run({QStringLiteral("lease"), QStringLiteral("revoke"), lease}).exitCode, 0);
        for (Streaming *w : {&human, &json}) {
            ::kill(static_cast<pid_t>(w->process.processId()), SIGTERM);
            QTRY_COMPARE_WITH_TIMEOUT(w->process.state(), QProcess::NotRunning, Long);
            QCOMPARE(w->process.exitStatus(), QProcess::NormalExit);
            QCOMPARE(w->process.exitCode(), 0);
        }
        QCOMPARE(human.lines(), expected);
        QCOMPARE(run({QStringLiteral("watch")}).exitCode, 2);
        QCOMPARE(run({QStringLiteral("watch"), QStringLiteral("p"), QStringLiteral("from")}).exitCode, 2);
        QCOMPARE(run({QStringLiteral("watch"), QStringLiteral("p"), QStringLiteral("since"), QStringLiteral("3")}).exitCode, 2);
        QCOMPARE(cli({QStringLiteral("--endpoints"), QStringLiteral("127.0.0.1:%1").arg(freePorts(1)[0]), QStringLiteral("--timeout"),
                      QStringLiteral("1000"), QStringLiteral("watch"), QStringLiteral("p")})
                     .exitCode,
                 3);
    }

    // etcd's lease calls on the gateways: a grant through a follower, a put on the lease, a
    // keep-alive, the time to live (the seconds left on the leader's gateway; -1, unknown, on a
    // follower's), a revocation that deletes the key; a lease that is gone answers as etcd's would.
    void gateway_leases_grantKeepAliveTimeToLiveRevoke()
    {
        const NodeId l = leader();
        QVERIFY(l != 0);
        const NodeId f = l == 1 ? 2 : 1;
        HttpReply r = httpPost(httpPort(f), "/v3/lease/grant", QJsonObject{{QStringLiteral("TTL"), 60}});
        QCOMPARE(r.status, 200);
        const QString id = r.json().value(QStringLiteral("ID")).toString();
        QVERIFY2(id.toULongLong() > 0, r.body.constData());
        QCOMPARE(r.json().value(QStringLiteral("TTL")).toString(), QStringLiteral("60"));
        QVERIFY(r.json().value(QStringLiteral("header")).toObject().value(QStringLiteral("revision")).toString().toULongLong() > 0);
        r = httpPost(httpPort(f), "/v3/kv/put", QJsonObject{{QStringLiteral("key"), b64("gw/leased")}, {QStringLiteral("value"), b64("v")},
                                                            {QStringLiteral("lease"), id}});
        QCOMPARE(r.status, 200);
        r = httpPost(httpPort(l), "/v3/lease/keepalive", QJsonObject{{QStringLiteral("ID"), id}});
        QCOMPARE(r.status, 200);
        QCOMPARE(r.json().value(QStringLiteral("result")).toObject().value(QStringLiteral("ID")).toString(), id);
        QCOMPARE(r.json().value(QStringLiteral("result")).toObject().value(QStringLiteral("TTL")).toString(), QStringLiteral("60"));

        r = httpPost(httpPort(l), "/v3/lease/timetolive", QJsonObject{{QStringLiteral("ID"), id}, {QStringLiteral("keys"), true}});
        QCOMPARE(r.status, 200);
        const qint64 left = r.json().value(QStringLiteral("TTL")).toString().toLongLong();
        QVERIFY2(left > 0 && left <= 60, r.body.constData());
        QCOMPARE(r.json().value(QStringLiteral("grantedTTL")).toString(), QStringLiteral("60"));
        QCOMPARE(r.json().value(QStringLiteral("keys")).toArray(), QJsonArray{b64("gw/leased")});
        r = httpPost(httpPort(f), "/v3/kv/lease/timetolive", QJsonObject{{QStringLiteral("ID"), id}});
        QCOMPARE(r.status, 200);
        QCOMPARE(r.json().value(QStringLiteral("TTL")).toString(), QStringLiteral("-1")); // only the leader times it
        QCOMPARE(r.json().value(QStringLiteral("grantedTTL")).toString(), QStringLiteral("60"));
        QVERIFY(!r.json().contains(QStringLiteral("keys")));

        r = httpPost(httpPort(f), "/v3/kv/lease/revoke", QJsonObject{{QStringLiteral("ID"), id}});
        QCOMPARE(r.status, 200);
        r = httpPost(httpPort(l), "/v3/kv/range", QJsonObject{{QStringLiteral("key"), b64("gw/leased")}});
        QCOMPARE(r.status, 200);
        QVERIFY2(!r.json().contains(QStringLiteral("kvs")), r.body.constData());
        // Gone: etcd's answers.
        r = httpPost(httpPort(l), "/v3/lease/revoke", QJsonObject{{QStringLiteral("ID"), id}});
        QCOMPARE(r.status, 404);
        QCOMPARE(r.json().value(QStringLiteral("code")).toInt(), 5);
        QCOMPARE(r.json().value(QStringLiteral("message")).toString(), QStringLiteral("etcdserver: requested lease not found"));
        r = httpPost(httpPort(l), "/v3/lease/keepalive", QJsonObject{{QStringLiteral("ID"), id}});
        QCOMPARE(r.status, 200);
        QCOMPARE(r.json().value(QStringLiteral("result")).toObject().value(QStringLiteral("TTL")).toString(), QStringLiteral("0"));
        QCOMPARE(httpPost(httpPort(l), "/v3/lease/timetolive", QJsonObject{{QStringLiteral("ID"), id}}).status, 404);
        QCOMPARE(httpPost(httpPort(l), "/v3/kv/put", QJsonObject{{QStringLiteral("key"), b64("gw/late")}, {QStringLiteral("lease"), id}}).status, 404);
        // A TTL under a second gets one (as etcd raises it to its minimum); the cluster picks ids.
        r = httpPost(httpPort(l), "/v3/lease/grant", QJsonObject{{QStringLiteral("TTL"), QStringLiteral("0")}});
        QCOMPARE(r.status, 200);
        QCOMPARE(r.json().value(QStringLiteral("TTL")).toString(), QStringLiteral("1"));
        QCOMPARE(httpPost(httpPort(l), "/v3/lease/grant", QJsonObject{{QStringLiteral("TTL"), 5}, {QStringLiteral("ID"), 77}}).status, 400);
        QCOMPARE(httpPost(httpPort(l), "/v3/lease/grant", QJsonObject{{QStringLiteral("TTL"), -5}}).status, 400);
        QCOMPARE(httpPost(httpPort(l), "/v3/lease/leases", QJsonObject{}).status, 404);
        QVERIFY(gatewayMetric(httpPort(l), QStringLiteral("dengine_request_duration_seconds_count{call=\"lease_keepalive\",door=\"http\"}")).toInt() >= 2);
    }

    // A /v3/watch stream: the created line, then each change as it comes (written through another
    // member's gateway), in etcd's shape; closing the connection cancels the watch.
    void gateway_watch_streamsChangesUntilClosed()
    {
        WatchStream stream(httpPort(2), QJsonObject{{QStringLiteral("key"), b64("gw/w/")}, {QStringLiteral("range_end"), b64("gw/w0")}});
        QTRY_COMPARE_WITH_TIMEOUT(stream.messages().size(), 1, Long);
        QVERIFY2(stream.head.startsWith("HTTP/1.1 200 "), stream.head.constData());
        QVERIFY2(stream.head.toLower().contains("transfer-encoding: chunked"), stream.head.constData());
        const QJsonObject created = stream.messages().at(0);
        QCOMPARE(created.value(QStringLiteral("created")).toBool(), true);
        QVERIFY(created.value(QStringLiteral("header")).toObject().value(QStringLiteral("revision")).toString().toULongLong() > 0);
        QTRY_COMPARE_WITH_TIMEOUT(gatewayMetric(httpPort(2), QStringLiteral("dengine_client_connections{door=\"http_watch\"}")), QStringLiteral("1"), Long);

        HttpReply r = httpPost(httpPort(3), "/v3/kv/put", QJsonObject{{QStringLiteral("key"), b64("gw/w/a")}, {QStringLiteral("value"), b64("1")}});
        QCOMPARE(r.status, 200);
        const QString put = r.json().value(QStringLiteral("header")).toObject().value(QStringLiteral("revision")).toString();
        QCOMPARE(httpPost(httpPort(3), "/v3/kv/put", QJsonObject{{QStringLiteral("key"), b64("gw/x")}, {QStringLiteral("value"), b64("no")}}).status, 200);
        r = httpPost(httpPort(1), "/v3/kv/deleterange", QJsonObject{{QStringLiteral("key"), b64("gw/w/a")}});
        QCOMPARE(r.status, 200);
        const QString deleted = r.json().value(QStringLiteral("header")).toObject().value(QStringLiteral("revision")).toString();

        QTRY_COMPARE_WITH_TIMEOUT(stream.messages().size(), 3, Long);
        const QList<QJsonObject> messages = stream.messages();
        const QJsonArray putEvents = messages.at(1).value(QStringLiteral("events")).toArray();
        QCOMPARE(putEvents.size(), 1);
        QCOMPARE(putEvents.at(0).toObject().value(QStringLiteral("type")).toString(), QStringLiteral("PUT"));
        const QJsonObject kv = putEvents.at(0).toObject().value(QStringLiteral("kv")).toObject();
        QCOMPARE(kv.value(QStringLiteral("key")).toString(), b64("gw/w/a"));
        QCOMPARE(kv.value(QStringLiteral("value")).toString(), b64("1"));
        QCOMPARE(kv.value(QStringLiteral("mod_revision")).toString(), put);
        QCOMPARE(kv.value(QStringLiteral("create_revision")).toString(), put);
        QCOMPARE(kv.value(QStringLiteral("version")).toString(), QStringLiteral("1"));
        // The header says how far the watch got when it sent this (etcd's too: the store's revision
        // then), which may already include the next write (gw/x, outside the range).
        QVERIFY(messages.at(1).value(QStringLiteral("header")).toObject().value(QStringLiteral("revision")).toString().toULongLong() >= put.toULongLong());
        const QJsonArray delEvents = messages.at(2).value(QStringLiteral("events")).toArray();
        QCOMPARE(delEvents.size(), 1);
        QCOMPARE(delEvents.at(0).toObject().value(QStringLiteral("type")).toString(), QStringLiteral("DELETE"));
        QCOMPARE(delEvents.at(0).toObject().value(QStringLiteral("kv")).toObject().value(QStringLiteral("key")).toString(), b64("gw/w/a"));
        QCOMPARE(delEvents.at(0).toObject().value(QStringLiteral("kv")).toObject().value(QStringLiteral("mod_revision")).toString(), deleted);
        QVERIFY(!stream.ended);

        // The client goes: so does the watch.
        stream.close();
        QTRY_COMPARE_WITH_TIMEOUT(gatewayMetric(httpPort(2), QStringLiteral("dengine_client_connections{door=\"http_watch\"}")), QStringLiteral("0"), Long);
        QCOMPARE(httpPost(httpPort(2), "/v3/watch", QJsonObject{{QStringLiteral("cancel_request"), QJsonObject{}}}).status, 400);
        QCOMPARE(httpPost(httpPort(2), "/v3/watch", QJsonObject{{QStringLiteral("create_request"), QJsonObject{}}}).status, 400); // no key
    }

    // A member keeping a history of 4 revisions, after more writes than that: a watch from revision
    // 1 cannot go on without a gap. The command line exits 4 saying Compacted; the gateway's stream
    // says so in a last line (canceled, compact_revision) and ends.
    void watchFromBeforeTheHistory_compacted_cliAndGateway()
    {
        DEnginedCluster small(1);
        QVERIFY(small.isValid());
        const quint16 http = freePorts(1)[0];
        QVERIFY(small.writeConfig(1, QStringLiteral(", \"insecure\": true, \"watchHistoryRevisions\": 4"),
                                  QStringLiteral(", \"httpAddress\": \"127.0.0.1:%1\"").arg(http)));
        QVERIFY(small.start(1));
        const QString endpoint = small.clientAddress(1);
        QTRY_COMPARE_WITH_TIMEOUT(
            cli({QStringLiteral("--endpoints"), endpoint, QStringLiteral("put"), QStringLiteral("k"), QStringLiteral("0")}).exitCode, 0, Long);
        quint64 last = 0;
        for (int i = 1; i <= 8; ++i)
            last = revisionOf(cli({QStringLiteral("--endpoints"), endpoint, QStringLiteral("put"), QStringLiteral("k"), QString::number(i)}));
        QVERIFY(last > 8);

        Cli r = cli({QStringLiteral("--endpoints"), endpoint, QStringLiteral("watch"), QStringLiteral("k"), QStringLiteral("from"), QStringLiteral("1")});
        QCOMPARE(r.exitCode, 4);
        QVERIFY2(r.err.contains(QStringLiteral("Compacted")), qPrintable(r.err));
        QCOMPARE(r.out, QString());

        WatchStream stream(http, QJsonObject{{QStringLiteral("key"), b64("k")}, {QStringLiteral("start_revision"), QStringLiteral("1")}});
        QTRY_VERIFY_WITH_TIMEOUT(stream.messages().size() == 2 && stream.ended, Long);
        QCOMPARE(stream.messages().at(0).value(QStringLiteral("created")).toBool(), true);
        const QJsonObject end = stream.messages().at(1);
        QCOMPARE(end.value(QStringLiteral("canceled")).toBool(), true);
        QVERIFY(end.value(QStringLiteral("compact_revision")).toString().toULongLong() > last);
        QVERIFY2(!end.value(QStringLiteral("cancel_reason")).toString().isEmpty(), qPrintable(QJsonDocument(end).toJson()));
        QTRY_VERIFY_WITH_TIMEOUT(stream.closed(), Long); // the stream ends with the connection

        // From the last write on, the history still serves: the watch goes on (until SIGTERM).
        Streaming recent;
        recent.process.start(QStringLiteral(DENGINE_CLI_PATH), {QStringLiteral("--endpoints"), endpoint, QStringLiteral("watch"), QStringLiteral("k"),
                                                                QStringLiteral("from"), QString::number(last)});
        QTRY_COMPARE_WITH_TIMEOUT(recent.lines(), QStringList{QStringLiteral("PUT k 8 rev=%1").arg(last)}, Long);
        ::kill(static_cast<pid_t>(recent.process.processId()), SIGTERM);
        QTRY_COMPARE_WITH_TIMEOUT(recent.process.state(), QProcess::NotRunning, Long);
        QCOMPARE(recent.process.exitCode(), 0);
    }

    void sigterm_leaderHandsOverAndExitsZero_sigkill_survivorsGoOn()
    {
        const NodeId first = leader();
        QVERIFY(first != 0);
        QProcess *p = m_cluster.nodes.at(first).get();
        const qint64 pid = p->processId();
        ::kill(static_cast<pid_t>(pid), SIGTERM);
        QTRY_COMPARE_WITH_TIMEOUT(p->state(), QProcess::NotRunning, Long);
        QCOMPARE(p->exitStatus(), QProcess::NormalExit);
        QCOMPARE(p->exitCode(), 0);
        // Its lifecycle log (--lifecycle-log): start first, ready once, the leadership it held with
        // a term, and stopping then stopped last.
        QStringList seq;
        bool ledWithTerm = false;
        for (const QJsonObject &e : m_cluster.lifecycle(first, pid)) {
            seq << e.value(QLatin1String("event")).toString();
            ledWithTerm = ledWithTerm
                || (seq.last() == QLatin1String("leaderChanged") && e.value(QLatin1String("leader")).toString() == QString::number(first)
                    && e.value(QLatin1String("term")).toString().toULongLong() > 0);
        }
        QVERIFY2(!seq.isEmpty() && seq.first() == QLatin1String("start"), qPrintable(seq.join(QLatin1Char(' '))));
        QCOMPARE(seq.count(QStringLiteral("ready")), 1);
        QVERIFY(ledWithTerm);
        QCOMPARE(seq.count(QStringLiteral("stopping")), 1);
        QCOMPARE(seq.last(), QStringLiteral("stopped"));
        QVERIFY(seq.indexOf(QStringLiteral("ready")) < seq.indexOf(QStringLiteral("stopping")));
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
