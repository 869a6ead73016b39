// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/raft.h"

#include <optional>
#include <vector>

namespace dengine::raft {

// One batch of work the runtime must carry out for its node. Take one with RawNode::ready(), act
// on every field in the order below, and acknowledge its write with acknowledgePersisted(writeId).
// Several Readys may be outstanding at once: the runtime may hand the writes of one to a storage
// thread and take the next before the first is durable, as long as it writes them in the order it
// got them.
struct Ready {
    // 1. Informational: the leader and this node's role, when either changed since the last Ready.
    std::optional<SoftState> softState;
    // Every (leader, role, term) the node passed through since the last Ready, in order (the last
    // one is the current state): an election and its result within one Ready are both visible here,
    // where softState shows only the end, and so is every term, in order with the leaders.
    std::vector<SoftState> softStates;

    // 2. To write to stable storage, in Ready order: `entries` first (an entry at index i replaces
    //    any stored entry at i and after), then `hardState` when present. `mustSync` says whether
    //    the write must be synced (fsync) before it counts as durable: it is false only when the
    //    sole change is the commit index, which Raft can recover if lost.
    std::vector<Entry> entries;
    std::optional<HardState> hardState;
    bool mustSync = false;

    //    Before them, `snapshot` when present: a snapshot from the leader that replaces the whole log
    //    (entries up to its index and any stored after it) and the configuration. Store it durably
    //    first; the Ready's entries, if any, follow it.
    std::optional<Snapshot> snapshot;

    // 3. To send now, in parallel with the write: the leader's Appends and heartbeats, pre-votes,
    //    forwarded requests. None of them claims anything about this node's pending writes.
    std::vector<Message> messages;

    // 4. To send only after the writes of this Ready, and of every earlier one, are durable: votes
    //    and append acknowledgements attest to durable state (Figure 2 persists before responding).
    std::vector<Message> messagesAfterPersist;

    // 5. To apply to the state machine, in order, then forget: committed on a quorum and durable
    //    here. Each Ready's batch directly follows the previous one's. A Ready with a `snapshot`
    //    first replaces the state machine with the snapshot's data (it is committed): the next
    //    committed entries follow on from its index. Such a Ready has no committed entries.
    std::vector<Entry> committedEntries;

    // 6. Answered reads: serve each once the state machine has applied ReadState::index (after
    //    applying this Ready's committedEntries, the index may already be reached).
    std::vector<ReadState> readStates;
    // Reads that will get no answer (no leader, leadership changed, no quorum in time): fail them
    // or retry them; nothing else will ever be said about these contexts.
    std::vector<std::uint64_t> droppedReads;

    // Names this Ready's write (`entries` and `hardState`) when it has one, else zero. Ids increase
    // by one per writing Ready. Once the write is durable, and every write before it (writes reach
    // the disk in the order they were handed out), pass the id to acknowledgePersisted. Never the
    // (index, term) of the last entry: that pair can come back in a later write after a truncation.
    std::uint64_t writeId = 0;

    Index lastEntryIndex() const { return entries.empty() ? 0 : entries.back().index; }
    bool empty() const
    {
        return !softState && softStates.empty() && !hardState && !snapshot && entries.empty() && messages.empty() && messagesAfterPersist.empty()
            && committedEntries.empty() && readStates.empty() && droppedReads.empty();
    }
};

// The application's handle on one Raft node (the model is etcd-io/raft's RawNode): a pure,
// deterministic state machine. Feed it ticks, messages and requests; collect its output as Readys.
//
// Thread: not thread-safe; every call from one thread (the runtime's worker).
// Blocking: never; it does no IO and keeps no clock.
class RawNode {
public:
    // Throws std::invalid_argument when the configuration or stored state is unusable; the
    // message names the field or the inconsistency.
    RawNode(const Config &config, Storage &storage);

    // Advances logical time by one tick (elections, heartbeats, check-quorum, read expiry).
    void tick() { m_raft.tick(); }
    // Delivers a message from another node.
    Status step(Message m) { return m_raft.step(std::move(m)); }
    // Proposes new entries. On the leader they are appended at once; on a follower they are
    // forwarded to the leader with the next Ready (the caller learns the outcome only by seeing its
    // entry applied, so payloads should carry a request id). Ok means accepted for replication,
    // not committed.
    Status propose(Payload data) { return m_raft.propose({std::move(data)}); }
    Status propose(std::vector<Payload> batch) { return m_raft.propose(std::move(batch)); }
    // Proposes a membership change (see raft/confchange.h for the rules). On the leader: Ok when
    // appended, ProposalDropped with the reason in *why when refused. On a follower: forwarded to
    // the leader, which may still refuse it. The change takes effect on each node as soon as the
    // entry is in its log (Raft's rule: a truncation that drops it undoes it); the Ready's
    // committedEntries carry it too (type ConfChange, the configuration encoded), for the
    // runtime's records. confState() says what is in force.
    Status proposeConfChange(const std::vector<ConfChangeOp> &ops, std::string *why = nullptr)
    {
        return m_raft.proposeConfChange(ops, why);
    }
    // Asks for a linearizable read point. The answer arrives as a ReadState with the same context
    // (or the context in droppedReads). Works on followers through the leader.
    Status readIndex(std::uint64_t context) { return m_raft.readIndex(context); }
    // Starts an election at once instead of waiting for the timeout.
    Status campaign() { return m_raft.campaign(); }
    // Tells the node that the connection to a peer broke, so Appends in flight to it may be lost and
    // replication to it restarts from the last acknowledged index (instead of after a timeout).
    void reportUnreachable(NodeId id) { m_raft.reportUnreachable(id); }
    // See Raft::expediteElection: for a node that has just started.
    void expediteElection() { m_raft.expediteElection(); }
    // Hands leadership to `to` (see Raft::transferLeadership): for a leader that is stopping.
    Status transferLeadership(NodeId to) { return m_raft.transferLeadership(to); }
    // The transport finished sending a Snapshot message to `id`, delivered or not (see
    // Raft::reportSnapshot). Every Snapshot message a Ready hands out must be reported once.
    void reportSnapshot(NodeId id, bool delivered) { m_raft.reportSnapshot(id, delivered); }
    // The configuration in force (the newest in the log, committed or not).
    const ConfState &confState() const { return m_raft.confState(); }
    // The configuration at `index`: a snapshot of the state machine at the applied index records
    // confStateAt(applied).
    // Nothing for an index before the newest snapshot (a snapshot installed but not yet handed out
    // in a Ready counts): take a snapshot of the state machine only at an index it applied.
    std::optional<ConfState> confStateAt(Index index) const { return m_raft.confStateAt(index); }

    bool hasReady() const;
    // Takes the pending batch. The node considers everything in it handed out: the entries as being
    // written, the committed entries as applied, the messages as sent. Throws std::runtime_error
    // when the storage fails to give back durable entries (the node must stop).
    Ready ready();
    // The writes of every Ready up to the one with this writeId are durable. What a later write
    // replaced does not become durable by it; an id at or below one acknowledged already changes
    // nothing, so acknowledgements may come late or more than once. Throws std::invalid_argument for
    // an id no Ready carried.
    void acknowledgePersisted(std::uint64_t writeId);

    NodeStatus status() const { return m_raft.status(); }
    const Raft &raft() const { return m_raft; }

private:
    Raft m_raft;
    std::uint64_t m_lastWriteId = 0;
    SoftState m_prevSoft;
    HardState m_prevHard;
};

} // namespace dengine::raft
