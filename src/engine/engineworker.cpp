// SPDX-License-Identifier: Apache-2.0
#include "engine/engineworker.h"

#include "engine/limits.h"
#include "engine/peertransport.h"
#include "engine/tlsidentity.h"
#include "engine/watcher_p.h"
#include "raft/confchange.h"
#include "raft/logger.h"
#include "storage/logwriter.h"
#include "storage/snapshotstore.h"
#include "storage/wal.h"

#include <QtCore/QLoggingCategory>
#include <QtCore/QRandomGenerator>
#include <QtCore/QTimer>

#include <algorithm>
#include <iterator>
#include <stdexcept>

Q_LOGGING_CATEGORY(lcEngine, "dengine.engine")
Q_LOGGING_CATEGORY(lcCore, "dengine.raft")

namespace dengine::engine {

// The core's rare events, into a logging category.
class CoreLogger final : public raft::Logger {
public:
    explicit CoreLogger(NodeId id) : m_id(id) {}
    void log(raft::LogLevel level, std::string_view message) override
    {
        const QString text = QStringLiteral("node %1: %2").arg(m_id).arg(QString::fromUtf8(message.data(), static_cast<qsizetype>(message.size())));
        switch (level) {
        case raft::LogLevel::Debug: qCDebug(lcCore).noquote() << text; break;
        case raft::LogLevel::Info: qCInfo(lcCore).noquote() << text; break;
        case raft::LogLevel::Warning: qCWarning(lcCore).noquote() << text; break;
        case raft::LogLevel::Error: qCCritical(lcCore).noquote() << text; break;
        }
    }

private:
    NodeId m_id;
};

namespace {

DEngine::Role toRole(raft::Role r)
{
    switch (r) {
    case raft::Role::Follower: return DEngine::Role::Follower;
    case raft::Role::PreCandidate: return DEngine::Role::PreCandidate;
    case raft::Role::Candidate: return DEngine::Role::Candidate;
    case raft::Role::Leader: return DEngine::Role::Leader;
    }
    return DEngine::Role::Follower;
}

DEngine::Error toError(storage::StorageErrorCode code)
{
    switch (code) {
    case storage::StorageErrorCode::Locked: return DEngine::Error::DataDirectoryLocked;
    case storage::StorageErrorCode::Corrupt: return DEngine::Error::CorruptData;
    case storage::StorageErrorCode::Config: return DEngine::Error::ConfigurationError;
    case storage::StorageErrorCode::None:
    case storage::StorageErrorCode::Io:
    case storage::StorageErrorCode::NoSpace: return DEngine::Error::StorageFailure;
    }
    return DEngine::Error::StorageFailure;
}

QByteArray toBytes(const std::string &s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); }

} // namespace

void ResultCourier::deliver(std::shared_ptr<QPromise<DEngineResult>> promise, DEngineResult result, qint64 bytes, bool write)
{
    if (write)
        (result.ok() ? writesCommitted : writesFailed).fetch_add(1, std::memory_order_relaxed);
    bool queued = false;
    bool post = false;
    {
        std::lock_guard lock(m_mutex);
        if (m_open) {
            // Results that come while the owner thread has not drained yet go with the same
            // drain: one posted event (and one wake-up of that thread) for all of them, in order.
            post = m_queue.empty();
            m_queue.push_back(Delivery{std::move(promise), std::move(result), bytes});
            queued = true;
        }
    }
    if (!queued) { // detached: finished here
        promise->addResult(std::move(result));
        promise->finish();
        return;
    }
    if (post) {
        // Posted outside m_mutex: the posted event wakes the owner thread at once, and its drain()
        // would otherwise wait on the mutex until this post returned (a second wake-up).
        std::lock_guard lock(m_targetMutex);
        if (m_target) // else detach() took the queue
            QMetaObject::invokeMethod(m_target, [self = shared_from_this()] { self->drain(); }, Qt::QueuedConnection);
    }
}

void ResultCourier::drain()
{
    // One at a time from the queue's front: a continuation may destroy the engine (detach()
    // then finishes the rest, still in order) or make calls whose results queue behind these.
    for (;;) {
        Delivery d;
        {
            std::lock_guard lock(m_mutex);
            if (m_queue.empty())
                return;
            d = std::move(m_queue.front());
            m_queue.pop_front();
        }
        finish(d);
    }
}

void ResultCourier::finish(Delivery &d)
{
    if (m_done)
        m_done(d.bytes);
    d.promise->addResult(std::move(d.result));
    d.promise->finish();
}

void ResultCourier::detach()
{
    {
        std::lock_guard lock(m_targetMutex);
        m_target = nullptr;
    }
    std::deque<Delivery> left;
    {
        std::lock_guard lock(m_mutex);
        m_open = false;
        left.swap(m_queue);
    }
    for (Delivery &d : left)
        finish(d);
    m_done = nullptr;
}

EngineWorker::EngineWorker(const DEngineConfig &config, DEngineStateMachine *stateMachine, std::shared_ptr<MetricsBox> metrics)
    : m_config(config), m_stateMachine(stateMachine), m_metrics(std::move(metrics)), m_processTimer(new QTimer(this)),
      m_indexesTimer(new QTimer(this))
{
    // Children: they move to the worker's thread with it. process() runs from a zero timer, not a
    // posted event: the event loop fires it in the same pass, after the sockets that had data
    // (all of them: their messages go into one Ready), where a posted event to this thread costs
    // a write and a read of the dispatcher's eventfd and one more poll (about a tenth of a
    // leader's system calls per write at put c=1).
    m_processTimer->setSingleShot(true);
    m_processTimer->setInterval(0);
    connect(m_processTimer, &QTimer::timeout, this, &EngineWorker::process);
    m_indexesTimer->setSingleShot(true);
    connect(m_indexesTimer, &QTimer::timeout, this, [this] { tellIndexes(true); });
}

void EngineWorker::publishMetrics()
{
    if (!m_metrics)
        return;
    const qint64 now = m_clock.elapsed();
    if (now - m_metricsPublishedAt < 100)
        return;
    m_metricsPublishedAt = now;
    DEngineMetrics m;
    if (m_writer) {
        const storage::LogWriter::Stats w = m_writer->stats();
        m.walBatches = w.batches;
        m.walEntries = w.entries;
        m.fsyncCount = w.syncs;
        m.fsyncSecondsTotal = w.syncSeconds;
        quint64 cumulative = 0;
        for (std::uint64_t n : w.syncHistogram)
            m.fsyncBuckets << (cumulative += n);
    }
    m.snapshotsTaken = m_snapshotsTaken;
    m.snapshotsInstalled = m_snapshotsInstalled;
    if (m_transport) {
        const PeerTransport::Stats t = m_transport->stats();
        m.snapshotsSent = t.snapshotsSent;
        m.peerFramesSent = t.framesSent;
        m.peerFramesReceived = t.framesReceived;
        m.peerConnectionsAccepted = t.connectionsAccepted;
        m.peerConnectionsRefused = t.connectionsRefused;
        m.peerMessagesDropped = t.messagesDropped;
    }
    std::lock_guard lock(m_metrics->mutex);
    m_metrics->published = m;
}

EngineWorker::~EngineWorker()
{
    // Calls queued after the last drain (the thread ended first): every future gets a result.
    for (auto &r : m_inbox)
        r->complete(baseResult(DEngine::Status::Stopping, QStringLiteral("the engine has stopped")));
}

void EngineWorker::start()
{
    if (m_started)
        return;
    m_started = true;
    m_clock.start();
    m_session = QRandomGenerator::system()->generate64() | 1;
    // Known bugs a fault harness switches on to prove that its checkers find them (tests/chaos).
    const QString injectedBug = qEnvironmentVariable("DENGINE_TEST_INJECT_BUG");
    if (injectedBug == QLatin1String("local-reads")) {
        m_injectLocalReads = true;
        qCCritical(lcEngine).noquote() << QStringLiteral("node %1: DENGINE_TEST_INJECT_BUG=local-reads: linearizable reads are served locally; "
                                                         "this node is deliberately broken (a test of the fault harness's checkers)")
                                              .arg(m_config.nodeId);
    } else if (injectedBug == QLatin1String("ack-before-fsync")) {
        qCCritical(lcEngine).noquote() << QStringLiteral("node %1: DENGINE_TEST_INJECT_BUG=ack-before-fsync: log entries are reported durable before "
                                                         "they are synced (a sync at most once a second); this node is deliberately broken "
                                                         "(a test of the fault harness's checkers)")
                                              .arg(m_config.nodeId);
    } else if (!injectedBug.isEmpty()) {
        qCCritical(lcEngine).noquote() << QStringLiteral("node %1: DENGINE_TEST_INJECT_BUG=%2: no such bug (local-reads, ack-before-fsync); ignored")
                                              .arg(m_config.nodeId)
                                              .arg(injectedBug);
    }
    if (qEnvironmentVariableIsSet("DENGINE_TEST_DURABLE_SHADOW"))
        qCWarning(lcEngine).noquote() << QStringLiteral("node %1: DENGINE_TEST_DURABLE_SHADOW: what is synced under %2 is copied to %3 "
                                                        "(a fault harness's power cuts; every synced byte is written twice)")
                                             .arg(m_config.nodeId)
                                             .arg(qEnvironmentVariable("DENGINE_TEST_DURABLE_SHADOW_ROOT"), qEnvironmentVariable("DENGINE_TEST_DURABLE_SHADOW"));

    storage::WalOptions wo;
    if (injectedBug == QLatin1String("ack-before-fsync"))
        wo.testAckBeforeSyncMs = 1000;
    wo.dir = m_config.dataDirectory.toStdString();
    wo.segmentBytes = static_cast<std::uint64_t>(m_config.walSegmentBytes);
    // A founder's new log starts with the configured members as voters; a joiner's with none.
    wo.joining = m_config.join;
    if (!m_config.join)
        for (auto it = m_config.peers.cbegin(); it != m_config.peers.cend(); ++it)
            wo.bootstrap.voters.push_back(it.key());
    m_events = kv::EventLog(static_cast<std::uint64_t>(m_config.watchHistoryRevisions), static_cast<std::size_t>(m_config.watchHistoryBytes));
    m_kv.setKeepEvents(true);
    storage::RecoveryReport report;
    if (storage::StorageStatus st = storage::Wal::open(wo, m_wal, &report); !st) {
        fatal(toError(st.code), QStringLiteral("cannot open the data directory %1: %2").arg(m_config.dataDirectory, QString::fromStdString(st.message)));
        return;
    }
    if (!report.tornTail.empty())
        qCWarning(lcEngine).noquote() << "node" << m_config.nodeId << "recovery:" << QString::fromStdString(report.tornTail);
    qCInfo(lcEngine).noquote() << QStringLiteral("node %1: log %2..%3 in %4 segment(s)%5")
                                      .arg(m_config.nodeId)
                                      .arg(m_wal->firstIndex())
                                      .arg(m_wal->lastIndex())
                                      .arg(report.segments)
                                      .arg(report.created ? QStringLiteral(" (new)") : QString());
    m_storage = std::make_unique<storage::WalStorage>(*m_wal);
    raft::Index applied = 0;
    if (!loadSnapshotAtStart(applied))
        return;
    if (m_events.last() != m_kv.appliedIndex())
        m_events.reset(m_kv.appliedIndex());

    m_coreLogger = std::make_unique<CoreLogger>(m_config.nodeId);
    raft::Config rc;
    rc.id = m_config.nodeId;
    rc.electionTick = m_config.electionTicks;
    rc.heartbeatTick = m_config.heartbeatTicks;
    rc.checkQuorum = m_config.checkQuorum;
    rc.preVote = m_config.preVote;
    rc.readOnlyOption = m_config.leaseReads ? raft::ReadOnlyOption::LeaseOnRequest : raft::ReadOnlyOption::Safe;
    rc.seed = QRandomGenerator::system()->generate64();
    rc.maxUncommittedEntriesSize = 256ULL << 20; // bounds memory when the disk or followers fall behind
    rc.maxInflightBytes = 16ULL << 20;           // per follower; each frame stays far below the transport's limit
    rc.maxSizePerMsg = EngineLimits::MaxAppendBytes;
    rc.logger = m_coreLogger.get();
    rc.applied = applied;
    try {
        m_node = std::make_unique<raft::RawNode>(rc, *m_storage);
    } catch (const std::exception &e) {
        fatal(DEngine::Error::CorruptData, QStringLiteral("cannot start Raft on the data directory %1: %2")
                                               .arg(m_config.dataDirectory, QString::fromUtf8(e.what())));
        return;
    }
    // The log's configuration wins over the file's once the membership changed (peers are then
    // only addresses). A directory whose founding members are not the configured ones, with no
    // change since, is someone else's: refuse it rather than join the wrong cluster.
    const raft::ConfState founders = m_wal->confState();
    const raft::ConfState current = m_node->confState();
    m_appliedConf = m_node->confStateAt(applied).value_or(current);
    m_appliedConfIndex = applied;
    m_wasMember = raft::isMember(m_appliedConf, m_config.nodeId);
    if (current == founders) {
        std::vector<raft::NodeId> configured;
        if (!m_config.join)
            for (auto it = m_config.peers.cbegin(); it != m_config.peers.cend(); ++it)
                configured.push_back(it.key());
        std::vector<raft::NodeId> voters = founders.voters;
        std::sort(voters.begin(), voters.end());
        if (voters != configured) {
            fatal(DEngine::Error::ConfigurationError,
                  founders.voters.empty()
                      ? QStringLiteral("join: the data directory %1 was made to join a cluster and has not been added yet: start it with join")
                            .arg(m_config.dataDirectory)
                      : QStringLiteral("peers: the data directory %1 belongs to a cluster with other members than the configuration lists")
                            .arg(m_config.dataDirectory));
            return;
        }
    }

    m_writer = std::make_unique<storage::LogWriter>(
        *m_wal,
        [this](std::uint64_t id) { QMetaObject::invokeMethod(this, [this, id] { onDurable(id); }, Qt::QueuedConnection); },
        [this](const storage::StorageStatus &st) {
            const QString message = QString::fromStdString(st.message);
            QMetaObject::invokeMethod(this, [this, message] { onStorageError(message); }, Qt::QueuedConnection);
        });

    PeerTransport::Options to;
    if (!m_config.insecure) {
        QString why;
        to.tls = TlsIdentity::load(m_config, &why);
        if (!to.tls) {
            fatal(DEngine::Error::CertificateError, why);
            return;
        }
    }
    to.self = m_config.nodeId;
    to.clusterId = m_config.clusterId;
    for (auto it = m_config.peers.cbegin(); it != m_config.peers.cend(); ++it)
        to.peers.insert(it.key(), it.value());
    to.listenAddress = m_config.listenAddress;
    to.acceptNonMembers = !raft::isMember(m_node->confState(), m_config.nodeId);
    to.maxFrameBytes = static_cast<quint32>(std::min<qint64>(EngineLimits::maxFrameBytes(m_config), UINT32_MAX));
    to.snapshots = m_snapshots.get();
    to.onSnapshotSent = [this](raft::NodeId id, bool delivered) {
        if (m_node && !m_down) {
            m_node->reportSnapshot(id, delivered);
            scheduleProcess();
        }
    };
    to.onSnapshotDamaged = [this](const raft::SnapshotMetadata &meta, const QString &why) { onOwnSnapshotDamaged(meta, why); };
    to.onRemovalNotice = [this](raft::NodeId from, std::uint64_t index) {
        // Queued: stopping here would delete the transport under its own read loop.
        QMetaObject::invokeMethod(this, [this, from, index] { onRemovalNotice(from, index); }, Qt::QueuedConnection);
    };
    m_transport = new PeerTransport(
        to, [this](std::vector<raft::Message> &&msgs) { onMessages(std::move(msgs)); },
        [this](raft::NodeId id) {
            if (m_node)
                m_node->reportUnreachable(id);
        },
        this);
    QString why;
    QAbstractSocket::SocketError code = QAbstractSocket::UnknownSocketError;
    if (!m_transport->listen(&why, &code)) {
        fatal(code == QAbstractSocket::AddressInUseError ? DEngine::Error::AddressInUse : DEngine::Error::ConfigurationError, why);
        return;
    }
    Q_EMIT listening(m_transport->listeningPort());
    if (!refreshPeers())
        emitMembers();

    const raft::NodeStatus st = m_node->status();
    m_term = st.hardState.term;
    m_commit = st.hardState.commit;
    Q_EMIT termChanged(m_term);
    // More catch-up ticks than any lease (electionTick - 2) or promise (electionTick) or read
    // expiry (2 * electionTick) lasts: after them the core has seen every one of those run out.
    m_tickClock = TickClock(m_config.tickIntervalMs, 2ULL * static_cast<std::uint64_t>(m_config.electionTicks) + 2);
    m_tickClock.start();
    m_ticker = new QTimer(this);
    m_ticker->setTimerType(Qt::PreciseTimer);
    connect(m_ticker, &QTimer::timeout, this, &EngineWorker::onTick);
    m_ticker->start(m_config.tickIntervalMs);
    qCInfo(lcEngine).noquote() << QStringLiteral("node %1: listening on port %2, term %3, commit %4")
                                      .arg(m_config.nodeId)
                                      .arg(m_transport->listeningPort())
                                      .arg(m_term)
                                      .arg(m_commit);
    // A one-node cluster elects itself at once instead of waiting out a timeout; a member of a
    // larger one campaigns within one election timeout (pre-vote keeps it from disturbing a
    // leader that is already there), as a cluster starting from nothing has no leader to wait for.
    const raft::ConfState startConf = m_node->confState();
    if (startConf.voters.size() == 1 && startConf.voters.front() == m_config.nodeId && startConf.votersOutgoing.empty())
        m_node->campaign();
    else if (m_config.preVote)
        m_node->expediteElection();
    scheduleProcess();
}

void EngineWorker::fatal(DEngine::Error error, const QString &message)
{
    qCCritical(lcEngine).noquote() << QStringLiteral("node %1: %2").arg(m_config.nodeId).arg(message);
    tellIndexes(true);
    Q_EMIT failed(error, message);
    shutdown();
}

void EngineWorker::onCoreFailure(const char *what)
{
    if (m_down)
        return;
    const QString text = QStringLiteral("the consensus core stopped: %1").arg(QString::fromUtf8(what));
    failPending(DEngine::Status::StorageFailure, text);
    fatal(DEngine::Error::CorruptData, text);
}

void EngineWorker::advanceTicks()
{
    if (!m_node)
        return;
    const std::uint64_t skippedBefore = m_tickClock.skipped();
    const std::uint64_t due = m_tickClock.take();
    for (std::uint64_t i = 0; i < due; ++i)
        m_node->tick();
    if (m_tickClock.skipped() != skippedBefore)
        qCWarning(lcEngine).noquote() << QStringLiteral("node %1: the worker was held up for %2 ticks; its leases and promises have run out")
                                             .arg(m_config.nodeId)
                                             .arg(due + m_tickClock.skipped() - skippedBefore);
}

void EngineWorker::onStorageError(const QString &message)
{
    if (m_down)
        return;
    // After a failed write or fsync nothing written can be trusted: stop, acknowledging nothing more.
    const QString text = QStringLiteral("storage failure: %1").arg(message);
    failPending(DEngine::Status::StorageFailure, text);
    fatal(DEngine::Error::StorageFailure, text);
}

void EngineWorker::stopGracefully()
{
    if (m_down || m_handingOver)
        return;
    // A leader first hands leadership to the most up-to-date follower that answers, so the others
    // need not wait out an election timeout; bounded by half the stop timeout, then it stops anyway.
    if (m_node && m_role == raft::Role::Leader && m_node->confState().voters.size() > 1) {
        raft::NodeId best = raft::NoNode;
        raft::Index bestMatch = 0;
        const std::vector<raft::NodeId> &voters = m_node->confState().voters;
        for (const auto &[id, pr] : m_node->raft().progress()) {
            if (id == m_config.nodeId || !pr.recentActive || std::find(voters.begin(), voters.end(), id) == voters.end())
                continue; // a learner cannot lead
            if (best == raft::NoNode || pr.match > bestMatch) {
                best = id;
                bestMatch = pr.match;
            }
        }
        if (best != raft::NoNode && m_node->transferLeadership(best) == raft::Status::Ok) {
            qCInfo(lcEngine).noquote() << QStringLiteral("node %1: stopping: handing leadership to node %2").arg(m_config.nodeId).arg(best);
            m_handingOver = true;
            QTimer::singleShot(std::max(1, m_config.stopTimeoutMs / 2), this, [this] {
                if (!m_down)
                    qCWarning(lcEngine).noquote() << QStringLiteral("node %1: leadership hand-over did not finish in time; stopping anyway").arg(m_config.nodeId);
                shutdown();
            });
            scheduleProcess();
            return;
        }
    }
    shutdown();
}

void EngineWorker::shutdown()
{
    if (m_down)
        return;
    m_down = true;
    drainInbox(); // calls queued before the stop fail with Stopping below, like the others
    failPending(DEngine::Status::Stopping, QStringLiteral("the engine is stopping"));
    finishWatches(DEngine::Status::Stopping, QStringLiteral("the engine is stopping"));
    m_deadlines.clear();
    m_waiting.clear();
    m_readsAtIndex.clear();
    if (m_ticker)
        m_ticker->stop();
    tellIndexes(true); // the owner reads the last values once more when the worker has finished
    if (m_transport) {
        m_transport->close();
        delete m_transport;
        m_transport = nullptr;
    }
    // A snapshot being written is abandoned (its temporary file goes); the writer finishes what it
    // was given (writes and syncs it), then the files close.
    stopSnapshotThread();
    writeDeferredHardState(true);
    m_writer.reset();
    m_node.reset();
    m_storage.reset();
    m_wal.reset();
    qCInfo(lcEngine).noquote() << QStringLiteral("node %1: stopped").arg(m_config.nodeId);
    Q_EMIT finished();
}

DEngineResult EngineWorker::baseResult(DEngine::Status status, const QString &message) const
{
    DEngineResult r;
    r.status = status;
    r.message = message;
    r.leaderHint = m_leader;
    r.revision = m_kv.appliedIndex();
    return r;
}

void EngineWorker::tellIndexes(bool now)
{
    if (!m_indexesUntold)
        return;
    if (m_indexesPending.load(std::memory_order_acquire)) {
        // The owner has not taken the last one yet: when it does, it reads these values too.
        m_indexesUntold = false;
        return;
    }
    const qint64 t = m_clock.elapsed();
    if (!now && t - m_indexesToldAt < IndexesNotifyMs) {
        // Told lately: once more when the interval is over, with the values of then. At one
        // commit every few hundred microseconds, a wake-up of the owner's thread per commit costs
        // the cluster's commit path a core it needs.
        if (!m_indexesTimer->isActive())
            m_indexesTimer->start(int(IndexesNotifyMs - (t - m_indexesToldAt)));
        return;
    }
    m_indexesTimer->stop();
    m_indexesUntold = false;
    m_indexesToldAt = t;
    m_indexesPending.store(true, std::memory_order_release);
    Q_EMIT indexesChanged();
}

std::pair<quint64, quint64> EngineWorker::peekIndexes() const
{
    const quint64 applied = m_sharedApplied.load(std::memory_order_acquire);
    return {m_sharedCommit.load(std::memory_order_relaxed), applied};
}

std::pair<quint64, quint64> EngineWorker::takeIndexes()
{
    m_indexesPending.store(false, std::memory_order_release);
    const quint64 applied = m_sharedApplied.load(std::memory_order_acquire);
    return {m_sharedCommit.load(std::memory_order_relaxed), applied};
}

void EngineWorker::enqueue(std::shared_ptr<EngineRequest> request)
{
    bool wake;
    {
        std::lock_guard lock(m_inboxMutex);
        wake = m_inbox.empty();
        m_inbox.push_back(std::move(request));
    }
    if (wake)
        QMetaObject::invokeMethod(this, &EngineWorker::drainInbox, Qt::QueuedConnection);
}

void EngineWorker::drainInbox()
{
    std::vector<std::shared_ptr<EngineRequest>> batch;
    {
        std::lock_guard lock(m_inboxMutex);
        batch.swap(m_inbox);
    }
    for (auto &r : batch)
        submit(std::move(r));
}

void EngineWorker::submit(std::shared_ptr<EngineRequest> request)
{
    if (m_down || !m_node) {
        request->complete(baseResult(DEngine::Status::Stopping, QStringLiteral("the engine is not running")));
        return;
    }
    if (m_pending.size() >= static_cast<std::size_t>(m_config.maxPendingRequests)) {
        request->complete(baseResult(DEngine::Status::Busy, QStringLiteral("too many calls in flight (maxPendingRequests)")));
        return;
    }
    if (!request->changesState() && (request->consistency == DEngine::Consistency::Local || m_injectLocalReads)) {
        Pending p;
        p.request = std::move(request);
        serveRead(p);
        return;
    }
    const std::uint64_t id = ++m_nextRequest;
    Pending &p = m_pending[id];
    p.request = std::move(request);
    if (p.request->kind == EngineRequest::Kind::Write)
        m_pendingWrites.insert(id);
    p.id = id;
    p.deadline = m_clock.elapsed() + m_config.requestTimeoutMs;
    m_deadlines.emplace_back(p.deadline, id);
    if (p.request->kind == EngineRequest::Kind::Membership)
        m_membershipCalls.push_back(id); // driveMembership(), at the end of process()
    else if (!issue(p))
        m_waiting.push_back(id);
    scheduleProcess();
}

// Hands a call to the core: a write as a proposal, a read as a read-index request (or, for a Lease
// read on a leader whose lease holds, at its commit index directly). False when it must wait for a
// leader.
bool EngineWorker::issue(Pending &p)
{
    if (p.request->kind == EngineRequest::Kind::Write) {
        kv::Command cmd;
        cmd.origin = m_config.nodeId;
        cmd.session = m_session;
        cmd.request = p.id;
        cmd.lowestPending = m_pendingWrites.empty() ? p.id : std::min(p.id, *m_pendingWrites.begin());
        cmd.operations = p.request->operations;
        cmd.application = p.request->application;
        cmd.txn = p.request->txn;
        cmd.compares = p.request->compares;
        cmd.failure = p.request->failure;
        cmd.lease = p.request->lease;
        const raft::Status st = m_node->propose(kv::encodeCommand(cmd));
        if (st != raft::Status::Ok)
            return false;
        p.proposed = true;
        p.proposedAt = m_clock.elapsed();
        p.proposedTo = m_node->raft().leader();
        p.proposedTerm = m_node->raft().term();
        return true;
    }
    if (p.request->consistency == DEngine::Consistency::Lease)
        advanceTicks(); // the lease is decided on the core's ticks: they must be up to date
    if (p.request->consistency == DEngine::Consistency::Lease && m_node->raft().leaseReadable()) {
        p.gotIndex = true;
        p.readIndex = m_node->status().hardState.commit;
        m_readsAtIndex.emplace(p.readIndex, p.id);
        return true;
    }
    return m_node->readIndex(p.id) == raft::Status::Ok;
}

void EngineWorker::issueWaiting()
{
    if (m_waiting.empty() || !m_node)
        return;
    std::vector<std::uint64_t> waiting;
    waiting.swap(m_waiting);
    for (std::uint64_t id : waiting) {
        auto it = m_pending.find(id);
        if (it == m_pending.end())
            continue;
        if (!issue(it->second))
            m_waiting.push_back(id);
    }
}

void EngineWorker::scheduleProcess()
{
    if (!m_down && !m_processTimer->isActive())
        m_processTimer->start();
}

void EngineWorker::onTick()
{
    if (!m_node)
        return;
    publishMetrics();
    try {
        advanceTicks();
    } catch (const std::exception &e) {
        onCoreFailure(e.what());
        return;
    }
    expire();
    driveLeases();
    serveWatches(true);
    writeDeferredHardState();
    // A forwarded write can be lost on the way (a queue overflow, a reconnect) while the leader
    // stays: propose again what two election timeouts did not apply (applied once, whatever comes).
    const qint64 now = m_clock.elapsed();
    const qint64 patience = 2LL * m_config.electionTicks * m_config.tickIntervalMs;
    if (now - m_lastRepropose >= patience) {
        m_lastRepropose = now;
        // Not the leader's own writes of its current term: they are in its log, and will commit
        // or go with the term (and then be proposed again, below in process()).
        const bool leading = m_role == raft::Role::Leader;
        const raft::Term term = m_node->raft().term();
        for (auto &[id, p] : m_pending) {
            if (!p.proposed || p.request->kind != EngineRequest::Kind::Write || now - p.proposedAt < patience)
                continue;
            if (leading && p.proposedTo == m_config.nodeId && p.proposedTerm == term)
                continue;
            m_waiting.push_back(id);
        }
    }
    issueWaiting();
    scheduleProcess();
}

void EngineWorker::writeDeferredHardState(bool stopping)
{
    // Only once nothing is being written: a write in flight is followed by the next Ready's, which
    // carries it. At the stop there is no next one: a restart then applies up to it at once.
    if (!m_deferredHardState || !m_writer || (!m_writes.empty() && !stopping))
        return;
    storage::LogWriter::Batch b;
    b.id = ++m_nextBatchId;
    b.hardState = std::exchange(m_deferredHardState, std::nullopt);
    b.mustSync = false;
    m_writer->submit(std::move(b));
}

void EngineWorker::onMessages(std::vector<raft::Message> &&messages)
{
    if (!m_node)
        return;
    try {
        advanceTicks(); // a heartbeat is stamped with the core's tick: it must not be behind
        for (raft::Message &m : messages) {
            if (m.type == raft::MessageType::Propose && !stampedByItsSender(m))
                continue;
            if (m.type == raft::MessageType::Snapshot && m.snapshot)
                m_receivedSnapshots.emplace_back(m.snapshot->metadata.index, m.snapshot->metadata.term);
            m_node->step(std::move(m));
        }
    } catch (const std::exception &e) {
        // A message conflicting with a committed entry: a safety bug or a damaged peer.
        onCoreFailure(e.what());
        return;
    }
    scheduleProcess();
}

bool EngineWorker::stampedByItsSender(raft::Message &m)
{
    // A forwarded proposal may only carry commands of the node that forwarded it (the transport
    // authenticated that node): one that names another origin would finish that node's pending
    // call with content it never wrote. Drop such entries, keep the rest.
    const std::size_t before = m.entries.size();
    std::erase_if(m.entries, [&](const raft::Entry &e) {
        if (e.type == raft::EntryType::ConfChange)
            return !acceptForwardedConfChange(e, m.from);
        kv::Command c;
        std::string why;
        return !kv::decodeCommand(e.data.view(), c, why) || c.origin != m.from
               || std::any_of(c.clientAddresses.begin(), c.clientAddresses.end(), [&](const auto &a) { return a.first != m.from; });
    });
    if (m.entries.size() != before)
        qCWarning(lcEngine).noquote() << QStringLiteral("node %1: dropped %2 forwarded command(s) from node %3 that named another origin, "
                                                        "set another node's client address or did not parse")
                                             .arg(m_config.nodeId)
                                             .arg(before - m.entries.size())
                                             .arg(m.from);
    return !m.entries.empty();
}

void EngineWorker::onDurable(std::uint64_t upToBatchId)
{
    if (!m_node)
        return;
    std::vector<raft::Message> out;
    while (!m_writes.empty() && m_writes.front().batchId <= upToBatchId) {
        WriteInFlight &w = m_writes.front();
        if (!acknowledgeWrite(w.writeId))
            return;
        std::move(w.afterPersist.begin(), w.afterPersist.end(), std::back_inserter(out));
        m_writes.pop_front();
    }
    sendAtOnce(std::move(out)); // a leader's commit waits on these acknowledgements
    scheduleProcess();
}

bool EngineWorker::acknowledgeWrite(std::uint64_t writeId)
{
    try {
        m_node->acknowledgePersisted(writeId);
    } catch (const std::exception &e) {
        onCoreFailure(e.what());
        return false;
    }
    return true;
}

void EngineWorker::sendAtOnce(std::vector<raft::Message> messages)
{
    if (messages.empty())
        return;
    m_transport->send(std::move(messages));
    m_transport->sendQueuedNow();
}

void EngineWorker::process()
{
    if (!m_node || m_down)
        return;
    const NodeId leaderBefore = m_leader;
    // A few Readys per turn, then back to the event loop (the rest is rescheduled below): a node
    // replaying a long log at start must still take stop() and its timers in between.
    for (int readys = 0; readys < 8 && m_node->hasReady(); ++readys) {
        raft::Ready rd;
        try {
            rd = m_node->ready();
        } catch (const std::exception &e) {
            onCoreFailure(e.what()); // the log could not give back committed entries
            return;
        }
        // A snapshot from the leader replaces the state now, and the log with the write below
        // (before this Ready's entries, and before the acknowledgement that it was installed).
        if (rd.snapshot && !installSnapshot(*rd.snapshot))
            return;
        refreshPeers(); // a learner just added in the log is reached with this Ready's messages
        // Every transition, not only the last of this Ready (lifecycle: nothing is coalesced), in
        // the order it happened; in each, the term first, so a leader is announced after the term
        // it leads (a getter in a leaderChanged slot shows that term, never an older one).
        for (const raft::SoftState &s : rd.softStates) {
            tellIndexes(true); // what happened before a transition is told before it
            if (s.term != m_term) {
                m_term = s.term;
                Q_EMIT termChanged(m_term);
            }
            if (s.leader != m_leader || s.role != m_role) {
                m_leader = s.leader;
                m_role = s.role;
                Q_EMIT softStateChanged(m_leader, toRole(m_role));
            }
        }
        if (rd.hardState && rd.hardState->term != m_term) {
            // Every term change is a transition too; this only guards the invariant.
            tellIndexes(true);
            m_term = rd.hardState->term;
            Q_EMIT termChanged(m_term);
        }
        if (rd.hardState && !rd.mustSync && rd.entries.empty() && !rd.snapshot) {
            // Only the commit index moved (the term and vote did not: mustSync is false). Raft
            // needs no durable commit index (a restart learns it again from the leader, and
            // starts from at least its snapshot's), so this waits for the next write rather than
            // making one. A tick writes it once idle.
            m_deferredHardState = rd.hardState;
            rd.hardState.reset();
        }
        // What need not wait for this Ready's write leaves before it, at once: a leader's appends
        // reach its followers, whose syncs are on the commit path, before its own write is handed
        // over; and nothing waits behind a follower's inline sync. (At gateway put c=1, 8
        // interleaved pairs: +5%; put c=64 unchanged.) Appends with no entries, which carry only
        // the commit index (or probe), wait until this Ready's committed entries are applied and
        // answered: nothing but a follower's apply waits on them, and a client's answer need not
        // wait for two more sends (gateway put c=1, 6 pairs: +5%).
        std::vector<raft::Message> afterApply;
        if (!rd.committedEntries.empty()) {
            const auto empty = std::stable_partition(rd.messages.begin(), rd.messages.end(), [](const raft::Message &m) {
                return m.type != raft::MessageType::Append || !m.entries.empty();
            });
            afterApply.assign(std::make_move_iterator(empty), std::make_move_iterator(rd.messages.end()));
            rd.messages.erase(empty, rd.messages.end());
        }
        sendAtOnce(std::move(rd.messages));
        if (!rd.entries.empty() || rd.hardState || rd.snapshot) {
            storage::LogWriter::Batch b;
            b.id = ++m_nextBatchId;
            if (rd.snapshot)
                b.reset = std::make_pair(rd.snapshot->metadata.index, rd.snapshot->metadata.term);
            b.entries = std::move(rd.entries);
            // A later hard state holds the deferred one's commit index (or a higher one).
            b.hardState = rd.hardState ? rd.hardState : m_deferredHardState;
            m_deferredHardState.reset();
            b.mustSync = rd.mustSync;
            // A follower's append is on its leader's commit path: written and synced here and
            // answered at once, it saves the hand-over to the writer's thread and back (two
            // thread wake-ups per round trip). Only with nothing in flight (writes keep their
            // order) and while the disk is quick: during a slow sync the writer's thread waits
            // instead, and this thread goes on answering heartbeats.
            storage::LogWriter::WriteNow now = storage::LogWriter::WriteNow::Busy;
            if (m_role == raft::Role::Follower && !rd.snapshot && m_writes.empty() && m_clock.elapsed() >= m_inlineWritesFrom) {
                QElapsedTimer took;
                took.start();
                now = m_writer->writeNow(b);
                if (took.elapsed() > InlineWriteSlowMs)
                    m_inlineWritesFrom = m_clock.elapsed() + InlineWritePauseMs;
            }
            if (now == storage::LogWriter::WriteNow::Failed)
                return; // reported through the writer's error callback (onStorageError)
            if (now == storage::LogWriter::WriteNow::Durable) {
                if (!acknowledgeWrite(rd.writeId))
                    return;
                sendAtOnce(std::move(rd.messagesAfterPersist));
            } else {
                WriteInFlight w;
                w.batchId = b.id;
                w.writeId = rd.writeId;
                w.afterPersist = std::move(rd.messagesAfterPersist);
                m_writes.push_back(std::move(w));
                m_writer->submit(std::move(b));
            }
        } else if (!rd.messagesAfterPersist.empty()) {
            // Nothing new to write, but earlier writes may still be on their way to the disk.
            if (m_writes.empty())
                m_transport->send(std::move(rd.messagesAfterPersist));
            else
                for (raft::Message &m : rd.messagesAfterPersist)
                    m_writes.back().afterPersist.push_back(std::move(m));
        }
        if (!rd.committedEntries.empty())
            applyCommitted(rd.committedEntries);
        if (!afterApply.empty())
            m_transport->send(std::move(afterApply)); // at the end of this pass
        for (const raft::ReadState &rs : rd.readStates) {
            auto it = m_pending.find(rs.context);
            if (it == m_pending.end() || it->second.gotIndex)
                continue;
            it->second.gotIndex = true;
            it->second.readIndex = rs.index;
            m_readsAtIndex.emplace(rs.index, rs.context);
        }
        for (std::uint64_t ctx : rd.droppedReads) {
            // No answer will come (no leader, leadership changed, no quorum in time): ask again
            // once a leader is known, until the call's deadline.
            auto it = m_pending.find(ctx);
            if (it != m_pending.end() && !it->second.gotIndex)
                m_waiting.push_back(ctx);
        }
    }
    for (const auto &[index, term] : m_receivedSnapshots)
        m_snapshots->fileSystem().remove(m_snapshots->receivedPath(index, term)); // not installed: stale
    m_receivedSnapshots.clear();
    if (m_leader != leaderBefore && m_leader != 0) {
        // A new leader: writes handed to another leader, or to this one in an earlier term, may be
        // lost with that leadership. Propose them again under the same request ids (the state
        // machine applies each id once).
        for (auto &[id, p] : m_pending)
            if (p.proposed && p.request->kind == EngineRequest::Kind::Write && (p.proposedTo != m_leader || p.proposedTerm != m_term))
                m_waiting.push_back(id);
        issueWaiting();
    }
    serveReads();
    refreshPeers();
    driveMembership();
    recordMissingAddresses();
    establishHistory();
    advertiseClientAddress();
    serveWatches(false);
    maybeSnapshot();
    if (m_removed && m_role != raft::Role::Leader) {
        QMetaObject::invokeMethod(this, &EngineWorker::shutdown, Qt::QueuedConnection);
        return;
    }
    if (m_handingOver && (m_role != raft::Role::Leader || m_node->raft().leadTransferee() == raft::NoNode)) {
        // Another node campaigns now (this one stepped down on its vote request), or the core gave
        // the transfer up (the target did not catch up within an election timeout): stop now.
        QMetaObject::invokeMethod(this, &EngineWorker::shutdown, Qt::QueuedConnection);
        return;
    }

    announce();
    // This turn's messages (appends a commit waits on, answers to them) leave now, not on the
    // next turn; whatever the turn sent to one peer is still one frame.
    m_transport->sendQueuedNow();
    if (m_node->hasReady())
        scheduleProcess();
}

void EngineWorker::announce()
{
    const raft::NodeStatus st = m_node->status();
    // The indexes first: a slot for ready() or firstCommit() reads appliedIndex() and must find the
    // entry they announce applied.
    if (st.hardState.commit != m_commit || m_kv.appliedIndex() != m_applied) {
        m_commit = st.hardState.commit;
        m_applied = m_kv.appliedIndex();
        m_sharedCommit.store(m_commit, std::memory_order_relaxed);
        m_sharedApplied.store(m_applied, std::memory_order_release);
        m_indexesUntold = true;
        tellIndexes(false);
    }
    // Ready: the leader of this node's term is known and its first entry is applied here.
    const bool termStarted = m_firstOfTermIndex > 0 && m_firstOfTermTerm == st.hardState.term && m_applied >= m_firstOfTermIndex;
    if (!m_ready && m_leader != 0 && termStarted) {
        m_ready = true;
        tellIndexes(true);
        Q_EMIT readyReached();
    }
    if (m_ready && termStarted && m_firstCommitTold != m_firstOfTermTerm) {
        m_firstCommitTold = m_firstOfTermTerm;
        tellIndexes(true);
        Q_EMIT firstCommit(m_firstOfTermIndex);
    }
}

void EngineWorker::applyCommitted(std::vector<raft::Entry> &entries)
{
    for (const raft::Entry &e : entries) {
        const bool firstOfTerm = e.term > m_lastAppliedTerm; // a leader's no-op
        if (firstOfTerm) {
            m_firstOfTermTerm = e.term;
            m_firstOfTermIndex = e.index;
        }
        m_lastAppliedTerm = e.term;
        m_bytesSinceSnapshot += raft::entrySize(e);
        kv::KvStore::Applied a = m_kv.apply(e);
        m_events.append(e.index, std::move(a.events));
        if (e.type == raft::EntryType::ConfChange) {
            // The core put it in force when it reached the log; applied, it is the membership.
            raft::ConfState cs;
            if (raft::decodeConfState(e.data, cs))
                onConfigurationApplied(cs, e.index);
            continue;
        }
        if (firstOfTerm)
            announce(); // ready() and firstCommit() before any answer that follows this entry
        if (a.outcome == kv::KvStore::ApplyOutcome::Malformed)
            qCWarning(lcEngine).noquote() << QStringLiteral("node %1: entry %2 is not a command; skipped").arg(m_config.nodeId).arg(e.index);
        if (a.outcome != kv::KvStore::ApplyOutcome::Applied)
            continue;
        if (a.command.lease)
            onLeaseApplied(a);
        QByteArray value;
        if (a.command.application) {
            // Every node applies it; the proposer's call gets what its own apply returned.
            if (m_stateMachine)
                value = m_stateMachine->apply(e.index, toBytes(*a.command.application));
            else if (!m_warnedNoStateMachine) {
                m_warnedNoStateMachine = true;
                qCWarning(lcEngine).noquote() << QStringLiteral("node %1: the log holds application commands but no state machine "
                                                                "is installed here (DEngine::setStateMachine): they are skipped")
                                                     .arg(m_config.nodeId);
            }
        }
        if (a.command.origin != m_config.nodeId || a.command.session != m_session || !m_pending.count(a.command.request))
            continue;
        DEngineResult r = baseResult(a.rejected.empty() ? DEngine::Status::Ok : a.notFound ? DEngine::Status::NotFound : DEngine::Status::Refused);
        r.revision = e.index;
        r.value = std::move(value);
        r.succeeded = a.succeeded;
        r.lease = a.leaseId;
        r.ttlMs = static_cast<qint64>(a.leaseTtlMs);
        if (!a.rejected.empty())
            r.message = QString::fromStdString(a.rejected);
        finish(a.command.request, std::move(r));
    }
}

void EngineWorker::serveReads()
{
    const raft::Index applied = m_kv.appliedIndex();
    while (!m_readsAtIndex.empty() && m_readsAtIndex.begin()->first <= applied) {
        const std::uint64_t id = m_readsAtIndex.begin()->second;
        m_readsAtIndex.erase(m_readsAtIndex.begin());
        auto it = m_pending.find(id);
        if (it == m_pending.end())
            continue;
        Pending p = std::move(it->second);
        m_pending.erase(it);
        serveRead(p);
    }
}

void EngineWorker::serveRead(Pending &p)
{
    const EngineRequest &q = *p.request;
    DEngineResult r = baseResult(DEngine::Status::Ok);
    r.revision = m_kv.appliedIndex();
    switch (q.kind) {
    case EngineRequest::Kind::Get: {
        if (const auto v = m_kv.record(q.key)) {
            r.value = toBytes(v->value);
            if (m_kv.historyFrom() != 0) { // before, this replica's own count: not told
                r.createRevision = v->createRevision;
                r.modRevision = v->modRevision;
                r.version = v->version;
            }
        } else {
            r.status = DEngine::Status::NotFound;
        }
        break;
    }
    case EngineRequest::Kind::Scan:
    case EngineRequest::Kind::Range: {
        // Bounded (maxScanItems, maxScanBytes), whatever the caller's limit: a whole store is not
        // copied on the Raft thread. nextKey says where the rest begins.
        const std::size_t cap = static_cast<std::size_t>(m_config.maxScanItems);
        const std::size_t limit = q.limit == 0 ? cap : std::min(q.limit, cap);
        const auto maxBytes = static_cast<std::size_t>(m_config.maxScanBytes);
        const kv::KvStore::Page page = q.kind == EngineRequest::Kind::Scan ? m_kv.scan(q.key, limit, maxBytes)
                                                                            : m_kv.range(q.key, q.end, limit, maxBytes);
        r.items.reserve(static_cast<qsizetype>(page.items.size()));
        const bool histories = m_kv.historyFrom() != 0; // before, this replica's own count: not told
        for (std::size_t i = 0; i < page.items.size(); ++i) {
            const kv::KeyRecord &rec = page.records[i];
            r.items.push_back(DEngineKeyValue{toBytes(page.items[i].first), toBytes(page.items[i].second), histories ? rec.createRevision : 0,
                                              histories ? rec.modRevision : 0, histories ? rec.version : 0});
        }
        r.nextKey = toBytes(page.nextKey);
        break;
    }
    case EngineRequest::Kind::Query:
        if (m_stateMachine)
            r.value = m_stateMachine->query(toBytes(q.key));
        break;
    case EngineRequest::Kind::LeaseInfo: {
        const std::uint64_t id = q.lease ? q.lease->id : 0;
        r.lease = id;
        const auto l = m_kv.leases().find(id);
        if (l == m_kv.leases().end()) {
            r.status = DEngine::Status::NotFound;
            r.message = QStringLiteral("lease %1 not found (expired or revoked)").arg(id);
            break;
        }
        r.ttlMs = static_cast<qint64>(l->second.ttlMs);
        for (const std::string &key : l->second.keys)
            r.items.push_back(DEngineKeyValue{toBytes(key), {}, 0, 0, 0});
        if (m_role == raft::Role::Leader && m_leaseTerm == m_term) {
            const auto deadline = m_leaseDeadlines.find(id);
            r.remainingMs = deadline == m_leaseDeadlines.end() ? r.ttlMs : std::max<qint64>(0, deadline->second - m_clock.elapsed());
        } else if (m_role == raft::Role::Leader) {
            r.remainingMs = r.ttlMs; // this leader's timers start once its term's first entry is applied
        } else {
            r.message = QStringLiteral("the time left is known to the leader (node %1)").arg(m_leader);
        }
        break;
    }
    case EngineRequest::Kind::Write:
    case EngineRequest::Kind::Membership: break;
    }
    p.request->complete(std::move(r));
}

void EngineWorker::finish(std::uint64_t id, DEngineResult result)
{
    auto it = m_pending.find(id);
    if (it == m_pending.end())
        return;
    it->second.request->complete(std::move(result));
    m_pendingWrites.erase(id);
    m_pending.erase(it);
}

void EngineWorker::failPending(DEngine::Status status, const QString &why)
{
    for (auto &[id, p] : m_pending) {
        // A write already handed to a leader may still be committed by the others: its outcome is
        // unknown (Timeout), unlike calls that never left this node, which get `status`.
        const bool unknown = p.request->changesState() && p.proposed;
        p.request->complete(unknown ? baseResult(DEngine::Status::Timeout,
                                                 QStringLiteral("%1; the write had reached a leader and may or may not take effect").arg(why))
                                    : baseResult(status, why));
    }
    m_pending.clear();
    m_pendingWrites.clear();
}

void EngineWorker::expire()
{
    const qint64 now = m_clock.elapsed();
    while (!m_deadlines.empty() && m_deadlines.front().first <= now) {
        const std::uint64_t id = m_deadlines.front().second;
        m_deadlines.pop_front();
        auto it = m_pending.find(id);
        if (it == m_pending.end())
            continue;
        const Pending &p = it->second;
        const bool write = p.request->changesState();
        // Never handed to a leader: certainly not carried out. Otherwise the outcome is unknown.
        if (!p.proposed && !p.waitingFor.isEmpty())
            finish(id, baseResult(DEngine::Status::Timeout, p.waitingFor));
        else if ((write && !p.proposed) || (!write && !p.gotIndex))
            finish(id, baseResult(DEngine::Status::NoQuorum, QStringLiteral("no leader could be reached within the request timeout")));
        else
            finish(id, baseResult(DEngine::Status::Timeout,
                                  write ? QStringLiteral("not applied within the request timeout: the change may or may not take effect")
                                        : QStringLiteral("not answered within the request timeout")));
    }
}

} // namespace dengine::engine
