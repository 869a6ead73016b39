// SPDX-License-Identifier: Apache-2.0
#include "engine/peertransport.h"

#include "storage/crc32c.h"
#include "storage/snapshotstore.h"
#include "transport/hellogate.h"

#include <QtCore/QLoggingCategory>
#include <QtCore/QTimer>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QSslSocket>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>

#include <unistd.h>

#include <algorithm>
#include <cstring>
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

struct PeerTransport::SnapshotSend {
    raft::Message message;
    raft::SnapshotMetadata metadata;
    std::unique_ptr<storage::File> file;
    std::uint64_t size = 0;
    std::uint64_t sent = 0;  // bytes queued
    std::uint64_t acked = 0; // bytes the receiver holds
    std::uint32_t crc = 0;   // of the bytes sent so far, up to the stored CRC
    std::uint32_t storedCrc = 0;
    QElapsedTimer started;
    QElapsedTimer lastProgress;
};

struct PeerTransport::SnapshotReceive {
    raft::Index index = 0;
    raft::Term term = 0;
    std::string path;
    std::unique_ptr<storage::File> file;
    std::uint64_t received = 0;
};

PeerTransport::PeerTransport(Options options, Receiver onReceive, UnreachableCallback onUnreachable, QObject *parent)
    : QObject(parent), m_opts(std::move(options)), m_onReceive(std::move(onReceive)), m_onUnreachable(std::move(onUnreachable)),
      m_flushTimer(new QTimer(this))
{
    // A zero timer rather than a posted event: it fires in the event loop's same pass, and costs
    // no write and read of the dispatcher's eventfd.
    m_flushTimer->setSingleShot(true);
    m_flushTimer->setInterval(0);
    connect(m_flushTimer, &QTimer::timeout, this, &PeerTransport::flush);
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
    for (auto &[to, send] : m_sends)
        if (m_opts.onSnapshotSent)
            m_opts.onSnapshotSent(to, false);
    m_sends.clear();
    for (auto &[from, r] : m_receives) {
        r->file.reset();
        storage::FileSystem::posix().remove(r->path);
    }
    m_receives.clear();
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
    if (!m_flushTimer->isActive())
        m_flushTimer->start(); // everything sent during this event-loop pass leaves as one frame per peer
}

void PeerTransport::sendQueuedNow()
{
    if (!m_pending.empty())
        flush(); // the invocation queued by send() then finds nothing to do
}

void PeerTransport::flush()
{
    m_flushTimer->stop(); // called early (sendQueuedNow()): the loop need not come round for it
    if (m_closed)
        return;
    std::map<raft::NodeId, std::vector<raft::Message>> pending;
    pending.swap(m_pending);
    for (auto &[to, messages] : pending) {
        if (to == m_opts.self || !m_opts.peers.contains(to)) {
            for (const raft::Message &m : messages)
                if (m.type == raft::MessageType::Snapshot && m_opts.onSnapshotSent)
                    m_opts.onSnapshotSent(to, false);
            m_stats.messagesDropped += messages.size();
            continue;
        }
        // Snapshot messages leave as a stream of their file, not in an envelope.
        for (raft::Message &m : messages)
            if (m.type == raft::MessageType::Snapshot)
                startSnapshot(std::move(m));
        std::erase_if(messages, [](const raft::Message &m) { return m.type == raft::MessageType::Snapshot; });
        if (messages.empty())
            continue;
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

void PeerTransport::enqueueFrame(raft::NodeId to, std::string frame)
{
    if (m_closed || !m_opts.peers.contains(to))
        return;
    auto &out = m_out[to];
    if (!out)
        out = std::make_unique<Outbound>();
    out->queuedBytes += static_cast<qint64>(frame.size());
    out->queue.push_back(std::move(frame));
    if (!out->socket && !(out->retry && out->retry->isActive()))
        connectPeer(to);
    else if (out->connected)
        writeQueued(*out);
}

// ---- snapshot streams ------------------------------------------------------------------------

void PeerTransport::startSnapshot(raft::Message message)
{
    const raft::NodeId to = message.to;
    if (m_sends.count(to))
        endSnapshot(to, false, QStringLiteral("a newer snapshot message replaced it"));
    if (!message.snapshot || !m_opts.snapshots) {
        if (m_opts.onSnapshotSent)
            m_opts.onSnapshotSent(to, false);
        return;
    }
    auto send = std::make_unique<SnapshotSend>();
    send->metadata = message.snapshot->metadata;
    const std::string path = m_opts.snapshots->pathOf(send->metadata.index, send->metadata.term);
    storage::FileSystem &fs = m_opts.snapshots->fileSystem();
    char trailer[4] = {};
    std::size_t got = 0;
    storage::IoStatus st = fs.open(path, storage::OpenMode::ReadOnly, send->file);
    if (st)
        st = send->file->size(send->size);
    if (st && send->size >= storage::SnapshotTrailerBytes)
        st = send->file->read(trailer, 4, send->size - 4, got);
    if (!st || got != 4) {
        qCWarning(lcTransport).noquote() << QStringLiteral("node %1: cannot send snapshot %2 to node %3: %4")
                                                .arg(m_opts.self)
                                                .arg(send->metadata.index)
                                                .arg(to)
                                                .arg(st ? QStringLiteral("the file is too short") : QString::fromStdString(st.message()));
        if (m_opts.onSnapshotSent)
            m_opts.onSnapshotSent(to, false);
        if (st && m_opts.onSnapshotDamaged)
            m_opts.onSnapshotDamaged(send->metadata, QStringLiteral("the file is too short"));
        return;
    }
    std::memcpy(&send->storedCrc, trailer, 4);
    send->message = std::move(message);
    send->message.snapshot.reset(); // the file carries it
    send->started.start();
    send->lastProgress.start();
    qCInfo(lcTransport).noquote() << QStringLiteral("node %1: sending snapshot %2 (%3 MiB) to node %4")
                                         .arg(m_opts.self)
                                         .arg(send->metadata.index)
                                         .arg(static_cast<double>(send->size) / 1048576.0, 0, 'f', 1)
                                         .arg(to);
    m_sends[to] = std::move(send);
    if (!m_stallTimer) {
        m_stallTimer = new QTimer(this);
        connect(m_stallTimer, &QTimer::timeout, this, &PeerTransport::checkSnapshotStalls);
        m_stallTimer->start(1000);
    }
    pumpSnapshot(to);
}

void PeerTransport::pumpSnapshot(raft::NodeId to)
{
    auto it = m_sends.find(to);
    if (it == m_sends.end())
        return;
    SnapshotSend &s = *it->second;
    const std::uint64_t chunk = static_cast<std::uint64_t>(std::max(1, m_opts.snapshotChunkBytes));
    const std::uint64_t window = chunk * static_cast<std::uint64_t>(std::max(1, m_opts.snapshotWindowChunks));
    while (s.sent < s.size && s.sent - s.acked < window) {
        transport::SnapshotChunk c;
        c.index = s.metadata.index;
        c.term = s.metadata.term;
        c.offset = s.sent;
        c.data.resize(static_cast<std::size_t>(std::min(chunk, s.size - s.sent)));
        std::size_t got = 0;
        if (storage::IoStatus st = s.file->read(c.data.data(), c.data.size(), s.sent, got); !st || got != c.data.size()) {
            endSnapshot(to, false, st ? QStringLiteral("the file shrank while it was sent") : QString::fromStdString(st.message()));
            return;
        }
        // The CRC covers every byte but its own four.
        const std::uint64_t covered = s.size - 4;
        if (s.sent < covered)
            s.crc = storage::crc32c(c.data.data(), static_cast<std::size_t>(std::min<std::uint64_t>(c.data.size(), covered - s.sent)), s.crc);
        s.sent += c.data.size();
        if (s.sent == s.size) {
            if (s.crc != s.storedCrc) {
                const raft::SnapshotMetadata meta = s.metadata;
                endSnapshot(to, false, QStringLiteral("this node's snapshot file failed its checksum"));
                if (m_opts.onSnapshotDamaged)
                    m_opts.onSnapshotDamaged(meta, QStringLiteral("checksum mismatch while it was read to be sent"));
                return;
            }
            c.last = true;
            c.message = s.message;
        }
        std::string frame;
        transport::appendSnapshotChunk(frame, c);
        m_stats.snapshotBytesSent += c.data.size();
        enqueueFrame(to, std::move(frame));
    }
}

void PeerTransport::endSnapshot(raft::NodeId to, bool delivered, const QString &why)
{
    auto it = m_sends.find(to);
    if (it == m_sends.end())
        return;
    const std::unique_ptr<SnapshotSend> s = std::move(it->second);
    m_sends.erase(it);
    if (delivered) {
        ++m_stats.snapshotsSent;
        const double seconds = std::max<qint64>(1, s->started.elapsed()) / 1000.0;
        qCInfo(lcTransport).noquote() << QStringLiteral("node %1: snapshot %2 delivered to node %3: %4 MiB in %5 s (%6 MiB/s)")
                                             .arg(m_opts.self)
                                             .arg(s->metadata.index)
                                             .arg(to)
                                             .arg(static_cast<double>(s->size) / 1048576.0, 0, 'f', 1)
                                             .arg(seconds, 0, 'f', 2)
                                             .arg(static_cast<double>(s->size) / 1048576.0 / seconds, 0, 'f', 1);
    } else {
        qCWarning(lcTransport).noquote() << QStringLiteral("node %1: snapshot %2 to node %3 not delivered: %4").arg(m_opts.self).arg(s->metadata.index).arg(to).arg(why);
    }
    if (m_opts.onSnapshotSent)
        m_opts.onSnapshotSent(to, delivered);
}

void PeerTransport::checkSnapshotStalls()
{
    std::vector<raft::NodeId> stalled;
    for (const auto &[to, s] : m_sends)
        if (s->lastProgress.elapsed() > m_opts.snapshotStallMs)
            stalled.push_back(to);
    for (raft::NodeId to : stalled)
        endSnapshot(to, false, QStringLiteral("no progress for %1 ms").arg(m_opts.snapshotStallMs));
}

void PeerTransport::onSnapshotAck(raft::NodeId from, const transport::SnapshotAck &ack)
{
    auto it = m_sends.find(from);
    if (it == m_sends.end() || it->second->metadata.index != ack.index || it->second->metadata.term != ack.term)
        return; // an answer to a stream given up since
    SnapshotSend &s = *it->second;
    if (!ack.refused.empty()) {
        endSnapshot(from, false, QStringLiteral("refused: %1").arg(QString::fromStdString(ack.refused)));
        return;
    }
    if (ack.done) {
        endSnapshot(from, true, {});
        return;
    }
    if (ack.received > s.acked && ack.received <= s.sent) {
        s.acked = ack.received;
        s.lastProgress.start();
    }
    pumpSnapshot(from);
}

void PeerTransport::onSnapshotChunk(raft::NodeId from, transport::SnapshotChunk &&chunk)
{
    storage::FileSystem &fs = m_opts.snapshots ? m_opts.snapshots->fileSystem() : storage::FileSystem::posix();
    const auto answer = [&](std::uint64_t received, bool done, const std::string &refused) {
        std::string frame;
        transport::appendSnapshotAck(frame, transport::SnapshotAck{chunk.index, chunk.term, received, done, refused});
        enqueueFrame(from, std::move(frame));
    };
    const auto drop = [&] {
        if (auto it = m_receives.find(from); it != m_receives.end()) {
            it->second->file.reset();
            fs.remove(it->second->path);
            m_receives.erase(it);
        }
    };
    const auto refuse = [&](const std::string &why) {
        ++m_stats.snapshotsRefused;
        qCWarning(lcTransport).noquote() << QStringLiteral("node %1: refused snapshot %2 from node %3: %4")
                                                .arg(m_opts.self)
                                                .arg(chunk.index)
                                                .arg(from)
                                                .arg(QString::fromStdString(why));
        drop();
        answer(0, false, why);
    };
    if (!m_opts.snapshots) {
        refuse("this node takes no snapshots");
        return;
    }
    if (chunk.offset == 0) {
        // A new stream (or the same one again from the start): whatever came before is dropped.
        drop();
        auto r = std::make_unique<SnapshotReceive>();
        r->index = chunk.index;
        r->term = chunk.term;
        r->path = m_opts.snapshots->incomingPath(from);
        fs.createDirectories(m_opts.snapshots->directory());
        fs.remove(r->path);
        if (storage::IoStatus st = fs.open(r->path, storage::OpenMode::CreateNew, r->file); !st) {
            refuse("cannot create " + r->path + ": " + st.message());
            return;
        }
        m_receives[from] = std::move(r);
    }
    auto it = m_receives.find(from);
    if (it == m_receives.end() || it->second->index != chunk.index || it->second->term != chunk.term || it->second->received != chunk.offset) {
        refuse("a chunk at offset " + std::to_string(chunk.offset) + " out of order (a chunk was lost): the stream starts over");
        return;
    }
    SnapshotReceive &r = *it->second;
    if (storage::IoStatus st = r.file->write(chunk.data.data(), chunk.data.size(), chunk.offset); !st) {
        refuse(st.message());
        return;
    }
    r.received += chunk.data.size();
    if (!chunk.last) {
        answer(r.received, false, {});
        return;
    }
    // The whole file: durable, checked, then waiting under its own name for the core to install it.
    if (storage::IoStatus st = r.file->syncData(); !st) {
        refuse(st.message());
        return;
    }
    r.file.reset();
    raft::SnapshotMetadata meta;
    if (storage::StorageStatus st = storage::SnapshotStore::inspect(fs, r.path, meta); !st) {
        refuse(st.message);
        return;
    }
    if (meta.index != chunk.index || meta.term != chunk.term) {
        refuse("the file holds another snapshot than the stream announced");
        return;
    }
    const std::string received = m_opts.snapshots->receivedPath(meta.index, meta.term);
    if (storage::IoStatus st = fs.rename(r.path, received); !st) {
        refuse(st.message());
        return;
    }
    m_receives.erase(it);
    ++m_stats.snapshotsReceived;
    qCInfo(lcTransport).noquote() << QStringLiteral("node %1: received snapshot %2 (term %3) from node %4 and checked it")
                                         .arg(m_opts.self)
                                         .arg(meta.index)
                                         .arg(meta.term)
                                         .arg(from);
    answer(chunk.offset + chunk.data.size(), true, {});
    raft::Message m = std::move(chunk.message);
    m.snapshot = std::make_shared<raft::Snapshot>(raft::Snapshot{meta, {}});
    std::vector<raft::Message> batch;
    batch.push_back(std::move(m));
    m_onReceive(std::move(batch));
}

void PeerTransport::writeQueued(Outbound &out)
{
    bool wrote = false;
    while (!out.queue.empty() && out.socket->bytesToWrite() < SocketBacklog) {
        const std::string &frame = out.queue.front();
        out.socket->write(frame.data(), static_cast<qint64>(frame.size()));
        out.queuedBytes -= static_cast<qint64>(frame.size());
        out.queue.pop_front();
        ++m_stats.framesSent;
        wrote = true;
    }
    // Into the kernel now, not on the event loop's next turn (QAbstractSocket buffers writes until
    // its notifier says the socket is writable): a commit waits on this frame.
    if (wrote)
        out.socket->flush();
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
        const QString self = m_opts.listenAddress.isEmpty() ? m_opts.peers.value(m_opts.self) : m_opts.listenAddress;
        transport::appendHello(hello, transport::Hello{m_opts.clusterId, m_opts.self, transport::ProtocolVersion,
                                                       self.toStdString().substr(0, transport::HelloMaxAddressBytes)});
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
    if (m_sends.count(id))
        endSnapshot(id, false, QStringLiteral("the connection was lost"));
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

void PeerTransport::sendRemovalNotice(raft::NodeId to, std::uint64_t configurationIndex)
{
    std::string frame;
    transport::appendRemovalNotice(frame, configurationIndex);
    enqueueFrame(to, std::move(frame));
}

void PeerTransport::setPeers(const QMap<raft::NodeId, QString> &peers)
{
    QMap<raft::NodeId, QString> next = peers;
    next.insert(m_opts.self, m_opts.peers.value(m_opts.self));
    std::vector<raft::NodeId> gone, moved;
    for (auto it = m_opts.peers.cbegin(); it != m_opts.peers.cend(); ++it) {
        if (it.key() == m_opts.self)
            continue;
        if (!next.contains(it.key()))
            gone.push_back(it.key());
        else if (next.value(it.key()) != it.value())
            moved.push_back(it.key());
    }
    m_opts.peers = std::move(next);
    for (raft::NodeId id : gone)
        dropPeer(id, QStringLiteral("node %1 is no longer a member").arg(id));
    for (raft::NodeId id : moved) {
        qCInfo(lcTransport).noquote() << QStringLiteral("node %1: node %2 now listens on %3").arg(m_opts.self).arg(id).arg(m_opts.peers.value(id));
        auto it = m_out.find(id);
        if (it != m_out.end() && it->second->socket)
            it->second->socket->abort(); // reconnects to the new address (onOutboundLost)
    }
}

void PeerTransport::dropPeer(raft::NodeId id, const QString &why)
{
    qCInfo(lcTransport).noquote() << QStringLiteral("node %1: %2: closing its connections").arg(m_opts.self).arg(why);
    if (m_sends.count(id))
        endSnapshot(id, false, why);
    if (auto it = m_receives.find(id); it != m_receives.end()) {
        it->second->file.reset();
        (m_opts.snapshots ? m_opts.snapshots->fileSystem() : storage::FileSystem::posix()).remove(it->second->path);
        m_receives.erase(it);
    }
    for (const raft::Message &m : m_pending[id])
        if (m.type == raft::MessageType::Snapshot && m_opts.onSnapshotSent)
            m_opts.onSnapshotSent(id, false);
    m_pending.erase(id);
    if (auto it = m_out.find(id); it != m_out.end()) {
        Outbound &o = *it->second;
        o.queue.clear();
        o.queuedBytes = 0;
        if (o.retry)
            o.retry->stop();
        if (o.socket) {
            o.socket->disconnect(this);
            o.socket->abort();
            o.socket->deleteLater();
            o.socket = nullptr;
            o.connected = false;
        }
    }
    std::vector<QTcpSocket *> inbound;
    for (const auto &[s, in] : m_in)
        if (in->peer == id)
            inbound.push_back(s);
    for (QTcpSocket *s : inbound)
        refuse(s, why);
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
            policy.isMember = [this](raft::NodeId id) { return m_opts.acceptNonMembers || m_opts.peers.contains(id); };
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
            const raft::NodeId peer = in.gate->peer();
            if (!m_opts.peers.contains(peer)) {
                // Join mode: a node this one has no address for (the leader of the cluster it
                // joins, typically); its answers go back to where it says it listens.
                const QString address = QString::fromStdString(in.gate->address());
                QString host;
                quint16 port = 0;
                if (parseHostPort(address, &host, &port)) {
                    m_opts.peers.insert(peer, address);
                    qCInfo(lcTransport).noquote() << QStringLiteral("node %1: node %2 listens on %3 (from its hello)").arg(m_opts.self).arg(peer).arg(address);
                }
            }
            accept(socket, in, peer);
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
        transport::Frame frame;
        if (!transport::decodeFrame(payload, frame, why)) {
            refuse(socket, QString::fromStdString(why));
            return;
        }
        const raft::NodeId peer = in.peer;
        for (const raft::Message &m : frame.messages) {
            if (m.from != peer || m.to != m_opts.self) {
                refuse(socket, QStringLiteral("a message from %1 to %2 on node %3's connection").arg(m.from).arg(m.to).arg(peer));
                return;
            }
        }
        if (frame.chunk && frame.chunk->last && (frame.chunk->message.from != peer || frame.chunk->message.to != m_opts.self)) {
            refuse(socket, QStringLiteral("a snapshot for another node on node %1's connection").arg(peer));
            return;
        }
        ++m_stats.framesReceived;
        if (!frame.messages.empty())
            m_onReceive(std::move(frame.messages));
        if (!m_in.count(socket) || m_closed)
            return; // the receiver closed the transport
        if (frame.chunk)
            onSnapshotChunk(peer, std::move(*frame.chunk));
        if (frame.ack)
            onSnapshotAck(peer, *frame.ack);
        if (frame.removedAt && m_opts.onRemovalNotice)
            m_opts.onRemovalNotice(peer, frame.removedAt);
        if (!m_in.count(socket) || m_closed)
            return;
    }
}

} // namespace dengine::engine
