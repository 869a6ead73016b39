// SPDX-License-Identifier: Apache-2.0
#include "transport/framing.h"

#include <cstring>

namespace dengine::transport {

char *appendFrameSpace(std::string &out, std::size_t size)
{
    const auto length = static_cast<std::uint32_t>(size);
    const std::size_t at = out.size();
    out.resize(at + FrameHeaderBytes + size);
    std::memcpy(out.data() + at, &length, FrameHeaderBytes); // little-endian hosts (x86-64, aarch64)
    return out.data() + at + FrameHeaderBytes;
}

FrameReader::Result FrameReader::next(std::string &payload)
{
    if (buffered() < FrameHeaderBytes)
        return Result::NeedMore;
    std::uint32_t length;
    std::memcpy(&length, m_buffer.data() + m_pos, FrameHeaderBytes);
    if (length > m_max)
        return Result::TooLarge;
    if (buffered() < FrameHeaderBytes + length)
        return Result::NeedMore;
    payload.assign(m_buffer, m_pos + FrameHeaderBytes, length);
    m_pos += FrameHeaderBytes + length;
    // Compact once the consumed part dominates, so the buffer does not grow without bound.
    if (m_pos > 65536 && m_pos * 2 > m_buffer.size()) {
        m_buffer.erase(0, m_pos);
        m_pos = 0;
    }
    return Result::Frame;
}

} // namespace dengine::transport
