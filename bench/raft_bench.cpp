// SPDX-License-Identifier: Apache-2.0
// raft_bench: how fast is the pure consensus core, with no disk and no network in the way?
//
// A 3-node cluster in memory on one thread: every Ready is "persisted" to MemoryStorage at once and
// acknowledged, every message is stepped into its recipient directly, every committed entry is
// applied (its bytes are summed, so the payload is really read). Reported:
//   - entries/s committed and applied on all three nodes, 128-byte proposals, per batch size;
//   - heap allocations per entry (global operator new is counted);
//   - election time in ticks from a cold start and after the leader fails, over many seeds.
//
// usage: raft_bench [--entries N] [--seeds N]
#include "raft/rawnode.h"
#include "raft/storage.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}

void *operator new(std::size_t size)
{
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void *p = std::malloc(size ? size : 1))
        return p;
    throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }

using namespace dengine::raft;

namespace {

// Stable storage that forgets entries every node has applied, as a deployment does once a snapshot
// covers them. Without it the benchmark would measure the page faults of an ever-growing log (half
// a gigabyte at two million entries) instead of the core.
class TrimmedStorage final : public Storage {
public:
    explicit TrimmedStorage(std::vector<NodeId> voters) { m_conf.voters = std::move(voters); }
    InitialState initialState() const override { return {m_hard, m_conf}; }
    StorageError entries(Index lo, Index hi, std::uint64_t maxBytes, std::vector<Entry> &out) const override
    {
        if (lo <= m_offset)
            return StorageError::Compacted;
        if (hi > lastIndex() + 1)
            return StorageError::Unavailable;
        std::uint64_t bytes = 0;
        for (Index i = lo; i < hi; ++i) {
            const Entry &e = m_entries[i - m_offset - 1];
            bytes += entrySize(e);
            if (i > lo && bytes > maxBytes)
                break;
            out.push_back(e);
        }
        return StorageError::None;
    }
    StorageError term(Index index, Term &out) const override
    {
        if (index < m_offset)
            return StorageError::Compacted;
        if (index > lastIndex())
            return StorageError::Unavailable;
        out = index == m_offset ? m_offsetTerm : m_entries[index - m_offset - 1].term;
        return StorageError::None;
    }
    Index firstIndex() const override { return m_offset + 1; }
    Index lastIndex() const override { return m_offset + m_entries.size(); }
    Snapshot snapshot() const override { return {}; }

    void setHardState(const HardState &hs) { m_hard = hs; }
    void append(std::vector<Entry> &entries)
    {
        m_entries.resize(entries.front().index - m_offset - 1);
        for (Entry &e : entries)
            m_entries.push_back(std::move(e));
    }
    void trimTo(Index index)
    {
        while (m_offset < index && !m_entries.empty()) {
            m_offsetTerm = m_entries.front().term;
            m_entries.pop_front();
            ++m_offset;
        }
    }

private:
    HardState m_hard;
    ConfState m_conf;
    std::deque<Entry> m_entries;
    Index m_offset = 0;
    Term m_offsetTerm = 0;
};

struct Node {
    std::unique_ptr<TrimmedStorage> storage;
    std::unique_ptr<RawNode> raft;
    std::uint64_t applied = 0;
    std::uint64_t checksum = 0;
    bool up = true;
};

class Cluster {
public:
    Cluster(int size, std::uint64_t seed, int electionTick = 10, std::uint64_t maxSizePerMsg = 1 << 20)
    {
        std::vector<NodeId> voters;
        for (int i = 1; i <= size; ++i)
            voters.push_back(static_cast<NodeId>(i));
        for (int i = 1; i <= size; ++i) {
            Node n;
            n.storage = std::make_unique<TrimmedStorage>(voters);
            Config cfg;
            cfg.id = static_cast<NodeId>(i);
            cfg.seed = seed * 31 + static_cast<std::uint64_t>(i);
            cfg.electionTick = electionTick;
            cfg.heartbeatTick = 1;
            cfg.maxSizePerMsg = maxSizePerMsg;
            cfg.maxInflightMsgs = 256;
            cfg.maxInflightBytes = 256ULL << 20;
            n.raft = std::make_unique<RawNode>(cfg, *n.storage);
            m_nodes.push_back(std::move(n));
        }
    }

    Node &node(NodeId id) { return m_nodes[id - 1]; }
    std::size_t size() const { return m_nodes.size(); }

    NodeId leader()
    {
        for (Node &n : m_nodes)
            if (n.up && n.raft->status().softState.role == Role::Leader)
                return n.raft->status().id;
        return NoNode;
    }

    // Runs Ready loops and deliveries until the cluster is quiet.
    void pump()
    {
        bool busy = true;
        while (busy) {
            busy = false;
            for (Node &n : m_nodes) {
                if (!n.up)
                    continue;
                while (n.raft->hasReady()) {
                    busy = true;
                    Ready rd = n.raft->ready();
                    if (!rd.entries.empty())
                        n.storage->append(rd.entries);
                    if (rd.hardState)
                        n.storage->setHardState(*rd.hardState);
                    for (Message &m : rd.messages)
                        m_queue.push_back(std::move(m));
                    for (Message &m : rd.messagesAfterPersist)
                        m_queue.push_back(std::move(m));
                    if (rd.writeId != 0)
                        n.raft->acknowledgePersisted(rd.writeId);
                    for (const Entry &e : rd.committedEntries) {
                        ++n.applied;
                        const char *d = e.data.data();
                        for (std::size_t i = 0; i < e.data.size(); i += 8)
                            n.checksum += static_cast<unsigned char>(d[i]);
                    }
                }
            }
            while (!m_queue.empty()) {
                busy = true;
                Message m = std::move(m_queue.front());
                m_queue.pop_front();
                Node &to = node(m.to);
                if (to.up)
                    to.raft->step(std::move(m));
            }
        }
    }

    // Forgets what every node has applied (keeping a margin the leader may still need to send).
    void trim()
    {
        std::uint64_t applied = UINT64_MAX;
        for (Node &n : m_nodes)
            applied = std::min(applied, n.raft->status().applied);
        if (applied > 1024)
            for (Node &n : m_nodes)
                n.storage->trimTo(applied - 1024);
    }

    void tickAll()
    {
        for (Node &n : m_nodes)
            if (n.up)
                n.raft->tick();
    }

private:
    std::vector<Node> m_nodes;
    std::deque<Message> m_queue;
};

double percentile(std::vector<double> v, double p)
{
    std::sort(v.begin(), v.end());
    const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
    return v[i];
}

void throughput(std::uint64_t totalEntries, std::size_t batch)
{
    Cluster c(3, 1);
    c.node(1).raft->campaign();
    c.pump();
    const NodeId lead = c.leader();
    if (lead == NoNode) {
        std::printf("no leader\n");
        std::exit(1);
    }
    RawNode &leader = *c.node(lead).raft;
    const std::uint64_t startApplied = c.node(1).applied;
    char bytes[128];
    std::memset(bytes, 'x', sizeof bytes);

    const std::uint64_t allocBefore = g_allocations.load();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Payload> proposals;
    for (std::uint64_t proposed = 0; proposed < totalEntries; proposed += batch) {
        proposals.clear();
        for (std::size_t i = 0; i < batch; ++i) {
            std::memcpy(bytes, &proposed, sizeof proposed);
            proposals.emplace_back(bytes, sizeof bytes);
        }
        if (leader.propose(std::move(proposals)) != Status::Ok) {
            std::printf("proposal refused\n");
            std::exit(1);
        }
        proposals = {};
        c.pump();
        c.trim();
    }
    const auto t1 = std::chrono::steady_clock::now();
    const std::uint64_t allocs = g_allocations.load() - allocBefore;

    for (NodeId id = 1; id <= 3; ++id) {
        if (c.node(id).applied - startApplied < totalEntries) {
            std::printf("node %llu applied only %llu of %llu\n", static_cast<unsigned long long>(id),
                        static_cast<unsigned long long>(c.node(id).applied - startApplied), static_cast<unsigned long long>(totalEntries));
            std::exit(1);
        }
    }
    const double secs = std::chrono::duration<double>(t1 - t0).count();
    std::printf("  batch %4zu: %10.0f entries/s committed+applied on 3 nodes, %6.2f heap allocations/entry (%.2f s)\n", batch,
                static_cast<double>(totalEntries) / secs, static_cast<double>(allocs) / static_cast<double>(totalEntries), secs);
}

void elections(std::uint64_t seeds)
{
    // Ticks advance in lockstep and messages arrive within the same tick: the election time is
    // then the randomized timeout plus the rounds of pre-vote and vote, as a count of ticks.
    std::vector<double> cold, failover;
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
        Cluster c(3, seed);
        int t = 0;
        while (c.leader() == NoNode && t < 1000) {
            c.tickAll();
            c.pump();
            ++t;
        }
        cold.push_back(t);
        // Kill the leader; count ticks until a survivor leads.
        c.node(c.leader()).up = false;
        t = 0;
        while (c.leader() == NoNode && t < 1000) {
            c.tickAll();
            c.pump();
            ++t;
        }
        failover.push_back(t);
    }
    std::printf("  election from cold start: median %.0f ticks, p99 %.0f ticks (electionTick 10, %llu seeds)\n",
                percentile(cold, 0.5), percentile(cold, 0.99), static_cast<unsigned long long>(seeds));
    std::printf("  election after leader failure (check-quorum + pre-vote): median %.0f ticks, p99 %.0f ticks\n",
                percentile(failover, 0.5), percentile(failover, 0.99));
}

} // namespace

int main(int argc, char **argv)
{
    std::uint64_t entries = 2'000'000;
    std::uint64_t seeds = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--entries"))
            entries = std::strtoull(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--seeds"))
            seeds = std::strtoull(argv[i + 1], nullptr, 10);
    }
    std::printf("raft_bench: pure core, 3 nodes in memory on one thread, 128-byte proposals, no fsync, no network\n");
    std::printf("throughput (%llu entries per row):\n", static_cast<unsigned long long>(entries));
    for (std::size_t batch : {1u, 16u, 256u, 4096u})
        throughput(batch == 1 ? entries / 8 : entries, batch);
    std::printf("elections:\n");
    elections(seeds);
    return 0;
}
