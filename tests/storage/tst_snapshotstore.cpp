// SPDX-License-Identifier: Apache-2.0
#include "storage/snapshotstore.h"
#include "tempdir.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

using namespace dengine;
using namespace dengine::storage;

namespace {

raft::Snapshot makeSnapshot(raft::Index index, raft::Term term, const std::string &data)
{
    raft::Snapshot s;
    s.metadata.index = index;
    s.metadata.term = term;
    s.metadata.confState.voters = {1, 2, 3};
    s.data = raft::Payload(data);
    return s;
}

std::vector<std::string> files(const std::string &dir)
{
    std::vector<std::string> names;
    FileSystem::posix().list(dir, names);
    return names;
}

} // namespace

TEST(SnapshotStore, load_withNoSnapshots_givesNothing)
{
    test::TempDir dir;
    SnapshotStore store(dir.path());
    std::optional<raft::Snapshot> snap;
    ASSERT_TRUE(store.loadLatest(snap).ok());
    EXPECT_FALSE(snap.has_value());
}

TEST(SnapshotStore, save_thenLoad_roundTripsMetadataAndData)
{
    test::TempDir dir;
    SnapshotStore store(dir.path());
    std::string data(100000, '\0');
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<char>(i * 7);
    ASSERT_TRUE(store.save(makeSnapshot(42, 3, data)).ok());
    std::optional<raft::Snapshot> snap;
    ASSERT_TRUE(SnapshotStore(dir.path()).loadLatest(snap).ok());
    ASSERT_TRUE(snap.has_value());
    EXPECT_EQ(snap->metadata.index, 42u);
    EXPECT_EQ(snap->metadata.term, 3u);
    EXPECT_EQ(snap->metadata.confState.voters, (std::vector<raft::NodeId>{1, 2, 3}));
    EXPECT_EQ(snap->data.view(), data);
}

TEST(SnapshotStore, save_keepsOnlyTheNewest)
{
    test::TempDir dir;
    SnapshotStore store(dir.path(), nullptr, 2);
    for (raft::Index i = 1; i <= 5; ++i)
        ASSERT_TRUE(store.save(makeSnapshot(i * 10, 1, "s" + std::to_string(i))).ok());
    EXPECT_EQ(files(dir.path() + "/snap").size(), 2u);
    std::optional<raft::Snapshot> snap;
    ASSERT_TRUE(store.loadLatest(snap).ok());
    EXPECT_EQ(snap->metadata.index, 50u);
    EXPECT_EQ(snap->data.view(), "s5");
}

TEST(SnapshotStore, damagedNewest_isAnErrorNamingTheFile)
{
    test::TempDir dir;
    SnapshotStore store(dir.path());
    ASSERT_TRUE(store.save(makeSnapshot(10, 1, "older")).ok());
    ASSERT_TRUE(store.save(makeSnapshot(20, 2, "newer snapshot data")).ok());
    const std::string path = dir.path() + "/snap/0000000000000014-0000000000000002.snap";
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        ASSERT_TRUE(f.good());
        f.seekp(60);
        f.put('X');
    }
    std::optional<raft::Snapshot> snap;
    const StorageStatus st = store.loadLatest(snap);
    EXPECT_EQ(st.code, StorageErrorCode::Corrupt);
    EXPECT_NE(st.message.find(path), std::string::npos) << st.message;
    EXPECT_FALSE(snap.has_value()) << "an older snapshot must not silently stand in";
}

TEST(SnapshotStore, leftoverTemporaryFile_isIgnored)
{
    test::TempDir dir;
    SnapshotStore store(dir.path());
    ASSERT_TRUE(store.save(makeSnapshot(10, 1, "kept")).ok());
    // A crash during the next save leaves a temporary file behind.
    std::ofstream(dir.path() + "/snap/0000000000000020-0000000000000001.snap.tmp") << "half written";
    std::optional<raft::Snapshot> snap;
    ASSERT_TRUE(store.loadLatest(snap).ok());
    ASSERT_TRUE(snap.has_value());
    EXPECT_EQ(snap->metadata.index, 10u);
}

TEST(SnapshotStore, indexZero_isRefused)
{
    test::TempDir dir;
    SnapshotStore store(dir.path());
    EXPECT_EQ(store.save(makeSnapshot(0, 0, "")).code, StorageErrorCode::Config);
}

TEST(SnapshotStore, writer_streamsPiecesAndKeepsTheWholeConfiguration)
{
    test::TempDir dir;
    SnapshotStore store(dir.path());
    raft::SnapshotMetadata meta;
    meta.index = 7000;
    meta.term = 9;
    meta.confState.voters = {1, 2, 4};
    meta.confState.votersOutgoing = {1, 2, 3};
    meta.confState.learners = {5};
    meta.confState.autoLeave = true;
    std::unique_ptr<SnapshotWriter> w;
    ASSERT_TRUE(SnapshotWriter::create(store, meta, w).ok());
    std::string all;
    for (int i = 0; i < 300; ++i) {
        // Pieces of every size, some larger than the writer's buffer.
        const std::string piece(static_cast<std::size_t>((i * 7919) % (i % 50 == 0 ? 3000000 : 9000)), static_cast<char>('a' + i % 26));
        ASSERT_TRUE(w->append(piece).ok());
        all += piece;
    }
    std::uint64_t bytes = 0;
    ASSERT_TRUE(w->commit(&bytes).ok());
    EXPECT_GT(bytes, all.size());
    raft::Snapshot back;
    ASSERT_TRUE(store.load(7000, 9, back).ok());
    EXPECT_EQ(back.metadata.confState, meta.confState);
    EXPECT_TRUE(back.data.view() == all);
    // No temporary file is left.
    for (const std::string &n : files(dir.path() + "/snap"))
        EXPECT_EQ(n.find(".tmp"), std::string::npos) << n;
}

TEST(SnapshotStore, writerDestroyedWithoutCommit_leavesNothing)
{
    test::TempDir dir;
    SnapshotStore store(dir.path());
    {
        std::unique_ptr<SnapshotWriter> w;
        ASSERT_TRUE(SnapshotWriter::create(store, makeSnapshot(5, 1, "").metadata, w).ok());
        ASSERT_TRUE(w->append("half").ok());
    }
    EXPECT_TRUE(files(dir.path() + "/snap").empty());
    std::optional<raft::Snapshot> snap;
    ASSERT_TRUE(store.loadLatest(snap).ok());
    EXPECT_FALSE(snap.has_value());
}

TEST(SnapshotStore, inspect_checksAReceivedFileAgainstWhatWasAnnounced)
{
    test::TempDir dir;
    SnapshotStore store(dir.path());
    ASSERT_TRUE(store.save(makeSnapshot(30, 2, "the state at 30")).ok());
    // As if received: a copy under the incoming name.
    const std::string incoming = store.incomingPath(1);
    {
        std::ifstream in(store.pathOf(30, 2), std::ios::binary);
        std::ofstream out(incoming, std::ios::binary);
        out << in.rdbuf();
    }
    raft::SnapshotMetadata meta;
    std::uint64_t offset = 0, length = 0;
    ASSERT_TRUE(SnapshotStore::inspect(FileSystem::posix(), incoming, meta, &offset, &length).ok());
    EXPECT_EQ(meta.index, 30u);
    EXPECT_EQ(length, std::string("the state at 30").size());
    raft::SnapshotMetadata other = meta;
    other.term = 3;
    const StorageStatus st = SnapshotStore::inspect(FileSystem::posix(), incoming, meta, nullptr, nullptr, &other);
    EXPECT_EQ(st.code, StorageErrorCode::Corrupt);
    EXPECT_NE(st.message.find("not the one expected"), std::string::npos) << st.message;
    // A flipped byte anywhere is refused.
    {
        std::fstream f(incoming, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(offset + 3));
        f.put('#');
    }
    const StorageStatus bad = SnapshotStore::inspect(FileSystem::posix(), incoming, meta);
    EXPECT_EQ(bad.code, StorageErrorCode::Corrupt);
    EXPECT_NE(bad.message.find("checksum mismatch"), std::string::npos) << bad.message;
}

TEST(SnapshotStore, adoptQuarantineAndLeftovers)
{
    test::TempDir dir;
    SnapshotStore store(dir.path(), nullptr, 2);
    ASSERT_TRUE(store.save(makeSnapshot(10, 1, "a")).ok());
    ASSERT_TRUE(store.save(makeSnapshot(20, 1, "b")).ok());
    // A received snapshot at 40 is adopted: it becomes the newest, and the oldest goes.
    SnapshotStore other(dir.path() + "/elsewhere");
    ASSERT_TRUE(other.save(makeSnapshot(40, 2, "c")).ok());
    ASSERT_TRUE(store.adopt(other.pathOf(40, 2), makeSnapshot(40, 2, "").metadata).ok());
    std::vector<std::pair<raft::Index, raft::Term>> all;
    ASSERT_TRUE(store.list(all).ok());
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0], (std::pair<raft::Index, raft::Term>{40, 2}));
    EXPECT_EQ(all[1], (std::pair<raft::Index, raft::Term>{20, 1}));
    // A damaged one is moved aside and never listed again.
    ASSERT_TRUE(store.quarantine(40, 2).ok());
    ASSERT_TRUE(store.list(all).ok());
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].first, 20u);
    std::ofstream(store.incomingPath(3)) << "partial";
    std::ofstream(store.pathOf(50, 2) + ".tmp") << "partial";
    store.removeLeftovers();
    for (const std::string &n : files(dir.path() + "/snap"))
        EXPECT_TRUE(n.find(".part") == std::string::npos && n.find(".tmp") == std::string::npos) << n;
}
