// SPDX-License-Identifier: Apache-2.0
#include "transport/hellogate.h"

#include "transport/codec.h"

#include <cstring>

namespace dengine::transport {

HelloGate::Result HelloGate::refuse(std::string why)
{
    m_result = Result::Refused;
    m_reason = std::move(why);
    m_buffer.clear();
    m_buffer.shrink_to_fit();
    return m_result;
}

HelloGate::Result HelloGate::feed(const char *data, std::size_t size)
{
    if (m_result == Result::Refused)
        return m_result;
    if (m_result == Result::Accepted) {
        m_leftover.append(data, size);
        return m_result;
    }
    // Take only what the Hello can need; the rest is the next frames' (kept for the caller).
    const std::size_t limit = FrameHeaderBytes + HelloMaxBytes;
    const std::size_t take = std::min(size, limit - std::min(limit, m_buffer.size()));
    m_buffer.append(data, take);
    if (m_buffer.size() < FrameHeaderBytes)
        return m_result;
    std::uint32_t length = 0;
    std::memcpy(&length, m_buffer.data(), FrameHeaderBytes);
    if (length > HelloMaxBytes)
        return refuse("a first frame of " + std::to_string(length) + " bytes: a Hello is at most " + std::to_string(HelloMaxBytes));
    if (m_buffer.size() < FrameHeaderBytes + length)
        return m_result; // `take` kept everything: more is needed
    Hello hello;
    std::string why;
    if (!decodeHello(std::string_view(m_buffer).substr(FrameHeaderBytes, length), hello, why))
        return refuse(why);
    if (hello.clusterId != m_policy.clusterId)
        return refuse("it belongs to cluster " + std::to_string(hello.clusterId) + ", not " + std::to_string(m_policy.clusterId));
    if (hello.nodeId == m_policy.self || !m_policy.isMember || !m_policy.isMember(hello.nodeId))
        return refuse("node " + std::to_string(hello.nodeId) + " is not a member");
    if (hello.protocolVersion != ProtocolVersion)
        return refuse("protocol version " + std::to_string(hello.protocolVersion) + " is not " + std::to_string(ProtocolVersion));
    if (m_policy.tls && m_policy.certified != hello.nodeId)
        return refuse("its certificate names " + (m_policy.certified ? "node " + std::to_string(m_policy.certified) : std::string("no member"))
                      + ", but it says it is node " + std::to_string(hello.nodeId));
    m_peer = hello.nodeId;
    m_address = std::move(hello.address);
    m_result = Result::Accepted;
    // What came after the Hello in this feed: the bytes of the buffer past it, and those not taken.
    m_leftover.assign(m_buffer, FrameHeaderBytes + length, std::string::npos);
    m_leftover.append(data + take, size - take);
    m_buffer.clear();
    m_buffer.shrink_to_fit();
    return m_result;
}

} // namespace dengine::transport
