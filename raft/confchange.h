// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/payload.h"
#include "raft/types.h"

#include <algorithm>
#include <string>
#include <vector>

namespace dengine::raft {

// Membership changes (thesis chapter 4), the core's rules:
//
//  - A change is asked for as a list of operations (add a voter, add a learner, remove a member).
//    The leader turns it into the whole configuration that results and appends that as a
//    ConfChange entry: every node that applies the entry gets the same configuration, whatever it
//    knew before (a node that joins empty learns the members from the first change it applies).
//  - A configuration takes effect on a node as soon as its entry is in the node's log, committed or
//    not (thesis §4.1); a truncation that drops the entry brings back the one before. A leader
//    proposes a change only once the previous one is committed (one at a time), and only once it
//    has committed an entry of its own term (the fix for the single-server change bug, Ongaro's
//    raft-dev post of 2015). (Taking effect when applied instead, as etcd-io/raft does, lets a
//    node that is slow to apply campaign with a configuration two changes old: our simulator found
//    a leader elected so, without committed entries.)
//  - A change of at most one voter is made directly. A change of more voters (replacing a node is
//    adding one and removing another) goes through joint consensus: the entry holds the new voters
//    and the old ones, and while it is in force elections and commits need a majority of each.
//    The leader proposes leaving the joint configuration (an empty change) as soon as the joint one
//    is committed.
//  - Learners receive the log but neither vote nor count for commits. Promoting a learner is
//    adding it as a voter. Turning a voter into a learner is not supported.
//  - A removed node that never learns of its removal (it was cut off when the change committed)
//    campaigns on. Its vote requests are answered like anyone's (a member that has not got a change
//    yet must be able to vote for a voter it added), so without pre-vote or check-quorum its rising
//    terms can keep a cluster from settling (thesis §4.2.3): run membership changes with one of
//    them on (both are by default). Safety does not depend on it: its log lacks the change, so the
//    members that have it do not vote for it.
//  - A leader whose log holds a configuration without itself among the voters goes on leading
//    without counting itself; once that configuration is committed it hands leadership to the most
//    up-to-date voter (if one has its whole log) and steps down.
struct ConfChangeOp {
    enum class Type : std::uint8_t { AddVoter = 0, AddLearner = 1, Remove = 2 };
    Type type = Type::AddVoter;
    NodeId node = NoNode;
    friend bool operator==(const ConfChangeOp &, const ConfChangeOp &) = default;
};

// The configuration that `ops` make of `current`, in `next`; an empty string when the change is
// allowed, else why not (a sentence naming the node). No operations means leaving a joint
// configuration.
std::string planConfChange(const ConfState &current, const std::vector<ConfChangeOp> &ops, ConfState &next);

// Whether a configuration is joint (two sets of voters).
inline bool isJoint(const ConfState &cs) { return !cs.votersOutgoing.empty(); }

// Every member (voters old and new, learners), sorted and unique.
std::vector<NodeId> members(const ConfState &cs);
// Whether `id` is one of them.
inline bool isMember(const ConfState &cs, NodeId id)
{
    const auto in = [id](const std::vector<NodeId> &ids) { return std::find(ids.begin(), ids.end(), id) != ids.end(); };
    return in(cs.voters) || in(cs.learners) || in(cs.votersOutgoing) || in(cs.learnersNext);
}

// Wire forms. A proposal carries operations; the log entry carries the resulting configuration.
Payload encodeConfChangeOps(const std::vector<ConfChangeOp> &ops);
bool decodeConfChangeOps(const Payload &payload, std::vector<ConfChangeOp> &ops);
Payload encodeConfState(const ConfState &cs);
bool decodeConfState(const Payload &payload, ConfState &cs);

std::string describe(const ConfState &cs);

} // namespace dengine::raft
