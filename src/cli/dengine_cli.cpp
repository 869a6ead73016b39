// SPDX-License-Identifier: Apache-2.0
// dengine: the command line of a standalone DEngine cluster (like etcdctl), over the client
// protocol (client/clientcodec.h) to any member's client port.
//
//   dengine [--endpoints 127.0.0.1:8001,127.0.0.1:8002] [--json] [--timeout MS]
//           [--cacert ca.pem --cert client-me.pem --key client-me.key] <command> ...
//     put <key> <value>          get <key> [--consistency linearizable|lease|local]
//     del <key>                  scan <prefix> [--limit N]      range <begin> [<end>] [--limit N]
//     batch [FILE]               lines "put <key> <value>" / "del <key>" (stdin without FILE), one atomic write
//     txn [FILE]                 lines "if <value|version|create|mod> <key> <op> <operand>", "then ...", "else ...": one transaction
//     status                     every member (the endpoints and the members they name): id, leader, term, role, commit, applied, ready, members, version
//     members                    the membership; member add <id> <host:port> | promote <id> | remove <id> | transfer <id>
//     bench [rows LIST] [seconds S] [value-size B]   the reference workload through DEngineClient (src/cli/bench.cpp)
//
// Exit status: 0 done; 1 get/scan found nothing (NotFound); 2 bad usage; 3 no endpoint could be
// reached; 4 the cluster answered with an error status (printed, with its reason), or a write was
// sent and not answered in time (its outcome unknown: it is not sent to another endpoint).
#include "cli/bench.h"
#include "client/clientcodec.h"
#include "engine/tlsidentity.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QSet>
#include <QtCore/QCoreApplication>
#include <QtCore/QElapsedTimer>
#include <QtCore/QFile>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QTextStream>
#include <QtNetwork/QSslSocket>

#include <cstdio>
#include <optional>

using namespace dengine;

namespace {

constexpr int ExitOk = 0, ExitNotFound = 1, ExitUsage = 2, ExitUnreachable = 3, ExitFailed = 4;

const char *const StatusNames[] = {"Ok", "NotFound", "Stopping", "Timeout", "InvalidArgument", "NoQuorum", "Busy", "StorageFailure", "Refused"};
const char *const RoleNames[] = {"stopped", "follower", "pre-candidate", "candidate", "leader"};

QString text(const std::string &s) { return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size())); }

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

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("dengine"));
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "The command line of a standalone DEngine cluster.\n\n"
        "Commands:\n"
        "  put <key> <value>       get <key>       del <key>\n"
        "  scan <prefix>           range <begin> [<end>]\n"
        "  batch [FILE]            lines \"put <key> <value>\" or \"del <key>\" (stdin without FILE): one atomic write\n"
        "  txn [FILE]              lines \"if <value|version|create|mod> <key> <=|!=|<|>> <operand>\", \"then put|del ...\",\n"
        "                          \"else put|del ...\" (stdin without FILE): one transaction (compare and swap)\n"
        "  status                  every member (the endpoints, and the members their answers name): id, leader, term,\n"
        "                          role, commit, applied, ready\n"
        "  members                 the membership as the first endpoint that answers applied it\n"
        "  member add <id> <host:port> | promote <id> | remove <id> | transfer <id>\n"
        "                          membership changes (a new node runs dengined --join first); safe to repeat\n"
        "  bench [rows put:1,put:16,put:64,lget:16,sget:16] [seconds S] [value-size B]\n"
        "                          the reference workload through DEngineClient: progress, then a table (--json: lines)\n\n"
        "Exit status: 0 done; 1 not found; 2 bad usage; 3 no endpoint reachable; 4 the cluster answered an error, or a\n"
        "write went unanswered (its outcome unknown)."));
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
    for (const auto *o : {&endpointsOpt, &jsonOpt, &timeoutOpt, &consistencyOpt, &limitOpt, &caOpt, &certOpt, &keyOpt, &clusterOpt})
        p.addOption(*o);
    p.addPositionalArgument(QStringLiteral("command"), QStringLiteral("put, get, del, scan, range, batch, status"));
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

    if (command == QLatin1String("bench")) {
        // Through DEngineClient, as an application would: TLS as above, or plain TCP.
        DEngineClientConfig cc;
        cc.endpoints = endpoints;
        cc.insecure = !tls;
        cc.tlsCaFile = caFile;
        cc.tlsCertificateFile = certFile;
        cc.tlsKeyFile = keyFile;
        const QString cluster = value(clusterOpt, "DENGINE_CLUSTER");
        cc.clusterId = cluster.isEmpty() ? 1 : cluster.toULongLong();
        cc.requestTimeoutMs = timeoutMs;
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
    if (command == QLatin1String("put") && need(2)) {
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
            if (w[0] == "put" && w.size() == 3)
                req.operations.push_back({false, w[1].toStdString(), w[2].toStdString()});
            else if (w[0] == "del" && w.size() == 2)
                req.operations.push_back({true, w[1].toStdString(), {}});
            else
                return usage(QStringLiteral("batch line %1: \"put <key> <value>\" or \"del <key>\"").arg(lineNo));
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
                                            "\"then put <key> <value>\", \"then del <key>\", \"else put ...\" or \"else del ...\"")
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
                std::vector<clientwire::Operation> &into = w[0] == "then" ? req.operations : req.failureOperations;
                if (w[1] == "put" && w.size() == 4)
                    into.push_back({false, w[2].toStdString(), w[3].toStdString()});
                else if (w[1] == "del" && w.size() == 3)
                    into.push_back({true, w[2].toStdString(), {}});
                else
                    return bad();
            } else {
                return bad();
            }
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
        const QString status = QLatin1String(r->status < std::size(StatusNames) ? StatusNames[r->status] : "?");
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
            if (json)
                printJson(QJsonObject{{QStringLiteral("status"), status}, {QStringLiteral("revision"), QString::number(r->revision)}});
            else
                print(QStringLiteral("OK (revision %1)").arg(r->revision));
            break;
        case clientwire::Kind::Txn:
            if (json)
                printJson(QJsonObject{{QStringLiteral("status"), status}, {QStringLiteral("succeeded"), r->succeeded},
                                      {QStringLiteral("revision"), QString::number(r->revision)}});
            else
                print(QStringLiteral("%1 (revision %2)").arg(r->succeeded ? QStringLiteral("SUCCEEDED: the compares held, then ran")
                                                                        : QStringLiteral("FAILED: a compare did not hold, else ran"))
                          .arg(r->revision));
            break;
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
