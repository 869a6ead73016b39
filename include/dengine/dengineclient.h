// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengineinterface.h>

#include <QtCore/QStringList>

#include <memory>

class DEngineClientPrivate;

// Where a DEngineClient finds its cluster and how it talks to it. A plain value: copy it, fill it
// in, validate() it (start() does too). Thread: any; not shared.
struct DENGINE_EXPORT DEngineClientConfig {
    // The client addresses ("host:port") of some members (dengined's server.clientAddress); one
    // that answers is enough: the client learns the others from the members it reaches.
    QStringList endpoints;
    // The cluster's id: a member of another cluster is refused.
    quint64 clusterId = 1;
    // TLS 1.3 to the client port: the cluster's authority (PEM), and this client's certificate and
    // key, signed by it (dengine-ctl certs client NAME makes them). The member must present a
    // certificate of this cluster's authority that names a member of this cluster. All three are
    // required unless `insecure` is set.
    QString tlsCaFile;
    QString tlsCertificateFile;
    QString tlsKeyFile;
    // Plain TCP: anyone on the path can read and change what goes by. For tests and demos on one
    // machine, against a server started with insecureClients.
    bool insecure = false;
    // How long a call may take, from the call to its result, failovers included: then it finishes
    // with Timeout (it was sent: a write may or may not have happened) or NoQuorum (no member
    // could be reached to send it).
    int requestTimeoutMs = 5000;
    // How long a connection attempt (with its TLS handshake) may take before the next endpoint.
    int connectTimeoutMs = 2000;
    // The member pushes its state at least this often; a member silent for three of these (a
    // paused process, a cut cable) is left for another.
    int heartbeatMs = 500;
    // Calls in flight (sent or waiting for a member) at most: past it a call fails with Busy.
    int maxPendingRequests = 20000;
    // Move to the leader's client port when it is known (its writes and linearizable reads then
    // skip the forwarding hop); otherwise stay with the member that answered.
    bool followLeader = true;

    // Empty when usable; otherwise a sentence naming the field at fault.
    QString validate() const;
};

// A client of a standalone DEngine cluster (dengined members), with the same surface as the
// embedded DEngine (DEngineInterface): the same lifecycle signals and properties, the same
// key-value and membership calls with the same statuses. Code written against DEngineInterface
// works with either.
//
// What the signals mean for a client. The client talks to one member at a time (the leader when
// it can) and subscribes to that member's lifecycle, which the member pushes in order:
//   - ready(): once per start(), when the member it talks to knows its term's leader and has applied
//     that leader's first entry. isReady() stays true until stopping(), across failovers (calls
//     made while no member is reachable wait, within requestTimeoutMs).
//   - leaderChanged(), termChanged(), firstCommit(), roleChanged(), membersChanged(): the
//     member's, as it signalled them, nothing coalesced. On a move to another member, the client
//     catches up with that member's view (never to a lower term: a member that knows less is
//     heard on its leader only once it has caught up).
//   - nodeId(), role(), commitIndex(), appliedIndex(): of the member it talks to (0, Stopped when
//     none); the indexes at most ten times a second.
//   - stopping(), stopped(): the client's own stop (stop(), destruction); never for a failover.
//   - errorOccurred(ConnectionError, ...): no endpoint could be reached in a whole round (once,
//     until one answers again), or one was refused (TLS, another cluster); the client goes on
//     trying. ConfigurationError and CertificateError at start().
// Failover: when the connection breaks, the member stops, or it stays silent for three heartbeats,
// the client goes to the next member. Calls sent to the lost member: reads and membership calls
// are sent again (they are safe to repeat); writes finish with Timeout, since they may have been
// applied. Calls not yet sent wait for the next member, within their deadline.
//
// Threads: lives on the thread that created it; call every method there; signals and futures
// finish there, from its event loop. Never blocks, except the waits of DEngineInterface.
class DENGINE_EXPORT DEngineClient : public DEngineInterface {
    Q_OBJECT
    Q_PROPERTY(QString connectedEndpoint READ connectedEndpoint NOTIFY connectedEndpointChanged)

public:
    explicit DEngineClient(const DEngineClientConfig &config, QObject *parent = nullptr);
    // Stops as stop() does (stopping(), stopped() before it returns) when running.
    ~DEngineClient() override;

    // Starts connecting (the configuration is checked first: false after errorOccurred when it is
    // not usable). Does not block.
    bool start() override;
    // Closes the connection: stopping() at once, stopped() on the next turn of the event loop.
    // Calls in flight finish at once: writes that were sent with Timeout (they may still be
    // applied), the rest with Stopping.
    void stop() override;

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
    QList<NodeId> voters() const override;
    QList<NodeId> learners() const override;
    QString memberAddress(NodeId id) const override;
    QString memberClientAddress(NodeId id) const override;
    DEngineClientConfig config() const;
    // The member's client address the client talks to ("host:port"; empty when none).
    QString connectedEndpoint() const;

    QFuture<DEngineResult> put(const QByteArray &key, const QByteArray &value) override;
    QFuture<DEngineResult> remove(const QByteArray &key) override;
    QFuture<DEngineResult> batch(const QList<DEngineOperation> &operations) override;
    QFuture<DEngineResult> txn(const QList<DEngineCompare> &compares, const QList<DEngineOperation> &success,
                               const QList<DEngineOperation> &failure = {}) override;
    QFuture<DEngineResult> get(const QByteArray &key, Consistency consistency = Consistency::Linearizable) override;
    QFuture<DEngineResult> scan(const QByteArray &prefix, int limit = 0, Consistency consistency = Consistency::Linearizable) override;
    QFuture<DEngineResult> range(const QByteArray &begin, const QByteArray &end, int limit = 0,
                                 Consistency consistency = Consistency::Linearizable) override;
    // A watch is sent to the member the client talks to, and again to the next one after a
    // failover, resuming from the revision it had reached: no change is missed or repeated (or it
    // finishes with Compacted, when that member's history does not reach back far enough).
    DEngineWatcher *watch(const QByteArray &begin, const QByteArray &end, quint64 fromRevision = 0, QObject *parent = nullptr) override;
    QFuture<DEngineResult> grantLease(qint64 ttlMs) override;
    QFuture<DEngineResult> keepAliveLease(quint64 lease) override;
    QFuture<DEngineResult> revokeLease(quint64 lease) override;
    QFuture<DEngineResult> leaseTimeToLive(quint64 lease) override;
    QFuture<DEngineResult> addLearner(NodeId id, const QString &address) override;
    QFuture<DEngineResult> promote(NodeId id) override;
    QFuture<DEngineResult> removeMember(NodeId id) override;
    QFuture<DEngineResult> transferLeadership(NodeId id) override;

Q_SIGNALS:
    // The client moved to another member (or to none), after nodeIdChanged().
    void connectedEndpointChanged(const QString &endpoint);

private:
    friend class DEngineClientPrivate;
    std::unique_ptr<DEngineClientPrivate> d;
};
