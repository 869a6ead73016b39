// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "client/clientcodec.h"
#include "server/listener.h"

#include <QtCore/QElapsedTimer>
#include <QtCore/QObject>
#include <QtCore/QPointer>
#include <QtCore/QString>

#include <dengine/dengine.h>

#include <map>
#include <memory>

class QTcpServer;
class QTcpSocket;
class QTimer;

namespace dengine::engine {
class TlsIdentity;
}

namespace dengine::server {

class ServerMetrics;

// The client port of a standalone member (dengined): the client protocol (client/clientcodec.h)
// over TCP, served by the member's DEngine through its public API, so a standalone member answers
// exactly as an embedded one would. Any member takes any call: the engine forwards writes and
// linearizable reads to the leader itself.
//
// Per connection: requests are decoded as they arrive and handed to the engine at once, many in
// flight (pipelining); each response carries its request's id and goes out when its call
// finishes. Bounded: at most maxConnections connections (more are closed at once), maxInFlight
// calls per connection (more are answered Busy), frames of at most maxFrameBytes (a larger one
// closes the connection), and a connection whose unread responses pass maxQueuedBytes is not read
// from until its client catches up. A request that does not parse closes its connection with a log
// line; a request of another protocol version is answered InvalidArgument, naming both versions.
//
// Subscriptions (SUBSCRIBE): the engine's lifecycle transitions (leader, term, first commit, ready,
// role, members, stopping) are queued in the order the engine signals them and pushed to every
// subscriber within the same event-loop turn, each push with the member's state after them; the
// commit and applied indexes at most every 100 ms; and a push at least every heartbeat, so a
// client can tell a paused member from a quiet one. A subscriber whose unread data passes
// maxQueuedBytes is disconnected (its client reconnects and gets the state afresh): a
// transition is never dropped from a stream that goes on.
//
// Threads: lives on the engine's owner thread (it calls the engine there); not thread-safe.
class ClientService : public QObject {
    Q_OBJECT
public:
    struct Options {
        QString listenAddress; // "host:port" (port 0: any free port)
        quint32 maxFrameBytes = 16u << 20;
        int maxConnections = 1024;
        int maxInFlight = 4096;
        qint64 maxQueuedBytes = 64LL << 20;
        QString version; // the server's, in STATUS answers
        // Where this member tells clients to reach it (STATUS, SUBSCRIBE); empty: the address it
        // listens on (with the real port for port 0).
        QString advertisedAddress;
        int maxHeartbeatMs = 5000; // a subscriber's heartbeat_ms is kept within [50, this]
        // TLS 1.3 on the client port, with this node's identity: a client must present a
        // certificate of the cluster's authority (a client's from dengine-ctl certs client, or a
        // member's). Null: plain TCP (dengined allows it only when told: insecureClients).
        std::shared_ptr<const engine::TlsIdentity> tls;
        int handshakeTimeoutMs = 5000;
        int maxWatches = 1024; // per connection
    };
    struct Stats {
        quint64 connectionsAccepted = 0;
        quint64 connectionsRefused = 0; // over maxConnections
        quint64 connectionsClosedForErrors = 0;
        quint64 handshakesFailed = 0; // TLS: no certificate, another authority's, a timeout
        quint64 requests = 0;
        quint64 subscribers = 0; // now
    };

    ClientService(DEngine *engine, Options options, QObject *parent = nullptr);
    ~ClientService() override;

    // Starts listening; false with a reason naming the address (in use, bad address).
    bool listen(QString *error);
    quint16 port() const;
    // Where clients reach this member: Options::advertisedAddress, or the address listened on.
    QString advertisedAddress() const;
    // Stops listening and closes every connection (calls in flight finish unanswered).
    void close();
    Stats stats() const;
    // Where each answered call's time goes (/metrics); null: nowhere. Not owned.
    void setMetrics(ServerMetrics *metrics) { m_metrics = metrics; }

private:
    struct Connection;
    void onNewConnection();
    void onReadable(QTcpSocket *socket);
    void handle(Connection &c, std::string &&payload);
    // WATCH: a watcher on the engine whose deliveries are pushed under the request's id, paced by
    // how fast the client reads (Connection::pace), until it finishes (a final push says why) or
    // is cancelled.
    void startWatch(Connection &c, const clientwire::Request &req);
    // Answers request `id` at once with a refusal (for a WATCH, its last push).
    void writeRefusal(QTcpSocket *socket, std::uint64_t id, DEngine::Status status, const QString &message, bool watchDone) const;
    void drop(QTcpSocket *socket, const QString &why);
    // Answers Timeout to every call whose client deadline passed (every 20 ms).
    void sweepDeadlines();
    // Subscriptions: the engine's transitions, queued in order and pushed to every subscriber.
    void watchEngine();
    void queueEvent(clientwire::Event::Kind kind, quint64 value);
    void pushEvents();
    void pushHeartbeats();
    void push(Connection &c, const std::vector<clientwire::Event> &events);
    clientwire::NodeStatus nodeStatus() const;

    DEngine *m_engine;
    Options m_opts;
    QTcpServer *m_server = nullptr;
    std::map<QTcpSocket *, std::shared_ptr<Connection>> m_connections;
    Stats m_stats;
    LogBudget m_logBudget; // refused and dropped clients: a flood is counted, not logged line by line
    ServerMetrics *m_metrics = nullptr;
    quint64 m_firstCommit = 0; // the current term's first entry, once applied (firstCommit)
    bool m_pushScheduled = false;
    bool m_indexesMoved = false;
    QTimer *m_heartbeat = nullptr;
    QTimer *m_deadlineSweep = nullptr;
    QElapsedTimer m_clock;
    std::vector<clientwire::Event> m_events; // not pushed yet
};

} // namespace dengine::server
