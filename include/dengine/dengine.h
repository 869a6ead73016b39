// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengine_global.h>
#include <dengine/dengineconfig.h>

#include <QtCore/QByteArray>
#include <QtCore/QDeadlineTimer>
#include <QtCore/QFuture>
#include <QtCore/QList>
#include <QtCore/QMetaType>
#include <QtCore/QObject>
#include <QtCore/QString>

#include <memory>

struct DEngineResult;
struct DEngineOperation;
class DEnginePrivate;
class DEngineStateMachine;

// One node of a replicated, strongly consistent key-value store, embedded in this process.
//
// The node runs on a worker thread of its own. This object lives on the thread that created it
// (the "owner thread") and is a cache of the node's state, updated just before each signal that
// announces a change: a getter called in a slot returns what the signal announced.
//
// Lifecycle (the contract is the project's lifecycle document):
//   start() -> ready() once this node knows its term's leader and has applied that leader's first
//   entry -> ... -> stop() -> stopping() -> stopped(). Writes and Linearizable reads made before
//   ready() wait for a leader (and fail with NoQuorum if none comes within the request timeout);
//   calls made after stopping() fail at once with Stopping.
//
// Threads: call every method on the owner thread. Every signal is emitted on it, queued from the
// worker, so a slow slot never stalls consensus. Nothing blocks except waitForReady() and
// waitForStopped(), which run a local event loop.
class DENGINE_EXPORT DEngine : public QObject {
    Q_OBJECT
    Q_PROPERTY(NodeId currentLeader READ currentLeader NOTIFY leaderChanged)
    Q_PROPERTY(quint64 currentTerm READ currentTerm NOTIFY termChanged)
    Q_PROPERTY(bool isReady READ isReady NOTIFY readyChanged)
    Q_PROPERTY(Role role READ role NOTIFY roleChanged)
    Q_PROPERTY(quint64 commitIndex READ commitIndex NOTIFY commitIndexChanged)
    Q_PROPERTY(quint64 appliedIndex READ appliedIndex NOTIFY appliedIndexChanged)
    Q_PROPERTY(QList<NodeId> members READ members NOTIFY membersChanged)
    Q_PROPERTY(QList<NodeId> voters READ voters NOTIFY membersChanged)
    Q_PROPERTY(QList<NodeId> learners READ learners NOTIFY membersChanged)
    Q_PROPERTY(NodeId nodeId READ nodeId CONSTANT)
    Q_PROPERTY(State state READ state NOTIFY stateChanged)
    Q_PROPERTY(quint16 listeningPort READ listeningPort NOTIFY listeningPortChanged)
    Q_PROPERTY(Error error READ error NOTIFY errorOccurred)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorOccurred)

public:
    // The closed set of outcomes of a key-value call.
    enum class Status {
        Ok,
        NotFound,        // get: the key does not exist
        Stopping,        // the engine is not running, or stopping: the call was not carried out
        Timeout,         // no answer within the request timeout: a write may or may not have happened
        InvalidArgument, // empty or oversized key or value, batch too large: nothing was written
        NoQuorum,        // no leader could be reached in time: the call was not carried out
        Busy,            // too many calls in flight (maxPendingRequests): nothing was done
        StorageFailure,  // the node's storage failed; the engine is stopping
        Refused,         // a membership call that cannot be carried out as asked (the node is not a
                         // member, or is this one; leadership to a learner): nothing changed
    };
    Q_ENUM(Status)

    // How fresh a read must be.
    enum class Consistency {
        Linearizable, // sees every write acknowledged before the call (ReadIndex; any node; no clocks)
        Lease,        // served by the leader from its lease when DEngineConfig::leaseReads is on
                      // (bounded clock drift assumed, see there); otherwise as Linearizable
        Local,        // this node's state right now: at once, possibly behind
    };
    Q_ENUM(Consistency)

    enum class Role { Stopped, Follower, PreCandidate, Candidate, Leader };
    Q_ENUM(Role)

    // Where the object is in its life: Idle (made, never started), Running (from start() until
    // stopping()), Stopping, Stopped (after stopped(); start() may be called again).
    enum class State { Idle, Running, Stopping, Stopped };
    Q_ENUM(State)

    enum class Error {
        NoError,
        ConfigurationError,  // the configuration is invalid (the message names the field)
        AddressInUse,        // the listen address is taken
        DataDirectoryLocked, // another process uses the data directory
        CorruptData,         // the data directory holds damaged data (the message names file and offset)
        StorageFailure,      // a write or fsync failed, or the disk is full
        CertificateError,    // a TLS file is missing, unreadable, expired, not the authority's, or names
                             // another node (the message names the field and the file)
    };
    Q_ENUM(Error)

    explicit DEngine(const DEngineConfig &config, QObject *parent = nullptr);
    // Stops the engine if it runs, as stop() does (a leader hands over first), and waits for the
    // worker, bounded by config.stopTimeoutMs; emits stopping() and stopped() before it returns.
    ~DEngine() override;

    // Starts the node: opens (recovering) the data directory, listens, joins the cluster. Allowed
    // when Idle or Stopped (an engine may be started again after stopped(), on the same data
    // directory). Returns false at once if it is running or stopping, or the configuration is
    // invalid (after emitting errorOccurred). Later failures (port in use, corrupt data, locked
    // directory) arrive as errorOccurred, then stopping() and stopped(). Emits stateChanged and
    // roleChanged (Follower). Does not block on the disk or the network.
    bool start();
    // Begins a graceful shutdown: emits stopping() at once (unless already stopping) and stopped()
    // once the worker has finished, within config.stopTimeoutMs: a leader first hands leadership to
    // its most up-to-date follower. If the worker is stuck (a write or fsync that does not return),
    // stopped() still comes at the deadline, after errorOccurred(StorageFailure), and the worker is
    // left to finish on its own (it holds the data directory until then). Calls in flight fail
    // with Stopping (or Timeout, for writes that reached a leader) unless they complete first.
    // Idempotent; a no-op before start(). Does not block.
    void stop();
    // Blocks (running a local event loop) until ready() or the deadline. Returns isReady().
    bool waitForReady(QDeadlineTimer deadline);
    bool waitForReady(int msecs = 30000) { return waitForReady(QDeadlineTimer(msecs)); }
    // Blocks (running a local event loop) until stopped() or the deadline. True once stopped
    // (also when the engine never started).
    bool waitForStopped(QDeadlineTimer deadline);
    bool waitForStopped(int msecs = 30000) { return waitForStopped(QDeadlineTimer(msecs)); }
    // Blocks (running a local event loop on the calling thread) until `future` finishes or the
    // deadline passes; returns its result, or a Timeout result with a message. Any thread with an
    // event loop; on the owner thread it is the way to wait for one call.
    static DEngineResult waitForResult(const QFuture<DEngineResult> &future, QDeadlineTimer deadline = QDeadlineTimer(30000));

    NodeId nodeId() const;
    State state() const;
    // The last error reported by errorOccurred since start() (NoError and empty before any).
    Error error() const;
    QString errorString() const;
    NodeId currentLeader() const;
    quint64 currentTerm() const;
    bool isReady() const;
    bool isRunning() const; // between start() and stopped()
    Role role() const;
    quint64 commitIndex() const;
    quint64 appliedIndex() const;
    // The configuration this node last applied (the log's, or the snapshot's): every member
    // (voters and learners), the voters, the learners, sorted; membersChanged() announces a change.
    // Before the first start: the configuration's peers, as voters.
    QList<NodeId> members() const;
    QList<NodeId> voters() const;
    QList<NodeId> learners() const;
    // Where a member listens for peers ("host:port"), as the cluster's replicated address book or
    // the configuration says; empty when unknown.
    QString memberAddress(NodeId id) const;
    DEngineConfig config() const;
    // The port the node listens on for peers (useful with port 0 in the listen address); 0 before
    // the worker listens and after stopped(). listeningPortChanged() announces it.
    quint16 listeningPort() const;

    // ---- key-value calls: on the owner thread; never block; every future finishes ----
    // Each result carries a status, the leader this node knew, and the revision (log index) the
    // answer reflects. Futures finish on the owner thread, from its event loop: a continuation
    // (QFuture::then, with or without a context) runs there, never on the Raft thread, so a slow one
    // cannot stall consensus, and it may call this object. So do not block the owner thread in
    // QFuture::waitForFinished() or result() before the future is finished: the future finishes
    // only once the owner thread's event loop runs again. To wait, use waitForResult().
    // Calls and bytes in flight are bounded (maxPendingRequests, maxPendingBytes): past the bound
    // a call fails at once with Busy.

    // Writes succeed once durable (fsynced) on a majority and applied on this node.
    QFuture<DEngineResult> put(const QByteArray &key, const QByteArray &value);
    QFuture<DEngineResult> remove(const QByteArray &key);
    // All operations apply at one log index, or none do.
    QFuture<DEngineResult> batch(const QList<DEngineOperation> &operations);
    QFuture<DEngineResult> get(const QByteArray &key, Consistency consistency = Consistency::Linearizable);
    // Keys starting with `prefix`, in order, at most `limit` (0: no limit of the caller's), and never
    // more than the configuration's maxScanItems and maxScanBytes: when more keys follow, the
    // result's nextKey is the first of them; continue with range(nextKey, prefixEnd(prefix)).
    QFuture<DEngineResult> scan(const QByteArray &prefix, int limit = 0, Consistency consistency = Consistency::Linearizable);
    // Keys in [begin, end) in order (an empty `end`: no upper bound), limited as scan() is;
    // continue with range(nextKey, end).
    QFuture<DEngineResult> range(const QByteArray &begin, const QByteArray &end, int limit = 0,
                                 Consistency consistency = Consistency::Linearizable);
    // The first key after every key that starts with `prefix` (empty: none, the prefix is all 0xff
    // bytes or empty): the end of a range() over that prefix.
    static QByteArray prefixEnd(const QByteArray &prefix);

    // ---- the application's own replicated state (see dengine/denginestatemachine.h) ----

    // Installs the state machine that propose() and query() use; before start() only (false
    // after). Not owned: it must outlive this engine. Every member needs the same one.
    bool setStateMachine(DEngineStateMachine *stateMachine);
    // Replicates `command` (at most maxValueBytes) and applies it on every node; the result's value
    // is what DEngineStateMachine::apply returned on this node. InvalidArgument without a state
    // machine or with an empty or oversized command.
    QFuture<DEngineResult> propose(const QByteArray &command);
    // The result's value is DEngineStateMachine::query(query) at the given consistency.
    QFuture<DEngineResult> query(const QByteArray &query, Consistency consistency = Consistency::Linearizable);

    // ---- membership: on the owner thread; never block; every future finishes ----
    // A change is made through the replicated log, one at a time (Raft's single-server changes,
    // with the fix that a leader changes the configuration only once it has committed an entry of
    // its own term; a change of more than one voter goes through joint consensus). Any member may
    // be asked: a follower forwards the change to the leader, and proposes it again until it is
    // applied here or the call's deadline (requestTimeoutMs) passes. Each call finishes Ok once
    // the configuration it asks for is applied on this node (at once when it already is), so
    // calling again after a Timeout is safe. A call the configuration rules out fails with
    // Refused and a reason; a change in progress is waited out. The revision is the index of the
    // configuration that fulfilled the call.

    // Adds `id` as a learner: it gets the log (or a snapshot) but neither votes nor counts for
    // commits. `address` ("host:port") is where it listens; it goes into the cluster's address
    // book first, so every member can reach it. Start the new node with DEngineConfig::join.
    QFuture<DEngineResult> addLearner(NodeId id, const QString &address);
    // Makes a learner a voter, once it has caught up with the leader's log (within a thousand
    // entries): until then the call waits, within its deadline.
    QFuture<DEngineResult> promote(NodeId id);
    // Removes a voter or learner. A removed leader goes on leading until the change commits, then
    // hands leadership to the most up-to-date voter and steps down; a node that applies its own
    // removal stops (stopping(), stopped()).
    QFuture<DEngineResult> removeMember(NodeId id);
    // Asks the leader (this node) to hand leadership to voter `id`; Ok once this node sees `id`
    // lead. Refused on a follower (the message names the leader to ask).
    QFuture<DEngineResult> transferLeadership(NodeId id);

Q_SIGNALS:
    // The lifecycle document says when each fires; all are queued from the worker, in order.
    void ready();
    void stopping();
    void stopped();
    void leaderChanged(NodeId leader);
    void termChanged(quint64 term);
    void firstCommit(quint64 index);
    void errorOccurred(DEngine::Error error, const QString &message);
    void readyChanged(bool ready);
    void roleChanged(DEngine::Role role);
    void commitIndexChanged(quint64 index);
    void appliedIndexChanged(quint64 index);
    void stateChanged(DEngine::State state);
    void listeningPortChanged(quint16 port);
    // The applied configuration changed (members(), voters(), learners(), memberAddress()).
    void membersChanged();

private:
    friend class DEnginePrivate;
    std::unique_ptr<DEnginePrivate> d;
};

// One operation of a batch. A gadget: usable from QML and in a QVariant.
struct DENGINE_EXPORT DEngineOperation {
    Q_GADGET
    Q_PROPERTY(Kind kind MEMBER kind)
    Q_PROPERTY(QByteArray key MEMBER key)
    Q_PROPERTY(QByteArray value MEMBER value)
public:
    enum class Kind { Put, Remove };
    Q_ENUM(Kind)
    Kind kind = Kind::Put;
    QByteArray key;
    QByteArray value;
    static DEngineOperation put(QByteArray key, QByteArray value) { return {Kind::Put, std::move(key), std::move(value)}; }
    static DEngineOperation remove(QByteArray key) { return {Kind::Remove, std::move(key), {}}; }
};

struct DENGINE_EXPORT DEngineKeyValue {
    Q_GADGET
    Q_PROPERTY(QByteArray key MEMBER key)
    Q_PROPERTY(QByteArray value MEMBER value)
public:
    QByteArray key;
    QByteArray value;
    friend bool operator==(const DEngineKeyValue &, const DEngineKeyValue &) = default;
};

// The outcome of a key-value call. A gadget: its fields are properties (QML, QVariant).
struct DENGINE_EXPORT DEngineResult {
    Q_GADGET
    Q_PROPERTY(DEngine::Status status MEMBER status)
    Q_PROPERTY(QByteArray value MEMBER value)
    Q_PROPERTY(QList<DEngineKeyValue> items MEMBER items)
    Q_PROPERTY(QByteArray nextKey MEMBER nextKey)
    Q_PROPERTY(quint64 revision MEMBER revision)
    Q_PROPERTY(NodeId leaderHint MEMBER leaderHint)
    Q_PROPERTY(QString message MEMBER message)
    Q_PROPERTY(bool ok READ ok)
public:
    DEngine::Status status = DEngine::Status::Ok;
    QByteArray value;             // get
    QList<DEngineKeyValue> items; // scan, range
    QByteArray nextKey;           // scan, range: more keys follow from this one (empty: no more)
    quint64 revision = 0;         // the log index the answer reflects (a write's own index)
    NodeId leaderHint = 0;        // the leader as this node knew it
    QString message;              // why, when not Ok
    bool ok() const { return status == DEngine::Status::Ok; }
};

Q_DECLARE_METATYPE(DEngineResult)
Q_DECLARE_METATYPE(DEngineKeyValue)
Q_DECLARE_METATYPE(DEngineOperation)
