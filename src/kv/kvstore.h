// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dengine::kv {

// One write operation of a command.
struct Operation {
    enum class Kind : std::uint8_t { Put, Remove };
    Kind kind = Kind::Put;
    std::string key;
    std::string value;
};

// A replicated command: operations applied atomically at one log index. (origin, session, request)
// identify the call that proposed it: the node that took the call answers it when the command is
// applied, and a command seen twice (a forward retried) applies once.
struct Command {
    raft::NodeId origin = 0;
    std::uint64_t session = 0; // one per engine start: request ids restart with it
    std::uint64_t request = 0; // increasing within a session
    std::vector<Operation> operations;
    // Instead of operations: a command for the application's state machine (applied by the
    // engine, deduplicated here like any other).
    std::optional<std::string> application;
};

// The log payload of a command (Protocol Buffers, src/transport/dengine.proto).
raft::Payload encodeCommand(const Command &command);
bool decodeCommand(std::string_view bytes, Command &out, std::string &why);

// The replicated key-value state machine: an ordered map, changed only by applying committed log
// entries in order. Deterministic: every node applying the same entries holds the same map.
// Not thread-safe: the engine's worker thread owns it.
class KvStore {
public:
    enum class ApplyOutcome { Applied, Duplicate, NoOp, Malformed };
    struct Applied {
        ApplyOutcome outcome = ApplyOutcome::NoOp;
        Command command; // when Applied or Duplicate: whose call it was
    };

    // Applies the entry at `index` (must be appliedIndex() + 1). A malformed payload is skipped on
    // every node alike (and reported), so the replicas stay identical. An application command
    // changes nothing here: Applied tells the caller to hand it to the application, once.
    Applied apply(const raft::Entry &entry);

    std::optional<std::string> get(std::string_view key) const;
    // Keys with the prefix, in order, at most `limit` (0: no limit).
    std::vector<std::pair<std::string, std::string>> scan(std::string_view prefix, std::size_t limit) const;
    // Keys in [begin, end) in order; an empty `end` means no upper bound.
    std::vector<std::pair<std::string, std::string>> range(std::string_view begin, std::string_view end, std::size_t limit) const;

    raft::Index appliedIndex() const { return m_applied; }
    std::size_t size() const { return m_data.size(); }

private:
    std::map<std::string, std::string, std::less<>> m_data;
    // Per (origin, session): which requests were applied. A node retries a forwarded command whose
    // fate it does not know (the leader changed) under the same id, so requests may arrive out of
    // order and twice; each id applies at most once. Ids at or below `floor` count as applied.
    static constexpr std::size_t MaxRememberedRequests = 1 << 16;
    struct Session {
        std::uint64_t floor = 0;
        std::set<std::uint64_t> applied;
    };
    struct SessionKey {
        raft::NodeId origin;
        std::uint64_t session;
        friend bool operator==(const SessionKey &, const SessionKey &) = default;
    };
    struct SessionHash {
        std::size_t operator()(const SessionKey &k) const { return std::hash<std::uint64_t>()(k.origin * 0x9e3779b97f4a7c15ULL ^ k.session); }
    };
    std::unordered_map<SessionKey, Session, SessionHash> m_sessions;
    raft::Index m_applied = 0;
};

} // namespace dengine::kv
