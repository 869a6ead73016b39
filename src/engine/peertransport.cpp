// SPDX-License-Identifier: Apache-2.0
#include "engine/peertransport.h"

#include "transport/hellogate.h"

#include <QtCore/QLoggingCategory>
#include <QtCore/QTimer>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QSslSocket>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <optional>

Q_LOGGING_CATEGORY(lcTransport, "dengine.transport")

namespace dengine::engine {

namespace {
// Bytes handed to a socket but not yet on the wire before we stop handing it more: the rest waits
// in our bounded queue, where old frames can still be dropped.
constexpr qint64 SocketBacklog = 4 << 20;

QHostAddress toAddress(const QString &host)
{
    if (host == QLatin1String("localhost"))
        return QHostAddress(QHostAddress::LocalHost);
    return QHostAddress(host);
}

// Hands each accepted descriptor to the transport before anything is read from it: the transport
// decides whether to take it (the pending-connection cap) and wraps it, plain or TLS.
class DescriptorServer final : public QTcpServer {
public:
    explicit DescriptorServer(std::function<void(qintptr)> onDescriptor, QObject *parent)
        : QTcpServer(parent), m_onDescriptor(std::move(onDescriptor))
    {
    }

protected:
    void incomingConnection(qintptr descriptor) override { m_onDescriptor(descriptor); }

private:
    std::function<void(qintptr)> m_onDescriptor;
};

// Pre-Hello sockets buffer no more than a Hello and a TLS record or two.
constexpr qint64 PreHelloReadBuffer = 16 << 10;
} // namespace

struct PeerTransport::Outbound {
    QTcpSocket *socket = nullptr;
    bool connected = false;
    std::deque<std::string> queue; // framed bytes, Hello not included
    qint64 queuedBytes = 0;
    int backoffMs = 0;
    QTimer *retry = nullptr;
    QString lastTlsError; // logged once until it changes
};

struct PeerTransport::Inbound {
    explicit Inbound(quint32 maxFrame) : reader(maxFrame) {}
    std::optional<transport::HelloGate> gate; // until the Hello was accepted
    transport::FrameReader reader;            // after it
    raft::NodeId peer = 0;                    // set once its Hello was accepted
    quint64 order = 0;                        // acceptance order (the oldest of a peer goes first)
    QTimer *deadline = nullptr;               // the handshake's (TLS and Hello)
};

PeerTransport::PeerTransport(Options options, Receiver onReceive, UnreachableCallback onUnreachable, QObject *parent)
    : QObject(parent), m_opts(std::move(options)), m_onReceive(std::move(onReceive)), m_onUnreachable(std::move(onUnreachable))
{
}

PeerTransport::~PeerTransport() { close(); }

bool PeerTransport::listen(QString *error, QAbstractSocket::SocketError *code)
{
    const QString address = m_opts.listenAddress.isEmpty() ? m_opts.peers.value(m_opts.self) : m_opts.listenAddress;
    QString host;
    quint16 port = 0;
    const QHostAddress ip = parseHostPort(address, &host, &port, true) ? toAddress(host) : QHostAddress();
    if (ip.isNull()) {
        if (error)
            *error = QStringLiteral("cannot listen on \"%1\": not an IP address and port").arg(address);
        if (code)
            *code = QAbstractSocket::HostNotFoundError;
        return false;
    }
    m_server = new DescriptorServer([this](qintptr descriptor) { onIncoming(descriptor); }, this);
    if (!m_server->listen(ip, port)) {
        if (error)
            *error = QStringLiteral("cannot listen on %1: %2").arg(address, m_server->errorString());
        if (code)
            *code = m_server->serverError();
        delete m_server;
        m_server = nullptr;
        return false;
    }
    if (!m_opts.tls)
        qCWarning(lcTransport).noquote() << QStringLiteral("node %1: INSECURE: plain TCP on %2; anyone who reaches this port can write "
                                                           "to the cluster (set tlsCaFile, tlsCertificateFile and tlsKeyFile)")
                                                .arg(m_opts.self)
                                                .arg(address);
    return true;
}

quint16 PeerTransport::listeningPort() const { return m_server ? m_server->serverPort() : 0; }

void PeerTransport::close()
{
    m_closed = true;
    if (m_server) {
        m_server->close();
        delete m_server;
        m_server = nullptr;
    }
    for (auto &[id, out] : m_out) {
        if (out->socket) {
            out->socket->disconnect(this);
            out->socket->abort();
            delete out->socket;
        }
        delete out->retry;
    }
    m_out.clear();
    for (auto &[socket, in] : m_in) {
        socket->disconnect(this);
        socket->abort();
        delete socket;
    }
    m_in.clear();
}

void PeerTransport::send(std::vector<raft::Message> messages)
{
    if (m_closed)
        return;
    for (raft::Message &m : messages)
        m_pending[m.to].push_back(std::move(m));
    if (!m_flushScheduled) {
        // Everything sent during this event-loop turn leaves as one frame per peer.
        m_flushScheduled = true;
        QMetaObject::invokeMethod(this, &PeerTransport::flush, Qt::QueuedConnection);
    }
}

void PeerTransport::flush()
{
    m_flushScheduled = false;
    if (m_closed)
        return;
    std::map<raft::NodeId, std::vector<raft::Message>> pending;
    pending.swap(m_pending);
    for (auto &[to, messages] : pending) {
        if (to == m_opts.self || !m_opts.peers.contains(to)) {
            m_stats.messagesDropped += messages.size();
            continue;
        }
        auto &out = m_out[to];
        if (!out)
            out = std::make_unique<Outbound>();
        // One frame per peer and turn, split so that no frame nears the receiver's limit (a turn
        // can carry a whole inflight window of Appends).
        const std::size_t budget = m_opts.maxFrameBytes / 2;
        std::size_t begin = 0, bytes = 0;
        for (std::size_t i = 0; i <= messages.size(); ++i) {
            std::size_t size = 0;
            if (i < messages.size()) {
                size = 64;
                for (const raft::Entry &e : messages[i].entries)
                    size += e.data.size() + 32;
            }
            const bool last = i == messages.size();
            if (i > begin && (last || bytes + size > budget)) {
                std::vector<raft::Message> part(std::make_move_iterator(messages.begin() + static_cast<std::ptrdiff_t>(begin)),
                                                std::make_move_iterator(messages.begin() + static_cast<std::ptrdiff_t>(i)));
                std::string frame;
                transport::appendEnvelope(frame, part);
                out->queuedBytes += static_cast<qint64>(frame.size());
                out->queue.push_back(std::move(frame));
                begin = i;
                bytes = 0;
            }
            bytes += size;
        }
        while (out->queuedBytes > m_opts.maxQueuedBytes && out->queue.size() > 1) {
            // A peer that cannot keep up loses its oldest messages; Raft retransmits what matters.
            out->queuedBytes -= static_cast<qint64>(out->queue.front().size());
            out->queue.pop_front();
            ++m_stats.messagesDropped;
        }
        if (!out->socket && !(out->retry && out->retry->isActive()))
            connectPeer(to);
        else if (out->connected)
            writeQueued(*out);
    }
}

void PeerTransport::writeQueued(Outbound &out)
{
    while (!out.queue.empty() && out.socket->bytesToWrite() < SocketBacklog) {
        const std::string &frame = out.queue.front();
        out.socket->write(frame.data(), static_cast<qint64>(frame.size()));
        out.queuedBytes -= static_cast<qint64>(frame.size());
        out.queue.pop_front();
        ++m_stats.framesSent;
    }
}

void PeerTransport::connectPeer(raft::NodeId id)
{
    Outbound &out = *m_out[id];
    QString host;
    quint16 port = 0;
    if (!parseHostPort(m_opts.peers.value(id), &host, &port))
        return;
    QTcpSocket *socket = m_opts.tls ? new QSslSocket(this) : new QTcpSocket(this);
    socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    out.socket = socket;
    // Over TLS the link is up once the handshake verified the peer; plain, once connected.
    const auto onUp = [this, id, socket] {
        Outbound &o = *m_out[id];
        if (o.socket != socket)
            return;
        o.connected = true;
        o.backoffMs = 0;
        socket->setSocketOption(QAbstractSocket::LowDelayOption, 1); // small Raft messages: no Nagle delay
        std::string hello;
        transport::appendHello(hello, transport::Hello{m_opts.clusterId, m_opts.self, transport::ProtocolVersion});
        socket->write(hello.data(), static_cast<qint64>(hello.size()));
        writeQueued(o);
    };
    if (m_opts.tls)
        connect(static_cast<QSslSocket *>(socket), &QSslSocket::encrypted, this, onUp);
    else
        connect(socket, &QTcpSocket::connected, this, onUp);
    connect(socket, &QTcpSocket::bytesWritten, this, [this, id, socket] {
        Outbound &o = *m_out[id];
        if (o.socket == socket && o.connected)
            writeQueued(o);
    });
    connect(socket, &QTcpSocket::disconnected, this, [this, id, socket] {
        if (m_out[id]->socket == socket)
            onOutboundLost(id);
    });
    connect(socket, &QTcpSocket::errorOccurred, this, [this, id, socket] {
        if (m_out[id]->socket == socket)
            onOutboundLost(id);
    });
    if (m_opts.tls) {
        auto *ssl = static_cast<QSslSocket *>(socket);
        connect(ssl, &QSslSocket::sslErrors, this, [this, id](const QList<QSslError> &errors) {
            // The handshake fails on them (verification is on); say why, once per kind of failure.
            QStringList why;
            for (const QSslError &e : errors)
                why << e.errorString();
            const QString text = why.join(QStringLiteral("; "));
            Outbound &o = *m_out[id];
            if (text != o.lastTlsError) {
                o.lastTlsError = text;
                qCWarning(lcTransport).noquote() << QStringLiteral("node %1: TLS to node %2 failed: %3").arg(m_opts.self).arg(id).arg(text);
            }
        });
        ssl->setSslConfiguration(m_opts.tls->configuration());
        // The peer's certificate must name the member it is: Qt checks this name against it.
        const QString name = TlsIdentity::memberName(id, m_opts.clusterId);
        ssl->setPeerVerifyName(name);
        ssl->connectToHostEncrypted(toAddress(host).toString(), port, name);
    } else {
        socket->connectToHost(toAddress(host), port);
    }
}

void PeerTransport::onOutboundLost(raft::NodeId id)
{
    Outbound &out = *m_out[id];
    const bool wasConnected = out.connected;
    out.socket->disconnect(this);
    out.socket->deleteLater();
    out.socket = nullptr;
    out.connected = false;
    if (wasConnected) {
        qCInfo(lcTransport) << "node" << m_opts.self << "lost its connection to node" << id;
        if (m_onUnreachable)
            m_onUnreachable(id); // frames already handed to the socket may be lost
    }
    if (m_closed)
        return;
    out.backoffMs = out.backoffMs == 0 ? m_opts.reconnectMinMs : std::min(out.backoffMs * 2, m_opts.reconnectMaxMs);
    if (!out.retry) {
        out.retry = new QTimer(this);
        out.retry->setSingleShot(true);
        connect(out.retry, &QTimer::timeout, this, [this, id] {
            Outbound &o = *m_out[id];
            if (!o.socket && !o.queue.empty())
                connectPeer(id); // reconnect when there is something to say (heartbeats ensure it)
        });
    }
    out.retry->start(out.backoffMs);
}

std::size_t PeerTransport::pendingInbound() const
{
    std::size_t n = 0;
    for (const auto &[socket, in] : m_in)
        n += in->peer == 0 ? 1 : 0;
    return n;
}

void PeerTransport::onIncoming(qintptr descriptor)
{
    if (m_closed || pendingInbound() >= static_cast<std::size_t>(m_opts.maxPendingInbound)) {
        // Not even read from: a flood of connections that never say Hello costs a descriptor each,
        // for the moment it takes to close it.
        ::close(static_cast<int>(descriptor));
        if (m_stats.connectionsRefused++ % 100 == 0)
            qCWarning(lcTransport).noquote() << QStringLiteral("node %1 refused a connection: %2 are waiting for their Hello already "
                                                               "(maxPendingInbound; %3 refused so far)")
                                                    .arg(m_opts.self)
                                                    .arg(m_opts.maxPendingInbound)
                                                    .arg(m_stats.connectionsRefused);
        return;
    }
    QTcpSocket *socket = m_opts.tls ? new QSslSocket(this) : new QTcpSocket(this);
    if (!socket->setSocketDescriptor(descriptor)) {
        ::close(static_cast<int>(descriptor));
        delete socket;
        return;
    }
    socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    socket->setReadBufferSize(PreHelloReadBuffer);
    auto in = std::make_unique<Inbound>(m_opts.maxFrameBytes);
    in->deadline = new QTimer(socket);
    in->deadline->setSingleShot(true);
    connect(in->deadline, &QTimer::timeout, this, [this, socket] {
        refuse(socket, QStringLiteral("no TLS handshake and Hello within %1 ms").arg(m_opts.handshakeTimeoutMs));
    });
    in->deadline->start(m_opts.handshakeTimeoutMs);
    m_in.emplace(socket, std::move(in));
    connect(socket, &QTcpSocket::readyRead, this, [this, socket] { onInboundData(socket); });
    connect(socket, &QTcpSocket::disconnected, this, [this, socket] {
        if (m_in.erase(socket))
            socket->deleteLater();
    });
    if (m_opts.tls) {
        auto *ssl = static_cast<QSslSocket *>(socket);
        connect(ssl, &QSslSocket::sslErrors, this, [this, socket](const QList<QSslError> &errors) {
            QStringList why;
            for (const QSslError &e : errors)
                why << e.errorString();
            refuse(socket, QStringLiteral("TLS: %1").arg(why.join(QStringLiteral("; "))));
        });
        connect(ssl, &QSslSocket::errorOccurred, this, [this, socket](QAbstractSocket::SocketError e) {
            if (e != QAbstractSocket::RemoteHostClosedError && m_in.count(socket) && m_in.at(socket)->peer == 0)
                refuse(socket, QStringLiteral("TLS: %1").arg(socket->errorString()));
        });
        ssl->setSslConfiguration(m_opts.tls->configuration());
        ssl->startServerEncryption();
    }
}

bool PeerTransport::pastHello(const Inbound &in) const { return in.peer != 0; }

void PeerTransport::accept(QTcpSocket *socket, Inbound &in, raft::NodeId peer)
{
    in.peer = peer;
    in.gate.reset();
    in.deadline->stop();
    socket->setReadBufferSize(0);
    static quint64 order = 0;
    in.order = ++order;
    ++m_stats.connectionsAccepted;
    // A member keeps a few connections (a restarted process's old one may linger half-open); a new
    // one past the cap closes its oldest.
    std::vector<std::pair<quint64, QTcpSocket *>> same;
    for (const auto &[s, other] : m_in)
        if (other->peer == peer)
            same.emplace_back(other->order, s);
    if (same.size() > static_cast<std::size_t>(m_opts.maxInboundPerPeer)) {
        std::sort(same.begin(), same.end());
        for (std::size_t i = 0; i + m_opts.maxInboundPerPeer < same.size(); ++i)
            refuse(same[i].second, QStringLiteral("node %1 has %2 newer connections (maxInboundPerPeer)").arg(peer).arg(m_opts.maxInboundPerPeer));
    }
    // The peer is back (it just connected to us): reach it now rather than after the backoff its
    // absence built up, so a restarted node hears from the leader at once.
    if (auto it = m_out.find(peer); it != m_out.end() && !it->second->socket) {
        Outbound &o = *it->second;
        o.backoffMs = 0;
        if (o.retry)
            o.retry->stop();
        if (!o.queue.empty())
            connectPeer(peer);
    }
}

void PeerTransport::refuse(QTcpSocket *socket, const QString &why)
{
    // At most a few lines per ten seconds: a flood of strangers must not flood the log too.
    if (!m_refusalWindow.isValid() || m_refusalWindow.elapsed() > 10000) {
        if (m_refusalsSuppressed > 0)
            qCWarning(lcTransport).noquote() << QStringLiteral("node %1 closed %2 more connections without saying why")
                                                    .arg(m_opts.self)
                                                    .arg(m_refusalsSuppressed);
        m_refusalWindow.start();
        m_refusalsLogged = 0;
        m_refusalsSuppressed = 0;
    }
    if (m_refusalsLogged++ < 5)
        qCWarning(lcTransport).noquote() << QStringLiteral("node %1 closed a connection from %2: %3")
                                                .arg(m_opts.self)
                                                .arg(socket->peerAddress().toString(), why);
    else
        ++m_refusalsSuppressed;
    ++m_stats.connectionsRefused;
    socket->disconnect(this);
    m_in.erase(socket);
    socket->abort();
    socket->deleteLater();
}

void PeerTransport::onInboundData(QTcpSocket *socket)
{
    const auto it = m_in.find(socket);
    if (it == m_in.end())
        return;
    Inbound &in = *it->second;
    if (!pastHello(in)) {
        if (m_opts.tls && !static_cast<QSslSocket *>(socket)->isEncrypted())
            return; // the handshake first (Qt only hands over decrypted bytes)
        if (!in.gate) {
            transport::HelloGate::Policy policy;
            policy.clusterId = m_opts.clusterId;
            policy.self = m_opts.self;
            policy.isMember = [this](raft::NodeId id) { return m_opts.peers.contains(id); };
            policy.tls = m_opts.tls != nullptr;
            if (m_opts.tls)
                policy.certified = TlsIdentity::memberOf(static_cast<QSslSocket *>(socket)->peerCertificate(), m_opts.clusterId);
            in.gate.emplace(std::move(policy));
        }
        const QByteArray bytes = socket->read(PreHelloReadBuffer);
        switch (in.gate->feed(bytes.constData(), static_cast<std::size_t>(bytes.size()))) {
        case transport::HelloGate::Result::NeedMore:
            return;
        case transport::HelloGate::Result::Refused:
            refuse(socket, QString::fromStdString(in.gate->reason()));
            return;
        case transport::HelloGate::Result::Accepted: {
            const std::string rest = in.gate->takeLeftover();
            accept(socket, in, in.gate->peer());
            if (!m_in.count(socket))
                return;
            in.reader.feed(rest.data(), rest.size());
            break;
        }
        }
    }
    const QByteArray bytes = socket->readAll();
    in.reader.feed(bytes.constData(), static_cast<std::size_t>(bytes.size()));
    std::string payload;
    for (;;) {
        switch (in.reader.next(payload)) {
        case transport::FrameReader::Result::NeedMore:
            return;
        case transport::FrameReader::Result::TooLarge:
            refuse(socket, QStringLiteral("a frame over the %1-byte limit").arg(m_opts.maxFrameBytes));
            return;
        case transport::FrameReader::Result::Frame:
            break;
        }
        std::string why;
        std::vector<raft::Message> messages;
        if (!transport::decodeEnvelope(payload, messages, why)) {
            refuse(socket, QString::fromStdString(why));
            return;
        }
        for (const raft::Message &m : messages) {
            if (m.from != in.peer || m.to != m_opts.self) {
                refuse(socket, QStringLiteral("a message from %1 to %2 on node %3's connection").arg(m.from).arg(m.to).arg(in.peer));
                return;
            }
        }
        ++m_stats.framesReceived;
        m_onReceive(std::move(messages));
        if (!m_in.count(socket))
            return; // the receiver closed the transport
    }
}

} // namespace dengine::engine
