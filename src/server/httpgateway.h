// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "server/httpparser.h"
#include "server/listener.h"

#include <QtCore/QObject>
#include <QtCore/QString>

#include <map>
#include <memory>

class DEngine;
class QJsonObject;
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
//   POST /v3/kv/put          {"key": b64, "value": b64, "lease": id}              -> {"header": {...}}
//   POST /v3/kv/range        {"key": b64, "range_end": b64, "limit": n, "serializable": bool}
//                            -> {"header": {...}, "kvs": [{"key", "value", "create_revision", "mod_revision",
//                                "version"}], "count": "n", "more": bool}
//   POST /v3/kv/deleterange  {"key": b64, "range_end": b64}                       -> {"header": {...}, "deleted": "n"}
//   POST /v3/kv/txn          {"compare": [...], "success": [...], "failure": [...]} (request_put may name a lease)
//   POST /v3/lease/grant     {"TTL": seconds, "ID": 0}                            -> {"header", "ID", "TTL"}
//   POST /v3/lease/revoke    {"ID": id}                                           -> {"header"}
//   POST /v3/lease/keepalive {"ID": id}                                -> {"result": {"header", "ID", "TTL"}}
//   POST /v3/lease/timetolive {"ID": id, "keys": bool}       -> {"header", "ID", "TTL", "grantedTTL", "keys": [b64]}
//   POST /v3/watch           {"create_request": {"key", "range_end", "start_revision", "progress_notify",
//                            "filters", "watch_id"}} -> a stream (below)
//   GET  /health             {"health": "true"|"false", "reason": ...} (200 when ready, else 503)
//   GET  /metrics            Prometheus text format 0.0.4 (ServerMetrics)
// The header carries cluster_id, member_id, revision (the log index the answer reflects) and
// raft_term, as strings (protobuf's JSON mapping of 64-bit integers). range_end as etcd has it:
// absent, one key; "\0" (AA==), every key from `key` on; otherwise [key, range_end). A range
// answers at most the engine's maxScanItems keys: "more" says more follow, "count" is the number
// returned (etcd counts the whole range). deleterange reads the keys and deletes them in one batch:
// keys written between the two steps are not deleted, and "deleted" counts what the read found.
// Errors answer as etcd's gateway does: an HTTP status and {"error", "code" (gRPC), "message"}.
//
// Leases (the /v3/kv/lease/revoke and /v3/kv/lease/timetolive aliases of etcd's gateway too): TTLs
// in seconds (DEngine's in ms; a grant under 1 s gets 1 s, as etcd raises a TTL to its minimum);
// the cluster picks the id (a grant naming one is refused). A put onto a lease that is gone, and a
// revoke of one, answer 404 "etcdserver: requested lease not found". keepalive renews once per
// request and answers once, in the shape of etcd's stream message (etcd's gateway streams answers
// to a stream of requests); a lease that is gone answers TTL "0", as etcd's does. timetolive's TTL
// is the seconds left as the leader times it: "-1" on any other member (ask the leader's gateway);
// a lease that is gone is a 404 (where etcd answers TTL -1, which here would read as "unknown").
//
// A watch: the answer is a stream (chunked transfer encoding; for an HTTP/1.0 client, until the
// connection closes) of JSON messages, one a line as etcd's gateway sends them: first
// {"result": {"header", "created": true}}, then {"result": {"header", "events": [{"type":
// "PUT"|"DELETE", "kv": {"key", "value", "create_revision", "mod_revision", "version", "lease"}}]}}
// as changes come (a delete's kv has its key and mod_revision), with progress_notify a
// {"result": {"header"}} about once a second while nothing changes. A watch that ends (Compacted:
// its revision fell out of this member's history; the engine stopping) sends {"result": {"header",
// "canceled": true, "cancel_reason", "compact_revision"}} (compact_revision, on Compacted: a
// revision a new watch can start from, after reading the keys again) and ends the stream. One
// watch per request: the connection is the stream's (nothing more is read from it), and closing
// it cancels the watch. Bounded: while more than maxStreamQueuedBytes of the stream wait for the
// client, the watch is paused (the engine keeps its place; paused too long, it ends Compacted).
//
// Bounded: at most maxConnections connections; a request line and headers of at most 16 KiB, a
// body of at most maxBodyBytes (413 before it is read); at most maxInFlight requests in flight
// per connection (more are not read until answers go out); answers in the order the requests
// came (HTTP/1.1 pipelining); a connection that takes over requestTimeoutMs to deliver a request
// it began (a slow client), or stays idle over idleTimeoutMs (a watch stream never is), is closed.
// Bad input closes the connection after an answer saying why.
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
        // A watch stream: its watch pauses while more than this waits for the client, and goes on
        // once a quarter of it is left.
        qint64 maxStreamQueuedBytes = 4LL << 20;
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
    // /v3/watch: the request just handled (the connection's last answer) becomes a stream.
    void startWatch(const std::shared_ptr<Connection> &c, const QJsonObject &body, bool chunked);
    // Pauses a stream's watch while its client reads slowly, and lets it go on once it caught up.
    void pace(Connection &c);
    void countWatches(); // the open watch streams, for /metrics
    QJsonObject responseHeader(quint64 revision) const;
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
