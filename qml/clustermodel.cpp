// SPDX-License-Identifier: Apache-2.0
#include "clustermodel.h"

#include "qmlengine.h"

#include <dengine/dengineclient.h>

#include <QtCore/QMetaEnum>

#include <algorithm>

ClusterModel::ClusterModel(QObject *parent) : QAbstractListModel(parent)
{
    m_throttle.setInterval(250);
    m_throttle.setSingleShot(true);
    connect(&m_throttle, &QTimer::timeout, this, &ClusterModel::flush);
}

ClusterModel::~ClusterModel()
{
    for (auto &[id, w] : m_watchers)
        w->disconnect(this);
}

void ClusterModel::connectSource(EngineBase *source)
{
    // Any of these changes what a row shows; one batch of row updates per throttle tick. Unique:
    // the engine is often one of the nodes too.
    const auto u = Qt::UniqueConnection;
    connect(source, &EngineBase::leaderChanged, this, &ClusterModel::markDirty, u);
    connect(source, &EngineBase::termChanged, this, &ClusterModel::markDirty, u);
    connect(source, &EngineBase::readyChanged, this, &ClusterModel::markDirty, u);
    connect(source, &EngineBase::roleChanged, this, &ClusterModel::markDirty, u);
    connect(source, &EngineBase::commitIndexChanged, this, &ClusterModel::markDirty, u);
    connect(source, &EngineBase::appliedIndexChanged, this, &ClusterModel::markDirty, u);
    connect(source, &EngineBase::stateChanged, this, &ClusterModel::markDirty, u);
    connect(source, &EngineBase::nodeIdChanged, this, &ClusterModel::markDirty, u);
}

void ClusterModel::setEngine(EngineBase *engine)
{
    if (m_engine == engine)
        return;
    if (m_engine) {
        m_engine->disconnect(this);
        // It may be one of the nodes too: those connections stay.
        for (const QPointer<EngineBase> &n : std::as_const(m_nodes))
            if (n == m_engine)
                connectSource(n);
    }
    m_engine = engine;
    if (engine) {
        connectSource(engine);
        connect(engine, &EngineBase::membersChanged, this, &ClusterModel::rebuild);
        connect(engine, &EngineBase::engineChanged, this, &ClusterModel::rebuild);
        connect(engine, &EngineBase::stateChanged, this, &ClusterModel::syncWatchers);
    }
    Q_EMIT engineChanged();
    rebuild();
}

QQmlListProperty<EngineBase> ClusterModel::nodes()
{
    return QQmlListProperty<EngineBase>(this, nullptr, &ClusterModel::appendNode, &ClusterModel::nodeCount, &ClusterModel::nodeAt,
                                        &ClusterModel::clearNodes);
}

void ClusterModel::appendNode(QQmlListProperty<EngineBase> *list, EngineBase *node)
{
    auto *self = static_cast<ClusterModel *>(list->object);
    if (!node)
        return;
    self->m_nodes << node;
    self->connectSource(node);
    self->syncWatchers();
    self->markDirty();
    Q_EMIT self->nodesChanged();
}

qsizetype ClusterModel::nodeCount(QQmlListProperty<EngineBase> *list) { return static_cast<ClusterModel *>(list->object)->m_nodes.size(); }

EngineBase *ClusterModel::nodeAt(QQmlListProperty<EngineBase> *list, qsizetype i) { return static_cast<ClusterModel *>(list->object)->m_nodes.value(i); }

void ClusterModel::clearNodes(QQmlListProperty<EngineBase> *list)
{
    auto *self = static_cast<ClusterModel *>(list->object);
    for (const QPointer<EngineBase> &n : std::as_const(self->m_nodes))
        if (n && n != self->m_engine)
            n->disconnect(self);
    self->m_nodes.clear();
    self->syncWatchers();
    self->markDirty();
    Q_EMIT self->nodesChanged();
}

void ClusterModel::setWatchMembers(bool on)
{
    if (m_watchMembers == on)
        return;
    m_watchMembers = on;
    Q_EMIT watchMembersChanged();
    syncWatchers();
}

void ClusterModel::setUpdateInterval(int ms)
{
    ms = qMax(0, ms);
    if (m_throttle.interval() == ms)
        return;
    m_throttle.setInterval(ms);
    Q_EMIT updateIntervalChanged();
}

DEngineInterface *ClusterModel::statusSource(NodeId id) const
{
    for (const QPointer<EngineBase> &n : m_nodes)
        if (n && n->engine() && NodeId(n->nodeId()) == id)
            return n->engine();
    const auto w = m_watchers.find(id);
    if (w != m_watchers.end())
        return w->second.get();
    if (m_engine && m_engine->engine() && NodeId(m_engine->nodeId()) == id)
        return m_engine->engine(); // the member it is (or talks to) says its own state
    return nullptr;
}

void ClusterModel::rebuild()
{
    std::vector<NodeId> fresh;
    if (m_engine && m_engine->engine())
        for (NodeId id : m_engine->engine()->members())
            fresh.push_back(id);
    std::sort(fresh.begin(), fresh.end());
    const int before = count();
    std::size_t i = 0, j = 0;
    while (i < m_ids.size() || j < fresh.size()) {
        if (i < m_ids.size() && (j == fresh.size() || m_ids[i] < fresh[j])) {
            beginRemoveRows({}, int(i), int(i));
            m_ids.erase(m_ids.begin() + qsizetype(i));
            endRemoveRows();
        } else if (i == m_ids.size() || fresh[j] < m_ids[i]) {
            beginInsertRows({}, int(i), int(i));
            m_ids.insert(m_ids.begin() + qsizetype(i), fresh[j]);
            endInsertRows();
            ++i;
            ++j;
        } else {
            ++i;
            ++j;
        }
    }
    if (before != count())
        Q_EMIT countChanged();
    syncWatchers();
    markDirty();
}

void ClusterModel::syncWatchers()
{
    // Only for a ClusterClient that runs, for the members no node in `nodes` covers.
    auto *client = qobject_cast<ClusterClient *>(m_engine.data());
    const bool wanted = m_watchMembers && client && client->running();
    for (auto it = m_watchers.begin(); it != m_watchers.end();) {
        const NodeId id = it->first;
        const bool keep = wanted && std::find(m_ids.begin(), m_ids.end(), id) != m_ids.end()
                          && client->memberClientAddress(double(id)) == m_watcherAddress[id];
        if (keep) {
            ++it;
            continue;
        }
        it->second->disconnect(this);
        m_watcherAddress.erase(id);
        it = m_watchers.erase(it);
    }
    if (!wanted)
        return;
    for (NodeId id : m_ids) {
        if (m_watchers.count(id))
            continue;
        bool covered = false;
        for (const QPointer<EngineBase> &n : std::as_const(m_nodes))
            covered = covered || (n && NodeId(n->nodeId()) == id);
        const QString address = client->memberClientAddress(double(id));
        if (covered || address.isEmpty())
            continue;
        DEngineClientConfig c = client->clientConfig();
        c.endpoints = {address};
        c.followLeader = false; // this member's own view, not the leader's
        auto watcher = std::make_unique<DEngineClient>(c);
        connect(watcher.get(), &DEngineInterface::leaderChanged, this, &ClusterModel::markDirty);
        connect(watcher.get(), &DEngineInterface::termChanged, this, &ClusterModel::markDirty);
        connect(watcher.get(), &DEngineInterface::roleChanged, this, &ClusterModel::markDirty);
        connect(watcher.get(), &DEngineInterface::readyChanged, this, &ClusterModel::markDirty);
        connect(watcher.get(), &DEngineInterface::commitIndexChanged, this, &ClusterModel::markDirty);
        connect(watcher.get(), &DEngineInterface::appliedIndexChanged, this, &ClusterModel::markDirty);
        connect(watcher.get(), &DEngineInterface::nodeIdChanged, this, &ClusterModel::markDirty);
        connect(watcher.get(), &DEngineInterface::stateChanged, this, &ClusterModel::markDirty);
        watcher->start();
        m_watcherAddress[id] = address;
        m_watchers[id] = std::move(watcher);
    }
}

void ClusterModel::markDirty()
{
    m_dirty = true;
    if (!m_throttle.isActive())
        m_throttle.start();
}

void ClusterModel::flush()
{
    if (!m_dirty || m_ids.empty())
        return;
    m_dirty = false;
    syncWatchers(); // a member's client address may have come in since
    Q_EMIT dataChanged(index(0), index(count() - 1));
}

NodeId ClusterModel::clusterLeader() const
{
    // The newest word on the leader: of the running sources (the engine, the nodes, the
    // watchers), the one at the highest term; the engine wins a tie. A stopped engine's last
    // leader is history, not status.
    NodeId leader = 0;
    quint64 term = 0;
    bool any = false;
    const auto consider = [&](DEngineInterface *e) {
        if (!e || e->state() != DEngineInterface::State::Running || e->currentLeader() == 0)
            return;
        if (!any || e->currentTerm() > term) {
            leader = e->currentLeader();
            term = e->currentTerm();
            any = true;
        }
    };
    consider(m_engine ? m_engine->engine() : nullptr);
    for (const QPointer<EngineBase> &n : m_nodes)
        consider(n ? n->engine() : nullptr);
    for (const auto &[id, w] : m_watchers)
        consider(w.get());
    return leader;
}

double ClusterModel::nodeIdAt(int row) const { return row >= 0 && row < count() ? double(m_ids[std::size_t(row)]) : 0; }

QVariantMap ClusterModel::get(int row) const
{
    QVariantMap out;
    if (row < 0 || row >= count())
        return out;
    const QHash<int, QByteArray> names = roleNames();
    for (auto it = names.cbegin(); it != names.cend(); ++it)
        out.insert(QString::fromLatin1(it.value()), data(index(row), it.key()));
    return out;
}

int ClusterModel::rowCount(const QModelIndex &parent) const { return parent.isValid() ? 0 : count(); }

QVariant ClusterModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= count())
        return {};
    const NodeId id = m_ids[std::size_t(index.row())];
    DEngineInterface *main = m_engine ? m_engine->engine() : nullptr;
    DEngineInterface *s = statusSource(id);
    // Its status is known when its source talks to it (a watcher may be between connections).
    const bool connected = s && s->state() == DEngineInterface::State::Running && s->nodeId() == id;
    switch (role) {
    case NodeIdRole: return double(id);
    case AddressRole: return main ? main->memberAddress(id) : QString();
    case ClientAddressRole: return main ? main->memberClientAddress(id) : QString();
    case LearnerRole: return main && main->learners().contains(id);
    case LeaderRole: return clusterLeader() == id;
    case SelfRole: return main && main->nodeId() == id;
    case ConnectedRole: return connected;
    case RoleNameRole:
        return connected ? QString::fromLatin1(QMetaEnum::fromType<DEngineInterface::Role>().valueToKey(int(s->role()))) : QStringLiteral("Unknown");
    case TermRole: return connected ? double(s->currentTerm()) : 0.0;
    case CommitIndexRole: return connected ? double(s->commitIndex()) : 0.0;
    case AppliedIndexRole: return connected ? double(s->appliedIndex()) : 0.0;
    case ReadyRole: return connected && s->isReady();
    case LagRole: {
        if (!connected)
            return 0.0;
        quint64 highest = 0;
        for (NodeId other : m_ids)
            if (DEngineInterface *o = statusSource(other); o && o->state() == DEngineInterface::State::Running && o->nodeId() == other)
                highest = std::max(highest, o->commitIndex());
        return double(highest > s->appliedIndex() ? highest - s->appliedIndex() : 0);
    }
    default: return {};
    }
}

QHash<int, QByteArray> ClusterModel::roleNames() const
{
    return {{NodeIdRole, "nodeId"},         {AddressRole, "address"},       {ClientAddressRole, "clientAddress"},
            {LearnerRole, "learner"},       {LeaderRole, "leader"},         {SelfRole, "self"},
            {ConnectedRole, "connected"},   {RoleNameRole, "roleName"},     {TermRole, "term"},
            {CommitIndexRole, "commitIndex"}, {AppliedIndexRole, "appliedIndex"}, {ReadyRole, "ready"},
            {LagRole, "lag"}};
}
