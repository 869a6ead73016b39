// SPDX-License-Identifier: Apache-2.0
#include "qmlengine.h"

#include <QtCore/QElapsedTimer>
#include <QtCore/QLoggingCategory>
#include <QtCore/QMetaEnum>
#include <QtQml/QJSEngine>
#include <QtQml/QQmlEngine>

#include <utility>

Q_LOGGING_CATEGORY(lcQml, "dengine.qml")

namespace {

QByteArray utf8(const QString &s) { return s.toUtf8(); }
QString text(const QByteArray &b) { return QString::fromUtf8(b); }

template <typename E>
QString enumName(E value)
{
    return QString::fromLatin1(QMetaEnum::fromType<E>().valueToKey(int(value)));
}

QFuture<DEngineResult> failed(DEngineInterface::Status status, const QString &message)
{
    DEngineResult r;
    r.status = status;
    r.message = message;
    return QtFuture::makeReadyFuture(r);
}

QFuture<DEngineResult> notStarted() { return failed(DEngineInterface::Status::Stopping, QStringLiteral("not started: call start() first")); }

QVariantList idList(const QList<NodeId> &ids)
{
    QVariantList out;
    out.reserve(ids.size());
    for (NodeId id : ids)
        out << double(id);
    return out;
}

} // namespace

bool parseConsistency(const QString &name, DEngineInterface::Consistency *out)
{
    const QString n = name.toLower();
    if (n.isEmpty() || n == QLatin1String("linearizable"))
        *out = DEngineInterface::Consistency::Linearizable;
    else if (n == QLatin1String("lease"))
        *out = DEngineInterface::Consistency::Lease;
    else if (n == QLatin1String("local") || n == QLatin1String("serializable"))
        *out = DEngineInterface::Consistency::Local;
    else
        return false;
    return true;
}

KvResult::KvResult(const DEngineResult &r)
    : status(r.status), message(r.message), value(text(r.value)), nextKey(text(r.nextKey)), revision(double(r.revision)),
      createRevision(double(r.createRevision)), modRevision(double(r.modRevision)), version(double(r.version)), leader(double(r.leaderHint)),
      succeeded(r.succeeded)
{
    items.reserve(r.items.size());
    for (const DEngineKeyValue &kv : r.items)
        items << QVariantMap{{QStringLiteral("key"), text(kv.key)},
                             {QStringLiteral("value"), text(kv.value)},
                             {QStringLiteral("createRevision"), double(kv.createRevision)},
                             {QStringLiteral("modRevision"), double(kv.modRevision)},
                             {QStringLiteral("version"), double(kv.version)}};
}

QString KvResult::statusName() const { return enumName(status); }

// ---- EngineBase ----

EngineBase::EngineBase(QObject *parent) : QObject(parent)
{
    m_indexThrottle.setInterval(100);
    m_indexThrottle.setSingleShot(true);
    connect(&m_indexThrottle, &QTimer::timeout, this, &EngineBase::notifyIndexes);
}

void EngineBase::setUpdateInterval(int ms)
{
    ms = qMax(0, ms);
    if (ms == m_indexThrottle.interval())
        return;
    m_indexThrottle.setInterval(ms);
    Q_EMIT updateIntervalChanged();
}

void EngineBase::indexMoved()
{
    if (m_indexThrottle.interval() == 0) {
        m_indexDirty = true;
        notifyIndexes();
        return;
    }
    m_indexDirty = true;
    if (!m_indexThrottle.isActive())
        m_indexThrottle.start();
}

void EngineBase::notifyIndexes()
{
    if (!m_indexDirty)
        return;
    m_indexDirty = false;
    Q_EMIT commitIndexChanged();
    Q_EMIT appliedIndexChanged();
}

EngineBase::~EngineBase()
{
    if (m_engine) {
        m_engine->disconnect(this); // a stop in the engine's destructor must not call into a half-destroyed object
        m_engine.reset();
    }
}

void EngineBase::setAutoStart(bool on)
{
    if (m_autoStart == on)
        return;
    m_autoStart = on;
    Q_EMIT autoStartChanged();
    if (on && m_complete && !running())
        start();
}

void EngineBase::componentComplete()
{
    m_complete = true;
    if (m_autoStart)
        start();
}

double EngineBase::nodeId() const { return m_engine ? double(m_engine->nodeId()) : 0; }
double EngineBase::leader() const { return m_engine ? double(m_engine->currentLeader()) : 0; }
double EngineBase::term() const { return m_engine ? double(m_engine->currentTerm()) : 0; }
bool EngineBase::isReady() const { return m_engine && m_engine->isReady(); }
DEngineInterface::Role EngineBase::role() const { return m_engine ? m_engine->role() : DEngineInterface::Role::Stopped; }
QString EngineBase::roleName() const { return enumName(role()); }
double EngineBase::commitIndex() const { return m_engine ? double(m_engine->commitIndex()) : 0; }
double EngineBase::appliedIndex() const { return m_engine ? double(m_engine->appliedIndex()) : 0; }
QVariantList EngineBase::members() const { return m_engine ? idList(m_engine->members()) : QVariantList{}; }
QVariantList EngineBase::voters() const { return m_engine ? idList(m_engine->voters()) : QVariantList{}; }
QVariantList EngineBase::learners() const { return m_engine ? idList(m_engine->learners()) : QVariantList{}; }
DEngineInterface::State EngineBase::state() const { return m_engine ? m_engine->state() : DEngineInterface::State::Idle; }
QString EngineBase::stateName() const { return enumName(state()); }
DEngineInterface::Error EngineBase::error() const { return m_ownError; }
QString EngineBase::errorString() const { return m_ownErrorString; }
QString EngineBase::memberAddress(double id) const { return m_engine ? m_engine->memberAddress(NodeId(id)) : QString(); }
QString EngineBase::memberClientAddress(double id) const { return m_engine ? m_engine->memberClientAddress(NodeId(id)) : QString(); }

void EngineBase::reportError(DEngineInterface::Error error, const QString &message)
{
    m_ownError = error;
    m_ownErrorString = message;
    Q_EMIT errorChanged();
    Q_EMIT errorOccurred(error, message);
}

bool EngineBase::start()
{
    if (state() == DEngineInterface::State::Stopping) {
        // stop() then start() (a reconnect with new properties): once stopped() has come.
        m_startWhenStopped = true;
        return true;
    }
    if (running()) {
        qCWarning(lcQml) << "start(): already running";
        return false;
    }
    m_startWhenStopped = false;
    if (!m_engine || !reconfigure(m_engine.get())) {
        QString why;
        std::unique_ptr<DEngineInterface> made = makeEngine(&why);
        if (!made) {
            reportError(DEngineInterface::Error::ConfigurationError, why);
            return false;
        }
        if (m_engine) {
            m_engine->disconnect(this);
            // Later, not now: this may run inside the old engine's stopped() signal.
            m_engine.release()->deleteLater();
        }
        m_engine = std::move(made);
        attach(m_engine.get());
        Q_EMIT engineChanged();
        // Everything may read differently on a new engine.
        Q_EMIT nodeIdChanged();
        Q_EMIT leaderChanged(leader());
        Q_EMIT termChanged(term());
        Q_EMIT readyChanged();
        Q_EMIT roleChanged();
        Q_EMIT commitIndexChanged();
        Q_EMIT appliedIndexChanged();
        Q_EMIT membersChanged();
    }
    if (m_ownError != DEngineInterface::Error::NoError) {
        m_ownError = DEngineInterface::Error::NoError;
        m_ownErrorString.clear();
        Q_EMIT errorChanged();
    }
    return m_engine->start();
}

void EngineBase::stop()
{
    m_startWhenStopped = false;
    if (m_engine)
        m_engine->stop();
}

void EngineBase::attach(DEngineInterface *e)
{
    using I = DEngineInterface;
    connect(e, &I::ready, this, &EngineBase::ready);
    connect(e, &I::stopping, this, &EngineBase::stopping);
    connect(e, &I::stopped, this, [this] {
        Q_EMIT stopped();
        if (std::exchange(m_startWhenStopped, false))
            start();
    });
    connect(e, &I::leaderChanged, this, [this](NodeId id) { Q_EMIT leaderChanged(double(id)); });
    connect(e, &I::termChanged, this, [this](quint64 t) { Q_EMIT termChanged(double(t)); });
    connect(e, &I::firstCommit, this, [this](quint64 i) { Q_EMIT firstCommit(double(i)); });
    connect(e, &I::errorOccurred, this, [this](I::Error error, const QString &message) { reportError(error, message); });
    connect(e, &I::readyChanged, this, &EngineBase::readyChanged);
    connect(e, &I::roleChanged, this, &EngineBase::roleChanged);
    connect(e, &I::commitIndexChanged, this, &EngineBase::indexMoved);
    connect(e, &I::appliedIndexChanged, this, &EngineBase::indexMoved);
    connect(e, &I::membersChanged, this, &EngineBase::membersChanged);
    connect(e, &I::stateChanged, this, &EngineBase::stateChanged);
    connect(e, &I::nodeIdChanged, this, &EngineBase::nodeIdChanged);
}

QJSValue EngineBase::settle(const QFuture<DEngineResult> &future)
{
    QJSEngine *js = qjsEngine(this);
    if (!js) {
        qCWarning(lcQml) << "a call from outside QML (no JavaScript engine): its result is dropped";
        return QJSValue();
    }
    // A promise and its resolve function, made by a function compiled once per engine object.
    static const char *const Deferred =
        "(function() { var d = {}; d.promise = new Promise(function(resolve) { d.resolve = resolve; }); return d; })";
    if (!m_deferred.isCallable())
        m_deferred = js->evaluate(QString::fromLatin1(Deferred));
    QJSValue deferred = m_deferred.call();
    QJSValue promise = deferred.property(QStringLiteral("promise"));
    // Futures finish on this (the owner) thread; no context object: see the README's Qt 6.4 note.
    QPointer<EngineBase> self(this);
    QElapsedTimer clock;
    clock.start();
    const auto resolve = [self, deferred, clock](const DEngineResult &r) {
        if (!self)
            return; // the QML side is gone, and its JavaScript engine with it
        QJSEngine *engine = qjsEngine(self);
        if (!engine)
            return;
        KvResult result(r);
        result.elapsedMs = double(clock.nsecsElapsed()) / 1e6;
        deferred.property(QStringLiteral("resolve")).call({engine->toScriptValue(result)});
    };
    QFuture<DEngineResult> pending = future;
    pending.then(resolve).onCanceled([resolve] {
        // A future the engine dropped: the promise still settles (a chart's probe waits on it).
        DEngineResult r;
        r.status = DEngineInterface::Status::Stopping;
        r.message = QStringLiteral("the call was cancelled");
        resolve(r);
    });
    return promise;
}

QJSValue EngineBase::put(const QString &key, const QString &value)
{
    return settle(m_engine ? m_engine->put(utf8(key), utf8(value)) : notStarted());
}

QJSValue EngineBase::get(const QString &key, const QString &consistency)
{
    DEngineInterface::Consistency c;
    if (!parseConsistency(consistency, &c))
        return settle(failed(DEngineInterface::Status::InvalidArgument, QStringLiteral("consistency: \"%1\" is not linearizable, lease or local").arg(consistency)));
    return settle(m_engine ? m_engine->get(utf8(key), c) : notStarted());
}

QJSValue EngineBase::remove(const QString &key) { return settle(m_engine ? m_engine->remove(utf8(key)) : notStarted()); }

namespace {

// [{op: "put", key, value}, {op: "delete", key}] as operations; "" when fine, else why not.
QString toOperations(const QVariantList &list, const char *what, QList<DEngineOperation> &ops)
{
    ops.reserve(list.size());
    for (qsizetype i = 0; i < list.size(); ++i) {
        const QVariantMap o = list.at(i).toMap();
        const QString op = o.value(QStringLiteral("op")).toString();
        DEngineOperation d;
        d.key = utf8(o.value(QStringLiteral("key")).toString());
        if (op == QLatin1String("put")) {
            d.kind = DEngineOperation::Kind::Put;
            d.value = utf8(o.value(QStringLiteral("value")).toString());
        } else if (op == QLatin1String("delete") || op == QLatin1String("remove")) {
            d.kind = DEngineOperation::Kind::Remove;
        } else {
            return QStringLiteral("%1: operation %2: op must be \"put\" or \"delete\", not \"%3\"").arg(QLatin1String(what)).arg(i).arg(op);
        }
        ops << d;
    }
    return {};
}

} // namespace

QJSValue EngineBase::batch(const QVariantList &operations)
{
    QList<DEngineOperation> ops;
    if (const QString why = toOperations(operations, "batch", ops); !why.isEmpty())
        return settle(failed(DEngineInterface::Status::InvalidArgument, why));
    return settle(m_engine ? m_engine->batch(ops) : notStarted());
}

QJSValue EngineBase::txn(const QVariantList &compares, const QVariantList &success, const QVariantList &failure)
{
    QList<DEngineOperation> onSuccess, onFailure;
    QString why = toOperations(success, "txn success", onSuccess);
    if (why.isEmpty())
        why = toOperations(failure, "txn failure", onFailure);
    QList<DEngineCompare> cmps;
    static const QStringList targets{QStringLiteral("value"), QStringLiteral("version"), QStringLiteral("create"), QStringLiteral("mod")};
    static const QStringList ops{QStringLiteral("="), QStringLiteral("!="), QStringLiteral("<"), QStringLiteral(">")};
    for (qsizetype i = 0; why.isEmpty() && i < compares.size(); ++i) {
        const QVariantMap c = compares.at(i).toMap();
        const qsizetype target = targets.indexOf(c.value(QStringLiteral("target"), QStringLiteral("value")).toString());
        QString opName = c.value(QStringLiteral("op"), QStringLiteral("=")).toString();
        if (opName == QLatin1String("=="))
            opName = QStringLiteral("=");
        const qsizetype op = ops.indexOf(opName);
        if (target < 0 || op < 0) {
            why = QStringLiteral("txn: compare %1: target must be value, version, create or mod, and op =, !=, < or >").arg(i);
            break;
        }
        DEngineCompare d;
        d.target = static_cast<DEngineCompare::Target>(target);
        d.op = static_cast<DEngineCompare::Op>(op);
        d.key = utf8(c.value(QStringLiteral("key")).toString());
        if (d.target == DEngineCompare::Target::Value) {
            d.value = utf8(c.value(QStringLiteral("value")).toString());
        } else {
            const double n = c.value(QStringLiteral("number")).toDouble();
            if (!(n >= 0 && n <= 9007199254740992.0) || n != double(quint64(n))) {
                why = QStringLiteral("txn: compare %1: number must be a whole number from 0 to 2^53").arg(i);
                break;
            }
            d.number = quint64(n);
        }
        cmps << d;
    }
    if (!why.isEmpty())
        return settle(failed(DEngineInterface::Status::InvalidArgument, why));
    return settle(m_engine ? m_engine->txn(cmps, onSuccess, onFailure) : notStarted());
}

QJSValue EngineBase::scan(const QString &prefix, int limit, const QString &consistency)
{
    DEngineInterface::Consistency c;
    if (!parseConsistency(consistency, &c))
        return settle(failed(DEngineInterface::Status::InvalidArgument, QStringLiteral("consistency: \"%1\" is not linearizable, lease or local").arg(consistency)));
    return settle(m_engine ? m_engine->scan(utf8(prefix), limit, c) : notStarted());
}

QJSValue EngineBase::range(const QString &begin, const QString &end, int limit, const QString &consistency)
{
    DEngineInterface::Consistency c;
    if (!parseConsistency(consistency, &c))
        return settle(failed(DEngineInterface::Status::InvalidArgument, QStringLiteral("consistency: \"%1\" is not linearizable, lease or local").arg(consistency)));
    return settle(m_engine ? m_engine->range(utf8(begin), utf8(end), limit, c) : notStarted());
}

QJSValue EngineBase::addLearner(double id, const QString &address)
{
    return settle(m_engine ? m_engine->addLearner(NodeId(id), address) : notStarted());
}
QJSValue EngineBase::promote(double id) { return settle(m_engine ? m_engine->promote(NodeId(id)) : notStarted()); }
QJSValue EngineBase::removeMember(double id) { return settle(m_engine ? m_engine->removeMember(NodeId(id)) : notStarted()); }
QJSValue EngineBase::transferLeadership(double id) { return settle(m_engine ? m_engine->transferLeadership(NodeId(id)) : notStarted()); }

// ---- EngineNode ----

EngineNode::EngineNode(QObject *parent) : EngineBase(parent) {}

void EngineNode::setConfigNodeId(double id)
{
    set(m_config.nodeId, NodeId(id), Field::NodeId);
}

QVariantMap EngineNode::peers() const
{
    QVariantMap out;
    for (auto it = m_config.peers.cbegin(); it != m_config.peers.cend(); ++it)
        out.insert(QString::number(it.key()), it.value());
    return out;
}

void EngineNode::setPeers(const QVariantMap &peers)
{
    QMap<NodeId, QString> parsed;
    for (auto it = peers.cbegin(); it != peers.cend(); ++it) {
        bool ok = false;
        const NodeId id = it.key().toULongLong(&ok);
        parsed.insert(ok ? id : 0, it.value().toString()); // 0: refused by validate() at start
    }
    set(m_config.peers, parsed, Field::Peers);
}

void EngineNode::setConfigFile(const QString &path)
{
    if (m_configFile == path)
        return;
    m_configFile = path;
    Q_EMIT configChanged();
}

bool EngineNode::effectiveConfig(DEngineConfig *out, QString *why) const
{
    DEngineConfig c;
    if (!m_configFile.isEmpty()) {
        QString error;
        c = DEngineConfig::fromFile(m_configFile, &error);
        if (!error.isEmpty()) {
            *why = QStringLiteral("%1: %2").arg(m_configFile, error);
            return false;
        }
    }
    const auto take = [&](Field f, auto member) {
        if (m_configFile.isEmpty() || m_set.contains(int(f)))
            c.*member = m_config.*member;
    };
    take(Field::NodeId, &DEngineConfig::nodeId);
    take(Field::Peers, &DEngineConfig::peers);
    take(Field::DataDirectory, &DEngineConfig::dataDirectory);
    take(Field::ListenAddress, &DEngineConfig::listenAddress);
    take(Field::ClusterId, &DEngineConfig::clusterId);
    take(Field::Join, &DEngineConfig::join);
    take(Field::Insecure, &DEngineConfig::insecure);
    take(Field::TlsCa, &DEngineConfig::tlsCaFile);
    take(Field::TlsCert, &DEngineConfig::tlsCertificateFile);
    take(Field::TlsKey, &DEngineConfig::tlsKeyFile);
    take(Field::Tick, &DEngineConfig::tickIntervalMs);
    take(Field::Election, &DEngineConfig::electionTicks);
    take(Field::Lease, &DEngineConfig::leaseReads);
    if (const QString invalid = c.validate(); !invalid.isEmpty()) {
        *why = invalid;
        return false;
    }
    *out = c;
    return true;
}

std::unique_ptr<DEngineInterface> EngineNode::makeEngine(QString *why)
{
    DEngineConfig c;
    if (!effectiveConfig(&c, why))
        return nullptr;
    return std::make_unique<DEngine>(c);
}

bool EngineNode::reconfigure(DEngineInterface *engine)
{
    DEngineConfig c;
    QString why;
    if (!effectiveConfig(&c, &why))
        return false; // makeEngine() says why
    return static_cast<DEngine *>(engine)->setConfig(c);
}

// ---- ClusterClient ----

ClusterClient::ClusterClient(QObject *parent) : EngineBase(parent)
{
    connect(this, &EngineBase::engineChanged, this, [this] {
        connect(static_cast<DEngineClient *>(engine()), &DEngineClient::connectedEndpointChanged, this, &ClusterClient::connectedEndpointChanged);
        Q_EMIT connectedEndpointChanged();
    });
    connect(this, &ClusterClient::configChanged, this, [this] { m_dirty = true; });
}

QString ClusterClient::connectedEndpoint() const
{
    return engine() ? static_cast<DEngineClient *>(engine())->connectedEndpoint() : QString();
}

std::unique_ptr<DEngineInterface> ClusterClient::makeEngine(QString *why)
{
    if (const QString invalid = m_config.validate(); !invalid.isEmpty()) {
        *why = invalid;
        return nullptr;
    }
    m_dirty = false;
    return std::make_unique<DEngineClient>(m_config);
}

bool ClusterClient::reconfigure(DEngineInterface *) { return !m_dirty; }
