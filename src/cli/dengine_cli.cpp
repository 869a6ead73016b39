// SPDX-License-Identifier: Apache-2.0
// dengine: the command line of a standalone DEngine cluster (like etcdctl), over the client
// protocol (client/clientcodec.h) to any member's client port.
//
//   dengine [--endpoints 127.0.0.1:8001,127.0.0.1:8002] [--json] [--timeout MS]
//           [--cacert ca.pem --cert client-me.pem --key client-me.key] <command> ...
//     put <key> <value> [--lease ID]   get <key> [--consistency linearizable|lease|local]
//     del <key>                  scan <prefix> [--limit N]      range <begin> [<end>] [--limit N]
//     batch [FILE]               lines "put <key> <value> [lease=<id>]" / "put-seq <prefix> <value> [lease=<id>]" /
//                                "del <key>" (stdin without FILE), one atomic write
//     txn [FILE]                 lines "if <value|version|create|mod> <key> <op> <operand>", "then ...", "else ...": one transaction
//     watch <prefix> [from REV]  watch-range <begin> <end> [from REV]: a line per change until SIGINT/SIGTERM
//     lease grant <ttl-ms> | keepalive <id> [--forever] | revoke <id> | ttl <id>
//     status                     every member (the endpoints and the members they name): id, leader, term, role, commit, applied, ready, members, version
//     members                    the membership; member add <id> <host:port> | promote <id> | remove <id> | transfer <id>
//     bench [rows LIST] [seconds S] [value-size B]   the reference workload through DEngineClient (src/cli/bench.cpp)
//
// Exit status: 0 done; 1 get/scan found nothing, or the lease is gone (NotFound); 2 bad usage; 3 no
// endpoint could be reached; 4 the cluster answered with an error status (printed, with its reason),
// a write was sent and not answered in time (its outcome unknown: it is not sent to another
// endpoint), or a watch ended (Compacted: it cannot go on without a gap).
//
// One-shot commands speak the client protocol themselves, one request on one connection, so that a
// write is never sent twice. The streaming ones (watch, lease keepalive --forever) run on
// DEngineClient, which follows the leader and resumes a watch on the next member after a failover
// from the revision it had reached.
#include "cli/bench.h"
#include "client/clientcodec.h"
#include "engine/tlsidentity.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QSet>
#include <QtCore/QCoreApplication>
#include <QtCore/QElapsedTimer>
#include <QtCore/QEventLoop>
#include <QtCore/QFile>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QLoggingCategory>
#include <QtCore/QSocketNotifier>
#include <QtCore/QTextStream>
#include <QtCore/QTimer>
#include <QtNetwork/QSslSocket>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

#include <sys/socket.h>
#include <unistd.h>

using namespace dengine;

namespace {

constexpr int ExitOk = 0, ExitNotFound = 1, ExitUsage = 2, ExitUnreachable = 3, ExitFailed = 4;

const char *const StatusNames[] = {"Ok", "NotFound", "Stopping", "Timeout", "InvalidArgument", "NoQuorum", "Busy", "StorageFailure", "Refused",
                                   "Compacted"};
const char *const RoleNames[] = {"stopped", "follower", "pre-candidate", "candidate", "leader"};

QString text(const std::string &s) { return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size())); }
QString text(const QByteArray &b) { return QString::fromUtf8(b); }
QByteArray bytes(const std::string &s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); }
QString statusName(DEngineInterface::Status s)
{
    const auto i = static_cast<std::size_t>(s);
    return QLatin1String(i < std::size(StatusNames) ? StatusNames[i] : "?");
}

// An operation of a batch line or of a txn branch, from the words at `at` on:
// "put <key> <value> [lease=<id>]", "put-seq <prefix> <value> [lease=<id>]" or "del <key>".
bool parseOperation(const QList<QByteArray> &w, qsizetype at, clientwire::Operation &op)
{
    const qsizetype n = w.size() - at;
    if (n == 2 && w[at] == "del") {
        op = {true, w[at + 1].toStdString(), {}, 0, false};
        return true;
    }
    if ((n != 3 && n != 4) || (w[at] != "put" && w[at] != "put-seq"))
        return false;
    op = {false, w[at + 1].toStdString(), w[at + 2].toStdString(), 0, w[at] == "put-seq"};
    if (n == 4) {
        bool ok = false;
        op.lease = w[at + 3].startsWith("lease=") ? w[at + 3].mid(6).toULongLong(&ok) : 0;
        if (!ok || op.lease == 0)
            return false;
    }
    return true;
}

// The keys the sequential puts among `ops` wrote, at `revision` (the write's).
QStringList sequentialKeys(const std::vector<clientwire::Operation> &ops, quint64 revision)
{
    QStringList keys;
    int ordinal = 0;
    for (const clientwire::Operation &op : ops)
        if (!op.remove && op.sequential)
            keys << text(DEngineOperation::sequentialKey(bytes(op.key), revision, ordinal++));
    return keys;
}

// One connection, one request at a time (the protocol pipelines; a command line needs no more).
class Connection {
public:
    // `tls` null: plain TCP.
    explicit Connection(std::shared_ptr<const engine::TlsIdentity> tls) : m_tls(std::move(tls)) {}
    bool open(const QString &endpoint, int timeoutMs, QString *why)
    {
        const int colon = endpoint.lastIndexOf(QLatin1Char(':'));
        bool ok = false;
        const uint port = colon > 0 ? endpoint.mid(colon + 1).toUInt(&ok) : 0;
        if (!ok || port == 0 || port > 65535) {
            *why = QStringLiteral("%1 is not host:port").arg(endpoint);
            return false;
        }
        if (!m_tls) {
            m_socket.connectToHost(endpoint.left(colon), static_cast<quint16>(port));
            if (!m_socket.waitForConnected(timeoutMs)) {
                *why = QStringLiteral("%1: %2").arg(endpoint, m_socket.errorString());
                return false;
            }
            return true;
        }
        m_socket.setSslConfiguration(m_tls->configuration());
        engine::TlsIdentity::acceptAnyMemberName(&m_socket);
        m_socket.connectToHostEncrypted(endpoint.left(colon), static_cast<quint16>(port));
        if (!m_socket.waitForEncrypted(timeoutMs)) {
            QStringList errors;
            for (const QSslError &e : m_socket.sslHandshakeErrors())
                if (e.error() != QSslError::HostNameMismatch)
                    errors << e.errorString();
            *why = QStringLiteral("%1: TLS: %2").arg(endpoint, errors.isEmpty() ? m_socket.errorString() : errors.join(QStringLiteral("; ")));
            return false;
        }
        if (engine::TlsIdentity::memberOf(m_socket.peerCertificate(), m_tls->clusterId()) == 0) {
            *why = QStringLiteral("%1: TLS: its certificate names no member of cluster %2").arg(endpoint).arg(m_tls->clusterId());
            return false;
        }
        return true;
    }
    std::optional<clientwire::Response> call(clientwire::Request r, int timeoutMs, QString *why)
    {
        r.id = ++m_id;
        r.deadlineMs = static_cast<std::uint32_t>(timeoutMs);
        std::string frame;
        clientwire::appendRequest(frame, r);
        m_socket.write(frame.data(), static_cast<qint64>(frame.size()));
        QElapsedTimer t;
        t.start();
        std::string payload;
        for (;;) {
            switch (m_reader.next(payload)) {
            case transport::FrameReader::Result::Frame: {
                clientwire::Response resp;
                std::string err;
                if (!clientwire::decodeResponse(payload, resp, err)) {
                    *why = QString::fromStdString(err);
                    return std::nullopt;
                }
                if (resp.id == r.id)
                    return resp;
                continue;
            }
            case transport::FrameReader::Result::TooLarge:
                *why = QStringLiteral("an oversized answer");
                return std::nullopt;
            case transport::FrameReader::Result::NeedMore: break;
            }
            const int left = timeoutMs + 2000 - static_cast<int>(t.elapsed());
            if (left <= 0 || !m_socket.waitForReadyRead(left)) {
                *why = m_socket.state() == QAbstractSocket::ConnectedState ? QStringLiteral("no answer in time") : m_socket.errorString();
                return std::nullopt;
            }
            const QByteArray in = m_socket.readAll();
            m_reader.feed(in.constData(), static_cast<std::size_t>(in.size()));
        }
    }

private:
    std::shared_ptr<const engine::TlsIdentity> m_tls;
    QSslSocket m_socket;
    transport::FrameReader m_reader{256u << 20};
    std::uint64_t m_id = 0;
};

void print(const QString &line) { std::fprintf(stdout, "%s\n", qPrintable(line)); }
void printJson(const QJsonObject &o) { std::fprintf(stdout, "%s\n", QJsonDocument(o).toJson(QJsonDocument::Compact).constData()); }

QJsonObject nodeJson(const clientwire::NodeStatus &n)
{
    QJsonArray members;
    for (const clientwire::Member &m : n.members)
        members.append(QJsonObject{{QStringLiteral("id"), QString::number(m.id)},
                                   {QStringLiteral("address"), text(m.address)},
                                   {QStringLiteral("clientAddress"), text(m.clientAddress)},
                                   {QStringLiteral("learner"), m.learner}});
    return QJsonObject{{QStringLiteral("id"), QString::number(n.nodeId)}, {QStringLiteral("leader"), QString::number(n.leader)},
                       {QStringLiteral("term"), QString::number(n.term)}, {QStringLiteral("role"), QLatin1String(RoleNames[n.role])},
                       {QStringLiteral("commit"), QString::number(n.commit)}, {QStringLiteral("applied"), QString::number(n.applied)},
                       {QStringLiteral("ready"), n.ready}, {QStringLiteral("members"), members}, {QStringLiteral("version"), text(n.version)}};
}

// ---- the streaming commands (watch, lease keepalive --forever), on DEngineClient ----

// SIGINT and SIGTERM end a streaming command through the event loop, with exit status 0.
int g_signalPipe[2] = {-1, -1};
void onSignal(int)
{
    const char b = 1;
    [[maybe_unused]] const ssize_t n = ::write(g_signalPipe[1], &b, 1); // async-signal-safe
}

// Ends the command with an exit status; the first call wins.
using Finish = std::function<void(int)>;

// Runs a streaming command: `begin` once the client is ready (within timeoutMs, else exit status 3),
// until it calls its Finish or a signal comes (0). A member lost on the way is not an end:
// DEngineClient moves to another one and the command goes on (a line on stderr says so).
int runStreaming(const DEngineClientConfig &config, int timeoutMs, const std::function<void(DEngineClient &, const Finish &)> &begin)
{
    // The client's progress lines (connecting, which member) would only clutter a stream read by a
    // pipe; its warnings stay, and QT_LOGGING_RULES can bring them back.
    QLoggingCategory::setFilterRules(QStringLiteral("dengine.*.debug=false\ndengine.*.info=false"));
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_signalPipe) != 0) {
        std::fprintf(stderr, "dengine: socketpair: %s\n", std::strerror(errno));
        return ExitFailed;
    }
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);

    // Declared before the client, so that they outlive it (its destructor stops it, and what that
    // signals finds them).
    QEventLoop loop;
    int code = ExitOk;
    bool done = false, began = false;
    const Finish finish = [&](int c) {
        if (done)
            return;
        done = true;
        code = c;
        std::fflush(stdout);
        loop.exit();
    };
    QSocketNotifier signalNotifier(g_signalPipe[0], QSocketNotifier::Read);
    QObject::connect(&signalNotifier, &QSocketNotifier::activated, &loop, [&] {
        char b = 0;
        [[maybe_unused]] const ssize_t n = ::read(g_signalPipe[0], &b, 1);
        finish(ExitOk);
    });
    QTimer readyDeadline;
    readyDeadline.setSingleShot(true);
    DEngineClient client(config);
    QObject::connect(&client, &DEngineInterface::errorOccurred, &loop, [&](DEngineInterface::Error e, const QString &message) {
        if (e == DEngineInterface::Error::ConfigurationError || e == DEngineInterface::Error::CertificateError) {
            std::fprintf(stderr, "dengine: %s\n", qPrintable(message));
            finish(ExitUsage);
        } else if (began) {
            std::fprintf(stderr, "dengine: %s (still trying)\n", qPrintable(message));
        }
    });
    QObject::connect(&client, &DEngineInterface::ready, &loop, [&] {
        began = true;
        readyDeadline.stop();
        begin(client, finish);
    });
    QObject::connect(&readyDeadline, &QTimer::timeout, &loop, [&] {
        std::fprintf(stderr, "dengine: no endpoint answered: %s\n",
                     qPrintable(client.errorString().isEmpty() ? QStringLiteral("no ready member in time") : client.errorString()));
        finish(ExitUnreachable);
    });
    readyDeadline.start(timeoutMs);
    if (!client.start() && !done)
        finish(ExitUsage);
    if (!done)
        loop.exec();
    // Done: the client's stop must not end the watches with a word of their own.
    for (DEngineWatcher *w : client.findChildren<DEngineWatcher *>())
        w->cancel();
    return code;
}

QJsonObject eventJson(const DEngineWatchEvent &e)
{
    if (e.type == DEngineWatchEvent::Type::Delete)
        return QJsonObject{{QStringLiteral("type"), QStringLiteral("DEL")}, {QStringLiteral("key"), text(e.key)},
                           {QStringLiteral("revision"), QString::number(e.revision)}};
    return QJsonObject{{QStringLiteral("type"), QStringLiteral("PUT")},
                       {QStringLiteral("key"), text(e.key)},
                       {QStringLiteral("value"), text(e.value)},
                       {QStringLiteral("revision"), QString::number(e.revision)},
                       {QStringLiteral("createRevision"), QString::number(e.createRevision)},
                       {QStringLiteral("version"), QString::number(e.version)},
                       {QStringLiteral("lease"), QString::number(e.lease)}};
}

// watch, watch-range: a line per change, flushed, until a signal (0) or the watch ends (4).
int runWatch(const DEngineClientConfig &config, int timeoutMs, const QByteArray &begin, const std::optional<QByteArray> &end, quint64 from, bool json)
{
    return runStreaming(config, timeoutMs, [&](DEngineClient &client, const Finish &finish) {
        DEngineWatcher *w = end ? client.watch(begin, *end, from, &client) : client.watchPrefix(begin, from, &client);
        QObject::connect(w, &DEngineWatcher::eventsReceived, &client, [json](const QList<DEngineWatchEvent> &events) {
            for (const DEngineWatchEvent &e : events) {
                if (json)
                    printJson(eventJson(e));
                else if (e.type == DEngineWatchEvent::Type::Delete)
                    print(QStringLiteral("DEL %1 rev=%2").arg(text(e.key)).arg(e.revision));
                else
                    print(QStringLiteral("PUT %1 %2 rev=%3").arg(text(e.key), text(e.value)).arg(e.revision));
            }
            std::fflush(stdout); // read by pipes as it comes
        });
        QObject::connect(w, &DEngineWatcher::finished, &client, [w, json, finish](DEngineInterface::Status status, const QString &message) {
            std::fprintf(stderr, "dengine: the watch ended: %s: %s%s\n", qPrintable(statusName(status)), qPrintable(message),
                         qPrintable(w->revision() > 0 ? QStringLiteral(" (every change up to revision %1 was printed)").arg(w->revision()) : QString()));
            if (json)
                printJson(QJsonObject{{QStringLiteral("status"), statusName(status)}, {QStringLiteral("message"), message},
                                      {QStringLiteral("revision"), QString::number(w->revision())}});
            finish(status == DEngineInterface::Status::Ok ? ExitOk : ExitFailed);
        });
    });
}

void printRenewal(quint64 lease, const DEngineResult &r, bool json)
{
    if (json)
        printJson(QJsonObject{{QStringLiteral("status"), statusName(r.status)}, {QStringLiteral("lease"), QString::number(lease)},
                              {QStringLiteral("ttlMs"), QString::number(r.ttlMs)}, {QStringLiteral("revision"), QString::number(r.revision)}});
    else
        print(QStringLiteral("lease %1 renewed, ttl %2 ms (revision %3)").arg(lease).arg(r.ttlMs).arg(r.revision));
}

// lease keepalive --forever: renews every third of the TTL, printing each renewal, until a signal
// (0) or the lease is gone (1). A renewal that fails on the way (no leader for a moment) is tried
// again sooner; the lease lasts its whole TTL from the last one that went through.
int runKeepAlive(const DEngineClientConfig &config, int timeoutMs, quint64 lease, bool json)
{
    return runStreaming(config, timeoutMs, [&](DEngineClient &client, const Finish &finish) {
        auto *timer = new QTimer(&client);
        timer->setSingleShot(true);
        auto ttlMs = std::make_shared<qint64>(3000);
        const auto renew = [&client, timer, ttlMs, lease, json, finish] {
            client.keepAliveLease(lease).then(&client, [timer, ttlMs, lease, json, finish](const DEngineResult &r) {
                using S = DEngineInterface::Status;
                if (r.ok()) {
                    *ttlMs = r.ttlMs;
                    printRenewal(lease, r, json);
                    std::fflush(stdout);
                    timer->start(static_cast<int>(std::max<qint64>(100, r.ttlMs / 3)));
                } else if (r.status == S::NotFound) {
                    std::fprintf(stderr, "dengine: lease %llu: not found (expired or revoked)\n", static_cast<unsigned long long>(lease));
                    finish(ExitNotFound);
                } else if (r.status == S::Timeout || r.status == S::NoQuorum || r.status == S::Busy) {
                    std::fprintf(stderr, "dengine: lease %llu: %s: %s (trying again)\n", static_cast<unsigned long long>(lease),
                                 qPrintable(statusName(r.status)), qPrintable(r.message));
                    timer->start(static_cast<int>(std::clamp<qint64>(*ttlMs / 6, 50, 1000)));
                } else if (r.status != S::Stopping) { // Stopping: this client's own stop, on the way out
                    std::fprintf(stderr, "dengine: %s: %s\n", qPrintable(statusName(r.status)), qPrintable(r.message));
                    finish(ExitFailed);
                }
            });
        };
        QObject::connect(timer, &QTimer::timeout, &client, renew);
        renew();
    });
}

} // namespace

int main(int argc, char **argv)
{
    // Qt's own event dispatcher rather than GLib's, for every thread of this process: GLib's wakes
    // its loop through an eventfd write on every posted event and on every socket notifier
    // switched on or off (each socket write), from its own thread too, which measured about a tenth
    // of the throughput of a three-node cluster. QT_NO_GLIB set to an empty value keeps GLib's.
    if (!qEnvironmentVariableIsSet("QT_NO_GLIB"))
        qputenv("QT_NO_GLIB", "1");
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("dengine"));
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "The command line of a standalone DEngine cluster.\n\n"
        "Commands:\n"
        "  put <key> <value> [--lease ID]   get <key>       del <key>\n"
        "  scan <prefix>           range <begin> [<end>]\n"
        "  batch [FILE]            lines (stdin without FILE), one atomic write:\n"
        "                            put <key> <value> [lease=<id>]\n"
        "                            put-seq <prefix> <value> [lease=<id>]   key: prefix + the write's revision (20 digits)\n"
        "                                                                    + '-' + its place among the sequential puts\n"
        "                                                                    (4 digits); printed after the revision\n"
        "                            del <key>\n"
        "  txn [FILE]              lines \"if <value|version|create|mod> <key> <=|!=|<|>> <operand>\", \"then <operation>\",\n"
        "                          \"else <operation>\", an operation as a batch line (stdin without FILE): one transaction\n"
        "                          (compare and swap)\n"
        "  watch <prefix> [from REV]              every change to the keys under prefix, a line each as it comes:\n"
        "  watch-range <begin> <end> [from REV]   \"PUT <key> <value> rev=N\" or \"DEL <key> rev=N\" (--json: objects with\n"
        "                          createRevision, version, lease), from revision REV (default: the next change; a revision\n"
        "                          a read answered, plus 1, misses nothing) until SIGINT/SIGTERM (exit 0); a watch that\n"
        "                          cannot go on without a gap (Compacted: the member's history no longer reaches back to\n"
        "                          it) ends with exit 4. It follows failovers without missing or repeating a change.\n"
        "  lease grant <ttl-ms>    a lease (at least 1000 ms); attach keys with put --lease ID or lease=<id>\n"
        "  lease keepalive <id> [--forever]   renew it (its whole TTL again); --forever: every third of the TTL until\n"
        "                          SIGINT/SIGTERM, a line per renewal\n"
        "  lease revoke <id>       delete it and every key attached to it\n"
        "  lease ttl <id>          its TTL, the time left (from the leader) and its keys\n"
        "  status                  every member (the endpoints, and the members their answers name): id, leader, term,\n"
        "                          role, commit, applied, ready\n"
        "  members                 the membership as the first endpoint that answers applied it\n"
        "  member add <id> <host:port> | promote <id> | remove <id> | transfer <id>\n"
        "                          membership changes (a new node runs dengined --join first); safe to repeat\n"
        "  bench [rows put:1,put:16,put:64,lget:16,sget:16] [seconds S] [value-size B]\n"
        "                          the reference workload through DEngineClient: progress, then a table (--json: lines)\n\n"
        "Exit status: 0 done; 1 not found (a key, or a lease that expired or was revoked); 2 bad usage; 3 no endpoint\n"
        "reachable; 4 the cluster answered an error, a write went unanswered (its outcome unknown), or a watch ended\n"
        "(Compacted)."));
    p.addHelpOption();
    QCommandLineOption endpointsOpt(QStringLiteral("endpoints"), QStringLiteral("Members' client addresses, comma-separated (DENGINE_ENDPOINTS)."),
                                    QStringLiteral("LIST"), QStringLiteral("127.0.0.1:8001"));
    QCommandLineOption jsonOpt(QStringLiteral("json"), QStringLiteral("One JSON object per answer (for scripts)."));
    QCommandLineOption timeoutOpt(QStringLiteral("timeout"), QStringLiteral("Milliseconds to wait for a connection or an answer."), QStringLiteral("MS"),
                                  QStringLiteral("10000"));
    QCommandLineOption consistencyOpt(QStringLiteral("consistency"), QStringLiteral("Reads: linearizable (default), lease or local."),
                                      QStringLiteral("LEVEL"), QStringLiteral("linearizable"));
    QCommandLineOption limitOpt(QStringLiteral("limit"), QStringLiteral("scan, range: at most N items."), QStringLiteral("N"), QStringLiteral("0"));
    QCommandLineOption caOpt(QStringLiteral("cacert"), QStringLiteral("TLS: the cluster's authority, PEM (DENGINE_CACERT)."), QStringLiteral("FILE"));
    QCommandLineOption certOpt(QStringLiteral("cert"), QStringLiteral("TLS: this client's certificate (dengine-ctl certs client) (DENGINE_CERT)."),
                               QStringLiteral("FILE"));
    QCommandLineOption keyOpt(QStringLiteral("key"), QStringLiteral("TLS: this client's key (DENGINE_KEY)."), QStringLiteral("FILE"));
    QCommandLineOption clusterOpt(QStringLiteral("cluster"), QStringLiteral("TLS: the cluster's id (DENGINE_CLUSTER; default 1)."), QStringLiteral("ID"));
    QCommandLineOption leaseOpt(QStringLiteral("lease"), QStringLiteral("put: attach the key to this lease (lease grant)."), QStringLiteral("ID"));
    QCommandLineOption foreverOpt(QStringLiteral("forever"), QStringLiteral("lease keepalive: renew every third of the TTL until interrupted."));
    for (const auto *o : {&endpointsOpt, &jsonOpt, &timeoutOpt, &consistencyOpt, &limitOpt, &caOpt, &certOpt, &keyOpt, &clusterOpt, &leaseOpt, &foreverOpt})
        p.addOption(*o);
    p.addPositionalArgument(QStringLiteral("command"),
                            QStringLiteral("put, get, del, scan, range, batch, txn, watch, watch-range, lease, status, members, member, bench"));
    p.process(app);
    const QStringList args = p.positionalArguments();
    const auto usage = [](const QString &why) {
        std::fprintf(stderr, "dengine: %s (see --help)\n", qPrintable(why));
        return ExitUsage;
    };
    if (args.isEmpty())
        return usage(QStringLiteral("no command"));
    const QString command = args[0];
    const bool json = p.isSet(jsonOpt);
    const int timeoutMs = p.value(timeoutOpt).toInt();
    QStringList endpoints = (p.isSet(endpointsOpt) || !qEnvironmentVariableIsSet("DENGINE_ENDPOINTS") ? p.value(endpointsOpt)
                                                                                                     : qEnvironmentVariable("DENGINE_ENDPOINTS"))
                                .split(QLatin1Char(','), Qt::SkipEmptyParts);
    // TLS when the files are named (flags, else the environment); plain TCP otherwise.
    const auto value = [&p](const QCommandLineOption &o, const char *env) { return p.isSet(o) ? p.value(o) : qEnvironmentVariable(env); };
    const QString caFile = value(caOpt, "DENGINE_CACERT"), certFile = value(certOpt, "DENGINE_CERT"), keyFile = value(keyOpt, "DENGINE_KEY");
    std::shared_ptr<const engine::TlsIdentity> tls;
    if (!caFile.isEmpty() || !certFile.isEmpty() || !keyFile.isEmpty()) {
        if (caFile.isEmpty() || certFile.isEmpty() || keyFile.isEmpty())
            return usage(QStringLiteral("TLS needs all three of --cacert, --cert and --key"));
        const QString cluster = value(clusterOpt, "DENGINE_CLUSTER");
        bool ok = true;
        const quint64 clusterId = cluster.isEmpty() ? 1 : cluster.toULongLong(&ok);
        if (!ok || clusterId == 0)
            return usage(QStringLiteral("--cluster: a positive integer"));
        QString why;
        tls = engine::TlsIdentity::loadClient(caFile, certFile, keyFile, clusterId, &why);
        if (!tls) {
            std::fprintf(stderr, "dengine: %s\n", qPrintable(why));
            return ExitUsage;
        }
    }
    std::uint32_t consistency = 0;
    if (p.value(consistencyOpt) == QLatin1String("lease"))
        consistency = 1;
    else if (p.value(consistencyOpt) == QLatin1String("local"))
        consistency = 2;
    else if (p.value(consistencyOpt) != QLatin1String("linearizable"))
        return usage(QStringLiteral("--consistency: linearizable, lease or local"));

    // bench and the streaming commands go through DEngineClient, as an application would: TLS as
    // above, or plain TCP.
    DEngineClientConfig cc;
    cc.endpoints = endpoints;
    cc.insecure = !tls;
    cc.tlsCaFile = caFile;
    cc.tlsCertificateFile = certFile;
    cc.tlsKeyFile = keyFile;
    const QString cluster = value(clusterOpt, "DENGINE_CLUSTER");
    cc.clusterId = cluster.isEmpty() ? 1 : cluster.toULongLong();
    cc.requestTimeoutMs = timeoutMs;
    quint64 lease = 0;
    if (p.isSet(leaseOpt)) {
        bool ok = false;
        lease = p.value(leaseOpt).toULongLong(&ok);
        if (!ok || lease == 0)
            return usage(QStringLiteral("--lease: a lease id (a positive number, from lease grant)"));
        if (command != QLatin1String("put"))
            return usage(QStringLiteral("--lease: only with put (batch and txn lines take lease=<id>)"));
    }
    if (p.isSet(foreverOpt) && !(command == QLatin1String("lease") && args.value(1) == QLatin1String("keepalive")))
        return usage(QStringLiteral("--forever: only with lease keepalive"));

    if (command == QLatin1String("watch") || command == QLatin1String("watch-range")) {
        const bool ranged = command == QLatin1String("watch-range");
        const qsizetype fixed = ranged ? 3 : 2; // the command and its keys
        quint64 from = 0;
        bool ok = args.size() == fixed || (args.size() == fixed + 2 && args[fixed] == QLatin1String("from"));
        if (ok && args.size() > fixed)
            from = args[fixed + 1].toULongLong(&ok);
        if (!ok)
            return usage(ranged ? QStringLiteral("watch-range <begin> <end> [from REV] (an empty end: no upper bound)")
                                : QStringLiteral("watch <prefix> [from REV]"));
        const std::optional<QByteArray> end = ranged ? std::optional<QByteArray>(args[2].toUtf8()) : std::nullopt;
        return runWatch(cc, timeoutMs, args[1].toUtf8(), end, from, json);
    }
    if (command == QLatin1String("lease") && args.size() == 3 && args[1] == QLatin1String("keepalive") && p.isSet(foreverOpt)) {
        bool ok = false;
        const quint64 id = args[2].toULongLong(&ok);
        if (!ok || id == 0)
            return usage(QStringLiteral("lease keepalive: the lease id must be a positive number"));
        return runKeepAlive(cc, timeoutMs, id, json);
    }

    if (command == QLatin1String("bench")) {
        cli::BenchOptions bo;
        bo.json = json;
        bo.timeoutMs = timeoutMs;
        for (int i = 1; i + 1 < args.size(); i += 2) {
            bool ok = true;
            if (args[i] == QLatin1String("rows"))
                bo.rows = args[i + 1];
            else if (args[i] == QLatin1String("seconds"))
                bo.seconds = args[i + 1].toInt(&ok);
            else if (args[i] == QLatin1String("value-size"))
                bo.valueSize = args[i + 1].toInt(&ok);
            else
                ok = false;
            if (!ok)
                return usage(QStringLiteral("bench [rows put:1,put:16,put:64,lget:16,sget:16] [seconds S] [value-size B]"));
        }
        if (args.size() % 2 == 0)
            return usage(QStringLiteral("bench [rows put:1,put:16,put:64,lget:16,sget:16] [seconds S] [value-size B]"));
        return cli::runBench(cc, bo);
    }
    clientwire::Request req;
    bool membersOnly = false; // `members`: the first member's view of the membership
    req.consistency = consistency;
    req.limit = p.value(limitOpt).toUInt();
    const auto need = [&](int n) { return args.size() == n + 1; };
    // batch and txn read lines from the file named after the command, or from stdin.
    const auto openInput = [&args](QFile &in) -> QString {
        if (args.size() > 1) {
            in.setFileName(args[1]);
            return in.open(QIODevice::ReadOnly) ? QString() : QStringLiteral("%1: %2").arg(args[1], in.errorString());
        }
        return in.open(stdin, QIODevice::ReadOnly) ? QString() : QStringLiteral("cannot read stdin");
    };
    if (command == QLatin1String("put") && need(2) && lease != 0) {
        // A put with a lease: a batch of one (the protocol's PUT carries none).
        req.kind = clientwire::Kind::Batch;
        req.operations.push_back({false, args[1].toStdString(), args[2].toStdString(), lease, false});
    } else if (command == QLatin1String("put") && need(2)) {
        req.kind = clientwire::Kind::Put;
        req.key = args[1].toStdString();
        req.value = args[2].toStdString();
    } else if (command == QLatin1String("get") && need(1)) {
        req.kind = clientwire::Kind::Get;
        req.key = args[1].toStdString();
    } else if (command == QLatin1String("del") && need(1)) {
        req.kind = clientwire::Kind::Delete;
        req.key = args[1].toStdString();
    } else if (command == QLatin1String("scan") && need(1)) {
        req.kind = clientwire::Kind::Scan;
        req.key = args[1].toStdString();
    } else if (command == QLatin1String("range") && (need(1) || need(2))) {
        req.kind = clientwire::Kind::Range;
        req.key = args[1].toStdString();
        req.end = args.size() > 2 ? args[2].toStdString() : std::string();
    } else if (command == QLatin1String("batch") && (need(0) || need(1))) {
        req.kind = clientwire::Kind::Batch;
        QFile in;
        if (const QString why = openInput(in); !why.isEmpty())
            return usage(why);
        int lineNo = 0;
        while (!in.atEnd()) {
            ++lineNo;
            const QList<QByteArray> w = in.readLine().trimmed().split(' ');
            if (w.size() == 1 && w[0].isEmpty())
                continue;
            clientwire::Operation op;
            if (!parseOperation(w, 0, op))
                return usage(QStringLiteral("batch line %1: \"put <key> <value> [lease=<id>]\", \"put-seq <prefix> <value> [lease=<id>]\" "
                                            "or \"del <key>\"")
                                 .arg(lineNo));
            req.operations.push_back(std::move(op));
        }
        if (req.operations.empty())
            return usage(QStringLiteral("batch: no operations"));
    } else if (command == QLatin1String("txn") && (need(0) || need(1))) {
        // Lines: "if <value|version|create|mod> <key> <=|!=|<|>> <operand>", then "then put|del ..."
        // and "else put|del ...": one transaction (compare and swap).
        req.kind = clientwire::Kind::Txn;
        QFile in;
        if (const QString why = openInput(in); !why.isEmpty())
            return usage(why);
        const QList<QByteArray> targets{"value", "version", "create", "mod"}, ops{"=", "!=", "<", ">"};
        int lineNo = 0;
        while (!in.atEnd()) {
            ++lineNo;
            const QList<QByteArray> w = in.readLine().trimmed().split(' ');
            if (w.size() == 1 && w[0].isEmpty())
                continue;
            const auto bad = [&] {
                return usage(QStringLiteral("txn line %1: \"if <value|version|create|mod> <key> <=|!=|<|>> <operand>\", "
                                            "\"then put <key> <value> [lease=<id>]\", \"then put-seq <prefix> <value> [lease=<id>]\", "
                                            "\"then del <key>\", or \"else\" and an operation")
                                 .arg(lineNo));
            };
            if (w[0] == "if" && w.size() == 5 && targets.contains(w[1]) && ops.contains(w[3])) {
                clientwire::Compare c;
                c.target = static_cast<std::uint32_t>(targets.indexOf(w[1]));
                c.op = static_cast<std::uint32_t>(ops.indexOf(w[3]));
                c.key = w[2].toStdString();
                if (c.target == 0) {
                    c.value = w[4].toStdString();
                } else {
                    bool ok = false;
                    c.number = w[4].toULongLong(&ok);
                    if (!ok)
                        return bad();
                }
                req.compares.push_back(std::move(c));
            } else if ((w[0] == "then" || w[0] == "else") && w.size() >= 3) {
                clientwire::Operation op;
                if (!parseOperation(w, 1, op))
                    return bad();
                (w[0] == "then" ? req.operations : req.failureOperations).push_back(std::move(op));
            } else {
                return bad();
            }
        }
    } else if (command == QLatin1String("lease") && need(2)) {
        const QString what = args[1];
        bool ok = false;
        const quint64 n = args[2].toULongLong(&ok);
        if (!ok || n == 0)
            return usage(QStringLiteral("lease %1: a positive number").arg(what));
        req.lease = n;
        if (what == QLatin1String("grant")) {
            req.kind = clientwire::Kind::LeaseGrant;
            req.lease = 0;
            req.ttlMs = n;
        } else if (what == QLatin1String("keepalive")) {
            req.kind = clientwire::Kind::LeaseKeepAlive;
        } else if (what == QLatin1String("revoke")) {
            req.kind = clientwire::Kind::LeaseRevoke;
        } else if (what == QLatin1String("ttl")) {
            req.kind = clientwire::Kind::LeaseTimeToLive;
        } else {
            return usage(QStringLiteral("lease: grant <ttl-ms>, keepalive <id> [--forever], revoke <id> or ttl <id>"));
        }
    } else if (command == QLatin1String("status") && need(0)) {
        req.kind = clientwire::Kind::Status;
    } else if (command == QLatin1String("members") && need(0)) {
        req.kind = clientwire::Kind::Status;
        membersOnly = true;
    } else if (command == QLatin1String("member") && args.size() >= 3) {
        const QString what = args[1];
        bool ok = false;
        req.node = args[2].toULongLong(&ok);
        if (!ok || req.node == 0)
            return usage(QStringLiteral("member %1: the node id must be a positive number").arg(what));
        if (what == QLatin1String("add") && need(3)) {
            req.kind = clientwire::Kind::AddLearner;
            req.address = args[3].toStdString();
        } else if (what == QLatin1String("promote") && need(2)) {
            req.kind = clientwire::Kind::Promote;
        } else if (what == QLatin1String("remove") && need(2)) {
            req.kind = clientwire::Kind::RemoveMember;
        } else if (what == QLatin1String("transfer") && need(2)) {
            req.kind = clientwire::Kind::TransferLeadership;
        } else {
            return usage(QStringLiteral("member: add <id> <host:port>, promote <id>, remove <id> or transfer <id>"));
        }
    } else {
        return usage(QStringLiteral("%1: unknown command or wrong number of arguments").arg(command));
    }

    // status asks every endpoint, and every member the answers name (the replicated book of client
    // addresses); the others take the first that answers.
    int exitCode = ExitUnreachable;
    QStringList failures;
    QSet<quint64> statusSeen;
    for (qsizetype e = 0; e < endpoints.size(); ++e) {
        const QString endpoint = endpoints.at(e);
        Connection c(tls);
        QString why;
        std::optional<clientwire::Response> r;
        const bool sent = c.open(endpoint, timeoutMs, &why);
        if (sent)
            r = c.call(req, timeoutMs, &why);
        if (!r && sent && clientwire::isWrite(req.kind)) {
            // Sent, and no answer: it may have taken effect. Sent again elsewhere, a txn could run
            // its other branch, so the outcome is said to be unknown instead.
            std::fprintf(stderr, "dengine: %s: %s: the write may or may not have taken effect (read it back)\n", qPrintable(endpoint),
                         qPrintable(why));
            return ExitFailed;
        }
        if (!r) {
            failures << why;
            if (req.kind == clientwire::Kind::Status) {
                if (json)
                    printJson(QJsonObject{{QStringLiteral("endpoint"), endpoint}, {QStringLiteral("error"), why}});
                else
                    print(QStringLiteral("%1  unreachable: %2").arg(endpoint, why));
            }
            continue;
        }
        if (req.kind == clientwire::Kind::LeaseTimeToLive && r->status == 0 && r->remainingMs < 0 && r->leader != 0) {
            // Only the leader times leases: ask it what is left (the members' client addresses are
            // in the replicated book); if that fails, the answer stays "unknown".
            clientwire::Request s;
            s.kind = clientwire::Kind::Status;
            QString ignored;
            const std::optional<clientwire::Response> st = c.call(s, timeoutMs, &ignored);
            for (const clientwire::Member &m : st && st->hasNode && st->node.nodeId != r->leader ? st->node.members : std::vector<clientwire::Member>{}) {
                if (m.id != r->leader || m.clientAddress.empty())
                    continue;
                Connection toLeader(tls);
                std::optional<clientwire::Response> fromLeader;
                if (toLeader.open(text(m.clientAddress), timeoutMs, &ignored))
                    fromLeader = toLeader.call(req, timeoutMs, &ignored);
                if (fromLeader && fromLeader->status == 0)
                    r = std::move(fromLeader);
            }
        }
        const QString status = QLatin1String(r->status < std::size(StatusNames) ? StatusNames[r->status] : "?");
        const bool leaseCall = req.kind == clientwire::Kind::LeaseGrant || clientwire::isLease(req.kind);
        if (r->status == 1 && (clientwire::isWrite(req.kind) || leaseCall)) {
            // A lease that expired or was revoked (a put onto it wrote nothing).
            if (json)
                printJson(QJsonObject{{QStringLiteral("status"), status}, {QStringLiteral("message"), text(r->message)},
                                      {QStringLiteral("revision"), QString::number(r->revision)}});
            else
                std::fprintf(stderr, "dengine: %s: %s\n", qPrintable(status), qPrintable(text(r->message)));
            return ExitNotFound;
        }
        if (r->status != 0 && r->status != 1) {
            if (json)
                printJson(QJsonObject{{QStringLiteral("status"), status}, {QStringLiteral("message"), text(r->message)},
                                      {QStringLiteral("leader"), QString::number(r->leader)}});
            else
                std::fprintf(stderr, "dengine: %s: %s\n", qPrintable(status), qPrintable(text(r->message)));
            if (req.kind != clientwire::Kind::Status)
                return ExitFailed;
            exitCode = ExitFailed;
            continue;
        }
        exitCode = r->status == 1 ? ExitNotFound : ExitOk;
        switch (req.kind) {
        case clientwire::Kind::Put:
        case clientwire::Kind::Delete:
        case clientwire::Kind::Batch:
        case clientwire::Kind::AddLearner:
        case clientwire::Kind::Promote:
        case clientwire::Kind::RemoveMember:
        case clientwire::Kind::Subscribe:
        case clientwire::Kind::TransferLeadership:
        case clientwire::Kind::Watch:       // (not sent this way)
        case clientwire::Kind::CancelWatch: // (not sent this way)
        case clientwire::Kind::Txn: {
            // After the outcome, the keys the sequential puts wrote (of the branch that ran).
            const bool failureRan = req.kind == clientwire::Kind::Txn && !r->succeeded;
            const QStringList keys = sequentialKeys(failureRan ? req.failureOperations : req.operations, r->revision);
            if (json) {
                QJsonObject o{{QStringLiteral("status"), status}, {QStringLiteral("revision"), QString::number(r->revision)}};
                if (req.kind == clientwire::Kind::Txn)
                    o.insert(QStringLiteral("succeeded"), r->succeeded);
                if (!keys.isEmpty())
                    o.insert(QStringLiteral("keys"), QJsonArray::fromStringList(keys));
                printJson(o);
            } else {
                if (req.kind == clientwire::Kind::Txn)
                    print(QStringLiteral("%1 (revision %2)").arg(r->succeeded ? QStringLiteral("SUCCEEDED: the compares held, then ran")
                                                                            : QStringLiteral("FAILED: a compare did not hold, else ran"))
                              .arg(r->revision));
                else
                    print(QStringLiteral("OK (revision %1)").arg(r->revision));
                for (const QString &k : keys)
                    print(k);
            }
            break;
        }
        case clientwire::Kind::LeaseGrant:
        case clientwire::Kind::LeaseKeepAlive:
        case clientwire::Kind::LeaseRevoke: {
            const quint64 id = req.kind == clientwire::Kind::LeaseGrant ? r->lease : req.lease;
            if (json) {
                QJsonObject o{{QStringLiteral("status"), status}, {QStringLiteral("lease"), QString::number(id)},
                              {QStringLiteral("revision"), QString::number(r->revision)}};
                if (req.kind != clientwire::Kind::LeaseRevoke)
                    o.insert(QStringLiteral("ttlMs"), QString::number(r->ttlMs));
                printJson(o);
            } else if (req.kind == clientwire::Kind::LeaseRevoke) {
                print(QStringLiteral("lease %1 revoked (revision %2)").arg(id).arg(r->revision));
            } else {
                print(QStringLiteral("lease %1 %2, ttl %3 ms (revision %4)")
                          .arg(id)
                          .arg(req.kind == clientwire::Kind::LeaseGrant ? QStringLiteral("granted") : QStringLiteral("renewed"))
                          .arg(r->ttlMs)
                          .arg(r->revision));
            }
            break;
        }
        case clientwire::Kind::LeaseTimeToLive: {
            QStringList keys;
            for (const clientwire::KeyValue &kv : r->items)
                keys << text(kv.key);
            if (json) {
                printJson(QJsonObject{{QStringLiteral("status"), status},
                                      {QStringLiteral("lease"), QString::number(req.lease)},
                                      {QStringLiteral("ttlMs"), QString::number(r->ttlMs)},
                                      {QStringLiteral("remainingMs"), QString::number(r->remainingMs)},
                                      {QStringLiteral("keys"), QJsonArray::fromStringList(keys)},
                                      {QStringLiteral("revision"), QString::number(r->revision)}});
            } else {
                // A line of figures, then the keys, one a line.
                print(QStringLiteral("lease %1  ttl %2 ms  remaining %3  keys %4")
                          .arg(req.lease)
                          .arg(r->ttlMs)
                          .arg(r->remainingMs >= 0 ? QStringLiteral("%1 ms").arg(r->remainingMs)
                                                   : QStringLiteral("unknown (only the leader, member %1, times it)").arg(r->leader))
                          .arg(keys.size()));
                for (const QString &k : keys)
                    print(k);
            }
            break;
        }
        case clientwire::Kind::Get:
            if (json) {
                QJsonObject o{{QStringLiteral("status"), status}, {QStringLiteral("key"), text(req.key)},
                              {QStringLiteral("value"), text(r->value)}, {QStringLiteral("revision"), QString::number(r->revision)}};
                if (r->status == 0) {
                    o.insert(QStringLiteral("createRevision"), QString::number(r->createRevision));
                    o.insert(QStringLiteral("modRevision"), QString::number(r->modRevision));
                    o.insert(QStringLiteral("version"), QString::number(r->version));
                }
                printJson(o);
            } else if (r->status == 0)
                print(text(r->value));
            else
                std::fprintf(stderr, "dengine: %s: not found\n", req.key.c_str());
            break;
        case clientwire::Kind::Scan:
        case clientwire::Kind::Range: {
            QJsonArray items;
            for (const clientwire::KeyValue &kv : r->items) {
                if (json)
                    items.append(QJsonObject{{QStringLiteral("key"), text(kv.key)},
                                             {QStringLiteral("value"), text(kv.value)},
                                             {QStringLiteral("createRevision"), QString::number(kv.createRevision)},
                                             {QStringLiteral("modRevision"), QString::number(kv.modRevision)},
                                             {QStringLiteral("version"), QString::number(kv.version)}});
                else
                    print(QStringLiteral("%1 %2").arg(text(kv.key), text(kv.value)));
            }
            if (json)
                printJson(QJsonObject{{QStringLiteral("status"), status}, {QStringLiteral("items"), items},
                                      {QStringLiteral("nextKey"), text(r->nextKey)}, {QStringLiteral("revision"), QString::number(r->revision)}});
            else if (!r->nextKey.empty())
                std::fprintf(stderr, "dengine: more keys from %s (--limit, or range from there)\n", r->nextKey.c_str());
            if (r->items.empty() && exitCode == ExitOk)
                exitCode = ExitNotFound;
            break;
        }
        case clientwire::Kind::Status: {
            const clientwire::NodeStatus &n = r->node;
            if (!membersOnly && statusSeen.contains(n.nodeId))
                continue; // named twice (an endpoint and the address the member advertises)
            statusSeen.insert(n.nodeId);
            for (const clientwire::Member &m : n.members) {
                const QString address = text(m.clientAddress);
                if (!address.isEmpty() && !endpoints.contains(address) && address != text(n.clientAddress))
                    endpoints << address;
            }
            if (membersOnly) {
                if (json) {
                    printJson(QJsonObject{{QStringLiteral("leader"), QString::number(n.leader)},
                                          {QStringLiteral("members"), nodeJson(n).value(QStringLiteral("members"))}});
                } else {
                    for (const clientwire::Member &m : n.members)
                        print(QStringLiteral("%1  peers %2  clients %3  %4%5")
                                  .arg(m.id)
                                  .arg(text(m.address))
                                  .arg(m.clientAddress.empty() ? QStringLiteral("-") : text(m.clientAddress))
                                  .arg(m.learner ? QStringLiteral("learner") : QStringLiteral("voter"))
                                  .arg(m.id == n.leader ? QStringLiteral("  leader") : QString()));
                }
                return ExitOk;
            }
            if (json) {
                QJsonObject o = nodeJson(n);
                o.insert(QStringLiteral("endpoint"), endpoint);
                printJson(o);
            } else {
                QStringList members;
                for (const clientwire::Member &m : n.members)
                    members << QStringLiteral("%1%2").arg(m.id).arg(m.learner ? QStringLiteral("(learner)") : QString());
                print(QStringLiteral("%1  id %2  leader %3  term %4  %5  commit %6  applied %7  %8  members %9  version %10")
                          .arg(endpoint)
                          .arg(n.nodeId)
                          .arg(n.leader)
                          .arg(n.term)
                          .arg(QLatin1String(n.role < std::size(RoleNames) ? RoleNames[n.role] : "?"))
                          .arg(n.commit)
                          .arg(n.applied)
                          .arg(n.ready ? QStringLiteral("ready") : QStringLiteral("not ready"))
                          .arg(members.join(QLatin1Char(',')))
                          .arg(text(n.version)));
            }
            continue; // every endpoint
        }
        }
        return exitCode;
    }
    if (exitCode == ExitUnreachable)
        std::fprintf(stderr, "dengine: no endpoint answered: %s\n", qPrintable(failures.join(QStringLiteral("; "))));
    return exitCode;
}
