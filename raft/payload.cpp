// SPDX-License-Identifier: Apache-2.0
#include "raft/payload.h"

#include <cstring>
#include <new>

namespace dengine::raft {

Payload::Payload(const void *source, std::size_t size)
{
    if (size == 0)
        return; // the empty payload shares no block
    void *memory = ::operator new(sizeof(Block) + size);
    m_block = new (memory) Block{{1}, size};
    std::memcpy(bytes(m_block), source, size);
}

Payload &Payload::operator=(const Payload &other) noexcept
{
    if (m_block != other.m_block) {
        Payload copy(other);
        std::swap(m_block, copy.m_block);
    }
    return *this;
}

Payload &Payload::operator=(Payload &&other) noexcept
{
    if (this != &other) {
        release();
        m_block = other.m_block;
        other.m_block = nullptr;
    }
    return *this;
}

void Payload::release() noexcept
{
    if (!m_block)
        return;
    // acq_rel: the last owner must see every other owner's reads finished before freeing.
    if (m_block->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        m_block->~Block();
        ::operator delete(m_block);
    }
    m_block = nullptr;
}

} // namespace dengine::raft
