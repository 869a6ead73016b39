// SPDX-License-Identifier: Apache-2.0
// storage_bench: the write-ahead log against the disk it runs on, in one run on one directory.
//
//   1. the disk's limits: raw fdatasync rate (4 KiB overwrites of a zero-filled file, one sync
//      each) and sequential synced-write bandwidth (1 MiB writes, one sync each);
//   2. log appends/s and MB/s for 128 B and 4 KiB entries at batch sizes 1, 16 and 256 (one
//      append + one fdatasync per batch), with each figure as a share of the matching limit;
//   3. recovery: reopening the log just written, in MB/s of log scanned.
//
// usage: storage_bench [--dir DIR] [--seconds S] [--recovery-mb N] [--zero-fill 0|1] [--only BYTESxBATCH[:new]]
// DIR must be on the disk to measure (not tmpfs); the default is ./storage-bench.tmp.
#include "storage/wal.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace dengine;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

void removeTree(const std::string &dir)
{
    const std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0)
        std::fprintf(stderr, "storage_bench: could not remove %s\n", dir.c_str());
}

// Raw limits, measured with plain syscalls on a zero-filled preallocated file.
struct DiskLimits {
    double syncsPerSecond = 0;
    double p50us = 0;
    double seqMBps = 0;
    double firstWriteMBps = 0;
};

DiskLimits measureDisk(const std::string &dir, double secs)
{
    DiskLimits limits;
    const std::string path = dir + "/raw.probe";
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0) {
        std::perror("open");
        std::exit(1);
    }
    const std::size_t size = 256u << 20;
    std::vector<char> block(1 << 20, 0);
    for (std::size_t off = 0; off < size; off += block.size())
        if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(off)) < 0) {
            std::perror("pwrite");
            std::exit(1);
        }
    ::fsync(fd);

    std::memset(block.data(), 'x', block.size());
    std::vector<double> lat;
    auto start = Clock::now();
    std::size_t off = 0;
    while (seconds(start, Clock::now()) < secs) {
        const auto a = Clock::now();
        if (::pwrite(fd, block.data(), 4096, static_cast<off_t>(off)) < 0 || ::fdatasync(fd) != 0) {
            std::perror("write/fdatasync");
            std::exit(1);
        }
        lat.push_back(seconds(a, Clock::now()) * 1e6);
        off = (off + 4096) % size;
    }
    limits.syncsPerSecond = static_cast<double>(lat.size()) / seconds(start, Clock::now());
    std::sort(lat.begin(), lat.end());
    limits.p50us = lat[lat.size() / 2];

    std::size_t written = 0;
    start = Clock::now();
    off = 0;
    while (seconds(start, Clock::now()) < secs) {
        if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(off)) < 0 || ::fdatasync(fd) != 0) {
            std::perror("write/fdatasync");
            std::exit(1);
        }
        written += block.size();
        off = (off + block.size()) % size;
    }
    limits.seqMBps = static_cast<double>(written) / 1e6 / seconds(start, Clock::now());
    ::close(fd);
    ::unlink(path.c_str());

    // The same 1 MiB synced writes into space that is reserved (fallocate) but never written:
    // each sync then also commits the extents' conversion, as in a log's first pass over a file.
    const int fd2 = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd2 < 0 || ::posix_fallocate(fd2, 0, static_cast<off_t>(size)) != 0) {
        std::perror("fallocate");
        std::exit(1);
    }
    written = 0;
    start = Clock::now();
    for (off = 0; off + block.size() <= size && seconds(start, Clock::now()) < secs; off += block.size()) {
        if (::pwrite(fd2, block.data(), block.size(), static_cast<off_t>(off)) < 0 || ::fdatasync(fd2) != 0) {
            std::perror("write/fdatasync");
            std::exit(1);
        }
        written += block.size();
    }
    limits.firstWriteMBps = static_cast<double>(written) / 1e6 / seconds(start, Clock::now());
    ::close(fd2);
    ::unlink(path.c_str());
    return limits;
}

struct LogResult {
    double entriesPerSecond = 0;
    double mbPerSecond = 0;
    double syncsPerSecond = 0;
};

bool g_zeroFill = true; // the log's default

// A log in steady state: a node that takes snapshots compacts its log behind them, so its
// segments are recycled files. `steady` first writes and compacts eight segments' worth of log
// (not timed), and compacts whenever more than two segments hold entries during the run (timed).
// Without it the log is new: every segment is a fresh file.
LogResult measureLog(const std::string &dir, std::size_t entryBytes, std::size_t batch, double secs, bool steady)
{
    removeTree(dir);
    storage::WalOptions o;
    o.zeroFillSegments = g_zeroFill;
    o.dir = dir;
    o.bootstrap.voters = {1, 2, 3};
    std::unique_ptr<storage::Wal> wal;
    if (storage::StorageStatus st = storage::Wal::open(o, wal); !st) {
        std::fprintf(stderr, "open: %s\n", st.message.c_str());
        std::exit(1);
    }
    const std::string data(entryBytes, 'v');
    const raft::Payload payload(data);
    std::vector<raft::Entry> entries(batch);
    raft::Index next = 1;
    auto step = [&] {
        for (auto &e : entries)
            e = raft::Entry{1, next++, raft::EntryType::Normal, payload};
        storage::StorageStatus st = wal->append(entries, raft::HardState{1, 1, next - 1});
        if (st)
            st = wal->sync();
        if (st && steady && wal->segmentCount() > 2)
            st = wal->compact(wal->syncedLastIndex(), 1);
        if (!st) {
            std::fprintf(stderr, "append/sync/compact: %s\n", st.message.c_str());
            std::exit(1);
        }
    };
    if (steady) {
        // Eight segments' worth, compacted as it goes: the segment being written is a reused file.
        const raft::Payload warm(std::string(4096, 'w'));
        std::vector<raft::Entry> big(256);
        for (std::size_t mb = 0; mb < 8 * 64; ++mb) {
            for (auto &e : big)
                e = raft::Entry{1, next++, raft::EntryType::Normal, warm};
            storage::StorageStatus st = wal->append(big, std::nullopt);
            if (st)
                st = wal->sync();
            if (st && wal->segmentCount() > 2)
                st = wal->compact(wal->syncedLastIndex(), 1);
            if (!st) {
                std::fprintf(stderr, "warm-up: %s\n", st.message.c_str());
                std::exit(1);
            }
        }
    }
    std::uint64_t count = 0, syncs = 0;
    const auto start = Clock::now();
    while (seconds(start, Clock::now()) < secs) {
        step();
        count += batch;
        ++syncs;
    }
    const double elapsed = seconds(start, Clock::now());
    LogResult r;
    r.entriesPerSecond = static_cast<double>(count) / elapsed;
    r.mbPerSecond = static_cast<double>(count * entryBytes) / 1e6 / elapsed;
    r.syncsPerSecond = static_cast<double>(syncs) / elapsed;
    return r;
}

void measureRecovery(const std::string &dir, std::size_t megabytes)
{
    removeTree(dir);
    storage::WalOptions o;
    o.dir = dir;
    o.bootstrap.voters = {1, 2, 3};
    {
        std::unique_ptr<storage::Wal> wal;
        if (storage::StorageStatus st = storage::Wal::open(o, wal); !st) {
            std::fprintf(stderr, "open: %s\n", st.message.c_str());
            std::exit(1);
        }
        const raft::Payload payload(std::string(4096, 'r'));
        std::vector<raft::Entry> entries(256);
        raft::Index next = 1;
        const std::size_t rounds = megabytes * (1u << 20) / (256 * 4096);
        for (std::size_t r = 0; r < rounds; ++r) {
            for (auto &e : entries)
                e = raft::Entry{1, next++, raft::EntryType::Normal, payload};
            if (!wal->append(entries, std::nullopt) || !wal->sync()) {
                std::fprintf(stderr, "write failed\n");
                std::exit(1);
            }
        }
    }
    // Drop the page cache when allowed, so the read comes from the disk; say which it was.
    ::sync();
    const int dc = ::open("/proc/sys/vm/drop_caches", O_WRONLY);
    const bool cold = dc >= 0 && ::write(dc, "1", 1) == 1;
    if (dc >= 0)
        ::close(dc);
    storage::RecoveryReport report;
    std::unique_ptr<storage::Wal> wal;
    const auto start = Clock::now();
    if (storage::StorageStatus st = storage::Wal::open(o, wal, &report); !st) {
        std::fprintf(stderr, "reopen: %s\n", st.message.c_str());
        std::exit(1);
    }
    const double elapsed = seconds(start, Clock::now());
    std::printf("recovery: %zu segments, %llu entries, %.0f MB scanned in %.3f s: %.0f MB/s (%s page cache)\n", report.segments,
                static_cast<unsigned long long>(report.entries), static_cast<double>(report.bytesScanned) / 1e6, elapsed,
                static_cast<double>(report.bytesScanned) / 1e6 / elapsed, cold ? "cold" : "warm: could not drop the");
}

} // namespace

int main(int argc, char **argv)
{
    std::string dir = "storage-bench.tmp";
    double secs = 3;
    std::size_t recoveryMb = 512;
    std::string only; // "BYTESxBATCH[:new]": run that row alone (for profiling)
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!std::strcmp(argv[i], "--seconds"))
            secs = std::atof(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--zero-fill"))
            g_zeroFill = std::atoi(argv[i + 1]) != 0;
        else if (!std::strcmp(argv[i], "--only"))
            only = argv[i + 1];
        else if (!std::strcmp(argv[i], "--recovery-mb"))
            recoveryMb = static_cast<std::size_t>(std::atol(argv[i + 1]));
    }
    ::mkdir(dir.c_str(), 0755);
    std::printf("storage_bench: directory %s, %.1f s per row, fdatasync after every batch, 64 MiB segments %s\n", dir.c_str(), secs,
                g_zeroFill ? "zero-filled" : "fallocated");
    // This machine's disk drifts by a factor of two within minutes, so the limits are measured again
    // right before each row and each row is compared with its own measurement.
    const DiskLimits first = measureDisk(dir, secs);
    std::printf("disk: %.0f fdatasync/s (4 KiB overwrite, p50 %.0f us); sequential synced writes %.0f MB/s over written blocks, "
                "%.0f MB/s into reserved unwritten space (1 MiB per sync)\n",
                first.syncsPerSecond, first.p50us, first.seqMBps, first.firstWriteMBps);
    const std::string logDir = dir + "/wal-bench";
    struct Row {
        std::size_t bytes, batch;
        bool steady;
    };
    std::vector<Row> rows;
    for (std::size_t bytes : {128u, 4096u})
        for (std::size_t batch : {1u, 16u, 256u})
            rows.push_back({bytes, batch, true});
    rows.push_back({4096, 256, false});
    if (!only.empty()) {
        std::size_t bytes = 0, batch = 0;
        if (std::sscanf(only.c_str(), "%zux%zu", &bytes, &batch) != 2) {
            std::fprintf(stderr, "--only takes BYTESxBATCH[:new], such as 4096x256\n");
            return 2;
        }
        rows = {{bytes, batch, only.find(":new") == std::string::npos}};
    }
    std::printf("steady: segments are recycled files, the log compacted behind its writes (a node with snapshots); "
                "new: a log's first pass, every segment a fresh file\n");
    for (const Row &row : rows) {
        const std::size_t bytes = row.bytes, batch = row.batch;
        {
            const DiskLimits disk = measureDisk(dir, std::max(1.0, secs / 3));
            const LogResult r = measureLog(logDir, bytes, batch, secs, row.steady);
            std::printf("log %-6s %4zu B x batch %3zu: %9.0f entries/s %7.1f MB/s %6.0f syncs/s = %3.0f%% of raw fdatasync rate, %3.0f%% / "
                        "%3.0f%% of sequential bandwidth (written / unwritten space; limits re-measured: %.0f/s, %.0f / %.0f MB/s)\n",
                        row.steady ? "steady" : "new", bytes, batch, r.entriesPerSecond, r.mbPerSecond, r.syncsPerSecond, 100 * r.syncsPerSecond / disk.syncsPerSecond,
                        100 * r.mbPerSecond / disk.seqMBps, 100 * r.mbPerSecond / disk.firstWriteMBps, disk.syncsPerSecond,
                        disk.seqMBps, disk.firstWriteMBps);
        }
    }
    if (only.empty())
        measureRecovery(logDir, recoveryMb);
    removeTree(logDir);
    return 0;
}
