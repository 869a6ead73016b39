// SPDX-License-Identifier: Apache-2.0
// helloworld: three DEngine nodes embedded in one process, on 127.0.0.1.
//
// It prints every lifecycle signal as it arrives, waits for the cluster to be ready (instead of
// polling), writes and reads through different nodes, then stops the leader and shows the others
// electing a new one and carrying on. Data lives under a temporary directory (or --dir DIR, which
// keeps it: run twice to see a restart recover the data). The nodes speak mutual TLS, with a
// certificate authority and node certificates made under DIR/certs on the first run (what
// `dengine-ctl certs init|node` makes); --insecure runs them on plain TCP instead.
//
//   helloworld [--dir DIR] [--base-port N] [--insecure] [--verbose]
#include <dengine/dengine.h>

#include "certs/certs.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QDir>
#include <QtCore/QElapsedTimer>
#include <QtCore/QFile>
#include <QtCore/QEventLoop>
#include <QtCore/QFutureWatcher>
#include <QtCore/QLoggingCategory>
#include <QtCore/QMetaEnum>
#include <QtCore/QTemporaryDir>
#include <QtCore/QTextStream>
#include <QtCore/QTimer>

#include <map>
#include <memory>

namespace {

QTextStream out(stdout);
QElapsedTimer clock_;

void say(const QString &line)
{
    out << QStringLiteral("[%1 ms] ").arg(clock_.elapsed(), 6) << line << Qt::endl;
}

QString statusName(DEngine::Status s) { return QString::fromLatin1(QMetaEnum::fromType<DEngine::Status>().valueToKey(static_cast<int>(s))); }

// Runs the event loop (so signals keep printing) until the future finishes. A demo may wait like
// this; applications attach a continuation instead: f.then(this, [](const DEngineResult &r) {...}).
DEngineResult wait(QFuture<DEngineResult> f) { return DEngine::waitForResult(f); }

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Three embedded DEngine nodes: lifecycle signals, key-value calls, a failover."));
    parser.addHelpOption();
    QCommandLineOption dirOption(QStringLiteral("dir"), QStringLiteral("Keep the nodes' data here (default: a temporary directory)."),
                                 QStringLiteral("DIR"));
    QCommandLineOption verboseOption(QStringLiteral("verbose"), QStringLiteral("Show the engine's own log lines (dengine.*) too."));
    QCommandLineOption portOption(QStringLiteral("base-port"), QStringLiteral("Nodes listen on N+1..N+3 (default 17300)."),
                                  QStringLiteral("N"), QStringLiteral("17300"));
    QCommandLineOption insecureOption(QStringLiteral("insecure"), QStringLiteral("Plain TCP between the nodes instead of mutual TLS."));
    parser.addOption(dirOption);
    parser.addOption(portOption);
    parser.addOption(insecureOption);
    parser.addOption(verboseOption);
    parser.process(app);
    if (!parser.isSet(verboseOption))
        QLoggingCategory::setFilterRules(QStringLiteral("dengine.*.debug=false\ndengine.*.info=false"));
    clock_.start();

    QTemporaryDir temp;
    const QString root = parser.isSet(dirOption) ? parser.value(dirOption) : temp.path();
    const int basePort = parser.value(portOption).toInt();
    QMap<NodeId, QString> peers;
    for (NodeId id = 1; id <= 3; ++id)
        peers.insert(id, QStringLiteral("127.0.0.1:%1").arg(basePort + static_cast<int>(id)));

    // Mutual TLS: the cluster's authority and a certificate per node, made once (like
    // `dengine-ctl certs init DIR --cluster 1` and `dengine-ctl certs node DIR --cluster 1 --node N`).
    const bool tls = !parser.isSet(insecureOption);
    const QString certs = QDir(root).filePath(QStringLiteral("certs"));
    if (tls && !QFile::exists(certs + QStringLiteral("/ca.pem"))) {
        QDir().mkpath(certs);
        std::string error;
        dengine::certs::Options o;
        o.cluster = 1;
        bool ok = dengine::certs::createAuthority(certs.toStdString(), o, &error);
        for (NodeId id = 1; ok && id <= 3; ++id)
            ok = dengine::certs::createMember(certs.toStdString(), id, o, &error);
        if (!ok) {
            say(QStringLiteral("cannot make the certificates: %1").arg(QString::fromStdString(error)));
            return 1;
        }
        say(QStringLiteral("made a certificate authority and three node certificates in %1").arg(certs));
    }

    std::map<NodeId, std::unique_ptr<DEngine>> nodes;
    for (NodeId id = 1; id <= 3; ++id) {
        DEngineConfig config;
        config.nodeId = id;
        config.peers = peers;
        config.dataDirectory = QDir(root).filePath(QStringLiteral("node%1").arg(id));
        config.tickIntervalMs = 50;  // elections in 0.5-1 s
        if (tls) {
            config.tlsCaFile = certs + QStringLiteral("/ca.pem");
            config.tlsCertificateFile = certs + QStringLiteral("/node-%1.pem").arg(id);
            config.tlsKeyFile = certs + QStringLiteral("/node-%1.key").arg(id);
        } else {
            config.insecure = true;
        }
        auto node = std::make_unique<DEngine>(config);
        DEngine *n = node.get();
        const QString who = QStringLiteral("node %1:").arg(id);
        QObject::connect(n, &DEngine::ready, [=] { say(who + QStringLiteral(" ready (leader %1, term %2)").arg(n->currentLeader()).arg(n->currentTerm())); });
        QObject::connect(n, &DEngine::leaderChanged, [=](NodeId leader) {
            say(who + (leader ? QStringLiteral(" leader is now node %1").arg(leader) : QStringLiteral(" no leader known")));
        });
        QObject::connect(n, &DEngine::termChanged, [=](quint64 term) { say(who + QStringLiteral(" term %1").arg(term)); });
        QObject::connect(n, &DEngine::firstCommit, [=](quint64 index) { say(who + QStringLiteral(" first commit of the term at index %1").arg(index)); });
        QObject::connect(n, &DEngine::stopping, [=] { say(who + QStringLiteral(" stopping")); });
        QObject::connect(n, &DEngine::stopped, [=] { say(who + QStringLiteral(" stopped")); });
        QObject::connect(n, &DEngine::errorOccurred, [=](DEngine::Error, const QString &message) { say(who + QStringLiteral(" ERROR ") + message); });
        nodes[id] = std::move(node);
    }
    say(QStringLiteral("starting three nodes, data in %1, %2").arg(root, tls ? QStringLiteral("mutual TLS between them") : QStringLiteral("plain TCP between them (insecure)")));
    for (auto &[id, n] : nodes)
        if (!n->start())
            return 1;
    for (auto &[id, n] : nodes) {
        if (!n->waitForReady(30000)) {
            say(QStringLiteral("node %1 did not become ready (ports %2-%3 taken? try --base-port)").arg(id).arg(basePort + 1).arg(basePort + 3));
            return 1;
        }
    }

    const NodeId leader = nodes[1]->currentLeader();
    const NodeId follower = leader == 1 ? 2 : 1;
    const QByteArray visits = QByteArray("greeting/visits");
    const DEngineResult before = wait(nodes[follower]->get(visits));
    const int count = before.ok() ? before.value.toInt() : 0;
    say(QStringLiteral("node %1 (a follower) writes; the write is forwarded to the leader, node %2").arg(follower).arg(leader));
    DEngineResult w = wait(nodes[follower]->batch({DEngineOperation::put("greeting/text", "hello, world"),
                                                  DEngineOperation::put(visits, QByteArray::number(count + 1))}));
    say(QStringLiteral("  batch -> %1 at revision %2").arg(statusName(w.status)).arg(w.revision));
    const NodeId third = 6 - leader - follower;
    const DEngineResult g = wait(nodes[third]->get("greeting/text"));
    say(QStringLiteral("node %1 reads it back (linearizable): \"%2\" (%3 visit(s) so far)")
            .arg(third)
            .arg(QString::fromUtf8(g.value))
            .arg(count + 1));
    const DEngineResult s = wait(nodes[leader]->scan("greeting/"));
    say(QStringLiteral("node %1 scans \"greeting/\": %2 key(s)").arg(leader).arg(s.items.size()));

    say(QStringLiteral("stopping the leader, node %1: the others elect a new one").arg(leader));
    QElapsedTimer failover;
    failover.start();
    nodes[leader]->stop();
    nodes[leader]->waitForStopped(10000);
    DEngineResult after;
    do {
        after = wait(nodes[follower]->put("greeting/after-failover", "still here"));
    } while (after.status == DEngine::Status::NoQuorum || after.status == DEngine::Status::Timeout);
    say(QStringLiteral("a write through node %1 succeeded %2 ms after the leader stopped (%3, leader now node %4)")
            .arg(follower)
            .arg(failover.elapsed())
            .arg(statusName(after.status))
            .arg(nodes[follower]->currentLeader()));

    for (auto &[id, n] : nodes)
        n->stop();
    for (auto &[id, n] : nodes)
        n->waitForStopped(10000);
    say(QStringLiteral("done"));
    return 0;
}
