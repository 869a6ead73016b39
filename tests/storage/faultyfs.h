// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "storage/filesystem.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dengine::storage::test {

// The kinds of calls that count as "operation points": the calls that change what a disk holds or
// will hold after a power cut. Reads, opens of existing files, list() and exists() are not counted.
enum class OpKind { Write, Truncate, Preallocate, SyncData, Rename, Remove, SyncDirectory };
const char *toString(OpKind kind);

// What a power cut does to data that was written but not yet made durable by File::syncData().
enum class UnsyncedData {
    Drop,        // every unsynced write is lost
    Keep,        // every unsynced write reached the disk
    TornSectors, // a random subset of the changed 512-byte sectors reached the disk (in any order)
};
const char *toString(UnsyncedData mode);

struct OpTrace {
    std::uint64_t number = 0; // 1-based operation point
    OpKind kind = OpKind::Write;
    std::string path;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
    std::string describe() const;
};

// An in-memory FileSystem that models a disk under a page cache, for crash and fault tests.
//
//  - Every file has `synced` contents (what the disk holds) and `cached` contents (what reads see).
//    write/truncate change the cache; File::syncData() copies the cache to the disk.
//  - The directory namespace has a current view and a durable view: open(CreateNew), rename and
//    remove change the current view; syncDirectory(dir) makes the current entries of `dir` durable.
//    Directories themselves (createDirectories) are always durable.
//  - crash() replaces the current state by what a power cut leaves: the durable namespace, each
//    file's synced data plus, per UnsyncedData, none/all/some sectors of its unsynced data. Handles
//    opened before the crash fail every call afterwards, and all locks are released.
//  - Every write/truncate/preallocate/syncData/rename/remove/syncDirectory call is an operation
//    point, numbered from 1 (counting continues across crash()). crashAtOperation(n): operation n
//    and everything after it do not happen (they fail with EIO) until crash() is called.
//    failOperation(n, errno) and failNext(kind, errno) make one operation fail without effect; a
//    syncData that fails with EIO also throws away the file's unsynced data (what Linux does after
//    a writeback error: the dirty pages are dropped and the next fsync succeeds).
//  - lock(path): exclusive; a second lock of the same path fails with EWOULDBLOCK until the
//    returned File is destroyed (or a crash).
//
// Thread-safe (one mutex). Handles keep the shared state alive, so they may outlive the object.
class FaultyFileSystem final : public FileSystem {
public:
    FaultyFileSystem();
    ~FaultyFileSystem() override;
    FaultyFileSystem(const FaultyFileSystem &) = delete;
    FaultyFileSystem &operator=(const FaultyFileSystem &) = delete;

    // ---- FileSystem ----
    IoStatus open(const std::string &path, OpenMode mode, std::unique_ptr<File> &out) override;
    IoStatus rename(const std::string &from, const std::string &to) override;
    IoStatus remove(const std::string &path) override;
    IoStatus syncDirectory(const std::string &dir) override;
    IoStatus createDirectories(const std::string &dir) override;
    IoStatus list(const std::string &dir, std::vector<std::string> &names) override;
    bool exists(const std::string &path) override;
    IoStatus lock(const std::string &path, std::unique_ptr<File> &out) override;

    // ---- operation points and faults ----
    std::uint64_t operations() const; // operation points so far
    // The last `keep` operations, oldest first (all of them if keep is 0). The trace is always on.
    std::vector<OpTrace> trace(std::size_t keep = 0) const;
    void crashAtOperation(std::uint64_t n);
    bool crashed() const; // the crash point was reached and crash() was not called yet
    void failOperation(std::uint64_t n, int error);
    // The next operation of `kind` (after `skip` others of that kind) on a path containing
    // `pathPart` fails with `error`.
    void failNext(OpKind kind, int error, std::uint64_t skip = 0, const std::string &pathPart = {});
    // Called with the number and trace of every operation point before it runs (no lock held).
    void setObserver(std::function<void(const OpTrace &)> observer);

    // ---- power cuts ----
    void crash(UnsyncedData mode, std::uint64_t seed = 0);
    // What crash(mode, seed) would leave, as a new file system; this one is not changed.
    std::unique_ptr<FaultyFileSystem> crashedCopy(UnsyncedData mode, std::uint64_t seed = 0) const;
    // What the machine has if only the process dies: an exact copy of the disk and the page cache
    // (unsynced data and namespace changes included), with no locks held and no faults armed.
    std::unique_ptr<FaultyFileSystem> processDeathCopy() const;

    // ---- inspection and damage "after the fact" ----
    // These act on the durable and the current state alike, like someone editing the disk while
    // the process is down. They do not count as operation points. false if the file is missing.
    std::vector<std::string> files() const; // current paths, sorted
    std::optional<std::string> contents(const std::string &path) const;       // current (cached) contents
    std::optional<std::string> syncedContents(const std::string &path) const; // what the disk holds
    bool flipBit(const std::string &path, std::uint64_t offset, int bit = 0);
    bool truncateFile(const std::string &path, std::uint64_t size);
    bool deleteFile(const std::string &path);
    bool renameFile(const std::string &from, const std::string &to);
    // Creates or replaces a file with durable contents (its directory is created as well).
    void putFile(const std::string &path, const std::string &bytes);
    // Number of files with unsynced data or unsynced namespace changes (0: a crash changes nothing).
    std::size_t unsyncedCount() const;

    struct State;

private:
    explicit FaultyFileSystem(std::shared_ptr<State> state);
    std::shared_ptr<State> m_state;
};

} // namespace dengine::storage::test
