// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"
#include "storage/wal.h"

#include <array>
#include <atomic>
#include <condition_variable>
#include <iterator>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

namespace dengine::storage {

// Group commit: writes and syncs the log on a thread of its own, so the Raft thread never waits for
// the disk and the leader keeps replicating while its own fsync runs.
//
// Batches are written in the order submitted. The thread takes every batch queued since its last
// round, writes them all, and covers them with one fdatasync (skipped when no batch in the round
// needs one: a commit-index-only hard state may be lost). Then it reports the id of the last batch
// of the round as durable. Per sync, throughput grows with the number of batches waiting, which is
// how one disk serves many concurrent writers.
//
// Failure is final: the first write or sync error is reported once through onError, and no batch
// is ever reported durable after it (after a failed fsync the page cache cannot be trusted).
class LogWriter {
public:
    struct Batch {
        std::uint64_t id = 0; // increasing; the caller's sequence number for the Ready it came from
        std::vector<raft::Entry> entries;
        std::optional<raft::HardState> hardState;
        bool mustSync = true;
        // Before the entries: a snapshot from the leader at (index, term) replaced the log
        // (Wal::reset). After the batch is durable: drop the log up to (index, term), which a
        // durable snapshot covers (Wal::compact).
        std::optional<std::pair<raft::Index, raft::Term>> reset;
        std::optional<std::pair<raft::Index, raft::Term>> compact;
    };
    // Upper bounds (seconds) of the fsync histogram's buckets; one more bucket counts the rest.
    static constexpr double SyncBucketBounds[] = {0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024};
    static constexpr std::size_t SyncBuckets = std::size(SyncBucketBounds) + 1;
    struct Stats {
        std::uint64_t batches = 0;
        std::uint64_t syncs = 0;
        std::uint64_t entries = 0;
        double syncSeconds = 0;                    // all syncs together
        std::array<std::uint64_t, SyncBuckets> syncHistogram{}; // not cumulative: bucket i only
    };
    // Both are called on the writer thread: keep them short (post to your own thread).
    using DurableCallback = std::function<void(std::uint64_t upToBatchId)>;
    using ErrorCallback = std::function<void(const StorageStatus &)>;

    LogWriter(Wal &wal, DurableCallback onDurable, ErrorCallback onError);
    // Finishes the batches already submitted (writes and syncs them), then stops the thread.
    ~LogWriter();

    // Any thread. Never blocks on the disk.
    void submit(Batch batch);
    enum class WriteNow { Durable, Busy, Failed };
    // Writes and syncs `batch` on the calling thread, now, when the writer has nothing in hand
    // (nothing queued or being written: writes keep the order they were given in). Durable: it
    // is, and onDurable is not called for it. Busy: nothing was done, `batch` is untouched (submit
    // it). Failed: as a failure of the writer's own (onError was called; the writer is done).
    // Blocks on the disk: for a caller that has nothing better to do than wait for it.
    WriteNow writeNow(const Batch &batch);
    // Waits until every submitted batch was handled (durable or failed). For shutdown and tests.
    void drain();
    Stats stats() const;

private:
    void run();
    // Writes, syncs (when a batch needs it) and compacts; counts; reports a failure. True: durable.
    bool writeRound(std::span<const Batch> round);

    Wal &m_wal;
    DurableCallback m_onDurable;
    ErrorCallback m_onError;
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    std::condition_variable m_idle;
    std::vector<Batch> m_queue;
    bool m_busy = false;
    bool m_inline = false; // writeNow() is writing, on its caller's thread
    bool m_stopping = false;
    std::atomic<bool> m_failed{false};
    Stats m_stats;
    std::thread m_thread;
};

} // namespace dengine::storage
