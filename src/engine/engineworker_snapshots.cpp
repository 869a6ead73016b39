// SPDX-License-Identifier: Apache-2.0
// EngineWorker, continued: snapshots of the state machine, log compaction behind them, restart from
// the newest snapshot, and installing a snapshot received from the leader.
#include "engine/engineworker.h"

#include "engine/peertransport.h"
#include "raft/bytes.h"
#include "storage/logwriter.h"
#include "storage/snapshotstore.h"
#include "storage/wal.h"

#include <QtCore/QElapsedTimer>

#include <sys/resource.h>
#include <unistd.h>
#include <QtCore/QLoggingCategory>

Q_DECLARE_LOGGING_CATEGORY(lcEngine)

namespace dengine::engine {

namespace {

// The data of an engine snapshot: "DESTATE2", u64 term and u64 index of the first entry of the
// last term whose first entry the state includes (what firstCommit() names: a node that starts
// from the snapshot in that term still knows it, the entry itself being compacted), u64 length of
// the application's state, that state (DEngineStateMachine::snapshot), then the key-value store's
// snapshot (kv::KvStore) to the end. "DESTATE1" (read only) lacks the term and index.
constexpr std::string_view StateMagic = "DESTATE2";
constexpr std::string_view StateMagicV1 = "DESTATE1";

double mib(quint64 bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

} // namespace

bool EngineWorker::restoreState(const raft::Snapshot &snapshot, QString &why)
{
    const std::string_view d = snapshot.data.view();
    const bool v1 = d.substr(0, StateMagicV1.size()) == StateMagicV1;
    if (!v1 && d.substr(0, StateMagic.size()) != StateMagic) {
        why = QStringLiteral("not a DEngine state snapshot");
        return false;
    }
    raft::ByteReader r{d.substr(StateMagic.size())};
    std::uint64_t firstTerm = 0, firstIndex = 0;
    if (!v1) {
        firstTerm = r.take(8);
        firstIndex = r.take(8);
    }
    const std::uint64_t appBytes = r.take(8);
    if (!r.ok || appBytes > r.in.size()) {
        why = QStringLiteral("the application's state is cut short");
        return false;
    }
    const std::string_view app = r.in.substr(0, appBytes);
    std::string kvWhy;
    if (!m_kv.restore(r.in.substr(appBytes), kvWhy)) {
        why = QString::fromStdString(kvWhy);
        return false;
    }
    if (m_kv.appliedIndex() != snapshot.metadata.index) {
        why = QStringLiteral("the key-value state is at index %1, not the snapshot's %2").arg(m_kv.appliedIndex()).arg(snapshot.metadata.index);
        return false;
    }
    if (m_stateMachine) {
        if (!m_stateMachine->restore(snapshot.metadata.index, QByteArray(app.data(), static_cast<qsizetype>(app.size())))) {
            why = QStringLiteral("the application's state machine could not restore its state");
            return false;
        }
    } else if (!app.empty()) {
        qCWarning(lcEngine).noquote() << QStringLiteral("node %1: the snapshot holds application state but no state machine is installed here")
                                             .arg(m_config.nodeId);
    }
    m_events.reset(snapshot.metadata.index); // what came before is not known here: watches from there are Compacted
    m_lastAppliedTerm = snapshot.metadata.term;
    if (snapshot.metadata.term > m_firstOfTermTerm) {
        // The first entry of the snapshot's term is in it: applied, as far as ready() goes. Its
        // index is the snapshot's own only where an old (DESTATE1) snapshot does not say.
        m_firstOfTermTerm = snapshot.metadata.term;
        m_firstOfTermIndex = firstTerm == snapshot.metadata.term && firstIndex > 0 && firstIndex <= snapshot.metadata.index ? firstIndex
                                                                                                                          : snapshot.metadata.index;
    }
    m_appliedAtSnapshot = snapshot.metadata.index;
    m_bytesSinceSnapshot = 0;
    return true;
}

bool EngineWorker::loadSnapshotAtStart(raft::Index &applied)
{
    applied = 0;
    m_snapshots = std::make_unique<storage::SnapshotStore>(m_config.dataDirectory.toStdString());
    QElapsedTimer timer;
    timer.start();
    storage::StartPoint start;
    const storage::StorageStatus st = storage::openStartPoint(
        *m_snapshots, *m_wal,
        [this](const raft::Snapshot &snap, std::string &why) {
            QString reason;
            if (restoreState(snap, reason))
                return true;
            why = reason.toStdString();
            m_kv = kv::KvStore(); // a damaged snapshot may have left part of its state
            return false;
        },
        start);
    for (const std::string &note : start.notes)
        qCWarning(lcEngine).noquote() << QStringLiteral("node %1: snapshot %2").arg(m_config.nodeId).arg(QString::fromStdString(note));
    if (!st) {
        if (st.code == storage::StorageErrorCode::Corrupt)
            fatal(DEngine::Error::CorruptData,
                  QStringLiteral("%1 in %2. Remove the data directory and add the node again as a new member; it will get a snapshot "
                                 "from the leader.")
                      .arg(QString::fromStdString(st.message), m_config.dataDirectory));
        else
            fatal(DEngine::Error::StorageFailure, QString::fromStdString(st.message));
        return false;
    }
    if (!start.snapshot)
        return true;
    const raft::SnapshotMetadata &meta = *start.snapshot;
    if (start.logReset)
        qCInfo(lcEngine).noquote() << QStringLiteral("node %1: finished installing snapshot %2 (the log now starts after it)").arg(m_config.nodeId).arg(meta.index);
    m_storage->setSnapshot(meta);
    applied = meta.index;
    qCInfo(lcEngine).noquote() << QStringLiteral("node %1: restored snapshot at index %2 (term %3, %4 keys) in %5 ms; the log after it: %6..%7")
                                      .arg(m_config.nodeId)
                                      .arg(meta.index)
                                      .arg(meta.term)
                                      .arg(m_kv.size())
                                      .arg(timer.elapsed())
                                      .arg(meta.index + 1)
                                      .arg(m_wal->lastIndex());
    return true;
}

void EngineWorker::maybeSnapshot(bool now)
{
    if (m_snapshotting || !m_snapshots || m_down || !m_node)
        return;
    const raft::Index applied = m_kv.appliedIndex();
    if (applied == 0 || (!now && applied <= m_storage->snapshotMetadata().index))
        return;
    const bool byEntries = m_config.snapshotEntries > 0 && applied - m_appliedAtSnapshot >= static_cast<quint64>(m_config.snapshotEntries);
    const bool byBytes = m_config.snapshotBytes > 0 && m_bytesSinceSnapshot >= static_cast<quint64>(m_config.snapshotBytes);
    if (!now && !byEntries && !byBytes)
        return;
    const std::optional<raft::ConfState> conf = m_node->confStateAt(applied);
    if (!conf || conf->voters.empty())
        return;
    const raft::SnapshotMetadata meta{applied, m_lastAppliedTerm, *conf};
    // The state as of `applied`: the keys frozen (no copy), the application's asked for here.
    std::shared_ptr<const kv::KvStore::Frozen> frozen = m_kv.freeze();
    std::string head(StateMagic);
    raft::putU64(head, m_firstOfTermTerm);
    raft::putU64(head, m_firstOfTermIndex);
    const QByteArray app = m_stateMachine ? m_stateMachine->snapshot(applied) : QByteArray();
    raft::putU64(head, static_cast<std::uint64_t>(app.size()));
    head.append(app.constData(), static_cast<std::size_t>(app.size()));

    m_snapshotting = true;
    m_appliedAtSnapshot = applied;
    m_bytesSinceSnapshot = 0;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    m_snapshotCancel = cancel;
    if (m_snapshotThread.joinable())
        m_snapshotThread.join(); // the previous one has finished (it posted its result)
    storage::SnapshotStore *store = m_snapshots.get();
    m_snapshotThread = std::thread([this, store, meta, frozen = std::move(frozen), head = std::move(head), cancel]() mutable {
        // Background work: it yields the CPU to the Raft thread and the log writer (this thread
        // alone; on Linux a thread's nice value is its own).
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
        QElapsedTimer timer;
        timer.start();
        std::unique_ptr<storage::SnapshotWriter> w;
        storage::StorageStatus st = storage::SnapshotWriter::create(*store, meta, w);
        if (st)
            st = w->append(head);
        if (st) {
            const bool whole = frozen->serialize([&](std::string_view piece) {
                if (cancel->load(std::memory_order_relaxed))
                    return false;
                st = w->append(piece);
                return st.ok();
            });
            if (st && !whole)
                st = {storage::StorageErrorCode::Config, "cancelled: the node is stopping"};
        }
        std::uint64_t bytes = 0;
        if (st)
            st = w->commit(&bytes);
        w.reset();
        frozen.reset(); // let go of the frozen keys before the worker folds its overlay back in
        const QString error = st ? QString() : QString::fromStdString(st.message);
        const qint64 ms = timer.elapsed();
        QMetaObject::invokeMethod(this, [this, meta, error, bytes, ms] { onSnapshotWritten(meta, error, bytes, ms); }, Qt::QueuedConnection);
    });
}

void EngineWorker::onSnapshotWritten(const raft::SnapshotMetadata &metadata, const QString &error, quint64 fileBytes, qint64 elapsedMs)
{
    m_snapshotting = false;
    if (!m_kv.thaw())
        qCWarning(lcEngine).noquote() << QStringLiteral("node %1: the key-value store is still frozen after a snapshot").arg(m_config.nodeId);
    if (m_down)
        return;
    if (!error.isEmpty()) {
        qCWarning(lcEngine).noquote() << QStringLiteral("node %1: snapshot at index %2 failed: %3; the log is kept whole and the next attempt "
                                                        "comes after another interval")
                                             .arg(m_config.nodeId)
                                             .arg(metadata.index)
                                             .arg(error);
        return;
    }
    const raft::SnapshotMetadata previous = m_storage->snapshotMetadata();
    if (metadata.index < previous.index)
        return; // a newer one came from the leader meanwhile
    m_storage->setSnapshot(metadata);
    ++m_snapshotsTaken;
    qCInfo(lcEngine).noquote() << QStringLiteral("node %1: snapshot at index %2 (term %3): %4 MiB written in %5 ms")
                                      .arg(m_config.nodeId)
                                      .arg(metadata.index)
                                      .arg(metadata.term)
                                      .arg(mib(fileBytes), 0, 'f', 1)
                                      .arg(elapsedMs);
    // The log is kept back to the snapshot before this one: should this one be found damaged at
    // the next start, the older one and the log after it still give the state.
    if (previous.index > 0 && previous.index < metadata.index && m_writer) {
        storage::LogWriter::Batch b;
        b.id = ++m_nextBatchId;
        b.mustSync = false;
        b.compact = std::make_pair(previous.index, previous.term);
        m_writer->submit(std::move(b));
    }
}

bool EngineWorker::installSnapshot(const raft::Snapshot &snapshot)
{
    const raft::SnapshotMetadata &meta = snapshot.metadata;
    QElapsedTimer timer;
    timer.start();
    const std::string received = m_snapshots->receivedPath(meta.index, meta.term);
    if (storage::StorageStatus st = m_snapshots->adopt(received, meta); !st) {
        fatal(DEngine::Error::StorageFailure, QStringLiteral("cannot install snapshot %1 from the leader: %2").arg(meta.index).arg(QString::fromStdString(st.message)));
        return false;
    }
    raft::Snapshot full;
    QString why;
    if (storage::StorageStatus st = m_snapshots->load(meta.index, meta.term, full); !st) {
        why = QString::fromStdString(st.message);
    } else if (!restoreState(full, why)) {
        why = QStringLiteral("snapshot %1: %2").arg(meta.index).arg(why);
    } else {
        m_storage->setSnapshot(meta);
        ++m_snapshotsInstalled;
        onConfigurationApplied(meta.confState, meta.index);
        qCInfo(lcEngine).noquote() << QStringLiteral("node %1: installed snapshot at index %2 (term %3) from the leader: %4 keys, %5 MiB, in %6 ms")
                                          .arg(m_config.nodeId)
                                          .arg(meta.index)
                                          .arg(meta.term)
                                          .arg(m_kv.size())
                                          .arg(mib(full.data.size()), 0, 'f', 1)
                                          .arg(timer.elapsed());
        return true;
    }
    // It was checked when it arrived: damage now is the disk's.
    failPending(DEngine::Status::StorageFailure, why);
    fatal(DEngine::Error::CorruptData, QStringLiteral("cannot install the leader's snapshot: %1").arg(why));
    return false;
}

void EngineWorker::onOwnSnapshotDamaged(const raft::SnapshotMetadata &metadata, const QString &why)
{
    const raft::SnapshotMetadata &current = m_storage->snapshotMetadata();
    if (m_down || metadata.index != current.index || metadata.term != current.term)
        return;
    qCCritical(lcEngine).noquote() << QStringLiteral("node %1: its snapshot at index %2 is damaged (%3): set aside; taking a fresh one")
                                          .arg(m_config.nodeId)
                                          .arg(metadata.index)
                                          .arg(why);
    m_snapshots->quarantine(metadata.index, metadata.term);
    // Until the fresh one is written, an older snapshot the log still reaches back to stands in.
    std::vector<std::pair<raft::Index, raft::Term>> all;
    m_snapshots->list(all);
    for (const auto &[index, term] : all) {
        raft::Snapshot older;
        if (index + 1 >= m_wal->firstIndex() && m_snapshots->load(index, term, older)) {
            m_storage->setSnapshot(older.metadata);
            break;
        }
    }
    if (!m_snapshotting) // else the one being written is fresh
        maybeSnapshot(true);
}

void EngineWorker::stopSnapshotThread()
{
    if (m_snapshotCancel)
        m_snapshotCancel->store(true);
    if (m_snapshotThread.joinable())
        m_snapshotThread.join();
}

} // namespace dengine::engine
