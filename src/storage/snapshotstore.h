// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"
#include "storage/filesystem.h"
#include "storage/wal.h"

#include <optional>
#include <string>

namespace dengine::storage {

// Snapshot files: DIR/snap/<index>-<term>.snap (16 hex digits each).
//
// File format (little-endian): magic "DENGSNP1", u32 version, u32 reserved, u64 index, u64 term,
// u64 voter count and the voter ids, u64 data length, the data, and a CRC-32C of everything before.
// Written as a temporary file, synced, renamed into place, and the directory synced: a crash leaves
// either the old set of snapshots or the new one, never a half-written snapshot under a real name.
//
// Threads: not thread-safe; one thread (the runtime's writer) uses it.
class SnapshotStore {
public:
    explicit SnapshotStore(std::string dataDir, FileSystem *fs = nullptr, std::size_t keep = 2);

    // Durably stores the snapshot, then deletes all but the newest `keep` snapshots.
    StorageStatus save(const raft::Snapshot &snapshot);
    // The newest snapshot, verified. A damaged newest snapshot is an error naming the file: the log
    // may already be compacted up to it, so an older one cannot silently stand in.
    StorageStatus loadLatest(std::optional<raft::Snapshot> &out);

private:
    std::string m_dir;
    FileSystem *m_fs;
    std::size_t m_keep;
};

} // namespace dengine::storage
