// SPDX-License-Identifier: Apache-2.0
#include "server/clientservice.h"

#include "client/clientcodec.h"
#include "engine/tlsidentity.h"
#include "server/listener.h"
#include "server/servermetrics.h"

#include <dengine/dengine.h>

#include <QtCore/QElapsedTimer>
#include <QtCore/QLoggingCategory>
#include <QtCore/QTimer>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>

#include <algorithm>
#include <chrono>
#include <map>

Q_LOGGING_CATEGORY(lcClients, "dengine.clients")

namespace dengine::server {

namespace {

QByteArray bytes(const std::string &s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); }

// A batch's or a txn branch's operations as the engine takes them.
QList<DEngineOperation> operations(const std::vector<clientwire::Operation> &list)
{
    QList<DEngineOperation> ops;
    ops.reserve(static_cast<qsizetype>(list.size()));
    for (const clientwire::Operation &op : list)
        ops << (op.remove ? DEngineOperation::remove(bytes(op.key))
                          : op.sequential ? DEngineOperation::putSequential(bytes(op.key), bytes(op.value), op.lease)
                                          : DEngineOperation::put(bytes(op.key), bytes(op.value), op.lease));
    return ops;
}
std::string toStd(const QByteArray &b) { return std::string(b.constData(), static_cast<std::size_t>(b.size())); }
std::string toStd(const QString &s) { return s.toStdString(); }

clientwire::Response toResponse(std::uint64_t id, const DEngineResult &r)
{
    clientwire::Response out;
    out.id = id;
    out.status = static_cast<std::uint32_t>(r.status);
    out.message = toStd(r.message);
    out.revision = r.revision;
    out.leader = r.leaderHint;
    out.value = toStd(r.value);
    out.createRevision = r.createRevision;
    out.modRevision = r.modRevision;
    out.version = r.version;
    out.succeeded = r.succeeded;
    out.lease = r.lease;
    out.ttlMs = static_cast<std::uint64_t>(std::max<qint64>(0, r.ttlMs));
    out.remainingMs = r.remainingMs;
    out.items.reserve(static_cast<std::size_t>(r.items.size()));
    for (const DEngineKeyValue &kv : r.items)
        out.items.push_back(clientwire::KeyValue{toStd(kv.key), toStd(kv.value), kv.createRevision, kv.modRevision, kv.version});
    out.nextKey = toStd(r.nextKey);
    return out;
}

} // namespace

struct ClientService::Connection {
    QPointer<QTcpSocket> socket;
    transport::FrameReader reader;
    // Ids not answered yet -> their call's serial (an id may be reused once answered: a late answer
    // to its earlier call must not pass) and its place among the deadlines.
    struct Pending {
        std::uint64_t serial = 0;
        std::multimap<qint64, std::uint64_t>::iterator deadline;
        bool hasDeadline = false;
    };
    std::map<std::uint64_t, Pending> inFlight;
    std::multimap<qint64, std::uint64_t> deadlines; // the clients' deadlines (ms on the service's clock) -> ids
    std::uint64_t serial = 0;                        // (an id may be reused once answered: a late
                                                     // answer to its earlier call must not pass)
    bool closed = false;
    std::uint64_t subscription = 0; // the SUBSCRIBE request's id (0: none)
    std::size_t seenEvents = 0;     // queued transitions its first push already showed
    qint64 heartbeatMs = 0;
    QElapsedTimer sincePush;
    // Watches, by their WATCH request's id; deleted (cancelled) with the connection.
    std::map<std::uint64_t, std::unique_ptr<DEngineWatcher>> watches;
    std::map<std::uint64_t, std::uint64_t> watchTold; // the revision each last pushed
    bool watchesPaused = false;
    explicit Connection(QTcpSocket *s, quint32 maxFrame) : socket(s), reader(maxFrame) {}
    // Pauses the watches while the client reads slowly (its unread data past `high`), and lets them
    // go on once it has read most of it: the engine keeps their place meanwhile.
    void pace(qint64 high)
    {
        if (!socket)
            return;
        const qint64 queued = socket->bytesToWrite();
        const bool pause = watchesPaused ? queued > high / 4 : queued > high;
        if (pause == watchesPaused)
            return;
        watchesPaused = pause;
        for (auto &[id, w] : watches)
            w->setPaused(pause);
    }
};

ClientService::ClientService(DEngine *engine, Options options, QObject *parent)
    : QObject(parent), m_engine(engine), m_opts(std::move(options))
{
    watchEngine();
}

ClientService::Stats ClientService::stats() const
{
    Stats s = m_stats;
    for (const auto &[socket, c] : m_connections)
        s.subscribers += c->subscription != 0 ? 1 : 0;
    return s;
}

void ClientService::watchEngine()
{
    using K = clientwire::Event::Kind;
    connect(m_engine, &DEngine::termChanged, this, [this](quint64 term) {
        m_firstCommit = 0; // not applied yet in the new term
        queueEvent(K::Term, term);
    });
    connect(m_engine, &DEngine::leaderChanged, this, [this](NodeId leader) { queueEvent(K::Leader, leader); });
    connect(m_engine, &DEngine::firstCommit, this, [this](quint64 index) {
        m_firstCommit = index;
        queueEvent(K::FirstCommit, index);
    });
    connect(m_engine, &DEngine::ready, this, [this] { queueEvent(K::Ready, 0); });
    connect(m_engine, &DEngine::roleChanged, this, [this](DEngine::Role role) { queueEvent(K::Role, static_cast<quint64>(role)); });
    connect(m_engine, &DEngine::membersChanged, this, [this] { queueEvent(K::Members, 0); });
    connect(m_engine, &DEngine::stopping, this, [this] {
        queueEvent(K::Stopping, 0);
        pushEvents(); // now: whoever closes the port next (dengined) closes it after this
    });
    connect(m_engine, &DEngine::commitIndexChanged, this, [this] { m_indexesMoved = true; });
    connect(m_engine, &DEngine::appliedIndexChanged, this, [this] { m_indexesMoved = true; });
    m_heartbeat = new QTimer(this);
    m_heartbeat->setInterval(100);
    connect(m_heartbeat, &QTimer::timeout, this, &ClientService::pushHeartbeats);
}

clientwire::NodeStatus ClientService::nodeStatus() const
{
    clientwire::NodeStatus n;
    n.nodeId = m_engine->nodeId();
    n.leader = m_engine->currentLeader();
    n.term = m_engine->currentTerm();
    n.role = static_cast<std::uint32_t>(m_engine->role());
    n.commit = m_engine->commitIndex();
    n.applied = m_engine->appliedIndex();
    n.ready = m_engine->isReady();
    const QList<NodeId> learners = m_engine->learners();
    for (NodeId id : m_engine->members())
        n.members.push_back(
            clientwire::Member{id, toStd(m_engine->memberAddress(id)), learners.contains(id), toStd(m_engine->memberClientAddress(id))});
    n.version = toStd(m_opts.version);
    n.firstCommit = m_firstCommit;
    n.clientAddress = toStd(advertisedAddress());
    n.stopping = m_engine->state() != DEngine::State::Running;
    return n;
}

QString ClientService::advertisedAddress() const
{
    if (!m_opts.advertisedAddress.isEmpty())
        return m_opts.advertisedAddress;
    const int colon = m_opts.listenAddress.lastIndexOf(QLatin1Char(':'));
    return QStringLiteral("%1:%2").arg(m_opts.listenAddress.left(colon)).arg(port());
}

void ClientService::queueEvent(clientwire::Event::Kind kind, quint64 value)
{
    m_events.push_back(clientwire::Event{kind, value});
    if (m_pushScheduled)
        return;
    m_pushScheduled = true;
    // The rest of this turn's transitions go in the same push.
    QTimer::singleShot(0, this, [this] { pushEvents(); });
}

void ClientService::pushEvents()
{
    m_pushScheduled = false;
    if (m_events.empty())
        return;
    const std::vector<clientwire::Event> events = std::move(m_events);
    m_events.clear();
    std::vector<std::shared_ptr<Connection>> subscribers;
    for (const auto &[socket, c] : m_connections)
        if (c->subscription != 0)
            subscribers.push_back(c);
    for (const auto &c : subscribers) {
        const std::size_t seen = std::exchange(c->seenEvents, 0);
        if (seen < events.size())
            push(*c, std::vector<clientwire::Event>(events.begin() + static_cast<std::ptrdiff_t>(seen), events.end()));
    }
}

void ClientService::pushHeartbeats()
{
    const bool moved = std::exchange(m_indexesMoved, false);
    std::vector<std::shared_ptr<Connection>> due;
    for (const auto &[socket, c] : m_connections)
        if (c->subscription != 0 && (moved || c->sincePush.elapsed() >= c->heartbeatMs))
            due.push_back(c);
    for (const auto &c : due)
        push(*c, {});
    if (due.empty() && std::none_of(m_connections.begin(), m_connections.end(), [](const auto &e) { return e.second->subscription != 0; }))
        m_heartbeat->stop();
}

void ClientService::push(Connection &c, const std::vector<clientwire::Event> &events)
{
    if (c.closed || !c.socket)
        return;
    if (c.socket->bytesToWrite() > m_opts.maxQueuedBytes) {
        drop(c.socket, QStringLiteral("a subscriber that does not read its pushes (%1 bytes unread)").arg(c.socket->bytesToWrite()));
        return;
    }
    clientwire::Response r;
    r.id = c.subscription;
    r.status = static_cast<std::uint32_t>(DEngine::Status::Ok);
    r.leader = m_engine->currentLeader();
    r.revision = m_engine->appliedIndex();
    r.hasNode = true;
    r.node = nodeStatus();
    r.events = events;
    std::string frame;
    clientwire::appendResponse(frame, r);
    c.socket->write(frame.data(), static_cast<qint64>(frame.size()));
    c.sincePush.restart();
}

ClientService::~ClientService() { close(); }

bool ClientService::listen(QString *error)
{
    m_server = listenFor(QStringLiteral("clients"), m_opts.listenAddress, m_opts.tls, m_opts.handshakeTimeoutMs, this,
                         [this](const QString &why) {
                             ++m_stats.handshakesFailed;
                             int heldBack = 0;
                             if (m_logBudget.take(&heldBack))
                                 qCWarning(lcClients).noquote() << QStringLiteral("refused a client from %1%2").arg(why, heldBackNote(heldBack));
                         },
                         error);
    if (!m_server)
        return false;
    // Once a connection is ready for requests (for TLS: after the handshake).
    connect(m_server, &QTcpServer::pendingConnectionAvailable, this, &ClientService::onNewConnection);
    m_clock.start();
    if (!m_deadlineSweep) {
        m_deadlineSweep = new QTimer(this);
        connect(m_deadlineSweep, &QTimer::timeout, this, &ClientService::sweepDeadlines);
    }
    m_deadlineSweep->start(20);
    qCInfo(lcClients).noquote() << QStringLiteral("listening for clients on %1:%2%3")
                                       .arg(m_server->serverAddress().toString())
                                       .arg(m_server->serverPort())
                                       .arg(m_opts.tls ? QStringLiteral(" (TLS)") : QString());
    return true;
}

quint16 ClientService::port() const { return m_server ? m_server->serverPort() : 0; }

void ClientService::close()
{
    // The connections first: their sockets are the server's children, deleted with it.
    auto connections = std::move(m_connections);
    m_connections.clear();
    for (auto &[socket, c] : connections) {
        c->closed = true;
        socket->disconnect(this);
        socket->setParent(nullptr);
        // What is written goes out first (a subscriber's last push says the member is stopping),
        // within a second.
        socket->disconnectFromHost();
        if (socket->state() == QAbstractSocket::UnconnectedState) {
            socket->deleteLater();
            continue;
        }
        connect(socket, &QAbstractSocket::disconnected, socket, &QObject::deleteLater);
        QTimer::singleShot(1000, socket, [socket] { socket->abort(); });
    }
    if (m_server) {
        m_server->close();
        delete m_server;
        m_server = nullptr;
    }
}

void ClientService::onNewConnection()
{
    while (QTcpSocket *socket = m_server->nextPendingConnection()) {
        if (m_connections.size() >= static_cast<std::size_t>(m_opts.maxConnections)) {
            ++m_stats.connectionsRefused;
            socket->abort();
            socket->deleteLater();
            continue;
        }
        ++m_stats.connectionsAccepted;
        if (m_metrics)
            m_metrics->setConnections("client", m_connections.size() + 1);
        socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
        auto c = std::make_shared<Connection>(socket, m_opts.maxFrameBytes);
        m_connections[socket] = c;
        connect(socket, &QTcpSocket::readyRead, this, [this, socket] { onReadable(socket); });
        // A client that reads again lets this one read its next requests.
        connect(socket, &QTcpSocket::bytesWritten, this, [this, socket] {
            if (const auto it = m_connections.find(socket); it != m_connections.end() && it->second->watchesPaused)
                it->second->pace(m_opts.maxQueuedBytes / 2);
            if (socket->bytesToWrite() < m_opts.maxQueuedBytes / 2 && socket->bytesAvailable() > 0)
                onReadable(socket);
        });
        connect(socket, &QTcpSocket::disconnected, this, [this, socket] {
            auto it = m_connections.find(socket);
            if (it == m_connections.end())
                return;
            it->second->closed = true;
            m_connections.erase(it);
            socket->deleteLater();
        });
    }
}

void ClientService::drop(QTcpSocket *socket, const QString &why)
{
    ++m_stats.connectionsClosedForErrors;
    int heldBack = 0;
    if (m_logBudget.take(&heldBack))
        qCWarning(lcClients).noquote() << QStringLiteral("closed the client connection from %1:%2: %3%4")
                                              .arg(socket->peerAddress().toString())
                                              .arg(socket->peerPort())
                                              .arg(why, heldBackNote(heldBack));
    auto it = m_connections.find(socket);
    if (it != m_connections.end()) {
        it->second->closed = true;
        m_connections.erase(it);
    }
    socket->disconnect(this);
    socket->abort();
    socket->deleteLater();
}

void ClientService::onReadable(QTcpSocket *socket)
{
    const auto found = m_connections.find(socket);
    if (found == m_connections.end())
        return;
    // Held here: a request that closes the connection (drop()) must not free it under this loop.
    const std::shared_ptr<Connection> keep = found->second;
    Connection &c = *keep;
    // Flow control: a client that does not read its answers is not read from either.
    if (socket->bytesToWrite() > m_opts.maxQueuedBytes)
        return;
    const QByteArray in = socket->read(1 << 20);
    c.reader.feed(in.constData(), static_cast<std::size_t>(in.size()));
    std::string payload;
    for (;;) {
        switch (c.reader.next(payload)) {
        case transport::FrameReader::Result::NeedMore:
            if (socket->bytesAvailable() > 0)
                QTimer::singleShot(0, this, [this, socket] { onReadable(socket); });
            return;
        case transport::FrameReader::Result::TooLarge:
            drop(socket, QStringLiteral("a frame over the %1-byte limit").arg(m_opts.maxFrameBytes));
            return;
        case transport::FrameReader::Result::Frame:
            handle(c, std::move(payload));
            if (c.closed)
                return;
            break;
        }
    }
}

void ClientService::handle(Connection &c, std::string &&payload)
{
    clientwire::Request req;
    std::string why;
    QTcpSocket *socket = c.socket;
    if (!clientwire::decodeRequest(payload, req, why)) {
        drop(socket, QString::fromStdString(why));
        return;
    }
    ++m_stats.requests;
    const std::shared_ptr<Connection> self = m_connections.at(socket);
    const std::uint64_t serial = ++c.serial;
    const auto answer = [self, serial](const clientwire::Response &r) {
        const auto it = self->inFlight.find(r.id);
        if (self->closed || !self->socket || it == self->inFlight.end() || it->second.serial != serial)
            return; // gone, or answered already (its deadline came first)
        if (it->second.hasDeadline)
            self->deadlines.erase(it->second.deadline);
        self->inFlight.erase(it);
        std::string frame;
        clientwire::appendResponse(frame, r);
        self->socket->write(frame.data(), static_cast<qint64>(frame.size()));
        // The last call in flight on the connection: its answer leaves now. Otherwise the event
        // loop's next pass writes it, with the other answers this pass finishes (one segment for
        // many answers to a client that pipelines).
        if (self->inFlight.empty())
            self->socket->flush();
    };
    const auto refuse = [&](DEngine::Status status, const QString &message) { writeRefusal(socket, req.id, status, message, false); };
    if (req.version != clientwire::ProtocolVersion) {
        refuse(DEngine::Status::InvalidArgument,
               QStringLiteral("client protocol version %1: this server speaks %2").arg(req.version).arg(clientwire::ProtocolVersion));
        return;
    }
    if (c.inFlight.count(req.id)) {
        refuse(DEngine::Status::InvalidArgument, QStringLiteral("request id %1 is already in flight on this connection").arg(req.id));
        return;
    }
    if (c.inFlight.size() >= static_cast<std::size_t>(m_opts.maxInFlight)) {
        refuse(DEngine::Status::Busy, QStringLiteral("%1 requests in flight on this connection, the limit").arg(c.inFlight.size()));
        return;
    }
    const auto consistency = static_cast<DEngine::Consistency>(req.consistency);
    if (req.kind == clientwire::Kind::Status) {
        clientwire::Response r;
        r.id = req.id;
        r.status = static_cast<std::uint32_t>(DEngine::Status::Ok);
        r.leader = m_engine->currentLeader();
        r.revision = m_engine->appliedIndex();
        r.hasNode = true;
        r.node = nodeStatus();
        c.inFlight.emplace(req.id, Connection::Pending{serial, {}, false});
        answer(r);
        return;
    }
    if (req.kind == clientwire::Kind::Subscribe) {
        if (c.subscription != 0) {
            refuse(DEngine::Status::InvalidArgument, QStringLiteral("this connection subscribed already (request %1)").arg(c.subscription));
            return;
        }
        c.subscription = req.id;
        c.heartbeatMs = std::clamp<qint64>(req.heartbeatMs == 0 ? 1000 : req.heartbeatMs, 50, m_opts.maxHeartbeatMs);
        // Transitions queued but not pushed yet are in the state this first push shows.
        c.seenEvents = m_events.size();
        push(c, {});
        if (!m_heartbeat->isActive())
            m_heartbeat->start();
        return;
    }
    if (req.kind == clientwire::Kind::Watch) {
        startWatch(c, req);
        return;
    }
    if (req.kind == clientwire::Kind::CancelWatch) {
        c.watches.erase(req.watchId); // deleting it cancels it: nothing more of it is pushed
        c.watchTold.erase(req.watchId);
        clientwire::Response r;
        r.id = req.id;
        r.leader = m_engine->currentLeader();
        c.inFlight.emplace(req.id, Connection::Pending{serial, {}, false});
        answer(r);
        return;
    }
    QFuture<DEngineResult> call;
    switch (req.kind) {
    case clientwire::Kind::Put: call = m_engine->put(bytes(req.key), bytes(req.value)); break;
    case clientwire::Kind::Get: call = m_engine->get(bytes(req.key), consistency); break;
    case clientwire::Kind::Delete: call = m_engine->remove(bytes(req.key)); break;
    case clientwire::Kind::Batch: call = m_engine->batch(operations(req.operations)); break;
    case clientwire::Kind::Txn: {
        QList<DEngineCompare> compares;
        compares.reserve(static_cast<qsizetype>(req.compares.size()));
        for (const clientwire::Compare &cmp : req.compares) // target and op checked by the codec
            compares << DEngineCompare{static_cast<DEngineCompare::Target>(cmp.target), static_cast<DEngineCompare::Op>(cmp.op), bytes(cmp.key),
                                       bytes(cmp.value), cmp.number};
        call = m_engine->txn(compares, operations(req.operations), operations(req.failureOperations));
        break;
    }
    case clientwire::Kind::Scan: call = m_engine->scan(bytes(req.key), static_cast<int>(std::min<std::uint32_t>(req.limit, INT32_MAX)), consistency); break;
    case clientwire::Kind::Range:
        call = m_engine->range(bytes(req.key), bytes(req.end), static_cast<int>(std::min<std::uint32_t>(req.limit, INT32_MAX)), consistency);
        break;
    case clientwire::Kind::AddLearner: call = m_engine->addLearner(req.node, QString::fromStdString(req.address)); break;
    case clientwire::Kind::Promote: call = m_engine->promote(req.node); break;
    case clientwire::Kind::RemoveMember: call = m_engine->removeMember(req.node); break;
    case clientwire::Kind::TransferLeadership: call = m_engine->transferLeadership(req.node); break;
    case clientwire::Kind::LeaseGrant: call = m_engine->grantLease(static_cast<qint64>(std::min<std::uint64_t>(req.ttlMs, INT64_MAX))); break;
    case clientwire::Kind::LeaseKeepAlive: call = m_engine->keepAliveLease(req.lease); break;
    case clientwire::Kind::LeaseRevoke: call = m_engine->revokeLease(req.lease); break;
    case clientwire::Kind::LeaseTimeToLive: call = m_engine->leaseTimeToLive(req.lease); break;
    case clientwire::Kind::Status:
    case clientwire::Kind::Subscribe:
    case clientwire::Kind::Watch:
    case clientwire::Kind::CancelWatch: break;
    }
    Connection::Pending &pending = c.inFlight[req.id];
    pending.serial = serial;
    if (req.deadlineMs > 0) {
        // The client's patience is shorter than the engine's: it hears Timeout then (the call goes
        // on, and may still take effect, as Timeout says). One sweep for all (sweepDeadlines), not
        // a timer per call.
        pending.deadline = c.deadlines.emplace(m_clock.elapsed() + static_cast<qint64>(req.deadlineMs), req.id);
        pending.hasDeadline = true;
    }
    const std::uint64_t id = req.id;
    // No context object: DEngine finishes its futures on its owner thread (this one) anyway, and a
    // context destroyed before the call finishes (this service closed) would trip Qt's checks.
    // `answer` holds the connection, never the service.
    const auto start = std::chrono::steady_clock::now();
    const char *name = clientwire::kindName(req.kind);
    QPointer<ClientService> service(this);
    call.then([answer, id, service, start, name](const DEngineResult &r) {
        if (service && service->m_metrics)
            service->m_metrics->record(name, "client", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                                    r.ok() || r.status == DEngine::Status::NotFound);
        answer(toResponse(id, r));
    });
}

void ClientService::writeRefusal(QTcpSocket *socket, std::uint64_t id, DEngine::Status status, const QString &message, bool watchDone) const
{
    clientwire::Response r;
    r.id = id;
    r.status = static_cast<std::uint32_t>(status);
    r.message = toStd(message);
    r.leader = m_engine->currentLeader();
    r.watchDone = watchDone;
    std::string frame;
    clientwire::appendResponse(frame, r);
    socket->write(frame.data(), static_cast<qint64>(frame.size()));
}

void ClientService::startWatch(Connection &c, const clientwire::Request &req)
{
    const std::shared_ptr<Connection> self = m_connections.at(c.socket);
    const auto refuse = [&](DEngine::Status status, const QString &message) { writeRefusal(c.socket, req.id, status, message, true); };
    if (c.watches.count(req.id)) {
        refuse(DEngine::Status::InvalidArgument, QStringLiteral("watch id %1 is already watching on this connection").arg(req.id));
        return;
    }
    if (c.watches.size() >= static_cast<std::size_t>(m_opts.maxWatches)) {
        refuse(DEngine::Status::Busy, QStringLiteral("%1 watches on this connection, the limit").arg(c.watches.size()));
        return;
    }
    DEngineWatcher *w = m_engine->watch(bytes(req.key), bytes(req.end), req.revision);
    c.watches[req.id].reset(w);
    c.watchTold[req.id] = w->revision();
    if (c.watchesPaused)
        w->setPaused(true);
    const std::uint64_t id = req.id;
    const std::weak_ptr<Connection> weak = self;
    const qint64 high = m_opts.maxQueuedBytes / 2;
    const auto send = [weak, id, high](clientwire::Response &&r) {
        const std::shared_ptr<Connection> conn = weak.lock();
        if (!conn || conn->closed || !conn->socket)
            return;
        std::string frame;
        clientwire::appendResponse(frame, r);
        conn->socket->write(frame.data(), static_cast<qint64>(frame.size()));
        conn->watchTold[id] = r.revision;
        conn->pace(high);
    };
    DEngine *engine = m_engine;
    connect(w, &DEngineWatcher::eventsReceived, this, [w, id, send, engine](const QList<DEngineWatchEvent> &events) {
        clientwire::Response r;
        r.id = id;
        r.revision = w->revision();
        r.leader = engine->currentLeader();
        r.watchEvents.reserve(static_cast<std::size_t>(events.size()));
        for (const DEngineWatchEvent &e : events)
            r.watchEvents.push_back(clientwire::WatchEvent{e.type == DEngineWatchEvent::Type::Delete, toStd(e.key), toStd(e.value), e.revision,
                                                           e.createRevision, e.version, e.lease});
        send(std::move(r));
    });
    connect(w, &DEngineWatcher::progressed, this, [weak, id, send](quint64 revision) {
        const std::shared_ptr<Connection> conn = weak.lock();
        if (!conn || conn->watchTold[id] >= revision)
            return; // its events said it already
        clientwire::Response r;
        r.id = id;
        r.revision = revision;
        send(std::move(r));
    });
    connect(w, &DEngineWatcher::finished, this, [weak, id, send](DEngine::Status status, const QString &message) {
        clientwire::Response r;
        r.id = id;
        r.status = static_cast<std::uint32_t>(status);
        r.message = toStd(message);
        r.watchDone = true;
        if (const std::shared_ptr<Connection> conn = weak.lock()) {
            r.revision = conn->watchTold[id];
            send(std::move(r));
            // Not deleted here, inside its own signal: on the next turn.
            if (auto it = conn->watches.find(id); it != conn->watches.end()) {
                it->second.release()->deleteLater();
                conn->watches.erase(it);
                conn->watchTold.erase(id);
            }
        }
    });
}

void ClientService::sweepDeadlines()
{
    const qint64 now = m_clock.elapsed();
    std::vector<std::shared_ptr<Connection>> all;
    all.reserve(m_connections.size());
    for (const auto &[socket, c] : m_connections)
        all.push_back(c);
    for (const std::shared_ptr<Connection> &c : all) {
        while (!c->closed && c->socket && !c->deadlines.empty() && c->deadlines.begin()->first <= now) {
            const std::uint64_t id = c->deadlines.begin()->second;
            c->deadlines.erase(c->deadlines.begin());
            const auto it = c->inFlight.find(id);
            if (it == c->inFlight.end())
                continue;
            c->inFlight.erase(it); // its call's answer, if it comes, is dropped (serial gone)
            clientwire::Response r;
            r.id = id;
            r.status = static_cast<std::uint32_t>(DEngine::Status::Timeout);
            r.message = "no answer within the request's deadline: a write may or may not take effect";
            r.leader = m_engine->currentLeader();
            std::string frame;
            clientwire::appendResponse(frame, r);
            c->socket->write(frame.data(), static_cast<qint64>(frame.size()));
        }
    }
}

} // namespace dengine::server
