// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dengine::raft {

// Little-endian fields for the small binary formats above the log (configuration changes,
// key-value snapshots): written a whole field at a time, read back with bounds checks.
inline void putU32(std::string &out, std::uint32_t v)
{
    char b[4];
    for (int i = 0; i < 4; ++i)
        b[i] = static_cast<char>(v >> (8 * i));
    out.append(b, sizeof b);
}

inline void putU64(std::string &out, std::uint64_t v)
{
    char b[8];
    for (int i = 0; i < 8; ++i)
        b[i] = static_cast<char>(v >> (8 * i));
    out.append(b, sizeof b);
}

// A u32 length, then that many bytes.
inline void putBytes(std::string &out, std::string_view bytes)
{
    putU32(out, static_cast<std::uint32_t>(bytes.size()));
    out.append(bytes);
}

// Reads fields off the front of `in`. The first read past the end clears `ok` and every later read
// gives 0 (or nothing): a decoder reads on and checks `ok` once.
struct ByteReader {
    std::string_view in;
    bool ok = true;

    std::uint64_t take(int bytes)
    {
        if (!ok || in.size() < static_cast<std::size_t>(bytes)) {
            ok = false;
            return 0;
        }
        std::uint64_t v = 0;
        for (int i = 0; i < bytes; ++i)
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[static_cast<std::size_t>(i)])) << (8 * i);
        in.remove_prefix(static_cast<std::size_t>(bytes));
        return v;
    }
    // What putBytes wrote.
    std::string_view bytes()
    {
        const std::uint64_t n = take(4);
        if (!ok || n > in.size()) {
            ok = false;
            return {};
        }
        const std::string_view b = in.substr(0, n);
        in.remove_prefix(n);
        return b;
    }
};

} // namespace dengine::raft
