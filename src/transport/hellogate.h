// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace dengine::transport {

// The first thing an inbound connection must say: one framed Hello, at most HelloMaxBytes, naming
// this cluster, a member other than this node, this protocol version, and (over TLS) the very member
// the peer's certificate names. Nothing else gets in: a connection is either Accepted with its peer
// id, or Refused with a reason, and until then it buffers at most HelloMaxBytes + a frame header,
// whatever it sends. The caller closes refused connections and bounds the time a connection may
// take to be accepted.
//
// Pure (no IO, no clock): the transport feeds it bytes as they come; the fuzzer does too.
class HelloGate {
public:
    static constexpr std::uint32_t HelloMaxBytes = 256;

    struct Policy {
        std::uint64_t clusterId = 0;
        raft::NodeId self = 0;
        std::function<bool(raft::NodeId)> isMember;
        // The member the peer's certificate names, over TLS; NoNode over plain TCP (insecure: then
        // the Hello's word is all there is).
        raft::NodeId certified = raft::NoNode;
        bool tls = false;
    };
    enum class Result { NeedMore, Accepted, Refused };

    explicit HelloGate(Policy policy) : m_policy(std::move(policy)) {}

    // Takes the next bytes of the stream. Once Accepted, the bytes after the Hello are in
    // takeLeftover(); once Refused, reason() says why. Later calls return the same result.
    Result feed(const char *data, std::size_t size);

    raft::NodeId peer() const { return m_peer; }
    // Where the accepted peer says it listens (may be empty).
    const std::string &address() const { return m_address; }
    const std::string &reason() const { return m_reason; }
    std::string takeLeftover() { return std::move(m_leftover); }
    std::size_t buffered() const { return m_buffer.size() + m_leftover.size(); }

private:
    Result refuse(std::string why);

    Policy m_policy;
    Result m_result = Result::NeedMore;
    std::string m_buffer;   // the Hello so far (bounded)
    std::string m_leftover; // after it
    raft::NodeId m_peer = raft::NoNode;
    std::string m_address;
    std::string m_reason;
};

} // namespace dengine::transport
