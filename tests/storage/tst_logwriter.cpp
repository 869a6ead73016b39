// SPDX-License-Identifier: Apache-2.0
// LogWriter: group commit on its own thread. Synchronization in these tests is by latches and
// condition variables, never by sleeping: the file system below lets a test hold a sync until it
// has queued more work, which makes "one sync covers every batch queued meanwhile" deterministic.
#include "storage/logwriter.h"
#include "tempdir.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>

using namespace dengine;
using namespace dengine::storage;

namespace {

// Delegates to the real file system; syncData can be held at a gate or made to fail.
class GatedFileSystem final : public FileSystem {
public:
    void holdSyncs()
    {
        std::lock_guard lock(m_mutex);
        m_hold = true;
    }
    void releaseSyncs()
    {
        {
            std::lock_guard lock(m_mutex);
            m_hold = false;
        }
        m_cv.notify_all();
    }
    // Blocks until a sync is waiting at the gate.
    void waitForHeldSync()
    {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [this] { return m_waiting > 0; });
    }
    void failSyncs(int code)
    {
        std::lock_guard lock(m_mutex);
        m_failCode = code;
    }
    int syncs()
    {
        std::lock_guard lock(m_mutex);
        return m_syncs;
    }

    IoStatus open(const std::string &path, OpenMode mode, std::unique_ptr<File> &out) override
    {
        std::unique_ptr<File> inner;
        if (IoStatus st = FileSystem::posix().open(path, mode, inner); !st)
            return st;
        out = std::make_unique<GatedFile>(*this, std::move(inner));
        return {};
    }
    IoStatus rename(const std::string &a, const std::string &b) override { return FileSystem::posix().rename(a, b); }
    IoStatus remove(const std::string &p) override { return FileSystem::posix().remove(p); }
    IoStatus syncDirectory(const std::string &d) override { return FileSystem::posix().syncDirectory(d); }
    IoStatus createDirectories(const std::string &d) override { return FileSystem::posix().createDirectories(d); }
    IoStatus list(const std::string &d, std::vector<std::string> &n) override { return FileSystem::posix().list(d, n); }
    bool exists(const std::string &p) override { return FileSystem::posix().exists(p); }
    IoStatus lock(const std::string &p, std::unique_ptr<File> &out) override { return FileSystem::posix().lock(p, out); }

private:
    class GatedFile final : public File {
    public:
        GatedFile(GatedFileSystem &fs, std::unique_ptr<File> inner) : m_fs(fs), m_inner(std::move(inner)) {}
        const std::string &path() const override { return m_inner->path(); }
        IoStatus write(const void *d, std::size_t n, std::uint64_t o) override { return m_inner->write(d, n, o); }
        IoStatus read(void *d, std::size_t n, std::uint64_t o, std::size_t &got) override { return m_inner->read(d, n, o, got); }
        IoStatus truncate(std::uint64_t s) override { return m_inner->truncate(s); }
        IoStatus preallocate(std::uint64_t s, bool z) override { return m_inner->preallocate(s, z); }
        IoStatus size(std::uint64_t &o) override { return m_inner->size(o); }
        IoStatus syncData() override
        {
            int fail = 0;
            {
                std::unique_lock lock(m_fs.m_mutex);
                ++m_fs.m_waiting;
                m_fs.m_cv.notify_all();
                m_fs.m_cv.wait(lock, [this] { return !m_fs.m_hold; });
                --m_fs.m_waiting;
                ++m_fs.m_syncs;
                fail = m_fs.m_failCode;
            }
            if (fail)
                return IoStatus::error(fail, "fdatasync " + path() + ": injected failure");
            return m_inner->syncData();
        }

    private:
        GatedFileSystem &m_fs;
        std::unique_ptr<File> m_inner;
    };

    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_hold = false;
    int m_waiting = 0;
    int m_syncs = 0;
    int m_failCode = 0;
};

struct Observed {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::uint64_t> durable;
    std::vector<StorageStatus> errors;

    void waitDurable(std::uint64_t id)
    {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return !durable.empty() && durable.back() >= id; });
    }
    // The writer's callbacks, recording here.
    LogWriter::DurableCallback onDurable()
    {
        return [this](std::uint64_t id) {
            std::lock_guard lock(mutex);
            durable.push_back(id);
            cv.notify_all();
        };
    }
    LogWriter::ErrorCallback onError()
    {
        return [this](const StorageStatus &st) {
            std::lock_guard lock(mutex);
            errors.push_back(st);
            cv.notify_all();
        };
    }
};

std::vector<raft::Entry> entries(raft::Index from, std::size_t count)
{
    std::vector<raft::Entry> out;
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(raft::Entry{1, from + i, raft::EntryType::Normal, raft::Payload("value " + std::to_string(from + i))});
    return out;
}

std::unique_ptr<Wal> openWal(const std::string &dir, FileSystem *fs)
{
    WalOptions o;
    o.dir = dir;
    o.fs = fs;
    o.segmentBytes = 1 << 20;
    o.bootstrap.voters = {1, 2, 3};
    std::unique_ptr<Wal> wal;
    const StorageStatus st = Wal::open(o, wal);
    EXPECT_TRUE(st.ok()) << st.message;
    return wal;
}

// A log on a gated file system, and a writer on it whose reports `seen` records.
class LogWriterTest : public ::testing::Test {
protected:
    test::TempDir dir;
    GatedFileSystem fs;
    std::unique_ptr<Wal> wal = openWal(dir.path(), &fs);
    Observed seen;
    LogWriter writer{*wal, seen.onDurable(), seen.onError()};
};

} // namespace

TEST_F(LogWriterTest, batchesQueuedDuringASync_shareTheNextSync)
{
    const int syncsBefore = fs.syncs();

    fs.holdSyncs();
    writer.submit({1, entries(1, 1), raft::HardState{1, 1, 0}, true, std::nullopt, std::nullopt});
    fs.waitForHeldSync(); // batch 1 is being synced; the next ones queue behind it
    raft::Index next = 2;
    for (std::uint64_t id = 2; id <= 100; ++id) {
        writer.submit({id, entries(next, 3), std::nullopt, true, std::nullopt, std::nullopt});
        next += 3;
    }
    fs.releaseSyncs();
    seen.waitDurable(100);
    writer.drain();

    EXPECT_EQ(fs.syncs() - syncsBefore, 2) << "99 batches queued during one sync must share a single sync";
    EXPECT_EQ(seen.durable, (std::vector<std::uint64_t>{1, 100}));
    EXPECT_TRUE(seen.errors.empty());
    EXPECT_EQ(wal->syncedLastIndex(), next - 1);
    EXPECT_EQ(writer.stats().batches, 100u);
    EXPECT_EQ(writer.stats().syncs, 2u);
}

TEST_F(LogWriterTest, commitOnlyHardState_isNotSynced)
{
    const int before = fs.syncs();
    writer.submit({1, {}, raft::HardState{0, 0, 0}, false, std::nullopt, std::nullopt});
    seen.waitDurable(1);
    writer.drain();
    EXPECT_EQ(fs.syncs(), before);
}

TEST_F(LogWriterTest, failedSync_isReportedOnceAndNothingLaterIsAcknowledged)
{
    writer.submit({1, entries(1, 2), std::nullopt, true, std::nullopt, std::nullopt});
    seen.waitDurable(1);
    fs.failSyncs(EIO);
    writer.submit({2, entries(3, 2), std::nullopt, true, std::nullopt, std::nullopt});
    writer.drain();
    fs.failSyncs(0); // even if the disk "recovers", the writer must not acknowledge anything again
    writer.submit({3, entries(5, 2), std::nullopt, true, std::nullopt, std::nullopt});
    writer.drain();

    std::lock_guard lock(seen.mutex);
    EXPECT_EQ(seen.durable, (std::vector<std::uint64_t>{1}));
    ASSERT_EQ(seen.errors.size(), 1u);
    EXPECT_EQ(seen.errors[0].code, StorageErrorCode::Io);
    EXPECT_NE(seen.errors[0].message.find("fdatasync"), std::string::npos) << seen.errors[0].message;
    EXPECT_EQ(wal->syncedLastIndex(), 2u);
    EXPECT_FALSE(wal->failure().ok());
}

TEST(LogWriter, destructor_finishesSubmittedBatches)
{
    test::TempDir dir;
    std::uint64_t last = 0;
    {
        auto wal = openWal(dir.path(), nullptr);
        {
            LogWriter writer(*wal, [&](std::uint64_t id) { last = id; }, [](const StorageStatus &) {});
            for (std::uint64_t id = 1; id <= 10; ++id)
                writer.submit({id, entries(id, 1), std::nullopt, true, std::nullopt, std::nullopt});
        }
        EXPECT_EQ(last, 10u);
        EXPECT_EQ(wal->syncedLastIndex(), 10u);
    }
    auto reopened = openWal(dir.path(), nullptr);
    EXPECT_EQ(reopened->lastIndex(), 10u);
}

// writeNow(): the follower's path (EngineWorker writes its appends on its own thread when the
// writer has nothing in hand).
TEST_F(LogWriterTest, writeNow_whenIdle_isDurableOnReturnWithoutACallback)
{
    writer.submit({1, entries(1, 2), raft::HardState{1, 1, 0}, true, std::nullopt, std::nullopt});
    seen.waitDurable(1);
    writer.drain();
    const int syncsBefore = fs.syncs();
    LogWriter::Batch b{2, entries(3, 3), std::nullopt, true, std::nullopt, std::nullopt};
    ASSERT_EQ(writer.writeNow(b), LogWriter::WriteNow::Durable);
    EXPECT_EQ(fs.syncs() - syncsBefore, 1);
    EXPECT_EQ(wal->syncedLastIndex(), 5u) << "durable when writeNow returns";
    // Later batches go through the thread as before, after it.
    writer.submit({3, entries(6, 1), std::nullopt, true, std::nullopt, std::nullopt});
    seen.waitDurable(3);
    writer.drain();
    std::lock_guard lock(seen.mutex);
    EXPECT_EQ(seen.durable, (std::vector<std::uint64_t>{1, 3})) << "the inline write is not reported through onDurable";
    EXPECT_TRUE(seen.errors.empty());
    EXPECT_EQ(wal->syncedLastIndex(), 6u);
    EXPECT_EQ(writer.stats().batches, 3u);
    EXPECT_EQ(writer.stats().syncs, 3u);
}

TEST_F(LogWriterTest, writeNow_whileTheThreadWrites_isBusyAndLeavesTheBatch)
{
    fs.holdSyncs();
    writer.submit({1, entries(1, 1), raft::HardState{1, 1, 0}, true, std::nullopt, std::nullopt});
    fs.waitForHeldSync(); // the thread is in the middle of batch 1
    LogWriter::Batch b{2, entries(2, 2), std::nullopt, true, std::nullopt, std::nullopt};
    EXPECT_EQ(writer.writeNow(b), LogWriter::WriteNow::Busy);
    EXPECT_EQ(b.entries.size(), 2u) << "a Busy batch is left to be submitted";
    EXPECT_EQ(wal->lastIndex(), 1u) << "nothing of it was written";
    // Queued behind the held one: still Busy (writes keep the order they were given in).
    writer.submit(std::move(b));
    LogWriter::Batch c{3, entries(4, 1), std::nullopt, true, std::nullopt, std::nullopt};
    EXPECT_EQ(writer.writeNow(c), LogWriter::WriteNow::Busy);
    fs.releaseSyncs();
    seen.waitDurable(2);
    writer.drain();
    EXPECT_EQ(writer.writeNow(c), LogWriter::WriteNow::Durable);
    EXPECT_EQ(wal->syncedLastIndex(), 4u);
}

TEST_F(LogWriterTest, writeNow_failure_isFinalAndReportedOnce)
{
    fs.failSyncs(EIO);
    LogWriter::Batch b{1, entries(1, 1), raft::HardState{1, 1, 0}, true, std::nullopt, std::nullopt};
    EXPECT_EQ(writer.writeNow(b), LogWriter::WriteNow::Failed);
    fs.failSyncs(0);
    LogWriter::Batch c{2, entries(2, 1), std::nullopt, true, std::nullopt, std::nullopt};
    EXPECT_EQ(writer.writeNow(c), LogWriter::WriteNow::Failed) << "nothing is written or acknowledged after a failure";
    writer.submit({3, entries(2, 1), std::nullopt, true, std::nullopt, std::nullopt});
    writer.drain();
    std::lock_guard lock(seen.mutex);
    EXPECT_TRUE(seen.durable.empty());
    ASSERT_EQ(seen.errors.size(), 1u);
    EXPECT_NE(seen.errors[0].message.find("fdatasync"), std::string::npos) << seen.errors[0].message;
    EXPECT_EQ(wal->syncedLastIndex(), 0u);
}
