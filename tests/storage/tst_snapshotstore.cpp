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
