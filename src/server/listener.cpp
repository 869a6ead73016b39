// SPDX-License-Identifier: Apache-2.0
#include "server/listener.h"

#include "engine/tlsidentity.h"

#include <QtNetwork/QSslServer>
#include <QtNetwork/QTcpServer>

namespace dengine::server {

bool parseListenAddress(const QString &text, QHostAddress &address, quint16 &port)
{
    const int colon = text.lastIndexOf(QLatin1Char(':'));
    if (colon <= 0)
        return false;
    bool ok = false;
    const uint p = text.mid(colon + 1).toUInt(&ok);
    if (!ok || p > 65535)
        return false;
    const QString host = text.left(colon);
    address = host == QLatin1String("localhost") ? QHostAddress(QHostAddress::LocalHost) : QHostAddress(host);
    port = static_cast<quint16>(p);
    return !address.isNull();
}

QTcpServer *listenFor(const QString &what, const QString &listenAddress, const std::shared_ptr<const engine::TlsIdentity> &tls, int handshakeTimeoutMs,
                      QObject *parent, const std::function<void(const QString &)> &refused, QString *error)
{
    QHostAddress address;
    quint16 port = 0;
    if (!parseListenAddress(listenAddress, address, port)) {
        if (error)
            *error = QStringLiteral("%1 address \"%2\" is not host:port (an IP address or localhost)").arg(what, listenAddress);
        return nullptr;
    }
    QTcpServer *server = nullptr;
    if (tls) {
        auto *s = new QSslServer(parent);
        s->setSslConfiguration(tls->configuration());
        s->setHandshakeTimeout(handshakeTimeoutMs);
        QObject::connect(s, &QSslServer::errorOccurred, s, [refused](QSslSocket *socket, QAbstractSocket::SocketError) {
            refused(QStringLiteral("%1: %2").arg(socket->peerAddress().toString(), socket->errorString()));
        });
        QObject::connect(s, &QSslServer::handshakeInterruptedOnError, s, [refused](QSslSocket *socket, const QSslError &why) {
            refused(QStringLiteral("%1: %2").arg(socket->peerAddress().toString(), why.errorString()));
        });
        server = s;
    } else {
        server = new QTcpServer(parent);
    }
    server->setMaxPendingConnections(64);
    if (!server->listen(address, port)) {
        if (error)
            *error = QStringLiteral("cannot listen for %1 on %2: %3").arg(what, listenAddress, server->errorString());
        delete server;
        return nullptr;
    }
    return server;
}

} // namespace dengine::server
