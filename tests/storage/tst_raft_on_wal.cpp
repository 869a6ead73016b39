// SPDX-License-Identifier: Apache-2.0
// The consensus core running on the real write-ahead log: three nodes in one thread, each with its
// own data directory, persisting every Ready through Wal::append + sync before acknowledging it.
// Nodes are restarted by closing and reopening their log, so what the core reads afterwards comes
// from the segment files (the recovery path and the on-disk read path), not from memory.
#include "raft/invariants.h"
#include "raft/rawnode.h"
#include "storage/wal.h"
#include "tempdir.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

using namespace dengine;
using namespace dengine::storage;

namespace {

class Cluster {
public:
    explicit Cluster(std::uint64_t segmentBytes) : m_segmentBytes(segmentBytes)
    {
        for (raft::NodeId id = 1; id <= 3; ++id) {
            m_nodes[id].dir = std::make_unique<test::TempDir>();
            start(id);
        }
    }

    void start(raft::NodeId id)
    {
        Node &n = m_nodes[id];
        WalOptions o;
        o.dir = n.dir->path();
        o.segmentBytes = m_segmentBytes;
        o.cacheBytes = 4096; // small: most reads after a restart come from the files
        o.bootstrap.voters = {1, 2, 3};
        const StorageStatus st = Wal::open(o, n.wal);
        ASSERT_TRUE(st.ok()) << st.message;
        n.storage = std::make_unique<WalStorage>(*n.wal);
        raft::Config cfg;
        cfg.id = id;
        cfg.seed = id * 977 + ++m_starts;
        cfg.maxSizePerMsg = 2048; // many messages per catch-up
        n.raft = std::make_unique<raft::RawNode>(cfg, *n.storage);
        n.applied.clear();
        n.up = true;
    }

    void stop(raft::NodeId id)
    {
        Node &n = m_nodes[id];
        n.raft.reset();
        n.storage.reset();
        n.wal.reset();
        n.up = false;
    }

    void pump()
    {
        for (bool busy = true; busy;) {
            busy = false;
            for (auto &[id, n] : m_nodes) {
                while (n.up && n.raft->hasReady()) {
                    busy = true;
                    raft::Ready rd = n.raft->ready();
                    if (!rd.entries.empty()) {
                        const raft::Term prev = n.raft->raft().log().termOrZero(rd.entries.front().index - 1);
                        const std::string v = m_checks.observeAppend(id, prev, rd.entries);
                        ASSERT_TRUE(v.empty()) << v;
                    }
                    StorageStatus st = n.wal->append(rd.entries, rd.hardState);
                    ASSERT_TRUE(st.ok()) << st.message;
                    st = n.wal->sync();
                    ASSERT_TRUE(st.ok()) << st.message;
                    if (rd.writeId != 0)
                        n.raft->acknowledgePersisted(rd.writeId);
                    for (auto &m : rd.messages)
                        m_queue.push_back(std::move(m));
                    for (auto &m : rd.messagesAfterPersist)
                        m_queue.push_back(std::move(m));
                    for (const raft::Entry &e : rd.committedEntries) {
                        const std::string v = m_checks.observeApply(id, e);
                        ASSERT_TRUE(v.empty()) << v;
                        if (!e.data.empty())
                            n.applied.push_back(e.data.toString());
                    }
                }
            }
            while (!m_queue.empty()) {
                busy = true;
                raft::Message m = std::move(m_queue.front());
                m_queue.pop_front();
                if (m_nodes[m.to].up)
                    m_nodes[m.to].raft->step(std::move(m));
            }
        }
    }

    // Lets time pass until some node leads (followers honour a live leader's lease first).
    raft::NodeId awaitLeader()
    {
        for (int tick = 0; tick < 200; ++tick) {
            for (auto &[id, n] : m_nodes)
                if (n.up && n.raft->status().softState.role == raft::Role::Leader)
                    return id;
            for (auto &[id, n] : m_nodes)
                if (n.up)
                    n.raft->tick();
            pump();
        }
        return 0;
    }

    raft::NodeId elect(raft::NodeId id)
    {
        m_nodes[id].raft->campaign();
        pump();
        return m_nodes[id].raft->status().softState.role == raft::Role::Leader ? id : 0;
    }

    void restartedChecks(raft::NodeId id) { m_checks.restarted(id, 0); }

    struct Node {
        std::unique_ptr<test::TempDir> dir;
        std::unique_ptr<Wal> wal;
        std::unique_ptr<WalStorage> storage;
        std::unique_ptr<raft::RawNode> raft;
        std::vector<std::string> applied;
        bool up = false;
    };
    std::map<raft::NodeId, Node> m_nodes;

private:
    std::uint64_t m_segmentBytes;
    std::uint64_t m_starts = 0;
    std::deque<raft::Message> m_queue;
    raft::ClusterInvariants m_checks;
};

std::vector<raft::Payload> batch(int from, int count)
{
    std::vector<raft::Payload> out;
    for (int i = from; i < from + count; ++i)
        out.emplace_back("put k" + std::to_string(i) + " " + std::string(100, static_cast<char>('a' + i % 26)));
    return out;
}

} // namespace

TEST(RaftOnWal, committedEntries_surviveARestartOfEveryNode)
{
    Cluster c(4096);
    ASSERT_EQ(c.elect(1), 1u);
    for (int round = 0; round < 20; ++round) {
        ASSERT_EQ(c.m_nodes[1].raft->propose(batch(round * 10, 10)), raft::Status::Ok);
        c.pump();
    }
    const raft::Index commit = c.m_nodes[1].raft->status().hardState.commit;
    ASSERT_GE(commit, 201u);
    EXPECT_GT(c.m_nodes[1].wal->segmentCount(), 2u) << "the test should span several segments";

    for (raft::NodeId id = 1; id <= 3; ++id) {
        c.stop(id);
        c.restartedChecks(id);
    }
    for (raft::NodeId id = 1; id <= 3; ++id)
        c.start(id);
    for (raft::NodeId id = 1; id <= 3; ++id) {
        const raft::NodeStatus st = c.m_nodes[id].raft->status();
        EXPECT_GE(st.hardState.commit, commit - 1) << "node " << id;
        EXPECT_EQ(st.lastIndex, commit) << "node " << id;
    }
    // A new leader (any node's log is complete) and one more write, applied everywhere.
    const raft::NodeId leader = c.awaitLeader();
    ASSERT_NE(leader, 0u);
    ASSERT_EQ(c.m_nodes[leader].raft->propose(batch(1000, 1)), raft::Status::Ok);
    c.pump();
    for (raft::NodeId id = 1; id <= 3; ++id) {
        ASSERT_EQ(c.m_nodes[id].applied.size(), 201u) << "node " << id << " replays its log and applies the new write";
        EXPECT_EQ(c.m_nodes[id].applied.back(), batch(1000, 1)[0].toString());
    }
}

TEST(RaftOnWal, laggingFollower_catchesUpFromTheLeadersSegmentFiles)
{
    Cluster c(4096);
    ASSERT_EQ(c.elect(1), 1u);
    c.stop(3);
    for (int round = 0; round < 30; ++round) {
        ASSERT_EQ(c.m_nodes[1].raft->propose(batch(round * 5, 5)), raft::Status::Ok);
        c.pump();
    }
    // Restart the leader so its cache is empty: catching node 3 up must read the files.
    c.stop(1);
    c.restartedChecks(1);
    c.start(1);
    c.start(3);
    c.restartedChecks(3);
    const raft::NodeId leader = c.awaitLeader();
    ASSERT_TRUE(leader == 1 || leader == 2) << "node 3's log is behind: it cannot win";
    ASSERT_EQ(c.m_nodes[leader].raft->propose(batch(500, 1)), raft::Status::Ok);
    c.pump();
    for (int t = 0; t < 5; ++t) {
        c.m_nodes[leader].raft->tick();
        c.pump();
    }
    EXPECT_EQ(c.m_nodes[3].raft->status().lastIndex, c.m_nodes[leader].raft->status().lastIndex);
    EXPECT_EQ(c.m_nodes[3].applied.size(), 151u);
    EXPECT_EQ(c.m_nodes[3].applied, c.m_nodes[2].applied);
}
