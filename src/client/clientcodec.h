// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "transport/framing.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dengine::clientwire {

// The client protocol's messages as plain values (clientwire.proto beside this file has the wire
// form), and their checked encoding. Plain C++: the server (dengined) and the client library
// (DEngineClient) share it. Everything that parses bytes from a connection is here, bounded and
// validated: a payload that does not parse, or whose fields make no sense, is refused with a reason
// and the caller closes the connection.
inline constexpr std::uint32_t ProtocolVersion = 1;
// The numbering of DEngine::Status, DEngine::Consistency and DEngine::Role that travels.
inline constexpr std::uint32_t MaxStatus = 9;      // DEngine::Status::Compacted
inline constexpr std::uint32_t MaxConsistency = 2; // DEngine::Consistency::Local
inline constexpr std::uint32_t MaxRole = 4;        // DEngine::Role::Leader

enum class Kind : std::uint8_t {
    Put = 1, Get, Delete, Batch, Scan, Range, Status, AddLearner, Promote, RemoveMember, TransferLeadership, Subscribe, Txn,
    Watch, CancelWatch, LeaseGrant, LeaseKeepAlive, LeaseRevoke, LeaseTimeToLive
};
inline bool isLease(Kind k) { return k >= Kind::LeaseKeepAlive && k <= Kind::LeaseTimeToLive; }
inline bool isMembership(Kind k) { return k >= Kind::AddLearner && k <= Kind::TransferLeadership; }
// A key-value write: sent twice, it may take effect twice (a txn may run its other branch).
// A lease grant or revocation too (a keep-alive is safe to repeat: it only renews).
inline bool isWrite(Kind k)
{
    return k == Kind::Put || k == Kind::Delete || k == Kind::Batch || k == Kind::Txn || k == Kind::LeaseGrant || k == Kind::LeaseRevoke;
}

struct Operation {
    bool remove = false;
    std::string key;
    std::string value;
    std::uint64_t lease = 0;
    bool sequential = false;
};

struct Compare {
    std::uint32_t target = 0; // DEngineCompare::Target
    std::uint32_t op = 0;     // DEngineCompare::Op
    std::string key;
    std::string value;
    std::uint64_t number = 0;
    friend bool operator==(const Compare &, const Compare &) = default;
};
inline constexpr std::uint32_t MaxCompareTarget = 3;
inline constexpr std::uint32_t MaxCompareOp = 3;

struct Request {
    std::uint32_t version = ProtocolVersion;
    std::uint64_t id = 0;
    std::uint32_t deadlineMs = 0;
    Kind kind = Kind::Get;
    std::string key;
    std::string value;
    std::string end;
    std::uint32_t limit = 0;
    std::uint32_t consistency = 0;
    std::vector<Operation> operations;
    std::uint64_t node = 0;  // membership calls
    std::string address;     // AddLearner
    std::uint32_t heartbeatMs = 0; // Subscribe
    std::vector<Compare> compares;             // Txn
    std::vector<Operation> failureOperations;  // Txn
    std::uint64_t lease = 0;    // lease calls
    std::uint64_t ttlMs = 0;    // LeaseGrant
    std::uint64_t revision = 0; // Watch
    std::uint64_t watchId = 0;  // CancelWatch
};

struct WatchEvent {
    bool deleted = false;
    std::string key;
    std::string value;
    std::uint64_t revision = 0;
    std::uint64_t createRevision = 0;
    std::uint64_t version = 0;
    std::uint64_t lease = 0;
    friend bool operator==(const WatchEvent &, const WatchEvent &) = default;
};

struct Member {
    std::uint64_t id = 0;
    std::string address;
    bool learner = false;
    std::string clientAddress;
};

struct NodeStatus {
    std::uint64_t nodeId = 0;
    std::uint64_t leader = 0;
    std::uint64_t term = 0;
    std::uint32_t role = 0;
    std::uint64_t commit = 0;
    std::uint64_t applied = 0;
    bool ready = false;
    std::vector<Member> members;
    std::string version;
    std::uint64_t firstCommit = 0; // the current term's first entry, once applied here
    std::string clientAddress;
    bool stopping = false;
};

// A lifecycle transition of the member (Subscribe), numbered as on the wire.
struct Event {
    enum class Kind : std::uint8_t { Leader = 1, Term, FirstCommit, Ready, Stopping, Members, Role };
    Kind kind = Kind::Leader;
    std::uint64_t value = 0;
    friend bool operator==(const Event &, const Event &) = default;
};

// An item of a scan or range, with the key's revisions.
struct KeyValue {
    std::string key;
    std::string value;
    std::uint64_t createRevision = 0;
    std::uint64_t modRevision = 0;
    std::uint64_t version = 0;
    friend bool operator==(const KeyValue &, const KeyValue &) = default;
};

struct Response {
    std::uint64_t id = 0;
    std::uint32_t status = 0;
    std::string message;
    std::uint64_t revision = 0;
    std::uint64_t leader = 0;
    std::string value;
    std::uint64_t createRevision = 0; // get: the key's history
    std::uint64_t modRevision = 0;
    std::uint64_t version = 0;
    bool succeeded = false; // txn
    std::vector<KeyValue> items;
    std::string nextKey;
    bool hasNode = false;
    NodeStatus node;
    std::vector<Event> events;
    std::uint64_t lease = 0;
    std::uint64_t ttlMs = 0;
    std::int64_t remainingMs = -1;
    std::vector<WatchEvent> watchEvents;
    bool watchDone = false;
};

// Appends one framed message to `out`.
void appendRequest(std::string &out, const Request &request);
void appendResponse(std::string &out, const Response &response);

// Decodes a frame's payload. A request must name a known kind and a consistency level, carry an
// id, (for a batch) operations, and (for a membership call) a node;
// events must be of known kinds (a role within the roles); its version is returned as sent (the server answers a version
// it does not speak with a refusal, so the client learns why). A response must carry an id and a
// known status.
bool decodeRequest(std::string_view payload, Request &out, std::string &why);
bool decodeResponse(std::string_view payload, Response &out, std::string &why);

const char *kindName(Kind kind);

} // namespace dengine::clientwire
