// SPDX-License-Identifier: Apache-2.0
#include "engine/peertransport.h"

#include <QtCore/QLoggingCategory>
#include <QtCore/QTimer>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>

#include <deque>

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
} // namespace

struct PeerTransport::Outbound {
    QTcpSocket *socket = nullptr;
    bool connected = false;
    std::deque<std::string> queue; // framed bytes, Hello not included
    qint64 queuedBytes = 0;
    int backoffMs = 0;
    QTimer *retry = nullptr;
};

struct PeerTransport::Inbound {
    explicit Inbound(quint32 maxFrame) : reader(maxFrame) {}
    transport::FrameReader reader;
    raft::NodeId peer = 0; // set once its Hello was accepted
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
    m_server = new QTcpServer(this);
    if (!m_server->listen(ip, port)) {
        if (error)
            *error = QStringLiteral("cannot listen on %1: %2").arg(address, m_server->errorString());
        if (code)
            *code = m_server->serverError();
        delete m_server;
        m_server = nullptr;
        return false;
    }
    connect(m_server, &QTcpServer::newConnection, this, &PeerTransport::onNewConnection);
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
    auto *socket = new QTcpSocket(this);
    socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    out.socket = socket;
    connect(socket, &QTcpSocket::connected, this, [this, id, socket] {
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
    });
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
    socket->connectToHost(toAddress(host), port);
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

void PeerTransport::onNewConnection()
{
    while (QTcpSocket *socket = m_server->nextPendingConnection()) {
        socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
        m_in.emplace(socket, std::make_unique<Inbound>(m_opts.maxFrameBytes));
        connect(socket, &QTcpSocket::readyRead, this, [this, socket] { onInboundData(socket); });
        connect(socket, &QTcpSocket::disconnected, this, [this, socket] {
            if (m_in.erase(socket))
                socket->deleteLater();
        });
    }
}

void PeerTransport::refuse(QTcpSocket *socket, const QString &why)
{
    qCWarning(lcTransport).noquote() << QStringLiteral("node %1 closed a connection from %2: %3")
                                            .arg(m_opts.self)
                                            .arg(socket->peerAddress().toString(), why);
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
        if (in.peer == 0) {
            transport::Hello hello;
            if (!transport::decodeHello(payload, hello, why)) {
                refuse(socket, QString::fromStdString(why));
                return;
            }
            if (hello.clusterId != m_opts.clusterId) {
                refuse(socket, QStringLiteral("it belongs to cluster %1, not %2").arg(hello.clusterId).arg(m_opts.clusterId));
                return;
            }
            if (hello.nodeId == m_opts.self || !m_opts.peers.contains(hello.nodeId)) {
                refuse(socket, QStringLiteral("node %1 is not a member").arg(hello.nodeId));
                return;
            }
            if (hello.protocolVersion != transport::ProtocolVersion) {
                refuse(socket, QStringLiteral("protocol version %1 is not %2").arg(hello.protocolVersion).arg(transport::ProtocolVersion));
                return;
            }
            in.peer = hello.nodeId;
            // The peer is back (it just connected to us): reach it now rather than after the
            // backoff its absence built up, so a restarted node hears from the leader at once.
            if (auto it = m_out.find(in.peer); it != m_out.end() && !it->second->socket) {
                Outbound &o = *it->second;
                o.backoffMs = 0;
                if (o.retry)
                    o.retry->stop();
                if (!o.queue.empty())
                    connectPeer(in.peer);
            }
            continue;
        }
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
