// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengine_global.h>

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
struct DEngineCompare;
struct DEngineWatchEvent;
class DEngineWatcher;
class DEngineWatcherPrivate;

// What DEngine (a node embedded in this process, dengine/dengine.h) and DEngineClient (a client of
// a standalone cluster, dengine/dengineclient.h) have in common: the lifecycle signals and the
// properties a status view binds to, and the key-value and membership calls. Code written against
// this class (a tool, a status view, the QML module, an application's data layer) works with
// either; tests run one behavioural body against both.
//
// The contract (the lifecycle document) is the same for both; where they differ, the subclass says
// so. In short: start() -> ready() once the object knows its term's leader and that leader's first
// entry has been applied (on this node; for a client, on the member it talks to) -> ... -> stop()
// -> stopping() -> stopped(). Every transition is delivered in order, on the owner thread (the
// thread the object lives on); a getter called in a slot returns what the signal announced.
//
// Threads: call every method on the owner thread. Nothing blocks except waitForReady(),
// waitForStopped() and waitForResult(), which run a local event loop.
class DENGINE_EXPORT DEngineInterface : public QObject {
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
    Q_PROPERTY(NodeId nodeId READ nodeId NOTIFY nodeIdChanged)
    Q_PROPERTY(State state READ state NOTIFY stateChanged)
    Q_PROPERTY(Error error READ error NOTIFY errorOccurred)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorOccurred)

public:
    // The closed set of outcomes of a call.
    enum class Status {
        Ok,
        NotFound,        // get: the key does not exist
        Stopping,        // the engine (or client) is not running, or stopping: the call was not carried out
        Timeout,         // no answer within the request timeout: a write may or may not have happened
        InvalidArgument, // empty or oversized key or value, batch too large: nothing was written
        NoQuorum,        // no leader (for a client: no member) could be reached in time: the call was
                         // not carried out
        Busy,            // too many calls in flight (maxPendingRequests): nothing was done
        StorageFailure,  // the node's storage failed; the engine is stopping
        Refused,         // a membership call that cannot be carried out as asked (the node is not a
                         // member, or is this one; leadership to a learner), or a txn comparing
                         // versions or revisions before the cluster established key histories (a
                         // leader does at once; try again): nothing changed
        Compacted,       // a watch: the revision it starts (or resumes) from is older than the history
                         // the node keeps (DEngineConfig::watchHistoryRevisions): read the state
                         // again and watch from there
    };
    Q_ENUM(Status)

    // How fresh a read must be.
    enum class Consistency {
        Linearizable, // sees every write acknowledged before the call (ReadIndex; any node; no clocks)
        Lease,        // served by the leader from its lease when DEngineConfig::leaseReads is on
                      // (bounded clock drift assumed, see there); otherwise as Linearizable
        Local,        // the answering node's state right now: at once, possibly behind
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
        ConnectionError,     // a client: no endpoint answered, or one refused the client (the message
                             // says which and why); the client goes on trying
    };
    Q_ENUM(Error)

    // Starts: an engine opens its data directory and joins its cluster; a client connects. Allowed
    // when Idle or Stopped; false at once if running or stopping, or the configuration is invalid
    // (after errorOccurred). Later failures arrive as errorOccurred. Does not block.
    virtual bool start() = 0;
    // Begins a graceful shutdown: stopping() at once (unless already stopping), stopped() once
    // finished, within a bounded time. Calls in flight finish with a status, none hangs.
    // Idempotent; a no-op before start(). Does not block.
    virtual void stop() = 0;
    // Blocks (running a local event loop) until ready() or the deadline. Returns isReady().
    bool waitForReady(QDeadlineTimer deadline);
    bool waitForReady(int msecs = 30000) { return waitForReady(QDeadlineTimer(msecs)); }
    // Blocks (running a local event loop) until stopped() or the deadline. True once stopped
    // (also when never started).
    bool waitForStopped(QDeadlineTimer deadline);
    bool waitForStopped(int msecs = 30000) { return waitForStopped(QDeadlineTimer(msecs)); }
    // Blocks (running a local event loop on the calling thread) until `future` finishes or the
    // deadline passes; returns its result, or a Timeout result with a message. Any thread with an
    // event loop; on the owner thread it is the way to wait for one call.
    static DEngineResult waitForResult(const QFuture<DEngineResult> &future, QDeadlineTimer deadline = QDeadlineTimer(30000));
    // The first key after every key that starts with `prefix` (empty: none, the prefix is all 0xff
    // bytes or empty): the end of a range() over that prefix.
    static QByteArray prefixEnd(const QByteArray &prefix);

    // The node this object is (an engine), or the member it talks to (a client; 0 when none).
    virtual NodeId nodeId() const = 0;
    virtual State state() const = 0;
    bool isRunning() const { return state() == State::Running || state() == State::Stopping; } // between start() and stopped()
    // The last error reported by errorOccurred since start() (NoError and empty before any).
    virtual Error error() const = 0;
    virtual QString errorString() const = 0;
    virtual NodeId currentLeader() const = 0;
    virtual quint64 currentTerm() const = 0;
    virtual bool isReady() const = 0;
    // The role of this node (a client: of the member it talks to; Stopped when none).
    virtual Role role() const = 0;
    // This node's (a client: its member's) commit and applied indexes. An engine's getters give
    // the latest, and commitIndexChanged()/appliedIndexChanged() come at most once in 10 ms (the
    // last move is always told, and before any lifecycle signal that follows it); a client's move
    // a few times a second.
    virtual quint64 commitIndex() const = 0;
    virtual quint64 appliedIndex() const = 0;
    // The applied configuration: every member (voters and learners: the two below together), the
    // voters, the learners, sorted; membersChanged() announces a change.
    QList<NodeId> members() const;
    virtual QList<NodeId> voters() const = 0;
    virtual QList<NodeId> learners() const = 0;
    // Where a member listens for peers ("host:port"), from the cluster's replicated address book;
    // empty when unknown.
    virtual QString memberAddress(NodeId id) const = 0;
    // Where a member serves clients ("host:port": a dengined's client port), from the replicated
    // address book; empty when unknown or when it serves none (an embedded node).
    virtual QString memberClientAddress(NodeId id) const = 0;

    // ---- key-value calls: on the owner thread; never block; every future finishes ----
    // Each result carries a status, the leader the answering node knew, and the revision (log index)
    // the answer reflects. Futures finish on the owner thread, from its event loop: a continuation
    // (QFuture::then, with or without a context) runs there, and may call this object. Do not block
    // the owner thread in QFuture::waitForFinished() or result() before the future is finished: use
    // waitForResult(). Calls in flight are bounded: past the bound a call fails at once with Busy.

    // Writes succeed once durable (fsynced) on a majority and applied on the node that took the call.
    virtual QFuture<DEngineResult> put(const QByteArray &key, const QByteArray &value) = 0;
    virtual QFuture<DEngineResult> remove(const QByteArray &key) = 0;
    // All operations apply at one log index, or none do.
    virtual QFuture<DEngineResult> batch(const QList<DEngineOperation> &operations) = 0;
    // A transaction, in one log entry: when every compare holds (against the state just before
    // it), `success` applies, otherwise `failure` does; the result's `succeeded` says which. Compare
    // and swap is txn({DEngineCompare::modRevisionIs(k, seen)}, {DEngineOperation::put(k, v)}).
    // Limits as batch(): the compares' keys and values count with the operations'.
    virtual QFuture<DEngineResult> txn(const QList<DEngineCompare> &compares, const QList<DEngineOperation> &success,
                                       const QList<DEngineOperation> &failure = {}) = 0;
    virtual QFuture<DEngineResult> get(const QByteArray &key, Consistency consistency = Consistency::Linearizable) = 0;
    // Keys starting with `prefix`, in order, at most `limit` (0: no limit of the caller's), and never
    // more than the node's maxScanItems and maxScanBytes: when more keys follow, the result's
    // nextKey is the first of them; continue with range(nextKey, prefixEnd(prefix)).
    virtual QFuture<DEngineResult> scan(const QByteArray &prefix, int limit = 0, Consistency consistency = Consistency::Linearizable) = 0;
    // Keys in [begin, end) in order (an empty `end`: no upper bound), limited as scan() is;
    // continue with range(nextKey, end).
    virtual QFuture<DEngineResult> range(const QByteArray &begin, const QByteArray &end, int limit = 0,
                                         Consistency consistency = Consistency::Linearizable) = 0;

    // ---- watches and leases: on the owner thread; never block ----

    // Watches the keys in [begin, end) (an empty `end`: no upper bound) from `fromRevision` on (0:
    // from the next change the answering node applies). Every put and delete at a revision of at
    // least fromRevision is delivered once, in log order, a revision's events together, as
    // DEngineWatcher::eventsReceived on the owner thread; nothing is skipped: a watch that cannot
    // go on without a gap (its revision fell out of the history the node keeps, while its
    // consumer was too slow or it resumed too late) finishes with Compacted instead. The watcher
    // belongs to `parent` (or the caller, when null); deleting it cancels the watch.
    // To follow a range without missing a change: read it (its result's revision is R), then watch
    // from R + 1. A client resumes its watches on the next member after a failover, from the
    // revision each had reached; an engine's end with stopping().
    virtual DEngineWatcher *watch(const QByteArray &begin, const QByteArray &end, quint64 fromRevision = 0, QObject *parent = nullptr) = 0;
    // watch() over every key that starts with `prefix` (an empty prefix: every key).
    DEngineWatcher *watchPrefix(const QByteArray &prefix, quint64 fromRevision = 0, QObject *parent = nullptr);

    // Grants a lease of `ttlMs` milliseconds (at least 1000; at most 30 days): the result's `lease`
    // is its id, `ttlMs` its TTL. Attach keys to it with DEngineOperation::put(key, value, lease).
    // The leader times it, from the grant or the last keepAliveLease(); when it runs out, the
    // leader writes its expiry into the log and every member deletes its keys at that entry (a
    // follower's clock decides nothing). A new leader gives every lease its whole TTL again from
    // when it took over, so a failover never shortens a lease; leaseTimeToLive() states what is left.
    virtual QFuture<DEngineResult> grantLease(qint64 ttlMs) = 0;
    // Renews the lease (a log entry): its whole TTL again, from when the leader applies it. NotFound
    // when it expired or was revoked.
    virtual QFuture<DEngineResult> keepAliveLease(quint64 lease) = 0;
    // Deletes the lease and every key attached to it, at one revision. NotFound when it is gone.
    virtual QFuture<DEngineResult> revokeLease(quint64 lease) = 0;
    // The lease's TTL (`ttlMs`), the keys attached (`items`, without values) and, when the answering
    // node leads, the time left (`remainingMs`; -1 elsewhere, with the leader in leaderHint: ask
    // it). A linearizable read. NotFound when the lease is gone.
    virtual QFuture<DEngineResult> leaseTimeToLive(quint64 lease) = 0;

    // ---- membership (DEngine documents the rules): on the owner thread; never block ----
    virtual QFuture<DEngineResult> addLearner(NodeId id, const QString &address) = 0;
    virtual QFuture<DEngineResult> promote(NodeId id) = 0;
    virtual QFuture<DEngineResult> removeMember(NodeId id) = 0;
    virtual QFuture<DEngineResult> transferLeadership(NodeId id) = 0;

Q_SIGNALS:
    // The lifecycle document says when each fires; all come on the owner thread, in order.
    void ready();
    void stopping();
    void stopped();
    void leaderChanged(NodeId leader);
    void termChanged(quint64 term);
    // `index`: the log index of the term leader's first entry (also after a restart from a
    // snapshot that covers it: the snapshot records it).
    void firstCommit(quint64 index);
    void errorOccurred(DEngineInterface::Error error, const QString &message);
    void readyChanged(bool ready);
    void roleChanged(DEngineInterface::Role role);
    void commitIndexChanged(quint64 index);
    void appliedIndexChanged(quint64 index);
    void stateChanged(DEngineInterface::State state);
    // The applied configuration changed (members(), voters(), learners(), memberAddress(),
    // memberClientAddress()).
    void membersChanged();
    // nodeId() changed: a client moved to another member (an engine's never changes).
    void nodeIdChanged(NodeId nodeId);

protected:
    explicit DEngineInterface(QObject *parent = nullptr);
};

// One operation of a batch. A gadget: usable from QML and in a QVariant.
// A put may attach the key to a lease (grantLease()): the key goes when the lease does. A
// sequential put names a prefix: the key written is the prefix followed by the write's revision
// and its place among the command's sequential puts (sequentialKey()), so keys written later sort
// after keys written earlier: a queue in commit order, with no counter to contend on.
struct DENGINE_EXPORT DEngineOperation {
    Q_GADGET
    Q_PROPERTY(Kind kind MEMBER kind)
    Q_PROPERTY(QByteArray key MEMBER key)
    Q_PROPERTY(QByteArray value MEMBER value)
    Q_PROPERTY(quint64 lease MEMBER lease)
    Q_PROPERTY(bool sequential MEMBER sequential)
public:
    enum class Kind { Put, Remove };
    Q_ENUM(Kind)
    Kind kind = Kind::Put;
    QByteArray key;
    QByteArray value;
    quint64 lease = 0;       // Put: 0 for none
    bool sequential = false; // Put: `key` is a prefix
    static DEngineOperation put(QByteArray key, QByteArray value, quint64 lease = 0) { return {Kind::Put, std::move(key), std::move(value), lease, false}; }
    static DEngineOperation putSequential(QByteArray prefix, QByteArray value, quint64 lease = 0)
    {
        return {Kind::Put, std::move(prefix), std::move(value), lease, true};
    }
    static DEngineOperation remove(QByteArray key) { return {Kind::Remove, std::move(key), {}, 0, false}; }
    // The key a sequential put of `prefix` wrote at `revision` (the write's result's revision),
    // `ordinal` being its place among the command's sequential puts (0 for the first): the prefix,
    // the revision in 20 digits, '-', the ordinal in 4 digits.
    static QByteArray sequentialKey(const QByteArray &prefix, quint64 revision, int ordinal = 0);
};

// A condition of a transaction on a key's value or history (see DEngineKeyValue). A missing key has
// version and revisions 0 and no value: a compare of its value never holds, and "absent" is
// versionIs(key, 0). A gadget: usable from QML and in a QVariant.
struct DENGINE_EXPORT DEngineCompare {
    Q_GADGET
    Q_PROPERTY(Target target MEMBER target)
    Q_PROPERTY(Op op MEMBER op)
    Q_PROPERTY(QByteArray key MEMBER key)
    Q_PROPERTY(QByteArray value MEMBER value)
    Q_PROPERTY(quint64 number MEMBER number)
public:
    enum class Target { Value, Version, CreateRevision, ModRevision };
    Q_ENUM(Target)
    enum class Op { Equal, NotEqual, Less, Greater };
    Q_ENUM(Op)
    Target target = Target::Value;
    Op op = Op::Equal;
    QByteArray key;
    QByteArray value; // Target::Value
    quint64 number = 0; // the other targets
    static DEngineCompare valueIs(QByteArray key, QByteArray value) { return {Target::Value, Op::Equal, std::move(key), std::move(value), 0}; }
    static DEngineCompare versionIs(QByteArray key, quint64 version) { return {Target::Version, Op::Equal, std::move(key), {}, version}; }
    static DEngineCompare modRevisionIs(QByteArray key, quint64 revision) { return {Target::ModRevision, Op::Equal, std::move(key), {}, revision}; }
    static DEngineCompare absent(QByteArray key) { return versionIs(std::move(key), 0); }
    static DEngineCompare exists(QByteArray key) { return {Target::Version, Op::Greater, std::move(key), {}, 0}; }
    friend bool operator==(const DEngineCompare &, const DEngineCompare &) = default;
};

// A key and its value, with the key's history in revisions (log indexes, the same on every
// member): the write that created it (since it last did not exist), the write that last changed it,
// and how many writes it has had since it was created (1 after the first).
struct DENGINE_EXPORT DEngineKeyValue {
    Q_GADGET
    Q_PROPERTY(QByteArray key MEMBER key)
    Q_PROPERTY(QByteArray value MEMBER value)
    Q_PROPERTY(quint64 createRevision MEMBER createRevision)
    Q_PROPERTY(quint64 modRevision MEMBER modRevision)
    Q_PROPERTY(quint64 version MEMBER version)
public:
    QByteArray key;
    QByteArray value;
    quint64 createRevision = 0;
    quint64 modRevision = 0;
    quint64 version = 0;
    friend bool operator==(const DEngineKeyValue &, const DEngineKeyValue &) = default;
};

// The outcome of a call. A gadget: its fields are properties (QML, QVariant).
struct DENGINE_EXPORT DEngineResult {
    Q_GADGET
    Q_PROPERTY(DEngineInterface::Status status MEMBER status)
    Q_PROPERTY(QByteArray value MEMBER value)
    Q_PROPERTY(QList<DEngineKeyValue> items MEMBER items)
    Q_PROPERTY(QByteArray nextKey MEMBER nextKey)
    Q_PROPERTY(quint64 revision MEMBER revision)
    Q_PROPERTY(quint64 createRevision MEMBER createRevision)
    Q_PROPERTY(quint64 modRevision MEMBER modRevision)
    Q_PROPERTY(quint64 version MEMBER version)
    Q_PROPERTY(NodeId leaderHint MEMBER leaderHint)
    Q_PROPERTY(QString message MEMBER message)
    Q_PROPERTY(bool succeeded MEMBER succeeded)
    Q_PROPERTY(quint64 lease MEMBER lease)
    Q_PROPERTY(qint64 ttlMs MEMBER ttlMs)
    Q_PROPERTY(qint64 remainingMs MEMBER remainingMs)
    Q_PROPERTY(bool ok READ ok)
public:
    DEngineInterface::Status status = DEngineInterface::Status::Ok;
    QByteArray value;             // get
    QList<DEngineKeyValue> items; // scan, range
    QByteArray nextKey;           // scan, range: more keys follow from this one (empty: no more)
    quint64 revision = 0;         // the log index the answer reflects (a write's own index)
    quint64 createRevision = 0;   // get: the key's history (DEngineKeyValue says what each is)
    quint64 modRevision = 0;
    quint64 version = 0;
    NodeId leaderHint = 0;        // the leader as the answering node knew it
    QString message;              // why, when not Ok
    bool succeeded = false;       // txn: its compares held (`success` ran); false: `failure` ran
    quint64 lease = 0;            // grantLease: the new lease's id (the other lease calls: theirs)
    qint64 ttlMs = 0;             // the lease calls: the lease's TTL
    qint64 remainingMs = -1;      // leaseTimeToLive on the leader: what is left of it (-1: unknown here)
    bool ok() const { return status == DEngineInterface::Status::Ok; }
};

// One change a watch delivers: a put (the key's value and history after it, and its lease) or a
// delete (value, history and lease empty), at `revision`, the log index of the write.
struct DENGINE_EXPORT DEngineWatchEvent {
    Q_GADGET
    Q_PROPERTY(Type type MEMBER type)
    Q_PROPERTY(QByteArray key MEMBER key)
    Q_PROPERTY(QByteArray value MEMBER value)
    Q_PROPERTY(quint64 revision MEMBER revision)
    Q_PROPERTY(quint64 createRevision MEMBER createRevision)
    Q_PROPERTY(quint64 version MEMBER version)
    Q_PROPERTY(quint64 lease MEMBER lease)
public:
    enum class Type { Put, Delete };
    Q_ENUM(Type)
    Type type = Type::Put;
    QByteArray key;
    QByteArray value;
    quint64 revision = 0;
    quint64 createRevision = 0;
    quint64 version = 0;
    quint64 lease = 0;
    friend bool operator==(const DEngineWatchEvent &, const DEngineWatchEvent &) = default;
};

// A watch (DEngineInterface::watch()): delivers the changes to its keys in log order, on the thread
// it lives on (the engine's or client's owner thread). Made by watch(); delete it (or cancel()) to
// stop it.
//
// Memory is bounded per watcher: the node sends a watcher at most a few MiB it has not delivered
// yet. A consumer that falls further behind is served from the node's history as it catches up,
// and finishes with Compacted if that history no longer reaches back to it: never a silent gap.
class DENGINE_EXPORT DEngineWatcher : public QObject {
    Q_OBJECT
    Q_PROPERTY(quint64 revision READ revision NOTIFY progressed)
    Q_PROPERTY(bool active READ isActive NOTIFY finished)
    Q_PROPERTY(bool paused READ isPaused WRITE setPaused)
public:
    ~DEngineWatcher() override;
    QByteArray begin() const;
    QByteArray end() const;
    // Every change up to this revision was delivered (its start revision - 1 before any): resume
    // from revision() + 1. It moves with each delivery and, for a watch whose keys did not change,
    // about once a second as the node applies other writes.
    quint64 revision() const;
    // Until finished().
    bool isActive() const;
    // Why it finished: Ok (cancelled), Compacted, Stopping (the engine stopped or the client was
    // stopped), InvalidArgument; with a message.
    DEngineInterface::Status status() const;
    QString message() const;
    // Stops the watch: no signal after this call. Idempotent.
    void cancel();
    // While paused, deliveries stop once the few MiB in flight have arrived, and the node keeps
    // the watch's place (a consumer that cannot keep up, such as a server whose client reads
    // slowly). A watch paused for long may finish with Compacted.
    void setPaused(bool paused);
    bool isPaused() const;

Q_SIGNALS:
    // The next changes, in log order; whole revisions.
    void eventsReceived(const QList<DEngineWatchEvent> &events);
    // revision() moved.
    void progressed(quint64 revision);
    // The watch ended (status(), message()); nothing follows. Not emitted after cancel().
    void finished(DEngineInterface::Status status, const QString &message);

private:
    friend class DEngineWatcherPrivate;
    explicit DEngineWatcher(QObject *parent);
    std::unique_ptr<DEngineWatcherPrivate> d;
};

Q_DECLARE_METATYPE(DEngineResult)
Q_DECLARE_METATYPE(DEngineWatchEvent)
Q_DECLARE_METATYPE(DEngineKeyValue)
Q_DECLARE_METATYPE(DEngineOperation)
Q_DECLARE_METATYPE(DEngineCompare)
