// SPDX-License-Identifier: Apache-2.0
// DEngineClient: the client protocol (client/clientcodec.h) to one member at a time, subscribed to
// its lifecycle, with failover and leader following. See dengine/dengineclient.h for the contract.
#include <dengine/dengineclient.h>

#include "client/clientcodec.h"
#include "engine/hostport.h"
#include "engine/tlsidentity.h"
#include "engine/watcher_p.h"

#include <QtCore/QElapsedTimer>
#include <QtCore/QLoggingCategory>
#include <QtCore/QPointer>
#include <QtCore/QScopeGuard>
#include <QtCore/QPromise>
#include <QtCore/QTimer>
#include <QtNetwork/QSslSocket>

#include <algorithm>
#include <map>

Q_LOGGING_CATEGORY(lcClient, "dengine.client")

using namespace dengine;
using Status = DEngineInterface::Status;

namespace {

QByteArray bytes(const std::string &s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); }
std::string toStd(const QByteArray &b) { return std::string(b.constData(), static_cast<std::size_t>(b.size())); }

// Calls that may be sent again after the connection that carried them broke: reads, and the
// membership calls (each is a goal, fulfilled once).
bool repeatable(clientwire::Kind k) { return !clientwire::isWrite(k); }

// A batch's or a txn branch's operations as the wire has them; false when a key is empty.
bool toWire(const QList<DEngineOperation> &ops, std::vector<clientwire::Operation> &into)
{
    into.reserve(static_cast<std::size_t>(ops.size()));
    for (const DEngineOperation &op : ops) {
        if (op.key.isEmpty())
            return false;
        const bool remove = op.kind == DEngineOperation::Kind::Remove;
        into.push_back(clientwire::Operation{remove, toStd(op.key), toStd(op.value), remove ? 0 : op.lease, !remove && op.sequential});
    }
    return true;
}

constexpr int TickMs = 50;
// A sent call's own deadline goes to the member a little shorter than the client's, so the
// member's Timeout (with its leader hint) usually arrives first.
constexpr int ServerMarginMs = 100;

} // namespace

QString DEngineClientConfig::validate() const
{
    if (endpoints.isEmpty())
        return QStringLiteral("endpoints: at least one member's client address (host:port) is needed");
    for (const QString &e : endpoints)
        if (!engine::parseHostPort(e, nullptr, nullptr))
            return QStringLiteral("endpoints: \"%1\" is not host:port (port 1..65535)").arg(e);
    if (clusterId == 0)
        return QStringLiteral("clusterId: must not be 0");
    if (!insecure && (tlsCaFile.isEmpty() || tlsCertificateFile.isEmpty() || tlsKeyFile.isEmpty()))
        return QStringLiteral("tlsCaFile, tlsCertificateFile, tlsKeyFile: all three are required unless insecure is set");
    if (requestTimeoutMs < 1)
        return QStringLiteral("requestTimeoutMs: must be positive");
    if (connectTimeoutMs < 1)
        return QStringLiteral("connectTimeoutMs: must be positive");
    if (heartbeatMs < 50 || heartbeatMs > 5000)
        return QStringLiteral("heartbeatMs: must be within 50..5000");
    if (maxPendingRequests < 1)
        return QStringLiteral("maxPendingRequests: must be positive");
    return {};
}

class DEngineClientPrivate {
public:
    DEngineClientPrivate(DEngineClient *q, const DEngineClientConfig &config) : q(q), config(config) {}

    using State = DEngineInterface::State;
    using Role = DEngineInterface::Role;

    struct Call {
        clientwire::Request request;
        std::shared_ptr<QPromise<DEngineResult>> promise;
        QDeadlineTimer deadline;
        quint64 link = 0; // the link it was sent on (0: not sent)
    };
    // One connection to a member.
    struct Link {
        quint64 serial = 0;
        QString endpoint;
        QSslSocket *socket = nullptr;
        transport::FrameReader reader{64u << 20};
        quint64 subscription = 0;
        bool live = false; // the member's first push came
        bool probe = false; // only asks the member who it is (STATUS), then closes
        QString tlsWhy;     // what the handshake found wrong (besides the name)
        NodeId member = 0;
        quint64 memberTerm = 0;
        QElapsedTimer heard; // since the last frame
        QElapsedTimer opened;
        Link() = default;
        Link(const Link &) = delete;
        Link &operator=(const Link &) = delete;
        ~Link()
        {
            // Possibly from one of the socket's own signals: it goes on the next turn.
            if (socket) {
                socket->disconnect();
                socket->abort();
                socket->deleteLater();
            }
        }
    };

    DEngineClient *q;
    DEngineClientConfig config;
    std::shared_ptr<const engine::TlsIdentity> tls;
    State state = State::Idle;
    DEngineInterface::Error error = DEngineInterface::Error::NoError;
    QString errorString;

    NodeId leader = 0;
    quint64 term = 0;
    bool ready = false;
    quint64 firstCommitTerm = 0; // the term whose firstCommit was announced
    Role role = Role::Stopped;
    NodeId member = 0;
    quint64 commit = 0;
    quint64 applied = 0;
    QString lastEndpoint; // announced by connectedEndpointChanged
    QList<NodeId> voters;
    QList<NodeId> learners;
    QMap<NodeId, QString> addresses;

    QStringList endpoints;                 // configured, then learned
    QMap<NodeId, QString> clientAddresses; // where the client reached (or will try) each member
    QMap<NodeId, QString> memberClientAddresses; // the replicated book, as the member pushed it
    QMap<QString, qint64> shunned;         // endpoint -> until (ms on `clock`): it failed lately
    QElapsedTimer clock;
    int nextEndpoint = 0;
    int failuresThisRound = 0;
    QStringList roundErrors;
    bool reportedUnreachable = false;
    qint64 retryAt = 0; // no connection attempt before (after a round that failed)

    std::unique_ptr<Link> link;     // the member the client talks to
    std::unique_ptr<Link> incoming; // the leader's, being opened (the client moves once it is live)
    std::vector<std::unique_ptr<Link>> retired; // left for the leader's, until their writes are answered
    std::vector<std::unique_ptr<Link>> probes;  // asking endpoints which member they are
    qint64 probedAt = -1;                        // the last round of probes (ms on `clock`)
    quint64 linkSerial = 0;
    std::map<quint64, Call> calls; // by id: in the order made, which is their deadlines' order
    quint64 nextId = 0;
    // While answers are being read: calls their continuations make are written, and leave together
    // once the answers read are done (one segment for many requests, not one each).
    int readingAnswers = 0;
    // Watches, by the id of their WATCH request (the same on every link they are sent on).
    struct Watch {
        QPointer<DEngineWatcher> watcher;
        quint64 link = 0; // the link it was sent on (0: to send on the next)
    };
    std::map<quint64, Watch> watches;
    void sendWatch(quint64 id, Watch &w);
    // The watches sent on `l` go again on the next link (from where each got to).
    void orphanWatches(const Link &l);
    void onWatchPush(Link *l, const clientwire::Response &r);
    void cancelWatch(quint64 id);
    // Tells the member on `l` to stop watch `id` (nothing of it is read from `l` after this).
    void sendCancelWatch(Link &l, quint64 id);
    void finishWatches(Status status, const QString &why);
    // keepAliveLease, revokeLease, leaseTimeToLive: one request naming the lease.
    QFuture<DEngineResult> leaseCall(clientwire::Kind kind, quint64 lease);
    QTimer *ticker = nullptr;

    template <typename T, typename Signal> void update(T &field, T value, Signal signal)
    {
        if (field == value)
            return;
        field = value;
        Q_EMIT(q->*signal)(value);
    }
    void reportError(DEngineInterface::Error e, const QString &message);
    void setStateStopped();
    void setMember(NodeId id);

    // Connections
    void openNext();
    std::unique_ptr<Link> open(const QString &endpoint, bool probe = false);
    void onConnected(Link *l);
    void onReadable(Link *l);
    void lose(Link *l, const QString &why);
    // The calls sent on a lost link: repeatable ones wait for the next member, writes finish with
    // Timeout. False when a continuation stopped the client.
    bool orphanCalls(const Link &l, const QString &why);
    Link *find(quint64 serial);
    void promoteIncoming();
    void maybeFollowLeader();
    // Asks every endpoint whose member is not known yet which member it is (at most every few
    // seconds), so the client can find the leader's client port.
    void probeEndpoints();
    bool handshakeOk(QSslSocket *socket, QString *why) const;

    // Lifecycle from the member's pushes
    void applyPush(Link &l, const clientwire::Response &push);
    void becomeReady();
    void announceFirstCommit(quint64 index);

    // Calls
    QFuture<DEngineResult> call(clientwire::Request request);
    QFuture<DEngineResult> refuse(Status status, const QString &message) const;
    void send(Call &c);
    void sendWaiting();
    void finish(quint64 id, DEngineResult result);
    void tick();
    void failCalls(Status unsentStatus, const QString &why);
};

// ---- lifecycle ----------------------------------------------------------------------------------

DEngineClient::DEngineClient(const DEngineClientConfig &config, QObject *parent)
    : DEngineInterface(parent), d(std::make_unique<DEngineClientPrivate>(this, config))
{
    d->ticker = new QTimer(this);
    d->ticker->setInterval(TickMs);
    DEngineClientPrivate *p = d.get();
    connect(d->ticker, &QTimer::timeout, this, [p] { p->tick(); });
}

DEngineClient::~DEngineClient()
{
    if (d->state == State::Running)
        stop();
    if (d->state == State::Stopping) {
        d->setStateStopped();
    }
}

void DEngineClientPrivate::reportError(DEngineInterface::Error e, const QString &message)
{
    error = e;
    errorString = message;
    qCWarning(lcClient).noquote() << message;
    Q_EMIT q->errorOccurred(e, message);
}

bool DEngineClient::start()
{
    if (d->state == State::Running || d->state == State::Stopping) {
        qCWarning(lcClient) << "start(): the client is running or stopping";
        return false;
    }
    d->error = Error::NoError;
    d->errorString.clear();
    if (const QString why = d->config.validate(); !why.isEmpty()) {
        d->reportError(Error::ConfigurationError, why);
        return false;
    }
    if (!d->config.insecure) {
        QString why;
        d->tls = engine::TlsIdentity::loadClient(d->config.tlsCaFile, d->config.tlsCertificateFile, d->config.tlsKeyFile, d->config.clusterId, &why);
        if (!d->tls) {
            d->reportError(Error::CertificateError, why);
            return false;
        }
    }
    d->endpoints = d->config.endpoints;
    d->clientAddresses.clear();
    d->memberClientAddresses.clear();
    d->shunned.clear();
    d->nextEndpoint = 0;
    d->failuresThisRound = 0;
    d->roundErrors.clear();
    d->reportedUnreachable = false;
    d->retryAt = 0;
    d->probedAt = -1;
    d->ready = false;
    d->firstCommitTerm = 0;
    d->clock.start();
    d->state = State::Running;
    Q_EMIT stateChanged(State::Running);
    d->ticker->start();
    d->openNext();
    return true;
}

void DEngineClient::stop()
{
    if (d->state != State::Running)
        return;
    d->state = State::Stopping;
    Q_EMIT stateChanged(State::Stopping);
    d->update(d->ready, false, &DEngineInterface::readyChanged);
    Q_EMIT stopping();
    d->ticker->stop();
    d->failCalls(Status::Stopping, QStringLiteral("the client is stopping"));
    d->finishWatches(Status::Stopping, QStringLiteral("the client is stopping"));
    d->incoming.reset();
    d->link.reset();
    d->retired.clear();
    d->probes.clear();
    // stopped() on the next turn, as an engine's comes after its worker finished.
    QPointer<DEngineClient> self(this);
    QTimer::singleShot(0, this, [self] {
        if (self && self->d->state == State::Stopping)
            self->d->setStateStopped();
    });
}

void DEngineClientPrivate::setStateStopped()
{
    update(leader, NodeId(0), &DEngineInterface::leaderChanged);
    update(role, Role::Stopped, &DEngineInterface::roleChanged);
    setMember(0);
    state = State::Stopped;
    Q_EMIT q->stateChanged(State::Stopped);
    Q_EMIT q->stopped();
}

void DEngineClientPrivate::setMember(NodeId id)
{
    const QString endpoint = q->connectedEndpoint();
    if (member == id && endpoint == lastEndpoint)
        return;
    const bool changed = member != id;
    member = id;
    lastEndpoint = endpoint;
    if (changed)
        Q_EMIT q->nodeIdChanged(id);
    Q_EMIT q->connectedEndpointChanged(endpoint);
}

// ---- connections --------------------------------------------------------------------------------

std::unique_ptr<DEngineClientPrivate::Link> DEngineClientPrivate::open(const QString &endpoint, bool probe)
{
    auto l = std::make_unique<Link>();
    l->probe = probe;
    l->serial = ++linkSerial;
    l->endpoint = endpoint;
    l->socket = new QSslSocket(q);
    l->opened.start();
    l->heard.start();
    Link *raw = l.get();
    QSslSocket *socket = l->socket;
    QString host;
    quint16 port = 0;
    engine::parseHostPort(endpoint, &host, &port);
    QObject::connect(socket, &QAbstractSocket::readyRead, q, [this, raw] { onReadable(raw); });
    QObject::connect(socket, &QAbstractSocket::disconnected, q, [this, raw] { lose(raw, QStringLiteral("the member closed the connection")); });
    QObject::connect(socket, &QAbstractSocket::errorOccurred, q, [this, raw, socket](QAbstractSocket::SocketError) {
        lose(raw, raw->tlsWhy.isEmpty() ? socket->errorString() : QStringLiteral("TLS: %1").arg(raw->tlsWhy));
    });
    if (tls) {
        socket->setSslConfiguration(tls->configuration());
        // The member's certificate must be the cluster authority's and name a member of this
        // cluster (handshakeOk); the address the client dialled is not in it.
        engine::TlsIdentity::acceptAnyMemberName(socket);
        QObject::connect(socket, &QSslSocket::sslErrors, q, [raw](const QList<QSslError> &errors) {
            QStringList why;
            for (const QSslError &e : errors)
                if (e.error() != QSslError::HostNameMismatch)
                    why << e.errorString();
            raw->tlsWhy = why.join(QStringLiteral("; "));
        });
        QObject::connect(socket, &QSslSocket::encrypted, q, [this, raw] { onConnected(raw); });
        socket->connectToHostEncrypted(host, port);
    } else {
        QObject::connect(socket, &QAbstractSocket::connected, q, [this, raw] { onConnected(raw); });
        socket->connectToHost(host, port);
    }
    return l;
}

bool DEngineClientPrivate::handshakeOk(QSslSocket *socket, QString *why) const
{
    if (!tls)
        return true;
    const quint64 node = engine::TlsIdentity::memberOf(socket->peerCertificate(), config.clusterId);
    if (node == 0) {
        *why = QStringLiteral("its certificate (%1) names no member of cluster %2")
                   .arg(socket->peerCertificate().subjectInfo(QSslCertificate::CommonName).join(QLatin1Char(',')))
                   .arg(config.clusterId);
        return false;
    }
    return true;
}

void DEngineClientPrivate::onConnected(Link *l)
{
    QString why;
    if (!handshakeOk(l->socket, &why)) {
        reportError(DEngineInterface::Error::ConnectionError, QStringLiteral("member at %1 refused: %2").arg(l->endpoint, why));
        lose(l, why);
        return;
    }
    l->socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    clientwire::Request sub;
    sub.id = ++nextId;
    sub.kind = l->probe ? clientwire::Kind::Status : clientwire::Kind::Subscribe;
    sub.heartbeatMs = static_cast<std::uint32_t>(config.heartbeatMs);
    l->subscription = sub.id;
    std::string frame;
    clientwire::appendRequest(frame, sub);
    l->socket->write(frame.data(), static_cast<qint64>(frame.size()));
    l->heard.restart();
}

void DEngineClientPrivate::openNext()
{
    if (state != State::Running || link)
        return;
    const qint64 now = clock.elapsed();
    if (now < retryAt)
        return; // the ticker comes back
    // The leader's client port when known, else the endpoints in turn (skipping the ones that
    // failed lately, unless all did).
    QString endpoint;
    if (config.followLeader && leader != 0 && clientAddresses.contains(leader) && shunned.value(clientAddresses.value(leader)) <= now)
        endpoint = clientAddresses.value(leader);
    for (int i = 0; endpoint.isEmpty() && i < endpoints.size(); ++i) {
        const QString &e = endpoints.at((nextEndpoint + i) % endpoints.size());
        if (shunned.value(e) <= now) {
            endpoint = e;
            nextEndpoint = (nextEndpoint + i + 1) % static_cast<int>(endpoints.size());
        }
    }
    if (endpoint.isEmpty()) {
        endpoint = endpoints.at(nextEndpoint % endpoints.size());
        nextEndpoint = (nextEndpoint + 1) % static_cast<int>(endpoints.size());
    }
    qCDebug(lcClient).noquote() << "connecting to" << endpoint;
    link = open(endpoint);
}

DEngineClientPrivate::Link *DEngineClientPrivate::find(quint64 serial)
{
    if (link && link->serial == serial)
        return link.get();
    if (incoming && incoming->serial == serial)
        return incoming.get();
    for (const auto &r : retired)
        if (r->serial == serial)
            return r.get();
    for (const auto &r : probes)
        if (r->serial == serial)
            return r.get();
    return nullptr;
}

bool DEngineClientPrivate::orphanCalls(const Link &l, const QString &why)
{
    orphanWatches(l);
    for (auto it = calls.begin(); it != calls.end();) {
        Call &c = it->second;
        if (c.link != l.serial) {
            ++it;
            continue;
        }
        if (repeatable(c.request.kind)) {
            c.link = 0;
            ++it;
            continue;
        }
        DEngineResult r;
        r.status = Status::Timeout;
        r.leaderHint = leader;
        r.message = QStringLiteral("the connection to member %1 (%2) broke before its answer (%3): the write may or may not have been applied")
                        .arg(l.member)
                        .arg(l.endpoint, why);
        const quint64 id = it->first;
        ++it;
        finish(id, std::move(r));
        if (state != State::Running)
            return false;
    }
    return true;
}

void DEngineClientPrivate::lose(Link *l, const QString &why)
{
    if (incoming && l == incoming.get()) {
        // The leader's port did not work out: stay where the client is.
        shunned[l->endpoint] = clock.elapsed() + 5000;
        qCInfo(lcClient).noquote() << QStringLiteral("could not move to the leader at %1: %2").arg(l->endpoint, why);
        incoming.reset();
        return;
    }
    for (auto it = probes.begin(); it != probes.end(); ++it) {
        if (it->get() == l) {
            probes.erase(it);
            return;
        }
    }
    for (auto it = retired.begin(); it != retired.end(); ++it) {
        if (it->get() != l)
            continue;
        std::unique_ptr<Link> gone = std::move(*it);
        retired.erase(it);
        if (orphanCalls(*gone, why))
            sendWaiting();
        return;
    }
    if (!link || l != link.get())
        return;
    std::unique_ptr<Link> gone = std::move(link);
    shunned[gone->endpoint] = clock.elapsed() + 2 * config.heartbeatMs + 1000;
    if (gone->live) {
        qCInfo(lcClient).noquote() << QStringLiteral("lost member %1 at %2: %3").arg(gone->member).arg(gone->endpoint, why);
        failuresThisRound = 0;
        roundErrors.clear();
    } else {
        ++failuresThisRound;
        roundErrors << QStringLiteral("%1: %2").arg(gone->endpoint, why);
    }
    if (!orphanCalls(*gone, why))
        return;
    gone.reset();
    if (failuresThisRound >= std::max<int>(1, static_cast<int>(endpoints.size()))) {
        // A whole round failed: say so once, wait a little, and go on trying.
        if (!reportedUnreachable) {
            reportedUnreachable = true;
            reportError(DEngineInterface::Error::ConnectionError, QStringLiteral("no member could be reached: %1").arg(roundErrors.join(QStringLiteral("; "))));
        }
        update(leader, NodeId(0), &DEngineInterface::leaderChanged);
        update(role, Role::Stopped, &DEngineInterface::roleChanged);
        setMember(0);
        failuresThisRound = 0;
        roundErrors.clear();
        retryAt = clock.elapsed() + std::min(2000, config.heartbeatMs * 2);
        return;
    }
    openNext();
}

void DEngineClientPrivate::onReadable(Link *l)
{
    QPointer<DEngineClient> alive(q);
    ++readingAnswers;
    const auto flushAfter = qScopeGuard([this, &alive] {
        if (!alive)
            return; // a continuation destroyed the client
        if (--readingAnswers == 0 && link && link->socket)
            link->socket->flush();
    });
    const quint64 serial = l->serial;
    const auto still = [&] { return alive && find(serial) == l; };
    const QByteArray in = l->socket->readAll();
    l->reader.feed(in.constData(), static_cast<std::size_t>(in.size()));
    l->heard.restart();
    std::string payload;
    for (;;) {
        switch (l->reader.next(payload)) {
        case transport::FrameReader::Result::NeedMore: return;
        case transport::FrameReader::Result::TooLarge:
            lose(l, QStringLiteral("the member sent a frame over the client's limit"));
            return;
        case transport::FrameReader::Result::Frame: break;
        }
        clientwire::Response r;
        std::string why;
        if (!clientwire::decodeResponse(payload, r, why)) {
            lose(l, QStringLiteral("the member sent an answer that does not parse: %1").arg(QString::fromStdString(why)));
            return;
        }
        if (l->probe) {
            if (r.id == l->subscription && r.hasNode) {
                clientAddresses[r.node.nodeId] = l->endpoint; // it answered there
                std::erase_if(probes, [l](const std::unique_ptr<Link> &p) { return p.get() == l; });
                maybeFollowLeader();
            }
            return;
        }
        if (r.id == l->subscription) {
            if (l != link.get() && l != incoming.get())
                continue; // a retired link's pushes: the client listens to another member
            if (r.status != static_cast<std::uint32_t>(Status::Ok) || !r.hasNode) {
                lose(l, QStringLiteral("the member refused the subscription: %1").arg(QString::fromStdString(r.message)));
                return;
            }
            applyPush(*l, r);
        } else if (watches.count(r.id)) {
            onWatchPush(l, r);
        } else {
            const auto it = calls.find(r.id);
            if (it == calls.end() || it->second.link != serial)
                continue; // finished already (its deadline came first)
            DEngineResult result;
            result.status = static_cast<Status>(r.status);
            result.message = QString::fromUtf8(r.message.data(), static_cast<qsizetype>(r.message.size()));
            result.revision = r.revision;
            result.leaderHint = r.leader;
            result.value = bytes(r.value);
            result.createRevision = r.createRevision;
            result.modRevision = r.modRevision;
            result.version = r.version;
            result.succeeded = r.succeeded;
            result.lease = r.lease;
            result.ttlMs = static_cast<qint64>(r.ttlMs);
            result.remainingMs = r.remainingMs;
            result.items.reserve(static_cast<qsizetype>(r.items.size()));
            for (const clientwire::KeyValue &kv : r.items)
                result.items.append(DEngineKeyValue{bytes(kv.key), bytes(kv.value), kv.createRevision, kv.modRevision, kv.version});
            result.nextKey = bytes(r.nextKey);
            finish(r.id, std::move(result));
        }
        if (!still())
            return; // a continuation stopped the client, or the push moved it
    }
}

void DEngineClientPrivate::applyPush(Link &l, const clientwire::Response &push)
{
    const clientwire::NodeStatus &n = push.node;
    const bool first = !l.live;
    l.live = true;
    l.member = n.nodeId;
    if (!n.clientAddress.empty()) {
        const QString address = QString::fromStdString(n.clientAddress);
        clientAddresses[n.nodeId] = address;
        if (!endpoints.contains(address))
            endpoints << address;
    }
    if (incoming && &l == incoming.get())
        promoteIncoming(); // the leader's is live: it is the client's member from here
    if (first) {
        qCInfo(lcClient).noquote() << QStringLiteral("talking to member %1 at %2").arg(n.nodeId).arg(l.endpoint);
        reportedUnreachable = false;
        failuresThisRound = 0;
        roundErrors.clear();
        l.memberTerm = n.term;
        setMember(n.nodeId);
    }
    // The indexes first (they only grow): an index a firstCommit below announces is applied.
    if (n.term >= term || first) {
        update(commit, quint64(n.commit), &DEngineInterface::commitIndexChanged);
        update(applied, quint64(n.applied), &DEngineInterface::appliedIndexChanged);
    }
    // The transitions since the last push, in order. A member that knows an older term than the
    // client (it was cut off) is not heard on the leader until it catches up.
    using K = clientwire::Event::Kind;
    for (const clientwire::Event &e : push.events) {
        switch (e.kind) {
        case K::Term:
            l.memberTerm = e.value;
            if (e.value > term)
                update(term, quint64(e.value), &DEngineInterface::termChanged);
            break;
        case K::Leader:
            if (l.memberTerm >= term)
                update(leader, NodeId(e.value), &DEngineInterface::leaderChanged);
            break;
        case K::Ready:
            if (l.memberTerm >= term && leader != 0)
                becomeReady();
            break;
        case K::FirstCommit:
            if (l.memberTerm >= term)
                announceFirstCommit(e.value);
            break;
        case K::Role: update(role, static_cast<Role>(e.value), &DEngineInterface::roleChanged); break;
        case K::Members:
        case K::Stopping: break; // below, from the state
        }
        if (state != State::Running || link.get() != &l)
            return;
    }
    // The member's state after them: on a first push the client catches up with its view.
    l.memberTerm = n.term;
    if (n.term > term)
        update(term, quint64(n.term), &DEngineInterface::termChanged);
    if (n.term >= term) {
        update(leader, NodeId(n.leader), &DEngineInterface::leaderChanged);
        if (n.ready && leader != 0)
            becomeReady();
        if (n.firstCommit != 0)
            announceFirstCommit(n.firstCommit);
    }
    if (state != State::Running || link.get() != &l)
        return;
    update(role, static_cast<Role>(n.role), &DEngineInterface::roleChanged);
    QList<NodeId> v, ls;
    QMap<NodeId, QString> a, ca;
    for (const clientwire::Member &m : n.members) {
        (m.learner ? ls : v) << m.id;
        a.insert(m.id, QString::fromStdString(m.address));
        if (m.clientAddress.empty())
            continue;
        // The replicated book: every member's client port, from any member (endpoint sync).
        const QString address = QString::fromStdString(m.clientAddress);
        ca.insert(m.id, address);
        if (!clientAddresses.contains(m.id))
            clientAddresses.insert(m.id, address);
        if (!endpoints.contains(address))
            endpoints << address;
    }
    std::sort(v.begin(), v.end());
    std::sort(ls.begin(), ls.end());
    if (v != voters || ls != learners || a != addresses || ca != memberClientAddresses) {
        voters = v;
        learners = ls;
        addresses = a;
        memberClientAddresses = ca;
        Q_EMIT q->membersChanged();
    }
    if (state != State::Running || link.get() != &l)
        return;
    if (n.stopping) {
        lose(&l, QStringLiteral("the member is stopping"));
        return;
    }
    if (first)
        sendWaiting();
    maybeFollowLeader();
}

void DEngineClientPrivate::becomeReady()
{
    if (ready || state != State::Running)
        return;
    update(ready, true, &DEngineInterface::readyChanged);
    Q_EMIT q->ready();
}

void DEngineClientPrivate::announceFirstCommit(quint64 index)
{
    // Once per term, after ready() (the contract's order).
    if (firstCommitTerm >= term || leader == 0 || state != State::Running)
        return;
    becomeReady();
    firstCommitTerm = term;
    Q_EMIT q->firstCommit(index);
}

void DEngineClientPrivate::probeEndpoints()
{
    const qint64 now = clock.elapsed();
    if (!probes.empty() || (probedAt >= 0 && now - probedAt < 5000))
        return;
    probedAt = now;
    const QList<QString> known = clientAddresses.values();
    for (const QString &e : std::as_const(endpoints)) {
        if (known.contains(e) || (link && link->endpoint == e))
            continue;
        std::unique_ptr<Link> p = open(e, true);
        probes.push_back(std::move(p));
    }
}

void DEngineClientPrivate::maybeFollowLeader()
{
    if (!config.followLeader || !link || !link->live || incoming || leader == 0 || link->member == leader)
        return;
    const QString address = clientAddresses.value(leader);
    if (address.isEmpty()) {
        probeEndpoints();
        return;
    }
    if (address.isEmpty() || address == link->endpoint || shunned.value(address) > clock.elapsed())
        return;
    qCDebug(lcClient).noquote() << "moving to the leader" << leader << "at" << address;
    incoming = open(address);
}

void DEngineClientPrivate::promoteIncoming()
{
    // New calls go to the leader from here. Repeatable calls sent on the old link go again; its
    // writes' answers would be lost with it, so it stays open (not listened to) until they are in.
    std::unique_ptr<Link> old = std::move(link);
    link = std::move(incoming);
    if (!old)
        return;
    for (auto &[id, w] : watches) {
        if (w.link != old->serial)
            continue;
        sendCancelWatch(*old, id);
        w.link = 0; // sent again on the leader's link once it is live (sendWaiting)
    }
    bool writesInFlight = false;
    for (auto &[id, c] : calls) {
        if (c.link != old->serial)
            continue;
        if (repeatable(c.request.kind))
            c.link = 0;
        else
            writesInFlight = true;
    }
    if (writesInFlight)
        retired.push_back(std::move(old));
}

// ---- calls --------------------------------------------------------------------------------------

QFuture<DEngineResult> DEngineClientPrivate::refuse(Status status, const QString &message) const
{
    DEngineResult r;
    r.status = status;
    r.message = message;
    r.leaderHint = leader;
    QPromise<DEngineResult> promise;
    promise.start();
    promise.addResult(r);
    promise.finish();
    return promise.future();
}

QFuture<DEngineResult> DEngineClientPrivate::call(clientwire::Request request)
{
    if (state != State::Running)
        return refuse(Status::Stopping, state == State::Idle ? QStringLiteral("the client was not started") : QStringLiteral("the client is stopping"));
    if (calls.size() >= static_cast<std::size_t>(config.maxPendingRequests))
        return refuse(Status::Busy, QStringLiteral("%1 calls in flight, the limit (maxPendingRequests)").arg(calls.size()));
    const quint64 id = ++nextId;
    request.id = id;
    Call &c = calls[id];
    c.request = std::move(request);
    c.promise = std::make_shared<QPromise<DEngineResult>>();
    c.promise->start();
    c.deadline = QDeadlineTimer(config.requestTimeoutMs);
    QFuture<DEngineResult> future = c.promise->future();
    if (link && link->live)
        send(c);
    return future;
}

void DEngineClientPrivate::send(Call &c)
{
    const qint64 left = c.deadline.remainingTime();
    c.request.deadlineMs = static_cast<std::uint32_t>(std::max<qint64>(1, left - ServerMarginMs));
    std::string frame;
    clientwire::appendRequest(frame, c.request);
    link->socket->write(frame.data(), static_cast<qint64>(frame.size()));
    if (readingAnswers == 0)
        link->socket->flush(); // now, not on the event loop's next turn
    c.link = link->serial;
}

void DEngineClientPrivate::sendWaiting()
{
    if (!link || !link->live)
        return;
    for (auto &[id, c] : calls)
        if (c.link == 0)
            send(c);
    for (auto &[id, w] : watches)
        if (w.link == 0)
            sendWatch(id, w);
}

// ---- watches ------------------------------------------------------------------------------------

void DEngineClientPrivate::sendWatch(quint64 id, Watch &w)
{
    DEngineWatcher *watcher = w.watcher;
    if (!watcher)
        return;
    clientwire::Request r;
    r.kind = clientwire::Kind::Watch;
    r.id = id;
    r.key = toStd(watcher->begin());
    r.end = toStd(watcher->end());
    // From where it got to: every revision up to revision() was delivered (0: it starts now and
    // has not heard where "now" was yet).
    const DEngineWatcherPrivate *wd = DEngineWatcherPrivate::of(watcher);
    r.revision = wd->revision > 0 || wd->started ? wd->revision + 1 : 0;
    std::string frame;
    clientwire::appendRequest(frame, r);
    link->socket->write(frame.data(), static_cast<qint64>(frame.size()));
    w.link = link->serial;
}

void DEngineClientPrivate::orphanWatches(const Link &l)
{
    for (auto &[id, w] : watches)
        if (w.link == l.serial)
            w.link = 0;
}

void DEngineClientPrivate::onWatchPush(Link *l, const clientwire::Response &r)
{
    const auto it = watches.find(r.id);
    if (it == watches.end() || it->second.link != l->serial)
        return;
    DEngineWatcher *watcher = it->second.watcher;
    if (!watcher) {
        watches.erase(it);
        return;
    }
    if (r.watchDone) {
        const auto status = static_cast<Status>(r.status);
        if (status == Status::Stopping) {
            it->second.link = 0; // the member stops: go on with the next one
            return;
        }
        watches.erase(it);
        DEngineWatcherPrivate::finish(watcher, status, QString::fromUtf8(r.message.data(), static_cast<qsizetype>(r.message.size())));
        return;
    }
    DEngineWatcherPrivate::of(watcher)->started = true;
    QList<DEngineWatchEvent> events;
    events.reserve(static_cast<qsizetype>(r.watchEvents.size()));
    for (const clientwire::WatchEvent &e : r.watchEvents)
        events.push_back(DEngineWatchEvent{e.deleted ? DEngineWatchEvent::Type::Delete : DEngineWatchEvent::Type::Put, bytes(e.key), bytes(e.value),
                                           e.revision, e.createRevision, e.version, e.lease});
    DEngineWatcherPrivate::deliver(watcher, events, r.revision, 0);
}

void DEngineClientPrivate::cancelWatch(quint64 id)
{
    const auto it = watches.find(id);
    if (it == watches.end())
        return;
    const quint64 sentOn = it->second.link;
    watches.erase(it);
    if (sentOn == 0)
        return;
    if (Link *l = find(sentOn))
        sendCancelWatch(*l, id);
}

void DEngineClientPrivate::sendCancelWatch(Link &l, quint64 id)
{
    if (!l.socket)
        return;
    clientwire::Request cancel;
    cancel.kind = clientwire::Kind::CancelWatch;
    cancel.id = ++nextId; // its answer matches no call: dropped
    cancel.watchId = id;
    std::string frame;
    clientwire::appendRequest(frame, cancel);
    l.socket->write(frame.data(), static_cast<qint64>(frame.size()));
}

void DEngineClientPrivate::finishWatches(Status status, const QString &why)
{
    std::map<quint64, Watch> all = std::move(watches);
    watches.clear();
    for (auto &[id, w] : all)
        if (w.watcher)
            DEngineWatcherPrivate::finish(w.watcher, status, why);
}

void DEngineClientPrivate::finish(quint64 id, DEngineResult result)
{
    const auto it = calls.find(id);
    if (it == calls.end())
        return;
    const std::shared_ptr<QPromise<DEngineResult>> promise = std::move(it->second.promise);
    calls.erase(it);
    // Continuations run here, on the owner thread; they may call the client (even stop it).
    promise->addResult(std::move(result));
    promise->finish();
}

void DEngineClientPrivate::failCalls(Status unsentStatus, const QString &why)
{
    std::map<quint64, Call> all = std::move(calls);
    calls.clear();
    for (auto &[id, c] : all) {
        DEngineResult r;
        const bool unknown = c.link != 0 && !repeatable(c.request.kind);
        r.status = unknown ? Status::Timeout : unsentStatus;
        r.message = unknown ? why + QStringLiteral(": the write was sent, and may or may not be applied") : why;
        r.leaderHint = leader;
        c.promise->addResult(std::move(r));
        c.promise->finish();
    }
}

void DEngineClientPrivate::tick()
{
    if (state != State::Running)
        return;
    QPointer<DEngineClient> alive(q);
    // Deadlines, oldest first (calls are kept in the order made, with one timeout for all). A sent
    // call's member was given a shorter one, so its own answer usually comes first.
    while (!calls.empty()) {
        auto it = calls.begin();
        Call &c = it->second;
        if (!c.deadline.hasExpired())
            break;
        DEngineResult r;
        r.leaderHint = leader;
        if (c.link == 0) {
            r.status = Status::NoQuorum;
            r.message = QStringLiteral("no member could be reached within %1 ms: the call was not sent").arg(config.requestTimeoutMs);
        } else {
            r.status = Status::Timeout;
            r.message = QStringLiteral("no answer within %1 ms: a write may or may not take effect").arg(config.requestTimeoutMs);
        }
        finish(it->first, std::move(r));
        if (!alive || state != State::Running)
            return;
    }
    // A member silent for three heartbeats is paused or cut off: go to another.
    const qint64 silence = 3LL * config.heartbeatMs + TickMs;
    if (link && (link->live ? link->heard.elapsed() > silence : link->opened.elapsed() > config.connectTimeoutMs)) {
        lose(link.get(), link->live ? QStringLiteral("silent for %1 ms").arg(link->heard.elapsed())
                                    : QStringLiteral("no answer within %1 ms (connectTimeoutMs)").arg(config.connectTimeoutMs));
        if (!alive || state != State::Running)
            return;
    }
    if (incoming && !incoming->live && incoming->opened.elapsed() > config.connectTimeoutMs)
        lose(incoming.get(), QStringLiteral("no answer within %1 ms").arg(config.connectTimeoutMs));
    std::erase_if(probes, [this](const std::unique_ptr<Link> &p) { return p->opened.elapsed() > config.connectTimeoutMs; });
    // Links kept only for their writes' answers go once they are in.
    std::erase_if(retired, [this](const std::unique_ptr<Link> &r) {
        return std::none_of(calls.begin(), calls.end(), [&](const auto &e) { return e.second.link == r->serial; });
    });
    if (!link)
        openNext();
}

// ---- the public surface -------------------------------------------------------------------------

NodeId DEngineClient::nodeId() const { return d->member; }
DEngineClient::State DEngineClient::state() const { return d->state; }
DEngineClient::Error DEngineClient::error() const { return d->error; }
QString DEngineClient::errorString() const { return d->errorString; }
NodeId DEngineClient::currentLeader() const { return d->leader; }
quint64 DEngineClient::currentTerm() const { return d->term; }
bool DEngineClient::isReady() const { return d->ready; }
DEngineClient::Role DEngineClient::role() const { return d->role; }
quint64 DEngineClient::commitIndex() const { return d->commit; }
quint64 DEngineClient::appliedIndex() const { return d->applied; }
QList<NodeId> DEngineClient::voters() const { return d->voters; }
QList<NodeId> DEngineClient::learners() const { return d->learners; }
QString DEngineClient::memberAddress(NodeId id) const { return d->addresses.value(id); }
QString DEngineClient::memberClientAddress(NodeId id) const { return d->memberClientAddresses.value(id); }
DEngineClientConfig DEngineClient::config() const { return d->config; }
QString DEngineClient::connectedEndpoint() const { return d->link && d->link->live ? d->link->endpoint : QString(); }

namespace {
clientwire::Request request(clientwire::Kind kind, const QByteArray &key = {})
{
    clientwire::Request r;
    r.kind = kind;
    r.key = toStd(key);
    return r;
}
} // namespace

QFuture<DEngineResult> DEngineClient::put(const QByteArray &key, const QByteArray &value)
{
    if (key.isEmpty())
        return d->refuse(Status::InvalidArgument, QStringLiteral("key: must not be empty"));
    clientwire::Request r = request(clientwire::Kind::Put, key);
    r.value = toStd(value);
    return d->call(std::move(r));
}

QFuture<DEngineResult> DEngineClient::remove(const QByteArray &key)
{
    if (key.isEmpty())
        return d->refuse(Status::InvalidArgument, QStringLiteral("key: must not be empty"));
    return d->call(request(clientwire::Kind::Delete, key));
}

QFuture<DEngineResult> DEngineClient::batch(const QList<DEngineOperation> &operations)
{
    if (operations.isEmpty())
        return d->refuse(Status::InvalidArgument, QStringLiteral("batch: no operations"));
    clientwire::Request r = request(clientwire::Kind::Batch);
    if (!toWire(operations, r.operations))
        return d->refuse(Status::InvalidArgument, QStringLiteral("batch: a key must not be empty"));
    return d->call(std::move(r));
}

QFuture<DEngineResult> DEngineClient::txn(const QList<DEngineCompare> &compares, const QList<DEngineOperation> &success,
                                          const QList<DEngineOperation> &failure)
{
    clientwire::Request r = request(clientwire::Kind::Txn);
    if (!toWire(success, r.operations) || !toWire(failure, r.failureOperations))
        return d->refuse(Status::InvalidArgument, QStringLiteral("txn: a key must not be empty"));
    r.compares.reserve(static_cast<std::size_t>(compares.size()));
    for (const DEngineCompare &c : compares) {
        if (c.key.isEmpty())
            return d->refuse(Status::InvalidArgument, QStringLiteral("txn: a compare key must not be empty"));
        r.compares.push_back(clientwire::Compare{static_cast<std::uint32_t>(c.target), static_cast<std::uint32_t>(c.op), toStd(c.key), toStd(c.value), c.number});
    }
    return d->call(std::move(r));
}

QFuture<DEngineResult> DEngineClient::get(const QByteArray &key, Consistency consistency)
{
    if (key.isEmpty())
        return d->refuse(Status::InvalidArgument, QStringLiteral("key: must not be empty"));
    clientwire::Request r = request(clientwire::Kind::Get, key);
    r.consistency = static_cast<std::uint32_t>(consistency);
    return d->call(std::move(r));
}

QFuture<DEngineResult> DEngineClient::scan(const QByteArray &prefix, int limit, Consistency consistency)
{
    if (limit < 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("scan: the limit must not be negative"));
    clientwire::Request r = request(clientwire::Kind::Scan, prefix);
    r.limit = static_cast<std::uint32_t>(limit);
    r.consistency = static_cast<std::uint32_t>(consistency);
    return d->call(std::move(r));
}

QFuture<DEngineResult> DEngineClient::range(const QByteArray &begin, const QByteArray &end, int limit, Consistency consistency)
{
    if (limit < 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("range: the limit must not be negative"));
    if (!end.isEmpty() && end < begin)
        return d->refuse(Status::InvalidArgument, QStringLiteral("range: end comes before begin"));
    clientwire::Request r = request(clientwire::Kind::Range, begin);
    r.end = toStd(end);
    r.limit = static_cast<std::uint32_t>(limit);
    r.consistency = static_cast<std::uint32_t>(consistency);
    return d->call(std::move(r));
}

namespace {
clientwire::Request membership(clientwire::Kind kind, NodeId id)
{
    clientwire::Request r;
    r.kind = kind;
    r.node = id;
    return r;
}
} // namespace

QFuture<DEngineResult> DEngineClient::addLearner(NodeId id, const QString &address)
{
    if (id == 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("addLearner: node id 0 is not allowed"));
    if (!engine::parseHostPort(address, nullptr, nullptr) || address.toUtf8().size() > 200)
        return d->refuse(Status::InvalidArgument, QStringLiteral("addLearner: address \"%1\" is not host:port (port 1..65535)").arg(address));
    clientwire::Request r = membership(clientwire::Kind::AddLearner, id);
    r.address = address.toStdString();
    return d->call(std::move(r));
}

QFuture<DEngineResult> DEngineClient::promote(NodeId id)
{
    if (id == 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("promote: node id 0 is not allowed"));
    return d->call(membership(clientwire::Kind::Promote, id));
}

QFuture<DEngineResult> DEngineClient::removeMember(NodeId id)
{
    if (id == 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("removeMember: node id 0 is not allowed"));
    return d->call(membership(clientwire::Kind::RemoveMember, id));
}

QFuture<DEngineResult> DEngineClient::transferLeadership(NodeId id)
{
    if (id == 0)
        return d->refuse(Status::InvalidArgument, QStringLiteral("transferLeadership: node id 0 is not allowed"));
    return d->call(membership(clientwire::Kind::TransferLeadership, id));
}

// ---- watches and leases -------------------------------------------------------------------------

DEngineWatcher *DEngineClient::watch(const QByteArray &begin, const QByteArray &end, quint64 fromRevision, QObject *parent)
{
    DEngineWatcher *w = DEngineWatcherPrivate::create(parent, begin, end, fromRevision);
    const auto refuse = [w](Status status, const QString &why) {
        DEngineWatcherPrivate::finishLater(w, status, why);
        return w;
    };
    if (d->state != State::Running)
        return refuse(Status::Stopping, d->state == State::Idle ? QStringLiteral("the client was not started") : QStringLiteral("the client is stopping"));
    if (!end.isEmpty() && end <= begin)
        return refuse(Status::InvalidArgument, QStringLiteral("watch: end does not come after begin"));
    const quint64 id = ++d->nextId;
    DEngineClientPrivate::Watch &entry = d->watches[id];
    entry.watcher = w;
    DEngineWatcherPrivate *wd = DEngineWatcherPrivate::of(w);
    wd->started = fromRevision != 0;
    DEngineClientPrivate *p = d.get();
    QPointer<DEngineClient> self(this);
    wd->onCancel = [self, p, id] {
        if (self)
            p->cancelWatch(id);
    };
    if (d->link && d->link->live)
        d->sendWatch(id, entry);
    return w;
}

QFuture<DEngineResult> DEngineClient::grantLease(qint64 ttlMs)
{
    if (ttlMs < 1000 || ttlMs > 30LL * 24 * 3600 * 1000)
        return d->refuse(Status::InvalidArgument, QStringLiteral("grantLease: a TTL of %1 ms is outside 1000 ms .. 30 days").arg(ttlMs));
    clientwire::Request r = request(clientwire::Kind::LeaseGrant);
    r.ttlMs = static_cast<std::uint64_t>(ttlMs);
    return d->call(std::move(r));
}

QFuture<DEngineResult> DEngineClientPrivate::leaseCall(clientwire::Kind kind, quint64 lease)
{
    if (lease == 0)
        return refuse(Status::InvalidArgument, QStringLiteral("lease: 0 is no lease"));
    clientwire::Request r;
    r.kind = kind;
    r.lease = lease;
    return call(std::move(r));
}

QFuture<DEngineResult> DEngineClient::keepAliveLease(quint64 lease) { return d->leaseCall(clientwire::Kind::LeaseKeepAlive, lease); }
QFuture<DEngineResult> DEngineClient::revokeLease(quint64 lease) { return d->leaseCall(clientwire::Kind::LeaseRevoke, lease); }
QFuture<DEngineResult> DEngineClient::leaseTimeToLive(quint64 lease) { return d->leaseCall(clientwire::Kind::LeaseTimeToLive, lease); }
