// SPDX-License-Identifier: Apache-2.0
#include "storage/durableshadow.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace dengine::storage {

namespace {

std::string parentOf(const std::string &path)
{
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

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

// One file (an inode): where its durable data live in the shadow.
struct Node {
    std::string shadowPath;
};

class ShadowFs;

class ShadowFile final : public File {
public:
    ShadowFile(ShadowFs &fs, std::unique_ptr<File> real, std::shared_ptr<Node> node) : m_fs(fs), m_real(std::move(real)), m_node(std::move(node)) {}
    const std::string &path() const override { return m_real->path(); }
    IoStatus write(const void *data, std::size_t size, std::uint64_t offset) override
    {
        IoStatus st = m_real->write(data, size, offset);
        if (st && size > 0)
            m_dirty.emplace_back(offset, size);
        return st;
    }
    IoStatus read(void *data, std::size_t size, std::uint64_t offset, std::size_t &got) override { return m_real->read(data, size, offset, got); }
    IoStatus syncData() override;
    IoStatus truncate(std::uint64_t size) override { return m_real->truncate(size); }
    IoStatus preallocate(std::uint64_t size, bool writeZeros) override
    {
        IoStatus st = m_real->preallocate(size, writeZeros);
        if (st && writeZeros) // it synced the file
            return copyToShadow();
        return st;
    }
    IoStatus size(std::uint64_t &out) override { return m_real->size(out); }

private:
    IoStatus copyToShadow();
    ShadowFs &m_fs;
    std::unique_ptr<File> m_real;
    std::shared_ptr<Node> m_node;
    std::vector<std::pair<std::uint64_t, std::size_t>> m_dirty; // written since the last sync
    bool m_copiedOnce = false;
    friend class ShadowFs;
};

class ShadowFs final : public FileSystem {
public:
    ShadowFs(FileSystem &real, std::string root, std::string shadow) : m_real(real), m_root(trimmed(std::move(root))), m_shadow(trimmed(std::move(shadow)))
    {
        ::mkdir(m_shadow.c_str(), 0755);
    }

    IoStatus open(const std::string &path, OpenMode mode, std::unique_ptr<File> &out) override
    {
        std::unique_ptr<File> real;
        IoStatus st = m_real.open(path, mode, real);
        if (!st || mode == OpenMode::ReadOnly || !inside(path)) {
            out = std::move(real);
            return st;
        }
        std::lock_guard lock(m_mutex);
        std::shared_ptr<Node> &node = m_nodes[path];
        if (!node || mode == OpenMode::CreateNew)
            node = std::make_shared<Node>(Node{shadowOf(path)});
        out = std::make_unique<ShadowFile>(*this, std::move(real), node);
        return {};
    }

    IoStatus rename(const std::string &from, const std::string &to) override
    {
        IoStatus st = m_real.rename(from, to);
        if (!st || !inside(from) || !inside(to))
            return st;
        std::lock_guard lock(m_mutex);
        std::shared_ptr<Node> node = takeNode(from);
        m_nodes[to] = node;
        m_pending[trimmed(parentOf(to))].push_back(Pending{node, shadowOf(to)});
        if (trimmed(parentOf(from)) != trimmed(parentOf(to)))
            m_pending[trimmed(parentOf(from))]; // the old name goes with the new one's directory
        return st;
    }

    IoStatus remove(const std::string &path) override
    {
        IoStatus st = m_real.remove(path);
        if (!st || !inside(path))
            return st;
        std::lock_guard lock(m_mutex);
        m_pending[trimmed(parentOf(path))].push_back(Pending{takeNode(path), std::string()});
        return st;
    }

    IoStatus syncDirectory(const std::string &dir) override
    {
        IoStatus st = m_real.syncDirectory(dir);
        if (!st || !inside(dir))
            return st;
        std::lock_guard lock(m_mutex);
        const auto it = m_pending.find(trimmed(dir));
        if (it == m_pending.end())
            return st;
        std::vector<Pending> ops;
        ops.swap(it->second);
        m_pending.erase(it);
        for (const Pending &op : ops) {
            const bool owns = ownsShadow(*op.node);
            if (op.target.empty()) { // a removal
                if (owns) {
                    ::unlink(op.node->shadowPath.c_str());
                    m_owner.erase(op.node->shadowPath);
                }
                continue;
            }
            if (owns && ::access(op.node->shadowPath.c_str(), F_OK) == 0) {
                if (::rename(op.node->shadowPath.c_str(), op.target.c_str()) != 0)
                    return shadowFailure("rename", op.node->shadowPath + " to " + op.target, errno);
            } else {
                // Renamed before any of its data was durable: the new name holds an empty file.
                const int fd = ::open(op.target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0)
                    return shadowFailure("create", op.target, errno);
                ::close(fd);
            }
            m_owner.erase(op.node->shadowPath);
            op.node->shadowPath = op.target;
            m_owner[op.target] = op.node;
        }
        return st;
    }

    IoStatus createDirectories(const std::string &dir) override
    {
        IoStatus st = m_real.createDirectories(dir);
        if (st && inside(dir))
            (void)m_real.createDirectories(shadowOf(dir));
        return st;
    }
    IoStatus list(const std::string &dir, std::vector<std::string> &names) override { return m_real.list(dir, names); }
    bool exists(const std::string &path) override { return m_real.exists(path); }
    IoStatus lock(const std::string &path, std::unique_ptr<File> &out) override { return m_real.lock(path, out); }

    // Brings the shadow of `f`'s file up to what a sync just made durable.
    IoStatus copy(ShadowFile &f)
    {
        std::lock_guard lock(m_mutex);
        Node &node = *f.m_node;
        const bool owner = ownsShadow(node);
        const int fd = ::open(node.shadowPath.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (owner ? 0 : O_TRUNC), 0644);
        if (fd < 0)
            return shadowFailure("open", node.shadowPath, errno);
        m_owner[node.shadowPath] = f.m_node;
        std::uint64_t size = 0;
        IoStatus st = f.m_real->size(size);
        std::vector<std::pair<std::uint64_t, std::size_t>> extents;
        if (!f.m_copiedOnce || !owner)
            extents.emplace_back(0, static_cast<std::size_t>(size));
        else
            extents.swap(f.m_dirty);
        f.m_dirty.clear();
        f.m_copiedOnce = true;
        std::vector<char> buf(1 << 20);
        for (auto [offset, length] : extents) {
            while (st && length > 0 && offset < size) {
                std::size_t got = 0;
                st = f.m_real->read(buf.data(), std::min(length, buf.size()), offset, got);
                if (!st || got == 0)
                    break;
                if (::pwrite(fd, buf.data(), got, static_cast<off_t>(offset)) != static_cast<ssize_t>(got))
                    st = shadowFailure("write", node.shadowPath, errno ? errno : EIO);
                offset += got;
                length -= got;
            }
        }
        if (st && ::ftruncate(fd, static_cast<off_t>(size)) != 0)
            st = shadowFailure("truncate", node.shadowPath, errno);
        ::close(fd);
        return st;
    }

private:
    struct Pending {
        std::shared_ptr<Node> node;
        std::string target; // empty: a removal
    };
    bool inside(const std::string &path) const { return path == m_root || (path.size() > m_root.size() && path.compare(0, m_root.size(), m_root) == 0 && path[m_root.size()] == '/'); }
    std::string shadowOf(const std::string &path) const { return m_shadow + path.substr(m_root.size()); }
    std::shared_ptr<Node> takeNode(const std::string &path)
    {
        const auto it = m_nodes.find(path);
        if (it == m_nodes.end())
            return std::make_shared<Node>(Node{shadowOf(path)});
        std::shared_ptr<Node> node = it->second;
        m_nodes.erase(it);
        return node;
    }
    // A shadow file belongs to the last node that synced to it or was renamed onto it; one nobody
    // claimed in this process (written by an earlier one) belongs to whoever has its name.
    bool ownsShadow(const Node &node) const
    {
        const auto it = m_owner.find(node.shadowPath);
        return it == m_owner.end() || it->second.get() == &node;
    }

    FileSystem &m_real;
    const std::string m_root, m_shadow;
    std::mutex m_mutex;
    std::map<std::string, std::shared_ptr<Node>> m_nodes; // by current (real) path
    std::map<std::string, std::vector<Pending>> m_pending; // by directory
    std::map<std::string, std::shared_ptr<const Node>> m_owner; // shadow path -> its node
};

IoStatus ShadowFile::syncData()
{
    IoStatus st = m_real->syncData();
    if (!st)
        return st;
    return copyToShadow();
}

IoStatus ShadowFile::copyToShadow() { return m_fs.copy(*this); }

} // namespace

std::unique_ptr<FileSystem> makeDurableShadow(FileSystem &real, std::string root, std::string shadow)
{
    return std::make_unique<ShadowFs>(real, std::move(root), std::move(shadow));
}

} // namespace dengine::storage
