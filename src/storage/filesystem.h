// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dengine::storage {

// The outcome of a file operation: ok, or the errno with a sentence naming the operation, the path
// and (for reads and writes) the offset. Storage code never throws for IO.
class IoStatus {
public:
    IoStatus() = default;
    static IoStatus error(int code, std::string message) { return IoStatus(code, std::move(message)); }
    bool ok() const { return m_code == 0; }
    explicit operator bool() const { return ok(); }
    int code() const { return m_code; }
    const std::string &message() const { return m_message; }

private:
    IoStatus(int code, std::string message) : m_code(code), m_message(std::move(message)) {}
    int m_code = 0;
    std::string m_message;
};

// One open file. Reads and writes are positional, so one file may be read by one thread while
// another appends to it at other offsets.
class File {
public:
    virtual ~File() = default;
    virtual const std::string &path() const = 0;
    // Writes all `size` bytes at `offset`, or fails (a short write is reported as an error).
    virtual IoStatus write(const void *data, std::size_t size, std::uint64_t offset) = 0;
    // Reads up to `size` bytes at `offset`; `got` says how many (fewer only at the end of file).
    virtual IoStatus read(void *data, std::size_t size, std::uint64_t offset, std::size_t &got) = 0;
    // fdatasync: the data written so far (and the size) are durable when this returns ok. After a
    // failure the page cache can no longer be trusted: the caller must treat the file as lost.
    virtual IoStatus syncData() = 0;
    virtual IoStatus truncate(std::uint64_t size) = 0;
    // Makes the file `size` bytes long, reserving the space (a full disk fails here rather than
    // mid-append); the new space reads as zeros. With `writeZeros` the zeros are also written and
    // synced, so that later overwrites need no metadata update in syncData (faster small syncs on
    // most file systems, at the price of writing the segment twice).
    virtual IoStatus preallocate(std::uint64_t size, bool writeZeros) = 0;
    virtual IoStatus size(std::uint64_t &out) = 0;
};

enum class OpenMode { ReadOnly, ReadWrite, CreateNew };

// The file system under the storage: POSIX in production, a fault-injecting one in tests.
class FileSystem {
public:
    virtual ~FileSystem() = default;
    virtual IoStatus open(const std::string &path, OpenMode mode, std::unique_ptr<File> &out) = 0;
    virtual IoStatus rename(const std::string &from, const std::string &to) = 0;
    virtual IoStatus remove(const std::string &path) = 0;
    // fsync of a directory: makes creations, renames and removals in it durable.
    virtual IoStatus syncDirectory(const std::string &dir) = 0;
    virtual IoStatus createDirectories(const std::string &dir) = 0;
    // Names (not paths) of the regular files in `dir`, sorted.
    virtual IoStatus list(const std::string &dir, std::vector<std::string> &names) = 0;
    virtual bool exists(const std::string &path) = 0;
    // An exclusive advisory lock on `path` (created if missing), held until `out` is destroyed.
    // Fails with EWOULDBLOCK when another process holds it.
    virtual IoStatus lock(const std::string &path, std::unique_ptr<File> &out) = 0;

    // The real file system. Thread-safe.
    static FileSystem &posix();
};

std::string joinPath(const std::string &dir, const std::string &name);

} // namespace dengine::storage
