// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dengine::raft {

// An immutable, reference-counted byte buffer: the payload of a log entry.
//
// Entries are copied many times on their way through a cluster (leader log, one message per
// follower, the committed batch handed to the state machine). Sharing one allocation keeps every
// such copy at a reference-count increment, so a proposal costs one heap allocation end to end.
// The count is atomic because the runtime hands entries to its storage and transport threads; the
// bytes themselves are never modified after construction, so sharing needs no further locking.
class Payload {
public:
    Payload() noexcept = default;
    explicit Payload(std::string_view bytes) : Payload(bytes.data(), bytes.size()) {}
    Payload(const void *bytes, std::size_t size);

    Payload(const Payload &other) noexcept : m_block(other.m_block) { retain(); }
    Payload(Payload &&other) noexcept : m_block(other.m_block) { other.m_block = nullptr; }
    Payload &operator=(const Payload &other) noexcept;
    Payload &operator=(Payload &&other) noexcept;
    ~Payload() { release(); }

    const char *data() const noexcept { return m_block ? bytes(m_block) : nullptr; }
    std::size_t size() const noexcept { return m_block ? m_block->size : 0; }
    bool empty() const noexcept { return size() == 0; }
    std::string_view view() const noexcept { return {data(), size()}; }
    std::string toString() const { return std::string(view()); }

    friend bool operator==(const Payload &a, const Payload &b) noexcept { return a.view() == b.view(); }

private:
    struct Block {
        std::atomic<std::uint32_t> refs;
        std::size_t size;
    };
    static char *bytes(Block *b) noexcept { return reinterpret_cast<char *>(b + 1); }
    void retain() noexcept
    {
        if (m_block)
            m_block->refs.fetch_add(1, std::memory_order_relaxed);
    }
    void release() noexcept;

    Block *m_block = nullptr;
};

} // namespace dengine::raft
