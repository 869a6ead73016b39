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
    // Lease: the leader answers at once while a quorum acknowledged it within the last election
    // timeout (less a drift margin), falling back to a quorum round otherwise. Relies on bounded
    // clock drift between nodes and on check-quorum; validation refuses it without check-quorum.
    LeaseBased,
    // Both: readIndex() always takes a quorum round, and the lease is kept (with the same restart
    // rule for voters as LeaseBased) so that the runtime may serve chosen reads on the leader at
    // once while Raft::leaseReadable() holds. For a per-read choice between the two. Needs
    // check-quorum too.
    LeaseOnRequest,
};

// Known bugs that tests switch on to prove that the simulator's checks can fail. Never set outside
// tests; each one breaks a safety property of Raft on purpose.
struct InjectedBugs {
    bool grantSecondVoteInTerm = false;   // vote for any up-to-date candidate, ignoring the vote cast
    bool commitOldTermByCounting = false; // advance commit over an earlier term's entry by replica count (§5.4.2)
    bool readWithoutQuorum = false;       // answer ReadIndex at once, without the heartbeat round
    bool any() const { return grantSecondVoteInTerm || commitOldTermByCounting || readWithoutQuorum; }
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
    // Ticks subtracted from the lease (LeaseBased reads) to allow for clock drift between nodes.
    // The lease lasts electionTick - 1 - leaseDriftTicks ticks from the start of the heartbeat
    // round a quorum acknowledged; with the defaults it tolerates clocks running 12% apart.
    int leaseDriftTicks = 1;
    // Followers forward proposals to the leader unless this is set, in which case propose() on a
    // follower fails with ProposalDropped.
    bool disableProposalForwarding = false;

    // The last index the state machine had applied when the node restarted; committed entries up to
    // it are not handed out again. 0 replays the whole log.
    Index applied = 0;

    Logger *logger = nullptr; // optional; not owned
    InjectedBugs bugs;        // tests only

    // Empty when the configuration is usable; otherwise a sentence naming the offending field.
    std::string validate() const;
};

} // namespace dengine::raft
