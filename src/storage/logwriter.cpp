// SPDX-License-Identifier: Apache-2.0
#include "storage/logwriter.h"

#include <chrono>

namespace dengine::storage {

LogWriter::LogWriter(Wal &wal, DurableCallback onDurable, ErrorCallback onError)
    : m_wal(wal), m_onDurable(std::move(onDurable)), m_onError(std::move(onError)), m_thread([this] { run(); })
{
}

LogWriter::~LogWriter()
{
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_one();
    m_thread.join();
}

void LogWriter::submit(Batch batch)
{
    {
        std::lock_guard lock(m_mutex);
        m_queue.push_back(std::move(batch));
    }
    m_wake.notify_one();
}

LogWriter::WriteNow LogWriter::writeNow(const Batch &batch)
{
    {
        std::lock_guard lock(m_mutex);
        if (m_failed)
            return WriteNow::Failed;
        if (m_busy || m_inline || !m_queue.empty() || m_stopping)
            return WriteNow::Busy;
        m_inline = true; // the writer's thread takes nothing until this is done
    }
    const bool ok = writeRound(std::span<const Batch>(&batch, 1));
    bool wakeWriter;
    {
        std::lock_guard lock(m_mutex);
        m_inline = false;
        // Only if something came for the writer's thread meanwhile: a notification it would only
        // go back to sleep after is a thread wake-up per write, on the commit path's cores.
        wakeWriter = !m_queue.empty() || m_stopping;
    }
    if (wakeWriter)
        m_wake.notify_one();
    m_idle.notify_all();
    return ok ? WriteNow::Durable : WriteNow::Failed;
}

void LogWriter::drain()
{
    std::unique_lock lock(m_mutex);
    m_idle.wait(lock, [this] { return m_queue.empty() && !m_busy && !m_inline; });
}

LogWriter::Stats LogWriter::stats() const
{
    std::lock_guard lock(m_mutex);
    return m_stats;
}

void LogWriter::run()
{
    std::vector<Batch> round;
    for (;;) {
        {
            std::unique_lock lock(m_mutex);
            m_busy = false;
            m_idle.notify_all();
            m_wake.wait(lock, [this] { return !m_inline && (!m_queue.empty() || m_stopping); });
            if (m_queue.empty())
                return; // stopping, and everything submitted was handled
            round.swap(m_queue);
            m_busy = true;
        }
        if (m_failed) {
            round.clear(); // after a failure nothing more is written or acknowledged
            continue;
        }
        if (writeRound(round))
            m_onDurable(round.back().id);
        round.clear();
    }
}

bool LogWriter::writeRound(std::span<const Batch> round)
{
    bool needSync = false;
    std::uint64_t entries = 0;
    StorageStatus st;
    std::optional<std::pair<raft::Index, raft::Term>> compact;
    for (const Batch &b : round) {
        if (b.reset) {
            st = m_wal.reset(b.reset->first, b.reset->second); // synced, with what came before it
            if (!st)
                break;
        }
        st = m_wal.append(b.entries, b.hardState);
        if (!st)
            break;
        needSync = needSync || b.mustSync || !b.entries.empty();
        entries += b.entries.size();
        if (b.compact && (!compact || b.compact->first > compact->first))
            compact = b.compact;
    }
    double syncSeconds = -1;
    if (st && needSync) {
        const auto t0 = std::chrono::steady_clock::now();
        st = m_wal.sync();
        syncSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (st && compact)
        st = m_wal.compact(compact->first, compact->second);
    {
        std::lock_guard lock(m_mutex);
        m_stats.batches += round.size();
        m_stats.entries += entries;
        if (syncSeconds >= 0) {
            ++m_stats.syncs;
            m_stats.syncSeconds += syncSeconds;
            std::size_t b = 0;
            while (b < std::size(SyncBucketBounds) && syncSeconds > SyncBucketBounds[b])
                ++b;
            ++m_stats.syncHistogram[b];
        }
    }
    if (!st) {
        m_failed = true;
        m_onError(st);
        return false;
    }
    return true;
}

} // namespace dengine::storage
