// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"
#include "transport/framing.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dengine::transport {

// The byte format between nodes: frames of `u32 length (little-endian) + payload`, where the first
// frame in each direction is a Hello (cluster id, node id, protocol version) and every later one an
// Envelope of Raft messages, both Protocol Buffers (dengine.proto beside this file).
//
// Everything that parses bytes from the network is here, bounded and validated: a frame longer than
// the limit, a payload that does not parse, or a message whose fields make no sense is rejected with
// a reason, and the connection that sent it is closed by the caller. Not thread-safe per object.

// 2: log entries may hold transactions and history resets, which a version-1 node would apply
// wrongly (it ignores their fields): nodes of the two versions do not talk. Upgrade a cluster of
// version-1 nodes with a full stop.
inline constexpr std::uint32_t ProtocolVersion = 2;

struct Hello {
    std::uint64_t clusterId = 0;
    raft::NodeId nodeId = 0;
    std::uint32_t protocolVersion = ProtocolVersion;
    std::string address; // where the sender listens ("host:port"), at most HelloMaxAddressBytes; may be empty
};
inline constexpr std::size_t HelloMaxAddressBytes = 200;

// Appends one framed Hello / Envelope to `out`.
void appendHello(std::string &out, const Hello &hello);
void appendEnvelope(std::string &out, const std::vector<raft::Message> &messages);

// Snapshot streams (see dengine.proto): chunks from the leader, acknowledgements back.
struct SnapshotChunk {
    raft::Index index = 0;
    raft::Term term = 0;
    std::uint64_t offset = 0;
    std::string data;
    bool last = false;
    raft::Message message; // when last: the Snapshot message (its `snapshot` is not encoded)
};
struct SnapshotAck {
    raft::Index index = 0;
    raft::Term term = 0;
    std::uint64_t received = 0;
    bool done = false;
    std::string refused; // non-empty: the follower refused the snapshot, for this reason
};
void appendSnapshotChunk(std::string &out, const SnapshotChunk &chunk);
void appendSnapshotAck(std::string &out, const SnapshotAck &ack);
// Tells a node that the sender applied a configuration without it at `configurationIndex`.
void appendRemovalNotice(std::string &out, std::uint64_t configurationIndex);

// What one Envelope frame holds: messages, or a chunk, or an acknowledgement.
struct Frame {
    std::vector<raft::Message> messages;
    std::optional<SnapshotChunk> chunk;
    std::optional<SnapshotAck> ack;
    std::uint64_t removedAt = 0; // a removal notice (see appendRemovalNotice), or 0
};
// Decodes and checks a frame: decodeEnvelope's checks for the messages (a Snapshot message only
// inside the last chunk), a chunk names a snapshot (index > 0) and its last chunk a Snapshot message.
bool decodeFrame(std::string_view payload, Frame &out, std::string &why);

bool decodeHello(std::string_view payload, Hello &out, std::string &why);
// Decodes an Envelope, checking every message: a known type, sender and recipient set, entries
// with consecutive indexes. Appends to `out`.
bool decodeEnvelope(std::string_view payload, std::vector<raft::Message> &out, std::string &why);

} // namespace dengine::transport
