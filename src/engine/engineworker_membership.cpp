// SPDX-License-Identifier: Apache-2.0
// Membership on the worker: the calls of DEngine::addLearner, promote, removeMember and
// transferLeadership, the configuration this node applied, the transport's members, and the
// replicated address book (where members listen).
//
// A membership call is a goal ("node 4 is a learner at 127.0.0.1:7004", "node 1 is not a member")
// checked against the configuration this node applied: it finishes Ok as soon as the goal holds,
// whoever made the change. Until then the worker proposes what is missing (the address first, then
// the change), and proposes again after an election timeout when nothing came of it (a forwarded
// change is dropped silently by a leader that cannot take it yet). That makes every call safe to
// repeat, and a follower's call as good as the leader's.
#include "engine/engineworker.h"

#include "engine/hostport.h"
#include "engine/peertransport.h"
#include "raft/confchange.h"

#include <QtCore/QLoggingCategory>
#include <QtCore/QTimer>

#include <algorithm>

Q_DECLARE_LOGGING_CATEGORY(lcEngine)

namespace dengine::engine {

namespace {

// A learner is promoted only once it is this close to the leader's log: a voter far behind would
// stall commits for as long as it takes to catch up (thesis §4.2.1).
constexpr raft::Index PromoteMaxLagEntries = 1000;

bool has(const std::vector<raft::NodeId> &ids, raft::NodeId id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); }

QList<NodeId> sortedList(const std::vector<raft::NodeId> &ids)
{
    QList<NodeId> out(ids.begin(), ids.end());
    std::sort(out.begin(), out.end());
    return out;
}

QString fromStd(const std::string &s) { return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size())); }

} // namespace

std::optional<DEngineResult> EngineWorker::membershipOutcome(const Pending &p) const
{
    const EngineRequest &r = *p.request;
    const raft::ConfState &cs = m_appliedConf;
    const bool joint = raft::isJoint(cs);
    const bool voter = has(cs.voters, r.node);
    const bool learner = has(cs.learners, r.node);
    const bool outgoing = has(cs.votersOutgoing, r.node);
    const bool changePending = !(m_node->confState() == m_appliedConf);
    DEngineResult ok = baseResult(DEngine::Status::Ok);
    ok.revision = m_appliedConfIndex;
    const auto refused = [&](const QString &why) { return baseResult(DEngine::Status::Refused, why); };
    switch (r.change) {
    case EngineRequest::Change::AddLearner: {
        const auto &book = m_kv.memberAddresses();
        const auto it = book.find(r.node);
        if ((voter || learner) && it != book.end() && it->second == r.address)
            return ok;
        if (r.node == m_config.nodeId)
            return refused(QStringLiteral("node %1 is this node").arg(r.node));
        return std::nullopt;
    }
    case EngineRequest::Change::Promote:
        if (voter && !joint)
            return ok;
        if (!voter && !learner && !changePending)
            return refused(QStringLiteral("node %1 is not a member (add it with addLearner first)").arg(r.node));
        return std::nullopt;
    case EngineRequest::Change::Remove:
        if (!voter && !learner && !outgoing)
            return ok;
        return std::nullopt;
    case EngineRequest::Change::TransferLeadership:
        if (m_leader == r.node)
            return ok;
        if (p.proposed) {
            // Handed over: this node stepped down, and waits to hear from the new leader.
            if (m_leader != 0 && m_leader != m_config.nodeId)
                return refused(QStringLiteral("node %1 took the lead instead").arg(m_leader));
            return std::nullopt;
        }
        if (!voter || joint)
            return refused(QStringLiteral("node %1 is not a voter").arg(r.node));
        if (m_role != raft::Role::Leader)
            return refused(m_leader ? QStringLiteral("this node does not lead: ask node %1, the leader").arg(m_leader)
                                    : QStringLiteral("this node does not lead, and no leader is known"));
        return std::nullopt;
    }
    return std::nullopt;
}

void EngineWorker::driveMembership()
{
    if (m_membershipCalls.empty() || !m_node || m_down)
        return;
    const qint64 now = m_clock.elapsed();
    const qint64 retryMs = std::max<qint64>(200, static_cast<qint64>(m_config.electionTicks) * m_config.tickIntervalMs);
    const bool changePending = !(m_node->confState() == m_appliedConf);
    std::vector<std::uint64_t> calls;
    calls.swap(m_membershipCalls);
    for (std::uint64_t id : calls) {
        auto it = m_pending.find(id);
        if (it == m_pending.end()) {
            m_membershipTried.erase(id);
            continue;
        }
        Pending &p = it->second;
        const EngineRequest &r = *p.request;
        if (std::optional<DEngineResult> outcome = membershipOutcome(p)) {
            m_membershipTried.erase(id);
            finish(id, std::move(*outcome));
            continue;
        }
        m_membershipCalls.push_back(id);
        if (m_leader == 0)
            continue; // proposed once a leader is known (or NoQuorum at the deadline)
        if (auto tried = m_membershipTried.find(id); tried != m_membershipTried.end() && now - tried->second < retryMs)
            continue;
        if (r.change == EngineRequest::Change::TransferLeadership) {
            if (m_node->transferLeadership(r.node) == raft::Status::Ok) {
                p.proposed = true;
                m_membershipTried[id] = now;
            }
            continue;
        }
        if (r.change == EngineRequest::Change::AddLearner) {
            const auto &book = m_kv.memberAddresses();
            const auto known = book.find(r.node);
            if (known == book.end() || known->second != r.address) {
                // The address first: once the change is in a log, its members dial the new node.
                proposeAddresses({{r.node, r.address}});
                p.proposed = true;
                m_membershipTried[id] = now;
                continue;
            }
        }
        if (changePending)
            continue; // one change at a time: the one in the log is applied first
        std::vector<raft::ConfChangeOp> ops;
        switch (r.change) {
        case EngineRequest::Change::AddLearner: ops.push_back({raft::ConfChangeOp::Type::AddLearner, r.node}); break;
        case EngineRequest::Change::Promote: ops.push_back({raft::ConfChangeOp::Type::AddVoter, r.node}); break;
        case EngineRequest::Change::Remove: ops.push_back({raft::ConfChangeOp::Type::Remove, r.node}); break;
        case EngineRequest::Change::TransferLeadership: break;
        }
        raft::ConfState next;
        if (const std::string why = raft::planConfChange(m_appliedConf, ops, next); !why.empty()) {
            // What the rules rule out from the configuration in force: no retry makes it possible.
            m_membershipCalls.pop_back();
            m_membershipTried.erase(id);
            finish(id, baseResult(DEngine::Status::Refused, fromStd(why)));
            continue;
        }
        if (r.change == EngineRequest::Change::Promote && m_role == raft::Role::Leader && !caughtUp(r.node)) {
            p.waitingFor = QStringLiteral("node %1 did not catch up with the leader's log in time: not promoted").arg(r.node);
            continue; // look again at the next turn
        }
        std::string why;
        const raft::Status st = m_node->proposeConfChange(ops, &why);
        m_membershipTried[id] = now;
        if (st == raft::Status::Ok)
            p.proposed = true;
        else
            qCDebug(lcEngine).noquote() << QStringLiteral("node %1: membership change for node %2 not proposed yet: %3")
                                               .arg(m_config.nodeId)
                                               .arg(r.node)
                                               .arg(why.empty() ? QStringLiteral("no leader") : fromStd(why));
    }
}

bool EngineWorker::acceptForwardedConfChange(const raft::Entry &e, raft::NodeId from)
{
    std::vector<raft::ConfChangeOp> ops;
    if (!raft::decodeConfChangeOps(e.data, ops))
        return false;
    if (m_role != raft::Role::Leader)
        return true; // the core drops it
    for (const raft::ConfChangeOp &op : ops) {
        if (op.type != raft::ConfChangeOp::Type::AddVoter || !has(m_node->confState().learners, op.node) || caughtUp(op.node))
            continue;
        qCInfo(lcEngine).noquote() << QStringLiteral("node %1: not promoting node %2 for node %3 yet: it has not caught up").arg(m_config.nodeId).arg(op.node).arg(from);
        return false;
    }
    return true;
}

bool EngineWorker::caughtUp(raft::NodeId id) const
{
    // It answered lately, holds some of the log, and is close to its end.
    const auto &progress = m_node->raft().progress();
    const auto pr = progress.find(id);
    if (pr == progress.end())
        return false;
    const raft::Index last = m_node->status().lastIndex;
    return pr->second.recentActive && pr->second.match > 0 && pr->second.match + PromoteMaxLagEntries >= last;
}

void EngineWorker::proposeInternal(kv::Command cmd)
{
    cmd.origin = m_config.nodeId;
    cmd.session = m_session;
    cmd.request = ++m_nextRequest;
    cmd.lowestPending = m_pendingWrites.empty() ? cmd.request : std::min(cmd.request, *m_pendingWrites.begin());
    m_node->propose(kv::encodeCommand(cmd));
}

void EngineWorker::proposeAddresses(std::vector<std::pair<raft::NodeId, std::string>> addresses)
{
    kv::Command cmd;
    cmd.members = std::move(addresses);
    proposeInternal(std::move(cmd));
}

void EngineWorker::advertiseClientAddress()
{
    if (m_kv.clientAddresses() != m_clientBook) {
        m_clientBook = m_kv.clientAddresses();
        emitMembers();
    }
    if (m_config.clientAddress.isEmpty() || !m_ready || m_removed || m_handingOver || m_node->raft().leader() == raft::NoNode
        || !has(raft::members(m_appliedConf), m_config.nodeId))
        return;
    const std::string mine = m_config.clientAddress.toStdString();
    if (const auto it = m_clientBook.find(m_config.nodeId); it != m_clientBook.end() && it->second == mine)
        return;
    // Proposed through the leader like a write; a proposal lost with a leader is made again after
    // an election timeout.
    const qint64 now = m_clock.elapsed();
    if (m_clientAddressProposedAt >= 0 && now - m_clientAddressProposedAt < qint64(m_config.electionTicks) * m_config.tickIntervalMs)
        return;
    m_clientAddressProposedAt = now;
    qCDebug(lcEngine).noquote() << QStringLiteral("node %1: advertising client address %2").arg(m_config.nodeId).arg(m_config.clientAddress);
    kv::Command cmd;
    cmd.clientAddresses = {{m_config.nodeId, mine}};
    proposeInternal(std::move(cmd));
}

void EngineWorker::establishHistory()
{
    if (m_role != raft::Role::Leader || m_kv.historyFrom() != 0 || m_historyProposedTerm == m_term || !m_node->status().committedInTerm)
        return;
    m_historyProposedTerm = m_term;
    qCDebug(lcEngine).noquote() << QStringLiteral("node %1: establishing the key histories").arg(m_config.nodeId);
    kv::Command cmd;
    cmd.resetHistory = true;
    proposeInternal(std::move(cmd));
}

void EngineWorker::recordMissingAddresses()
{
    if (m_role != raft::Role::Leader || m_addressesRecordedTerm == m_term || !m_node->status().committedInTerm)
        return;
    m_addressesRecordedTerm = m_term;
    // A cluster founded from a configuration file has no address book yet: write the founders'
    // addresses, so that a node that joins later can reach every member, whoever leads then.
    const auto &book = m_kv.memberAddresses();
    const QMap<raft::NodeId, QString> known = m_transport->peers();
    std::vector<std::pair<raft::NodeId, std::string>> missing;
    for (raft::NodeId id : raft::members(m_appliedConf)) {
        if (book.count(id))
            continue;
        QString address = known.value(id, m_config.peers.value(id));
        QString host;
        quint16 port = 0;
        if (!parseHostPort(address, &host, &port, true))
            continue;
        if (port == 0) {
            if (id != m_config.nodeId)
                continue;
            address = QStringLiteral("%1:%2").arg(host).arg(m_transport->listeningPort()); // "any free port": the one it got
        }
        missing.emplace_back(id, address.toStdString());
    }
    if (!missing.empty())
        proposeAddresses(std::move(missing));
}

void EngineWorker::onConfigurationApplied(const raft::ConfState &cs, raft::Index index)
{
    // Members this configuration removes hear it from every member that applies it: a removed
    // follower gets nothing else (the leader stopped replicating to it when the change reached its
    // log), and would otherwise campaign, refused by all, for ever. They stay in the transport for
    // a few election timeouts so that the notice gets out (and once more half-way, in case the
    // first was lost with a connection).
    std::vector<raft::NodeId> removed;
    const std::vector<raft::NodeId> before = raft::members(m_appliedConf);
    const std::vector<raft::NodeId> after = raft::members(cs);
    for (raft::NodeId id : before)
        if (id != m_config.nodeId && !has(after, id))
            removed.push_back(id);
    const qint64 grace = 4LL * m_config.electionTicks * m_config.tickIntervalMs;
    for (raft::NodeId id : removed) {
        m_leaving[id] = m_clock.elapsed() + grace;
        m_peersDirty = true;
    }
    m_appliedConf = cs;
    m_appliedConfIndex = index;
    if (raft::isMember(cs, m_config.nodeId)) {
        m_wasMember = true;
    } else if (m_wasMember && !m_removed) {
        m_removed = true;
        qCInfo(lcEngine).noquote() << QStringLiteral("node %1: removed from the cluster at index %2: stopping once it does not lead")
                                          .arg(m_config.nodeId)
                                          .arg(index);
        // A removed leader hands over first (the core does, once the removal commits); bounded.
        QTimer::singleShot(2 * m_config.electionTicks * m_config.tickIntervalMs, this, [this] {
            if (!m_down)
                shutdown();
        });
    }
    qCInfo(lcEngine).noquote() << QStringLiteral("node %1: configuration %2 applied at index %3")
                                      .arg(m_config.nodeId)
                                      .arg(QString::fromStdString(raft::describe(cs)))
                                      .arg(index);
    if (!refreshPeers())
        emitMembers();
    if (!removed.empty() && m_transport) {
        for (raft::NodeId id : removed)
            m_transport->sendRemovalNotice(id, index);
        QTimer::singleShot(static_cast<int>(grace / 2), this, [this, removed, index] {
            for (raft::NodeId id : removed)
                if (m_transport && m_leaving.count(id))
                    m_transport->sendRemovalNotice(id, index);
        });
        QTimer::singleShot(static_cast<int>(grace) + 1, this, [this] {
            const qint64 now = m_clock.elapsed();
            std::erase_if(m_leaving, [now](const auto &e) { return e.second <= now; });
            m_peersDirty = true;
            refreshPeers();
        });
    }
}

void EngineWorker::onRemovalNotice(raft::NodeId from, std::uint64_t configurationIndex)
{
    if (m_down || m_removed || configurationIndex <= m_appliedConfIndex)
        return; // stale: this node applied that configuration or a later one itself
    m_removed = true;
    qCInfo(lcEngine).noquote() << QStringLiteral("node %1: node %2 applied a configuration without this node at index %3 (this node "
                                                 "applied up to %4): removed from the cluster; stopping")
                                      .arg(m_config.nodeId)
                                      .arg(from)
                                      .arg(configurationIndex)
                                      .arg(m_kv.appliedIndex());
    const int grace = 2 * m_config.electionTicks * m_config.tickIntervalMs;
    QTimer::singleShot(grace, this, [this] {
        if (!m_down)
            shutdown();
    });
    scheduleProcess(); // stops at its end unless it leads
}

void EngineWorker::emitMembers()
{
    QMap<NodeId, QString> addresses;
    for (auto it = m_config.peers.cbegin(); it != m_config.peers.cend(); ++it)
        addresses.insert(it.key(), it.value());
    for (const auto &[id, address] : m_kv.memberAddresses())
        addresses.insert(id, fromStd(address));
    QMap<NodeId, QString> clientAddresses;
    for (const auto &[id, address] : m_kv.clientAddresses())
        clientAddresses.insert(id, fromStd(address));
    if (!m_config.clientAddress.isEmpty() && !clientAddresses.contains(m_config.nodeId))
        clientAddresses.insert(m_config.nodeId, m_config.clientAddress); // its own, before the log has it
    tellIndexes(true);
    Q_EMIT membersChanged(sortedList(m_appliedConf.voters), sortedList(m_appliedConf.learners), addresses, clientAddresses);
}

bool EngineWorker::refreshPeers()
{
    if (!m_transport || !m_node)
        return false;
    const raft::ConfState &logConf = m_node->confState(); // checked on every Ready: no copy unless it changed
    const auto &book = m_kv.memberAddresses();
    const bool bookChanged = book != m_peersBook;
    if (!bookChanged && logConf == m_peersConf && !m_peersDirty)
        return false;
    m_peersDirty = false;
    m_peersConf = logConf;
    m_peersBook = book;
    // The members of the configuration in the log (which may add a learner the leader must reach
    // now) and of the applied one (which a change in the log may remove before it commits).
    std::set<raft::NodeId> ids;
    for (raft::NodeId id : raft::members(logConf))
        ids.insert(id);
    for (raft::NodeId id : raft::members(m_appliedConf))
        ids.insert(id);
    const bool selfListed = ids.count(m_config.nodeId) > 0;
    for (const auto &[id, until] : m_leaving)
        ids.insert(id); // removed, still being told
    // Not (yet) a member: a joining node takes connections from the cluster's nodes and keeps
    // every address it knows, the configured member's and those learned from Hellos.
    const bool joining = !selfListed;
    const QMap<raft::NodeId, QString> current = m_transport->peers();
    QMap<raft::NodeId, QString> peers = joining ? current : QMap<raft::NodeId, QString>{};
    for (raft::NodeId id : ids) {
        QString address;
        if (const auto it = book.find(id); it != book.end())
            address = fromStd(it->second);
        else if (m_config.peers.contains(id))
            address = m_config.peers.value(id);
        else
            address = current.value(id);
        if (!address.isEmpty())
            peers.insert(id, address);
    }
    m_transport->setAcceptNonMembers(joining);
    m_transport->setPeers(peers);
    if (!bookChanged)
        return false;
    emitMembers();
    return true;
}

} // namespace dengine::engine
