// SPDX-License-Identifier: Apache-2.0
// Watches (changes handed to watchers from the node's event history) and leases (timed by the
// leader, expired through the log).
#include "engine/engineworker.h"

#include "engine/watcher_p.h"

#include <QtCore/QLoggingCategory>

#include <algorithm>

Q_DECLARE_LOGGING_CATEGORY(lcEngine)

namespace dengine::engine {

namespace {

QByteArray toBytes(const std::string &s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); }

// At most this much per delivery, so that one watcher does not hold the worker for long.
constexpr std::size_t MaxDeliveryBytes = 1 << 20;
// Idle watches hear how far they are about this often.
constexpr qint64 ProgressIntervalMs = 1000;

} // namespace

void EngineWorker::addWatch(std::shared_ptr<WatchSink> sink, std::string begin, std::string end, quint64 from)
{
    if (m_down || !m_node) {
        sink->finish(DEngine::Status::Stopping, QStringLiteral("the engine is not running"));
        return;
    }
    Watch w;
    w.sink = std::move(sink);
    w.begin = std::move(begin);
    w.end = std::move(end);
    w.next = from == 0 ? m_kv.appliedIndex() + 1 : from;
    w.told = w.next - 1;
    if (w.next <= m_events.compacted()) {
        w.sink->finish(DEngine::Status::Compacted, QStringLiteral("revision %1 is older than this node's watch history, which starts after %2")
                                                     .arg(w.next)
                                                     .arg(m_events.compacted()));
        return;
    }
    if (from == 0) // the owner learns where the watch starts
        w.sink->post({}, w.told, 0);
    m_watches.emplace(++m_nextWatch, std::move(w));
    serveWatches(false);
}

void EngineWorker::serveWatches(bool progress)
{
    if (m_watches.empty())
        return;
    const qint64 now = m_clock.elapsed();
    const bool tell = progress && now - m_watchProgressAt >= ProgressIntervalMs;
    if (tell)
        m_watchProgressAt = now;
    kv::EventLog::Slice slice;
    for (auto it = m_watches.begin(); it != m_watches.end();) {
        Watch &w = it->second;
        if (w.sink->cancelled.load(std::memory_order_acquire)) {
            it = m_watches.erase(it);
            continue;
        }
        if (w.next <= m_events.compacted()) {
            // It fell behind the history while its consumer was slow: a gap would follow.
            w.sink->finish(DEngine::Status::Compacted,
                           QStringLiteral("the watch fell behind this node's history (at revision %1; the history starts after %2): "
                                          "read the keys again and watch from there")
                               .arg(w.next)
                               .arg(m_events.compacted()));
            it = m_watches.erase(it);
            continue;
        }
        const qint64 credit = w.sink->credit.load(std::memory_order_acquire);
        if (w.next <= m_events.last() && credit > 0) {
            const std::size_t budget = std::min<std::size_t>(static_cast<std::size_t>(credit), MaxDeliveryBytes);
            m_events.read(w.next, w.begin, w.end, budget, slice);
            w.next = slice.upTo + 1;
            if (!slice.events.empty()) {
                QList<DEngineWatchEvent> events;
                events.reserve(static_cast<qsizetype>(slice.events.size()));
                for (const kv::Event &e : slice.events)
                    events.push_back(DEngineWatchEvent{e.type == kv::Event::Type::Put ? DEngineWatchEvent::Type::Put : DEngineWatchEvent::Type::Delete,
                                                       toBytes(e.key), toBytes(e.value), e.revision, e.createRevision, e.version, e.lease});
                const auto bytes = static_cast<qint64>(slice.bytes);
                w.sink->credit.fetch_sub(bytes, std::memory_order_acq_rel);
                w.sink->post(std::move(events), slice.upTo, bytes);
                w.told = slice.upTo;
            }
        }
        if (tell && w.told + 1 < w.next) {
            w.told = w.next - 1;
            w.sink->post({}, w.told, 0);
        }
        ++it;
    }
}

void EngineWorker::finishWatches(DEngine::Status status, const QString &why)
{
    for (auto &[id, w] : m_watches)
        w.sink->finish(status, why);
    m_watches.clear();
}

void EngineWorker::onLeaseApplied(const kv::KvStore::Applied &a)
{
    if (m_role != raft::Role::Leader || m_leaseTerm != m_term || !a.rejected.empty())
        return;
    switch (a.command.lease->kind) {
    case kv::LeaseCommand::Kind::Grant:
    case kv::LeaseCommand::Kind::KeepAlive:
        m_leaseDeadlines[a.leaseId] = m_clock.elapsed() + static_cast<qint64>(a.leaseTtlMs);
        m_leaseExpiryProposed.erase(a.leaseId);
        break;
    case kv::LeaseCommand::Kind::Revoke:
    case kv::LeaseCommand::Kind::Expire:
        if (!m_kv.leases().count(a.leaseId)) {
            m_leaseDeadlines.erase(a.leaseId);
            m_leaseExpiryProposed.erase(a.leaseId);
        }
        break;
    }
}

void EngineWorker::driveLeases()
{
    if (!m_node || m_down)
        return;
    if (m_role != raft::Role::Leader || m_handingOver) {
        // Only a leader's clock decides; a follower keeps no timers.
        m_leaseDeadlines.clear();
        m_leaseExpiryProposed.clear();
        m_leaseTerm = 0;
        return;
    }
    const qint64 now = m_clock.elapsed();
    if (m_leaseTerm != m_term) {
        // A new leader starts every lease's timer afresh, once it has applied everything the
        // leaders before it committed (its term's first entry): no lease runs out early.
        if (m_firstOfTermTerm != m_term || m_kv.appliedIndex() < m_firstOfTermIndex)
            return;
        m_leaseTerm = m_term;
        m_leaseDeadlines.clear();
        m_leaseExpiryProposed.clear();
        for (const auto &[id, lease] : m_kv.leases())
            m_leaseDeadlines[id] = now + static_cast<qint64>(lease.ttlMs);
        if (!m_kv.leases().empty())
            qCInfo(lcEngine).noquote() << QStringLiteral("node %1: leading term %2: %3 lease(s) get their whole TTL from now")
                                              .arg(m_config.nodeId)
                                              .arg(m_term)
                                              .arg(m_kv.leases().size());
    }
    // Leases granted while the timers were being set, and those gone since.
    for (const auto &[id, lease] : m_kv.leases())
        m_leaseDeadlines.try_emplace(id, now + static_cast<qint64>(lease.ttlMs));
    const qint64 retry = 2LL * m_config.electionTicks * m_config.tickIntervalMs;
    for (auto it = m_leaseDeadlines.begin(); it != m_leaseDeadlines.end();) {
        const auto lease = m_kv.leases().find(it->first);
        if (lease == m_kv.leases().end()) {
            m_leaseExpiryProposed.erase(it->first);
            it = m_leaseDeadlines.erase(it);
            continue;
        }
        if (it->second <= now) {
            const auto proposed = m_leaseExpiryProposed.find(it->first);
            if (proposed == m_leaseExpiryProposed.end() || now - proposed->second >= retry) {
                kv::Command cmd;
                cmd.lease = kv::LeaseCommand{kv::LeaseCommand::Kind::Expire, it->first, 0, lease->second.renewedAt};
                proposeInternal(std::move(cmd));
                m_leaseExpiryProposed[it->first] = now;
                qCDebug(lcEngine).noquote() << QStringLiteral("node %1: lease %2 ran out; expiring it").arg(m_config.nodeId).arg(it->first);
            }
        }
        ++it;
    }
}

} // namespace dengine::engine
