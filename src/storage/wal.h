// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/storage.h"
#include "raft/types.h"
#include "storage/filesystem.h"
#include "storage/record.h"

#include <cstdint>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace dengine::storage {

// Why a storage operation failed. Fatal for the node in every case but Locked and Config: after
// an IO error (a failed fsync above all) the state on disk is unknown and the node must stop.
enum class StorageErrorCode { None, Locked, Corrupt, Io, NoSpace, Config };

struct StorageStatus {
    StorageErrorCode code = StorageErrorCode::None;
    std::string message; // names the file and, for damage, the offset
    bool ok() const { return code == StorageErrorCode::None; }
    explicit operator bool() const { return ok(); }
    static StorageStatus fromIo(const IoStatus &io);
};

struct WalOptions {
    std::string dir;                         // the data directory; the log lives in dir/wal
    std::uint64_t segmentBytes = 64ULL << 20; // segments are preallocated to this size
    std::uint64_t cacheBytes = 64ULL << 20;   // recent entries kept in memory for reads
    // See File::preallocate. With background preparation, a log that fills segments within seconds
    // (bandwidth-bound) gets plain preallocated ones instead: the zeros would double its writes.
    bool zeroFillSegments = true;
    // Prepare the next segment (create, preallocate, zero-fill, sync) on a helper thread while the
    // current one fills, so switching segments costs a header and a rename. Only with the real
    // file system: with a custom one (tests) the same preparation runs at the switch instead.
    bool prepareInBackground = true;
    // How many compacted segment files to keep for reuse as later segments. Writing over a file's
    // old blocks needs no extent updates and no zeros, so a recycled segment takes large appends
    // at the disk's overwrite bandwidth. 0 deletes compacted segments.
    std::size_t recycleSegments = 4;
    // Inspect only: nothing is created, cut or written (a torn tail is reported, not cut), and
    // appends fail. For `dengine-ctl wal check` on a stopped node's directory.
    bool readOnly = false;
    FileSystem *fs = nullptr;                 // default: FileSystem::posix()
    raft::ConfState bootstrap;                // the voters of a new log (ignored when one exists)
    // A new log may start with no voters: a node joining a running cluster learns the members from
    // its leader (the first snapshot or configuration entry it receives).
    bool joining = false;
    // A deliberately broken mode, only for proving a fault harness's checkers: sync() reports the
    // log durable at once but really syncs at most once per this many milliseconds, as a "fsync
    // every second" mode would, so a power cut loses acknowledged entries. 0 (always): off.
    int testAckBeforeSyncMs = 0;
};

// The files of DIR/wal: "<16 hex digits>.wal" is a segment, "<16 hex digits>.free" a compacted
// segment kept for reuse. Sets the number and returns what the name is.
enum class WalFileKind { Other, Segment, Free };
WalFileKind parseWalFileName(const std::string &name, std::uint64_t &sequence);

// What recovery found and did, for logs and `dengine-ctl wal check`.
struct RecoveryReport {
    std::size_t segments = 0;
    std::uint64_t entries = 0;
    std::uint64_t bytesScanned = 0;
    bool created = false;
    std::string tornTail; // empty, or which file and offset a torn tail was cut at, and how much
    std::size_t recycledFiles = 0; // compacted segment files waiting for reuse
};

// The segmented write-ahead log: the durable log, hard state and configuration of one node.
//
// Layout: DIR/wal/<16 hex digits>.wal, numbered from 1 without gaps; each begins with a segment
// header naming its number and the (index, term) the log had reached, then the latest hard state,
// and every one but the last ends with a segment-end record. Entries are appended as records; an
// entry whose index is at or below the last one replaces the suffix from that index on (a Raft
// conflict), in memory at once and on disk by being later. Compacted segments wait as
// DIR/wal/<16 hex digits>.free to be reused (recycled) as later segments.
//
// Telling a torn tail from damage: the first append after each sync starts with a Synced record
// naming how far the segment was durable. Recovery stops at the first record that does not check
// out; if a Synced record further on names a point past it, the damage lies in data that was
// durable, and recovery refuses to go on. Otherwise the bad record is the tail of a write that was
// never made durable (so never acknowledged), and it is cut. In a fresh segment, where unwritten
// space reads as zeros, a bad record with no zero sector is damage whatever follows. Left open: a
// bit flip in the last batch written before a crash, before the next append's Synced record, is
// indistinguishable from a torn write in a recycled segment, and is cut like one.
//
// Threads: one writer thread calls append/sync/compact; any thread may read (entries, term, the
// index bounds). Reads take a short lock and read files positionally, so they never wait for a
// sync. Durability: nothing is durable until sync() returns ok; the raft::Storage view below shows
// only synced entries.
class Wal {
public:
    // Opens (recovering) or creates the log in options.dir. Stops with Corrupt on damage before the
    // tail, naming the file and offset; cuts a torn tail and says so in the report.
    static StorageStatus open(const WalOptions &options, std::unique_ptr<Wal> &out, RecoveryReport *report = nullptr);
    ~Wal();

    // ---- writer thread ----
    // Frames and writes the entries (replacing any suffix from entries.front().index) and then the
    // hard state. Not durable until sync().
    StorageStatus append(const std::vector<raft::Entry> &entries, const std::optional<raft::HardState> &hardState);
    // One fdatasync covering every append since the previous sync (and segment switches). The one
    // call WalOptions::testAckBeforeSyncMs breaks: the log's own structural syncs stay real.
    StorageStatus sync();
    // Deletes whole segments that hold only entries at or below `index` (covered by a snapshot at
    // (index, term)). Records the new log start first, so a crash in between loses nothing.
    StorageStatus compact(raft::Index index, raft::Term term);
    // A snapshot from the leader at (index, term) replaced the whole log: from now on the log is
    // empty after it (any entry, even past `index`, is dropped) and continues at index + 1. Durable
    // when it returns ok: the record is synced first, then the older segments go.
    StorageStatus reset(raft::Index index, raft::Term term);

    // ---- any thread ----
    raft::Index firstIndex() const;
    raft::Index lastIndex() const;       // including unsynced entries
    raft::Index syncedLastIndex() const; // what a crash now would keep, at least
    std::optional<raft::Term> term(raft::Index index) const;
    raft::HardState hardState() const;
    raft::ConfState confState() const;
    // Entries in [lo, hi), at most maxBytes (at least one); false if lo is compacted or out of range,
    // or the file read failed (then `error` says why).
    bool entries(raft::Index lo, raft::Index hi, std::uint64_t maxBytes, std::vector<raft::Entry> &out, StorageStatus *error = nullptr) const;
    std::size_t segmentCount() const;
    // The failure that made the log unusable, if any: every later write fails with it too.
    StorageStatus failure() const;

private:
    struct Segment {
        std::uint64_t sequence = 0;
        std::string path;
        std::shared_ptr<File> file;
        std::uint64_t writeOffset = 0; // end of valid data
        raft::Index maxIndex = 0;      // highest entry index written into it (0 if none)
    };
    struct Location {
        raft::Term term;
        std::uint64_t segment; // segment sequence number
        std::uint64_t offset;
        std::uint32_t size; // record size, padding included
    };

    Wal() = default;
    StorageStatus recover(RecoveryReport &report);
    StorageStatus createFirstSegment(RecoveryReport &report);
    struct PreparedFile {
        std::uint64_t sequence = 0;
        IoStatus status;
        std::unique_ptr<File> file;
        bool recycled = false;
    };
    StorageStatus startSegment(std::uint64_t sequence);
    PreparedFile prepareFile(std::uint64_t sequence, bool zeroFill);
    bool takeRecycled(std::uint64_t sequence, PreparedFile &p);
    std::string freePath(std::uint64_t sequence) const;
    void prepareNext(std::uint64_t sequence);
    StorageStatus fail(StorageStatus st);
    StorageStatus switchSegment();
    StorageStatus dropSegments(const std::vector<std::pair<std::uint64_t, std::string>> &doomed, std::size_t kept);
    std::string numberedPath(std::uint64_t sequence, const char *suffix) const;
    std::string segmentPath(std::uint64_t sequence) const;
    bool readEntry(const Location &loc, raft::Entry &out, StorageStatus *error) const;

    WalOptions m_opts;
    FileSystem *m_fs = nullptr;
    std::string m_walDir;
    std::unique_ptr<File> m_lock;

    mutable std::mutex m_mutex; // guards everything below against concurrent readers
    std::deque<Segment> m_segments;
    raft::Index m_first = 1;       // first index in the log
    raft::Term m_startTerm = 0;    // term of m_first - 1
    std::deque<Location> m_index;  // m_index[i - m_first] locates entry i
    raft::Index m_synced = 0;      // synced prefix of the log
    raft::HardState m_hardState;
    raft::ConfState m_confState;
    std::deque<raft::Entry> m_cache; // the most recent entries, contiguous, ending at lastIndex()
    std::uint64_t m_cacheBytes = 0;
    std::vector<std::shared_ptr<File>> m_unsynced; // files written since the last sync
    std::deque<std::uint64_t> m_free;              // numbers of the segment files kept for reuse, oldest first
    StorageStatus syncNow();
    std::chrono::steady_clock::time_point m_lastRealSync{}; // testAckBeforeSyncMs
    std::uint64_t m_durableOffset = 0;             // writer thread: the last segment is durable up to here
    std::uint64_t m_markedOffset = 0;              // writer thread: ... and a Synced record says so up to here
    bool m_startNext = false;                      // recovery found the last segment ended: start a new one
    std::string m_writeBuffer;                     // writer thread only
    std::vector<std::uint64_t> m_writeOffsets;     // writer thread only
    bool m_background = false;
    std::optional<std::chrono::steady_clock::time_point> m_segmentStarted; // writer thread only
    // The next segment being prepared on a helper thread. Declared last: destroyed (waited for)
    // before anything its thread reads.
    std::future<PreparedFile> m_next;
    StorageStatus m_failure;
};

// The raft::Storage the core reads: a view of a Wal that shows synced entries only, and the newest
// durable snapshot (metadata only: its file is what a leader streams to a follower).
//
// Threads: the thread that steps the core (setSnapshot() too).
class WalStorage final : public raft::Storage {
public:
    explicit WalStorage(const Wal &wal) : m_wal(wal) {}
    raft::InitialState initialState() const override;
    raft::StorageError entries(raft::Index lo, raft::Index hi, std::uint64_t maxBytes, std::vector<raft::Entry> &out) const override;
    raft::StorageError term(raft::Index index, raft::Term &out) const override;
    raft::Index firstIndex() const override { return m_wal.firstIndex(); }
    raft::Index lastIndex() const override { return m_wal.syncedLastIndex(); }
    raft::Snapshot snapshot() const override { return raft::Snapshot{m_snapshot, {}}; }
    // The newest snapshot on disk (taken here or installed from the leader), its file durable.
    void setSnapshot(const raft::SnapshotMetadata &metadata) { m_snapshot = metadata; }
    const raft::SnapshotMetadata &snapshotMetadata() const { return m_snapshot; }

private:
    const Wal &m_wal;
    raft::SnapshotMetadata m_snapshot;
};

} // namespace dengine::storage
