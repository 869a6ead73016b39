// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <cstdint>
#include <string>

namespace dengine::raft {

class Logger;

// How read-only queries are confirmed (Raft thesis §6.4).
enum class ReadOnlyOption : std::uint8_t {
    // ReadIndex: the leader records its commit index and confirms with a quorum heartbeat round
    // that it is still the leader. No clock assumption. The default.
    Safe,
    // Lease: the leader answers at once while its lease holds (see "The lease" below), falling back
    // to a quorum round otherwise. Relies on bounded clock drift between nodes and on check-quorum;
    // validation refuses it without check-quorum.
    LeaseBased,
    // Both: readIndex() always takes a quorum round, and the lease is kept (with the same rules as
    // LeaseBased) so that the runtime may serve chosen reads on the leader at once while
    // Raft::leaseReadable() holds. For a per-read choice between the two. Needs check-quorum too.
    LeaseOnRequest,
};

// The lease (thesis §6.4.1), for LeaseBased and LeaseOnRequest.
//
// The leader's side. A heartbeat round that started at the leader's tick S and that a quorum
// acknowledged gives the leader a lease until tick S + electionTick - 1 - leaseDriftTicks: until
// then it may answer reads at its commit index without a new round. It holds only while the leader
// has committed an entry of its term, hands leadership to nobody, and has sent no TimeoutNow in this
// term: a TimeoutNow tells another node to campaign at once past the others' promises (below), so
// the lease that sends one is over for the rest of the term, whatever becomes of that transfer.
//
// The voters' side, the promise that makes the lease safe. A node that takes a heartbeat or an
// Append from the leader of its term at tick t grants no vote to anyone, and does not campaign
// (which is voting for itself), until tick t + electionTick. A node that starts does the same for
// its first electionTick ticks, since it may have promised something just before it stopped. The
// one exception is a campaign the leader itself asked for (TimeoutNow) and the votes for it: that
// leader gave its lease up when it asked. A TimeoutNow is honoured only from the leader of the
// receiver's term and only while the receiver's log has nothing after the index the TimeoutNow
// names: a leader takes no proposals while it hands over, so an entry after that index means the
// transfer was given up and the TimeoutNow is stale. (Safety does not depend on this: the leader's
// lease ended when the TimeoutNow left. It spares the cluster an election nobody wants.)
//
// Why the two sides fit: every node of the quorum that acknowledged round S saw it at or after S and
// keeps its promise for electionTick of its own ticks, the first of which may come at once: at least
// electionTick - 1 tick intervals after S. The lease is leaseDriftTicks shorter, so it ends first as
// long as no node's clock runs faster than another's by more than leaseDriftTicks /
// (electionTick - 1 - leaseDriftTicks) (12% with the defaults). Ticks are the clock: a runtime must
// call tick() once per interval of real, monotonic time and catch up missed ticks before it steps
// anything else, or a paused leader would count its lease from a stale tick (the engine does this,
// src/engine/tickclock.h). With ReadOnlyOption::Safe no node promises anything.

// Known bugs that tests switch on to prove that the simulator's checks can fail. Never set outside
// tests; each one breaks a safety property of Raft on purpose.
struct InjectedBugs {
    bool grantSecondVoteInTerm = false;   // vote for any up-to-date candidate, ignoring the vote cast
    bool commitOldTermByCounting = false; // advance commit over an earlier term's entry by replica count (§5.4.2)
    bool readWithoutQuorum = false;       // answer ReadIndex at once, without the heartbeat round
    // The four stale-lease holes, each re-opened alone (see "The lease" above):
    bool leaseReadAfterTimeoutNow = false;     // the lease ignores a transfer and a TimeoutNow sent (reads at once)
    bool leaseBackAfterAbortedTransfer = false; // the lease comes back when a transfer times out
    bool campaignInPromiseWhenUnreachable = false; // a follower told its leader is unreachable campaigns inside its promise
    bool campaignInRestartQuarantine = false;  // a restarted node campaigns inside its first electionTick ticks
    // The durability acknowledgement matched by the (index, term) of the write's last entry instead
    // of by the write: an old write's acknowledgement passes for a newer write of the same entry.
    bool acknowledgeByIndexAndTerm = false;
    // Snapshots: a follower installs a snapshot at or below its commit index (its log and commit go
    // back to it, and entries it may have applied are forgotten)...
    bool restoreCommittedSnapshot = false;
    // ...or, given a snapshot whose index its log reaches, commits up to it without checking that
    // its entry there has the snapshot's term (it may be from a deposed leader).
    bool snapshotCommitWithoutTermCheck = false;
    // Membership: a change of several voters made at once, without joint consensus...
    bool confChangeWithoutJoint = false;
    // ...or a second change proposed while one is still pending.
    bool concurrentConfChanges = false;

    bool any() const
    {
        return grantSecondVoteInTerm || commitOldTermByCounting || readWithoutQuorum || leaseReadAfterTimeoutNow
            || leaseBackAfterAbortedTransfer || campaignInPromiseWhenUnreachable || campaignInRestartQuarantine
            || acknowledgeByIndexAndTerm || restoreCommittedSnapshot || snapshotCommitWithoutTermCheck || confChangeWithoutJoint
            || concurrentConfChanges;
    }
};

// The injectable bugs by the names tools and failure messages use ("two-votes", ...).
struct InjectedBugName {
    const char *name;
    bool InjectedBugs::*flag;
};
inline constexpr InjectedBugName InjectedBugNames[] = {
    {"two-votes", &InjectedBugs::grantSecondVoteInTerm},
    {"old-term-commit", &InjectedBugs::commitOldTermByCounting},
    {"read-without-quorum", &InjectedBugs::readWithoutQuorum},
    {"lease-read-after-timeoutnow", &InjectedBugs::leaseReadAfterTimeoutNow},
    {"lease-back-after-aborted-transfer", &InjectedBugs::leaseBackAfterAbortedTransfer},
    {"campaign-in-promise-when-unreachable", &InjectedBugs::campaignInPromiseWhenUnreachable},
    {"campaign-in-restart-quarantine", &InjectedBugs::campaignInRestartQuarantine},
    {"ack-by-index-and-term", &InjectedBugs::acknowledgeByIndexAndTerm},
    {"restore-old-snapshot", &InjectedBugs::restoreCommittedSnapshot},
    {"snapshot-commit-without-term-check", &InjectedBugs::snapshotCommitWithoutTermCheck},
    {"conf-change-without-joint", &InjectedBugs::confChangeWithoutJoint},
    {"concurrent-conf-changes", &InjectedBugs::concurrentConfChanges},
};

// Everything that parameterizes one Raft node. Time is counted in ticks: the runtime calls
// RawNode::tick() at a fixed interval and chooses the tick length.
struct Config {
    NodeId id = NoNode;

    // A follower that hears nothing from a leader for a randomized timeout in
    // [electionTick, 2 * electionTick) ticks starts an election. Must exceed heartbeatTick.
    int electionTick = 10;
    // A leader sends heartbeats every heartbeatTick ticks.
    int heartbeatTick = 1;

    // Seeds the randomized election timeout and the ids of forwarded read batches. Give every node
    // a different seed, and a new one at every start (the runtime draws it from system entropy):
    // an answer to a read forwarded before a restart must not match a read forwarded after it.
    std::uint64_t seed = 0;

    // Upper bound, in bytes (entrySize), of the entries in one Append message. At least one entry
    // is always sent, however large.
    std::uint64_t maxSizePerMsg = 1 << 20;
    // Upper bound of the committed entries handed out in one Ready (at least one is).
    std::uint64_t maxCommittedSizePerReady = 64ULL << 20;
    // Inflight window per follower in replicate state: messages and bytes sent but not yet
    // acknowledged. A follower whose window is full gets nothing more until it acknowledges.
    std::size_t maxInflightMsgs = 256;
    std::uint64_t maxInflightBytes = 64ULL << 20;
    // A leader refuses proposals (ProposalDropped) while the uncommitted tail of its log exceeds
    // this many bytes; 0 means unlimited. Bounds memory when followers or the disk fall behind.
    std::uint64_t maxUncommittedEntriesSize = 0;

    // A leader that has not heard from a quorum for an election timeout steps down, and a follower
    // that heard from its leader within the election timeout ignores vote requests.
    bool checkQuorum = true;
    // A node first asks whether it could win (§9.6) before incrementing its term, so a partitioned
    // node rejoining does not inflate terms. It cannot depose a healthy leader only together with
    // checkQuorum: that is what makes voters that hear from a leader refuse to take part (the
    // thesis's "has not heard from a leader" condition). Alone, pre-vote still lets an up-to-date
    // node win a pre-vote from nodes that do hear the leader. Both are on by default.
    bool preVote = true;
    ReadOnlyOption readOnlyOption = ReadOnlyOption::Safe;
    // Ticks subtracted from the lease to allow for clock drift between nodes (see "The lease"): the
    // lease lasts electionTick - 1 - leaseDriftTicks ticks from the start of the heartbeat round a
    // quorum acknowledged; with the defaults it tolerates clocks running 12% apart.
    int leaseDriftTicks = 1;
    // Followers forward proposals to the leader unless this is set, in which case propose() on a
    // follower fails with ProposalDropped.
    bool disableProposalForwarding = false;

    // The last index the state machine had applied when the node restarted; committed entries up to
    // it are not handed out again. 0 replays the log after the newest snapshot (Storage::snapshot),
    // which the runtime restores its state machine from before it starts the node.
    Index applied = 0;

    Logger *logger = nullptr; // optional; not owned
    InjectedBugs bugs;        // tests only

    // Empty when the configuration is usable; otherwise a sentence naming the offending field.
    std::string validate() const;
};

} // namespace dengine::raft
