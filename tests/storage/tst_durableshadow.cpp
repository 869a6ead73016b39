// SPDX-License-Identifier: Apache-2.0
// The durable shadow (src/storage/durableshadow.h) is what the fault harness's power cuts leave of a
// node's data: if it kept too much, a power cut would prove nothing; if it kept too little, correct
// code would be reported as losing data. Its rules, on a real directory, and a log written through it.
#include "storage/durableshadow.h"
#include "storage/wal.h"
#include "tempdir.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace dengine::storage;

namespace {

std::string slurp(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return "<missing>";
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void put(File &f, const std::string &text, std::uint64_t offset = 0) { ASSERT_TRUE(f.write(text.data(), text.size(), offset).ok()); }

class DurableShadowTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        root = dir.path() + "/data";
        shadow = dir.path() + "/shadow";
        fs = makeDurableShadow(FileSystem::posix(), root, shadow);
        ASSERT_TRUE(fs->createDirectories(root + "/d").ok());
    }
    std::unique_ptr<File> create(const std::string &name)
    {
        std::unique_ptr<File> f;
        EXPECT_TRUE(fs->open(root + "/d/" + name, OpenMode::CreateNew, f).ok());
        return f;
    }
    std::string durable(const std::string &name) const { return slurp(shadow + "/tree/d/" + name); }

    dengine::test::TempDir dir;
    std::string root, shadow;
    std::unique_ptr<FileSystem> fs;
};

} // namespace

TEST_F(DurableShadowTest, dataReachesTheShadowOnlyWhenSynced)
{
    auto f = create("a");
    put(*f, "hello");
    EXPECT_EQ(durable("a"), "<missing>");
    ASSERT_TRUE(f->syncData().ok());
    EXPECT_EQ(durable("a"), "hello");
    put(*f, " world", 5);
    put(*f, "J", 0);
    EXPECT_EQ(durable("a"), "hello");
    ASSERT_TRUE(f->syncData().ok());
    EXPECT_EQ(durable("a"), "Jello world");
    ASSERT_TRUE(f->truncate(4).ok());
    EXPECT_EQ(durable("a"), "Jello world");
    ASSERT_TRUE(f->syncData().ok());
    EXPECT_EQ(durable("a"), "Jell");
}

TEST_F(DurableShadowTest, aHandlesFirstSyncFlushesWhatAnEarlierWriterLeft)
{
    {
        auto f = create("a");
        put(*f, "written by a process that died before its fsync");
    }
    std::unique_ptr<File> g;
    ASSERT_TRUE(fs->open(root + "/d/a", OpenMode::ReadWrite, g).ok());
    put(*g, "W");
    ASSERT_TRUE(g->syncData().ok());
    EXPECT_EQ(durable("a"), "Written by a process that died before its fsync");
}

TEST_F(DurableShadowTest, renamesAndRemovalsWaitForTheDirectorySync)
{
    auto f = create("tmp");
    put(*f, "segment");
    ASSERT_TRUE(f->syncData().ok());
    ASSERT_TRUE(fs->rename(root + "/d/tmp", root + "/d/seg").ok());
    EXPECT_EQ(durable("tmp"), "segment");
    EXPECT_EQ(durable("seg"), "<missing>");
    // Data synced after the rename but before the directory sync lives under the old name.
    put(*f, "S");
    ASSERT_TRUE(f->syncData().ok());
    EXPECT_EQ(durable("tmp"), "Segment");
    ASSERT_TRUE(fs->syncDirectory(root + "/d").ok());
    EXPECT_EQ(durable("tmp"), "<missing>");
    EXPECT_EQ(durable("seg"), "Segment");
    put(*f, "!", 7);
    ASSERT_TRUE(f->syncData().ok());
    EXPECT_EQ(durable("seg"), "Segment!");

    ASSERT_TRUE(fs->remove(root + "/d/seg").ok());
    EXPECT_EQ(durable("seg"), "Segment!");
    ASSERT_TRUE(fs->syncDirectory(root + "/d/").ok());
    EXPECT_EQ(durable("seg"), "<missing>");
}

TEST_F(DurableShadowTest, aFileRenamedBeforeAnySyncIsEmptyUnderItsNewName)
{
    auto f = create("tmp");
    put(*f, "never synced");
    ASSERT_TRUE(fs->rename(root + "/d/tmp", root + "/d/final").ok());
    ASSERT_TRUE(fs->syncDirectory(root + "/d").ok());
    EXPECT_EQ(durable("final"), "");
}

TEST_F(DurableShadowTest, anUnsyncedRemovalDoesNotTakeTheNextFileOfTheSameName)
{
    // What the log does when it prepares a segment: remove a stale tmp, create it again, sync it,
    // rename it into place, sync the directory.
    auto old = create("seg.tmp");
    put(*old, "stale");
    ASSERT_TRUE(old->syncData().ok());
    old.reset();
    ASSERT_TRUE(fs->remove(root + "/d/seg.tmp").ok());
    auto f = create("seg.tmp");
    put(*f, "fresh");
    ASSERT_TRUE(f->syncData().ok());
    ASSERT_TRUE(fs->rename(root + "/d/seg.tmp", root + "/d/seg").ok());
    ASSERT_TRUE(fs->syncDirectory(root + "/d").ok());
    EXPECT_EQ(durable("seg"), "fresh");
    EXPECT_EQ(durable("seg.tmp"), "<missing>");
}

TEST_F(DurableShadowTest, aNameReusedBeforeTheDirectorySyncKeepsBothFilesData)
{
    // A synced at P and renamed to Q; B created at P and synced; then the directory sync: Q holds
    // A's data and P B's, as on a disk (the data belong to the inodes, not the names).
    auto a = create("P");
    put(*a, "first");
    ASSERT_TRUE(a->syncData().ok());
    ASSERT_TRUE(fs->rename(root + "/d/P", root + "/d/Q").ok());
    auto b = create("P");
    put(*b, "second");
    ASSERT_TRUE(b->syncData().ok());
    EXPECT_EQ(durable("P"), "first"); // the directory still says P is A
    ASSERT_TRUE(fs->syncDirectory(root + "/d").ok());
    EXPECT_EQ(durable("Q"), "first");
    EXPECT_EQ(durable("P"), "second");
}

TEST_F(DurableShadowTest, aLaterProcessesDirectorySyncMakesTheEarlierOnesRenamesDurable)
{
    // A process renamed and removed, then died before its directory sync (kill -9: the directory
    // still shows both); the next process's directory sync makes them durable.
    auto a = create("seg");
    put(*a, "data");
    ASSERT_TRUE(a->syncData().ok());
    auto b = create("old");
    put(*b, "old");
    ASSERT_TRUE(b->syncData().ok());
    ASSERT_TRUE(fs->syncDirectory(root + "/d").ok());
    ASSERT_TRUE(fs->rename(root + "/d/seg", root + "/d/seg.free").ok());
    ASSERT_TRUE(fs->remove(root + "/d/old").ok());
    a.reset();
    b.reset();
    fs.reset();
    auto next = makeDurableShadow(FileSystem::posix(), root, shadow);
    EXPECT_EQ(durable("seg"), "data");
    EXPECT_EQ(durable("old"), "old");
    ASSERT_TRUE(next->syncDirectory(root + "/d").ok());
    EXPECT_EQ(durable("seg"), "<missing>");
    EXPECT_EQ(durable("seg.free"), "data");
    EXPECT_EQ(durable("old"), "<missing>");
}

TEST_F(DurableShadowTest, aNewShadowStartsFromWhatTheRootHolds)
{
    auto a = create("kept");
    put(*a, "after a power cut, all of this is durable");
    a.reset();
    const std::string other = dir.path() + "/shadow2";
    auto fresh = makeDurableShadow(FileSystem::posix(), root, other);
    EXPECT_EQ(slurp(other + "/tree/d/kept"), "after a power cut, all of this is durable");
}

TEST_F(DurableShadowTest, pathsOutsideTheRootPassThrough)
{
    std::unique_ptr<File> f;
    ASSERT_TRUE(fs->open(dir.path() + "/elsewhere", OpenMode::CreateNew, f).ok());
    put(*f, "x");
    ASSERT_TRUE(f->syncData().ok());
    EXPECT_EQ(slurp(dir.path() + "/elsewhere"), "x");
    EXPECT_EQ(slurp(shadow + "/tree/elsewhere"), "<missing>");
    EXPECT_EQ(slurp(shadow + "/elsewhere"), "<missing>");
}

// A log written through the shadow, then a power cut (the data replaced by the shadow): every
// synced entry is there, and nothing after the last sync.
TEST_F(DurableShadowTest, aLogAfterAPowerCutHasExactlyItsSyncedEntries)
{
    WalOptions o;
    o.dir = root;
    o.fs = fs.get();
    o.segmentBytes = 64 << 10; // several segments: preparation, renames, directory syncs
    o.bootstrap.voters = {1, 2, 3};
    std::unique_ptr<Wal> wal;
    ASSERT_TRUE(Wal::open(o, wal).ok());
    dengine::raft::Index next = 1;
    const auto appendSome = [&](int n) {
        std::vector<dengine::raft::Entry> entries;
        for (int i = 0; i < n; ++i, ++next)
            entries.push_back(dengine::raft::Entry{1, next, dengine::raft::EntryType::Normal, dengine::raft::Payload(std::string(300, char('a' + next % 26)))});
        ASSERT_TRUE(wal->append(entries, dengine::raft::HardState{1, 1, 0}).ok());
    };
    for (int round = 0; round < 20; ++round) {
        appendSome(40);
        ASSERT_TRUE(wal->sync().ok());
    }
    const dengine::raft::Index synced = next - 1;
    appendSome(25); // written, never synced
    ASSERT_EQ(wal->lastIndex(), synced + 25);
    wal.reset();

    ASSERT_EQ(std::system(("rm -rf '" + root + "' && cp -a '" + shadow + "/tree' '" + root + "'").c_str()), 0);
    std::unique_ptr<Wal> after;
    RecoveryReport report;
    const StorageStatus st = Wal::open(o, after, &report);
    ASSERT_TRUE(st.ok()) << st.message;
    EXPECT_EQ(after->lastIndex(), synced);
    std::vector<dengine::raft::Entry> entries;
    ASSERT_TRUE(after->entries(1, synced + 1, UINT64_MAX, entries));
    ASSERT_EQ(entries.size(), synced);
    EXPECT_EQ(entries.back().data, dengine::raft::Payload(std::string(300, char('a' + synced % 26))));
}
