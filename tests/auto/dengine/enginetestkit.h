// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the engine's QtTest suites share: a recorder of one engine's signals, a cluster of engines
// in this process, an application state machine, and a bounded wait for a future.

#include <dengine/dengine.h>
#include <dengine/denginestatemachine.h>

#include "../common/testports.h"

#include <QtCore/QTemporaryDir>
#include <QtCore/QThread>
#include <QtTest/QtTest>

#include <map>
#include <memory>

namespace dengine::test {

using Status = DEngine::Status;


inline constexpr int Long = 30000; // ms: the limit of every wait (ASan and TSan builds are slow)

// What one engine emitted, in order, as text ("ready", "leader 2", "term 3", "first 5", ...), with
// the getter's value read inside the slot where the contract says it must match.
struct Recorder {
    QStringList events;
    QList<NodeId> leaders;
    QList<quint64> firstCommits;
    bool gettersMatched = true;
    bool onOwnerThread = true;

    void attach(DEngineInterface *e)
    {
        QThread *owner = QThread::currentThread();
        auto check = [this, owner] {
            if (QThread::currentThread() != owner)
                onOwnerThread = false;
        };
        QObject::connect(e, &DEngine::ready, e, [this, e, check] {
            check();
            events << QStringLiteral("ready");
            if (!e->isReady())
                gettersMatched = false;
        });
        QObject::connect(e, &DEngine::stopping, e, [this, check] {
            check();
            events << QStringLiteral("stopping");
        });
        QObject::connect(e, &DEngine::stopped, e, [this, check] {
            check();
            events << QStringLiteral("stopped");
        });
        QObject::connect(e, &DEngine::leaderChanged, e, [this, e, check](NodeId leader) {
            check();
            events << QStringLiteral("leader %1").arg(leader);
            leaders << leader;
            if (e->currentLeader() != leader)
                gettersMatched = false;
        });
        QObject::connect(e, &DEngine::termChanged, e, [this, e, check](quint64 term) {
            check();
            events << QStringLiteral("term %1").arg(term);
            if (e->currentTerm() != term)
                gettersMatched = false;
        });
        QObject::connect(e, &DEngine::firstCommit, e, [this, e, check](quint64 index) {
            check();
            events << QStringLiteral("first %1").arg(index);
            firstCommits << index;
            if (e->appliedIndex() < index)
                gettersMatched = false; // the entry must be applied when this is said
        });
        QObject::connect(e, &DEngine::errorOccurred, e, [this, check](DEngine::Error error, const QString &) {
            check();
            events << QStringLiteral("error %1").arg(static_cast<int>(error));
        });
    }
    int count(const QString &what) const { return static_cast<int>(events.count(what)); }
    int indexOf(const QString &what) const { return static_cast<int>(events.indexOf(what)); }
};

inline DEngineResult await(const QFuture<DEngineResult> &f)
{
    [&] { QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), Long); }();
    if (f.isFinished())
        return f.result();
    DEngineResult never;
    never.status = Status::Timeout;
    never.message = QStringLiteral("test: the future never finished");
    return never;
}

// A cluster of `size` members on 127.0.0.1, each with its own data directory under one temporary
// directory. Engines are created on demand and may be destroyed and made again (a restart).
class Cluster {
public:
    explicit Cluster(int size)
    {
        const QList<quint16> ports = freePorts(size);
        for (int i = 0; i < size; ++i)
            m_peers.insert(NodeId(i + 1), QStringLiteral("127.0.0.1:%1").arg(ports[i]));
    }
    DEngineConfig config(NodeId id) const
    {
        DEngineConfig c;
        c.nodeId = id;
        c.peers = m_peers;
        c.dataDirectory = m_dir.filePath(QStringLiteral("node%1").arg(id));
        c.tickIntervalMs = 10;
        c.electionTicks = 10;
        c.heartbeatTicks = 1;
        c.requestTimeoutMs = 5000;
        c.stopTimeoutMs = 5000;
        c.insecure = true; // one machine; tst_dengine_tls runs a cluster on TLS
        return c;
    }
    DEngine *make(NodeId id, const DEngineConfig *custom = nullptr)
    {
        auto e = std::make_unique<DEngine>(custom ? *custom : config(id));
        recorders[id] = std::make_unique<Recorder>();
        recorders[id]->attach(e.get());
        DEngine *raw = e.get();
        engines[id] = std::move(e);
        return raw;
    }
    DEngine *startNode(NodeId id)
    {
        DEngine *e = make(id);
        if (!e->start())
            return nullptr;
        return e;
    }
    void startAll()
    {
        for (NodeId id : m_peers.keys())
            startNode(id);
    }
    bool allReady() const
    {
        for (const auto &[id, e] : engines)
            if (!e->isReady())
                return false;
        return true;
    }
    // The leader every running node agrees on, or 0.
    NodeId agreedLeader() const
    {
        NodeId leader = 0;
        for (const auto &[id, e] : engines) {
            if (!e->isRunning())
                continue;
            if (e->currentLeader() == 0 || (leader != 0 && e->currentLeader() != leader))
                return 0;
            leader = e->currentLeader();
        }
        return leader;
    }
    DEngine *node(NodeId id) { return engines.at(id).get(); }
    const QMap<NodeId, QString> &peers() const { return m_peers; }

    // Recorders outlive the engines (members are destroyed in reverse order): an engine destroyed
    // while running still emits stopping() and stopped() into its recorder.
    std::map<NodeId, std::unique_ptr<Recorder>> recorders;
    std::map<NodeId, std::unique_ptr<DEngine>> engines;

private:
    QTemporaryDir m_dir;
    QMap<NodeId, QString> m_peers;
};

// An application's replicated state: named counters. "add NAME N" returns the new value; the query
// "NAME" returns the current one. Records the thread it runs on.
class Counters final : public DEngineStateMachine {
public:
    QByteArray apply(quint64 index, const QByteArray &command) override
    {
        thread = QThread::currentThread();
        lastIndex = index;
        const QList<QByteArray> parts = command.split(' ');
        if (parts.size() != 3 || parts[0] != "add")
            return QByteArray("bad command");
        qint64 &v = values[parts[1]];
        v += parts[2].toLongLong();
        ++applied;
        return QByteArray::number(v);
    }
    QByteArray query(const QByteArray &name) override { return QByteArray::number(values.value(name)); }
    QByteArray snapshot(quint64) override
    {
        QByteArray out;
        QDataStream s(&out, QIODevice::WriteOnly);
        s << values << applied;
        return out;
    }
    bool restore(quint64 index, const QByteArray &state) override
    {
        QDataStream s(state);
        QMap<QByteArray, qint64> v;
        int a = 0;
        s >> v >> a;
        if (s.status() != QDataStream::Ok)
            return false;
        values = v;
        applied = a;
        lastIndex = index;
        ++restores;
        return true;
    }

    QMap<QByteArray, qint64> values;
    int restores = 0;
    quint64 lastIndex = 0;
    int applied = 0;
    QThread *thread = nullptr;
};


} // namespace dengine::test
