// SPDX-License-Identifier: Apache-2.0
// The fault-injecting file system must model a page cache faithfully, or the log tests prove little.
#include "faultyfs.h"
#include "storage/record.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>

using namespace dengine::storage;
using namespace dengine::storage::test;

namespace {

std::unique_ptr<File> create(FaultyFileSystem &fs, const std::string &path)
{
    std::unique_ptr<File> f;
    EXPECT_TRUE(fs.open(path, OpenMode::CreateNew, f).ok());
    return f;
}

std::string readAll(File &f)
{
    std::uint64_t size = 0;
    EXPECT_TRUE(f.size(size).ok());
    std::string buf(size, '\0');
    std::size_t got = 0;
    EXPECT_TRUE(f.read(buf.data(), buf.size(), 0, got).ok());
    buf.resize(got);
    return buf;
}

class FaultyFsTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(fs.createDirectories("/d").ok()); }
    FaultyFileSystem fs;
};

} // namespace

TEST_F(FaultyFsTest, WritesAreDurableOnlyAfterSyncData)
{
    auto f = create(fs, "/d/a");
    ASSERT_TRUE(fs.syncDirectory("/d").ok());
    ASSERT_TRUE(f->write("hello", 5, 0).ok());
    EXPECT_EQ(readAll(*f), "hello");
    EXPECT_EQ(fs.syncedContents("/d/a"), "");
    EXPECT_EQ(fs.crashedCopy(UnsyncedData::Drop)->contents("/d/a"), "");
    EXPECT_EQ(fs.crashedCopy(UnsyncedData::Keep)->contents("/d/a"), "hello");
    ASSERT_TRUE(f->syncData().ok());
    ASSERT_TRUE(f->write("J", 1, 0).ok());
    EXPECT_EQ(fs.crashedCopy(UnsyncedData::Drop)->contents("/d/a"), "hello");
    fs.crash(UnsyncedData::Drop);
    EXPECT_EQ(fs.contents("/d/a"), "hello");
    EXPECT_EQ(fs.unsyncedCount(), 0u);
}

TEST_F(FaultyFsTest, NamespaceChangesAreDurableOnlyAfterSyncDirectory)
{
    auto a = create(fs, "/d/a");
    ASSERT_TRUE(a->write("A", 1, 0).ok());
    ASSERT_TRUE(a->syncData().ok());
    // Data synced, but the creation itself is not: a crash loses the file.
    EXPECT_FALSE(fs.crashedCopy(UnsyncedData::Keep)->contents("/d/a").has_value());
    ASSERT_TRUE(fs.syncDirectory("/d").ok());
    ASSERT_TRUE(fs.rename("/d/a", "/d/b").ok());
    ASSERT_TRUE(fs.exists("/d/b"));
    {
        auto c = fs.crashedCopy(UnsyncedData::Keep);
        EXPECT_EQ(c->contents("/d/a"), "A");
        EXPECT_FALSE(c->contents("/d/b").has_value());
    }
    ASSERT_TRUE(fs.syncDirectory("/d").ok());
    ASSERT_TRUE(fs.remove("/d/b").ok());
    EXPECT_EQ(fs.crashedCopy(UnsyncedData::Drop)->contents("/d/b"), "A");
    ASSERT_TRUE(fs.syncDirectory("/d").ok());
    EXPECT_TRUE(fs.crashedCopy(UnsyncedData::Drop)->files().empty());
    std::vector<std::string> names;
    ASSERT_TRUE(fs.list("/d", names).ok());
    EXPECT_TRUE(names.empty());
}

TEST_F(FaultyFsTest, TornSectorsKeepEachSectorOldOrNewAndVaryWithTheSeed)
{
    auto f = create(fs, "/d/a");
    ASSERT_TRUE(f->preallocate(8 * SectorSize, true).ok());
    ASSERT_TRUE(fs.syncDirectory("/d").ok());
    const std::string data(8 * SectorSize, 'x');
    ASSERT_TRUE(f->write(data.data(), data.size(), 0).ok());
    std::set<std::string> patterns;
    for (std::uint64_t seed = 0; seed < 64; ++seed) {
        const std::string got = *fs.crashedCopy(UnsyncedData::TornSectors, seed)->contents("/d/a");
        ASSERT_EQ(got.size(), data.size()) << "seed " << seed;
        std::string pattern;
        for (std::size_t s = 0; s < 8; ++s) {
            const std::string sector = got.substr(s * SectorSize, SectorSize);
            const bool isNew = sector == std::string(SectorSize, 'x');
            ASSERT_TRUE(isNew || sector == std::string(SectorSize, '\0')) << "seed " << seed << ": sector " << s << " is mixed";
            pattern += isNew ? '1' : '0';
        }
        patterns.insert(pattern);
        // Same seed, same outcome.
        EXPECT_EQ(got, *fs.crashedCopy(UnsyncedData::TornSectors, seed)->contents("/d/a")) << "seed " << seed;
    }
    EXPECT_GT(patterns.size(), 10u);
    // Out of order: some pattern keeps a later sector but not an earlier one.
    bool outOfOrder = false;
    for (const std::string &p : patterns)
        outOfOrder |= p.find("01") != std::string::npos;
    EXPECT_TRUE(outOfOrder);
}

TEST_F(FaultyFsTest, CrashAtOperationStopsThatOperationAndEverythingAfter)
{
    auto f = create(fs, "/d/a");
    ASSERT_TRUE(fs.syncDirectory("/d").ok()); // op 1
    const std::uint64_t base = fs.operations();
    EXPECT_EQ(base, 1u);
    fs.crashAtOperation(base + 2);
    ASSERT_TRUE(f->write("ab", 2, 0).ok()); // base + 1
    IoStatus st = f->syncData();           // base + 2: the power cut
    EXPECT_EQ(st.code(), EIO);
    EXPECT_NE(st.message().find("power cut at operation 3"), std::string::npos) << st.message();
    EXPECT_TRUE(fs.crashed());
    EXPECT_FALSE(f->write("cd", 2, 2).ok());
    EXPECT_FALSE(fs.rename("/d/a", "/d/b").ok());
    std::unique_ptr<File> g;
    EXPECT_FALSE(fs.open("/d/c", OpenMode::CreateNew, g).ok());
    EXPECT_EQ(fs.contents("/d/a"), "ab");
    fs.crash(UnsyncedData::Drop);
    EXPECT_FALSE(fs.crashed());
    EXPECT_EQ(fs.contents("/d/a"), "");
    // Handles from before the crash are dead.
    EXPECT_FALSE(f->write("x", 1, 0).ok());
    std::size_t got = 0;
    char c;
    EXPECT_FALSE(f->read(&c, 1, 0, got).ok());
    ASSERT_EQ(fs.trace().size(), 3u);
    EXPECT_EQ(fs.trace().back().kind, OpKind::SyncData);
}

TEST_F(FaultyFsTest, InjectedFailuresHaveNoEffect)
{
    auto f = create(fs, "/d/a");
    fs.failOperation(fs.operations() + 1, ENOSPC);
    IoStatus st = f->write("ab", 2, 0);
    EXPECT_EQ(st.code(), ENOSPC);
    EXPECT_NE(st.message().find("/d/a"), std::string::npos);
    EXPECT_EQ(fs.contents("/d/a"), "");
    EXPECT_TRUE(f->write("ab", 2, 0).ok()); // one failure only
    fs.failNext(OpKind::Rename, EIO);
    EXPECT_EQ(fs.rename("/d/a", "/d/b").code(), EIO);
    EXPECT_TRUE(fs.exists("/d/a"));
    EXPECT_FALSE(fs.exists("/d/b"));
    fs.failNext(OpKind::Write, EIO, 1, "/d/a");
    EXPECT_TRUE(f->write("c", 1, 2).ok());
    EXPECT_EQ(f->write("d", 1, 3).code(), EIO);
    EXPECT_EQ(fs.contents("/d/a"), "abc");
}

TEST_F(FaultyFsTest, FailedSyncDropsTheUnsyncedData)
{
    auto f = create(fs, "/d/a");
    ASSERT_TRUE(fs.syncDirectory("/d").ok());
    ASSERT_TRUE(f->write("old", 3, 0).ok());
    ASSERT_TRUE(f->syncData().ok());
    ASSERT_TRUE(f->write("new", 3, 0).ok());
    fs.failNext(OpKind::SyncData, EIO);
    EXPECT_EQ(f->syncData().code(), EIO);
    // The dirty pages are gone: the next fsync "succeeds" but the new data never reaches the disk.
    EXPECT_EQ(readAll(*f), "old");
    EXPECT_TRUE(f->syncData().ok());
    EXPECT_EQ(fs.crashedCopy(UnsyncedData::Keep)->contents("/d/a"), "old");
    // ENOSPC from fsync leaves the data dirty.
    ASSERT_TRUE(f->write("NEW", 3, 0).ok());
    fs.failNext(OpKind::SyncData, ENOSPC);
    EXPECT_EQ(f->syncData().code(), ENOSPC);
    EXPECT_EQ(readAll(*f), "NEW");
}

TEST_F(FaultyFsTest, LockIsExclusiveUntilReleasedOrCrash)
{
    std::unique_ptr<File> a, b;
    ASSERT_TRUE(fs.lock("/d/LOCK", a).ok());
    IoStatus st = fs.lock("/d/LOCK", b);
    EXPECT_EQ(st.code(), EWOULDBLOCK);
    EXPECT_NE(st.message().find("/d/LOCK"), std::string::npos);
    a.reset();
    ASSERT_TRUE(fs.lock("/d/LOCK", b).ok());
    fs.crash(UnsyncedData::Drop); // the holder died with the machine
    ASSERT_TRUE(fs.lock("/d/LOCK", a).ok());
    b.reset(); // a dead holder's release must not free the new holder's lock
    std::unique_ptr<File> c;
    EXPECT_EQ(fs.lock("/d/LOCK", c).code(), EWOULDBLOCK);
}

TEST_F(FaultyFsTest, DamageAfterTheFact)
{
    fs.putFile("/d/x", std::string("\x01\x02\x03\x04", 4));
    ASSERT_TRUE(fs.flipBit("/d/x", 1, 7));
    EXPECT_EQ(fs.contents("/d/x"), std::string("\x01\x82\x03\x04", 4));
    EXPECT_EQ(fs.syncedContents("/d/x"), fs.contents("/d/x"));
    ASSERT_TRUE(fs.truncateFile("/d/x", 2));
    EXPECT_EQ(fs.crashedCopy(UnsyncedData::Drop)->contents("/d/x")->size(), 2u);
    ASSERT_TRUE(fs.renameFile("/d/x", "/d/y"));
    EXPECT_FALSE(fs.crashedCopy(UnsyncedData::Drop)->contents("/d/x").has_value());
    EXPECT_TRUE(fs.crashedCopy(UnsyncedData::Drop)->contents("/d/y").has_value());
    ASSERT_TRUE(fs.deleteFile("/d/y"));
    EXPECT_FALSE(fs.exists("/d/y"));
    EXPECT_FALSE(fs.flipBit("/d/y", 0));
    std::unique_ptr<File> f;
    EXPECT_EQ(fs.open("/d/y", OpenMode::ReadOnly, f).code(), ENOENT);
}

TEST_F(FaultyFsTest, ReadOnlyHandlesRefuseWrites)
{
    fs.putFile("/d/r", "abc");
    std::unique_ptr<File> f;
    ASSERT_TRUE(fs.open("/d/r", OpenMode::ReadOnly, f).ok());
    EXPECT_EQ(f->write("x", 1, 0).code(), EBADF);
    EXPECT_EQ(readAll(*f), "abc");
    EXPECT_EQ(fs.open("/d/r", OpenMode::CreateNew, f).code(), EEXIST);
    EXPECT_EQ(fs.open("/nodir/r", OpenMode::CreateNew, f).code(), ENOENT);
}

TEST_F(FaultyFsTest, ProcessDeathKeepsThePageCacheUntilThePowerFails)
{
    auto f = create(fs, "/d/a");
    ASSERT_TRUE(f->write("cached", 6, 0).ok());
    std::unique_ptr<File> held;
    ASSERT_TRUE(fs.lock("/d/LOCK", held).ok());
    auto restarted = fs.processDeathCopy();
    EXPECT_EQ(restarted->contents("/d/a"), "cached"); // the new process reads what the old one wrote
    std::unique_ptr<File> again;
    EXPECT_TRUE(restarted->lock("/d/LOCK", again).ok()); // the dead process's lock is gone
    // ...but none of it is durable: neither the data nor the file's name.
    restarted->crash(UnsyncedData::Keep);
    EXPECT_FALSE(restarted->contents("/d/a").has_value());
    EXPECT_EQ(fs.contents("/d/a"), "cached"); // the original is untouched
}
