// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengine_global.h>
#include <dengine/dengineconfig.h>
#include <dengine/dengineinterface.h>

#include <memory>

class DEnginePrivate;
class DEngineStateMachine;

// What DEngine::metrics() returns: counters (the calls' since the object was made; the log's,
// snapshots' and transport's since the last start(): a restart begins them again, as Prometheus
// expects of a counter that resets), and the write-ahead log's fsync latencies as a histogram.
struct DENGINE_EXPORT DEngineMetrics {
    quint64 proposalsCommitted = 0; // writes and membership calls finished Ok on this node
    quint64 proposalsFailed = 0;    // ... finished with another status (Timeout included)
    quint64 walBatches = 0;         // group-commit rounds of the log writer
    quint64 walEntries = 0;
    // fsyncs of the write-ahead log: fsyncBuckets[i] counts those that took at most
    // fsyncBucketBounds()[i] seconds (cumulative, as Prometheus has it); the last bound is +Inf.
    quint64 fsyncCount = 0;
    double fsyncSecondsTotal = 0;
    QList<quint64> fsyncBuckets;
    static QList<double> fsyncBucketBounds();
    quint64 snapshotsTaken = 0;     // written by this node
    quint64 snapshotsInstalled = 0; // received from a leader and installed
    quint64 snapshotsSent = 0;      // streamed to followers
    quint64 peerFramesSent = 0;
    quint64 peerFramesReceived = 0;
    quint64 peerConnectionsAccepted = 0; // inbound, past the handshake
    quint64 peerConnectionsRefused = 0;  // strangers, bad handshakes, over the limits
    quint64 peerMessagesDropped = 0;     // queues full (the peer is slow or gone)
};

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
// worker, so a slow slot never stalls consensus. Nothing blocks except waitForReady(),
// waitForStopped() and waitForResult(), which run a local event loop.
//
// The lifecycle signals, the properties and the key-value and membership calls are those of
// DEngineInterface, which DEngineClient (a client of a standalone cluster) implements too.
class DENGINE_EXPORT DEngine : public DEngineInterface {
    Q_OBJECT
    Q_PROPERTY(quint16 listeningPort READ listeningPort NOTIFY listeningPortChanged)

public:
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
    bool start() override;
    // Begins a graceful shutdown: emits stopping() at once (unless already stopping) and stopped()
    // once the worker has finished, within config.stopTimeoutMs: a leader first hands leadership to
    // its most up-to-date follower. If the worker is stuck (a write or fsync that does not return),
    // stopped() still comes at the deadline, after errorOccurred(StorageFailure), and the worker is
    // left to finish on its own (it holds the data directory until then). Calls in flight fail
    // with Stopping (or Timeout, for writes that reached a leader) unless they complete first.
    // Idempotent; a no-op before start(). Does not block.
    void stop() override;

    // This node's id (constant).
    NodeId nodeId() const override;
    State state() const override;
    Error error() const override;
    QString errorString() const override;
    NodeId currentLeader() const override;
    quint64 currentTerm() const override;
    bool isReady() const override;
    Role role() const override;
    quint64 commitIndex() const override;
    quint64 appliedIndex() const override;
    // The configuration this node last applied (the log's, or the snapshot's). Before the first
    // start: the configuration's peers, as voters.
    QList<NodeId> voters() const override;
    QList<NodeId> learners() const override;
    // As the cluster's replicated address book or the configuration says.
    QString memberAddress(NodeId id) const override;
    // As the replicated book says (each member writes config.clientAddress there once ready); this
    // node's own from its configuration.
    QString memberClientAddress(NodeId id) const override;
    DEngineConfig config() const;
    // Replaces the configuration the next start() uses: allowed when Idle or Stopped, with the same
    // node id (false otherwise, with a warning, and nothing changes). Owner thread; emits nothing.
    bool setConfig(const DEngineConfig &config);
    // Counters and histograms for monitoring (dengined's /metrics): a copy, at most 100 ms old, of
    // what the worker published, and the calls this object finished. Owner thread; never blocks.
    struct DEngineMetrics metrics() const;
    // The port the node listens on for peers (useful with port 0 in the listen address); 0 before
    // the worker listens and after stopped(). listeningPortChanged() announces it.
    quint16 listeningPort() const;

    // ---- key-value calls (DEngineInterface says the rules) ----
    // Writes succeed once durable (fsynced) on a majority and applied on this node. Calls and bytes
    // in flight are bounded (maxPendingRequests, maxPendingBytes).
    QFuture<DEngineResult> put(const QByteArray &key, const QByteArray &value) override;
    QFuture<DEngineResult> remove(const QByteArray &key) override;
    QFuture<DEngineResult> batch(const QList<DEngineOperation> &operations) override;
    QFuture<DEngineResult> txn(const QList<DEngineCompare> &compares, const QList<DEngineOperation> &success,
                               const QList<DEngineOperation> &failure = {}) override;
    QFuture<DEngineResult> get(const QByteArray &key, Consistency consistency = Consistency::Linearizable) override;
    QFuture<DEngineResult> scan(const QByteArray &prefix, int limit = 0, Consistency consistency = Consistency::Linearizable) override;
    QFuture<DEngineResult> range(const QByteArray &begin, const QByteArray &end, int limit = 0,
                                 Consistency consistency = Consistency::Linearizable) override;

    // ---- watches and leases (DEngineInterface says the rules) ----
    // A watch is served by this node from its own history (watchHistoryRevisions); it ends with
    // Stopping when the engine stops.
    DEngineWatcher *watch(const QByteArray &begin, const QByteArray &end, quint64 fromRevision = 0, QObject *parent = nullptr) override;
    QFuture<DEngineResult> grantLease(qint64 ttlMs) override;
    QFuture<DEngineResult> keepAliveLease(quint64 lease) override;
    QFuture<DEngineResult> revokeLease(quint64 lease) override;
    QFuture<DEngineResult> leaseTimeToLive(quint64 lease) override;

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
    QFuture<DEngineResult> addLearner(NodeId id, const QString &address) override;
    // Makes a learner a voter, once it has caught up with the leader's log (within a thousand
    // entries): until then the call waits, within its deadline.
    QFuture<DEngineResult> promote(NodeId id) override;
    // Removes a voter or learner. A removed leader goes on leading until the change commits, then
    // hands leadership to the most up-to-date voter and steps down; a node that applies its own
    // removal stops (stopping(), stopped()).
    QFuture<DEngineResult> removeMember(NodeId id) override;
    // Asks the leader (this node) to hand leadership to voter `id`; Ok once this node sees `id`
    // lead. Refused on a follower (the message names the leader to ask).
    QFuture<DEngineResult> transferLeadership(NodeId id) override;

Q_SIGNALS:
    // The lifecycle signals are DEngineInterface's.
    void listeningPortChanged(quint16 port);

private:
    friend class DEnginePrivate;
    std::unique_ptr<DEnginePrivate> d;
};
