// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <QtCore/QString>
#include <QtNetwork/QHostAddress>

#include <functional>
#include <memory>

class QObject;
class QTcpServer;

namespace dengine::engine {
class TlsIdentity;
}

namespace dengine::server {

// "host:port" with an IP address or localhost; false when it is not one.
bool parseListenAddress(const QString &text, QHostAddress &address, quint16 &port);

// A listening server for a client door (the client protocol, the HTTP gateway): plain TCP, or TLS
// 1.3 with the node's identity (client certificates of the cluster's authority required) when
// `tls` is set, a handshake bounded by handshakeTimeoutMs. Connections come out of
// pendingConnectionAvailable once ready (for TLS: after the handshake); a client that fails the
// handshake is reported to `refused` (with the reason) and never becomes one. Null with *error
// naming the address when it cannot listen.
QTcpServer *listenFor(const QString &what, const QString &listenAddress, const std::shared_ptr<const engine::TlsIdentity> &tls, int handshakeTimeoutMs,
                      QObject *parent, const std::function<void(const QString &)> &refused, QString *error);

} // namespace dengine::server
