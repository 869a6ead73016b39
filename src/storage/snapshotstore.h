// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"
#include "storage/filesystem.h"
#include "storage/wal.h"

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dengine::storage {

// Snapshot files: DIR/snap/<index>-<term>.snap (16 hex digits each).
//
// File format, version 2 (little-endian):
//   header:  u64 magic "DENGSNP1", u32 version (2), u32 reserved (0), u64 index, u64 term,
//            u32 configuration length, the configuration (raft::encodeConfState: voters, learners,
//            outgoing voters, auto-leave);
//   data:    the state machine's bytes, opaque here;
//   trailer: u64 data length, u32 CRC-32C of every byte before it.
// The length sits in the trailer so that a snapshot streams to disk without knowing its size first,
// and a file is checked by reading it once front to back. The file is what travels between nodes
// too: a snapshot sent to a follower is this file, byte for byte, checked end to end by its CRC.
//
// Writes go to a temporary name, are synced, renamed into place, and the directory is synced: a
// crash leaves either the old set of snapshots or the new one, never a half-written snapshot under
// a real name. Damaged snapshots are renamed to "<name>.damaged" (kept for inspection, never read).
//
// Threads: every member may be called from any thread (a mutex guards the directory's names).
class SnapshotStore {
public:
    explicit SnapshotStore(std::string dataDir, FileSystem *fs = nullptr, std::size_t keep = 2);

    const std::string &directory() const { return m_dir; }
    FileSystem &fileSystem() const { return *m_fs; }
    std::string pathOf(raft::Index index, raft::Term term) const;
    // Where a snapshot being received from node `from` is written until it is checked.
    std::string incomingPath(raft::NodeId from) const;
    // Where a received snapshot waits, checked, until the core installs it (then adopt()).
    std::string receivedPath(raft::Index index, raft::Term term) const { return pathOf(index, term) + ".recv"; }

    // Durably stores a snapshot held in memory (see SnapshotWriter for one that streams), then
    // deletes all but the newest `keep` snapshots.
    StorageStatus save(const raft::Snapshot &snapshot);
    // The snapshots present, newest first (by index, then term). Names only: nothing is checked.
    StorageStatus list(std::vector<std::pair<raft::Index, raft::Term>> &out) const;
    // The snapshot at (index, term), checked, its data in memory.
    StorageStatus load(raft::Index index, raft::Term term, raft::Snapshot &out) const;
    // The newest snapshot, checked. A damaged newest snapshot is an error naming the file: whether
    // an older one may stand in depends on the log (the runtime decides; see quarantine()).
    StorageStatus loadLatest(std::optional<raft::Snapshot> &out) const;
    // Takes a checked file (a snapshot received from the leader, see inspect()) as the snapshot
    // it holds: renamed to its name, directory synced, older ones beyond `keep` deleted.
    StorageStatus adopt(const std::string &path, const raft::SnapshotMetadata &metadata);
    // Renames a damaged snapshot out of the way ("<name>.damaged"), so it is never read again.
    StorageStatus quarantine(raft::Index index, raft::Term term);
    // Deletes temporary, incoming and received files that a crash or a dropped transfer left behind.
    void removeLeftovers();

    // Reads the whole file at `path` once and checks it: its format, its CRC, and (when
    // `expected` is given) that it holds that snapshot. Gives the metadata and where the data lies.
    static StorageStatus inspect(FileSystem &fs, const std::string &path, raft::SnapshotMetadata &metadata,
                                 std::uint64_t *dataOffset = nullptr, std::uint64_t *dataLength = nullptr,
                                 const raft::SnapshotMetadata *expected = nullptr);

private:
    friend class SnapshotWriter;
    StorageStatus prune(); // m_mutex held

    std::string m_dir;
    FileSystem *m_fs;
    std::size_t m_keep;
    mutable std::mutex m_mutex;
};

// Writes one snapshot file as its data is produced, in pieces, with bounded memory.
//
// Threads: one thread at a time (typically a helper thread serializing a frozen state).
class SnapshotWriter {
public:
    // Starts the temporary file of the snapshot at `metadata`.
    static StorageStatus create(SnapshotStore &store, const raft::SnapshotMetadata &metadata, std::unique_ptr<SnapshotWriter> &out);
    ~SnapshotWriter(); // without commit(): the temporary file is removed

    StorageStatus append(std::string_view bytes);
    // Writes the trailer, syncs, renames into place, syncs the directory, deletes old snapshots.
    // `fileBytes` (optional) gets the file's size.
    StorageStatus commit(std::uint64_t *fileBytes = nullptr);

private:
    SnapshotWriter(SnapshotStore &store, raft::SnapshotMetadata metadata) : m_store(store), m_meta(std::move(metadata)) {}
    StorageStatus flush();

    SnapshotStore &m_store;
    raft::SnapshotMetadata m_meta;
    std::unique_ptr<File> m_file;
    std::string m_tmp;
    std::string m_buffer;
    static constexpr std::uint64_t SyncEveryBytes = 8ULL << 20;
    std::uint64_t m_offset = 0;     // bytes written to the file
    std::uint64_t m_syncedTo = 0;   // ... and synced (every SyncEveryBytes, then at commit)
    std::uint64_t m_dataBytes = 0;  // data bytes appended
    std::uint32_t m_crc = 0;
    bool m_committed = false;
};

// Parses the header of a snapshot file (bytes from its start): the metadata and the header's
// length; false when the bytes do not begin a snapshot of a known version (`why` says how).
bool parseSnapshotHeader(std::string_view bytes, raft::SnapshotMetadata &metadata, std::size_t &headerBytes, std::string &why);
inline constexpr std::size_t SnapshotTrailerBytes = 12;

// What a node starts from: the newest intact snapshot the log reaches back to, and the log after it.
struct StartPoint {
    std::optional<raft::SnapshotMetadata> snapshot; // none: the log from its first entry
    bool logReset = false; // an install from the leader was cut short: the log was reset to the snapshot
    std::vector<std::string> notes; // what was passed over and why (too old, damaged and set aside)
};

// Chooses and restores the start point, newest snapshot first. A snapshot older than the log's
// start would leave a gap and is passed over; a damaged one (format, CRC, or `restore` refusing its
// data) is quarantined and the next older one tried. When the log does not hold the chosen
// snapshot's (index, term), an install was cut short after the file was adopted: the log is reset
// to it. An error (Corrupt) when the log was compacted and no intact snapshot reaches back to it:
// the node's state is lost; an error of the file system's kind when a file cannot be read.
// `restore` replaces the state machine's state by the snapshot's (false with `why`: damaged data).
StorageStatus openStartPoint(SnapshotStore &snapshots, Wal &wal, const std::function<bool(const raft::Snapshot &, std::string &why)> &restore,
                             StartPoint &out);

} // namespace dengine::storage
