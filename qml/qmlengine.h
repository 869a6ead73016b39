// SPDX-License-Identifier: Apache-2.0
#pragma once

// The engines as QML sees them (module DEngine 1.0): EngineNode (an embedded node, DEngine) and
// ClusterClient (a client of a standalone cluster, DEngineClient), both an EngineBase: the
// lifecycle properties with NOTIFY, the lifecycle signals, and the key-value and membership calls
// returning JavaScript promises that resolve with a KvResult.
//
//   import DEngine
//   ClusterClient {
//       id: cluster
//       endpoints: ["127.0.0.1:8101"]
//       insecure: true
//       autoStart: true
//       onReady: cluster.put("greeting", "hello").then(r => console.log(r.ok, r.revision))
//   }
//
// Thread: the GUI (QML engine's) thread, like every QML object. Nothing here blocks: a call
// returns its promise at once, and the promise settles from the event loop.

#include <dengine/dengine.h>
#include <dengine/dengineclient.h>

#include <QtCore/QObject>
#include <QtCore/QPointer>
#include <QtCore/QSet>
#include <QtCore/QTimer>
#include <QtCore/QVariant>
#include <QtQml/QJSValue>
#include <QtQml/QQmlParserStatus>
#include <QtQml/qqmlregistration.h>

#include <memory>

// One call's result, as JavaScript sees it: keys and values as strings (UTF-8), numbers as numbers.
// A value type (kvResult): a promise resolves with one for every status; `ok` says whether it is Ok.
class KvResult {
    Q_GADGET
    QML_VALUE_TYPE(kvResult)
    Q_PROPERTY(bool ok READ ok CONSTANT)
    Q_PROPERTY(DEngineInterface::Status status MEMBER status CONSTANT)
    Q_PROPERTY(QString statusName READ statusName CONSTANT)
    Q_PROPERTY(QString message MEMBER message CONSTANT)
    Q_PROPERTY(bool found READ found CONSTANT)
    Q_PROPERTY(QString value MEMBER value CONSTANT)
    Q_PROPERTY(QVariantList items MEMBER items CONSTANT)
    Q_PROPERTY(QString nextKey MEMBER nextKey CONSTANT)
    Q_PROPERTY(double revision MEMBER revision CONSTANT)
    // get: the key's history (creating write, last write, writes since created).
    Q_PROPERTY(double createRevision MEMBER createRevision CONSTANT)
    Q_PROPERTY(double modRevision MEMBER modRevision CONSTANT)
    Q_PROPERTY(double version MEMBER version CONSTANT)
    Q_PROPERTY(double leader MEMBER leader CONSTANT)
    // Milliseconds from the call to its result (fractional: measured with a monotonic clock).
    Q_PROPERTY(double elapsedMs MEMBER elapsedMs CONSTANT)
    // txn: its compares held (success ran).
    Q_PROPERTY(bool succeeded MEMBER succeeded CONSTANT)
public:
    KvResult() = default;
    explicit KvResult(const DEngineResult &r);
    bool ok() const { return status == DEngineInterface::Status::Ok; }
    // The key was there (a get or a put that is Ok); false for NotFound and every failure.
    bool found() const { return ok(); }
    QString statusName() const;

    DEngineInterface::Status status = DEngineInterface::Status::Ok;
    QString message;
    QString value;
    QVariantList items; // scan, range: [{key, value, createRevision, modRevision, version}, ...]
    QString nextKey;
    double revision = 0; // a log index: exact up to 2^53
    double createRevision = 0;
    double modRevision = 0;
    double version = 0;
    double leader = 0;
    double elapsedMs = 0;
    bool succeeded = false;
};

// A consistency level by name: "" or "linearizable", "lease", "local" (also "serializable", etcd's
// word for it); false, and *out untouched, for any other.
bool parseConsistency(const QString &name, DEngineInterface::Consistency *out);

// What EngineNode and ClusterClient share. Not creatable: use one of the two.
class EngineBase : public QObject, public QQmlParserStatus {
    Q_OBJECT
    Q_INTERFACES(QQmlParserStatus)
    QML_NAMED_ELEMENT(EngineBase)
    QML_UNCREATABLE("EngineBase is the common part of EngineNode and ClusterClient: create one of those")
    // Start when the component is complete (after its properties are set).
    Q_PROPERTY(bool autoStart READ autoStart WRITE setAutoStart NOTIFY autoStartChanged)
    // Numbers are JavaScript numbers: ids, terms and indexes are exact up to 2^53.
    Q_PROPERTY(double nodeId READ nodeId NOTIFY nodeIdChanged)
    Q_PROPERTY(double leader READ leader NOTIFY leaderChanged)
    Q_PROPERTY(double term READ term NOTIFY termChanged)
    Q_PROPERTY(bool isReady READ isReady NOTIFY readyChanged)
    Q_PROPERTY(DEngineInterface::Role role READ role NOTIFY roleChanged)
    Q_PROPERTY(QString roleName READ roleName NOTIFY roleChanged)
    Q_PROPERTY(double commitIndex READ commitIndex NOTIFY commitIndexChanged)
    Q_PROPERTY(double appliedIndex READ appliedIndex NOTIFY appliedIndexChanged)
    Q_PROPERTY(QVariantList members READ members NOTIFY membersChanged)
    Q_PROPERTY(QVariantList voters READ voters NOTIFY membersChanged)
    Q_PROPERTY(QVariantList learners READ learners NOTIFY membersChanged)
    Q_PROPERTY(DEngineInterface::State state READ state NOTIFY stateChanged)
    Q_PROPERTY(QString stateName READ stateName NOTIFY stateChanged)
    Q_PROPERTY(bool running READ running NOTIFY stateChanged)
    Q_PROPERTY(DEngineInterface::Error error READ error NOTIFY errorChanged)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorChanged)
    // Milliseconds between commitIndexChanged/appliedIndexChanged notifications (default 100): a
    // busy cluster moves them thousands of times a second, and a binding need not re-run for
    // each. The properties themselves always read the current value. 0: every change.
    Q_PROPERTY(int updateInterval READ updateInterval WRITE setUpdateInterval NOTIFY updateIntervalChanged)

public:
    ~EngineBase() override;
    int updateInterval() const { return m_indexThrottle.interval(); }
    void setUpdateInterval(int ms);

    bool autoStart() const { return m_autoStart; }
    void setAutoStart(bool on);
    double nodeId() const;
    double leader() const;
    double term() const;
    bool isReady() const;
    DEngineInterface::Role role() const;
    QString roleName() const;
    double commitIndex() const;
    double appliedIndex() const;
    QVariantList members() const;
    QVariantList voters() const;
    QVariantList learners() const;
    DEngineInterface::State state() const;
    QString stateName() const;
    bool running() const { return state() == DEngineInterface::State::Running || state() == DEngineInterface::State::Stopping; }
    DEngineInterface::Error error() const;
    QString errorString() const;

    // The engine this object drives (null before the first start()): for C++ (the models).
    DEngineInterface *engine() const { return m_engine.get(); }

    // Starts with the properties as they are now. False with errorOccurred when they are not
    // usable; false (a warning in the log) when it runs already. While it is stopping, the start
    // waits for stopped() (stop(), new properties, start(): a reconnect). Never blocks.
    Q_INVOKABLE bool start();
    // A graceful stop (stopping(), then stopped()). Never blocks.
    Q_INVOKABLE void stop();

    // The calls: each returns a Promise that resolves with a kvResult, whatever its status (check
    // `ok`); it never rejects. Keys and values are strings (UTF-8). Before start(): a result with
    // status Stopping.
    // consistency: "linearizable" (the default), "lease" or "local".
    Q_INVOKABLE QJSValue put(const QString &key, const QString &value);
    Q_INVOKABLE QJSValue get(const QString &key, const QString &consistency = {});
    Q_INVOKABLE QJSValue remove(const QString &key);
    // operations: [{op: "put", key, value}, {op: "delete", key}, ...], applied atomically.
    Q_INVOKABLE QJSValue batch(const QVariantList &operations);
    // A transaction: compares [{key, target: "value" | "version" | "create" | "mod", op: "=" |
    // "!=" | "<" | ">", value (for "value") or number}], then `success` when all hold, else
    // `failure` (operations as batch's); the result's `succeeded` says which ran.
    Q_INVOKABLE QJSValue txn(const QVariantList &compares, const QVariantList &success, const QVariantList &failure = {});
    Q_INVOKABLE QJSValue scan(const QString &prefix, int limit = 0, const QString &consistency = {});
    Q_INVOKABLE QJSValue range(const QString &begin, const QString &end, int limit = 0, const QString &consistency = {});
    Q_INVOKABLE QJSValue addLearner(double id, const QString &address);
    Q_INVOKABLE QJSValue promote(double id);
    Q_INVOKABLE QJSValue removeMember(double id);
    Q_INVOKABLE QJSValue transferLeadership(double id);
    // Where a member listens for peers, and where it serves clients ("" when unknown).
    Q_INVOKABLE QString memberAddress(double id) const;
    Q_INVOKABLE QString memberClientAddress(double id) const;

    void classBegin() override {}
    void componentComplete() override;

Q_SIGNALS:
    void autoStartChanged();
    void updateIntervalChanged();
    // The lifecycle signals of DEngineInterface, in its order.
    void ready();
    void stopping();
    void stopped();
    void leaderChanged(double leader);
    void termChanged(double term);
    void firstCommit(double index);
    void errorOccurred(DEngineInterface::Error error, const QString &message);
    void readyChanged();
    void roleChanged();
    void commitIndexChanged();
    void appliedIndexChanged();
    void membersChanged();
    void stateChanged();
    void errorChanged();
    void nodeIdChanged();
    // The engine was made (first start(), or a new one after a change only a new one can take).
    void engineChanged();

protected:
    explicit EngineBase(QObject *parent = nullptr);
    // Makes (or reconfigures) the engine from the properties; null with *why when they are not
    // usable.
    virtual std::unique_ptr<DEngineInterface> makeEngine(QString *why) = 0;
    // Applies the properties to the existing engine when it is stopped; false: make a new one.
    virtual bool reconfigure(DEngineInterface *engine) = 0;
    void reportError(DEngineInterface::Error error, const QString &message);

private:
    void attach(DEngineInterface *engine);
    QJSValue settle(const QFuture<DEngineResult> &future);
    void indexMoved(); // commit or applied index changed: notify now or at the throttle's tick
    void notifyIndexes();

    std::unique_ptr<DEngineInterface> m_engine;
    QJSValue m_deferred; // makes a promise and its resolve function
    QTimer m_indexThrottle;
    bool m_indexDirty = false;
    bool m_autoStart = false;
    bool m_startWhenStopped = false;
    bool m_complete = false;
    DEngineInterface::Error m_ownError = DEngineInterface::Error::NoError;
    QString m_ownErrorString;
};

// An embedded node (DEngine) configured by properties. See DEngineConfig for each one's meaning.
class EngineNode : public EngineBase {
    Q_OBJECT
    QML_NAMED_ELEMENT(EngineNode)
    Q_PROPERTY(double configNodeId READ configNodeId WRITE setConfigNodeId NOTIFY configChanged)
    // {"1": "127.0.0.1:7001", ...}: every founding member, this node included.
    Q_PROPERTY(QVariantMap peers READ peers WRITE setPeers NOTIFY configChanged)
    Q_PROPERTY(QString dataDirectory READ dataDirectory WRITE setDataDirectory NOTIFY configChanged)
    Q_PROPERTY(QString listenAddress READ listenAddress WRITE setListenAddress NOTIFY configChanged)
    Q_PROPERTY(double clusterId READ clusterId WRITE setClusterId NOTIFY configChanged)
    Q_PROPERTY(bool join READ join WRITE setJoin NOTIFY configChanged)
    Q_PROPERTY(bool insecure READ insecure WRITE setInsecure NOTIFY configChanged)
    Q_PROPERTY(QString tlsCaFile READ tlsCaFile WRITE setTlsCaFile NOTIFY configChanged)
    Q_PROPERTY(QString tlsCertificateFile READ tlsCertificateFile WRITE setTlsCertificateFile NOTIFY configChanged)
    Q_PROPERTY(QString tlsKeyFile READ tlsKeyFile WRITE setTlsKeyFile NOTIFY configChanged)
    Q_PROPERTY(int tickIntervalMs READ tickIntervalMs WRITE setTickIntervalMs NOTIFY configChanged)
    Q_PROPERTY(int electionTicks READ electionTicks WRITE setElectionTicks NOTIFY configChanged)
    Q_PROPERTY(bool leaseReads READ leaseReads WRITE setLeaseReads NOTIFY configChanged)
    // A DEngineConfig JSON file (dengined's, without its server section): read at start(), and the
    // properties above set since override it.
    Q_PROPERTY(QString configFile READ configFile WRITE setConfigFile NOTIFY configChanged)

public:
    explicit EngineNode(QObject *parent = nullptr);
    double configNodeId() const { return double(m_config.nodeId); }
    void setConfigNodeId(double id);
    QVariantMap peers() const;
    void setPeers(const QVariantMap &peers);
    QString dataDirectory() const { return m_config.dataDirectory; }
    void setDataDirectory(const QString &v) { set(m_config.dataDirectory, v, Field::DataDirectory); }
    QString listenAddress() const { return m_config.listenAddress; }
    void setListenAddress(const QString &v) { set(m_config.listenAddress, v, Field::ListenAddress); }
    double clusterId() const { return double(m_config.clusterId); }
    void setClusterId(double v) { set(m_config.clusterId, quint64(v), Field::ClusterId); }
    bool join() const { return m_config.join; }
    void setJoin(bool v) { set(m_config.join, v, Field::Join); }
    bool insecure() const { return m_config.insecure; }
    void setInsecure(bool v) { set(m_config.insecure, v, Field::Insecure); }
    QString tlsCaFile() const { return m_config.tlsCaFile; }
    void setTlsCaFile(const QString &v) { set(m_config.tlsCaFile, v, Field::TlsCa); }
    QString tlsCertificateFile() const { return m_config.tlsCertificateFile; }
    void setTlsCertificateFile(const QString &v) { set(m_config.tlsCertificateFile, v, Field::TlsCert); }
    QString tlsKeyFile() const { return m_config.tlsKeyFile; }
    void setTlsKeyFile(const QString &v) { set(m_config.tlsKeyFile, v, Field::TlsKey); }
    int tickIntervalMs() const { return m_config.tickIntervalMs; }
    void setTickIntervalMs(int v) { set(m_config.tickIntervalMs, v, Field::Tick); }
    int electionTicks() const { return m_config.electionTicks; }
    void setElectionTicks(int v) { set(m_config.electionTicks, v, Field::Election); }
    bool leaseReads() const { return m_config.leaseReads; }
    void setLeaseReads(bool v) { set(m_config.leaseReads, v, Field::Lease); }
    QString configFile() const { return m_configFile; }
    void setConfigFile(const QString &path);

Q_SIGNALS:
    void configChanged();

protected:
    std::unique_ptr<DEngineInterface> makeEngine(QString *why) override;
    bool reconfigure(DEngineInterface *engine) override;

private:
    enum class Field { NodeId, Peers, DataDirectory, ListenAddress, ClusterId, Join, Insecure, TlsCa, TlsCert, TlsKey, Tick, Election, Lease };
    template <typename T>
    void set(T &field, const T &value, Field which)
    {
        m_set.insert(int(which));
        if (field == value)
            return;
        field = value;
        Q_EMIT configChanged();
    }
    // The configuration start() uses: the file's, with the properties set here over it.
    bool effectiveConfig(DEngineConfig *out, QString *why) const;

    DEngineConfig m_config;
    QSet<int> m_set; // the fields set as properties (they win over the file)
    QString m_configFile;
};

// A client of a standalone cluster (DEngineClient) configured by properties. See
// DEngineClientConfig for each one's meaning.
class ClusterClient : public EngineBase {
    Q_OBJECT
    QML_NAMED_ELEMENT(ClusterClient)
    Q_PROPERTY(QStringList endpoints READ endpoints WRITE setEndpoints NOTIFY configChanged)
    Q_PROPERTY(double clusterId READ clusterId WRITE setClusterId NOTIFY configChanged)
    Q_PROPERTY(bool insecure READ insecure WRITE setInsecure NOTIFY configChanged)
    Q_PROPERTY(QString tlsCaFile READ tlsCaFile WRITE setTlsCaFile NOTIFY configChanged)
    Q_PROPERTY(QString tlsCertificateFile READ tlsCertificateFile WRITE setTlsCertificateFile NOTIFY configChanged)
    Q_PROPERTY(QString tlsKeyFile READ tlsKeyFile WRITE setTlsKeyFile NOTIFY configChanged)
    Q_PROPERTY(int requestTimeoutMs READ requestTimeoutMs WRITE setRequestTimeoutMs NOTIFY configChanged)
    Q_PROPERTY(bool followLeader READ followLeader WRITE setFollowLeader NOTIFY configChanged)
    // The member the client talks to ("host:port"; "" when none).
    Q_PROPERTY(QString connectedEndpoint READ connectedEndpoint NOTIFY connectedEndpointChanged)

public:
    explicit ClusterClient(QObject *parent = nullptr);
    QStringList endpoints() const { return m_config.endpoints; }
    void setEndpoints(const QStringList &v) { set(m_config.endpoints, v); }
    double clusterId() const { return double(m_config.clusterId); }
    void setClusterId(double v) { set(m_config.clusterId, quint64(v)); }
    bool insecure() const { return m_config.insecure; }
    void setInsecure(bool v) { set(m_config.insecure, v); }
    QString tlsCaFile() const { return m_config.tlsCaFile; }
    void setTlsCaFile(const QString &v) { set(m_config.tlsCaFile, v); }
    QString tlsCertificateFile() const { return m_config.tlsCertificateFile; }
    void setTlsCertificateFile(const QString &v) { set(m_config.tlsCertificateFile, v); }
    QString tlsKeyFile() const { return m_config.tlsKeyFile; }
    void setTlsKeyFile(const QString &v) { set(m_config.tlsKeyFile, v); }
    int requestTimeoutMs() const { return m_config.requestTimeoutMs; }
    void setRequestTimeoutMs(int v) { set(m_config.requestTimeoutMs, v); }
    bool followLeader() const { return m_config.followLeader; }
    void setFollowLeader(bool v) { set(m_config.followLeader, v); }
    QString connectedEndpoint() const;
    DEngineClientConfig clientConfig() const { return m_config; }

Q_SIGNALS:
    void configChanged();
    void connectedEndpointChanged();

protected:
    std::unique_ptr<DEngineInterface> makeEngine(QString *why) override;
    bool reconfigure(DEngineInterface *engine) override;

private:
    template <typename T>
    void set(T &field, const T &value)
    {
        if (field == value)
            return;
        field = value;
        Q_EMIT configChanged();
    }
    DEngineClientConfig m_config;
    bool m_dirty = true; // the properties changed since the client was made
};
