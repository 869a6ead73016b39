// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "engine/hostport.h"
#include "engine/tlsidentity.h"
#include "raft/types.h"
#include "transport/codec.h"

#include <QtCore/QElapsedTimer>
#include <QtCore/QMap>
#include <QtCore/QObject>
#include <QtCore/QString>
#include <QtNetwork/QAbstractSocket>

#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace dengine::storage {
class File;
class SnapshotStore;
} // namespace dengine::storage

class QTcpServer;
class QTcpSocket;
class QTimer;

namespace dengine::engine {

// Raft messages between nodes over mutual TLS (QSslSocket; plain TCP only when the configuration
// says insecure), on the thread that owns it.
//
// Outbound: one connection per peer, opened on demand and reopened with exponential backoff. Over
// TLS the peer's certificate must be signed by the cluster's authority and name that peer (its
// member name is the connection's peer verify name). Each connection starts with a Hello (cluster
// id, node id), then carries Envelope frames. Messages sent in one event-loop turn go out as one
// frame per peer. Each peer's queue is bounded in bytes: Raft tolerates lost messages, so past the
// bound the oldest queued frames are dropped.
//
// Inbound, the trust boundary: a connection must complete the TLS handshake (its certificate is
// required and checked against the authority) and then say a Hello (transport/hellogate.h) naming
// this cluster and the very member its certificate names, within handshakeTimeoutMs, in at most a
// few hundred bytes. Until then it may buffer no more than that; at most maxPendingInbound
// connections wait so at a time (more are closed at once), and an accepted member keeps at most
// maxInboundPerPeer connections (a new one closes its oldest). Garbage, an oversized frame, or a
// message not from the node that said Hello closes the connection (with a log line) and nothing
// else changes.
//
// Snapshots: a Snapshot message handed to send() starts a stream of its snapshot file (found in
// Options::snapshots by index and term) to that peer: chunks of snapshotChunkBytes, at most
// snapshotWindowChunks ahead of the peer's acknowledgements, so memory stays bounded on both sides
// and the peer's heartbeats and other messages keep flowing between chunks. The receiver writes
// the chunks to a temporary file, checks the whole file (its CRC and that it is the snapshot
// announced) when the last one arrives, and only then hands the Snapshot message to its core; a
// file that does not check out is refused with the reason, and the leader's core sends a new one
// later. A dropped connection, a refusal or a stall ends the stream (reported as not delivered);
// the next attempt starts over from the first byte.
//
// Threads: not thread-safe; create, use and destroy it on one thread with an event loop.
class PeerTransport : public QObject {
    Q_OBJECT
public:
    struct Options {
        raft::NodeId self = 0;
        quint64 clusterId = 0;
        QMap<raft::NodeId, QString> peers; // every member, "host:port"; self included
        QString listenAddress;             // empty: peers[self]
        // Join mode: inbound connections from any node of this cluster are accepted (over TLS its
        // certificate must still be the authority's and name it), not only from `peers`; a node
        // accepted so is reached back at the address its Hello gives. See setPeers().
        bool acceptNonMembers = false;
        quint32 maxFrameBytes = 64u << 20;
        qint64 maxQueuedBytes = 64ll << 20; // per peer
        int reconnectMinMs = 20;
        int reconnectMaxMs = 1000;
        // Null: plain TCP (insecure). Otherwise every connection is mutual TLS with this identity.
        std::shared_ptr<const TlsIdentity> tls;
        int handshakeTimeoutMs = 5000;
        int maxPendingInbound = 32;
        int maxInboundPerPeer = 4;
        // Snapshots (see the class comment): where their files are, and how they stream.
        storage::SnapshotStore *snapshots = nullptr;
        int snapshotChunkBytes = 1 << 20;
        int snapshotWindowChunks = 4;    // chunks sent ahead of the follower's acknowledgement
        int snapshotStallMs = 30000;     // a stream with no progress for this long is given up
        // A snapshot message handed to send() was delivered (the follower took the file and its
        // core got the message) or not (refused, connection lost, stalled): every one is reported
        // once, for raft::RawNode::reportSnapshot.
        std::function<void(raft::NodeId to, bool delivered)> onSnapshotSent;
        // This node's own snapshot file failed its checksum while it was being sent.
        std::function<void(const raft::SnapshotMetadata &, const QString &why)> onSnapshotDamaged;
        // A member told this node it applied a configuration without it (see sendRemovalNotice).
        std::function<void(raft::NodeId from, std::uint64_t configurationIndex)> onRemovalNotice;
    };
    using Receiver = std::function<void(std::vector<raft::Message> &&)>;
    using UnreachableCallback = std::function<void(raft::NodeId)>;

    PeerTransport(Options options, Receiver onReceive, UnreachableCallback onUnreachable, QObject *parent = nullptr);
    ~PeerTransport() override;

    // Starts listening. False with a reason (naming the address) if it cannot: in use, bad address;
    // `code` tells which (QAbstractSocket::AddressInUseError for a port in use).
    bool listen(QString *error, QAbstractSocket::SocketError *code = nullptr);
    quint16 listeningPort() const;
    // Queues messages; each goes to its `to` node. Never blocks. They leave on the event loop's
    // next turn, together with everything else sent in this one, or at sendQueuedNow().
    void send(std::vector<raft::Message> messages);
    // Writes what send() queued now, one frame per peer (into the kernel: the sockets are flushed).
    // For the end of a batch of work whose messages someone waits on (a commit, a vote).
    void sendQueuedNow();
    // Closes every connection and stops listening.
    void close();
    // Replaces the members (the configuration changed, or an address did): a node no longer listed
    // loses its connections both ways, its queued messages and its snapshot stream; a node whose
    // address changed is reached at the new one. This node's own entry is kept as it was.
    void setPeers(const QMap<raft::NodeId, QString> &peers);
    void setAcceptNonMembers(bool accept) { m_opts.acceptNonMembers = accept; }
    // Tells `to` (still in the peers) that this node applied a configuration without it at
    // `configurationIndex`; the caller keeps `to` in the peers a while so the frame gets out.
    void sendRemovalNotice(raft::NodeId to, std::uint64_t configurationIndex);
    // The members as the transport knows them: setPeers() and the addresses learned from Hellos.
    QMap<raft::NodeId, QString> peers() const { return m_opts.peers; }

    struct Stats {
        quint64 framesSent = 0;
        quint64 framesReceived = 0;
        quint64 messagesDropped = 0;
        quint64 connectionsRefused = 0;
        quint64 connectionsAccepted = 0; // inbound, past the Hello
        quint64 snapshotsSent = 0;
        quint64 snapshotsReceived = 0;
        quint64 snapshotsRefused = 0; // received ones that did not check out
        quint64 snapshotBytesSent = 0;
    };
    Stats stats() const { return m_stats; }

private:
    struct Outbound;
    struct Inbound;
    struct SnapshotSend;
    struct SnapshotReceive;
    void enqueueFrame(raft::NodeId to, std::string frame);
    void startSnapshot(raft::Message message);
    void pumpSnapshot(raft::NodeId to);
    void endSnapshot(raft::NodeId to, bool delivered, const QString &why);
    void onSnapshotAck(raft::NodeId from, const transport::SnapshotAck &ack);
    // False when the connection must close (a chunk that makes no sense).
    void onSnapshotChunk(raft::NodeId from, transport::SnapshotChunk &&chunk);
    void checkSnapshotStalls();
    void flush();
    void writeQueued(Outbound &out);
    void connectPeer(raft::NodeId id);
    void onOutboundLost(raft::NodeId id);
    void dropPeer(raft::NodeId id, const QString &why);
    void onIncoming(qintptr descriptor);
    void onInboundData(QTcpSocket *socket);
    void accept(QTcpSocket *socket, Inbound &in, raft::NodeId peer);
    void refuse(QTcpSocket *socket, const QString &why);
    bool pastHello(const Inbound &in) const;
    std::size_t pendingInbound() const;

    Options m_opts;
    Receiver m_onReceive;
    UnreachableCallback m_onUnreachable;
    QTcpServer *m_server = nullptr;
    std::map<raft::NodeId, std::unique_ptr<Outbound>> m_out;
    std::map<QTcpSocket *, std::unique_ptr<Inbound>> m_in;
    std::map<raft::NodeId, std::vector<raft::Message>> m_pending; // this turn's messages per peer
    std::map<raft::NodeId, std::unique_ptr<SnapshotSend>> m_sends;       // snapshots streaming out
    std::map<raft::NodeId, std::unique_ptr<SnapshotReceive>> m_receives; // ... and in
    QTimer *m_stallTimer = nullptr;
    QTimer *m_flushTimer; // zero, single shot: the flush at the end of this event-loop pass
    bool m_closed = false;
    Stats m_stats;
    QElapsedTimer m_refusalWindow; // refusal log lines: a few per window
    int m_refusalsLogged = 0;
    quint64 m_refusalsSuppressed = 0;
};

} // namespace dengine::engine
