// SPDX-License-Identifier: Apache-2.0
#include "storage/durableshadow.h"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace dengine::storage {

namespace {

// The shadow is SHADOW/tree (the durable namespace: the directories under the root and, in them,
// hard links to inode files) and SHADOW/inodes (one file per real inode: its durable data). A
// file's data sync writes its inode file; a directory's sync makes the tree's entries of that
// directory what the real directory holds then, each linked to its inode's file. A name thus
// always holds what its inode had synced, whatever it was called then: a rename without its
// directory's sync leaves the old name, a rename after it the new one, as on a disk.

std::string trimmed(std::string dir)
{
    while (dir.size() > 1 && dir.back() == '/')
        dir.pop_back();
    return dir;
}

IoStatus shadowFailure(const char *what, const std::string &path, int code)
{
    return IoStatus::error(code, std::string("durable shadow: ") + what + " " + path + ": " + std::strerror(code));
}

// A real inode's identity: its number and, where the file system keeps it, its birth time (inode
// numbers are reused soon after a file is deleted). Empty when the path does not exist.
std::string inodeKey(const std::string &path)
{
    struct statx sx {};
    if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_BTIME | STATX_TYPE, &sx) != 0 || !S_ISREG(sx.stx_mode))
        return {};
    std::string key = std::to_string(sx.stx_ino);
    if (sx.stx_mask & STATX_BTIME)
        key += "-" + std::to_string(sx.stx_btime.tv_sec) + "." + std::to_string(sx.stx_btime.tv_nsec);
    return key;
}

bool sameInode(const std::string &a, const std::string &b)
{
    struct stat sa {}, sb {};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Copies [offset, offset + length) of `from` (up to its end) into the file `to` at the same offset.
IoStatus copyRange(File &from, int to, const std::string &toPath, std::uint64_t offset, std::uint64_t length, std::vector<char> &buf)
{
    while (length > 0) {
        std::size_t got = 0;
        if (IoStatus st = from.read(buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(length, buf.size())), offset, got); !st)
            return st;
        if (got == 0)
            break;
        if (::pwrite(to, buf.data(), got, static_cast<off_t>(offset)) != static_cast<ssize_t>(got))
            return shadowFailure("write", toPath, errno ? errno : EIO);
        offset += got;
        length -= got;
    }
    return {};
}

class ShadowFs;

class ShadowFile final : public File {
public:
    ShadowFile(ShadowFs &fs, std::unique_ptr<File> real, std::string key);
    const std::string &path() const override { return m_real->path(); }
    IoStatus write(const void *data, std::size_t size, std::uint64_t offset) override
    {
        IoStatus st = m_real->write(data, size, offset);
        if (st && size > 0)
            m_dirty.emplace_back(offset, size);
        return st;
    }
    IoStatus read(void *data, std::size_t size, std::uint64_t offset, std::size_t &got) override { return m_real->read(data, size, offset, got); }
    IoStatus syncData() override
    {
        IoStatus st = m_real->syncData();
        return st ? copyToShadow() : st;
    }
    IoStatus truncate(std::uint64_t size) override { return m_real->truncate(size); }
    IoStatus preallocate(std::uint64_t size, bool writeZeros) override
    {
        IoStatus st = m_real->preallocate(size, writeZeros);
        return st && writeZeros ? copyToShadow() : st; // with zeros it synced the file
    }
    IoStatus size(std::uint64_t &out) override { return m_real->size(out); }

private:
    IoStatus copyToShadow();
    ShadowFs &m_fs;
    std::unique_ptr<File> m_real;
    const std::string m_key;
    std::vector<std::pair<std::uint64_t, std::size_t>> m_dirty; // written through this handle since its last sync
    bool m_copiedOnce = false;
};

class ShadowFs final : public FileSystem {
public:
    ShadowFs(FileSystem &real, std::string root, const std::string &shadow)
        : m_real(real), m_root(trimmed(std::move(root))), m_tree(trimmed(shadow) + "/tree"), m_inodes(trimmed(shadow) + "/inodes")
    {
        // A new shadow starts from what the root holds now: the harness makes one only for a new
        // node or right after a power cut put the durable state in place, which is all durable.
        const bool fresh = ::access(m_tree.c_str(), F_OK) != 0;
        (void)m_real.createDirectories(m_inodes);
        (void)m_real.createDirectories(m_tree);
        if (fresh)
            seed(m_root);
    }

    IoStatus open(const std::string &path, OpenMode mode, std::unique_ptr<File> &out) override
    {
        std::unique_ptr<File> real;
        IoStatus st = m_real.open(path, mode, real);
        if (!st || mode == OpenMode::ReadOnly || !inside(path)) {
            out = std::move(real);
            return st;
        }
        out = std::make_unique<ShadowFile>(*this, std::move(real), inodeKey(path));
        return {};
    }
    IoStatus rename(const std::string &from, const std::string &to) override { return m_real.rename(from, to); }
    IoStatus remove(const std::string &path) override { return m_real.remove(path); }

    IoStatus syncDirectory(const std::string &dir) override
    {
        if (!inside(dir))
            return m_real.syncDirectory(dir);
        // What the directory holds before its sync is durable after it (anything changed meanwhile
        // waits for its own directory sync).
        std::vector<std::pair<std::string, std::string>> entries; // name, inode key
        if (DIR *d = ::opendir(dir.c_str())) {
            while (const dirent *e = ::readdir(d)) {
                const std::string name = e->d_name;
                if (name == "." || name == "..")
                    continue;
                if (std::string key = inodeKey(trimmed(dir) + "/" + name); !key.empty())
                    entries.emplace_back(name, std::move(key));
            }
            ::closedir(d);
        }
        IoStatus st = m_real.syncDirectory(dir);
        if (!st)
            return st;
        const std::string shadowDir = treeOf(trimmed(dir));
        std::lock_guard lock(m_mutex);
        std::map<std::string, std::string> want(entries.begin(), entries.end());
        if (DIR *d = ::opendir(shadowDir.c_str())) {
            std::vector<std::string> gone;
            while (const dirent *e = ::readdir(d)) {
                const std::string name = e->d_name;
                struct stat sb {};
                if (!want.count(name) && ::lstat((shadowDir + "/" + name).c_str(), &sb) == 0 && S_ISREG(sb.st_mode))
                    gone.push_back(name);
            }
            ::closedir(d);
            for (const std::string &name : gone)
                ::unlink((shadowDir + "/" + name).c_str());
        }
        for (const auto &[name, key] : want)
            if (IoStatus bound = bind(shadowDir + "/" + name, key); !bound)
                return bound;
        return st;
    }

    IoStatus createDirectories(const std::string &dir) override
    {
        IoStatus st = m_real.createDirectories(dir);
        if (st && inside(dir))
            (void)m_real.createDirectories(treeOf(trimmed(dir)));
        return st;
    }
    IoStatus list(const std::string &dir, std::vector<std::string> &names) override { return m_real.list(dir, names); }
    bool exists(const std::string &path) override { return m_real.exists(path); }
    IoStatus lock(const std::string &path, std::unique_ptr<File> &out) override { return m_real.lock(path, out); }

    std::string inodePath(const std::string &key) const { return m_inodes + "/" + key; }

    // After a handle's first sync: a created file whose directory was not synced yet gets its name
    // anyway when the name is free (ext4 mostly keeps such files; the engine never relies on it).
    void bindIfFree(const std::string &realPath, const std::string &key)
    {
        std::lock_guard lock(m_mutex);
        const std::string name = treeOf(realPath);
        if (::access(name.c_str(), F_OK) != 0 && inodeKey(realPath) == key)
            (void)bind(name, key);
    }

private:
    bool inside(const std::string &path) const
    {
        return path == m_root || (path.size() > m_root.size() && path.compare(0, m_root.size(), m_root) == 0 && path[m_root.size()] == '/');
    }
    std::string treeOf(const std::string &path) const { return m_tree + path.substr(m_root.size()); }

    // Makes `name` a link to the inode file of `key` (an empty one if its data were never synced).
    IoStatus bind(const std::string &name, const std::string &key)
    {
        const std::string target = inodePath(key);
        if (sameInode(name, target))
            return {};
        const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return shadowFailure("create", target, errno);
        ::close(fd);
        const std::string tmp = name + ".shadow-link";
        ::unlink(tmp.c_str());
        if (::link(target.c_str(), tmp.c_str()) != 0)
            return shadowFailure("link", tmp, errno);
        if (::rename(tmp.c_str(), name.c_str()) != 0)
            return shadowFailure("rename", tmp + " to " + name, errno);
        return {};
    }

    void seed(const std::string &dir)
    {
        DIR *d = ::opendir(dir.c_str());
        if (!d)
            return;
        std::vector<std::string> names;
        while (const dirent *e = ::readdir(d))
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
                names.emplace_back(e->d_name);
        ::closedir(d);
        std::vector<char> buf(1 << 20);
        for (const std::string &name : names) {
            const std::string path = dir + "/" + name;
            struct stat sb {};
            if (::lstat(path.c_str(), &sb) != 0)
                continue;
            if (S_ISDIR(sb.st_mode)) {
                (void)m_real.createDirectories(treeOf(path));
                seed(path);
                continue;
            }
            const std::string key = inodeKey(path);
            std::unique_ptr<File> from;
            if (key.empty() || !m_real.open(path, OpenMode::ReadOnly, from))
                continue;
            const int to = ::open(inodePath(key).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (to < 0)
                continue;
            (void)copyRange(*from, to, inodePath(key), 0, static_cast<std::uint64_t>(sb.st_size), buf);
            (void)::ftruncate(to, sb.st_size);
            ::close(to);
            (void)bind(treeOf(path), key);
        }
    }

    FileSystem &m_real;
    const std::string m_root, m_tree, m_inodes;
    std::mutex m_mutex; // the tree's names
};

ShadowFile::ShadowFile(ShadowFs &fs, std::unique_ptr<File> real, std::string key) : m_fs(fs), m_real(std::move(real)), m_key(std::move(key)) {}

IoStatus ShadowFile::copyToShadow()
{
    if (m_key.empty())
        return {};
    // One handle writes an inode at a time (the log's writer, a snapshot's writer), so its inode
    // file needs no lock of the file system's.
    const std::string target = m_fs.inodePath(m_key);
    const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return shadowFailure("open", target, errno);
    std::uint64_t size = 0;
    IoStatus st = m_real->size(size);
    std::vector<std::pair<std::uint64_t, std::size_t>> extents;
    if (!m_copiedOnce) // fdatasync also made durable what other writers (an earlier process) left
        extents.emplace_back(0, static_cast<std::size_t>(size));
    else
        extents.swap(m_dirty);
    m_dirty.clear();
    m_copiedOnce = true;
    static thread_local std::vector<char> buf(1 << 20);
    for (const auto &[offset, length] : extents)
        if (st)
            st = copyRange(*m_real, fd, target, offset, length, buf);
    if (st && ::ftruncate(fd, static_cast<off_t>(size)) != 0)
        st = shadowFailure("truncate", target, errno);
    ::close(fd);
    if (st)
        m_fs.bindIfFree(m_real->path(), m_key);
    return st;
}

} // namespace

std::unique_ptr<FileSystem> makeDurableShadow(FileSystem &real, std::string root, std::string shadow)
{
    return std::make_unique<ShadowFs>(real, std::move(root), shadow);
}

} // namespace dengine::storage
