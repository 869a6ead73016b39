// SPDX-License-Identifier: Apache-2.0
// Uses only the installed headers and library: a one-node cluster becomes ready, takes a write and
// reads it back, then stops. Exit status 0 on success.
#include <dengine/dengine.h>

#include <QtCore/QCoreApplication>
#include <QtCore/QTemporaryDir>
#include <QtNetwork/QTcpServer>

#include <cstdio>

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QTemporaryDir dir;
    QTcpServer probe; // a free port
    probe.listen(QHostAddress::LocalHost, 0);
    const quint16 port = probe.serverPort();
    probe.close();

    DEngineConfig config;
    config.nodeId = 1;
    config.peers.insert(1, QStringLiteral("127.0.0.1:%1").arg(port));
    config.dataDirectory = dir.path();
    config.tickIntervalMs = 10;
    config.insecure = true; // one node, one machine
    DEngine engine(config);
    if (!engine.start() || !engine.waitForReady(30000)) {
        std::fprintf(stderr, "consumer: the engine did not become ready\n");
        return 1;
    }
    // The futures finish on this (the owner) thread's event loop: wait with waitForResult, which
    // runs it, never with QFuture::waitForFinished here.
    const DEngineResult put = DEngine::waitForResult(engine.put("hello", "world"));
    const DEngineResult get = DEngine::waitForResult(engine.get("hello"));
    if (!put.ok() || get.value != "world") {
        std::fprintf(stderr, "consumer: put/get failed: %s\n", qPrintable(get.message));
        return 1;
    }
    engine.stop();
    if (!engine.waitForStopped(30000))
        return 1;
    std::printf("consumer: ok (revision %llu)\n", static_cast<unsigned long long>(get.revision));
    return 0;
}
