// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <QtCore/QElapsedTimer>
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

// Keeps a flood (a scanner, a misconfigured client retrying in a loop) from drowning the log: at
// most `burst` lines per `windowMs`; the lines held back are counted and said with the next one let
// through. Not thread-safe: one per object, on its thread.
class LogBudget {
public:
    explicit LogBudget(int burst = 5, qint64 windowMs = 10000) : m_burst(burst), m_windowMs(windowMs) {}
    // Whether to write this line; when true, *heldBack is how many were not written since the last
    // one that was (heldBackNote() says it).
    bool take(int *heldBack)
    {
        if (!m_clock.isValid())
            m_clock.start();
        return takeAt(heldBack, m_clock.elapsed());
    }
    // The same at a given time (ms, never decreasing): for tests.
    bool takeAt(int *heldBack, qint64 nowMs)
    {
        if (m_windowStart < 0 || nowMs - m_windowStart >= m_windowMs) {
            m_windowStart = nowMs;
            m_used = 0;
        }
        if (m_used >= m_burst) {
            ++m_heldBack;
            return false;
        }
        ++m_used;
        *heldBack = m_heldBack;
        m_heldBack = 0;
        return true;
    }

private:
    int m_burst;
    qint64 m_windowMs;
    QElapsedTimer m_clock;
    qint64 m_windowStart = -1;
    int m_used = 0;
    int m_heldBack = 0;
};

// What LogBudget held back, for the end of the line it lets through ("" when nothing was).
inline QString heldBackNote(int heldBack)
{
    return heldBack > 0 ? QStringLiteral(" (%1 more like it since the last one logged)").arg(heldBack) : QString();
}

} // namespace dengine::server
