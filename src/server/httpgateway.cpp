// SPDX-License-Identifier: Apache-2.0
#include "server/httpgateway.h"

#include "server/listener.h"
#include "server/servermetrics.h"

#include <dengine/dengine.h>

#include <QtCore/QElapsedTimer>
#include <QtCore/QJsonArray>
#include <QtCore/QSet>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QLoggingCategory>
#include <QtCore/QPointer>
#include <QtCore/QTimer>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>

#include <chrono>
#include <deque>

Q_LOGGING_CATEGORY(lcHttp, "dengine.http")

namespace dengine::server {

namespace {

using Clock = std::chrono::steady_clock;
using Status = DEngine::Status;

const char *reasonPhrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Error";
}

QByteArray response(int status, const QByteArray &body, const char *contentType, bool close)
{
    QByteArray out;
    out.reserve(body.size() + 128);
    out += "HTTP/1.1 " + QByteArray::number(status) + ' ' + reasonPhrase(status) + "\r\nContent-Type: " + contentType
        + "\r\nContent-Length: " + QByteArray::number(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n";
    out += body;
    return out;
}

QByteArray json(const QJsonObject &o) { return QJsonDocument(o).toJson(QJsonDocument::Compact); }

// etcd's gateway answers a failed call with the gRPC code of its status.
struct Failure {
    int http;
    int grpc;
};
Failure failureOf(Status s)
{
    switch (s) {
    case Status::InvalidArgument: return {400, 3};
    case Status::Timeout: return {504, 4};
    case Status::Busy: return {429, 8};
    case Status::Refused: return {412, 9};
    case Status::StorageFailure: return {500, 13};
    case Status::NoQuorum:
    case Status::Stopping: return {503, 14};
    case Status::NotFound: return {404, 5}; // from a write or a lease call: the lease is gone
    case Status::Compacted: return {400, 11};
    case Status::Ok: break;
    }
    return {500, 2};
}

QByteArray errorBody(int grpc, const QString &message)
{
    return json(QJsonObject{{QStringLiteral("error"), message}, {QStringLiteral("code"), grpc}, {QStringLiteral("message"), message}});
}

// A base64 field of the request: absent is empty; invalid base64 is an error.
bool base64Field(const QJsonObject &o, const char *name, QByteArray &out, bool &present, QString &why)
{
    const QJsonValue v = o.value(QLatin1String(name));
    present = !v.isUndefined() && !v.isNull();
    if (!present) {
        out.clear();
        return true;
    }
    if (!v.isString()) {
        why = QStringLiteral("%1: a base64 string is expected").arg(QLatin1String(name));
        return false;
    }
    auto decoded = QByteArray::fromBase64Encoding(v.toString().toLatin1(), QByteArray::AbortOnBase64DecodingErrors);
    if (!decoded) {
        why = QStringLiteral("%1: not valid base64").arg(QLatin1String(name));
        return false;
    }
    out = std::move(*decoded);
    return true;
}

// etcd's int64 fields: a JSON string of digits, or a number.
bool int64Field(const QJsonObject &o, const char *name, quint64 &out, QString &why)
{
    const QJsonValue v = o.value(QLatin1String(name));
    out = 0;
    if (v.isUndefined() || v.isNull())
        return true;
    const double d = v.toDouble();
    bool ok = v.isDouble() && d >= 0 && d <= 9007199254740992.0 && d == double(qint64(d)); // an integer a double holds exactly
    if (ok)
        out = quint64(d);
    else if (v.isString())
        out = v.toString().toULongLong(&ok);
    if (!ok)
        why = QStringLiteral("%1: a non-negative integer is expected").arg(QLatin1String(name));
    return ok;
}

// An enum field of etcd's JSON: its name, or its number, or absent (the first name: proto3's 0).
bool enumField(const QJsonObject &o, const char *name, const QStringList &names, int &out, QString &why)
{
    const QJsonValue v = o.value(QLatin1String(name));
    out = 0;
    if (v.isUndefined() || v.isNull())
        return true;
    if (v.isDouble() && v.toDouble() >= 0 && v.toDouble() < double(names.size()) && v.toDouble() == double(int(v.toDouble()))) {
        out = int(v.toDouble());
        return true;
    }
    out = v.isString() ? int(names.indexOf(v.toString())) : -1;
    if (out < 0)
        why = QStringLiteral("%1: one of %2").arg(QLatin1String(name), names.join(QStringLiteral(", ")));
    return out >= 0;
}

// A txn's branch (etcd's RequestOp list): request_put and single-key request_delete_range.
bool txnOperations(const QJsonObject &o, const char *name, QList<DEngineOperation> &out, QString &why)
{
    const QJsonValue list = o.value(QLatin1String(name));
    if (list.isUndefined() || list.isNull())
        return true;
    if (!list.isArray()) {
        why = QStringLiteral("%1: an array is expected").arg(QLatin1String(name));
        return false;
    }
    for (const QJsonValue &item : list.toArray()) {
        const QJsonObject op = item.toObject();
        QByteArray key, value, end;
        bool hasKey = false, hasValue = false, hasEnd = false;
        if (op.contains(QLatin1String("request_put"))) {
            const QJsonObject put = op.value(QLatin1String("request_put")).toObject();
            if (!base64Field(put, "key", key, hasKey, why) || !base64Field(put, "value", value, hasValue, why))
                return false;
            for (const char *unsupported : {"prev_kv", "ignore_value", "ignore_lease"}) {
                const QJsonValue u = put.value(QLatin1String(unsupported));
                if (!u.isUndefined() && !u.isNull() && u != QJsonValue(false) && u != QJsonValue(0) && u != QJsonValue(QStringLiteral("0"))) {
                    why = QStringLiteral("%1: request_put's %2 is not supported yet").arg(QLatin1String(name), QLatin1String(unsupported));
                    return false;
                }
            }
            quint64 lease = 0;
            if (!int64Field(put, "lease", lease, why)) {
                why = QStringLiteral("%1: request_put's %2").arg(QLatin1String(name), why);
                return false;
            }
            if (key.isEmpty()) {
                why = QStringLiteral("%1: request_put without a key").arg(QLatin1String(name));
                return false;
            }
            out << DEngineOperation::put(key, value, lease);
        } else if (op.contains(QLatin1String("request_delete_range"))) {
            const QJsonObject del = op.value(QLatin1String("request_delete_range")).toObject();
            if (!base64Field(del, "key", key, hasKey, why) || !base64Field(del, "range_end", end, hasEnd, why))
                return false;
            if (key.isEmpty() || hasEnd) {
                why = QStringLiteral("%1: request_delete_range of one key only (no range_end) in a txn").arg(QLatin1String(name));
                return false;
            }
            out << DEngineOperation::remove(key);
        } else {
            why = QStringLiteral("%1: only request_put and request_delete_range are supported in a txn").arg(QLatin1String(name));
            return false;
        }
    }
    return true;
}

} // namespace

struct HttpGateway::Connection {
    QPointer<QTcpSocket> socket;
    HttpRequestParser parser;
    struct Slot {
        bool ready = false; // bytes to write (a stream's: more may follow)
        bool close = false;
        bool streaming = false; // a watch's answer: written as it comes, and kept until `ended`
        bool ended = false;
        QByteArray bytes;
    };
    std::deque<std::shared_ptr<Slot>> answers; // in the order the requests came
    bool closing = false; // an answer says Connection: close; read nothing more
    bool gone = false;
    // A watch (/v3/watch) makes the connection its stream: nothing more is read from it, and
    // closing it cancels the watch. Owned; deleted on a later turn (never inside its own signal).
    bool streaming = false;
    DEngineWatcher *watcher = nullptr;
    bool watchPaused = false;
    QElapsedTimer lastActivity;
    QElapsedTimer requestStarted; // since the first byte of a request not yet whole
    explicit Connection(QTcpSocket *s, HttpRequestParser::Limits limits) : socket(s), parser(limits) { lastActivity.start(); }
    ~Connection() { endWatch(); }
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    // Cancels the watch, if any: no signal of it after this.
    void endWatch()
    {
        if (!watcher)
            return;
        watcher->cancel();
        watcher->deleteLater();
        watcher = nullptr;
    }
};

HttpGateway::HttpGateway(DEngine *engine, ServerMetrics *metrics, Options options, QObject *parent)
    : QObject(parent), m_engine(engine), m_metrics(metrics), m_opts(std::move(options))
{
}

HttpGateway::~HttpGateway() { close(); }

bool HttpGateway::listen(QString *error)
{
    m_server = listenFor(QStringLiteral("HTTP"), m_opts.listenAddress, m_opts.tls, 5000, this,
                         [this](const QString &why) {
                             int heldBack = 0;
                             if (m_logBudget.take(&heldBack))
                                 qCWarning(lcHttp).noquote() << QStringLiteral("refused an HTTP client from %1%2").arg(why, heldBackNote(heldBack));
                         },
                         error);
    if (!m_server)
        return false;
    connect(m_server, &QTcpServer::pendingConnectionAvailable, this, &HttpGateway::onNewConnection);
    m_sweeper = new QTimer(this);
    m_sweeper->start(1000);
    connect(m_sweeper, &QTimer::timeout, this, &HttpGateway::sweep);
    qCInfo(lcHttp).noquote() << QStringLiteral("HTTP gateway on %1:%2%3")
                                    .arg(m_server->serverAddress().toString())
                                    .arg(m_server->serverPort())
                                    .arg(m_opts.tls ? QStringLiteral(" (TLS)") : QString());
    return true;
}

quint16 HttpGateway::port() const { return m_server ? m_server->serverPort() : 0; }

void HttpGateway::close()
{
    auto connections = std::move(m_connections);
    m_connections.clear();
    for (auto &[socket, c] : connections) {
        c->gone = true;
        socket->disconnect(this);
        socket->abort();
        socket->deleteLater();
    }
    if (m_server) {
        m_server->close();
        delete m_server;
        m_server = nullptr;
    }
    if (m_metrics)
        m_metrics->setConnections("http", 0);
}

void HttpGateway::onNewConnection()
{
    while (QTcpSocket *socket = m_server->nextPendingConnection()) {
        if (m_connections.size() >= static_cast<std::size_t>(m_opts.maxConnections)) {
            socket->write(response(503, errorBody(14, QStringLiteral("too many connections")), "application/json", true));
            socket->disconnectFromHost();
            connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
            continue;
        }
        socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
        HttpRequestParser::Limits limits;
        limits.maxBodyBytes = m_opts.maxBodyBytes;
        m_connections[socket] = std::make_shared<Connection>(socket, limits);
        connect(socket, &QTcpSocket::readyRead, this, [this, socket] { onReadable(socket); });
        connect(socket, &QTcpSocket::disconnected, this, [this, socket] { drop(socket); });
    }
    if (m_metrics)
        m_metrics->setConnections("http", m_connections.size());
}

void HttpGateway::drop(QTcpSocket *socket)
{
    const auto it = m_connections.find(socket);
    if (it == m_connections.end())
        return;
    it->second->gone = true;
    const bool watched = it->second->watcher != nullptr;
    it->second->endWatch(); // the client went: so does its watch
    m_connections.erase(it);
    socket->disconnect(this);
    socket->abort();
    socket->deleteLater();
    if (m_metrics)
        m_metrics->setConnections("http", m_connections.size());
    if (watched)
        countWatches();
}

void HttpGateway::sweep()
{
    std::vector<QTcpSocket *> late;
    for (const auto &[socket, c] : m_connections) {
        if (c->streaming)
            continue; // a watch's stream: it lasts as long as its client keeps it open
        if (c->parser.buffered() > 0 && c->requestStarted.isValid() && c->requestStarted.elapsed() > m_opts.requestTimeoutMs)
            late.push_back(socket); // a request begun and not finished: a slow (or stalled) client
        else if (c->answers.empty() && c->parser.buffered() == 0 && c->lastActivity.elapsed() > m_opts.idleTimeoutMs)
            late.push_back(socket);
    }
    for (QTcpSocket *s : late) {
        qCInfo(lcHttp).noquote() << QStringLiteral("closed an HTTP connection from %1: too slow or idle").arg(s->peerAddress().toString());
        drop(s);
    }
}

void HttpGateway::onReadable(QTcpSocket *socket)
{
    const auto found = m_connections.find(socket);
    if (found == m_connections.end())
        return;
    const std::shared_ptr<Connection> c = found->second;
    if (c->streaming) {
        // A watch's stream takes no more requests (etcd's cancel and progress requests on the same
        // stream are not supported): what comes is dropped, so it costs no memory.
        socket->skip(socket->bytesAvailable());
        return;
    }
    // Flow control: a client with maxInFlight answers pending is not read from until they go out.
    if (c->closing || c->answers.size() >= static_cast<std::size_t>(m_opts.maxInFlight))
        return;
    const bool begun = c->parser.buffered() > 0;
    const QByteArray in = socket->read(1 << 20);
    if (in.isEmpty())
        return;
    c->lastActivity.restart();
    if (!begun)
        c->requestStarted.restart();
    c->parser.feed(in.constData(), static_cast<std::size_t>(in.size()));
    HttpRequest request;
    for (;;) {
        if (c->answers.size() >= static_cast<std::size_t>(m_opts.maxInFlight))
            break;
        const HttpRequestParser::Result r = c->parser.next(request);
        if (r == HttpRequestParser::Result::NeedMore)
            break;
        if (r == HttpRequestParser::Result::Error) {
            auto slot = std::make_shared<Connection::Slot>();
            const QString why = QString::fromStdString(c->parser.error());
            slot->bytes = response(c->parser.errorStatus(), errorBody(3, why), "application/json", true);
            slot->ready = slot->close = true;
            c->answers.push_back(slot);
            c->closing = true;
            qCInfo(lcHttp).noquote() << QStringLiteral("refused an HTTP request from %1: %2").arg(socket->peerAddress().toString(), why);
            break;
        }
        if (c->parser.buffered() > 0)
            c->requestStarted.restart();
        handle(c, std::move(request));
        if (c->gone || c->closing || c->streaming)
            break;
    }
    flush(*c);
    if (!c->gone && !c->closing && !c->streaming && socket->bytesAvailable() > 0 && c->answers.size() < static_cast<std::size_t>(m_opts.maxInFlight))
        QTimer::singleShot(0, this, [this, socket] { onReadable(socket); });
}

void HttpGateway::flush(Connection &c)
{
    if (c.gone || !c.socket)
        return;
    bool close = false;
    while (!c.answers.empty() && c.answers.front()->ready) {
        Connection::Slot &front = *c.answers.front();
        c.socket->write(front.bytes);
        front.bytes.clear();
        front.ready = false;
        if (front.streaming && !front.ended)
            break; // a watch's stream: more to come, and it holds the connection
        close = close || front.close;
        c.answers.pop_front();
        if (close)
            break;
    }
    if (close) {
        c.closing = true;
        c.answers.clear();
        c.socket->disconnectFromHost(); // after what was written
        return;
    }
    c.socket->flush(); // now, not on the event loop's next turn
    // Room again: read what waited.
    if (!c.closing && !c.streaming && c.answers.size() < static_cast<std::size_t>(m_opts.maxInFlight) && c.socket->bytesAvailable() > 0) {
        QPointer<QTcpSocket> s = c.socket;
        QTimer::singleShot(0, this, [this, s] {
            if (s)
                onReadable(s);
        });
    }
}

void HttpGateway::handle(const std::shared_ptr<Connection> &c, HttpRequest &&request)
{
    auto slot = std::make_shared<Connection::Slot>();
    slot->close = !request.keepAlive;
    c->answers.push_back(slot);
    const std::string path = request.target.substr(0, request.target.find('?'));
    const auto answerNow = [&](int status, const QByteArray &body, const char *type = "application/json") {
        slot->bytes = response(status, body, type, slot->close);
        slot->ready = true;
    };

    if (path == "/health" || path == "/metrics") {
        if (request.method != "GET" && request.method != "HEAD") {
            answerNow(405, errorBody(12, QStringLiteral("use GET")));
            return;
        }
        if (path == "/metrics") {
            answerNow(200, m_metrics ? m_metrics->prometheus(*m_engine) : QByteArray(), "text/plain; version=0.0.4; charset=utf-8");
            return;
        }
        QString reason;
        if (m_engine->state() != DEngine::State::Running)
            reason = QStringLiteral("the node is not running");
        else if (!m_engine->isReady())
            reason = QStringLiteral("the node is not ready (no leader yet, or its first entry not applied)");
        else if (m_engine->currentLeader() == 0)
            reason = QStringLiteral("the node knows no leader now");
        answerNow(reason.isEmpty() ? 200 : 503,
                  json(QJsonObject{{QStringLiteral("health"), reason.isEmpty() ? QStringLiteral("true") : QStringLiteral("false")},
                                   {QStringLiteral("reason"), reason}}));
        return;
    }
    const bool put = path == "/v3/kv/put", range = path == "/v3/kv/range", del = path == "/v3/kv/deleterange", txn = path == "/v3/kv/txn";
    const bool watch = path == "/v3/watch";
    // The lease calls, at etcd's paths (and the /v3/kv/lease/... aliases its gateway has too).
    const bool grant = path == "/v3/lease/grant", revoke = path == "/v3/lease/revoke" || path == "/v3/kv/lease/revoke";
    const bool keepAlive = path == "/v3/lease/keepalive", timeToLive = path == "/v3/lease/timetolive" || path == "/v3/kv/lease/timetolive";
    const bool leaseCall = grant || revoke || keepAlive || timeToLive;
    if (!put && !range && !del && !txn && !watch && !leaseCall) {
        answerNow(404, errorBody(5, QStringLiteral("no such path: %1 (the gateway serves /v3/kv/put, /v3/kv/range, /v3/kv/deleterange, "
                                                   "/v3/kv/txn, /v3/watch, /v3/lease/grant, /v3/lease/revoke, /v3/lease/keepalive, "
                                                   "/v3/lease/timetolive, /health and /metrics)")
                                        .arg(QString::fromStdString(path))));
        return;
    }
    if (request.method != "POST") {
        answerNow(405, errorBody(12, QStringLiteral("use POST")));
        return;
    }
    QJsonParseError perr{};
    const QJsonDocument doc = QJsonDocument::fromJson(QByteArray::fromStdString(request.body), &perr);
    if (perr.error != QJsonParseError::NoError || !doc.isObject()) {
        answerNow(400, errorBody(3, QStringLiteral("the body is not a JSON object: %1").arg(perr.errorString())));
        return;
    }
    const QJsonObject o = doc.object();
    QString why;
    if (watch) {
        startWatch(c, o, request.minorVersion >= 1);
        return;
    }

    // The answer, when the call finishes (the connection may be gone by then).
    const auto start = Clock::now();
    std::weak_ptr<Connection> weak = c;
    QPointer<HttpGateway> self(this);
    const char *call = put ? "put" : range ? "range" : txn ? "txn" : del ? "deleterange" : grant ? "lease_grant" : revoke ? "lease_revoke"
                     : keepAlive ? "lease_keepalive" : "lease_timetolive";
    const auto header = [this](quint64 revision) { return responseHeader(revision); };
    auto finish = [self, weak, slot, start, call](int status, const QByteArray &body, bool ok) {
        if (!self)
            return;
        if (self->m_metrics)
            self->m_metrics->record(call, "http", std::chrono::duration<double>(Clock::now() - start).count(), ok);
        const std::shared_ptr<Connection> conn = weak.lock();
        if (!conn || conn->gone)
            return;
        slot->bytes = response(status, body, "application/json", slot->close);
        slot->ready = true;
        self->flush(*conn);
    };
    const auto failed = [finish](const DEngineResult &r) {
        const Failure f = failureOf(r.status);
        // NotFound from a write: the lease it names is gone (etcd's words for it).
        finish(f.http, errorBody(f.grpc, r.status == Status::NotFound ? QStringLiteral("etcdserver: requested lease not found") : r.message), false);
    };

    if (leaseCall) {
        // etcd's TTLs are seconds, DEngine's milliseconds; ids are the same numbers (decimal strings).
        quint64 id = 0, ttl = 0;
        if (!int64Field(o, "ID", id, why) || (grant && !int64Field(o, "TTL", ttl, why))) {
            answerNow(400, errorBody(3, why));
            return;
        }
        const auto seconds = [](qint64 ms) { return QString::number((ms + 999) / 1000); }; // a lease with time left never shows 0
        if (grant) {
            if (id != 0) {
                answerNow(400, errorBody(3, QStringLiteral("ID: the cluster chooses a lease's id (send 0 or leave it out)")));
                return;
            }
            // As etcd, a TTL under the minimum (1 s) is raised to it; one over 30 days is refused.
            const qint64 ttlMs = qint64(std::clamp<quint64>(ttl, 1, quint64(INT64_MAX / 1000))) * 1000;
            m_engine->grantLease(ttlMs).then([finish, failed, header, seconds](const DEngineResult &r) {
                if (!r.ok())
                    return failed(r);
                finish(200,
                       json(QJsonObject{{QStringLiteral("header"), header(r.revision)}, {QStringLiteral("ID"), QString::number(r.lease)},
                                        {QStringLiteral("TTL"), seconds(r.ttlMs)}}),
                       true);
            });
        } else if (revoke) {
            m_engine->revokeLease(id).then([finish, failed, header](const DEngineResult &r) {
                if (!r.ok())
                    return failed(r);
                finish(200, json(QJsonObject{{QStringLiteral("header"), header(r.revision)}}), true);
            });
        } else if (keepAlive) {
            // etcd streams keep-alives over one request; here a request is renewed once and
            // answered once, in the shape of the stream's message. A lease that is gone answers TTL
            // 0, as etcd's does.
            m_engine->keepAliveLease(id).then([finish, failed, header, seconds, id](const DEngineResult &r) {
                if (!r.ok() && r.status != Status::NotFound)
                    return failed(r);
                const QJsonObject result{{QStringLiteral("header"), header(r.revision)}, {QStringLiteral("ID"), QString::number(id)},
                                         {QStringLiteral("TTL"), r.ok() ? seconds(r.ttlMs) : QStringLiteral("0")}};
                finish(200, json(QJsonObject{{QStringLiteral("result"), result}}), true);
            });
        } else {
            // TTL: the seconds left, which only the leader times: -1 on another member (ask the
            // leader's gateway). A lease that is gone is an error (etcd's TTL -1 would read as
            // "unknown here").
            const bool withKeys = o.value(QLatin1String("keys")).toBool();
            m_engine->leaseTimeToLive(id).then([finish, failed, header, seconds, id, withKeys](const DEngineResult &r) {
                if (!r.ok())
                    return failed(r);
                QJsonObject out{{QStringLiteral("header"), header(r.revision)}, {QStringLiteral("ID"), QString::number(id)},
                                {QStringLiteral("TTL"), r.remainingMs < 0 ? QStringLiteral("-1") : seconds(r.remainingMs)},
                                {QStringLiteral("grantedTTL"), seconds(r.ttlMs)}};
                if (withKeys && !r.items.isEmpty()) {
                    QJsonArray keys;
                    for (const DEngineKeyValue &kv : r.items)
                        keys.append(QString::fromLatin1(kv.key.toBase64()));
                    out.insert(QStringLiteral("keys"), keys);
                }
                finish(200, json(out), true);
            });
        }
        return;
    }

    QByteArray key, value, rangeEnd;
    bool hasKey = false, hasValue = false, hasEnd = false;
    quint64 lease = 0;
    if (!base64Field(o, "key", key, hasKey, why) || !base64Field(o, "value", value, hasValue, why) || !base64Field(o, "range_end", rangeEnd, hasEnd, why)
        || !int64Field(o, "lease", lease, why)) {
        answerNow(400, errorBody(3, why));
        return;
    }
    if (key.isEmpty() && !(range && hasEnd) && !txn) {
        answerNow(400, errorBody(3, QStringLiteral("etcdserver: key is not provided")));
        return;
    }
    if (lease != 0 && !put) {
        answerNow(400, errorBody(3, QStringLiteral("lease: only a put takes one")));
        return;
    }

    if (txn) {
        // etcd's TxnRequest: compare [{key, target, result, value | version | create_revision |
        // mod_revision}], success and failure [{request_put} | {request_delete_range}].
        QList<DEngineCompare> compares;
        const QJsonValue list = o.value(QLatin1String("compare"));
        if (!list.isUndefined() && !list.isNull() && !list.isArray()) {
            answerNow(400, errorBody(3, QStringLiteral("compare: an array is expected")));
            return;
        }
        static const QStringList targets{QStringLiteral("VERSION"), QStringLiteral("CREATE"), QStringLiteral("MOD"), QStringLiteral("VALUE"),
                                         QStringLiteral("LEASE")};
        static const QStringList results{QStringLiteral("EQUAL"), QStringLiteral("GREATER"), QStringLiteral("LESS"), QStringLiteral("NOT_EQUAL")};
        for (const QJsonValue &item : list.toArray()) {
            const QJsonObject cmp = item.toObject();
            DEngineCompare d;
            bool present = false;
            int target = 0, result = 0;
            quint64 version = 0, create = 0, mod = 0;
            if (!base64Field(cmp, "key", d.key, present, why) || !base64Field(cmp, "value", d.value, present, why)
                || !enumField(cmp, "target", targets, target, why) || !enumField(cmp, "result", results, result, why)
                || !int64Field(cmp, "version", version, why) || !int64Field(cmp, "create_revision", create, why)
                || !int64Field(cmp, "mod_revision", mod, why)) {
                answerNow(400, errorBody(3, QStringLiteral("compare: %1").arg(why)));
                return;
            }
            if (d.key.isEmpty() || cmp.contains(QLatin1String("range_end")) || target == 4) {
                answerNow(400, errorBody(3, QStringLiteral("compare: one key (no range_end), on VERSION, CREATE, MOD or VALUE")));
                return;
            }
            static const DEngineCompare::Target byTarget[] = {DEngineCompare::Target::Version, DEngineCompare::Target::CreateRevision,
                                                              DEngineCompare::Target::ModRevision, DEngineCompare::Target::Value};
            static const DEngineCompare::Op byResult[] = {DEngineCompare::Op::Equal, DEngineCompare::Op::Greater, DEngineCompare::Op::Less,
                                                          DEngineCompare::Op::NotEqual};
            d.target = byTarget[target];
            d.op = byResult[result];
            d.number = target == 0 ? version : target == 1 ? create : mod;
            compares << d;
        }
        QList<DEngineOperation> success, failure;
        if (!txnOperations(o, "success", success, why) || !txnOperations(o, "failure", failure, why)) {
            answerNow(400, errorBody(3, why));
            return;
        }
        // As etcd: a key written twice in one branch is refused.
        for (const QList<DEngineOperation> *branch : {&success, &failure}) {
            QSet<QByteArray> keys;
            for (const DEngineOperation &op : *branch) {
                if (keys.contains(op.key)) {
                    answerNow(400, errorBody(3, QStringLiteral("etcdserver: duplicate key given in txn request")));
                    return;
                }
                keys.insert(op.key);
            }
        }
        m_engine->txn(compares, success, failure).then([finish, failed, header, success, failure](const DEngineResult &r) {
            if (!r.ok())
                return failed(r);
            // A response per operation of the branch that ran, as etcd's.
            QJsonArray responses;
            for (const DEngineOperation &op : r.succeeded ? success : failure)
                responses.append(QJsonObject{{op.kind == DEngineOperation::Kind::Put ? QStringLiteral("response_put") : QStringLiteral("response_delete_range"),
                                              QJsonObject{{QStringLiteral("header"), header(r.revision)}}}});
            QJsonObject out{{QStringLiteral("header"), header(r.revision)}, {QStringLiteral("responses"), responses}};
            if (r.succeeded)
                out.insert(QStringLiteral("succeeded"), true); // etcd leaves a false out
            finish(200, json(out), true);
        });
        return;
    }
    if (put) {
        // With a lease: a batch of one (the put that takes a lease); NotFound when the lease is gone.
        QFuture<DEngineResult> write = lease == 0 ? m_engine->put(key, value) : m_engine->batch({DEngineOperation::put(key, value, lease)});
        write.then([finish, failed, header](const DEngineResult &r) {
            if (!r.ok())
                return failed(r);
            finish(200, json(QJsonObject{{QStringLiteral("header"), header(r.revision)}}), true);
        });
        return;
    }
    const DEngine::Consistency consistency = o.value(QLatin1String("serializable")).toBool() ? DEngine::Consistency::Local : DEngine::Consistency::Linearizable;
    const QJsonValue limitValue = o.value(QLatin1String("limit"));
    const qint64 limit = limitValue.isString() ? limitValue.toString().toLongLong() : limitValue.toInteger();
    if (limit < 0 || limit > INT32_MAX) {
        answerNow(400, errorBody(3, QStringLiteral("limit: out of range")));
        return;
    }
    // range_end: absent, the key alone; "\0", every key from `key` on; else [key, range_end).
    const bool single = !hasEnd;
    const QByteArray end = rangeEnd == QByteArray(1, '\0') ? QByteArray() : rangeEnd;
    if (!single && !end.isEmpty() && end <= key) {
        answerNow(200, json(QJsonObject{{QStringLiteral("header"), header(m_engine->appliedIndex())}})); // an empty range
        return;
    }
    if (range) {
        const bool keysOnly = o.value(QLatin1String("keys_only")).toBool(), countOnly = o.value(QLatin1String("count_only")).toBool();
        const auto answer = [finish, header, keysOnly, countOnly](const DEngineResult &r, const QList<DEngineKeyValue> &items) {
            QJsonObject out{{QStringLiteral("header"), header(r.revision)}};
            if (!items.isEmpty()) {
                if (!countOnly) {
                    QJsonArray kvs;
                    for (const DEngineKeyValue &kv : items) {
                        // etcd's shape: int64 fields as JSON strings.
                        QJsonObject e{{QStringLiteral("key"), QString::fromLatin1(kv.key.toBase64())},
                                      {QStringLiteral("create_revision"), QString::number(kv.createRevision)},
                                      {QStringLiteral("mod_revision"), QString::number(kv.modRevision)},
                                      {QStringLiteral("version"), QString::number(kv.version)}};
                        if (!keysOnly)
                            e.insert(QStringLiteral("value"), QString::fromLatin1(kv.value.toBase64()));
                        kvs.append(e);
                    }
                    out.insert(QStringLiteral("kvs"), kvs);
                }
                out.insert(QStringLiteral("count"), QString::number(items.size()));
            }
            if (!r.nextKey.isEmpty())
                out.insert(QStringLiteral("more"), true);
            finish(200, json(out), true);
        };
        if (single) {
            m_engine->get(key, consistency).then([answer, failed, key](const DEngineResult &r) {
                if (r.status == Status::NotFound)
                    return answer(r, {});
                if (!r.ok())
                    return failed(r);
                answer(r, {DEngineKeyValue{key, r.value, r.createRevision, r.modRevision, r.version}});
            });
        } else {
            m_engine->range(key, end, static_cast<int>(limit), consistency).then([answer, failed](const DEngineResult &r) {
                if (!r.ok())
                    return failed(r);
                answer(r, r.items);
            });
        }
        return;
    }
    // deleterange: read what is there (linearizable), then delete it in one batch, page by page.
    struct Progress {
        quint64 deleted = 0;
        quint64 revision = 0;
    };
    auto progress = std::make_shared<Progress>();
    auto page = std::make_shared<std::function<void(QByteArray)>>();
    DEngine *engine = m_engine;
    *page = [engine, single, key, end, progress, page, finish, failed, header](const QByteArray &from) {
        QFuture<DEngineResult> read = single ? engine->get(key) : engine->range(from, end, 0);
        read.then([engine, single, key, end, progress, page, finish, failed, header](const DEngineResult &r) {
            const auto done = [&, page] {
                QJsonObject out{{QStringLiteral("header"), header(std::max(progress->revision, r.revision))}};
                if (progress->deleted > 0)
                    out.insert(QStringLiteral("deleted"), QString::number(progress->deleted));
                finish(200, json(out), true);
                *page = nullptr; // breaks the cycle
            };
            if (r.status == Status::NotFound || (r.ok() && !single && r.items.isEmpty()))
                return done();
            if (!r.ok()) {
                *page = nullptr;
                return failed(r);
            }
            QList<DEngineOperation> ops;
            if (single)
                ops << DEngineOperation::remove(key);
            for (const DEngineKeyValue &kv : r.items)
                ops << DEngineOperation::remove(kv.key);
            const QByteArray next = single ? QByteArray() : r.nextKey;
            engine->batch(ops).then([progress, page, finish, failed, header, next, n = ops.size()](const DEngineResult &w) {
                if (!w.ok()) {
                    *page = nullptr;
                    return failed(w);
                }
                progress->deleted += static_cast<quint64>(n);
                progress->revision = w.revision;
                if (!next.isEmpty())
                    return (*page)(next);
                QJsonObject out{{QStringLiteral("header"), header(w.revision)}, {QStringLiteral("deleted"), QString::number(progress->deleted)}};
                finish(200, json(out), true);
                *page = nullptr;
            });
        });
    };
    (*page)(key);
}

QJsonObject HttpGateway::responseHeader(quint64 revision) const
{
    return QJsonObject{{QStringLiteral("cluster_id"), QString::number(m_opts.clusterId)},
                       {QStringLiteral("member_id"), QString::number(m_engine->nodeId())},
                       {QStringLiteral("revision"), QString::number(revision)},
                       {QStringLiteral("raft_term"), QString::number(m_engine->currentTerm())}};
}

void HttpGateway::startWatch(const std::shared_ptr<Connection> &c, const QJsonObject &body, bool chunked)
{
    const std::shared_ptr<Connection::Slot> slot = c->answers.back(); // this request's
    const auto refuse = [&](const QString &why) {
        slot->bytes = response(400, errorBody(3, why), "application/json", slot->close);
        slot->ready = true;
    };
    const QJsonValue create = body.value(QLatin1String("create_request"));
    if (!create.isObject()) {
        refuse(QStringLiteral("create_request: an object is expected (one watch per request: close the connection to cancel it)"));
        return;
    }
    const QJsonObject cr = create.toObject();
    QByteArray key, rangeEnd;
    bool hasKey = false, hasEnd = false;
    quint64 from = 0, watchId = 0;
    QString why;
    if (!base64Field(cr, "key", key, hasKey, why) || !base64Field(cr, "range_end", rangeEnd, hasEnd, why)
        || !int64Field(cr, "start_revision", from, why) || !int64Field(cr, "watch_id", watchId, why)) {
        refuse(why);
        return;
    }
    if (key.isEmpty() && !hasEnd) {
        refuse(QStringLiteral("etcdserver: key is not provided"));
        return;
    }
    if (cr.value(QLatin1String("prev_kv")).toBool() || cr.value(QLatin1String("fragment")).toBool()) {
        refuse(QStringLiteral("prev_kv and fragment are not supported"));
        return;
    }
    bool noPut = false, noDelete = false;
    for (const QJsonValue &f : cr.value(QLatin1String("filters")).toArray()) {
        if (f == QJsonValue(QStringLiteral("NOPUT")) || f == QJsonValue(0)) {
            noPut = true;
        } else if (f == QJsonValue(QStringLiteral("NODELETE")) || f == QJsonValue(1)) {
            noDelete = true;
        } else {
            refuse(QStringLiteral("filters: NOPUT or NODELETE"));
            return;
        }
    }
    // The keys as etcd names them: no range_end, the key alone; "\0", every key from `key` on;
    // otherwise [key, range_end).
    QByteArray end;
    if (!hasEnd)
        end = key + '\0';
    else if (rangeEnd != QByteArray(1, '\0'))
        end = rangeEnd;
    if (!end.isEmpty() && end <= key) {
        refuse(QStringLiteral("range_end: must come after key"));
        return;
    }
    const bool progressNotify = cr.value(QLatin1String("progress_notify")).toBool();

    // The stream: a JSON message a line, each its own chunk (HTTP/1.0: until the connection closes).
    slot->streaming = true;
    slot->close = true;
    c->streaming = true;
    const auto line = [chunked](const QJsonObject &result) {
        const QByteArray text = json(QJsonObject{{QStringLiteral("result"), result}}) + '\n';
        return chunked ? QByteArray::number(text.size(), 16) + "\r\n" + text + "\r\n" : text;
    };
    QJsonObject created{{QStringLiteral("header"), responseHeader(m_engine->appliedIndex())}, {QStringLiteral("created"), true}};
    if (watchId != 0)
        created.insert(QStringLiteral("watch_id"), QString::number(watchId));
    slot->bytes = QByteArray("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n") + (chunked ? "Transfer-Encoding: chunked\r\n" : "")
                  + "Connection: close\r\n\r\n" + line(created);
    slot->ready = true;

    DEngineWatcher *w = m_engine->watch(key, end, from);
    c->watcher = w;
    countWatches();
    std::weak_ptr<Connection> weak = c;
    const auto send = [this, weak, slot](const QByteArray &bytes, bool last) {
        const std::shared_ptr<Connection> conn = weak.lock();
        if (!conn || conn->gone)
            return;
        slot->bytes += bytes;
        slot->ready = true;
        slot->ended = last;
        flush(*conn);
        if (!last)
            pace(*conn);
    };
    auto told = std::make_shared<quint64>(0); // the revision the last line said
    const auto withId = [watchId](QJsonObject result) {
        if (watchId != 0)
            result.insert(QStringLiteral("watch_id"), QString::number(watchId));
        return result;
    };
    connect(w, &DEngineWatcher::eventsReceived, this, [this, w, send, line, withId, told, noPut, noDelete](const QList<DEngineWatchEvent> &events) {
        QJsonArray list;
        for (const DEngineWatchEvent &e : events) {
            const bool deleted = e.type == DEngineWatchEvent::Type::Delete;
            if ((deleted && noDelete) || (!deleted && noPut))
                continue;
            // etcd's shapes: int64 fields as strings; a delete's kv has its key and revision.
            QJsonObject kv{{QStringLiteral("key"), QString::fromLatin1(e.key.toBase64())}, {QStringLiteral("mod_revision"), QString::number(e.revision)}};
            if (!deleted) {
                kv.insert(QStringLiteral("value"), QString::fromLatin1(e.value.toBase64()));
                kv.insert(QStringLiteral("create_revision"), QString::number(e.createRevision));
                kv.insert(QStringLiteral("version"), QString::number(e.version));
                if (e.lease != 0)
                    kv.insert(QStringLiteral("lease"), QString::number(e.lease));
            }
            list.append(QJsonObject{{QStringLiteral("type"), deleted ? QStringLiteral("DELETE") : QStringLiteral("PUT")}, {QStringLiteral("kv"), kv}});
        }
        if (list.isEmpty())
            return;
        *told = w->revision();
        send(line(withId({{QStringLiteral("header"), responseHeader(w->revision())}, {QStringLiteral("events"), list}})), false);
    });
    if (progressNotify) {
        // Progress (about once a second while the keys do not change): a line with the revision
        // every change up to which was sent.
        connect(w, &DEngineWatcher::progressed, this, [this, send, line, withId, told](quint64 revision) {
            if (revision <= *told)
                return;
            *told = revision;
            send(line(withId({{QStringLiteral("header"), responseHeader(revision)}})), false);
        });
    }
    connect(w, &DEngineWatcher::finished, this, [this, weak, send, line, withId, chunked](DEngine::Status status, const QString &message) {
        // The last line says why, and the stream ends. On Compacted, compact_revision is a
        // revision a new watch can start from (after reading the keys again).
        QJsonObject result = withId({{QStringLiteral("header"), responseHeader(m_engine->appliedIndex())},
                                     {QStringLiteral("canceled"), true},
                                     {QStringLiteral("cancel_reason"), message}});
        if (status == DEngine::Status::Compacted)
            result.insert(QStringLiteral("compact_revision"), QString::number(m_engine->appliedIndex() + 1));
        send(line(result) + (chunked ? QByteArray("0\r\n\r\n") : QByteArray()), true);
        if (const std::shared_ptr<Connection> conn = weak.lock())
            conn->endWatch();
        countWatches();
    });
    if (c->socket)
        connect(c->socket, &QTcpSocket::bytesWritten, this, [this, weak] {
            if (const std::shared_ptr<Connection> conn = weak.lock())
                pace(*conn);
        });
}

void HttpGateway::pace(Connection &c)
{
    if (!c.watcher || !c.socket || c.gone)
        return;
    // What the client has not taken yet: the socket's, and the stream's lines waiting behind
    // answers to earlier requests.
    qint64 queued = c.socket->bytesToWrite();
    for (const auto &slot : c.answers)
        queued += slot->bytes.size();
    const bool pause = c.watchPaused ? queued > m_opts.maxStreamQueuedBytes / 4 : queued > m_opts.maxStreamQueuedBytes;
    if (pause == c.watchPaused)
        return;
    c.watchPaused = pause;
    c.watcher->setPaused(pause);
}

void HttpGateway::countWatches()
{
    if (!m_metrics)
        return;
    quint64 open = 0;
    for (const auto &[socket, c] : m_connections)
        open += c->watcher ? 1 : 0;
    m_metrics->setConnections("http_watch", open);
}

} // namespace dengine::server
