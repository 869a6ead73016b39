// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengineconfig.h>

#include <QtCore/QtGlobal>

#include <algorithm>

namespace dengine::engine {

// Sizes that follow from a configuration, so that whatever a call may write fits in what the nodes
// accept from each other. Every node of a cluster must use the same limits (the configuration says
// so); a node's frame limit is derived here, never set on its own.
//
// The largest log entry a call can make: a batch of maxBatchOperations operations whose keys and
// values add up to at most maxBatchBytes() (DEngine::batch refuses more), in the Protocol Buffers
// encoding of kv::Command. Each operation costs at most OperationOverhead bytes beyond its key and
// value (its message header, two length-prefixed fields, the kind); the command's own fields (ids)
// at most CommandOverhead. An application command is one value (maxValueBytes), far below.
struct EngineLimits {
    static constexpr qint64 OperationOverhead = 20;
    static constexpr qint64 CommandOverhead = 64;
    // A Raft message and its envelope around one entry (ids, terms, lengths): generously.
    static constexpr qint64 MessageOverhead = 1024;
    // Appends carry up to this many bytes of entries besides a first one of any size (maxSizePerMsg
    // of the core, set to this by the engine).
    static constexpr qint64 MaxAppendBytes = 1 << 20;

    static qint64 maxBatchBytes(const DEngineConfig &c) { return 4LL * c.maxValueBytes + c.maxKeyBytes; }
    static qint64 maxEntryBytes(const DEngineConfig &c)
    {
        return CommandOverhead + OperationOverhead * c.maxBatchOperations + std::max<qint64>(maxBatchBytes(c), c.maxValueBytes);
    }
    // What a node accepts in one frame from a peer: two of the largest messages, and never less than
    // 64 MiB. The sender splits frames at half of it, but never a message, so one message (one entry
    // of any allowed size plus MaxAppendBytes more) must fit whole.
    static qint64 maxFrameBytes(const DEngineConfig &c)
    {
        return std::max<qint64>(64LL << 20, 2 * (maxEntryBytes(c) + MaxAppendBytes + MessageOverhead));
    }
};

} // namespace dengine::engine
