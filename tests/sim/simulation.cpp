// SPDX-License-Identifier: Apache-2.0
#include "simulation.h"

#include "linearizability.h"
#include "raft/invariants.h"
#include "raft/random.h"
#include "raft/rawnode.h"
#include "raft/storage.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <unordered_map>

namespace dengine::sim {

using namespace dengine::raft;

namespace {

// Virtual time: a nominal tick lasts this many units; each node's clock runs slightly fast or slow.
constexpr std::uint64_t TickUnits = 1000;
constexpr int ElectionTick = 10;
constexpr std::uint64_t ClientTimeoutTicks = 40;
constexpr int ProbeClient = -1;
const std::string ProbeKey = "__probe";

// ---- the replicated KV state machine of the simulation ----------------------------------------

struct Command {
    int client = 0;
    std::uint64_t seq = 0;
    NodeId origin = 0;
    std::string key;
    std::string value;
};

Payload encodePut(const Command &c)
{
    std::ostringstream out;
    out << "P " << c.client << ' ' << c.seq << ' ' << c.origin << ' ' << c.key << ' ' << c.value;
    return Payload(out.str());
}

std::optional<Command> decode(const Payload &p)
{
    if (p.empty())
        return std::nullopt; // a leader's no-op
    std::istringstream in(p.toString());
    char kind = 0;
    Command c;
    if (!(in >> kind >> c.client >> c.seq >> c.origin >> c.key >> c.value) || kind != 'P')
        return std::nullopt;
    return c;
}

// ---- trace hashing -----------------------------------------------------------------------------

struct TraceHash {
    std::uint64_t value = 1469598103934665603ULL;
    void add(std::uint64_t x)
    {
        for (int i = 0; i < 8; ++i) {
            value ^= (x >> (8 * i)) & 0xff;
            value *= 1099511628211ULL;
        }
    }
};

// ---- events ------------------------------------------------------------------------------------

enum class EventKind : std::uint8_t { Tick, Deliver, DiskDone, ClientNext, ClientTimeout, Nemesis, Restart, Heal, Probe };

struct Event {
    std::uint64_t time;
    std::uint64_t seq;
    EventKind kind;
    int node;          // node index, or client id
    std::uint64_t arg; // incarnation, client seq, message id...
    bool operator>(const Event &o) const { return time != o.time ? time > o.time : seq > o.seq; }
};

struct PendingWrite {
    std::vector<Entry> entries;
    std::optional<HardState> hardState;
    std::vector<Message> afterPersist;
    Index lastIndex = 0;
    Term lastTerm = 0;
    std::uint64_t writeId = 0;
};

struct PendingRead {
    int client;
    std::uint64_t clientSeq;
    bool hasIndex = false;
    Index index = 0;
};

struct SimNode {
    NodeId id = 0;
    bool up = true;
    std::uint64_t incarnation = 0;
    std::uint64_t tickInterval = TickUnits;
    std::unique_ptr<MemoryStorage> disk;
    std::unique_ptr<RawNode> raft;
    std::deque<PendingWrite> writes; // in order; the first `syncing` are in the running sync
    std::size_t syncing = 0;
    HardState durableHardState;

    // The state machine, rebuilt from the log at every restart.
    std::map<std::string, std::string> kv;
    std::map<int, std::uint64_t> lastSeq; // per client: requests applied (deduplication, thesis §6.3)
    Index applied = 0;
    bool appliedProbe = false;

    // Client requests this node took and has not answered.
    std::map<std::pair<int, std::uint64_t>, int> pendingPuts;
    std::map<std::uint64_t, PendingRead> pendingReads;

    NodeInvariants invariants;
    SoftState lastSoft;
    Term lastTerm = 0;
};

enum class OpKind { Put, LinearizableGet, StaleGet };

struct Client {
    int id = 0;
    bool busy = false;
    std::uint64_t seq = 0;
    OpKind kind = OpKind::Put;
    std::size_t op = 0; // index into the history
    int node = 0;
};

class Simulation {
public:
    explicit Simulation(const SimOptions &options);
    SimResult run();

private:
    // scheduling
    void schedule(std::uint64_t at, EventKind kind, int node, std::uint64_t arg = 0);
    void dispatch(const Event &e);
    std::uint64_t ticks() const { return m_now / TickUnits; }
    bool inFaultPhase() const { return !m_healed; }

    // nodes
    void startNode(SimNode &n);
    void crashNode(SimNode &n);
    void processReady(SimNode &n);
    void startSync(SimNode &n);
    void completeSync(SimNode &n);
    void applyEntry(SimNode &n, const Entry &e);
    void serveReads(SimNode &n);
    void checkNode(SimNode &n);
    SimNode *leader();

    // network
    void send(const Message &m);
    void deliver(std::uint64_t id);
    bool linkUp(NodeId from, NodeId to) const { return !m_blocked.count({from, to}); }

    // clients
    void clientNext(Client &c);
    void clientTimeout(Client &c, std::uint64_t seq);
    void finishOp(Client &c, bool found = false, const std::string &value = {});
    void failOp(Client &c);

    // faults
    void nemesis();
    void heal();
    std::uint64_t restartDelay();
    void probe();

    void fail(const std::string &what);
    void check(unsigned which, const std::string &violation)
    {
        if (m_opts.checks & which)
            fail(violation);
    }
    void narrate(const std::string &line)
    {
        if (m_opts.narrate)
            m_opts.narrate("[t=" + std::to_string(ticks()) + "] " + line);
    }
    void trace(const std::string &line)
    {
        if (m_opts.trace)
            m_opts.trace(std::to_string(m_now) + " " + line);
    }
    std::string describe(const Message &m) const;
    void chooseProfile();

    SimOptions m_opts;
    Random m_rng;
    std::uint64_t m_now = 0;
    std::uint64_t m_eventSeq = 0;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> m_queue;
    std::unordered_map<std::uint64_t, Message> m_inFlight;
    std::uint64_t m_nextMessageId = 0;

    std::vector<SimNode> m_nodes;
    std::set<std::pair<NodeId, NodeId>> m_blocked;
    double m_drop = 0;
    double m_duplicate = 0;
    std::uint64_t m_delayLo = 50;
    std::uint64_t m_delayHi = 1500;
    std::uint64_t m_maxSizePerMsg = 4096;
    std::size_t m_maxInflight = 8;
    int m_heartbeatTick = 1;
    bool m_preVote = true;
    bool m_checkQuorum = true;
    ReadOnlyOption m_readOnly = ReadOnlyOption::Safe;

    std::vector<Client> m_clients;
    std::vector<Operation> m_history;
    std::vector<bool> m_excluded; // operations that definitely did not happen
    std::uint64_t m_nextReadContext = 0;

    ClusterInvariants m_cluster;
    std::set<std::pair<Term, NodeId>> m_leadersSeen;
    bool m_healed = false;
    std::uint64_t m_healTime = 0;
    bool m_live = false;
    std::uint64_t m_probeSeq = 0;
    bool m_failed = false;
    TraceHash m_hash;
    SimResult m_result;
};

Simulation::Simulation(const SimOptions &options) : m_opts(options), m_rng(options.seed)
{
    chooseProfile();
    for (int i = 0; i < m_opts.nodes; ++i) {
        SimNode n;
        n.id = static_cast<NodeId>(i + 1);
        // Clocks run within 0.5% of nominal: well inside the lease's drift margin.
        n.tickInterval = TickUnits - 5 + m_rng.below(11);
        m_nodes.push_back(std::move(n));
    }
    std::vector<NodeId> voters;
    for (const SimNode &n : m_nodes)
        voters.push_back(n.id);
    for (SimNode &n : m_nodes)
        n.disk = std::make_unique<MemoryStorage>(voters);
    for (int i = 0; i < m_opts.clients; ++i) {
        Client c;
        c.id = i;
        m_clients.push_back(c);
    }
}

void Simulation::chooseProfile()
{
    // The profile comes from its own generator so that it depends on the seed alone.
    Random pick(m_opts.seed * 0x2545F4914F6CDD1DULL + 17);
    if (m_opts.randomizeProfile) {
        m_opts.nodes = pick.chance(0.5) ? 3 : 5;
        const double drops[] = {0.0, 0.01, 0.05, 0.15};
        const double dups[] = {0.0, 0.02, 0.1};
        const std::uint64_t delays[] = {1500, 3000, 8000};
        const std::uint64_t sizes[] = {1, 512, 4096, 1 << 20};
        const std::size_t inflight[] = {1, 4, 64};
        m_drop = drops[pick.below(4)];
        m_duplicate = dups[pick.below(3)];
        m_delayHi = delays[pick.below(3)];
        m_maxSizePerMsg = sizes[pick.below(4)];
        m_maxInflight = inflight[pick.below(3)];
        if (m_maxSizePerMsg == 1)
            m_maxInflight = std::max<std::size_t>(m_maxInflight, 16); // one entry per message and per round trip cannot catch up in time
        m_heartbeatTick = 1 + static_cast<int>(pick.below(3));
        m_preVote = pick.chance(0.75);
        m_checkQuorum = pick.chance(0.75);
        m_readOnly = m_checkQuorum && pick.chance(0.35) ? ReadOnlyOption::LeaseBased : ReadOnlyOption::Safe;
        m_opts.faults = true;
    } else {
        m_drop = m_opts.dropRate;
        m_duplicate = m_opts.duplicateRate;
        m_delayHi = static_cast<std::uint64_t>(m_opts.maxDelayTicks * TickUnits);
        m_maxSizePerMsg = m_opts.maxSizePerMsg;
        m_maxInflight = m_opts.maxInflightMsgs;
        m_preVote = m_opts.preVote;
        m_checkQuorum = m_opts.checkQuorum;
        m_readOnly = m_opts.readOnlyOption;
    }
    std::ostringstream p;
    p << m_opts.nodes << " nodes, drop " << m_drop << ", dup " << m_duplicate << ", delay<=" << m_delayHi / double(TickUnits)
      << " ticks, msg " << m_maxSizePerMsg << " B, inflight " << m_maxInflight << ", heartbeat " << m_heartbeatTick
      << (m_preVote ? ", pre-vote" : "") << (m_checkQuorum ? ", check-quorum" : "")
      << (m_readOnly == ReadOnlyOption::LeaseBased ? ", lease reads" : "") << (m_opts.faults ? "" : ", no faults")
      << (m_opts.intenseFaults ? ", intense faults" : "");
    if (m_opts.bugs.grantSecondVoteInTerm)
        p << ", BUG two votes";
    if (m_opts.bugs.commitOldTermByCounting)
        p << ", BUG old-term commit";
    if (m_opts.bugs.readWithoutQuorum)
        p << ", BUG read without quorum";
    m_result.profile = p.str();
    m_result.nodes = m_opts.nodes;
}

void Simulation::schedule(std::uint64_t at, EventKind kind, int node, std::uint64_t arg)
{
    m_queue.push(Event{at, m_eventSeq++, kind, node, arg});
}

void Simulation::fail(const std::string &what)
{
    if (m_failed || what.empty())
        return;
    m_failed = true;
    m_result.ok = false;
    m_result.failure = "at tick " + std::to_string(ticks()) + " (time " + std::to_string(m_now) + "): " + what;
}

// ---- nodes -------------------------------------------------------------------------------------

void Simulation::startNode(SimNode &n)
{
    Config cfg;
    cfg.id = n.id;
    cfg.electionTick = ElectionTick;
    cfg.heartbeatTick = m_heartbeatTick;
    cfg.seed = m_rng.next();
    cfg.maxSizePerMsg = m_maxSizePerMsg;
    cfg.maxInflightMsgs = m_maxInflight;
    cfg.maxInflightBytes = std::max<std::uint64_t>(m_maxSizePerMsg * m_maxInflight, 1 << 16);
    cfg.preVote = m_preVote;
    cfg.checkQuorum = m_checkQuorum;
    cfg.readOnlyOption = m_readOnly;
    cfg.bugs = m_opts.bugs;
    n.up = true;
    ++n.incarnation;
    n.raft = std::make_unique<RawNode>(cfg, *n.disk);
    n.kv.clear();
    n.lastSeq.clear();
    n.applied = 0;
    n.appliedProbe = false;
    n.lastSoft = n.raft->status().softState;
    n.lastTerm = n.raft->status().hardState.term;
    n.invariants.restarted(n.raft->status());
    m_cluster.restarted(n.id, 0);
    // The first tick comes at a random phase so nodes do not tick in lockstep.
    schedule(m_now + 1 + m_rng.below(n.tickInterval), EventKind::Tick, static_cast<int>(n.id - 1), n.incarnation);
}

void Simulation::crashNode(SimNode &n)
{
    if (!n.up)
        return;
    ++m_result.crashes;
    // Writes handed to the disk but not synced: a prefix may have reached the platter, the rest is
    // lost. Synced writes are already in `disk`.
    //
    // This is the real write-ahead log's guarantee, record by record: each write is its entries'
    // records followed by a hard-state record, writes are laid out in order, and recovery keeps
    // the records before the first torn or missing one. So what survives is a prefix of the
    // records: some whole writes, then possibly some leading entries of the next write without
    // its hard state. (tests/storage/tst_wal_crash.cpp checks the real log against this.)
    const std::size_t survive = n.writes.empty() ? 0 : m_rng.below(n.writes.size() + 1);
    for (std::size_t i = 0; i < survive; ++i) {
        const PendingWrite &w = n.writes[i];
        n.disk->append(w.entries);
        if (w.hardState)
            n.disk->setHardState(*w.hardState);
    }
    if (survive < n.writes.size() && !n.writes[survive].entries.empty()) {
        const std::vector<Entry> &torn = n.writes[survive].entries;
        const std::size_t keep = m_rng.below(torn.size() + 1);
        n.disk->append(std::vector<Entry>(torn.begin(), torn.begin() + static_cast<std::ptrdiff_t>(keep)));
    }
    narrate("node " + std::to_string(n.id) + " crashed (" + std::to_string(n.writes.size() - survive) + " of "
            + std::to_string(n.writes.size()) + " unsynced writes lost)");
    n.writes.clear();
    n.syncing = 0;
    n.up = false;
    n.raft.reset();
    n.pendingPuts.clear(); // their clients time out: the outcome is unknown
    n.pendingReads.clear();
    // A crashed process's connections close: the transport tells some peers at once (the others
    // notice by their timers), as the engine's does.
    for (SimNode &o : m_nodes) {
        if (o.up && o.id != n.id && m_rng.chance(0.5)) {
            o.raft->reportUnreachable(n.id);
            processReady(o);
        }
    }
}

void Simulation::checkNode(SimNode &n)
{
    const NodeStatus st = n.raft->status();
    check(Check::Node, n.invariants.check(st));
    check(Check::ElectionSafety, m_cluster.observeRole(n.id, st.hardState.term, st.softState.role));
    if (st.softState.role == Role::Leader) {
        check(Check::LeaderCompleteness, m_cluster.observeLeaderLog(n.id, st.hardState.term, n.raft->raft().log()));
        if (m_leadersSeen.insert({st.hardState.term, n.id}).second) {
            ++m_result.elections;
            narrate("node " + std::to_string(n.id) + " became leader of term " + std::to_string(st.hardState.term));
        }
    }
    m_result.maxTerm = std::max(m_result.maxTerm, st.hardState.term);
    if (st.hardState.commit / 100 > m_result.maxCommit / 100 && st.softState.role == Role::Leader)
        narrate("leader " + std::to_string(n.id) + " has committed " + std::to_string(st.hardState.commit) + " entries");
    m_result.maxCommit = std::max(m_result.maxCommit, st.hardState.commit);
}

void Simulation::processReady(SimNode &n)
{
    while (n.up && !m_failed && n.raft->hasReady()) {
        Ready rd = n.raft->ready();
        m_hash.add(0xAD);
        m_hash.add(n.id);
        if (rd.softState && rd.softState->leader != n.lastSoft.leader) {
            if (rd.softState->leader == NoNode)
                narrate("node " + std::to_string(n.id) + " lost its leader");
            n.lastSoft = *rd.softState;
        }
        if (!rd.entries.empty()) {
            const Term prev = n.raft->raft().log().termOrZero(rd.entries.front().index - 1);
            check(Check::LogMatching, m_cluster.observeAppend(n.id, prev, rd.entries));
        }
        if (!rd.entries.empty() || rd.hardState || !rd.messagesAfterPersist.empty()) {
            PendingWrite w;
            w.lastIndex = rd.lastEntryIndex();
            w.lastTerm = rd.entries.empty() ? 0 : rd.entries.back().term;
            w.writeId = rd.writeId;
            w.entries = std::move(rd.entries);
            w.hardState = rd.hardState;
            w.afterPersist = std::move(rd.messagesAfterPersist);
            n.writes.push_back(std::move(w));
            startSync(n);
        }
        for (const Message &m : rd.messages)
            send(m);
        for (const Entry &e : rd.committedEntries)
            applyEntry(n, e);
        for (const ReadState &rs : rd.readStates) {
            auto it = n.pendingReads.find(rs.context);
            if (it != n.pendingReads.end()) {
                it->second.hasIndex = true;
                it->second.index = rs.index;
            }
        }
        for (std::uint64_t ctx : rd.droppedReads) {
            auto it = n.pendingReads.find(ctx);
            if (it == n.pendingReads.end())
                continue;
            Client &c = m_clients[it->second.client];
            if (c.busy && c.seq == it->second.clientSeq)
                failOp(c); // a dropped read has no effect: a definite failure
            n.pendingReads.erase(it);
        }
        serveReads(n);
        checkNode(n);
    }
}

void Simulation::startSync(SimNode &n)
{
    // Group commit: one sync covers every write queued when it starts; writes that arrive while it
    // runs wait for the next one. Each sync takes a random time.
    if (n.syncing > 0 || n.writes.empty())
        return;
    n.syncing = n.writes.size();
    schedule(m_now + 20 + m_rng.below(600), EventKind::DiskDone, static_cast<int>(n.id - 1), n.incarnation);
}

void Simulation::completeSync(SimNode &n)
{
    const std::size_t count = n.syncing;
    n.syncing = 0;
    for (std::size_t i = 0; i < count && n.up && !m_failed; ++i) {
        PendingWrite w = std::move(n.writes.front());
        n.writes.pop_front();
        if (m_opts.trace)
            trace("disk " + std::to_string(n.id) + " synced "
                  + (w.entries.empty() ? std::string("no entries")
                                       : "entries " + std::to_string(w.entries.front().index) + ".." + std::to_string(w.lastIndex)
                                             + " term " + std::to_string(w.lastTerm))
                  + (w.hardState ? ", hard state" : "") + ", " + std::to_string(w.afterPersist.size()) + " messages released");
        if (!w.entries.empty() && !n.disk->append(w.entries))
            fail("node " + std::to_string(n.id) + ": write of entries from " + std::to_string(w.entries.front().index)
                 + " leaves a gap in its log (last " + std::to_string(n.disk->lastIndex()) + ")");
        if (w.hardState) {
            if (w.hardState->term < n.durableHardState.term)
                fail("node " + std::to_string(n.id) + ": durable term went back from " + std::to_string(n.durableHardState.term)
                     + " to " + std::to_string(w.hardState->term));
            n.disk->setHardState(*w.hardState);
            n.durableHardState = *w.hardState;
        }
        for (const Message &m : w.afterPersist)
            send(m);
        if (w.writeId != 0)
            n.raft->acknowledgePersisted(w.writeId);
    }
    processReady(n);
    startSync(n);
}

void Simulation::applyEntry(SimNode &n, const Entry &e)
{
    check(Check::StateMachineSafety, m_cluster.observeApply(n.id, e));
    m_hash.add(e.index);
    m_hash.add(e.term);
    n.applied = e.index;
    const auto cmd = decode(e.data);
    if (!cmd)
        return;
    std::uint64_t &last = n.lastSeq[cmd->client];
    if (cmd->seq <= last)
        return; // a duplicate of an applied request (e.g. a re-sent forward)
    last = cmd->seq;
    n.kv[cmd->key] = cmd->value;
    if (cmd->client == ProbeClient) {
        n.appliedProbe = true;
        if (m_healed && !m_live
            && std::all_of(m_nodes.begin(), m_nodes.end(), [](const SimNode &x) { return !x.up || x.appliedProbe; })) {
            m_live = true;
            m_result.healTicks = (m_now - m_healTime) / TickUnits;
            narrate("liveness: a write was applied on every node " + std::to_string(m_result.healTicks) + " ticks after healing");
        }
        return;
    }
    if (cmd->origin != n.id)
        return;
    const auto it = n.pendingPuts.find({cmd->client, cmd->seq});
    if (it == n.pendingPuts.end())
        return;
    n.pendingPuts.erase(it);
    Client &c = m_clients[cmd->client];
    if (c.busy && c.seq == cmd->seq)
        finishOp(c);
}

void Simulation::serveReads(SimNode &n)
{
    for (auto it = n.pendingReads.begin(); it != n.pendingReads.end();) {
        if (!it->second.hasIndex || n.applied < it->second.index) {
            ++it;
            continue;
        }
        Client &c = m_clients[it->second.client];
        if (c.busy && c.seq == it->second.clientSeq) {
            const Operation &op = m_history[c.op];
            const auto kv = n.kv.find(op.key);
            ++m_result.linearizableReads;
            finishOp(c, kv != n.kv.end(), kv != n.kv.end() ? kv->second : std::string());
        }
        it = n.pendingReads.erase(it);
    }
}

SimNode *Simulation::leader()
{
    SimNode *best = nullptr;
    for (SimNode &n : m_nodes) {
        if (!n.up)
            continue;
        const NodeStatus st = n.raft->status();
        if (st.softState.role == Role::Leader && (!best || best->raft->status().hardState.term < st.hardState.term))
            best = &n;
    }
    return best;
}

// ---- network -----------------------------------------------------------------------------------

std::string Simulation::describe(const Message &m) const
{
    std::ostringstream out;
    out << toString(m.type) << ' ' << m.from << "->" << m.to << " term " << m.term << " idx " << m.index << " logTerm "
        << m.logTerm << " commit " << m.commit;
    if (!m.entries.empty())
        out << " entries " << m.entries.front().index << ".." << m.entries.back().index;
    if (m.reject)
        out << " REJECT hint " << m.rejectHint;
    if (m.context)
        out << " ctx " << m.context;
    return out.str();
}

void Simulation::send(const Message &m)
{
    m_hash.add(static_cast<std::uint64_t>(m.type) << 32 | m.from << 16 | m.to);
    m_hash.add(m.term);
    m_hash.add(m.index);
    if (!linkUp(m.from, m.to) || m_rng.chance(m_drop)) {
        trace("drop " + describe(m));
        return;
    }
    const int copies = m_rng.chance(m_duplicate) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
        const std::uint64_t id = m_nextMessageId++;
        m_inFlight.emplace(id, m);
        schedule(m_now + m_delayLo + m_rng.below(m_delayHi - m_delayLo), EventKind::Deliver, static_cast<int>(m.to - 1), id);
    }
}

void Simulation::deliver(std::uint64_t id)
{
    auto it = m_inFlight.find(id);
    Message m = std::move(it->second);
    m_inFlight.erase(it);
    SimNode &n = m_nodes[m.to - 1];
    if (!n.up || !linkUp(m.from, m.to)) {
        trace("lost " + describe(m));
        return;
    }
    ++m_result.messagesDelivered;
    const std::string what = m_opts.trace ? describe(m) : std::string();
    n.raft->step(std::move(m));
    if (m_opts.trace) {
        const NodeStatus st = n.raft->status();
        trace("deliver " + what + " => " + std::string(toString(st.softState.role)) + " term " + std::to_string(st.hardState.term)
              + " commit " + std::to_string(st.hardState.commit) + " last " + std::to_string(st.lastIndex) + " durable "
              + std::to_string(st.stableIndex));
    }
    processReady(n);
}

// ---- clients -----------------------------------------------------------------------------------

void Simulation::clientNext(Client &c)
{
    if (c.busy || m_failed)
        return;
    // Pick an up node at random: followers as often as leaders, so forwarding gets exercised.
    std::vector<int> up;
    for (const SimNode &n : m_nodes)
        if (n.up)
            up.push_back(static_cast<int>(n.id - 1));
    if (up.empty()) {
        schedule(m_now + TickUnits, EventKind::ClientNext, c.id);
        return;
    }
    c.node = up[m_rng.below(up.size())];
    SimNode &n = m_nodes[c.node];
    c.busy = true;
    ++c.seq;
    const std::uint64_t roll = m_rng.below(100);
    c.kind = roll < 50 ? OpKind::Put : roll < 85 ? OpKind::LinearizableGet : OpKind::StaleGet;
    Operation op;
    op.client = c.id;
    op.key = "k" + std::to_string(m_rng.below(static_cast<std::uint64_t>(m_opts.keys)));
    op.call = m_now;
    op.ret = Operation::Unknown;
    op.kind = c.kind == OpKind::Put ? Operation::Kind::Put : Operation::Kind::Get;
    if (c.kind == OpKind::Put)
        op.value = "c" + std::to_string(c.id) + "." + std::to_string(c.seq);
    if (c.kind != OpKind::StaleGet) {
        c.op = m_history.size();
        m_history.push_back(op);
        m_excluded.push_back(false);
    }
    schedule(m_now + ClientTimeoutTicks * TickUnits, EventKind::ClientTimeout, c.id, c.seq);
    trace("client " + std::to_string(c.id) + " seq " + std::to_string(c.seq) + " at node " + std::to_string(n.id));

    switch (c.kind) {
    case OpKind::Put: {
        Command cmd{c.id, c.seq, n.id, op.key, op.value};
        const Status st = n.raft->propose(encodePut(cmd));
        if (st != Status::Ok) {
            failOp(c); // not appended, not forwarded: it cannot take effect
            return;
        }
        n.pendingPuts.emplace(std::make_pair(c.id, c.seq), c.id);
        break;
    }
    case OpKind::LinearizableGet: {
        const std::uint64_t ctx = ++m_nextReadContext;
        if (n.raft->readIndex(ctx) != Status::Ok) {
            failOp(c);
            return;
        }
        n.pendingReads.emplace(ctx, PendingRead{c.id, c.seq});
        break;
    }
    case OpKind::StaleGet: {
        // Served from the local state machine at once: may be behind, so not part of the
        // linearizability check (state machine safety already covers what it can return).
        ++m_result.staleReads;
        c.busy = false;
        ++m_result.opsOk;
        schedule(m_now + m_rng.below(2 * TickUnits), EventKind::ClientNext, c.id);
        return;
    }
    }
    processReady(n);
}

void Simulation::finishOp(Client &c, bool found, const std::string &value)
{
    Operation &op = m_history[c.op];
    op.ret = m_now;
    if (op.kind == Operation::Kind::Get) {
        op.found = found;
        op.value = value;
    }
    ++m_result.opsOk;
    c.busy = false;
    trace("client " + std::to_string(c.id) + " seq " + std::to_string(c.seq) + " done");
    schedule(m_now + m_rng.below(2 * TickUnits), EventKind::ClientNext, c.id);
}

void Simulation::failOp(Client &c)
{
    // A definite failure: the operation did not and will not take effect, so it leaves the history.
    m_excluded[c.op] = true;
    ++m_result.opsFailed;
    c.busy = false;
    schedule(m_now + TickUnits + m_rng.below(2 * TickUnits), EventKind::ClientNext, c.id);
}

void Simulation::clientTimeout(Client &c, std::uint64_t seq)
{
    if (!c.busy || c.seq != seq)
        return;
    // The outcome is unknown: the operation stays in the history with no return time.
    ++m_result.opsUnknown;
    c.busy = false;
    schedule(m_now + m_rng.below(2 * TickUnits), EventKind::ClientNext, c.id);
}

// ---- faults ------------------------------------------------------------------------------------

void Simulation::nemesis()
{
    if (m_healed || m_failed)
        return;
    const std::uint64_t action = m_rng.below(100);
    const auto idOf = [&](std::uint64_t i) { return m_nodes[i].id; };
    const std::uint64_t n = m_nodes.size();
    if (action < 20) {
        m_blocked.clear();
        m_drop = std::min(m_drop, 0.05);
        narrate("network healed");
    } else if (action < 35) {
        // Symmetric partition into two random sides.
        m_blocked.clear();
        std::vector<bool> side(n);
        for (std::uint64_t i = 0; i < n; ++i)
            side[i] = m_rng.chance(0.5);
        for (std::uint64_t i = 0; i < n; ++i)
            for (std::uint64_t j = 0; j < n; ++j)
                if (side[i] != side[j])
                    m_blocked.insert({idOf(i), idOf(j)});
        ++m_result.partitions;
        narrate("partition (symmetric)");
    } else if (action < 50) {
        // Isolate the leader, the classic case for stale reads and check-quorum.
        if (SimNode *l = leader()) {
            for (const SimNode &o : m_nodes)
                if (o.id != l->id) {
                    m_blocked.insert({l->id, o.id});
                    m_blocked.insert({o.id, l->id});
                }
            ++m_result.partitions;
            narrate("leader " + std::to_string(l->id) + " isolated");
        }
    } else if (action < 60) {
        // Asymmetric: one direction of one link, or a node that hears but is not heard.
        const NodeId a = idOf(m_rng.below(n));
        if (m_rng.chance(0.5)) {
            const NodeId b = idOf(m_rng.below(n));
            if (a != b)
                m_blocked.insert({a, b});
        } else {
            for (const SimNode &o : m_nodes)
                if (o.id != a)
                    m_blocked.insert({a, o.id});
        }
        ++m_result.partitions;
        narrate("asymmetric partition around node " + std::to_string(a));
    } else if (action < 75) {
        SimNode &victim = m_nodes[m_rng.below(n)];
        if (victim.up) {
            crashNode(victim);
            schedule(m_now + restartDelay(), EventKind::Restart, static_cast<int>(victim.id - 1));
        }
    } else if (action < 85) {
        if (SimNode *l = leader()) {
            crashNode(*l);
            schedule(m_now + restartDelay(), EventKind::Restart, static_cast<int>(l->id - 1));
        }
    } else if (action < 88) {
        // Everything goes down at once (a power cut), then comes back.
        for (SimNode &v : m_nodes) {
            if (v.up) {
                crashNode(v);
                schedule(m_now + (1 + m_rng.below(20)) * TickUnits, EventKind::Restart, static_cast<int>(v.id - 1));
            }
        }
        narrate("whole-cluster power cut");
    } else if (action < 93) {
        // The leader hands over to another node (what a leader does when it is stopped), which
        // then campaigns at once, past the others' leader lease.
        if (SimNode *l = leader()) {
            const NodeId to = idOf(m_rng.below(n));
            if (to != l->id && l->raft->transferLeadership(to) == raft::Status::Ok) {
                ++m_result.transfers;
                narrate("leader " + std::to_string(l->id) + " hands leadership to node " + std::to_string(to));
                processReady(*l);
            }
        }
    } else {
        // Network weather: heavy loss for a while.
        m_drop = m_rng.chance(0.5) ? 0.3 : 0.1;
        narrate("lossy network");
    }
    schedule(m_now + (m_opts.intenseFaults ? 3 + m_rng.below(25) : 20 + m_rng.below(150)) * TickUnits, EventKind::Nemesis, 0);
}

std::uint64_t Simulation::restartDelay()
{
    return (m_opts.intenseFaults ? 1 + m_rng.below(12) : 2 + m_rng.below(60)) * TickUnits;
}

void Simulation::heal()
{
    m_healed = true;
    m_healTime = m_now;
    m_blocked.clear();
    m_drop = 0;
    m_duplicate = 0;
    m_delayHi = std::min<std::uint64_t>(m_delayHi, 1500);
    // Every node comes back, except the ones the options keep down for good.
    for (std::size_t i = 0; i < m_nodes.size(); ++i) {
        SimNode &n = m_nodes[i];
        const bool keepDown = static_cast<int>(i) < m_opts.keepDownAfterHeal;
        if (keepDown && n.up)
            crashNode(n);
        else if (!keepDown && !n.up)
            startNode(n);
    }
    narrate(std::string(m_opts.faults ? "faults healed" : "end of the run")
            + "; the cluster must now make progress within " + std::to_string(m_opts.healBoundTicks) + " ticks");
    schedule(m_now + TickUnits, EventKind::Probe, 0);
}

void Simulation::probe()
{
    if (m_live || m_failed)
        return;
    if (m_now - m_healTime > m_opts.healBoundTicks * TickUnits) {
        std::ostringstream out;
        out << "liveness: no write was applied on every node within " << m_opts.healBoundTicks << " ticks of healing; nodes:";
        for (SimNode &n : m_nodes) {
            if (!n.up) {
                out << " [" << n.id << " down]";
                continue;
            }
            const NodeStatus st = n.raft->status();
            out << " [" << n.id << ' ' << toString(st.softState.role) << " term " << st.hardState.term << " lead "
                << st.softState.leader << " commit " << st.hardState.commit << " last " << st.lastIndex << ']';
        }
        fail(out.str());
        return;
    }
    // Like a client retrying: a new request every few ticks, to the leader if there is one.
    SimNode *target = leader();
    if (!target) {
        std::vector<SimNode *> up;
        for (SimNode &n : m_nodes)
            if (n.up)
                up.push_back(&n);
        if (up.empty()) {
            schedule(m_now + 3 * TickUnits, EventKind::Probe, 0);
            return;
        }
        target = up[m_rng.below(up.size())];
    }
    Command cmd{ProbeClient, ++m_probeSeq, target->id, ProbeKey, "p" + std::to_string(m_probeSeq)};
    target->raft->propose(encodePut(cmd));
    processReady(*target);
    schedule(m_now + 3 * TickUnits, EventKind::Probe, 0);
}

// ---- main loop ---------------------------------------------------------------------------------

void Simulation::dispatch(const Event &e)
{
    m_hash.add(e.time);
    m_hash.add(static_cast<std::uint64_t>(e.kind) << 8 | static_cast<std::uint64_t>(e.node));
    switch (e.kind) {
    case EventKind::Tick: {
        SimNode &n = m_nodes[e.node];
        if (!n.up || n.incarnation != e.arg)
            return;
        n.raft->tick();
        processReady(n);
        schedule(m_now + n.tickInterval, EventKind::Tick, e.node, n.incarnation);
        if (m_opts.crashLeaderAtTick && ticks() == m_opts.crashLeaderAtTick && n.raft->status().softState.role == Role::Leader) {
            narrate("stopping the leader (node " + std::to_string(n.id) + ") to show a failover");
            crashNode(n);
            schedule(m_now + 40 * TickUnits, EventKind::Restart, e.node);
        }
        return;
    }
    case EventKind::Deliver:
        deliver(e.arg);
        return;
    case EventKind::DiskDone: {
        SimNode &n = m_nodes[e.node];
        if (n.up && n.incarnation == e.arg)
            completeSync(n);
        return;
    }
    case EventKind::ClientNext:
        clientNext(m_clients[e.node]);
        return;
    case EventKind::ClientTimeout:
        clientTimeout(m_clients[e.node], e.arg);
        return;
    case EventKind::Nemesis:
        nemesis();
        return;
    case EventKind::Restart: {
        SimNode &n = m_nodes[e.node];
        if (!n.up) {
            startNode(n);
            narrate("node " + std::to_string(n.id) + " restarted from its disk (term " + std::to_string(n.disk->hardState().term)
                    + ", " + std::to_string(n.disk->lastIndex()) + " entries)");
        }
        return;
    }
    case EventKind::Heal:
        heal();
        return;
    case EventKind::Probe:
        probe();
        return;
    }
}

SimResult Simulation::run()
{
    for (SimNode &n : m_nodes)
        startNode(n);
    for (Client &c : m_clients)
        schedule(m_now + (m_opts.clientStartTick + m_rng.below(20)) * TickUnits, EventKind::ClientNext, c.id);
    if (m_opts.faults)
        schedule((30 + m_rng.below(100)) * TickUnits, EventKind::Nemesis, 0);
    schedule(m_opts.faultTicks * TickUnits, EventKind::Heal, 0);

    while (!m_queue.empty() && !m_failed && !m_live) {
        const Event e = m_queue.top();
        m_queue.pop();
        m_now = e.time;
        ++m_result.events;
        try {
            dispatch(e);
        } catch (const std::exception &ex) {
            // The core refuses to go on when it detects corruption (e.g. an Append conflicting
            // with a committed entry): that is a safety violation to report, not a crash.
            fail(std::string("exception: ") + ex.what());
        }
    }
    if (!m_failed && !m_live)
        fail("the simulation ran out of events before the liveness check completed");
    if (!m_failed && (m_opts.checks & Check::Linearizability)) {
        std::vector<Operation> history;
        for (std::size_t i = 0; i < m_history.size(); ++i)
            if (!m_excluded[i])
                history.push_back(m_history[i]);
        const LinearizabilityResult lin = checkLinearizable(history);
        if (!lin.ok)
            fail(lin.exhausted ? "linearizability check ran out of search budget" : "linearizability: " + lin.explanation);
    }
    m_result.traceHash = m_hash.value;
    return m_result;
}

} // namespace

SimResult runSimulation(const SimOptions &options)
{
    SimResult result = Simulation(options).run();
    if (!result.ok && !options.trace) {
        // Replay the same seed with tracing to show what led up to the failure: the run is a pure
        // function of its options, so the replay takes exactly the same path.
        SimOptions replay = options;
        replay.narrate = nullptr;
        std::deque<std::string> recent;
        replay.trace = [&recent](const std::string &line) {
            recent.push_back(line);
            if (recent.size() > 40)
                recent.pop_front();
        };
        Simulation(replay).run();
        for (const std::string &line : recent)
            result.recentTrace += "    " + line + "\n";
    }
    return result;
}

std::string replayCommand(const SimOptions &options)
{
    std::ostringstream out;
    out << "dengine-sim --seed " << options.seed << " --ticks " << options.faultTicks;
    if (options.bugs.grantSecondVoteInTerm)
        out << " --bug two-votes";
    if (options.bugs.commitOldTermByCounting)
        out << " --bug old-term-commit";
    if (options.bugs.readWithoutQuorum)
        out << " --bug read-without-quorum";
    out << " --trace";
    return out.str();
}

} // namespace dengine::sim
