// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <QtCore/QAbstractListModel>
#include <QtCore/QPointer>
#include <QtCore/QTimer>
#include <QtQml/QQmlListProperty>
#include <QtQml/qqmlregistration.h>

#include <dengine/dengineinterface.h>

#include <map>
#include <memory>
#include <vector>

#include "qmlengine.h"

// The members of a cluster, one row each, in id order, with what each says of itself:
//   nodeId, address (peers), clientAddress, learner, leader (the cluster's leader: the newest word
//   on it among the running engines the model sees), self (the member `engine` is or talks to), connected (its status is known),
//   roleName, term, commitIndex, appliedIndex, ready, lag (the highest commit index any member
//   reports, minus this member's applied index).
// The membership comes from `engine`. A member's own status comes from, in this order: the engine
// in `nodes` with its id (an embedded demo cluster: all its nodes in one process), or, when
// `engine` is a ClusterClient and watchMembers is on, a client the model keeps to that member's
// client port (from the replicated address book; TLS as `engine` has it) without following the
// leader. Row updates are throttled to one batch per `updateInterval` ms, so a busy cluster
// costs the view a few repaints a second, not one per commit.
//
// Thread: the GUI thread. Never blocks.
class ClusterModel : public QAbstractListModel {
    Q_OBJECT
    QML_ELEMENT
    Q_PROPERTY(EngineBase *engine READ engine WRITE setEngine NOTIFY engineChanged)
    Q_PROPERTY(QQmlListProperty<EngineBase> nodes READ nodes NOTIFY nodesChanged)
    Q_PROPERTY(bool watchMembers READ watchMembers WRITE setWatchMembers NOTIFY watchMembersChanged)
    Q_PROPERTY(int updateInterval READ updateInterval WRITE setUpdateInterval NOTIFY updateIntervalChanged)
    Q_PROPERTY(int count READ count NOTIFY countChanged)

public:
    enum Role {
        NodeIdRole = Qt::UserRole + 1,
        AddressRole,
        ClientAddressRole,
        LearnerRole,
        LeaderRole,
        SelfRole,
        ConnectedRole,
        RoleNameRole,
        TermRole,
        CommitIndexRole,
        AppliedIndexRole,
        ReadyRole,
        LagRole,
    };

    explicit ClusterModel(QObject *parent = nullptr);
    ~ClusterModel() override;

    EngineBase *engine() const { return m_engine; }
    void setEngine(EngineBase *engine);
    QQmlListProperty<EngineBase> nodes();
    bool watchMembers() const { return m_watchMembers; }
    void setWatchMembers(bool on);
    int updateInterval() const { return m_throttle.interval(); }
    void setUpdateInterval(int ms);
    int count() const { return int(m_ids.size()); }

    // A row's member id (0 past the end).
    Q_INVOKABLE double nodeIdAt(int row) const;
    // A row as {roleName: value} ({} past the end): for JavaScript and tests.
    Q_INVOKABLE QVariantMap get(int row) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role) const override;
    QHash<int, QByteArray> roleNames() const override;

Q_SIGNALS:
    void engineChanged();
    void nodesChanged();
    void watchMembersChanged();
    void updateIntervalChanged();
    void countChanged();

private:
    // Where a member's status comes from, and whether it is ours (a watcher client).
    DEngineInterface *statusSource(NodeId id) const;
    NodeId clusterLeader() const;
    void rebuild();      // the membership changed: rows inserted and removed
    void syncWatchers(); // watcher clients for the members that need one
    void markDirty();    // some status changed: the rows are updated at the next throttle tick
    void flush();
    void connectSource(EngineBase *source);

    static void appendNode(QQmlListProperty<EngineBase> *list, EngineBase *node);
    static qsizetype nodeCount(QQmlListProperty<EngineBase> *list);
    static EngineBase *nodeAt(QQmlListProperty<EngineBase> *list, qsizetype i);
    static void clearNodes(QQmlListProperty<EngineBase> *list);

    QPointer<EngineBase> m_engine;
    QList<QPointer<EngineBase>> m_nodes;
    bool m_watchMembers = true;
    std::vector<NodeId> m_ids;
    std::map<NodeId, std::unique_ptr<DEngineInterface>> m_watchers;
    std::map<NodeId, QString> m_watcherAddress; // the client address each watcher was made for
    QTimer m_throttle;
    bool m_dirty = false;
};
