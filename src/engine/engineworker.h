// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengine.h>
#include <dengine/denginestatemachine.h>

#include "engine/tickclock.h"
#include "kv/eventlog.h"
#include "kv/kvstore.h"
#include "raft/rawnode.h"

#include <QtCore/QElapsedTimer>
#include <QtCore/QObject>
#include <QtCore/QPromise>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

class QTimer;

namespace dengine::storage {
class Wal;
class WalStorage;
class LogWriter;
class SnapshotStore;
} // namespace dengine::storage

namespace dengine::engine {

class PeerTransport;
class WatchSink;

// What the worker publishes for DEngine::metrics(), every 100 ms, from its thread.
struct MetricsBox {
    std::mutex mutex;
    DEngineMetrics published; // the worker's part: log writer, snapshots, transport
};
class CoreLogger;

// Carries results from the worker to the owner thread, where the futures finish: a continuation
// attached without a context (QFuture::then(f)) runs on the owner thread, never on the Raft
// thread, and may call the engine. `target` is a QObject on the owner thread; `done` runs there
// before each future finishes (the owner's count of calls and bytes in flight). Once detached (the
// engine is being destroyed and has delivered what was queued), results finish where they are.
//
// Threads: deliver() from any thread; detach() on the owner thread.
class ResultCourier : public std::enable_shared_from_this<ResultCourier> {
public:
    using Done = std::function<void(qint64 bytes)>;
    ResultCourier(QObject *target, Done done) : m_target(target), m_done(std::move(done)) {}

    // `write`: the call changes state (counted in committed or failed, for DEngine::metrics()).
    void deliver(std::shared_ptr<QPromise<DEngineResult>> promise, DEngineResult result, qint64 bytes, bool write);
    // Finishes what was delivered and not finished yet, then lets later results finish where
    // they are.
    void detach();
    std::atomic<quint64> writesCommitted{0};
    std::atomic<quint64> writesFailed{0};

private:
    struct Delivery {
        std::shared_ptr<QPromise<DEngineResult>> promise;
        DEngineResult result;
        qint64 bytes = 0;
    };
    // Owner thread: finishes the queued results, oldest first, until none is left.
    void drain();
    void finish(Delivery &d);

    std::mutex m_mutex;
    bool m_open = true;            // guarded by m_mutex; false once detached
    std::deque<Delivery> m_queue;  // guarded by m_mutex; one posted drain() while not empty
    std::mutex m_targetMutex;      // taken after m_mutex is released, never with it
    QObject *m_target;             // guarded by m_targetMutex
    Done m_done;                   // owner thread only
};

// One key-value call on its way through the worker.
struct EngineRequest {
    enum class Kind { Write, Get, Scan, Range, Query, Membership, LeaseInfo };
    enum class Change { AddLearner, Promote, Remove, TransferLeadership };
    Kind kind = Kind::Write;
    std::vector<kv::Operation> operations;      // Write (or, when empty, `application`); a txn's success
    bool txn = false;                           // Write: a transaction (compares, operations, failure)
    std::vector<kv::Compare> compares;
    std::vector<kv::Operation> failure;
    std::optional<std::string> application;     // Write: a command for the application's state machine
    std::optional<kv::LeaseCommand> lease;      // Write: a lease command; LeaseInfo: its id
    std::string key;                            // Get: the key; Scan: the prefix; Range: begin; Query: the query
    std::string end;                            // Range
    std::size_t limit = 0;                      // Scan, Range
    Change change = Change::AddLearner;         // Membership: what to do
    raft::NodeId node = 0;                      // ... to which node
    std::string address;                        // ... AddLearner: where it listens
    DEngine::Consistency consistency = DEngine::Consistency::Linearizable;
    std::shared_ptr<QPromise<DEngineResult>> promise;
    std::shared_ptr<ResultCourier> courier;
    qint64 bytes = 0; // what the call counts against maxPendingBytes

    // A write or a membership change: once handed to a leader, its outcome is unknown until applied.
    bool changesState() const { return kind == Kind::Write || kind == Kind::Membership; }
    // Finishes the call (once): its future finishes on the owner thread.
    void complete(DEngineResult result) { courier->deliver(promise, std::move(result), bytes, changesState()); }
};

// The node itself, on the engine's worker thread: owns the Raft core, the write-ahead log and its
// group-commit writer, the peer transport and the key-value state machine, and runs the Ready loop
// (persist through the writer, send, apply, answer) once per event-loop turn in which anything
// happened, so that everything arriving in one turn is proposed, written and sent together.
//
// Threads: lives on the worker thread; every slot runs there. Signals go to DEnginePrivate, queued.
class EngineWorker : public QObject {
    Q_OBJECT
public:
    // `stateMachine` (may be null) is the application's; not owned.
    EngineWorker(const DEngineConfig &config, DEngineStateMachine *stateMachine, std::shared_ptr<MetricsBox> metrics = {});
    ~EngineWorker() override;

public Q_SLOTS:
    // Opens the log, listens, starts ticking. On failure emits failed() then finished().
    void start();
    // stop(): a leader first hands leadership over (bounded by half the stop timeout), then
    // shutdown(). Idempotent.
    void stopGracefully();
    // Fails what is in flight with Stopping, closes the transport, finishes the log's writes, closes
    // every file, then emits finished(). Idempotent.
    void shutdown();
    // Takes one call; its promise is finished exactly once, here or later.
    void submit(std::shared_ptr<EngineRequest> request);
    // Starts a watch of [begin, end) from `from` (0: the next applied entry); its deliveries go
    // through `sink` until it is cancelled there, or finished (Compacted, Stopping).
    void addWatch(std::shared_ptr<WatchSink> sink, std::string begin, std::string end, quint64 from);

public:
    // Any thread: the latest commit and applied index, and clears the pending indexesChanged().
    std::pair<quint64, quint64> takeIndexes();
    // Any thread: the latest commit and applied index (the pending signal stays).
    std::pair<quint64, quint64> peekIndexes() const;
    // Any thread: queues a call for submit(). Calls queued while the worker is busy are taken
    // together, with one wake-up of the worker thread for all of them.
    void enqueue(std::shared_ptr<EngineRequest> request);

Q_SIGNALS:
    void listening(quint16 port);
    void failed(DEngine::Error error, const QString &message);
    void softStateChanged(NodeId leader, DEngine::Role role);
    void termChanged(quint64 term);
    void readyReached();
    void firstCommit(quint64 index);
    // The commit or applied index moved; read them with takeIndexes(). One signal is pending at
    // most: the owner reads the latest values when it handles it (they only grow), so a busy
    // cluster does not queue an event per Ready for the owner thread. And one in IndexesNotifyMs
    // at most (the last move is always told), but before any other signal of this worker: a slot
    // for a transition finds the indexes of before it.
    void indexesChanged();
    // The applied configuration or the address book changed.
    void membersChanged(const QList<NodeId> &voters, const QList<NodeId> &learners, const QMap<NodeId, QString> &addresses,
                        const QMap<NodeId, QString> &clientAddresses);
    void finished();

private:
    struct Pending {
        std::shared_ptr<EngineRequest> request;
        std::uint64_t id = 0;
        qint64 deadline = 0;
        bool proposed = false;       // Write: handed to the core (its fate is unknown until applied)
        qint64 proposedAt = 0;       // ... at this time (ms on m_clock)
        raft::NodeId proposedTo = 0; // ... when the core's leader was this node
        raft::Term proposedTerm = 0; // ... in this term
        bool gotIndex = false;       // read: a read index was assigned
        raft::Index readIndex = 0;
        QString waitingFor;          // Membership: what the call waits for before it can propose
    };
    struct WriteInFlight {
        std::uint64_t batchId = 0; // the LogWriter's
        std::uint64_t writeId = 0; // the core's (Ready::writeId), acknowledged once the batch is durable
        std::vector<raft::Message> afterPersist;
    };

    void scheduleProcess();
    void drainInbox();
    void process();
    void onTick();
    void onMessages(std::vector<raft::Message> &&messages);
    void onDurable(std::uint64_t upToBatchId);
    // A write is durable: tells the core; false when the core failed (reported, the node is down).
    bool acknowledgeWrite(std::uint64_t writeId);
    // Sends now, not at the end of the event-loop pass: something on the commit path waits on
    // these (appends, acknowledgements of durable writes). Nothing to send: nothing.
    void sendAtOnce(std::vector<raft::Message> messages);
    void onStorageError(const QString &message);
    // The core threw: it found its storage or its peers breaking the contract it relies on.
    void onCoreFailure(const char *what);
    void fatal(DEngine::Error error, const QString &message);
    // Gives the core the ticks that are due by the tick clock (see tickclock.h): before a message is
    // stepped and before a lease decision, so the core's time is never behind real time there.
    void advanceTicks();
    // Keeps the entries of a forwarded proposal whose commands name its sender as their origin;
    // false when none is left.
    bool stampedByItsSender(raft::Message &m);

    // Snapshots (engineworker_snapshots.cpp).
    // At start: the newest intact snapshot the log reaches back to, restored; false after fatal().
    bool loadSnapshotAtStart(raft::Index &applied);
    // Replaces the key-value and application state with a snapshot's data; false with the reason.
    bool restoreState(const raft::Snapshot &snapshot, QString &why);
    // Takes a snapshot when enough was applied since the last one (or `now`) and none is being written.
    void maybeSnapshot(bool now = false);
    void onSnapshotWritten(const raft::SnapshotMetadata &metadata, const QString &error, quint64 fileBytes, qint64 elapsedMs);
    // A Ready's snapshot from the leader: adopts the received file and restores it; false after fatal().
    bool installSnapshot(const raft::Snapshot &snapshot);
    // A snapshot file this node sends turned out damaged: set it aside and take a fresh one.
    void onOwnSnapshotDamaged(const raft::SnapshotMetadata &metadata, const QString &why);
    void stopSnapshotThread();

    // Membership (engineworker_membership.cpp).
    // Hands membership calls on towards their goal: the address book, then the change (again
    // after a while when it did not come through), and finishes those whose goal was applied.
    void driveMembership();
    // Ok when the call's goal holds in the applied configuration; Refused when it never can from
    // here (with the reason); otherwise nothing.
    std::optional<DEngineResult> membershipOutcome(const Pending &p) const;
    // The transport's members and addresses from the configuration in the log, the address book
    // and the configuration file, when any of them changed; true when it emitted membersChanged()
    // (the address book changed).
    bool refreshPeers();
    void emitMembers();
    // A configuration entry was applied (or a snapshot installed with one).
    void onConfigurationApplied(const raft::ConfState &cs, raft::Index index);
    // Writes the addresses of members the address book lacks (a leader, once its term started).
    void recordMissingAddresses();
    // A member says it applied a configuration without this node (see PeerTransport).
    void onRemovalNotice(raft::NodeId from, std::uint64_t configurationIndex);
    // A forwarded configuration change: keeps it unless it promotes a learner that is behind.
    bool acceptForwardedConfChange(const raft::Entry &e, raft::NodeId from);
    // On the leader: whether a learner is close enough to the log's end to be made a voter.
    bool caughtUp(raft::NodeId id) const;
    // Proposes a command no call waits for (an address book's), under this node's session.
    void proposeInternal(kv::Command cmd);
    void proposeAddresses(std::vector<std::pair<raft::NodeId, std::string>> addresses);
    // Writes config.clientAddress into the replicated book once this node is a ready member (again
    // after an election timeout while it is not there), and emits membersChanged when the book
    // changed.
    void advertiseClientAddress();
    // A leader whose applied state has no established key histories proposes their start, once a term.
    void establishHistory();

    // Watches (engineworker_watch.cpp): hands each watch the changes it has not had, within its
    // credit; with `progress`, also tells idle ones how far they are (about once a second).
    void serveWatches(bool progress);
    void finishWatches(DEngine::Status status, const QString &why);
    // Leases (engineworker_watch.cpp): a leader times them and proposes the expiry of those that
    // ran out; a follower forgets its timers.
    void driveLeases();
    // A lease command was applied (grant, renewal: the timer restarts on a leader).
    void onLeaseApplied(const kv::KvStore::Applied &a);

    void issueWaiting();
    bool issue(Pending &p);
    void applyCommitted(std::vector<raft::Entry> &entries);
    void announce(); // indexes, then ready() and firstCommit() when they are due
    void serveReads();
    void serveRead(Pending &p);
    void finish(std::uint64_t id, DEngineResult result);
    void expire();
    // Every call in flight fails: with `status`, or with Timeout (unknown outcome) for a write that
    // had reached a leader.
    void failPending(DEngine::Status status, const QString &why);
    DEngineResult baseResult(DEngine::Status status, const QString &message = {}) const;

    DEngineConfig m_config;
    DEngineStateMachine *m_stateMachine = nullptr;
    bool m_warnedNoStateMachine = false;
    // A known bug, switched on for the fault harness to prove its checkers find it (the
    // environment's DENGINE_TEST_INJECT_BUG=local-reads): Linearizable and Lease reads are served
    // from this node's state at once. Never set outside that harness.
    bool m_injectLocalReads = false;
    bool m_started = false;
    bool m_down = false;
    bool m_handingOver = false; // stopping: leadership is being handed to another node

    std::unique_ptr<CoreLogger> m_coreLogger;
    std::unique_ptr<storage::Wal> m_wal;
    std::unique_ptr<storage::WalStorage> m_storage;
    std::unique_ptr<storage::LogWriter> m_writer;
    std::unique_ptr<raft::RawNode> m_node;
    PeerTransport *m_transport = nullptr;
    std::shared_ptr<MetricsBox> m_metrics;
    qint64 m_metricsPublishedAt = -1000; // ms on m_clock
    quint64 m_snapshotsTaken = 0;
    quint64 m_snapshotsInstalled = 0;
    void publishMetrics();
    QTimer *m_ticker = nullptr;
    TickClock m_tickClock{1, 1}; // set up in start()
    kv::KvStore m_kv;
    kv::EventLog m_events{1, 1}; // sized from the configuration in start()
    struct Watch {
        std::shared_ptr<WatchSink> sink;
        std::string begin, end;
        raft::Index next = 1;     // the first revision it has not been handed
        raft::Index told = 0;     // the revision its owner was last told
    };
    std::map<std::uint64_t, Watch> m_watches;
    std::uint64_t m_nextWatch = 0;
    qint64 m_watchProgressAt = 0; // ms on m_clock
    // Leases, on a leader: when each runs out (ms on m_clock), for the term the timers were set
    // in; the expiries proposed and when.
    std::map<std::uint64_t, qint64> m_leaseDeadlines;
    raft::Term m_leaseTerm = 0;
    std::map<std::uint64_t, qint64> m_leaseExpiryProposed;
    std::unique_ptr<storage::SnapshotStore> m_snapshots;
    raft::Index m_appliedAtSnapshot = 0;    // the applied index when the last snapshot was taken
    std::uint64_t m_bytesSinceSnapshot = 0; // entry bytes applied since
    bool m_snapshotting = false;            // one is being written by m_snapshotThread
    std::thread m_snapshotThread;
    std::shared_ptr<std::atomic<bool>> m_snapshotCancel;
    // Snapshots the transport received and handed to the core since the last process(): the core
    // installs one in the Ready that follows (its file is adopted) or refuses it as stale (its
    // file is deleted then).
    std::vector<std::pair<raft::Index, raft::Term>> m_receivedSnapshots;
    QElapsedTimer m_clock;
    std::atomic<quint64> m_sharedCommit{0};
    std::atomic<quint64> m_sharedApplied{0};
    std::atomic<bool> m_indexesPending{false};
    QTimer *m_processTimer; // zero, single shot: scheduleProcess(); active while a process() is due
    // Indexes moved but not told yet (tellIndexes()); when they were last told (ms on m_clock).
    static constexpr qint64 IndexesNotifyMs = 10;
    bool m_indexesUntold = false;
    qint64 m_indexesToldAt = -IndexesNotifyMs;
    QTimer *m_indexesTimer;
    void tellIndexes(bool now);
    std::mutex m_inboxMutex;
    std::vector<std::shared_ptr<EngineRequest>> m_inbox; // guarded by m_inboxMutex

    qint64 m_lastRepropose = 0;
    std::uint64_t m_nextBatchId = 0;
    std::deque<WriteInFlight> m_writes;
    // A follower writes its appends on this thread (LogWriter::writeNow) unless one took longer than
    // InlineWriteSlowMs lately: then through the writer for InlineWritePauseMs (m_clock's ms).
    static constexpr qint64 InlineWriteSlowMs = 20;
    static constexpr qint64 InlineWritePauseMs = 2000;
    qint64 m_inlineWritesFrom = 0;
    // A hard state in which only the commit index moved, not written yet: it goes with the next
    // write, or on a tick once nothing is being written, or at the stop (writeDeferredHardState()).
    std::optional<raft::HardState> m_deferredHardState;
    void writeDeferredHardState(bool stopping = false);

    std::uint64_t m_session = 0;
    std::uint64_t m_nextRequest = 0;
    std::unordered_map<std::uint64_t, Pending> m_pending;
    std::set<std::uint64_t> m_pendingWrites; // the writes among them, in id order (Command::lowestPending)
    std::deque<std::pair<qint64, std::uint64_t>> m_deadlines; // in deadline order (one timeout for all)
    std::vector<std::uint64_t> m_waiting;                     // to issue once a leader is known
    std::multimap<raft::Index, std::uint64_t> m_readsAtIndex; // reads waiting for their index to be applied
    std::vector<std::uint64_t> m_membershipCalls;              // pending membership calls, in call order
    std::unordered_map<std::uint64_t, qint64> m_membershipTried; // ... when each was last proposed
    raft::ConfState m_appliedConf;   // the configuration of the last applied entry (or snapshot)
    raft::Index m_appliedConfIndex = 0;
    raft::ConfState m_peersConf;     // the log's configuration the transport was last given
    std::map<raft::NodeId, std::string> m_peersBook; // ... and the address book
    bool m_wasMember = false;        // this node was in an applied configuration
    bool m_removed = false;          // ... and is not any more: it stops
    // Members an applied configuration removed, kept in the transport until the time given (ms on
    // m_clock) so that the notice telling them gets out; and whether the transport needs redoing.
    std::map<raft::NodeId, qint64> m_leaving;
    bool m_peersDirty = false;
    raft::Term m_addressesRecordedTerm = 0;
    raft::Term m_historyProposedTerm = 0; // the term this leader proposed a history reset in
    std::map<raft::NodeId, std::string> m_clientBook; // the client addresses membersChanged() last said
    qint64 m_clientAddressProposedAt = -1;             // ms on m_clock

    // What the owner was last told.
    NodeId m_leader = 0;
    raft::Role m_role = raft::Role::Follower;
    quint64 m_term = 0;
    quint64 m_commit = 0;
    quint64 m_applied = 0;
    bool m_ready = false;
    raft::Term m_lastAppliedTerm = 0;
    raft::Term m_firstOfTermTerm = 0; // the term whose first entry was applied last, and its index
    raft::Index m_firstOfTermIndex = 0;
    raft::Term m_firstCommitTold = 0; // the last term firstCommit was emitted for
};

} // namespace dengine::engine
