// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "server/httpparser.h"
#include "server/listener.h"

#include <QtCore/QObject>
#include <QtCore/QString>

#include <map>
#include <memory>

class DEngine;
class QTcpServer;
class QTcpSocket;
class QTimer;

namespace dengine::engine {
class TlsIdentity;
}

namespace dengine::server {

class ServerMetrics;

// The HTTP/JSON gateway of a standalone member: etcd's v3 JSON shapes over HTTP/1.1, so curl,
// etcd's HTTP clients and a wrk script written for etcd work unchanged, served by the member's
// DEngine through its public API.
//
//   POST /v3/kv/put          {"key": b64, "value": b64}                      -> {"header": {...}}
//   POST /v3/kv/range        {"key": b64, "range_end": b64, "limit": n, "serializable": bool}
//                            -> {"header": {...}, "kvs": [{"key", "value"}], "count": "n", "more": bool}
//   POST /v3/kv/deleterange  {"key": b64, "range_end": b64}                   -> {"header": {...}, "deleted": "n"}
//   GET  /health             {"health": "true"|"false", "reason": ...} (200 when ready, else 503)
//   GET  /metrics            Prometheus text format 0.0.4 (ServerMetrics)
// The header carries cluster_id, member_id, revision (the log index the answer reflects) and
// raft_term, as strings (protobuf's JSON mapping of 64-bit integers). range_end as etcd has it:
// absent, one key; "\0" (AA==), every key from `key` on; otherwise [key, range_end). A range
// answers at most the engine's maxScanItems keys: "more" says more follow, "count" is the number
// returned (etcd counts the whole range). DEngine keeps no per-key revisions yet: the kvs carry
// no create/mod revision or version. deleterange reads the keys and deletes them in one batch:
// keys written between the two steps are not deleted, and "deleted" counts what the read found.
// Errors answer as etcd's gateway does: an HTTP status and {"error", "code" (gRPC), "message"}.
//
// Bounded: at most maxConnections connections; a request line and headers of at most 16 KiB, a
// body of at most maxBodyBytes (413 before it is read); at most maxInFlight requests in flight
// per connection (more are not read until answers go out); answers in the order the requests
// came (HTTP/1.1 pipelining); a connection that takes over requestTimeoutMs to deliver a request
// it began (a slow client), or stays idle over idleTimeoutMs, is closed. Bad input closes the
// connection after an answer saying why.
//
// Threads: lives on the engine's owner thread; not thread-safe.
class HttpGateway : public QObject {
    Q_OBJECT
public:
    struct Options {
        QString listenAddress; // "host:port" (port 0: any free port)
        std::shared_ptr<const engine::TlsIdentity> tls; // HTTPS, with client certificates required; null: plain
        quint64 clusterId = 1;
        int maxConnections = 1024;
        int maxInFlight = 1024;
        std::size_t maxBodyBytes = 4u << 20;
        int requestTimeoutMs = 10000;
        int idleTimeoutMs = 60000;
    };
    HttpGateway(DEngine *engine, ServerMetrics *metrics, Options options, QObject *parent = nullptr);
    ~HttpGateway() override;

    bool listen(QString *error);
    quint16 port() const;
    void close();

private:
    struct Connection;
    void onNewConnection();
    void onReadable(QTcpSocket *socket);
    void handle(const std::shared_ptr<Connection> &c, HttpRequest &&request);
    void flush(Connection &c);
    void drop(QTcpSocket *socket);
    void sweep();

    DEngine *m_engine;
    ServerMetrics *m_metrics;
    Options m_opts;
    LogBudget m_logBudget; // refused and dropped clients: a flood is counted, not logged line by line
    QTcpServer *m_server = nullptr;
    QTimer *m_sweeper = nullptr;
    std::map<QTcpSocket *, std::shared_ptr<Connection>> m_connections;
};

} // namespace dengine::server
