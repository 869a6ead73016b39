// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/payload.h"

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace dengine::raft {

using NodeId = std::uint64_t; // 0 means "no node"
using Term = std::uint64_t;
using Index = std::uint64_t;

inline constexpr NodeId NoNode = 0;

enum class EntryType : std::uint8_t {
    Normal = 0,
    // A membership change: the data is the whole configuration that results (raft/confchange.h).
    ConfChange = 1,
};

// One log entry. An entry with an empty payload at the start of a term is the leader's no-op.
struct Entry {
    Term term = 0;
    Index index = 0;
    EntryType type = EntryType::Normal;
    Payload data;
};

// Bytes an entry is counted as for message size limits, inflight windows and flow control. The
// constant stands for the framing a transport adds (index, term, type, lengths).
inline constexpr std::uint64_t EntryOverheadBytes = 24;
inline std::uint64_t entrySize(const Entry &e) { return e.data.size() + EntryOverheadBytes; }

enum class Role : std::uint8_t { Follower, PreCandidate, Candidate, Leader };
std::string_view toString(Role role);

// The persistent state of Raft (Figure 2): written to stable storage before any message that
// depends on it leaves the node.
struct HardState {
    Term term = 0;
    NodeId vote = NoNode;
    Index commit = 0;
    friend bool operator==(const HardState &, const HardState &) = default;
};

// Volatile state worth telling the application about: who leads and what this node is, in which
// term (the term is durable state too, but a transition is only whole with it: "leader 2" means
// something else in term 5 than in term 7).
struct SoftState {
    NodeId leader = NoNode;
    Role role = Role::Follower;
    Term term = 0;
    friend bool operator==(const SoftState &, const SoftState &) = default;
};

// The cluster's membership: the voters, during joint consensus also the old voters (both majorities
// must agree), and the learners (they receive the log, and neither vote nor count). `autoLeave`: the
// leader leaves the joint configuration as soon as it applies it. `learnersNext` is reserved (turning
// voters into learners, not supported).
struct ConfState {
    std::vector<NodeId> voters;
    std::vector<NodeId> learners;
    std::vector<NodeId> votersOutgoing;
    std::vector<NodeId> learnersNext;
    bool autoLeave = false;
    friend bool operator==(const ConfState &, const ConfState &) = default;
};

// A snapshot: the state machine as it was after applying every entry up to `index` (whose term is
// `term`), with the configuration in force there. The data is opaque to the core: the runtime makes
// it (from its state machine) and restores it. A leader sends one to a follower that needs entries
// the leader has compacted away; the follower then replaces its log with it.
struct SnapshotMetadata {
    Index index = 0;
    Term term = 0;
    ConfState confState;
};
struct Snapshot {
    SnapshotMetadata metadata;
    Payload data;
    bool empty() const { return metadata.index == 0; }
};

enum class MessageType : std::uint8_t {
    Propose,           // follower -> leader: proposals forwarded by a follower (entries)
    Append,            // leader -> follower: entries after (index, logTerm), commit
    AppendResponse,    // follower -> leader: index = last matching index, or reject with hint
    Heartbeat,         // leader -> follower: commit, context = read round
    HeartbeatResponse, // follower -> leader: context echoed
    Vote,              // candidate -> voter: index/logTerm = candidate's last entry
    VoteResponse,      // voter -> candidate: reject or grant
    PreVote,           // pre-candidate -> voter: term = the term it would campaign in
    PreVoteResponse,   // voter -> pre-candidate
    ReadIndex,         // follower -> leader: context = the follower's batch id
    ReadIndexResponse, // leader -> follower: index = read index for that batch; reject if dropped
    Snapshot,          // leader -> follower: `snapshot` replaces the follower's log up to its index;
                       // the follower answers with an AppendResponse
    SnapshotResponse,  // reserved (unused: the AppendResponse above acknowledges a snapshot)
    TimeoutNow,        // leader -> the node it hands leadership to: campaign now; index/logTerm =
                       // the leader's last entry (a log that goes further makes it stale)
};
std::string_view toString(MessageType type);

// A message between two nodes. Which fields mean what depends on the type (see MessageType).
// The context of the vote requests of a campaign a leader asked for (leadership transfer): voters
// grant them even while they still hear from that leader.
inline constexpr std::uint64_t TransferCampaignContext = 0x7472616e73666572ULL; // "transfer"

struct Message {
    MessageType type = MessageType::Append;
    NodeId from = NoNode;
    NodeId to = NoNode;
    Term term = 0;    // sender's term; 0 only for Propose and ReadIndex (term-less requests)
    Term logTerm = 0; // term of `index`; on a rejected AppendResponse the hint's term
    Index index = 0;
    Index commit = 0;
    bool reject = false;
    Index rejectHint = 0;      // rejected AppendResponse: the follower's guess of the match point
    std::uint64_t context = 0; // read round (Heartbeat*), batch id (ReadIndex*)
    std::vector<Entry> entries;
    std::shared_ptr<const raft::Snapshot> snapshot; // Snapshot messages only
};

// The answer to a readIndex(context) request: the request may be served from the local state
// machine once it has applied `index`.
struct ReadState {
    std::uint64_t context = 0;
    Index index = 0;
    friend bool operator==(const ReadState &, const ReadState &) = default;
};

} // namespace dengine::raft
