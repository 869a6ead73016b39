// SPDX-License-Identifier: Apache-2.0
// The trust boundary between nodes (issue 8): a cluster on mutual TLS works; strangers without a
// valid member certificate are refused and write nothing (plain TCP, a certificate of another
// authority, a member's certificate used to claim another member, a certificate of another
// cluster); hostile connections cannot grow a node's memory; bad certificates stop a start with an
// error that names the file; and a member cannot forge another member's commands.
//
// Certificates come from src/certs (what dengine-ctl certs uses). Frames are written by hand, the
// way a stranger would: a few lines of Protocol Buffers encoding below.
#include "certs/certs.h"
#include "enginetestkit.h"

#include <QtCore/QFile>
#include <QtNetwork/QSslKey>
#include <QtNetwork/QSslSocket>
#include <QtNetwork/QTcpSocket>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

using namespace dengine::test;

namespace {

// ---- a stranger's Protocol Buffers ----------------------------------------------------------------

void varint(QByteArray &out, quint64 v)
{
    while (v >= 0x80) {
        out.append(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.append(static_cast<char>(v));
}
void fieldVarint(QByteArray &out, int field, quint64 v)
{
    varint(out, static_cast<quint64>(field) << 3);
    varint(out, v);
}
void fieldBytes(QByteArray &out, int field, const QByteArray &bytes)
{
    varint(out, (static_cast<quint64>(field) << 3) | 2);
    varint(out, static_cast<quint64>(bytes.size()));
    out.append(bytes);
}
QByteArray frame(const QByteArray &payload)
{
    QByteArray out(4, '\0');
    const quint32 n = static_cast<quint32>(payload.size());
    std::memcpy(out.data(), &n, 4);
    return out + payload;
}
QByteArray hello(quint64 cluster, quint64 node)
{
    QByteArray h;
    fieldVarint(h, 1, cluster);
    fieldVarint(h, 2, node);
    fieldVarint(h, 3, 2); // the peer protocol version (transport::ProtocolVersion)
    return frame(h);
}
// An Envelope with one Propose (a forwarded write) from `from` to `to`, carrying a command that says
// it is `origin`'s call: put key = value.
QByteArray forwardedPut(quint64 from, quint64 to, quint64 origin, const QByteArray &key, const QByteArray &value)
{
    QByteArray op;
    fieldVarint(op, 1, 0); // PUT
    fieldBytes(op, 2, key);
    fieldBytes(op, 3, value);
    QByteArray command;
    fieldVarint(command, 1, origin);
    fieldVarint(command, 2, 424242); // session
    fieldVarint(command, 3, 1);      // request
    fieldBytes(command, 4, op);
    QByteArray entry;
    fieldBytes(entry, 4, command); // data; term, index 0 in a forward
    QByteArray message;
    fieldVarint(message, 1, 0); // Propose
    fieldVarint(message, 2, from);
    fieldVarint(message, 3, to);
    fieldBytes(message, 11, entry);
    QByteArray envelope;
    fieldBytes(envelope, 1, message);
    return frame(envelope);
}

// ---- certificates -----------------------------------------------------------------------------------

constexpr quint64 Cluster7 = 7;

// A cluster's authority and members 1..n in `dir`.
bool makeCertificates(const QString &dir, quint64 cluster, int members)
{
    std::string error;
    dengine::certs::Options o;
    o.cluster = cluster;
    bool ok = dengine::certs::createAuthority(dir.toStdString(), o, &error);
    for (int id = 1; ok && id <= members; ++id)
        ok = dengine::certs::createMember(dir.toStdString(), static_cast<quint64>(id), o, &error);
    if (!ok)
        qWarning("certificates: %s", error.c_str());
    return ok;
}

QSslConfiguration clientTls(const QString &ca, const QString &cert, const QString &key)
{
    QSslConfiguration c = QSslConfiguration::defaultConfiguration();
    c.setProtocol(QSsl::TlsV1_3OrLater);
    c.setCaCertificates(QSslCertificate::fromPath(ca));
    c.setLocalCertificate(QSslCertificate::fromPath(cert).value(0));
    QFile k(key);
    if (k.open(QIODevice::ReadOnly))
        c.setPrivateKey(QSslKey(k.readAll(), QSsl::Ec));
    c.setPeerVerifyMode(QSslSocket::VerifyNone); // a stranger does not care who answers
    return c;
}

// This process's resident memory now (VmRSS) or at its peak since resetPeak() (VmHWM), in kB.
qint64 statusKb(const char *field)
{
    QFile f(QStringLiteral("/proc/self/status"));
    if (!f.open(QIODevice::ReadOnly))
        return 0;
    const QByteArray key = QByteArray(field) + ':';
    for (const QByteArray &line : f.readAll().split('\n'))
        if (line.startsWith(key))
            return line.mid(key.size()).trimmed().split(' ').value(0).toLongLong();
    return 0;
}
// Linux: the peak (VmHWM) starts again from the current size.
bool resetPeak()
{
    QFile f(QStringLiteral("/proc/self/clear_refs"));
    return f.open(QIODevice::WriteOnly) && f.write("5") == 1;
}

// A cluster of `size` members on TLS, certificates in its directory.
struct TlsCluster {
    explicit TlsCluster(int size) : c(size)
    {
        ok = makeCertificates(certs.path(), Cluster7, size + 1); // one spare member certificate
    }
    DEngineConfig config(NodeId id) const
    {
        DEngineConfig cfg = c.config(id);
        cfg.clusterId = Cluster7;
        cfg.insecure = false;
        cfg.tlsCaFile = certs.filePath(QStringLiteral("ca.pem"));
        cfg.tlsCertificateFile = certs.filePath(QStringLiteral("node-%1.pem").arg(id));
        cfg.tlsKeyFile = certs.filePath(QStringLiteral("node-%1.key").arg(id));
        return cfg;
    }
    void startAll()
    {
        for (NodeId id : c.peers().keys()) {
            const DEngineConfig cfg = config(id);
            c.make(id, &cfg)->start();
        }
    }
    quint16 port(NodeId id) const { return c.peers().value(id).section(QLatin1Char(':'), 1).toUShort(); }

    QTemporaryDir certs;
    Cluster c;
    bool ok = false;
};

// Whether the node closes `socket` (it refused the connection) within the wait.
bool closedByPeer(QAbstractSocket &socket)
{
    [&] { QTRY_VERIFY_WITH_TIMEOUT(socket.state() == QAbstractSocket::UnconnectedState, Long); }();
    return socket.state() == QAbstractSocket::UnconnectedState;
}

} // namespace

class TestDEngineTls : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void tlsCluster_becomesReady_andReplicates();
    void strangers_areRefused_andWriteNothing();
    void hostileConnections_doNotGrowMemory();
    void waitingConnections_areCapped();
    void badCertificates_stopTheStart_namingTheFile_data();
    void badCertificates_stopTheStart_namingTheFile();
    void aMember_cannotForgeAnotherMembersCommands();
};

void TestDEngineTls::tlsCluster_becomesReady_andReplicates()
{
    TlsCluster t(3);
    QVERIFY(t.ok);
    t.startAll();
    QTRY_VERIFY_WITH_TIMEOUT(t.c.allReady() && t.c.agreedLeader() != 0, Long);
    const NodeId leader = t.c.agreedLeader();
    const NodeId follower = leader == 1 ? 2 : 1;
    QVERIFY(await(t.c.node(follower)->put("over", "tls")).ok()); // forwarded to the leader, over TLS
    for (NodeId id : {1, 2, 3})
        QCOMPARE(await(t.c.node(id)->get("over")).value, QByteArray("tls"));
}

void TestDEngineTls::strangers_areRefused_andWriteNothing()
{
    TlsCluster t(3);
    QVERIFY(t.ok);
    t.startAll();
    QTRY_VERIFY_WITH_TIMEOUT(t.c.allReady() && t.c.agreedLeader() != 0, Long);
    const NodeId leader = t.c.agreedLeader();
    const quint16 port = t.port(leader);
    const quint64 commitBefore = t.c.node(leader)->commitIndex();
    const NodeId other = leader == 2 ? 3 : 2; // a member the strangers claim to be
    const QByteArray attack = hello(Cluster7, other) + forwardedPut(other, leader, other, "stolen", "yes");

    // 1. Plain TCP: a Hello and a write, as before TLS.
    {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port);
        QVERIFY(s.waitForConnected(Long));
        s.write(attack);
        QVERIFY(closedByPeer(s));
    }
    // 2. A certificate of another authority (self-made), naming the member it claims to be.
    QTemporaryDir stranger;
    QVERIFY(makeCertificates(stranger.path(), Cluster7, 3));
    // 3. A genuine member certificate (the spare, node 4's) used to claim another member.
    // 4. A certificate of this authority for another cluster's member.
    std::string error;
    QVERIFY(dengine::certs::createCertificate(t.certs.filePath(QStringLiteral("ca.pem")).toStdString(),
                                              t.certs.filePath(QStringLiteral("ca.key")).toStdString(),
                                              t.certs.filePath(QStringLiteral("other.pem")).toStdString(),
                                              t.certs.filePath(QStringLiteral("other.key")).toStdString(),
                                              dengine::certs::memberName(other, 8), 30, 0, &error));
    struct Case {
        const char *what;
        QString ca, cert, key;
    };
    const QString mine = t.certs.filePath(QStringLiteral("ca.pem"));
    const Case cases[] = {
        {"another authority", stranger.filePath(QStringLiteral("ca.pem")), stranger.filePath(QStringLiteral("node-%1.pem").arg(other)),
         stranger.filePath(QStringLiteral("node-%1.key").arg(other))},
        {"a member claiming another", mine, t.certs.filePath(QStringLiteral("node-4.pem")), t.certs.filePath(QStringLiteral("node-4.key"))},
        {"another cluster", mine, t.certs.filePath(QStringLiteral("other.pem")), t.certs.filePath(QStringLiteral("other.key"))},
    };
    for (const Case &k : cases) {
        QSslSocket s;
        s.setSslConfiguration(clientTls(k.ca, k.cert, k.key));
        s.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port);
        // Either the handshake fails, or the Hello after it is refused: the node closes it.
        if (s.waitForEncrypted(Long))
            s.write(attack);
        QVERIFY2(closedByPeer(s), k.what);
    }
    // Nothing was written: the stolen key is nowhere, and the cluster works on.
    QVERIFY(await(t.c.node(leader)->put("after", "1")).ok());
    for (NodeId id : {1, 2, 3})
        QCOMPARE(await(t.c.node(id)->get("stolen")).status, Status::NotFound);
    QVERIFY(t.c.node(leader)->commitIndex() > commitBefore);
}

// A stranger in a child process (so its own buffers are not counted): `connections` connections to
// `port`, each announcing a 64 MiB frame and sending `bytes` of it. Plain POSIX in the child.
bool attackFromChild(quint16 port, int connections, int bytes)
{
    const pid_t child = ::fork();
    if (child < 0)
        return false;
    if (child == 0) {
        static char junk[1 << 16];
        std::memset(junk, 'x', sizeof junk);
        for (int i = 0; i < connections; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
                ::_exit(1);
            const quint32 huge = 64u << 20;
            ::send(fd, &huge, 4, MSG_NOSIGNAL);
            for (int sent = 0; sent < bytes;) {
                const ssize_t n = ::send(fd, junk, sizeof junk, MSG_NOSIGNAL);
                if (n <= 0)
                    break; // the node closed it
                sent += static_cast<int>(n);
            }
            ::close(fd);
        }
        ::_exit(0);
    }
    // Keep the event loop running while the child works: the node is in this process. (Qt's own
    // child handling may reap it first: then its status is gone, and so is the child.)
    int status = 0;
    bool reaped = false;
    const auto done = [&] {
        const pid_t r = ::waitpid(child, &status, WNOHANG);
        reaped = r == child;
        return reaped || (r < 0 && errno == ECHILD);
    };
    [&] { QTRY_VERIFY_WITH_TIMEOUT(done(), Long); }();
    return !reaped || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

void TestDEngineTls::hostileConnections_doNotGrowMemory()
{
    // 50 connections, each announcing a 64 MiB frame and sending 4 MiB of it, against a node on
    // plain TCP (where a Hello is all there is) and one on TLS. Before, the node buffered what they
    // sent (three such connections took a node from 14 to 180 MB).
    for (const bool tls : {false, true}) {
        TlsCluster t(1);
        QVERIFY(t.ok);
        DEngineConfig cfg = t.config(1);
        cfg.insecure = !tls;
        DEngine *e = t.c.make(1, &cfg);
        QVERIFY(e->start());
        QVERIFY(e->waitForReady(Long));
        // The peak during the attack, not only what is left after it (buffers freed at close).
        QVERIFY(resetPeak());
        const qint64 before = statusKb("VmRSS");
        QVERIFY(attackFromChild(t.port(1), 50, 4 << 20));
        QVERIFY(await(e->put("still", "works")).ok());
        const qint64 grown = statusKb("VmHWM") - before;
        qInfo("%s: 50 hostile connections of 4 MiB each raised the peak resident memory by %lld kB", tls ? "TLS" : "plain TCP",
              static_cast<long long>(grown));
        QVERIFY2(grown < 32 * 1024, qPrintable(QStringLiteral("%1: peak resident memory grew by %2 kB during the attack").arg(tls ? "TLS" : "plain").arg(grown)));
    }
}

void TestDEngineTls::waitingConnections_areCapped()
{
    // Connections that say nothing wait for the handshake deadline; past maxPendingInbound (32)
    // more are closed at once, before anything is read from them.
    TlsCluster t(1);
    QVERIFY(t.ok);
    DEngineConfig cfg = t.config(1);
    cfg.insecure = true;
    DEngine *e = t.c.make(1, &cfg);
    QVERIFY(e->start());
    QVERIFY(e->waitForReady(Long));
    std::vector<std::unique_ptr<QTcpSocket>> silent;
    for (int i = 0; i < 40; ++i) {
        silent.push_back(std::make_unique<QTcpSocket>());
        silent.back()->connectToHost(QHostAddress::LocalHost, t.port(1));
        QVERIFY(silent.back()->waitForConnected(Long));
    }
    const auto closed = [&] {
        int n = 0;
        for (auto &s : silent)
            n += s->state() == QAbstractSocket::UnconnectedState ? 1 : 0;
        return n;
    };
    QTRY_COMPARE_WITH_TIMEOUT(closed(), 8, Long); // the 8 over the cap, at once
    QTRY_COMPARE_WITH_TIMEOUT(closed(), 40, Long); // the rest at the handshake deadline
    QVERIFY(await(e->put("still", "works")).ok());
}

void TestDEngineTls::badCertificates_stopTheStart_namingTheFile_data()
{
    QTest::addColumn<int>("which");
    QTest::addColumn<QString>("field");
    QTest::newRow("missing authority") << 0 << QStringLiteral("authority file");
    QTest::newRow("certificate is a directory") << 1 << QStringLiteral("certificate file");
    QTest::newRow("expired") << 2 << QStringLiteral("certificate file");
    QTest::newRow("another node's certificate") << 3 << QStringLiteral("certificate file");
    QTest::newRow("key of another certificate") << 4 << QStringLiteral("key file");
    QTest::newRow("signed by another authority") << 5 << QStringLiteral("certificate file");
    QTest::newRow("garbage key") << 6 << QStringLiteral("key file");
}

void TestDEngineTls::badCertificates_stopTheStart_namingTheFile()
{
    QFETCH(int, which);
    QFETCH(QString, field);
    TlsCluster t(1);
    QVERIFY(t.ok);
    DEngineConfig cfg = t.config(1);
    QString culprit;
    std::string error;
    QTemporaryDir other;
    switch (which) {
    case 0: culprit = cfg.tlsCaFile = t.certs.filePath(QStringLiteral("missing.pem")); break;
    case 1: culprit = cfg.tlsCertificateFile = t.certs.path(); break;
    case 2:
        culprit = cfg.tlsCertificateFile = t.certs.filePath(QStringLiteral("expired.pem"));
        cfg.tlsKeyFile = t.certs.filePath(QStringLiteral("expired.key"));
        QVERIFY(dengine::certs::createCertificate(cfg.tlsCaFile.toStdString(), t.certs.filePath(QStringLiteral("ca.key")).toStdString(),
                                                  cfg.tlsCertificateFile.toStdString(), cfg.tlsKeyFile.toStdString(),
                                                  dengine::certs::memberName(1, Cluster7), 5, -10, &error));
        break;
    case 3: culprit = cfg.tlsCertificateFile = t.certs.filePath(QStringLiteral("node-2.pem")); break;
    case 4: culprit = cfg.tlsKeyFile = t.certs.filePath(QStringLiteral("node-2.key")); break;
    case 5:
        QVERIFY(makeCertificates(other.path(), Cluster7, 1));
        culprit = cfg.tlsCertificateFile = other.filePath(QStringLiteral("node-1.pem"));
        cfg.tlsKeyFile = other.filePath(QStringLiteral("node-1.key"));
        break;
    case 6: {
        culprit = cfg.tlsKeyFile = t.certs.filePath(QStringLiteral("garbage.key"));
        QFile f(culprit);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
        break;
    }
    }
    DEngine *e = t.c.make(1, &cfg);
    QSignalSpy errors(e, &DEngine::errorOccurred);
    QVERIFY(e->start());
    QVERIFY(e->waitForStopped(Long));
    QCOMPARE(errors.size(), 1);
    QCOMPARE(errors[0][0].value<DEngine::Error>(), DEngine::Error::CertificateError);
    const QString message = errors[0][1].toString();
    QVERIFY2(message.contains(culprit) && message.contains(field), qPrintable(message));
    QCOMPARE(t.c.recorders[1]->count(QStringLiteral("ready")), 0);
}

void TestDEngineTls::aMember_cannotForgeAnotherMembersCommands()
{
    // On plain TCP (insecure) a Hello is all it takes to be a member; even so, a forwarded write
    // must be the forwarder's own call. Before, one naming another origin was applied, and could
    // finish that node's pending call with content it never wrote.
    Cluster c(3);
    c.startAll();
    QTRY_VERIFY_WITH_TIMEOUT(c.allReady() && c.agreedLeader() != 0, Long);
    const NodeId leader = c.agreedLeader();
    const NodeId claimed = leader == 2 ? 3 : 2;
    const NodeId victim = 6 - leader - claimed;
    QTcpSocket s;
    s.connectToHost(QHostAddress::LocalHost, c.peers().value(leader).section(QLatin1Char(':'), 1).toUShort());
    QVERIFY(s.waitForConnected(Long));
    s.write(hello(1, claimed) + forwardedPut(claimed, leader, victim, "forged", "yes")
            + forwardedPut(claimed, leader, claimed, "own", "yes"));
    QTRY_COMPARE_WITH_TIMEOUT(await(c.node(leader)->get("own")).status, Status::Ok, Long);
    QCOMPARE(await(c.node(leader)->get("forged")).status, Status::NotFound);
}

QTEST_GUILESS_MAIN(TestDEngineTls)
#include "tst_dengine_tls.moc"
