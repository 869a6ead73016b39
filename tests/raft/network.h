// SPDX-License-Identifier: Apache-2.0
#pragma once

// A hand-driven, in-memory network of RawNodes for the unit tests of the consensus core.
//
// Nothing happens on its own: no threads, no clocks, no sleeps. A test ticks nodes, feeds them
// requests, takes their Readys (drain) and moves messages between them (deliver) explicitly, so
// every interleaving a test wants is a sequence of calls. After every step the harness checks the
// safety invariants of raft/invariants.h and reports any violation as a test failure.
//
// Persistence follows the Ready contract (raft/rawnode.h): entries, then the hard state, go to the
// node's MemoryStorage; acknowledgePersisted(writeId) follows; messagesAfterPersist leave only once
// the write is durable. holdWrites() keeps a
// node's writes pending (handed out, not yet durable) so tests can observe the state in between.

#include "raft/invariants.h"
#include "raft/rawnode.h"
#include "raft/storage.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace dengine::raft::test {

using Filter = std::function<bool(const Message &)>;
using ConfigTweak = std::function<void(Config &)>;

// Message filters for deliver(), drop(), take() and count(); combine with && and || in a lambda or
// with the helpers below.
Filter ofType(MessageType type);
Filter from(NodeId id);
Filter to(NodeId id);
Filter between(NodeId sender, NodeId recipient);
Filter allOf(std::vector<Filter> filters);
Filter anything();

// The payload of an entry in a preset log: unique per (index, term), so two nodes preset with the
// same (index, term) hold the same entry, as Log Matching requires.
Payload presetPayload(Index index, Term term);

// Durable state a node starts with: entry i (1-based) has term logTerms[i - 1].
struct Preset {
    std::vector<Term> logTerms;
    HardState hardState;
};

// A message the network delivered, with the status its recipient's step() returned.
struct Delivery {
    Message message;
    Status status;
};

class Network {
public:
    // Nodes 1..size, all voters, or with `voters` the first that many: the others start with no
    // configuration (they join when a leader adds them). `tweak` adjusts every node's Config (it
    // sees Config::id); `presets` gives some nodes a durable log and hard state to start from.
    explicit Network(std::size_t size, ConfigTweak tweak = {}, std::map<NodeId, Preset> presets = {}, std::size_t voters = 0);
    ~Network();
    Network(const Network &) = delete;
    Network &operator=(const Network &) = delete;

    const std::vector<NodeId> &ids() const { return m_ids; }
    RawNode &node(NodeId id);
    const Raft &raft(NodeId id) const;
    MemoryStorage &storage(NodeId id);
    const Config &config(NodeId id) const;

    // ---- inputs (each followed by the invariant checks) ----
    void tick(NodeId id, int times = 1);
    void tickAll(int times = 1);
    // Steps a hand-made message into its recipient now, bypassing the network and partitions.
    Status step(Message m);
    Status propose(NodeId id, const std::string &data);
    Status readIndex(NodeId id, std::uint64_t context);
    Status campaign(NodeId id);

    // ---- Readys ----
    // Takes every Ready the node has (persisting, acknowledging, queueing messages); returns the
    // number taken.
    std::size_t drain(NodeId id);
    void drainAll();

    // ---- the network ----
    // Messages sent and not yet delivered, in send order.
    const std::vector<Message> &inFlight() const { return m_inFlight; }
    std::size_t count(const Filter &f) const;
    // Copies of the in-flight messages that match, left on the wire.
    std::vector<Message> peek(const Filter &f) const;
    // Drains every node, then delivers messages and drains again until nothing is in flight.
    // Returns the number of messages delivered (dropped ones do not count).
    std::size_t deliverAll();
    // Drains every node, delivers the in-flight messages that match (once: messages they cause
    // stay in flight), then drains again. Returns the number delivered.
    std::size_t deliver(const Filter &f);
    // Drains every node, then removes matching messages from the network (lost). Returns how many.
    std::size_t drop(const Filter &f);
    // Like drop, but hands the messages to the test (to inspect, change or resend with send()).
    std::vector<Message> take(const Filter &f);
    // Puts a message on the wire (at the end of the queue).
    void send(Message m) { m_inFlight.push_back(std::move(m)); }

    // Partitions act at delivery: a message crossing a cut link is lost.
    void isolate(NodeId id);
    void cut(NodeId a, NodeId b);
    void heal();
    bool linked(NodeId a, NodeId b) const;
    std::size_t lostToPartitions() const { return m_lost; }
    // Every message delivered so far with the status its recipient returned.
    const std::vector<Delivery> &deliveries() const { return m_deliveries; }

    // ---- persistence ----
    // From now on the node's writes stay pending: entries and hard state are not written and not
    // acknowledged, and the Ready's messagesAfterPersist wait with them. Its `messages` still go.
    void holdWrites(NodeId id);
    // Makes the first `count` pending writes durable, in order (acknowledging each and releasing
    // its messagesAfterPersist); the node keeps holding later writes.
    void persist(NodeId id, std::size_t count = SIZE_MAX);
    // Persists everything pending and stops holding.
    void releaseWrites(NodeId id);
    std::size_t pendingWrites(NodeId id) const;
    // The node crashes and restarts from its MemoryStorage: pending writes are lost, volatile state
    // is rebuilt, and committed entries are applied again from the start.
    void restart(NodeId id, ConfigTweak tweak = {});

    // ---- snapshots ----
    // The node snapshots its state machine at `index` (applied there; the data names the index) and
    // drops its log up to `index - keep`. Snapshot messages delivered are reported delivered to
    // their sender at once (as a transport that streamed them would); dropped ones are not.
    void snapshotAndCompact(NodeId id, Index index, Index keep = 0);
    // Snapshots installed from the leader since the node's last restart: their indexes, in order.
    const std::vector<Index> &installed(NodeId id) const;

    // ---- observations ----
    // Committed entries handed to the node's state machine (since its last restart), in order.
    const std::vector<Entry> &applied(NodeId id) const;
    std::vector<std::string> appliedData(NodeId id) const; // non-empty payloads only (skips no-ops)
    const std::vector<ReadState> &readStates(NodeId id) const;
    const std::vector<std::uint64_t> &droppedReads(NodeId id) const;
    // Every Ready taken from the node, in order (copies).
    const std::vector<Ready> &readys(NodeId id) const;
    void clearReadys();
    // The leader of the highest term among the nodes, if any node leads it.
    std::optional<NodeId> leader() const;
    std::vector<std::uint64_t> logTerms(NodeId id) const; // terms of entries 1..lastIndex

    // Campaigns and delivers until quiet; fails the test unless `id` then leads.
    void elect(NodeId id);

    // Invariant violations are test failures unless the test says it expects them, in which case
    // they are collected here (tests that prove the checks can fail).
    void expectViolations() { m_expectViolations = true; }
    const std::vector<std::string> &violations() const { return m_violations; }

private:
    struct PendingWrite {
        std::uint64_t writeId = 0;
        std::optional<Snapshot> snapshot;
        std::vector<Entry> entries;
        std::optional<HardState> hardState;
        std::vector<Message> afterPersist;
    };
    struct Node {
        Config config;
        std::unique_ptr<MemoryStorage> storage;
        std::unique_ptr<RawNode> raw;
        NodeInvariants invariants;
        bool holding = false;
        std::vector<PendingWrite> pending;
        std::vector<Entry> applied;
        std::vector<Index> installed;
        std::vector<ReadState> readStates;
        std::vector<std::uint64_t> droppedReads;
        std::vector<Ready> readys;
    };

    Node &at(NodeId id);
    const Node &at(NodeId id) const;
    void handleReady(NodeId id, Node &n, Ready rd);
    void write(NodeId id, Node &n, PendingWrite &w);
    void deliverOne(Message m);
    void check();
    void violation(const std::string &text);

    std::vector<NodeId> m_ids;
    std::map<NodeId, Node> m_nodes;
    std::vector<Message> m_inFlight;
    std::vector<Delivery> m_deliveries;
    std::set<NodeId> m_isolated;
    std::set<std::pair<NodeId, NodeId>> m_cuts;
    std::size_t m_lost = 0;
    ClusterInvariants m_cluster;
    bool m_expectViolations = false;
    std::vector<std::string> m_violations;
};

// A message with the given routing fields; tests fill in the rest.
Message makeMessage(MessageType type, NodeId from, NodeId to, Term term);

// The algorithm as §5 of the paper describes it: no pre-vote (§9.6), no check-quorum (§4.2.3).
inline void classicRaft(Config &c)
{
    c.preVote = false;
    c.checkQuorum = false;
}
// Both tweaks, in order.
ConfigTweak both(ConfigTweak first, ConfigTweak second);

} // namespace dengine::raft::test
