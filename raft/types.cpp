// SPDX-License-Identifier: Apache-2.0
#include "raft/types.h"

namespace dengine::raft {

std::string_view toString(Role role)
{
    switch (role) {
    case Role::Follower: return "follower";
    case Role::PreCandidate: return "pre-candidate";
    case Role::Candidate: return "candidate";
    case Role::Leader: return "leader";
    }
    return "?";
}

std::string_view toString(MessageType type)
{
    switch (type) {
    case MessageType::Propose: return "Propose";
    case MessageType::Append: return "Append";
    case MessageType::AppendResponse: return "AppendResponse";
    case MessageType::Heartbeat: return "Heartbeat";
    case MessageType::HeartbeatResponse: return "HeartbeatResponse";
    case MessageType::Vote: return "Vote";
    case MessageType::VoteResponse: return "VoteResponse";
    case MessageType::PreVote: return "PreVote";
    case MessageType::PreVoteResponse: return "PreVoteResponse";
    case MessageType::ReadIndex: return "ReadIndex";
    case MessageType::ReadIndexResponse: return "ReadIndexResponse";
    case MessageType::Snapshot: return "Snapshot";
    case MessageType::SnapshotResponse: return "SnapshotResponse";
    case MessageType::TimeoutNow: return "TimeoutNow";
    }
    return "?";
}

} // namespace dengine::raft
