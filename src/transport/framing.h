// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dengine::transport {

// Frames on every DEngine connection, between nodes and from clients: `u32 length (little-endian)
// + payload`. Plain C++, no Protocol Buffers: the client protocol and the peer protocol share it
// without sharing their generated code.
inline constexpr std::size_t FrameHeaderBytes = 4;

// Appends a frame header for a payload of `size` bytes and room for it; returns where the payload
// goes (an encoder serializes straight into it, without a copy).
char *appendFrameSpace(std::string &out, std::size_t size);

// Splits a byte stream into frame payloads. Not thread-safe.
class FrameReader {
public:
    explicit FrameReader(std::uint32_t maxFrameBytes) : m_max(maxFrameBytes) {}

    void feed(const char *data, std::size_t size) { m_buffer.append(data, size); }
    enum class Result { Frame, NeedMore, TooLarge };
    // Takes the next complete frame's payload. TooLarge is final: the stream cannot be trusted.
    Result next(std::string &payload);
    std::size_t buffered() const { return m_buffer.size() - m_pos; }

private:
    std::uint32_t m_max;
    std::string m_buffer;
    std::size_t m_pos = 0;
};

} // namespace dengine::transport
