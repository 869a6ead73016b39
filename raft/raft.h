// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/config.h"
#include "raft/confchange.h"
#include "raft/logger.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/random.h"
#include "raft/readindex.h"
#include "raft/types.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dengine::raft {

// The closed set of answers the core gives to its inputs.
enum class Status : std::uint8_t {
    Ok,
    NoLeader,        // no leader is known: nothing was proposed or queued
    ProposalDropped, // refused: forwarding disabled, flow control, or not a voter
    UnknownPeer,     // the sender is not a member of the configuration: ignored
    InvalidMessage,  // malformed (wrong recipient, missing sender, term-less type with a term...)
    Unsupported,     // a reserved message type
};
std::string_view toString(Status status);

// A read-only view of one node for status displays, tests and invariant checks.
struct NodeStatus {
    NodeId id = NoNode;
    HardState hardState;
    SoftState softState;
    Index applied = 0;
    Index lastIndex = 0;
    Index stableIndex = 0;
    bool committedInTerm = false;
};

// The Raft state machine of one node: election (§5.2, §9.6 pre-vote, check-quorum), replication
// (§5.3, §5.4), snapshots (§7), and ReadIndex (§6.4). Deterministic: its only inputs are the calls below, its only
// outputs the queues RawNode turns into a Ready. Not thread-safe; one thread steps it.
//
// Applications use RawNode; this class is its engine and is public for tests.
class Raft {
public:
    // Throws std::invalid_argument if the configuration or the stored state is unusable.
    Raft(const Config &config, Storage &storage);

    void tick();
    Status step(Message m);
    Status propose(std::vector<Payload> proposals, EntryType type = EntryType::Normal);
    // A membership change (raft/confchange.h): on the leader appended at once when allowed
    // (ProposalDropped and the reason in *why otherwise); on a follower forwarded like a proposal.
    Status proposeConfChange(const std::vector<ConfChangeOp> &ops, std::string *why = nullptr);
    // Why the leader would refuse this change now (empty: it would take it).
    std::string confChangeRefusal(const std::vector<ConfChangeOp> &ops) const;
    Status readIndex(std::uint64_t context);
    // Whether this node is a leader whose lease (see "The lease" in raft/config.h) covers a read
    // right now: it may then answer at its commit index without a quorum round. Always false with
    // ReadOnlyOption::Safe, during a leadership transfer and, for the rest of the term, once this
    // leader sent a TimeoutNow.
    bool leaseReadable() const;
    // Whether this node keeps a lease promise now: it votes for nobody, itself included, except in a
    // campaign a leader asked for (TimeoutNow). Never with ReadOnlyOption::Safe.
    bool promising() const;
    // Leadership transfer (thesis §3.10): the leader brings `to` up to date, then tells it to start
    // an election at once (TimeoutNow), which it wins without waiting for a timeout; the others
    // vote for it even within their lease promise. Meanwhile the leader takes no proposals (they
    // are dropped), and it gives up after an election timeout. Once the TimeoutNow has left, the
    // leader serves no lease read for the rest of its term, whether or not the transfer succeeds. Returns NoLeader on a non-leader,
    // UnknownPeer for a node that is not another voter.
    Status transferLeadership(NodeId to);
    NodeId leadTransferee() const { return m_leadTransferee; }
    // Every (leader, role, term) this node passed through since the last call, in order, without
    // repeats: transitions that happen between two Readys are not lost, and each term is there.
    std::vector<SoftState> takeSoftStateLog();
    bool hasSoftStateLog() const { return !m_softLog.empty(); }
    // Starts an election now (pre-vote first when enabled). No effect on a leader or a non-voter.
    Status campaign();
    // The runtime made the writes up to this id durable (see RawNode::acknowledgePersisted).
    void acknowledgePersisted(std::uint64_t writeId);
    // The transport finished sending the snapshot it was given for `id`: delivered (the follower has
    // all of it) or not. Only then does replication to that follower go on (in Snapshot state it is
    // paused); a runtime that sends snapshots must report each one, or that follower stays behind.
    void reportSnapshot(NodeId id, bool delivered);
    // The configuration in force: the newest in the log, committed or not (raft/confchange.h).
    const ConfState &confState() const;
    // The configuration in force at `index` (at or after the log's start): what a snapshot of the
    // state machine at that index records.
    // Nothing (nullopt) for an index before the newest snapshot, which this node no longer knows.
    std::optional<ConfState> confStateAt(Index index) const;
    // The transport lost its connection to `id`. On a leader: replication to it restarts from what
    // it acknowledged. On a follower whose leader it is: an election comes soon (see below), and
    // without lease reads the follower forgets the leader (so it may vote for another at once); with
    // them it keeps its promise to that leader (the leader may still be serving reads from it), and
    // the election waits for the promise to end.
    void reportUnreachable(NodeId id);
    // A follower's election timer is set to fire within the next electionTick ticks (at random)
    // instead of after a whole randomized timeout: for a node that starts (no need to wait for a
    // leader that may not exist) or lost its leader. Pre-vote keeps it from disrupting a live one.
    // A node inside a lease promise still campaigns only once the promise is over.
    void expediteElection();

    // Lazy work: Appends for everything proposed since the last call, commit updates, the
    // heartbeat round that pending reads need, forwarded proposals and reads. RawNode calls it
    // before building a Ready, so many calls between two Readys share messages and rounds.
    void flush();
    // Whether flush() has work: proposals or reads to forward, a read round or Appends to send.
    bool hasPendingFlush() const
    {
        return !m_proposalsToForward.empty() || !m_readsToForward.empty()
            || (m_role == Role::Leader && (m_broadcastPending || m_reads.roundNeeded() || confChangeDue()));
    }
    // Called with committed entries as they are handed out for applying: configuration changes
    // take effect here. Throws std::runtime_error for a malformed committed change.
    void onApplied(const std::vector<Entry> &applied);

    NodeId id() const { return m_id; }
    Term term() const { return m_term; }
    NodeId vote() const { return m_vote; }
    NodeId leader() const { return m_lead; }
    Role role() const { return m_role; }
    const RaftLog &log() const { return m_log; }
    RaftLog &log() { return m_log; }
    HardState hardState() const { return {m_term, m_vote, m_log.committed()}; }
    SoftState softState() const { return {m_lead, m_role, m_term}; }
    NodeStatus status() const;
    bool committedInTerm() const { return m_committedInTerm; }
    const std::map<NodeId, Progress> &progress() const { return m_progress; }
    const JointConfig &voters() const { return m_voters; }
    std::uint64_t randomizedElectionTimeout() const { return m_randomizedElectionTimeout; }

    // Outputs, drained by RawNode.
    std::vector<Message> m_msgs;             // may leave before the pending writes are durable
    std::vector<Message> m_msgsAfterPersist; // only once every write handed out so far is durable
    std::vector<ReadState> m_readStates;
    std::vector<std::uint64_t> m_droppedReads;

private:
    enum class CampaignType { PreElection, Election, Transfer };

    // Role transitions (Figure 4).
    void becomeFollower(Term term, NodeId lead);
    void becomePreCandidate();
    void becomeCandidate();
    void becomeLeader();
    void reset(Term term, NodeId lead);
    void setLead(NodeId lead);
    void resetRandomizedElectionTimeout();

    // Election.
    void hup();
    void startCampaign(CampaignType type);
    VoteResult poll(NodeId from, bool granted);
    void handleVoteRequest(const Message &m);
    bool promotable() const { return m_voters.contains(m_id); }
    bool leaseMode() const { return m_cfg.readOnlyOption != ReadOnlyOption::Safe && !m_voters.isSingleton(); }
    // The only voter is this node: its own acknowledgement is a quorum. (A one-voter configuration
    // that is not this node, a leader that removed itself, confirms nothing alone.)
    bool alone() const { return m_voters.isSingleton() && m_voters.contains(m_id); }
    void notePromise();
    bool mayCampaign() const;
    bool honoursTimeoutNow(const Message &m) const;
    bool quorumActive();

    // Per-role message handling.
    Status stepLeader(Message &m);
    Status stepCandidate(Message &m);
    Status stepFollower(Message &m);

    // Replication.
    bool appendProposals(std::vector<Payload> &proposals, EntryType type);
    void reduceUncommittedSize(const std::vector<Entry> &applied);
    void appendConfState(const ConfState &next);
    void noteEntries(const std::vector<Entry> &entries);
    const ConfState &latestConf() const;
    Index latestConfIndex() const;
    void configChanged();
    void switchConfig(const ConfState &cs);
    bool confChangeDue() const;
    void finishConfChange();
    bool maybeCommit();
    void onCommitAdvanced();
    void handleAppend(Message &m);
    void handleHeartbeat(const Message &m);
    void handleAppendResponse(const Message &m);
    void handleHeartbeatResponse(const Message &m);
    void sendToFollower(NodeId to, Progress &pr);
    bool sendAppend(NodeId to, Progress &pr, bool allowEmpty);
    void sendSnapshot(NodeId to, Progress &pr);
    void handleSnapshot(const Message &m);
    bool restore(const Snapshot &snapshot);
    void broadcastHeartbeat(std::uint64_t round);
    void reprobeStalledFollowers();
    void forwardPending();

    // Reads.
    void handleReadRequest(NodeId from, std::uint64_t context);
    void answerRead(NodeId from, std::uint64_t context, Index index);
    void dropRead(NodeId from, std::uint64_t context);
    void onReadAck(NodeId from, std::uint64_t round);
    bool leaseValid() const;
    bool leaseHolds() const;
    void dropForwardedReads();
    void expireReads();

    void send(Message m);
    void noteSoftState();
    void sendTimeoutNow(NodeId to);
    void logEvent(LogLevel level, const std::string &what) const;

    Config m_cfg;
    NodeId m_id;
    Term m_term = 0;
    NodeId m_vote = NoNode;
    NodeId m_lead = NoNode;
    NodeId m_leadTransferee = NoNode; // a transfer in progress, to this node
    int m_transferElapsed = 0;        // ticks since it began
    std::vector<SoftState> m_softLog; // see takeSoftStateLog
    SoftState m_softLogBase;          // the state before m_softLog's first
    Role m_role = Role::Follower;
    RaftLog m_log;
    Random m_rng;

    // Configurations take effect when appended (thesis §4.1): the newest one in the log is in force,
    // committed or not, and a truncation that drops it brings back the one before.
    ConfState m_baseConf;                  // at the start of the log (the snapshot's, or the first)
    std::map<Index, ConfState> m_logConfs; // the changes in the log after it
    ConfState m_conf;                      // in force: latestConf()
    JointConfig m_voters;                  // m_conf's voters
    Index m_baseConfIndex = 0;             // the index m_baseConf is at (the snapshot's; 0: the first)
    std::map<NodeId, Progress> m_progress; // every member, this node included
    std::map<NodeId, bool> m_votes;        // this campaign's answers

    std::uint64_t m_ticks = 0; // ticks since construction: the clock of leases and expiries
    int m_electionElapsed = 0;
    int m_heartbeatElapsed = 0;
    int m_randomizedElectionTimeout = 0;
    // The lease promise (raft/config.h, "The lease"): in the lease modes, no vote for anyone, this
    // node included, before this tick (transfer campaigns aside). Set from every heartbeat and Append
    // of the leader, and to electionTick at start: the node may have promised just before it stopped.
    std::uint64_t m_promiseUntil = 0;
    // Injected bugs only: the promise is the start's quarantine (no leader heard since), and a
    // reportUnreachable for the leader came since the leader was last heard.
    bool m_promiseFromStart = false;
    bool m_leaderUnreachable = false;

    // Leader state.
    bool m_committedInTerm = false; // an entry of this term is committed (§8: reads are safe)
    bool m_leaseRevoked = false;    // a TimeoutNow left in this term: no lease until the term ends
    bool m_broadcastPending = false;
    std::uint64_t m_uncommittedSize = 0;
    Index m_noOpIndex = 0; // this term's no-op: the one entry of the term not counted in m_uncommittedSize
    ReadIndexRounds m_reads;
    struct EarlyRead {
        NodeId from;
        std::uint64_t context;
        std::uint64_t tick;
    };
    std::vector<EarlyRead> m_readsBeforeCommit; // arrived before this term's first commit

    // Follower state: proposals and reads waiting to be forwarded at the next flush, and the read
    // batches forwarded to the leader and not yet answered.
    std::vector<Entry> m_proposalsToForward;
    std::vector<std::uint64_t> m_readsToForward;
    struct ForwardedBatch {
        std::vector<std::uint64_t> contexts;
        std::uint64_t sentTick;
    };
    std::map<std::uint64_t, ForwardedBatch> m_forwardedReads;
    std::uint64_t m_nextReadBatch = 0;
};

} // namespace dengine::raft
