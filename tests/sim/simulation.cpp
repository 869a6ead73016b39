// SPDX-License-Identifier: Apache-2.0
#include "simulation.h"

#include "raft/confchange.h"

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
constexpr int NemesisClient = -2; // writes the nemesis makes itself (not in the checked history)
constexpr std::size_t MaxQueuedEvents = 1'000'000; // a healthy run has a few thousand at most

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

// The state machine's state as a snapshot holds it: the keys and the per-client deduplication table.
using KvMap = std::map<std::string, std::string>;
using SeqMap = std::map<int, std::uint64_t>;

Payload encodeState(const KvMap &kv, const SeqMap &lastSeq)
{
    std::ostringstream out;
    out << "S " << kv.size();
    for (const auto &[k, v] : kv)
        out << ' ' << k << ' ' << v;
    out << ' ' << lastSeq.size();
    for (const auto &[c, s] : lastSeq)
        out << ' ' << c << ' ' << s;
    return Payload(out.str());
}

bool decodeState(const Payload &p, KvMap &kv, SeqMap &lastSeq)
{
    kv.clear();
    lastSeq.clear();
    std::istringstream in(p.toString());
    char kind = 0;
    std::size_t n = 0;
    if (!(in >> kind >> n) || kind != 'S')
        return false;
    for (std::size_t i = 0; i < n; ++i) {
        std::string k, v;
        if (!(in >> k >> v))
            return false;
        kv.emplace(std::move(k), std::move(v));
    }
    if (!(in >> n))
        return false;
    for (std::size_t i = 0; i < n; ++i) {
        int c = 0;
        std::uint64_t s = 0;
        if (!(in >> c >> s))
            return false;
        lastSeq.emplace(c, s);
    }
    return true;
}

std::uint64_t stateHash(const KvMap &kv, const SeqMap &lastSeq)
{
    std::uint64_t h = 1469598103934665603ULL;
    const auto mix = [&h](std::string_view bytes) {
        for (unsigned char ch : bytes)
            h = (h ^ ch) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    };
    for (const auto &[k, v] : kv) {
        mix(k);
        mix(v);
    }
    for (const auto &[c, s] : lastSeq) {
        mix(std::to_string(c));
        mix(std::to_string(s));
    }
    return h;
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

enum class EventKind : std::uint8_t {
    Tick,
    Deliver,
    DiskDone,
    Ack, // a durability acknowledgement the runtime hands the core late
    ClientNext,
    ClientTimeout,
    Nemesis,
    Restart,
    Heal,
    Probe,
    Resume,  // a paused node goes on
    Isolate, // cut a node off (the second half of a compound fault)
    StrikeLeader, // a fault aimed at a leader just elected
    FlipFlop,     // the next step of a flip-flop (see Simulation::startFlipFlop)
    LeaseSplit,   // the second step of a lease split (see Simulation::startLeaseSplit)
    Deafen,       // a node stops hearing the others (it is still heard)
    SnapshotStatus, // the transport tells a leader whether its snapshot reached the follower
    Membership,     // the leader is asked for a membership change
};

struct Event {
    std::uint64_t time;
    std::uint64_t seq;
    EventKind kind;
    int node;          // node index, or client id
    std::uint64_t arg; // incarnation, client seq, message id...
    std::uint64_t aux; // Ack: the write id
    bool operator>(const Event &o) const { return time != o.time ? time > o.time : seq > o.seq; }
};

struct PendingWrite {
    std::optional<Snapshot> snapshot; // written first
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
    bool fromLease = false; // answered at once from the leader's lease (leaseReadable)
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

    // The state machine, rebuilt from the newest snapshot and the log at every restart.
    KvMap kv;
    SeqMap lastSeq; // per client: requests applied (deduplication, thesis §6.3)
    Index applied = 0;
    // The state before the last applied entry (only for the injected snapshotOmitsLastEntry bug).
    KvMap kvBefore;
    SeqMap lastSeqBefore;
    bool appliedProbe = false;

    // Client requests this node took and has not answered.
    std::map<std::pair<int, std::uint64_t>, int> pendingPuts;
    std::map<std::uint64_t, PendingRead> pendingReads;

    NodeInvariants invariants;
    SoftState lastSoft;
    Term lastTerm = 0;

    // A paused process (a stop signal, a stalled worker): it handles nothing until it resumes; the
    // events meant for it wait, and the ticks it missed are counted.
    bool paused = false;
    std::uint64_t missedTicks = 0;
    std::vector<Event> deferred;
    // The disk finishes nothing before diskSlowUntil (a stall). Until acksLateUntil, after a stall,
    // it is slow (a sync takes up to four ticks) and the runtime hands the core its durability
    // acknowledgements late.
    std::uint64_t diskSlowUntil = 0;
    std::uint64_t acksLateUntil = 0;

    // The highest index this node acknowledged to the leader of term ackedTerm: within that term its
    // log never again ends before it (the leader counts it for commits).
    Term ackedTerm = 0;
    Index ackedIndex = 0;

    // The log as the core handed it to the runtime (terms of entries 1..n), and how far its durable
    // prefix has been checked against the disk: the DurableLog check.
    std::vector<Term> shadow;
    Index verified = 0;
};

enum class OpKind { Put, LinearizableGet, LeaseGet, StaleGet };

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
    void schedule(std::uint64_t at, EventKind kind, int node, std::uint64_t arg = 0, std::uint64_t aux = 0);
    void dispatch(const Event &e);
    std::uint64_t ticks() const { return m_now / TickUnits; }
    bool inFaultPhase() const { return !m_healed; }

    // nodes
    void startNode(SimNode &n);
    // A crash loses what was not synced; a clean stop (an operator's restart) writes everything first.
    void crashNode(SimNode &n, bool clean = false);
    void processReady(SimNode &n);
    void startSync(SimNode &n);
    void completeSync(SimNode &n);
    void acknowledge(SimNode &n, std::uint64_t writeId);
    void checkDurableLog(SimNode &n);
    void diskTruncatedAt(SimNode &n, Index from);
    void pause(SimNode &n, std::uint64_t ticks);
    void resume(SimNode &n);
    void applyEntry(SimNode &n, const Entry &e);
    void applyCommand(SimNode &n, const Entry &e);
    void noteProbeApplied(SimNode &n);
    void checkState(SimNode &n, Index index, const std::string &how);
    void restoreSnapshot(SimNode &n, const Snapshot &snap, const std::string &how);
    void maybeSnapshot(SimNode &n);
    void reportSnapshotLater(const Message &m, bool delivered);
    void changeMembership();
    bool isMember(NodeId id) const;
    void serveReads(SimNode &n);
    void checkNode(SimNode &n);
    void checkLeases();
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
    void block(NodeId from, NodeId to);
    void isolate(SimNode &n);
    void strikeLeader(SimNode &n);
    void partitionInto(const std::vector<std::vector<NodeId>> &groups);
    void startFlipFlop();
    void flipFlopElected(SimNode &leader);
    void flipFlopStep();
    void startLeaseSplit();
    void leaseSplitStep(SimNode &l);
    void deafen(SimNode &n);
    void tellUnreachable(SimNode &n, NodeId peer);
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
    std::uint64_t m_nemesisLo = 20, m_nemesisHi = 170; // ticks between two faults
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
    std::uint64_t m_syncTimeHi = 620;  // units a normal sync takes at most
    bool m_groupCommit = true;         // one sync covers every queued write (else a random part of them)
    bool m_lateAcks = false;           // acknowledgements reach the core late and out of order
    std::uint64_t m_snapshotEvery = 0; // a node snapshots every this many applied entries (0: never)
    std::uint64_t m_snapshotKeep = 0;  // and keeps this many entries behind the snapshot
    std::unordered_map<Index, std::uint64_t> m_stateAt; // the state machine's hash after each index, as first applied
    std::unordered_map<std::uint64_t, std::uint64_t> m_snapshotSender; // Snapshot messages in flight: the sender's incarnation
    bool m_membership = false;
    ConfState m_conf;          // the newest configuration any node applied, and its index
    Index m_confIndex = 0;
    std::set<NodeId> m_everMember; // never added again once removed

    std::vector<Client> m_clients;
    std::vector<Operation> m_history;
    std::vector<bool> m_excluded; // operations that definitely did not happen
    std::uint64_t m_nextReadContext = 0;

    // A flip-flop in progress: 0 none; 1 the old leader and its companion are cut off, waiting for
    // the others to elect; 2 the new leader cut off with the companion (its entries reach only it).
    struct FlipFlopState {
        int phase = 0;
        NodeId oldLeader = 0;
        NodeId companion = 0;
        NodeId newLeader = 0;
        std::uint64_t deadline = 0;
    } m_flip;
    std::uint64_t m_nemesisSeq = 0;
    NodeId m_holdTimeoutNowFrom = 0; // the next TimeoutNow this node sends comes too late (a stale one)

    ClusterInvariants m_cluster;
    Term m_maxCommittedTerm = 0; // the highest term of an entry seen committed anywhere, and where
    NodeId m_maxCommittedBy = 0;
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
    const int total = m_opts.nodes + (m_membership ? std::max(0, m_opts.spares) : 0);
    for (int i = 0; i < total; ++i) {
        SimNode n;
        n.id = static_cast<NodeId>(i + 1);
        // Clocks run within 0.5% of nominal: well inside the lease's drift margin.
        n.tickInterval = TickUnits - 5 + m_rng.below(11);
        m_nodes.push_back(std::move(n));
    }
    std::vector<NodeId> voters;
    for (int i = 0; i < m_opts.nodes; ++i)
        voters.push_back(m_nodes[static_cast<std::size_t>(i)].id);
    // The spares start with no configuration: they join when a leader adds them.
    for (SimNode &n : m_nodes)
        n.disk = std::make_unique<MemoryStorage>(n.id <= static_cast<NodeId>(m_opts.nodes) ? voters : std::vector<NodeId>{});
    m_conf.voters = voters;
    m_everMember.insert(voters.begin(), voters.end());
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
        const std::uint64_t delays[] = {300, 1500, 3000, 8000}; // the first: a real LAN, far below a tick
        const std::uint64_t sizes[] = {1, 512, 4096, 1 << 20};
        const std::size_t inflight[] = {1, 4, 64};
        m_drop = drops[pick.below(4)];
        m_duplicate = dups[pick.below(3)];
        m_delayHi = delays[pick.below(4)];
        m_delayLo = std::min<std::uint64_t>(m_delayLo, m_delayHi / 4);
        m_maxSizePerMsg = sizes[pick.below(4)];
        m_maxInflight = inflight[pick.below(3)];
        if (m_maxSizePerMsg == 1)
            m_maxInflight = std::max<std::size_t>(m_maxInflight, 16); // one entry per message and per round trip cannot catch up in time
        m_heartbeatTick = 1 + static_cast<int>(pick.below(3));
        m_preVote = pick.chance(0.75);
        m_checkQuorum = pick.chance(0.75);
        m_readOnly = ReadOnlyOption::Safe;
        if (m_checkQuorum && pick.chance(0.5))
            m_readOnly = pick.chance(0.5) ? ReadOnlyOption::LeaseBased : ReadOnlyOption::LeaseOnRequest;
        const std::uint64_t syncs[] = {620, 620, 2000, 5000}; // the last two: a disk slower than the network
        m_syncTimeHi = syncs[pick.below(4)];
        m_groupCommit = pick.chance(0.7);
        m_lateAcks = pick.chance(0.4);
        m_opts.faults = true;
        // Snapshots: drawn last, so that a seed's other choices stay as they were before snapshots.
        const bool snapshots = pick.chance(0.5) || m_opts.snapshots;
        const std::uint64_t every[] = {3, 10, 40};
        const std::uint64_t keep[] = {0, 2, 20};
        const std::uint64_t e = every[pick.below(3)], k = keep[pick.below(3)];
        if (snapshots) {
            m_snapshotEvery = e;
            m_snapshotKeep = k;
        }
        m_membership = pick.chance(0.5) || m_opts.membership;
        // A removed node that never learns of its removal campaigns on; only pre-vote or
        // check-quorum keep it from disturbing the members (raft/confchange.h).
        if (m_membership && !m_preVote && !m_checkQuorum)
            m_preVote = true;
        if (m_opts.focus == SimOptions::Focus::Leases) {
            // Leases need a network faster than they are long, and a lease mode. A real network's
            // delays are far below a tick: there an election takes a tick or two, well inside a lease.
            m_opts.nodes = pick.chance(0.7) ? 3 : 5;
            const std::uint64_t leaseDelays[] = {300, 300, 1500, 3000};
            m_delayHi = leaseDelays[pick.below(4)];
            m_delayLo = std::min<std::uint64_t>(m_delayLo, m_delayHi / 4);
            m_drop = std::min(m_drop, 0.01);
            m_checkQuorum = true;
            m_readOnly = pick.chance(0.5) ? ReadOnlyOption::LeaseBased : ReadOnlyOption::LeaseOnRequest;
            m_syncTimeHi = std::min<std::uint64_t>(m_syncTimeHi, 2000);
        }
    } else {
        m_drop = m_opts.dropRate;
        m_duplicate = m_opts.duplicateRate;
        m_delayHi = static_cast<std::uint64_t>(m_opts.maxDelayTicks * TickUnits);
        m_maxSizePerMsg = m_opts.maxSizePerMsg;
        m_maxInflight = m_opts.maxInflightMsgs;
        m_preVote = m_opts.preVote;
        m_checkQuorum = m_opts.checkQuorum;
        m_readOnly = m_opts.readOnlyOption;
        m_syncTimeHi = static_cast<std::uint64_t>(m_opts.maxSyncTicks * TickUnits);
        m_groupCommit = m_opts.groupCommit;
        m_lateAcks = m_opts.lateAcks;
        m_snapshotEvery = m_opts.snapshotEvery;
        m_snapshotKeep = m_opts.snapshotKeep;
        m_membership = m_opts.membership;
    }
    if (m_opts.intenseFaults) {
        m_nemesisLo = 3;
        m_nemesisHi = 28;
    } else if (m_opts.focus == SimOptions::Focus::Leases) {
        m_nemesisLo = 10;
        m_nemesisHi = 60;
    }
    std::ostringstream p;
    p << (m_opts.focus == SimOptions::Focus::Leases ? "lease sweep, " : "") << m_opts.nodes << " nodes, drop " << m_drop << ", dup " << m_duplicate << ", delay<=" << m_delayHi / double(TickUnits)
      << " ticks, msg " << m_maxSizePerMsg << " B, inflight " << m_maxInflight << ", heartbeat " << m_heartbeatTick
      << (m_preVote ? ", pre-vote" : "") << (m_checkQuorum ? ", check-quorum" : "")
      << (m_readOnly == ReadOnlyOption::LeaseBased       ? ", LeaseBased reads"
          : m_readOnly == ReadOnlyOption::LeaseOnRequest ? ", LeaseOnRequest reads"
                                                         : "")
      << ", sync<=" << m_syncTimeHi / double(TickUnits) << " ticks" << (m_groupCommit ? "" : ", partial group commits")
      << (m_lateAcks ? ", late acks" : "") << (m_opts.faults ? "" : ", no faults") << (m_opts.intenseFaults ? ", intense faults" : "");
    if (m_snapshotEvery > 0)
        p << ", snapshots every " << m_snapshotEvery << " (keep " << m_snapshotKeep << ")";
    if (m_membership)
        p << ", membership changes (" << m_opts.spares << " spares)";
    for (const InjectedBugName &b : InjectedBugNames)
        if (m_opts.bugs.*b.flag)
            p << ", BUG " << b.name;
    if (m_opts.noTickCatchUp)
        p << ", BUG no tick catch-up";
    if (m_opts.snapshotOmitsLastEntry)
        p << ", BUG snapshot omits last entry";
    m_result.profile = p.str();
    m_result.nodes = m_opts.nodes;
}

void Simulation::schedule(std::uint64_t at, EventKind kind, int node, std::uint64_t arg, std::uint64_t aux)
{
    m_queue.push(Event{at, m_eventSeq++, kind, node, arg, aux});
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
    m_cluster.restarted(n.id, 0);
    // The state machine starts from the newest snapshot on the disk; the core replays the log after it.
    if (const Snapshot snap = n.disk->snapshot(); !snap.empty())
        restoreSnapshot(n, snap, "restarted from");
    n.lastSoft = n.raft->status().softState;
    n.lastTerm = n.raft->status().hardState.term;
    n.invariants.restarted(n.raft->status());
    n.paused = false;
    n.missedTicks = 0;
    n.deferred.clear();
    n.ackedTerm = 0;
    n.ackedIndex = 0;
    n.shadow.clear();
    for (Index i = 1; i <= n.disk->lastIndex(); ++i) {
        Term t = 0;
        n.disk->term(i, t);
        n.shadow.push_back(t);
    }
    n.verified = 0;
    // As the engine does at start: campaign within one election timeout, not after a whole one
    // (pre-vote keeps it from disturbing a leader; the lease promise defers it in the lease modes).
    if (m_opts.nodes > 1 && m_preVote)
        n.raft->expediteElection();
    // The first tick comes at a random phase so nodes do not tick in lockstep.
    schedule(m_now + 1 + m_rng.below(n.tickInterval), EventKind::Tick, static_cast<int>(n.id - 1), n.incarnation);
}

void Simulation::crashNode(SimNode &n, bool clean)
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
    const std::size_t survive = n.writes.empty() ? 0 : clean ? n.writes.size() : m_rng.below(n.writes.size() + 1);
    // A snapshot is written (and synced, and renamed into place) before the write's records: it
    // survives whole or not at all, and what follows it survives only if it did.
    for (std::size_t i = 0; i < survive; ++i) {
        const PendingWrite &w = n.writes[i];
        if (w.snapshot)
            n.disk->applySnapshot(*w.snapshot);
        n.disk->append(w.entries);
        if (w.hardState)
            n.disk->setHardState(*w.hardState);
    }
    if (survive < n.writes.size()) {
        const PendingWrite &w = n.writes[survive];
        const bool snapshotSurvives = w.snapshot && m_rng.chance(0.5);
        if (snapshotSurvives)
            n.disk->applySnapshot(*w.snapshot);
        if ((!w.snapshot || snapshotSurvives) && !w.entries.empty()) {
            const std::vector<Entry> &torn = w.entries;
            const std::size_t keep = m_rng.below(torn.size() + 1);
            n.disk->append(std::vector<Entry>(torn.begin(), torn.begin() + static_cast<std::ptrdiff_t>(keep)));
        }
    }
    narrate("node " + std::to_string(n.id) + " crashed (" + std::to_string(n.writes.size() - survive) + " of "
            + std::to_string(n.writes.size()) + " unsynced writes lost)");
    n.writes.clear();
    n.syncing = 0;
    n.up = false;
    n.raft.reset();
    for (const Event &e : n.deferred)
        if (e.kind == EventKind::Deliver)
            m_inFlight.erase(e.arg);
    n.deferred.clear();
    n.paused = false;
    n.missedTicks = 0;
    n.pendingPuts.clear(); // their clients time out: the outcome is unknown
    n.pendingReads.clear();
    // A crashed process's connections close: the transport tells some peers at once (the others
    // notice by their timers), as the engine's does.
    for (SimNode &o : m_nodes)
        if (o.up && o.id != n.id && m_rng.chance(0.5))
            tellUnreachable(o, n.id);
}

void Simulation::tellUnreachable(SimNode &n, NodeId peer)
{
    if (!n.up || n.paused)
        return; // a paused process learns of it when it goes on (its own timers tell it)
    ++m_result.unreachableReports;
    trace("node " + std::to_string(n.id) + " told node " + std::to_string(peer) + " is unreachable");
    n.raft->reportUnreachable(peer);
    processReady(n);
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
            // Faults that strike a leader just elected, before its first entry has spread: where
            // logs diverge (Figure 8) and where a fresh lease meets an old one.
            if (m_flip.phase == 1 || m_flip.phase == 3)
                flipFlopElected(n);
            else if (m_opts.faults && !m_healed && m_rng.chance(m_opts.intenseFaults ? 0.3 : 0.12))
                schedule(m_now + m_rng.below(TickUnits), EventKind::StrikeLeader, static_cast<int>(n.id - 1), n.incarnation);
        }
    }
    m_result.maxTerm = std::max(m_result.maxTerm, st.hardState.term);
    if (st.hardState.commit / 100 > m_result.maxCommit / 100 && st.softState.role == Role::Leader)
        narrate("leader " + std::to_string(n.id) + " has committed " + std::to_string(st.hardState.commit) + " entries");
    m_result.maxCommit = std::max(m_result.maxCommit, st.hardState.commit);
    const Term committedTerm = n.raft->raft().log().termOrZero(st.hardState.commit);
    if (committedTerm > m_maxCommittedTerm) {
        m_maxCommittedTerm = committedTerm;
        m_maxCommittedBy = n.id;
    }
}

void Simulation::checkLeases()
{
    // The lease's promise, checked directly rather than only through a read that happens to land in
    // the window: while a node holds a lease in term T, no entry of a later term may be committed
    // (its leader could have taken a write that a read from the lease would miss).
    if (m_readOnly == ReadOnlyOption::Safe || !(m_opts.checks & Check::LeaseSafety) || m_failed)
        return;
    for (SimNode &n : m_nodes) {
        if (!n.up || n.paused || !n.raft->raft().leaseReadable())
            continue;
        const Term term = n.raft->raft().term();
        if (m_maxCommittedTerm > term)
            fail("lease safety: node " + std::to_string(n.id) + " holds a lease in term " + std::to_string(term) + " at commit "
                 + std::to_string(n.raft->status().hardState.commit) + ", but node " + std::to_string(m_maxCommittedBy)
                 + " has committed an entry of term " + std::to_string(m_maxCommittedTerm));
    }
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
        if (rd.snapshot) {
            // The log up to the snapshot is replaced: unknown terms (0) below it, its term at it.
            const Index at = rd.snapshot->metadata.index;
            n.shadow.assign(at, 0);
            n.shadow.back() = rd.snapshot->metadata.term;
            n.verified = std::min<Index>(n.verified, at - 1);
            restoreSnapshot(n, *rd.snapshot, "installed");
            ++m_result.snapshotsInstalled;
        }
        if (!rd.entries.empty()) {
            const Term prev = n.raft->raft().log().termOrZero(rd.entries.front().index - 1);
            check(Check::LogMatching, m_cluster.observeAppend(n.id, prev, rd.entries));
            // The log as handed out: an entry at index i replaces everything from i on.
            const Index from = rd.entries.front().index;
            if (from > n.shadow.size() + 1)
                check(Check::DurableLog, "node " + std::to_string(n.id) + " handed out entries from " + std::to_string(from)
                                             + " after a log that ends at " + std::to_string(n.shadow.size()));
            n.shadow.resize(std::min<std::size_t>(n.shadow.size(), from - 1));
            for (const Entry &e : rd.entries)
                n.shadow.push_back(e.term);
            n.verified = std::min<Index>(n.verified, from - 1);
        }
        if (rd.snapshot || !rd.entries.empty() || rd.hardState || !rd.messagesAfterPersist.empty()) {
            PendingWrite w;
            w.snapshot = std::move(rd.snapshot);
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
        checkDurableLog(n);
        maybeSnapshot(n);
    }
}

void Simulation::checkDurableLog(SimNode &n)
{
    // What the core holds as durable (1..stableLastIndex) must be on the disk, and be the entries it
    // handed out for those indexes; and the core's log must be the one it handed out. A durability
    // acknowledgement taken for the wrong write breaks the first; reading back the wrong entries
    // from disk breaks the second.
    if (!(m_opts.checks & Check::DurableLog) || !n.up || m_failed)
        return;
    const RaftLog &log = n.raft->raft().log();
    const std::string who = "node " + std::to_string(n.id) + ": ";
    if (n.raft->raft().term() == n.ackedTerm && log.lastIndex() < n.ackedIndex) {
        fail(who + "durable log: it acknowledged entries up to " + std::to_string(n.ackedIndex) + " to the leader of term "
             + std::to_string(n.ackedTerm) + ", and its log now ends at " + std::to_string(log.lastIndex()));
        return;
    }
    if (log.lastIndex() != n.shadow.size() || (log.lastIndex() > 0 && log.lastTerm() != n.shadow.back())) {
        fail(who + "durable log: the core's log ends at (" + std::to_string(log.lastIndex()) + ", term " + std::to_string(log.lastTerm())
             + ") but the log it handed out ends at (" + std::to_string(n.shadow.size()) + ", term "
             + std::to_string(n.shadow.empty() ? 0 : n.shadow.back()) + ")");
        return;
    }
    const Index stable = log.stableLastIndex();
    if (stable > n.disk->lastIndex()) {
        fail(who + "durable log: the core holds entries up to " + std::to_string(stable) + " as durable, but its disk ends at "
             + std::to_string(n.disk->lastIndex()));
        return;
    }
    for (Index i = n.verified + 1; i <= stable; ++i) {
        // Covered by a snapshot (a term the core never handed out, or one the disk compacted).
        if (n.shadow[i - 1] == 0 || i + 1 < n.disk->firstIndex())
            continue;
        Term onDisk = 0;
        n.disk->term(i, onDisk);
        if (onDisk != n.shadow[i - 1] || log.termOrZero(i) != n.shadow[i - 1]) {
            fail(who + "durable log: entry " + std::to_string(i) + " is durable as term " + std::to_string(onDisk) + " on disk and term "
                 + std::to_string(log.termOrZero(i)) + " in the core, but the core wrote term " + std::to_string(n.shadow[i - 1]));
            return;
        }
    }
    n.verified = stable;
}

void Simulation::diskTruncatedAt(SimNode &n, Index from)
{
    // Entries from `from` on were replaced on disk: what was checked there must be checked again.
    n.verified = std::min<Index>(n.verified, from - 1);
}

void Simulation::startSync(SimNode &n)
{
    // Group commit: one sync covers every write queued when it starts; writes that arrive while it
    // runs wait for the next one. Each sync takes a random time.
    if (n.syncing > 0 || n.writes.empty())
        return;
    // Group commit takes every queued write; without it, a sync covers a random part of the queue,
    // so writes queued together become durable (and are acknowledged) at different times.
    n.syncing = m_groupCommit ? n.writes.size() : 1 + m_rng.below(n.writes.size());
    // A stalled disk (a fault) finishes nothing before the stall ends: writes pile up behind it while
    // leadership moves, and their acknowledgements come long after.
    const std::uint64_t start = std::max(m_now, n.diskSlowUntil);
    const std::uint64_t hi = start < n.acksLateUntil ? std::max<std::uint64_t>(m_syncTimeHi, 4 * TickUnits) : m_syncTimeHi;
    schedule(start + 20 + m_rng.below(hi), EventKind::DiskDone, static_cast<int>(n.id - 1), n.incarnation);
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
        if (w.snapshot && !n.disk->applySnapshot(*w.snapshot))
            fail("node " + std::to_string(n.id) + ": the snapshot at index " + std::to_string(w.snapshot->metadata.index)
                 + " is older than the one on its disk (" + std::to_string(n.disk->snapshot().metadata.index) + ")");
        if (!w.entries.empty()) {
            diskTruncatedAt(n, w.entries.front().index);
            if (!n.disk->append(w.entries))
                fail("node " + std::to_string(n.id) + ": write of entries from " + std::to_string(w.entries.front().index)
                     + " leaves a gap in its log (last " + std::to_string(n.disk->lastIndex()) + ")");
        }
        if (w.hardState) {
            if (w.hardState->term < n.durableHardState.term)
                fail("node " + std::to_string(n.id) + ": durable term went back from " + std::to_string(n.durableHardState.term)
                     + " to " + std::to_string(w.hardState->term));
            n.disk->setHardState(*w.hardState);
            n.durableHardState = *w.hardState;
        }
        for (const Message &m : w.afterPersist)
            send(m);
        if (w.writeId == 0)
            continue;
        // The runtime tells the core; with late acknowledgements, some time later and in any order
        // (an acknowledgement covers every earlier write too).
        if (m_now < n.acksLateUntil) {
            // A runtime that fell behind with its disk: every acknowledgement comes a little late.
            schedule(m_now + m_rng.below(4 * TickUnits), EventKind::Ack, static_cast<int>(n.id - 1), n.incarnation, w.writeId);
        } else if (m_lateAcks && m_rng.chance(0.5)) {
            // Most come within a few ticks; some are held up for election timeouts (a busy runtime).
            const std::uint64_t late = m_rng.chance(0.7) ? m_rng.below(3 * TickUnits) : m_rng.below(3 * ElectionTick * TickUnits);
            schedule(m_now + late, EventKind::Ack, static_cast<int>(n.id - 1), n.incarnation, w.writeId);
        }
        else
            acknowledge(n, w.writeId);
    }
    processReady(n);
    startSync(n);
}

void Simulation::acknowledge(SimNode &n, std::uint64_t writeId)
{
    trace("ack " + std::to_string(n.id) + " write " + std::to_string(writeId));
    n.raft->acknowledgePersisted(writeId);
    checkDurableLog(n);
}

void Simulation::applyEntry(SimNode &n, const Entry &e)
{
    check(Check::StateMachineSafety, m_cluster.observeApply(n.id, e));
    m_hash.add(e.index);
    m_hash.add(e.term);
    n.applied = e.index;
    if (m_opts.snapshotOmitsLastEntry) {
        n.kvBefore = n.kv;
        n.lastSeqBefore = n.lastSeq;
    }
    applyCommand(n, e);
    if (m_snapshotEvery > 0)
        checkState(n, e.index, "applied");
    if (e.type == EntryType::ConfChange && e.index > m_confIndex) {
        ConfState cs;
        if (!decodeConfState(e.data, cs)) {
            fail("node " + std::to_string(n.id) + " applied a malformed configuration at index " + std::to_string(e.index));
            return;
        }
        m_conf = cs;
        m_confIndex = e.index;
        ++m_result.confChangesApplied;
        for (NodeId id : members(cs))
            m_everMember.insert(id);
        narrate("configuration at index " + std::to_string(e.index) + ": " + raft::describe(cs));
    }
}

bool Simulation::isMember(NodeId id) const
{
    const std::vector<NodeId> all = members(m_conf);
    return std::binary_search(all.begin(), all.end(), id);
}

void Simulation::changeMembership()
{
    if (m_healed || m_failed)
        return;
    schedule(m_now + (30 + m_rng.below(90)) * TickUnits, EventKind::Membership, 0);
    SimNode *l = leader();
    if (!l || l->paused)
        return;
    const ConfState cs = l->raft->confState();
    if (isJoint(cs))
        return;
    std::vector<NodeId> spares;
    for (const SimNode &n : m_nodes)
        if (!m_everMember.count(n.id))
            spares.push_back(n.id);
    const auto any = [this](const std::vector<NodeId> &v) { return v[m_rng.below(v.size())]; };
    std::vector<ConfChangeOp> ops;
    const std::uint64_t roll = m_rng.below(100);
    if (!cs.learners.empty() && roll < 35) {
        ops.push_back({ConfChangeOp::Type::AddVoter, any(cs.learners)});
    } else if (!spares.empty() && roll < 60) {
        ops.push_back({ConfChangeOp::Type::AddLearner, any(spares)});
    } else if (cs.voters.size() > 3 && roll < 80) {
        // The leader itself a third of the time: it steps down once the change is applied.
        const NodeId victim = m_rng.chance(0.33) ? l->id : any(cs.voters);
        ops.push_back({ConfChangeOp::Type::Remove, victim});
    } else if (!spares.empty()) {
        // Replace a voter with a new node: two voters change, so joint consensus.
        ops.push_back({ConfChangeOp::Type::AddVoter, any(spares)});
        ops.push_back({ConfChangeOp::Type::Remove, any(cs.voters)});
    } else if (!cs.learners.empty()) {
        ops.push_back({ConfChangeOp::Type::Remove, any(cs.learners)});
    } else {
        return;
    }
    std::string why;
    const Status st = l->raft->proposeConfChange(ops, &why);
    std::ostringstream what;
    for (const ConfChangeOp &op : ops)
        what << (op.type == ConfChangeOp::Type::AddVoter ? " +voter " : op.type == ConfChangeOp::Type::AddLearner ? " +learner " : " -")
             << op.node;
    if (st == Status::Ok) {
        ++m_result.confChangesProposed;
        narrate("leader " + std::to_string(l->id) + " proposed a membership change:" + what.str());
    } else {
        trace("leader " + std::to_string(l->id) + " refused a membership change" + what.str() + ": " + why);
    }
    processReady(*l);
}

void Simulation::checkState(SimNode &n, Index index, const std::string &how)
{
    // The state after index i is a function of the log up to i: every node that gets there, by
    // applying entries or from a snapshot, must have the same one.
    const std::uint64_t h = stateHash(n.kv, n.lastSeq);
    const auto [it, first] = m_stateAt.emplace(index, h);
    if (!first && it->second != h)
        check(Check::StateMachineSafety, "state machine safety: node " + std::to_string(n.id) + " " + how + " a state at index "
                                             + std::to_string(index) + " that differs from the state other nodes had there");
}

void Simulation::noteProbeApplied(SimNode &n)
{
    n.appliedProbe = true;
    if (m_healed && !m_live
        && std::all_of(m_nodes.begin(), m_nodes.end(), [this](const SimNode &x) { return !x.up || !isMember(x.id) || x.appliedProbe; })) {
        m_live = true;
        m_result.healTicks = (m_now - m_healTime) / TickUnits;
        narrate("liveness: a write was applied on every node " + std::to_string(m_result.healTicks) + " ticks after healing");
    }
}

void Simulation::restoreSnapshot(SimNode &n, const Snapshot &snap, const std::string &how)
{
    const Index at = snap.metadata.index;
    if (!decodeState(snap.data, n.kv, n.lastSeq)) {
        fail("node " + std::to_string(n.id) + ": the snapshot at index " + std::to_string(at) + " does not decode");
        return;
    }
    trace("node " + std::to_string(n.id) + " " + how + " the snapshot at index " + std::to_string(at) + " term "
          + std::to_string(snap.metadata.term));
    n.applied = at;
    m_cluster.restarted(n.id, at); // the next entry it applies follows the snapshot
    checkState(n, at, how + " the snapshot of");
    if (m_healed && n.kv.count(ProbeKey))
        noteProbeApplied(n);
    // Writes this node took that the snapshot holds took effect: tell their clients.
    for (auto it = n.pendingPuts.begin(); it != n.pendingPuts.end();) {
        const auto seq = n.lastSeq.find(it->first.first);
        if (seq == n.lastSeq.end() || seq->second < it->first.second) {
            ++it;
            continue;
        }
        Client &c = m_clients[it->first.first];
        if (c.busy && c.seq == it->first.second)
            finishOp(c);
        it = n.pendingPuts.erase(it);
    }
}

void Simulation::maybeSnapshot(SimNode &n)
{
    if (m_snapshotEvery == 0 || !n.up || m_failed)
        return;
    const Index last = n.disk->snapshot().metadata.index;
    if (n.applied < last + m_snapshotEvery || n.applied > n.raft->status().stableIndex)
        return; // not due, or what it applied is not all durable here yet (a snapshot being installed)
    const Payload data = m_opts.snapshotOmitsLastEntry ? encodeState(n.kvBefore, n.lastSeqBefore) : encodeState(n.kv, n.lastSeq);
    const std::optional<ConfState> cs = n.raft->confStateAt(n.applied);
    if (!cs || !n.disk->createSnapshot(n.applied, *cs, data)) {
        fail("node " + std::to_string(n.id) + ": cannot snapshot at applied index " + std::to_string(n.applied) + " (disk log "
             + std::to_string(n.disk->firstIndex()) + ".." + std::to_string(n.disk->lastIndex()) + ", snapshot " + std::to_string(last) + ")");
        return;
    }
    ++m_result.snapshotsTaken;
    if (n.applied > m_snapshotKeep)
        n.disk->compact(n.applied - m_snapshotKeep);
    trace("node " + std::to_string(n.id) + " snapshot at " + std::to_string(n.applied) + ", log from " + std::to_string(n.disk->firstIndex()));
}

void Simulation::reportSnapshotLater(const Message &m, bool delivered)
{
    // The transport streams a snapshot and learns whether it arrived: it tells the sender's core,
    // a little later, unless the sender has restarted since.
    const std::uint64_t at = m_now + (delivered ? m_delayLo : TickUnits + m_rng.below(3 * TickUnits));
    schedule(at, EventKind::SnapshotStatus, static_cast<int>(m.from - 1), m_nodes[m.from - 1].incarnation, m.to << 1 | (delivered ? 1 : 0));
}

void Simulation::applyCommand(SimNode &n, const Entry &e)
{
    const auto cmd = decode(e.data);
    if (!cmd)
        return;
    std::uint64_t &last = n.lastSeq[cmd->client];
    if (cmd->seq <= last)
        return; // a duplicate of an applied request (e.g. a re-sent forward)
    last = cmd->seq;
    n.kv[cmd->key] = cmd->value;
    if (cmd->client == ProbeClient) {
        noteProbeApplied(n);
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
            if (it->second.fromLease)
                ++m_result.leaseReads;
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
    if (m.type == MessageType::AppendResponse && !m.reject && m.term > 0) {
        SimNode &n = m_nodes[m.from - 1];
        if (m.term != n.ackedTerm) {
            n.ackedTerm = m.term;
            n.ackedIndex = 0;
        }
        n.ackedIndex = std::max(n.ackedIndex, m.index);
    }
    m_hash.add(static_cast<std::uint64_t>(m.type) << 32 | m.from << 16 | m.to);
    m_hash.add(m.term);
    m_hash.add(m.index);
    if (!linkUp(m.from, m.to) || m_rng.chance(m_drop)) {
        trace("drop " + describe(m));
        if (m.type == MessageType::Snapshot)
            reportSnapshotLater(m, false);
        return;
    }
    if (m.type == MessageType::Snapshot) {
        // A stream rather than a datagram: it arrives once, or not at all and the sender learns so.
        ++m_result.snapshotsSent;
        const std::uint64_t id = m_nextMessageId++;
        m_inFlight.emplace(id, m);
        m_snapshotSender.emplace(id, m_nodes[m.from - 1].incarnation);
        schedule(m_now + m_delayLo + m_rng.below(2 * (m_delayHi - m_delayLo)), EventKind::Deliver, static_cast<int>(m.to - 1), id);
        return;
    }
    if (m.type == MessageType::TimeoutNow && m.from == m_holdTimeoutNowFrom) {
        // Stuck past the end of its transfer; and shortly before it arrives, the old leader stops
        // hearing the others (it can still be heard): a stale TimeoutNow meets a lease that the
        // leader must no longer hold.
        m_holdTimeoutNowFrom = 0;
        const std::uint64_t at = m_now + (ElectionTick + 1 + m_rng.below(ElectionTick)) * TickUnits + m_rng.below(TickUnits);
        const std::uint64_t id = m_nextMessageId++;
        m_inFlight.emplace(id, m);
        schedule(at, EventKind::Deliver, static_cast<int>(m.to - 1), id);
        schedule(at - m_rng.below(4 * TickUnits), EventKind::Deafen, static_cast<int>(m.from - 1), m_nodes[m.from - 1].incarnation);
        trace("held " + describe(m));
        return;
    }
    const int copies = m_rng.chance(m_duplicate) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
        const std::uint64_t id = m_nextMessageId++;
        m_inFlight.emplace(id, m);
        std::uint64_t delay = m_delayLo + m_rng.below(m_delayHi - m_delayLo);
        // A TimeoutNow may come very late (past the end of its transfer), and twice.
        if (m.type == MessageType::TimeoutNow && m_rng.chance(0.3))
            delay += m_rng.below(3 * ElectionTick * TickUnits);
        schedule(m_now + delay, EventKind::Deliver, static_cast<int>(m.to - 1), id);
    }
    if (m.type == MessageType::TimeoutNow && m_opts.faults && !m_healed && m_rng.chance(0.2)) {
        const std::uint64_t id = m_nextMessageId++;
        m_inFlight.emplace(id, m);
        schedule(m_now + m_rng.below(3 * ElectionTick * TickUnits), EventKind::Deliver, static_cast<int>(m.to - 1), id);
    }
}

void Simulation::deliver(std::uint64_t id)
{
    auto it = m_inFlight.find(id);
    Message m = std::move(it->second);
    m_inFlight.erase(it);
    SimNode &n = m_nodes[m.to - 1];
    const bool snapshot = m.type == MessageType::Snapshot;
    std::uint64_t senderIncarnation = 0;
    if (snapshot) {
        senderIncarnation = m_snapshotSender[id];
        m_snapshotSender.erase(id);
    }
    const bool senderGone = snapshot && m_nodes[m.from - 1].incarnation != senderIncarnation;
    if (!n.up || !linkUp(m.from, m.to) || senderGone) {
        trace("lost " + describe(m));
        if (snapshot && !senderGone)
            reportSnapshotLater(m, false);
        return;
    }
    if (snapshot)
        reportSnapshotLater(m, true);
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
    const std::uint64_t roll = m_rng.below(100);
    c.kind = roll < 50 ? OpKind::Put : roll < 85 ? OpKind::LinearizableGet : OpKind::StaleGet;
    if (c.kind == OpKind::LinearizableGet && m_readOnly != ReadOnlyOption::Safe && m_rng.chance(0.5))
        c.kind = OpKind::LeaseGet;
    // Pick a running node at random: followers as often as leaders, so forwarding gets exercised.
    // Reads go half the time to a node that believes it leads, which may be an old leader cut off
    // from the others: where a stale lease would show.
    std::vector<int> up, leaders;
    for (const SimNode &n : m_nodes) {
        if (!n.up || n.paused)
            continue;
        up.push_back(static_cast<int>(n.id - 1));
        if (n.raft->status().softState.role == Role::Leader)
            leaders.push_back(static_cast<int>(n.id - 1));
    }
    if (up.empty()) {
        schedule(m_now + TickUnits, EventKind::ClientNext, c.id);
        return;
    }
    const bool read = c.kind == OpKind::LinearizableGet || c.kind == OpKind::LeaseGet;
    c.node = read && !leaders.empty() && m_rng.chance(0.5) ? leaders[m_rng.below(leaders.size())] : up[m_rng.below(up.size())];
    SimNode &n = m_nodes[c.node];
    c.busy = true;
    ++c.seq;
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
    case OpKind::LeaseGet:
        // As the engine serves a Lease read: at the commit index at once while the lease holds,
        // else like a linearizable one.
        if (n.raft->raft().leaseReadable()) {
            const std::uint64_t ctx = ++m_nextReadContext;
            n.pendingReads.emplace(ctx, PendingRead{c.id, c.seq, true, n.raft->status().hardState.commit, true});
            trace("client " + std::to_string(c.id) + " lease read at node " + std::to_string(n.id) + " index "
                  + std::to_string(n.raft->status().hardState.commit));
            serveReads(n);
            return;
        }
        [[fallthrough]];
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

void Simulation::block(NodeId from, NodeId to)
{
    if (from == to || !m_blocked.insert({from, to}).second)
        return;
    // The transport may notice the broken link at once (a reset connection) or only by its timers.
    if (m_rng.chance(0.5))
        tellUnreachable(m_nodes[from - 1], to);
}

void Simulation::isolate(SimNode &n)
{
    for (const SimNode &o : m_nodes) {
        block(n.id, o.id);
        block(o.id, n.id);
    }
    ++m_result.partitions;
    narrate("node " + std::to_string(n.id) + " isolated");
}

void Simulation::strikeLeader(SimNode &n)
{
    const std::uint64_t roll = m_rng.below(100);
    if (roll < 45) {
        // Cut off with one companion: its first entries reach that node only, which a later leader
        // will overwrite, and perhaps a later one again.
        const NodeId companion = m_nodes[m_rng.below(m_nodes.size())].id;
        for (const SimNode &o : m_nodes) {
            const bool inside = o.id == n.id || o.id == companion;
            for (const SimNode &p : m_nodes) {
                const bool pInside = p.id == n.id || p.id == companion;
                if (inside != pInside)
                    block(o.id, p.id);
            }
        }
        ++m_result.partitions;
        narrate("new leader " + std::to_string(n.id) + " cut off with node " + std::to_string(companion));
    } else if (roll < 75) {
        isolate(n);
    } else {
        crashNode(n);
        schedule(m_now + restartDelay(), EventKind::Restart, static_cast<int>(n.id - 1));
    }
}

void Simulation::partitionInto(const std::vector<std::vector<NodeId>> &groups)
{
    // Each group hears only itself; the nodes in no group form one more.
    const auto groupOf = [&](NodeId id) -> std::size_t {
        for (std::size_t g = 0; g < groups.size(); ++g)
            if (std::find(groups[g].begin(), groups[g].end(), id) != groups[g].end())
                return g;
        return groups.size();
    };
    m_blocked.clear();
    for (const SimNode &a : m_nodes)
        for (const SimNode &b : m_nodes)
            if (groupOf(a.id) != groupOf(b.id))
                block(a.id, b.id);
    ++m_result.partitions;
}

// A flip-flop (Raft Figure 8, with a disk that cannot keep up): one node's log is made to take an
// entry, lose it to a conflicting one and take it back, while its disk is still writing the first:
// writes of the same index in flight across two leader changes, acknowledged long after.
//   1. The leader L is cut off from the others but for a companion F, which still hears them
//      (and is not heard); F's disk stalls; L takes a write, which reaches F only.
//   2. The others elect L2, and at once nobody but F hears L2: its first entry, at the index of
//      L's write, reaches F only, and F's log drops L's entry. A tick or so later L2 and F are each
//      cut off alone: the others can elect L again (its log is ahead of theirs, and they never got
//      L2's entry).
//   4. When L leads again, F joins it: L sends F its old entry once more.
// Five nodes at least (a majority must elect L2 without L and F, and L without L2 and F). Each step
// waits for what it needs; when it does not come in time (another node wins, a crash), the
// flip-flop is given up and the partition left as it is.
void Simulation::startFlipFlop()
{
    SimNode *l = leader();
    if (m_nodes.size() < 5 || m_flip.phase != 0 || !l || l->paused)
        return;
    std::vector<NodeId> others;
    for (const SimNode &o : m_nodes)
        if (o.id != l->id && o.up)
            others.push_back(o.id);
    if (others.empty())
        return;
    SimNode &f = m_nodes[others[m_rng.below(others.size())] - 1];
    m_flip = {1, l->id, f.id, 0, m_now + 6 * ElectionTick * TickUnits};
    ++m_result.flipFlops;
    f.diskSlowUntil = m_now + (7 + m_rng.below(3)) * ElectionTick * TickUnits;
    f.acksLateUntil = f.diskSlowUntil + 4 * ElectionTick * TickUnits;
    ++m_result.diskStalls;
    partitionInto({{l->id, f.id}});
    for (const SimNode &o : m_nodes)
        m_blocked.erase({o.id, f.id}); // F hears everyone, and only L hears F
    narrate("flip-flop: leader " + std::to_string(l->id) + " cut off with node " + std::to_string(f.id) + ", whose disk stalls");
    Command cmd{NemesisClient, ++m_nemesisSeq, l->id, "__nemesis", "n" + std::to_string(m_nemesisSeq)};
    if (l->up && !l->paused && l->raft->propose(encodePut(cmd)) == Status::Ok)
        processReady(*l);
}

void Simulation::flipFlopElected(SimNode &leader)
{
    if (m_now > m_flip.deadline || m_healed) {
        m_flip.phase = 0;
        return;
    }
    if (m_flip.phase == 1 && leader.id != m_flip.oldLeader && leader.id != m_flip.companion) {
        m_flip.phase = 2;
        m_flip.newLeader = leader.id;
        for (const SimNode &o : m_nodes)
            if (o.id != m_flip.companion)
                block(leader.id, o.id); // its first entries reach F only
        schedule(m_now + TickUnits + m_rng.below(2 * TickUnits), EventKind::FlipFlop, 0);
    } else if (m_flip.phase == 3) {
        m_flip.phase = 0;
        if (leader.id != m_flip.oldLeader)
            return; // someone else won: give up
        partitionInto({{m_flip.newLeader}});
        ++m_result.flipFlopsCompleted;
        narrate("flip-flop: node " + std::to_string(leader.id) + " leads again, node " + std::to_string(m_flip.companion) + " rejoins it");
    }
}

void Simulation::flipFlopStep()
{
    if (m_flip.phase != 2 || m_healed)
        return;
    m_flip.phase = 3;
    partitionInto({{m_flip.newLeader}, {m_flip.companion}});
    narrate("flip-flop: nodes " + std::to_string(m_flip.newLeader) + " and " + std::to_string(m_flip.companion) + " cut off alone");
}

// A lease split: the leader keeps a bare quorum that promised it its lease, while the others stop
// hearing from it long enough for their promises to end; then the leader is cut off (it lives on,
// and believes in its lease), and perhaps one of the promising nodes restarts at once. Whoever
// campaigns inside a promise now finds the voters it needs: where a broken promise shows.
void Simulation::startLeaseSplit()
{
    SimNode *l = leader();
    if (!l || l->paused)
        return;
    std::vector<NodeId> followers;
    for (const SimNode &o : m_nodes)
        if (o.id != l->id)
            followers.push_back(o.id);
    for (std::size_t i = followers.size(); i > 1; --i) // shuffle
        std::swap(followers[i - 1], followers[m_rng.below(i)]);
    const std::size_t cut = (m_nodes.size() - 1) / 2;
    m_blocked.clear(); // from a whole network: the leader keeps exactly the quorum it needs
    for (std::size_t i = 0; i < cut; ++i) {
        block(l->id, followers[i]);
        block(followers[i], l->id);
    }
    ++m_result.partitions;
    narrate("lease split: leader " + std::to_string(l->id) + " keeps a bare quorum");
    schedule(m_now + (ElectionTick + m_rng.below(ElectionTick)) * TickUnits + m_rng.below(TickUnits), EventKind::LeaseSplit,
             static_cast<int>(l->id - 1), l->incarnation);
}

void Simulation::leaseSplitStep(SimNode &l)
{
    // The nodes that still heard the leader: they promised it its lease.
    std::vector<SimNode *> promised;
    for (SimNode &o : m_nodes)
        if (o.id != l.id && o.up && !o.paused && !m_blocked.count({l.id, o.id}))
            promised.push_back(&o);
    isolate(l);
    for (SimNode *f : promised)
        if (m_rng.chance(0.8))
            tellUnreachable(*f, l.id); // most transports notice a cut link soon
    if (!promised.empty() && m_rng.chance(0.5)) {
        // One of them restarts at once, mostly a clean restart (a crash may lose its log's tail, and
        // with it the votes it could win).
        SimNode &f = *promised[m_rng.below(promised.size())];
        crashNode(f, m_rng.chance(0.8));
        schedule(m_now + (1 + m_rng.below(3)) * TickUnits, EventKind::Restart, static_cast<int>(f.id - 1));
    }
}

void Simulation::deafen(SimNode &n)
{
    for (const SimNode &o : m_nodes)
        block(o.id, n.id);
    ++m_result.partitions;
    narrate("node " + std::to_string(n.id) + " stops hearing the others");
}

void Simulation::pause(SimNode &n, std::uint64_t ticks)
{
    if (!n.up || n.paused)
        return;
    n.paused = true;
    n.missedTicks = 0;
    ++m_result.pauses;
    narrate("node " + std::to_string(n.id) + " paused for " + std::to_string(ticks) + " ticks");
    schedule(m_now + ticks * TickUnits, EventKind::Resume, static_cast<int>(n.id - 1), n.incarnation);
}

void Simulation::resume(SimNode &n)
{
    if (!n.up || !n.paused)
        return;
    n.paused = false;
    // The runtime's clock says how many ticks are due: the core gets them before anything else
    // (src/engine/tickclock.h). The injected runtime bug drops them, as a plain timer would.
    const std::uint64_t missed = n.missedTicks;
    n.missedTicks = 0;
    narrate("node " + std::to_string(n.id) + " resumed (" + std::to_string(missed) + " ticks missed"
            + (m_opts.noTickCatchUp ? ", not caught up)" : ", caught up)"));
    if (!m_opts.noTickCatchUp)
        for (std::uint64_t i = 0; i < missed; ++i)
            n.raft->tick();
    processReady(n);
    std::vector<Event> deferred;
    deferred.swap(n.deferred);
    for (const Event &e : deferred) {
        if (!n.up || m_failed)
            break;
        dispatch(e);
    }
}

void Simulation::nemesis()
{
    if (m_healed || m_failed)
        return;
    const auto idOf = [&](std::uint64_t i) { return m_nodes[i].id; };
    const std::uint64_t n = m_nodes.size();
    // One fault drawn by weight (the weights add up to 100).
    enum Fault {
        HealNetwork, SymmetricPartition, IsolateLeader, CutLeaderLink, Asymmetric, CrashAny, CrashLeader, Bounce, PowerCut,
        Transfer, TransferThenIsolate, Pause, DiskStall, Lossy, TransportHiccup, FlipFlop, LeaseSplit, StaleTimeoutNow
    };
    static constexpr std::pair<Fault, int> weights[] = {
        {HealNetwork, 13}, {SymmetricPartition, 9}, {IsolateLeader, 8}, {CutLeaderLink, 5}, {Asymmetric, 6},
        {CrashAny, 9}, {CrashLeader, 6}, {Bounce, 5}, {PowerCut, 2}, {Transfer, 4}, {TransferThenIsolate, 3},
        {Pause, 6}, {DiskStall, 3}, {Lossy, 3}, {TransportHiccup, 4}, {FlipFlop, 5}, {LeaseSplit, 5}, {StaleTimeoutNow, 4},
    };
    // The lease sweep: the faults that put a lease and a new leader side by side.
    static constexpr std::pair<Fault, int> leaseWeights[] = {
        {HealNetwork, 8}, {SymmetricPartition, 4}, {IsolateLeader, 8}, {CutLeaderLink, 6}, {Asymmetric, 4},
        {CrashAny, 4}, {CrashLeader, 4}, {Bounce, 7}, {Transfer, 5}, {TransferThenIsolate, 8}, {Pause, 8},
        {TransportHiccup, 6}, {LeaseSplit, 18}, {StaleTimeoutNow, 10},
    };
    int roll = static_cast<int>(m_rng.below(100));
    Fault fault = Lossy;
    const auto pickFrom = [&](const auto &table) {
        for (const auto &[f, w] : table) {
            if (roll < w)
                return f;
            roll -= w;
        }
        return Lossy;
    };
    fault = m_opts.focus == SimOptions::Focus::Leases ? pickFrom(leaseWeights) : pickFrom(weights);
    switch (fault) {
    case HealNetwork:
        m_blocked.clear();
        m_drop = std::min(m_drop, 0.05);
        narrate("network healed");
        break;
    case SymmetricPartition: {
        // Two random sides.
        m_blocked.clear();
        std::vector<bool> side(n);
        for (std::uint64_t i = 0; i < n; ++i)
            side[i] = m_rng.chance(0.5);
        for (std::uint64_t i = 0; i < n; ++i)
            for (std::uint64_t j = 0; j < n; ++j)
                if (side[i] != side[j])
                    block(idOf(i), idOf(j));
        ++m_result.partitions;
        narrate("partition (symmetric)");
        break;
    }
    case IsolateLeader:
        // The classic case for stale reads and check-quorum: the leader lives on, cut off.
        if (SimNode *l = leader())
            isolate(*l);
        break;
    case CutLeaderLink:
        // One follower loses the leader while the others keep it in office: that follower's promise
        // runs out, and it will vote for another while the leader's lease stands on the others.
        if (SimNode *l = leader()) {
            const NodeId f = idOf(m_rng.below(n));
            if (f != l->id) {
                block(l->id, f);
                block(f, l->id);
                ++m_result.partitions;
                narrate("link between leader " + std::to_string(l->id) + " and node " + std::to_string(f) + " cut");
            }
        }
        break;
    case Asymmetric: {
        // One direction of one link, or a node that hears but is not heard.
        const NodeId a = idOf(m_rng.below(n));
        if (m_rng.chance(0.5)) {
            block(a, idOf(m_rng.below(n)));
        } else {
            for (const SimNode &o : m_nodes)
                block(a, o.id);
        }
        ++m_result.partitions;
        narrate("asymmetric partition around node " + std::to_string(a));
        break;
    }
    case CrashAny: {
        SimNode &victim = m_nodes[m_rng.below(n)];
        if (victim.up) {
            crashNode(victim);
            schedule(m_now + restartDelay(), EventKind::Restart, static_cast<int>(victim.id - 1));
        }
        break;
    }
    case CrashLeader:
        if (SimNode *l = leader()) {
            crashNode(*l);
            schedule(m_now + restartDelay(), EventKind::Restart, static_cast<int>(l->id - 1));
        }
        break;
    case Bounce: {
        // A quick restart, a crash or a clean one: back within an election timeout, inside whatever
        // it promised before.
        SimNode &victim = m_nodes[m_rng.below(n)];
        if (victim.up) {
            crashNode(victim, m_rng.chance(0.5));
            schedule(m_now + (1 + m_rng.below(ElectionTick)) * TickUnits, EventKind::Restart, static_cast<int>(victim.id - 1));
        }
        break;
    }
    case PowerCut:
        // Everything goes down at once, then comes back.
        for (SimNode &v : m_nodes) {
            if (v.up) {
                crashNode(v);
                schedule(m_now + (1 + m_rng.below(20)) * TickUnits, EventKind::Restart, static_cast<int>(v.id - 1));
            }
        }
        narrate("whole-cluster power cut");
        break;
    case LeaseSplit:
        startLeaseSplit();
        break;
    case StaleTimeoutNow:
        if (SimNode *l = leader(); l && !l->paused) {
            const NodeId to = idOf(m_rng.below(n));
            if (to != l->id && l->raft->transferLeadership(to) == raft::Status::Ok) {
                ++m_result.transfers;
                narrate("leader " + std::to_string(l->id) + " hands leadership to node " + std::to_string(to) + " (a TimeoutNow will be late)");
                m_holdTimeoutNowFrom = l->id;
                processReady(*l);
            }
        }
        break;
    case Transfer:
    case TransferThenIsolate:
        // The leader hands over to another node (what a leader does when it is stopped), which
        // then campaigns at once, past the others' promises. Or the old leader is cut off right
        // after, before it hears of the new term: the case of a lease that must have ended.
        if (SimNode *l = leader(); l && !l->paused) {
            const NodeId to = idOf(m_rng.below(n));
            if (to != l->id && l->raft->transferLeadership(to) == raft::Status::Ok) {
                ++m_result.transfers;
                narrate("leader " + std::to_string(l->id) + " hands leadership to node " + std::to_string(to));
                processReady(*l);
                if (fault == TransferThenIsolate)
                    schedule(m_now + m_rng.below(3 * TickUnits), EventKind::Isolate, static_cast<int>(l->id - 1), l->incarnation);
            }
        }
        break;
    case Pause: {
        // A stopped process or a stalled worker, the leader more often than not.
        SimNode *victim = leader();
        if (!victim || m_rng.chance(0.4))
            victim = &m_nodes[m_rng.below(n)];
        pause(*victim, 1 + m_rng.below(3 * ElectionTick));
        break;
    }
    case DiskStall: {
        SimNode &victim = m_nodes[m_rng.below(n)];
        victim.diskSlowUntil = m_now + (2 + m_rng.below(4 * ElectionTick)) * TickUnits;
        victim.acksLateUntil = victim.diskSlowUntil + (m_rng.chance(0.5) ? m_rng.below(4 * ElectionTick) * TickUnits : 0);
        ++m_result.diskStalls;
        narrate("node " + std::to_string(victim.id) + "'s disk stalls");
        break;
    }
    case Lossy:
        // Network weather: heavy loss for a while.
        m_drop = m_rng.chance(0.5) ? 0.3 : 0.1;
        narrate("lossy network");
        break;
    case FlipFlop:
        startFlipFlop();
        break;
    case TransportHiccup: {
        // A connection resets though both ends are fine: the transport reports the peer unreachable.
        SimNode &a = m_nodes[m_rng.below(n)];
        const NodeId b = idOf(m_rng.below(n));
        if (a.id != b)
            tellUnreachable(a, b);
        break;
    }
    }
    schedule(m_now + (m_nemesisLo + m_rng.below(m_nemesisHi - m_nemesisLo)) * TickUnits, EventKind::Nemesis, 0);
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
    // A healed network delivers each link's messages in order, as TCP does: reordering is a fault
    // too. (Pipelined one-entry Appends that overtake each other make a follower reject them, and
    // the stale rejections keep sending the leader back to probing: a catch-up can take longer
    // than the bound. Real links are FIFO.)
    m_delayHi = std::min<std::uint64_t>(m_delayHi, 1500);
    m_delayLo = m_delayHi - 1;
    m_syncTimeHi = std::min<std::uint64_t>(m_syncTimeHi, 620); // a slow disk is weather too
    // Every node comes back, except the ones the options keep down for good.
    for (std::size_t i = 0; i < m_nodes.size(); ++i) {
        SimNode &n = m_nodes[i];
        n.diskSlowUntil = 0;
        n.acksLateUntil = 0;
        resume(n);
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
    if (!target || target->paused) {
        std::vector<SimNode *> up;
        for (SimNode &n : m_nodes)
            if (n.up && !n.paused)
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
    // A paused node handles nothing: what is meant for it waits until it resumes, and its ticks
    // are counted as missed.
    if (e.kind == EventKind::Deliver || e.kind == EventKind::DiskDone || e.kind == EventKind::Ack || e.kind == EventKind::SnapshotStatus) {
        SimNode &n = m_nodes[e.node];
        if (n.up && n.paused) {
            n.deferred.push_back(e);
            return;
        }
    }
    switch (e.kind) {
    case EventKind::Tick: {
        SimNode &n = m_nodes[e.node];
        if (!n.up || n.incarnation != e.arg)
            return;
        if (n.paused) {
            ++n.missedTicks;
            schedule(m_now + n.tickInterval, EventKind::Tick, e.node, n.incarnation);
            return;
        }
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
    case EventKind::Ack: {
        SimNode &n = m_nodes[e.node];
        if (n.up && n.incarnation == e.arg) {
            acknowledge(n, e.aux);
            processReady(n);
        }
        return;
    }
    case EventKind::Resume: {
        SimNode &n = m_nodes[e.node];
        if (n.incarnation == e.arg)
            resume(n);
        return;
    }
    case EventKind::Isolate: {
        SimNode &n = m_nodes[e.node];
        if (n.up && n.incarnation == e.arg && !m_healed)
            isolate(n);
        return;
    }
    case EventKind::FlipFlop:
        flipFlopStep();
        return;
    case EventKind::LeaseSplit: {
        SimNode &n = m_nodes[e.node];
        if (n.up && n.incarnation == e.arg && !m_healed && !n.paused)
            leaseSplitStep(n);
        return;
    }
    case EventKind::Deafen: {
        SimNode &n = m_nodes[e.node];
        if (n.up && n.incarnation == e.arg && !m_healed)
            deafen(n);
        return;
    }
    case EventKind::StrikeLeader: {
        SimNode &n = m_nodes[e.node];
        if (n.up && n.incarnation == e.arg && !m_healed && !m_failed)
            strikeLeader(n);
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
    case EventKind::Membership:
        changeMembership();
        return;
    case EventKind::SnapshotStatus: {
        SimNode &n = m_nodes[e.node];
        if (n.up && n.incarnation == e.arg) {
            n.raft->reportSnapshot(e.aux >> 1, (e.aux & 1) != 0);
            processReady(n);
        }
        return;
    }
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
    if (m_membership)
        schedule((20 + m_rng.below(60)) * TickUnits, EventKind::Membership, 0);
    schedule(m_opts.faultTicks * TickUnits, EventKind::Heal, 0);

    while (!m_queue.empty() && !m_failed && !m_live) {
        if (m_queue.size() > MaxQueuedEvents) {
            // Messages that breed messages faster than time passes (a node and its leader that
            // disagree about its log forever): a livelock, reported rather than run until memory ends.
            fail("liveness: " + std::to_string(m_queue.size()) + " events queued at once (a message storm)");
            break;
        }
        const Event e = m_queue.top();
        m_queue.pop();
        m_now = e.time;
        ++m_result.events;
        try {
            dispatch(e);
            checkLeases();
            for (SimNode &n : m_nodes)
                if (n.up && !n.paused)
                    checkDurableLog(n);
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
    if (options.intenseFaults)
        out << " --intense";
    if (options.focus == SimOptions::Focus::Leases)
        out << " --leases";
    for (const raft::InjectedBugName &b : raft::InjectedBugNames)
        if (options.bugs.*b.flag)
            out << " --bug " << b.name;
    if (options.noTickCatchUp)
        out << " --no-tick-catch-up";
    if (options.snapshots)
        out << " --snapshots";
    if (options.membership)
        out << " --membership";
    if (options.snapshotOmitsLastEntry)
        out << " --snapshot-omits-last-entry";
    out << " --trace";
    return out.str();
}

} // namespace dengine::sim
