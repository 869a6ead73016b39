// SPDX-License-Identifier: Apache-2.0
#include "storage/filesystem.h"

#include "storage/durableshadow.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dengine::storage {

namespace {

IoStatus fail(const char *what, const std::string &path, int code)
{
    return IoStatus::error(code, std::string(what) + " " + path + ": " + std::strerror(code));
}

IoStatus failAt(const char *what, const std::string &path, std::uint64_t offset, int code)
{
    return IoStatus::error(code, std::string(what) + " " + path + " at offset " + std::to_string(offset) + ": " + std::strerror(code));
}

class PosixFile final : public File {
public:
    PosixFile(int fd, std::string path) : m_fd(fd), m_path(std::move(path)) {}
    ~PosixFile() override { ::close(m_fd); }

    const std::string &path() const override { return m_path; }

    IoStatus write(const void *data, std::size_t size, std::uint64_t offset) override
    {
        const char *p = static_cast<const char *>(data);
        while (size > 0) {
            const ssize_t n = ::pwrite(m_fd, p, size, static_cast<off_t>(offset));
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return failAt("write", m_path, offset, errno);
            }
            if (n == 0)
                return failAt("write", m_path, offset, EIO);
            p += n;
            size -= static_cast<std::size_t>(n);
            offset += static_cast<std::uint64_t>(n);
        }
        return {};
    }

    IoStatus read(void *data, std::size_t size, std::uint64_t offset, std::size_t &got) override
    {
        got = 0;
        char *p = static_cast<char *>(data);
        while (got < size) {
            const ssize_t n = ::pread(m_fd, p + got, size - got, static_cast<off_t>(offset + got));
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return failAt("read", m_path, offset + got, errno);
            }
            if (n == 0)
                break;
            got += static_cast<std::size_t>(n);
        }
        return {};
    }

    IoStatus syncData() override
    {
        if (::fdatasync(m_fd) != 0)
            return fail("fdatasync", m_path, errno);
        return {};
    }

    IoStatus truncate(std::uint64_t size) override
    {
        if (::ftruncate(m_fd, static_cast<off_t>(size)) != 0)
            return fail("truncate", m_path, errno);
        return {};
    }

    IoStatus preallocate(std::uint64_t size, bool writeZeros) override
    {
        if (int rc = ::posix_fallocate(m_fd, 0, static_cast<off_t>(size)); rc != 0)
            return fail("preallocate", m_path, rc);
        if (!writeZeros)
            return {};
        static const std::vector<char> zeros(1 << 20, 0);
        for (std::uint64_t off = 0; off < size; off += zeros.size()) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), size - off));
            if (IoStatus st = write(zeros.data(), n, off); !st)
                return st;
        }
        if (::fsync(m_fd) != 0)
            return fail("fsync", m_path, errno);
        return {};
    }

    IoStatus size(std::uint64_t &out) override
    {
        struct stat st {};
        if (::fstat(m_fd, &st) != 0)
            return fail("stat", m_path, errno);
        out = static_cast<std::uint64_t>(st.st_size);
        return {};
    }

private:
    int m_fd;
    std::string m_path;
};

class PosixFileSystem final : public FileSystem {
public:
    IoStatus open(const std::string &path, OpenMode mode, std::unique_ptr<File> &out) override
    {
        int flags = O_CLOEXEC;
        switch (mode) {
        case OpenMode::ReadOnly: flags |= O_RDONLY; break;
        case OpenMode::ReadWrite: flags |= O_RDWR; break;
        case OpenMode::CreateNew: flags |= O_RDWR | O_CREAT | O_EXCL; break;
        }
        const int fd = ::open(path.c_str(), flags, 0644);
        if (fd < 0)
            return fail("open", path, errno);
        out = std::make_unique<PosixFile>(fd, path);
        return {};
    }

    IoStatus rename(const std::string &from, const std::string &to) override
    {
        if (::rename(from.c_str(), to.c_str()) != 0)
            return fail("rename", from + " to " + to, errno);
        return {};
    }

    IoStatus remove(const std::string &path) override
    {
        if (::unlink(path.c_str()) != 0)
            return fail("remove", path, errno);
        return {};
    }

    IoStatus syncDirectory(const std::string &dir) override
    {
        const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return fail("open directory", dir, errno);
        const int rc = ::fsync(fd);
        const int err = errno;
        ::close(fd);
        if (rc != 0)
            return fail("fsync directory", dir, err);
        return {};
    }

    IoStatus createDirectories(const std::string &dir) override
    {
        std::string partial;
        for (std::size_t i = 0; i <= dir.size(); ++i) {
            if (i == dir.size() || (dir[i] == '/' && i > 0)) {
                partial = dir.substr(0, i);
                if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
                    return fail("create directory", partial, errno);
            }
        }
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return fail("create directory", dir, ENOTDIR);
        return {};
    }

    IoStatus list(const std::string &dir, std::vector<std::string> &names) override
    {
        names.clear();
        DIR *d = ::opendir(dir.c_str());
        if (!d)
            return fail("list directory", dir, errno);
        while (const dirent *e = ::readdir(d)) {
            if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN) {
                const std::string name = e->d_name;
                if (name != "." && name != "..")
                    names.push_back(name);
            }
        }
        ::closedir(d);
        std::sort(names.begin(), names.end());
        return {};
    }

    bool exists(const std::string &path) override
    {
        struct stat st {};
        return ::stat(path.c_str(), &st) == 0;
    }

    IoStatus lock(const std::string &path, std::unique_ptr<File> &out) override
    {
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return fail("open lock file", path, errno);
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            ::close(fd);
            return fail("lock", path, err);
        }
        out = std::make_unique<PosixFile>(fd, path); // closing the descriptor releases the lock
        return {};
    }
};

} // namespace

FileSystem &FileSystem::posix()
{
    static PosixFileSystem fs;
    // A fault harness's power cuts (durableshadow.h); never set outside tests.
    // Never destroyed: a worker thread still finishing at exit may use it.
    static FileSystem *const shadowed = []() -> FileSystem * {
        const char *root = std::getenv("DENGINE_TEST_DURABLE_SHADOW_ROOT");
        const char *shadow = std::getenv("DENGINE_TEST_DURABLE_SHADOW");
        if (!root || !shadow || !*root || !*shadow)
            return nullptr;
        return makeDurableShadow(fs, root, shadow).release();
    }();
    return shadowed ? *shadowed : fs;
}

std::string joinPath(const std::string &dir, const std::string &name)
{
    if (dir.empty() || dir.back() == '/')
        return dir + name;
    return dir + "/" + name;
}

} // namespace dengine::storage
