// SPDX-License-Identifier: Apache-2.0
#include "network.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <exception>
#include <iterator>
#include <sstream>

namespace dengine::raft::test {

namespace {

// Enough for any scenario in these tests; more means the cluster never quiesces (a livelock).
constexpr std::size_t MaxDeliveriesPerCall = 100000;
constexpr std::size_t MaxReadysPerDrain = 1000;

} // namespace

Filter ofType(MessageType type)
{
    return [type](const Message &m) { return m.type == type; };
}

Filter from(NodeId id)
{
    return [id](const Message &m) { return m.from == id; };
}

Filter to(NodeId id)
{
    return [id](const Message &m) { return m.to == id; };
}

Filter between(NodeId sender, NodeId recipient)
{
    return [sender, recipient](const Message &m) { return m.from == sender && m.to == recipient; };
}

Filter allOf(std::vector<Filter> filters)
{
    return [filters = std::move(filters)](const Message &m) {
        return std::all_of(filters.begin(), filters.end(), [&m](const Filter &f) { return f(m); });
    };
}

Filter anything()
{
    return [](const Message &) { return true; };
}

ConfigTweak both(ConfigTweak first, ConfigTweak second)
{
    return [first = std::move(first), second = std::move(second)](Config &c) {
        if (first)
            first(c);
        if (second)
            second(c);
    };
}

Payload presetPayload(Index index, Term term)
{
    return Payload("preset i" + std::to_string(index) + " t" + std::to_string(term));
}

Message makeMessage(MessageType type, NodeId sender, NodeId recipient, Term term)
{
    Message m;
    m.type = type;
    m.from = sender;
    m.to = recipient;
    m.term = term;
    return m;
}

Network::Network(std::size_t size, ConfigTweak tweak, std::map<NodeId, Preset> presets, std::size_t voters)
{
    for (NodeId id = 1; id <= size; ++id)
        m_ids.push_back(id);
    if (voters == 0)
        voters = size;
    const std::vector<NodeId> first(m_ids.begin(), m_ids.begin() + static_cast<std::ptrdiff_t>(std::min(voters, size)));
    for (NodeId id : m_ids) {
        Node &n = m_nodes[id];
        n.config.id = id;
        n.config.seed = id;
        if (tweak)
            tweak(n.config);
        n.storage = std::make_unique<MemoryStorage>(id <= first.size() ? first : std::vector<NodeId>{});
        if (const auto it = presets.find(id); it != presets.end()) {
            std::vector<Entry> entries;
            for (std::size_t i = 0; i < it->second.logTerms.size(); ++i) {
                const Index index = i + 1;
                const Term term = it->second.logTerms[i];
                entries.push_back(Entry{term, index, EntryType::Normal, presetPayload(index, term)});
            }
            EXPECT_TRUE(n.storage->append(entries));
            n.storage->setHardState(it->second.hardState);
            if (const std::string v = m_cluster.observeAppend(id, 0, entries); !v.empty())
                violation("preset: " + v);
        }
        n.raw = std::make_unique<RawNode>(n.config, *n.storage);
    }
    check();
}

Network::~Network() = default;

Network::Node &Network::at(NodeId id)
{
    const auto it = m_nodes.find(id);
    if (it == m_nodes.end())
        throw std::out_of_range("no node " + std::to_string(id) + " in the test network");
    return it->second;
}

const Network::Node &Network::at(NodeId id) const
{
    const auto it = m_nodes.find(id);
    if (it == m_nodes.end())
        throw std::out_of_range("no node " + std::to_string(id) + " in the test network");
    return it->second;
}

RawNode &Network::node(NodeId id) { return *at(id).raw; }
const Raft &Network::raft(NodeId id) const { return at(id).raw->raft(); }
MemoryStorage &Network::storage(NodeId id) { return *at(id).storage; }
const Config &Network::config(NodeId id) const { return at(id).config; }

void Network::violation(const std::string &text)
{
    m_violations.push_back(text);
    if (!m_expectViolations)
        ADD_FAILURE() << "invariant violated: " << text;
}

void Network::check()
{
    for (auto &[id, n] : m_nodes) {
        const NodeStatus s = n.raw->status();
        if (const std::string v = n.invariants.check(s); !v.empty())
            violation(v);
        if (const std::string v = m_cluster.observeRole(id, s.hardState.term, s.softState.role); !v.empty())
            violation(v);
        if (s.softState.role == Role::Leader) {
            if (const std::string v = m_cluster.observeLeaderLog(id, s.hardState.term, n.raw->raft().log()); !v.empty())
                violation(v);
        }
    }
}

// ---- inputs -----------------------------------------------------------------------------------

void Network::tick(NodeId id, int times)
{
    for (int i = 0; i < times; ++i) {
        at(id).raw->tick();
        check();
    }
}

void Network::tickAll(int times)
{
    for (int i = 0; i < times; ++i)
        for (NodeId id : m_ids)
            tick(id);
}

Status Network::step(Message m)
{
    Node &n = at(m.to);
    Status s = Status::Ok;
    try {
        s = n.raw->step(std::move(m));
    } catch (const std::exception &e) {
        violation(std::string("step threw: ") + e.what());
    }
    check();
    return s;
}

Status Network::propose(NodeId id, const std::string &data)
{
    const Status s = at(id).raw->propose(Payload(data));
    check();
    return s;
}

Status Network::readIndex(NodeId id, std::uint64_t context)
{
    const Status s = at(id).raw->readIndex(context);
    check();
    return s;
}

Status Network::campaign(NodeId id)
{
    const Status s = at(id).raw->campaign();
    check();
    return s;
}

// ---- Readys -----------------------------------------------------------------------------------

std::size_t Network::drain(NodeId id)
{
    Node &n = at(id);
    std::size_t taken = 0;
    while (n.raw->hasReady()) {
        if (taken == MaxReadysPerDrain) {
            ADD_FAILURE() << "node " << id << " keeps producing Readys";
            break;
        }
        Ready rd = n.raw->ready();
        if (rd.empty())
            break; // hasReady() is conservative about lazy work that turned out to be none
        handleReady(id, n, std::move(rd));
        ++taken;
        check();
    }
    return taken;
}

void Network::drainAll()
{
    for (NodeId id : m_ids)
        drain(id);
}

void Network::handleReady(NodeId id, Node &n, Ready rd)
{
    n.readys.push_back(rd);
    if (!rd.entries.empty()) {
        // The term before the first entry, as this node's log has it now (Log Matching's premise).
        const Term prevTerm = n.raw->raft().log().termOrZero(rd.entries.front().index - 1);
        if (const std::string v = m_cluster.observeAppend(id, prevTerm, rd.entries); !v.empty())
            violation(v);
    }
    if (rd.snapshot) {
        // The state machine restores it; the next entry it applies follows the snapshot.
        if (!rd.committedEntries.empty())
            violation("node " + std::to_string(id) + " was handed a snapshot and committed entries in one Ready");
        n.installed.push_back(rd.snapshot->metadata.index);
        m_cluster.restarted(id, rd.snapshot->metadata.index);
    }
    PendingWrite w{rd.writeId, rd.snapshot, std::move(rd.entries), rd.hardState, std::move(rd.messagesAfterPersist)};
    for (Message &m : rd.messages)
        m_inFlight.push_back(std::move(m));
    if (n.holding || !n.pending.empty()) {
        n.pending.push_back(std::move(w));
    } else {
        write(id, n, w);
    }
    for (const Entry &e : rd.committedEntries) {
        // The contract: committed entries reach the state machine only once durable here.
        Term stored = 0;
        if (e.index > n.storage->lastIndex() || n.storage->term(e.index, stored) != StorageError::None || stored != e.term) {
            std::ostringstream out;
            out << "node " << id << " was handed entry " << e.index << " (term " << e.term
                << ") to apply before it was durable in its storage";
            violation(out.str());
        }
        if (const std::string v = m_cluster.observeApply(id, e); !v.empty())
            violation(v);
        n.applied.push_back(e);
    }
    n.readStates.insert(n.readStates.end(), rd.readStates.begin(), rd.readStates.end());
    n.droppedReads.insert(n.droppedReads.end(), rd.droppedReads.begin(), rd.droppedReads.end());
}

void Network::write(NodeId id, Node &n, PendingWrite &w)
{
    if (w.snapshot) {
        EXPECT_TRUE(n.storage->applySnapshot(*w.snapshot)) << "node " << id << ": the snapshot is older than its storage's";
    }
    if (!w.entries.empty()) {
        EXPECT_TRUE(n.storage->append(w.entries)) << "node " << id << ": entries do not attach to its storage";
    }
    if (w.hardState)
        n.storage->setHardState(*w.hardState);
    if (w.writeId != 0)
        n.raw->acknowledgePersisted(w.writeId);
    for (Message &m : w.afterPersist)
        m_inFlight.push_back(std::move(m));
    w.afterPersist.clear();
}

// ---- the network ------------------------------------------------------------------------------

std::size_t Network::count(const Filter &f) const
{
    return static_cast<std::size_t>(std::count_if(m_inFlight.begin(), m_inFlight.end(), f));
}

std::vector<Message> Network::peek(const Filter &f) const
{
    std::vector<Message> out;
    std::copy_if(m_inFlight.begin(), m_inFlight.end(), std::back_inserter(out), f);
    return out;
}

bool Network::linked(NodeId a, NodeId b) const
{
    if (m_isolated.count(a) || m_isolated.count(b))
        return false;
    return !m_cuts.count({std::min(a, b), std::max(a, b)});
}

void Network::isolate(NodeId id) { m_isolated.insert(id); }

void Network::cut(NodeId a, NodeId b) { m_cuts.insert({std::min(a, b), std::max(a, b)}); }

void Network::heal()
{
    m_isolated.clear();
    m_cuts.clear();
}

void Network::deliverOne(Message m)
{
    if (!linked(m.from, m.to)) {
        ++m_lost;
        return;
    }
    if (!m_nodes.count(m.to)) {
        ADD_FAILURE() << "message " << toString(m.type) << " to unknown node " << m.to;
        return;
    }
    const Message copy = m;
    const Status s = step(std::move(m));
    m_deliveries.push_back({copy, s});
    if (copy.type == MessageType::Snapshot && m_nodes.count(copy.from)) {
        at(copy.from).raw->reportSnapshot(copy.to, true);
        check();
    }
    // Every message here came from a node of the cluster: the core must never produce one that its
    // peers call malformed, foreign or unsupported.
    if (s == Status::InvalidMessage || s == Status::UnknownPeer || s == Status::Unsupported)
        ADD_FAILURE() << "node " << copy.to << " answered " << toString(s) << " to " << toString(copy.type) << " from node "
                      << copy.from;
}

std::size_t Network::deliverAll()
{
    std::size_t delivered = 0;
    drainAll();
    while (!m_inFlight.empty()) {
        std::vector<Message> round;
        round.swap(m_inFlight);
        for (Message &m : round) {
            const std::size_t lostBefore = m_lost;
            deliverOne(std::move(m));
            if (m_lost == lostBefore)
                ++delivered;
        }
        drainAll();
        if (delivered > MaxDeliveriesPerCall) {
            ADD_FAILURE() << "the network did not quiesce after " << delivered << " messages";
            m_inFlight.clear();
            break;
        }
    }
    return delivered;
}

std::size_t Network::deliver(const Filter &f)
{
    drainAll();
    std::vector<Message> chosen = take(f);
    std::size_t delivered = 0;
    for (Message &m : chosen) {
        const std::size_t lostBefore = m_lost;
        deliverOne(std::move(m));
        if (m_lost == lostBefore)
            ++delivered;
    }
    drainAll();
    return delivered;
}

std::vector<Message> Network::take(const Filter &f)
{
    drainAll();
    std::vector<Message> chosen, rest;
    for (Message &m : m_inFlight)
        (f(m) ? chosen : rest).push_back(std::move(m));
    m_inFlight.swap(rest);
    return chosen;
}

std::size_t Network::drop(const Filter &f) { return take(f).size(); }

// ---- persistence ------------------------------------------------------------------------------

void Network::holdWrites(NodeId id) { at(id).holding = true; }

void Network::persist(NodeId id, std::size_t count)
{
    Node &n = at(id);
    const std::size_t k = std::min(count, n.pending.size());
    for (std::size_t i = 0; i < k; ++i) {
        write(id, n, n.pending[i]);
        check();
    }
    n.pending.erase(n.pending.begin(), n.pending.begin() + static_cast<std::ptrdiff_t>(k));
}

void Network::releaseWrites(NodeId id)
{
    persist(id);
    at(id).holding = false;
}

std::size_t Network::pendingWrites(NodeId id) const { return at(id).pending.size(); }

void Network::restart(NodeId id, ConfigTweak tweak)
{
    Node &n = at(id);
    n.pending.clear(); // never made durable: lost with the crash, and so are their messages
    n.holding = false;
    n.config.applied = 0;
    if (tweak)
        tweak(n.config);
    n.raw.reset();
    n.raw = std::make_unique<RawNode>(n.config, *n.storage);
    n.applied.clear();
    n.installed.clear();
    n.invariants.restarted(n.raw->status());
    // The state machine starts from the storage's snapshot, if any (Config::applied).
    m_cluster.restarted(id, std::max<Index>(n.config.applied, n.storage->snapshot().metadata.index));
    check();
}

// ---- snapshots --------------------------------------------------------------------------------

void Network::snapshotAndCompact(NodeId id, Index index, Index keep)
{
    Node &n = at(id);
    const std::optional<ConfState> cs = n.raw->confStateAt(index);
    ASSERT_TRUE(cs.has_value()) << "node " << id << " knows no configuration at " << index;
    ASSERT_TRUE(n.storage->createSnapshot(index, *cs, Payload("state@" + std::to_string(index))))
        << "node " << id << " cannot snapshot at " << index;
    if (index > keep) {
        ASSERT_TRUE(n.storage->compact(index - keep));
    }
}

const std::vector<Index> &Network::installed(NodeId id) const { return at(id).installed; }

// ---- observations -----------------------------------------------------------------------------

const std::vector<Entry> &Network::applied(NodeId id) const { return at(id).applied; }

std::vector<std::string> Network::appliedData(NodeId id) const
{
    std::vector<std::string> out;
    for (const Entry &e : at(id).applied)
        if (!e.data.empty())
            out.push_back(e.data.toString());
    return out;
}

const std::vector<ReadState> &Network::readStates(NodeId id) const { return at(id).readStates; }
const std::vector<std::uint64_t> &Network::droppedReads(NodeId id) const { return at(id).droppedReads; }
const std::vector<Ready> &Network::readys(NodeId id) const { return at(id).readys; }

void Network::clearReadys()
{
    for (auto &[id, n] : m_nodes)
        n.readys.clear();
}

std::optional<NodeId> Network::leader() const
{
    std::optional<NodeId> best;
    Term bestTerm = 0;
    for (const auto &[id, n] : m_nodes) {
        const Raft &r = n.raw->raft();
        if (r.role() == Role::Leader && (!best || r.term() > bestTerm)) {
            best = id;
            bestTerm = r.term();
        }
    }
    return best;
}

std::vector<std::uint64_t> Network::logTerms(NodeId id) const
{
    const RaftLog &log = raft(id).log();
    std::vector<std::uint64_t> out;
    for (Index i = 1; i <= log.lastIndex(); ++i)
        out.push_back(log.termOrZero(i));
    return out;
}

void Network::elect(NodeId id)
{
    campaign(id);
    deliverAll();
    EXPECT_EQ(raft(id).role(), Role::Leader) << "node " << id << " did not win its election";
}

} // namespace dengine::raft::test
