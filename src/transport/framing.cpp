// SPDX-License-Identifier: Apache-2.0
#include "transport/framing.h"

#include <cstring>

namespace dengine::transport {

void appendFramed(std::string &out, std::string_view payload)
{
    const auto length = static_cast<std::uint32_t>(payload.size());
    char header[FrameHeaderBytes];
    std::memcpy(header, &length, FrameHeaderBytes); // little-endian hosts (x86-64, aarch64)
    out.append(header, FrameHeaderBytes);
    out.append(payload);
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
