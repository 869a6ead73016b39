// SPDX-License-Identifier: Apache-2.0
// dengined: one member of a standalone DEngine cluster, a process of its own. It hosts the same
// DEngine an application embeds and serves the client protocol (server/clientservice.h) on its
// client port, so DEngineClient and the dengine command line reach the cluster through any member.
//
//   dengined --config /etc/dengine/node1.json [--client-address 127.0.0.1:8001] [--data-dir DIR] [--join]
//            [--lifecycle-log FILE]
//
// Exit status (for scripts and service managers):
//   0  stopped on request (SIGTERM, SIGINT), or removed from the cluster
//   1  the node failed: storage, damaged data, a certificate, its peer port in use
//   2  bad usage or configuration (the message names the field)
//   3  the client port (or the HTTP gateway's) could not be opened (in use, bad address)
#include <dengine/dengine.h>

#include "engine/tlsidentity.h"
#include "server/clientservice.h"
#include "server/httpgateway.h"
#include "server/servermetrics.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QDateTime>
#include <QtCore/QFile>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QLoggingCategory>
#include <QtCore/QSocketNotifier>
#include <QtNetwork/QHostAddress>

#include <csignal>
#include <memory>
#include <cstdio>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

Q_LOGGING_CATEGORY(lcServer, "dengine.server")

namespace {

constexpr int ExitStopped = 0;
constexpr int ExitFailed = 1;
constexpr int ExitUsage = 2;
constexpr int ExitClientPort = 3;

int g_signalPipe[2] = {-1, -1};

void onSignal(int)
{
    const char b = 1;
    [[maybe_unused]] const ssize_t n = ::write(g_signalPipe[1], &b, 1); // async-signal-safe
}

// A value from the flag, else the environment variable, else `fallback` (the file's).
QString pick(const QCommandLineParser &p, const QCommandLineOption &o, const char *env, const QString &fallback)
{
    if (p.isSet(o))
        return p.value(o);
    if (qEnvironmentVariableIsSet(env))
        return qEnvironmentVariable(env);
    return fallback;
}

int fail(int code, const QString &message)
{
    std::fprintf(stderr, "dengined: %s\n", qPrintable(message));
    return code;
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
    QCoreApplication::setApplicationName(QStringLiteral("dengined"));
    QCoreApplication::setApplicationVersion(QStringLiteral(DENGINE_VERSION));
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "One member of a standalone DEngine cluster.\n\n"
        "The configuration file is DEngineConfig's JSON with a \"server\" section:\n"
        "  {\"nodeId\": 1, \"dataDirectory\": \"/var/lib/dengine/1\",\n"
        "   \"peers\": {\"1\": \"10.0.0.1:7001\", \"2\": \"10.0.0.2:7001\", \"3\": \"10.0.0.3:7001\"},\n"
        "   \"tlsCaFile\": \"ca.pem\", \"tlsCertificateFile\": \"node-1.pem\", \"tlsKeyFile\": \"node-1.key\",\n"
        "   \"server\": {\"clientAddress\": \"10.0.0.1:8001\", \"httpAddress\": \"10.0.0.1:8080\", \"maxClientConnections\": 1024}}\n"
        "The client port speaks TLS 1.3 with the node's certificate, and takes clients whose certificate the cluster's\n"
        "authority signed (dengine-ctl certs client NAME); insecureClients: true opens it as plain TCP instead (on an\n"
        "insecure node it is plain anyway). httpAddress (optional) opens the HTTP/JSON gateway (etcd's /v3/kv/put, range,\n"
        "deleterange; /health; /metrics) with the same TLS rule. Each member writes where clients reach it into the\n"
        "cluster's replicated address book, so a client that knows one member finds the others and the leader:\n"
        "advertiseClientAddress (default: clientAddress, unless that listens on a wildcard address).\n"
        "Flags win over DENGINE_* environment variables, which win over the file.\n\n"
        "Exit status: 0 stopped on request (SIGTERM, SIGINT) or removed from the cluster; 1 the node\n"
        "failed (storage, damaged data, certificate, peer port in use); 2 bad usage or configuration;\n"
        "3 the client port or the HTTP gateway's could not be opened."));
    p.addHelpOption();
    p.addVersionOption();
    QCommandLineOption configOpt(QStringLiteral("config"), QStringLiteral("The configuration file (DENGINE_CONFIG)."), QStringLiteral("FILE"));
    QCommandLineOption clientOpt(QStringLiteral("client-address"), QStringLiteral("Where clients connect, host:port (DENGINE_CLIENT_ADDRESS)."),
                                 QStringLiteral("HOST:PORT"));
    QCommandLineOption advertiseOpt(QStringLiteral("advertise-client-address"),
                                    QStringLiteral("Where clients reach this member, host:port, when not the client address (DENGINE_ADVERTISE_CLIENT_ADDRESS)."),
                                    QStringLiteral("HOST:PORT"));
    QCommandLineOption httpOpt(QStringLiteral("http-address"), QStringLiteral("The HTTP/JSON gateway, host:port (DENGINE_HTTP_ADDRESS)."),
                               QStringLiteral("HOST:PORT"));
    QCommandLineOption dataOpt(QStringLiteral("data-dir"), QStringLiteral("The data directory (DENGINE_DATA_DIR)."), QStringLiteral("DIR"));
    QCommandLineOption joinOpt(QStringLiteral("join"), QStringLiteral("Join a running cluster (DENGINE_JOIN=1): see DEngineConfig::join."));
    QCommandLineOption lifecycleOpt(QStringLiteral("lifecycle-log"),
                                    QStringLiteral("Append every lifecycle signal to FILE as a JSON line (DENGINE_LIFECYCLE_LOG): start, ready, "
                                                   "leaderChanged, termChanged, firstCommit, error, stopping, stopped."),
                                    QStringLiteral("FILE"));
    for (const auto *o : {&configOpt, &clientOpt, &advertiseOpt, &httpOpt, &dataOpt, &joinOpt, &lifecycleOpt})
        p.addOption(*o);
    p.process(app);

    const QString configPath = pick(p, configOpt, "DENGINE_CONFIG", {});
    if (configPath.isEmpty())
        return fail(ExitUsage, QStringLiteral("no configuration: --config FILE or DENGINE_CONFIG"));
    QString error;
    DEngineConfig config = DEngineConfig::fromFile(configPath, &error);
    if (!error.isEmpty())
        return fail(ExitUsage, QStringLiteral("%1: %2").arg(configPath, error));
    // The server's own section (DEngineConfig::fromFile leaves it to us).
    QFile file(configPath);
    QJsonObject server;
    if (file.open(QIODevice::ReadOnly)) {
        const QJsonValue v = QJsonDocument::fromJson(file.readAll()).object().value(QLatin1String("server"));
        if (!v.isUndefined() && !v.isObject())
            return fail(ExitUsage, QStringLiteral("%1: server: must be an object").arg(configPath));
        server = v.toObject();
        for (auto it = server.begin(); it != server.end(); ++it)
            if (it.key() != QLatin1String("clientAddress") && it.key() != QLatin1String("maxClientConnections")
                && it.key() != QLatin1String("insecureClients") && it.key() != QLatin1String("httpAddress")
                && it.key() != QLatin1String("advertiseClientAddress"))
                return fail(ExitUsage, QStringLiteral("%1: server: unknown field \"%2\"").arg(configPath, it.key()));
    }
    config.dataDirectory = pick(p, dataOpt, "DENGINE_DATA_DIR", config.dataDirectory);
    if (p.isSet(joinOpt) || qEnvironmentVariable("DENGINE_JOIN") == QLatin1String("1"))
        config.join = true;
    if (const QString why = config.validate(); !why.isEmpty())
        return fail(ExitUsage, QStringLiteral("%1: %2").arg(configPath, why));

    dengine::server::ClientService::Options so;
    so.listenAddress = pick(p, clientOpt, "DENGINE_CLIENT_ADDRESS", server.value(QLatin1String("clientAddress")).toString());
    if (so.listenAddress.isEmpty())
        return fail(ExitUsage, QStringLiteral("no client address: --client-address, DENGINE_CLIENT_ADDRESS or server.clientAddress"));
    so.advertisedAddress = pick(p, advertiseOpt, "DENGINE_ADVERTISE_CLIENT_ADDRESS", server.value(QLatin1String("advertiseClientAddress")).toString());
    if (!so.advertisedAddress.isEmpty()) {
        DEngineConfig probe = config;
        probe.clientAddress = so.advertisedAddress;
        if (const QString why = probe.validate(); !why.isEmpty())
            return fail(ExitUsage, QStringLiteral("advertiseClientAddress: %1").arg(why));
    }
    if (server.contains(QLatin1String("maxClientConnections"))) {
        const int n = server.value(QLatin1String("maxClientConnections")).toInt(-1);
        if (n < 1)
            return fail(ExitUsage, QStringLiteral("%1: server.maxClientConnections: must be a positive integer").arg(configPath));
        so.maxConnections = n;
    }
    // The client port: TLS with the node's own identity, unless the node is insecure or the
    // configuration says insecureClients (plain TCP: whoever reaches it can read and write).
    const QJsonValue insecureClients = server.value(QLatin1String("insecureClients"));
    if (!insecureClients.isUndefined() && !insecureClients.isBool())
        return fail(ExitUsage, QStringLiteral("%1: server.insecureClients: must be true or false").arg(configPath));
    if (!config.insecure && !insecureClients.toBool()) {
        so.tls = dengine::engine::TlsIdentity::load(config, &error);
        if (!so.tls)
            return fail(ExitFailed, QStringLiteral("client port: %1").arg(error));
    }
    // A frame holds at most a batch: its keys and values, with room for the framing.
    so.maxFrameBytes = static_cast<quint32>(std::min<qint64>(UINT32_MAX, 4LL * config.maxValueBytes + 2LL * config.maxKeyBytes * config.maxBatchOperations
                                                                            + (1 << 20)));
    so.version = QCoreApplication::applicationVersion();

    // SIGTERM and SIGINT: a graceful stop (a leader hands over first), through the event loop.
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, g_signalPipe) != 0)
        return fail(ExitFailed, QStringLiteral("socketpair: %1").arg(qt_error_string(errno)));
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);

    DEngine engine(config);
    // The lifecycle log: one JSON line per signal, in the order delivered, each written at once
    // (O_APPEND, one write: a kill -9 loses nothing the kernel took).
    int lifecycleFd = -1;
    if (const QString path = pick(p, lifecycleOpt, "DENGINE_LIFECYCLE_LOG", {}); !path.isEmpty()) {
        lifecycleFd = ::open(QFile::encodeName(path).constData(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (lifecycleFd < 0)
            return fail(ExitUsage, QStringLiteral("--lifecycle-log %1: %2").arg(path, qt_error_string(errno)));
    }
    const auto lifecycle = [&](const char *event, QJsonObject fields) {
        if (lifecycleFd < 0)
            return;
        fields.insert(QStringLiteral("event"), QLatin1String(event));
        fields.insert(QStringLiteral("node"), QString::number(config.nodeId));
        fields.insert(QStringLiteral("pid"), qint64(::getpid()));
        fields.insert(QStringLiteral("ms"), QDateTime::currentMSecsSinceEpoch());
        const QByteArray line = QJsonDocument(fields).toJson(QJsonDocument::Compact) + '\n';
        [[maybe_unused]] const ssize_t n = ::write(lifecycleFd, line.constData(), static_cast<size_t>(line.size()));
    };
    const auto term = [&] { return QString::number(engine.currentTerm()); };
    lifecycle("start", {{QStringLiteral("version"), QCoreApplication::applicationVersion()},
                        {QStringLiteral("allocator"), QStringLiteral(DENGINE_ALLOCATOR_NAME)}});
    qCInfo(lcServer).noquote() << QStringLiteral("node %1: dengined %2 starting (allocator: %3)")
                                      .arg(config.nodeId)
                                      .arg(QCoreApplication::applicationVersion(), QStringLiteral(DENGINE_ALLOCATOR_NAME));
    QObject::connect(&engine, &DEngine::leaderChanged, &app, [&](NodeId leader) {
        lifecycle("leaderChanged", {{QStringLiteral("leader"), QString::number(leader)}, {QStringLiteral("term"), term()}});
    });
    QObject::connect(&engine, &DEngine::termChanged, &app, [&](quint64 t) { lifecycle("termChanged", {{QStringLiteral("term"), QString::number(t)}}); });
    QObject::connect(&engine, &DEngine::firstCommit, &app, [&](quint64 index) {
        lifecycle("firstCommit", {{QStringLiteral("index"), QString::number(index)}, {QStringLiteral("term"), term()}});
    });
    QObject::connect(&engine, &DEngine::ready, &app, [&] {
        lifecycle("ready", {{QStringLiteral("leader"), QString::number(engine.currentLeader())}, {QStringLiteral("term"), term()}});
    });
    QObject::connect(&engine, &DEngine::errorOccurred, &app, [&](DEngine::Error, const QString &message) {
        lifecycle("error", {{QStringLiteral("message"), message}});
    });
    QObject::connect(&engine, &DEngine::stopping, &app, [&] { lifecycle("stopping", {}); });
    QObject::connect(&engine, &DEngine::stopped, &app, [&] { lifecycle("stopped", {}); });
    dengine::server::ServerMetrics metrics;
    dengine::server::ClientService clients(&engine, so);
    clients.setMetrics(&metrics);
    std::unique_ptr<dengine::server::HttpGateway> http;
    const QString httpAddress = pick(p, httpOpt, "DENGINE_HTTP_ADDRESS", server.value(QLatin1String("httpAddress")).toString());
    if (!httpAddress.isEmpty()) {
        dengine::server::HttpGateway::Options ho;
        ho.listenAddress = httpAddress;
        ho.tls = so.tls;
        ho.clusterId = config.clusterId;
        ho.maxConnections = so.maxConnections;
        ho.maxBodyBytes = so.maxFrameBytes;
        http = std::make_unique<dengine::server::HttpGateway>(&engine, &metrics, ho);
    }
    int exitCode = ExitStopped;
    QSocketNotifier signalNotifier(g_signalPipe[0], QSocketNotifier::Read);
    QObject::connect(&signalNotifier, &QSocketNotifier::activated, &app, [&] {
        char b;
        [[maybe_unused]] const ssize_t n = ::read(g_signalPipe[0], &b, 1);
        qCInfo(lcServer).noquote() << QStringLiteral("node %1: asked to stop").arg(config.nodeId);
        engine.stop();
    });
    QObject::connect(&engine, &DEngine::errorOccurred, &app, [&](DEngine::Error, const QString &message) {
        std::fprintf(stderr, "dengined: node %llu: %s\n", static_cast<unsigned long long>(config.nodeId), qPrintable(message));
        exitCode = ExitFailed;
    });
    QObject::connect(&engine, &DEngine::ready, &app, [&] {
        qCInfo(lcServer).noquote() << QStringLiteral("node %1: ready (leader %2, term %3); clients on port %4")
                                          .arg(config.nodeId)
                                          .arg(engine.currentLeader())
                                          .arg(engine.currentTerm())
                                          .arg(clients.port());
    });
    QObject::connect(&engine, &DEngine::stopping, &app, [&] {
        clients.close();
        if (http)
            http->close();
    });
    QObject::connect(&engine, &DEngine::stopped, &app, [&] { QCoreApplication::exit(exitCode); });

    if (!clients.listen(&error))
        return fail(ExitClientPort, error);
    if (http && !http->listen(&error))
        return fail(ExitClientPort, error);
    if (!so.tls)
        qCWarning(lcServer).noquote() << QStringLiteral("node %1: INSECURE: the client port %2 speaks plain TCP; anyone who reaches it can "
                                                        "read and write the cluster")
                                             .arg(config.nodeId)
                                             .arg(so.listenAddress);
    // Where clients reach this member goes into the replicated address book (DEngineConfig::
    // clientAddress), known once the port is open (port 0: the one it got).
    const QString advertised = clients.advertisedAddress();
    const QString advertisedHost = advertised.left(advertised.lastIndexOf(QLatin1Char(':')));
    if (so.advertisedAddress.isEmpty() && (QHostAddress(advertisedHost) == QHostAddress::AnyIPv4 || QHostAddress(advertisedHost) == QHostAddress::AnyIPv6
                                           || advertisedHost == QLatin1String("*") || advertisedHost.isEmpty())) {
        qCWarning(lcServer).noquote() << QStringLiteral("node %1: the client port listens on %2, which is no address a client can use: set "
                                                        "server.advertiseClientAddress so that clients can find this member")
                                             .arg(config.nodeId)
                                             .arg(advertised);
    } else {
        config.clientAddress = advertised;
        engine.setConfig(config);
    }
    if (!engine.start())
        return fail(ExitUsage, engine.errorString());
    return app.exec();
}
