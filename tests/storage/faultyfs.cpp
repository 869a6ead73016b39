// SPDX-License-Identifier: Apache-2.0
#include "faultyfs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>

namespace dengine::storage::test {

namespace {

constexpr std::size_t SectorBytes = 512;

struct Inode {
    std::string synced; // what the disk holds
    std::string cached; // what reads see: the synced data plus unsynced writes
};

struct FaultRule {
    OpKind kind;
    int error;
    std::uint64_t skip;
    std::string pathPart;
};

std::string parentOf(const std::string &path)
{
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos)
        return {};
    if (slash == 0)
        return "/";
    return path.substr(0, slash);
}

IoStatus failure(const std::string &what, const std::string &path, int code, const std::string &why = {})
{
    return IoStatus::error(code, what + " " + path + ": " + std::strerror(code) + (why.empty() ? "" : " (" + why + ")"));
}

// One sector-granular outcome of a power cut for a file with unsynced data.
std::string afterPowerCut(const Inode &inode, UnsyncedData mode, std::mt19937_64 &rng)
{
    if (mode == UnsyncedData::Drop || inode.synced == inode.cached)
        return inode.synced;
    if (mode == UnsyncedData::Keep)
        return inode.cached;
    const std::string &s = inode.synced;
    const std::string &c = inode.cached;
    // Each file gets its own probability, so that some crashes keep nearly everything and some
    // nearly nothing, and sectors reach the disk in no particular order.
    const double keep = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    std::bernoulli_distribution coin(keep);
    const std::size_t size = s.size() == c.size() ? s.size() : (coin(rng) ? c.size() : s.size());
    std::string out(size, '\0');
    for (std::size_t off = 0; off < size; off += SectorBytes) {
        const std::size_t n = std::min(SectorBytes, size - off);
        auto sector = [&](const std::string &x) {
            std::string r(n, '\0');
            if (off < x.size())
                std::memcpy(r.data(), x.data() + off, std::min(n, x.size() - off));
            return r;
        };
        const std::string a = sector(s);
        const std::string b = sector(c);
        out.replace(off, n, (a != b && coin(rng)) ? b : a);
    }
    return out;
}

} // namespace

struct FaultyFileSystem::State {
    mutable std::mutex mutex;
    std::map<std::string, std::shared_ptr<Inode>> current;
    std::map<std::string, std::shared_ptr<Inode>> durable;
    std::set<std::string> dirs;
    std::map<std::string, std::uint64_t> locks; // path -> token of the holder
    std::uint64_t nextToken = 1;
    std::uint64_t epoch = 0; // bumped by crash(): older handles are dead
    std::uint64_t ops = 0;
    std::uint64_t crashAt = 0;
    bool crashed = false;
    std::map<std::uint64_t, int> failAt;
    std::vector<FaultRule> rules;
    std::vector<OpTrace> trace;
    std::function<void(const OpTrace &)> observer;

    // Counts one operation point and decides its fate: ok to proceed, or the error to return.
    // Called with `lock` held; may release it briefly to call the observer.
    IoStatus begin(std::unique_lock<std::mutex> &lock, OpKind kind, const std::string &path, std::uint64_t offset = 0,
                   std::uint64_t size = 0)
    {
        if (crashed)
            return failure(toString(kind), path, EIO, "the simulated machine lost power");
        const OpTrace t{++ops, kind, path, offset, size};
        trace.push_back(t);
        if (observer) {
            auto copy = observer;
            lock.unlock();
            copy(t);
            lock.lock();
        }
        if (crashAt != 0 && t.number >= crashAt) {
            crashed = true;
            return failure(toString(kind), path, EIO, "simulated power cut at operation " + std::to_string(t.number));
        }
        if (auto it = failAt.find(t.number); it != failAt.end()) {
            const int error = it->second;
            failAt.erase(it);
            return failure(toString(kind), path, error, "injected at operation " + std::to_string(t.number));
        }
        for (auto it = rules.begin(); it != rules.end(); ++it) {
            if (it->kind != kind || path.find(it->pathPart) == std::string::npos)
                continue;
            if (it->skip > 0) {
                --it->skip;
                continue;
            }
            const int error = it->error;
            rules.erase(it);
            return failure(toString(kind), path, error, "injected at operation " + std::to_string(t.number));
        }
        return {};
    }

    void crashInto(State &dst, UnsyncedData mode, std::uint64_t seed) const
    {
        std::mt19937_64 rng(seed);
        std::map<const Inode *, std::shared_ptr<Inode>> done;
        std::map<std::string, std::shared_ptr<Inode>> files;
        for (const auto &[path, inode] : durable) {
            auto &result = done[inode.get()];
            if (!result) {
                result = std::make_shared<Inode>();
                result->synced = afterPowerCut(*inode, mode, rng);
                result->cached = result->synced;
            }
            files[path] = result;
        }
        dst.current = files;
        dst.durable = std::move(files);
        dst.dirs = dirs;
        dst.locks.clear();
        dst.crashed = false;
        dst.crashAt = 0;
        dst.failAt.clear();
        dst.rules.clear();
        dst.ops = ops;
    }
};

namespace {

class FaultyFile final : public File {
public:
    using State = FaultyFileSystem::State;

    FaultyFile(std::shared_ptr<State> state, std::shared_ptr<Inode> inode, std::string path, std::uint64_t epoch, bool writable,
               std::uint64_t lockToken = 0)
        : m_state(std::move(state)), m_inode(std::move(inode)), m_path(std::move(path)), m_epoch(epoch), m_writable(writable),
          m_lockToken(lockToken)
    {
    }

    ~FaultyFile() override
    {
        if (m_lockToken == 0)
            return;
        std::lock_guard lock(m_state->mutex);
        if (m_state->epoch == m_epoch) {
            auto it = m_state->locks.find(m_path);
            if (it != m_state->locks.end() && it->second == m_lockToken)
                m_state->locks.erase(it);
        }
    }

    const std::string &path() const override { return m_path; }

    IoStatus write(const void *data, std::size_t size, std::uint64_t offset) override
    {
        std::unique_lock lock(m_state->mutex);
        if (IoStatus st = usable("write"); !st)
            return st;
        if (IoStatus st = m_state->begin(lock, OpKind::Write, m_path, offset, size); !st)
            return IoStatus::error(st.code(), st.message() + " at offset " + std::to_string(offset));
        std::string &c = m_inode->cached;
        if (c.size() < offset + size)
            c.resize(offset + size, '\0');
        std::memcpy(c.data() + offset, data, size);
        return {};
    }

    IoStatus read(void *data, std::size_t size, std::uint64_t offset, std::size_t &got) override
    {
        std::lock_guard lock(m_state->mutex);
        got = 0;
        if (m_state->epoch != m_epoch)
            return failure("read", m_path, EIO, "handle opened before a simulated crash");
        const std::string &c = m_inode->cached;
        if (offset >= c.size())
            return {};
        got = static_cast<std::size_t>(std::min<std::uint64_t>(size, c.size() - offset));
        std::memcpy(data, c.data() + offset, got);
        return {};
    }

    IoStatus syncData() override
    {
        std::unique_lock lock(m_state->mutex);
        if (m_state->epoch != m_epoch)
            return failure("fdatasync", m_path, EIO, "handle opened before a simulated crash");
        if (IoStatus st = m_state->begin(lock, OpKind::SyncData, m_path); !st) {
            // fsyncgate: after a writeback error the dirty pages are gone; they never reach the disk.
            if (st.code() == EIO && !m_state->crashed)
                m_inode->cached = m_inode->synced;
            return st;
        }
        m_inode->synced = m_inode->cached;
        return {};
    }

    IoStatus truncate(std::uint64_t size) override
    {
        std::unique_lock lock(m_state->mutex);
        if (IoStatus st = usable("truncate"); !st)
            return st;
        if (IoStatus st = m_state->begin(lock, OpKind::Truncate, m_path, size); !st)
            return st;
        m_inode->cached.resize(size, '\0');
        return {};
    }

    IoStatus preallocate(std::uint64_t size, bool writeZeros) override
    {
        // Like the POSIX implementation: the file grows to `size`, the new space reading as zeros
        // (a size change like any other until synced); with writeZeros the whole file is written
        // as zeros and fsync'ed.
        std::unique_lock lock(m_state->mutex);
        if (IoStatus st = usable("preallocate"); !st)
            return st;
        if (IoStatus st = m_state->begin(lock, OpKind::Preallocate, m_path, 0, size); !st)
            return st;
        if (writeZeros) {
            m_inode->cached.assign(std::max<std::uint64_t>(size, m_inode->cached.size()), '\0');
            m_inode->synced = m_inode->cached;
        } else if (m_inode->cached.size() < size) {
            m_inode->cached.resize(size, '\0');
        }
        return {};
    }

    IoStatus size(std::uint64_t &out) override
    {
        std::lock_guard lock(m_state->mutex);
        if (m_state->epoch != m_epoch)
            return failure("stat", m_path, EIO, "handle opened before a simulated crash");
        out = m_inode->cached.size();
        return {};
    }

private:
    IoStatus usable(const char *what) const
    {
        if (m_state->epoch != m_epoch)
            return failure(what, m_path, EIO, "handle opened before a simulated crash");
        if (!m_writable)
            return failure(what, m_path, EBADF, "opened read-only");
        return {};
    }

    std::shared_ptr<State> m_state;
    std::shared_ptr<Inode> m_inode;
    std::string m_path;
    std::uint64_t m_epoch;
    bool m_writable;
    std::uint64_t m_lockToken;
};

} // namespace

const char *toString(OpKind kind)
{
    switch (kind) {
    case OpKind::Write: return "write";
    case OpKind::Truncate: return "truncate";
    case OpKind::Preallocate: return "preallocate";
    case OpKind::SyncData: return "fdatasync";
    case OpKind::Rename: return "rename";
    case OpKind::Remove: return "remove";
    case OpKind::SyncDirectory: return "fsync-directory";
    }
    return "?";
}

const char *toString(UnsyncedData mode)
{
    switch (mode) {
    case UnsyncedData::Drop: return "drop-unsynced";
    case UnsyncedData::Keep: return "keep-unsynced";
    case UnsyncedData::TornSectors: return "torn-sectors";
    }
    return "?";
}

std::string OpTrace::describe() const
{
    std::string s = "#" + std::to_string(number) + " " + toString(kind) + " " + path;
    if (kind == OpKind::Write)
        s += " [" + std::to_string(offset) + ", +" + std::to_string(size) + ")";
    return s;
}

FaultyFileSystem::FaultyFileSystem() : m_state(std::make_shared<State>()) {}
FaultyFileSystem::FaultyFileSystem(std::shared_ptr<State> state) : m_state(std::move(state)) {}
FaultyFileSystem::~FaultyFileSystem() = default;

IoStatus FaultyFileSystem::open(const std::string &path, OpenMode mode, std::unique_ptr<File> &out)
{
    std::lock_guard lock(m_state->mutex);
    State &s = *m_state;
    auto it = s.current.find(path);
    if (mode == OpenMode::CreateNew) {
        if (s.crashed)
            return failure("open", path, EIO, "the simulated machine lost power");
        if (it != s.current.end())
            return failure("open", path, EEXIST);
        if (!s.dirs.count(parentOf(path)))
            return failure("open", path, ENOENT);
        auto inode = std::make_shared<Inode>();
        s.current[path] = inode;
        out = std::make_unique<FaultyFile>(m_state, inode, path, s.epoch, true);
        return {};
    }
    if (it == s.current.end())
        return failure("open", path, ENOENT);
    out = std::make_unique<FaultyFile>(m_state, it->second, path, s.epoch, mode == OpenMode::ReadWrite);
    return {};
}

IoStatus FaultyFileSystem::rename(const std::string &from, const std::string &to)
{
    std::unique_lock lock(m_state->mutex);
    State &s = *m_state;
    if (IoStatus st = s.begin(lock, OpKind::Rename, from + " to " + to); !st)
        return st;
    auto it = s.current.find(from);
    if (it == s.current.end())
        return failure("rename", from + " to " + to, ENOENT);
    if (!s.dirs.count(parentOf(to)))
        return failure("rename", from + " to " + to, ENOENT);
    auto inode = it->second;
    s.current.erase(it);
    s.current[to] = inode;
    return {};
}

IoStatus FaultyFileSystem::remove(const std::string &path)
{
    std::unique_lock lock(m_state->mutex);
    State &s = *m_state;
    if (IoStatus st = s.begin(lock, OpKind::Remove, path); !st)
        return st;
    if (s.current.erase(path) == 0)
        return failure("remove", path, ENOENT);
    return {};
}

IoStatus FaultyFileSystem::syncDirectory(const std::string &dir)
{
    std::unique_lock lock(m_state->mutex);
    State &s = *m_state;
    if (IoStatus st = s.begin(lock, OpKind::SyncDirectory, dir); !st)
        return st;
    if (!s.dirs.count(dir))
        return failure("open directory", dir, ENOENT);
    for (auto it = s.durable.begin(); it != s.durable.end();) {
        if (parentOf(it->first) == dir)
            it = s.durable.erase(it);
        else
            ++it;
    }
    for (const auto &[path, inode] : s.current)
        if (parentOf(path) == dir)
            s.durable[path] = inode;
    return {};
}

IoStatus FaultyFileSystem::createDirectories(const std::string &dir)
{
    std::lock_guard lock(m_state->mutex);
    State &s = *m_state;
    if (s.crashed)
        return failure("create directory", dir, EIO, "the simulated machine lost power");
    for (std::size_t i = 1; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            const std::string partial = dir.substr(0, i);
            if (s.current.count(partial))
                return failure("create directory", partial, ENOTDIR);
            s.dirs.insert(partial);
        }
    }
    return {};
}

IoStatus FaultyFileSystem::list(const std::string &dir, std::vector<std::string> &names)
{
    std::lock_guard lock(m_state->mutex);
    names.clear();
    if (!m_state->dirs.count(dir))
        return failure("list directory", dir, ENOENT);
    for (const auto &[path, inode] : m_state->current)
        if (parentOf(path) == dir)
            names.push_back(path.substr(dir.size() + (dir == "/" ? 0 : 1)));
    std::sort(names.begin(), names.end());
    return {};
}

bool FaultyFileSystem::exists(const std::string &path)
{
    std::lock_guard lock(m_state->mutex);
    return m_state->current.count(path) || m_state->dirs.count(path);
}

IoStatus FaultyFileSystem::lock(const std::string &path, std::unique_ptr<File> &out)
{
    std::lock_guard lock(m_state->mutex);
    State &s = *m_state;
    if (s.crashed)
        return failure("open lock file", path, EIO, "the simulated machine lost power");
    if (!s.dirs.count(parentOf(path)))
        return failure("open lock file", path, ENOENT);
    if (s.locks.count(path))
        return failure("lock", path, EWOULDBLOCK);
    auto &inode = s.current[path];
    if (!inode)
        inode = std::make_shared<Inode>();
    const std::uint64_t token = s.nextToken++;
    s.locks[path] = token;
    out = std::make_unique<FaultyFile>(m_state, inode, path, s.epoch, true, token);
    return {};
}

std::uint64_t FaultyFileSystem::operations() const
{
    std::lock_guard lock(m_state->mutex);
    return m_state->ops;
}

std::vector<OpTrace> FaultyFileSystem::trace(std::size_t keep) const
{
    std::lock_guard lock(m_state->mutex);
    const auto &t = m_state->trace;
    if (keep == 0 || keep >= t.size())
        return t;
    return std::vector<OpTrace>(t.end() - static_cast<std::ptrdiff_t>(keep), t.end());
}

void FaultyFileSystem::crashAtOperation(std::uint64_t n)
{
    std::lock_guard lock(m_state->mutex);
    m_state->crashAt = n;
}

bool FaultyFileSystem::crashed() const
{
    std::lock_guard lock(m_state->mutex);
    return m_state->crashed;
}

void FaultyFileSystem::failOperation(std::uint64_t n, int error)
{
    std::lock_guard lock(m_state->mutex);
    m_state->failAt[n] = error;
}

void FaultyFileSystem::failNext(OpKind kind, int error, std::uint64_t skip, const std::string &pathPart)
{
    std::lock_guard lock(m_state->mutex);
    m_state->rules.push_back(FaultRule{kind, error, skip, pathPart});
}

void FaultyFileSystem::setObserver(std::function<void(const OpTrace &)> observer)
{
    std::lock_guard lock(m_state->mutex);
    m_state->observer = std::move(observer);
}

void FaultyFileSystem::crash(UnsyncedData mode, std::uint64_t seed)
{
    std::lock_guard lock(m_state->mutex);
    State &s = *m_state;
    State fresh;
    s.crashInto(fresh, mode, seed);
    s.current = std::move(fresh.current);
    s.durable = std::move(fresh.durable);
    s.locks.clear();
    s.crashed = false;
    s.crashAt = 0;
    s.failAt.clear();
    s.rules.clear();
    ++s.epoch;
}

std::unique_ptr<FaultyFileSystem> FaultyFileSystem::crashedCopy(UnsyncedData mode, std::uint64_t seed) const
{
    auto state = std::make_shared<State>();
    {
        std::lock_guard lock(m_state->mutex);
        m_state->crashInto(*state, mode, seed);
    }
    return std::unique_ptr<FaultyFileSystem>(new FaultyFileSystem(std::move(state)));
}

std::unique_ptr<FaultyFileSystem> FaultyFileSystem::processDeathCopy() const
{
    auto state = std::make_shared<State>();
    {
        std::lock_guard lock(m_state->mutex);
        std::map<const Inode *, std::shared_ptr<Inode>> copies;
        auto copyOf = [&](const std::shared_ptr<Inode> &inode) {
            auto &c = copies[inode.get()];
            if (!c)
                c = std::make_shared<Inode>(*inode);
            return c;
        };
        for (const auto &[path, inode] : m_state->current)
            state->current[path] = copyOf(inode);
        for (const auto &[path, inode] : m_state->durable)
            state->durable[path] = copyOf(inode);
        state->dirs = m_state->dirs;
        state->ops = m_state->ops;
    }
    return std::unique_ptr<FaultyFileSystem>(new FaultyFileSystem(std::move(state)));
}

std::vector<std::string> FaultyFileSystem::files() const
{
    std::lock_guard lock(m_state->mutex);
    std::vector<std::string> out;
    for (const auto &[path, inode] : m_state->current)
        out.push_back(path);
    return out;
}

std::optional<std::string> FaultyFileSystem::contents(const std::string &path) const
{
    std::lock_guard lock(m_state->mutex);
    auto it = m_state->current.find(path);
    if (it == m_state->current.end())
        return std::nullopt;
    return it->second->cached;
}

std::optional<std::string> FaultyFileSystem::syncedContents(const std::string &path) const
{
    std::lock_guard lock(m_state->mutex);
    auto it = m_state->durable.find(path);
    if (it == m_state->durable.end())
        return std::nullopt;
    return it->second->synced;
}

namespace {

// The inodes a path names in the durable and the current namespace (one or two distinct ones).
std::vector<std::shared_ptr<Inode>> inodesOf(const std::string &path, const std::map<std::string, std::shared_ptr<Inode>> &current,
                                             const std::map<std::string, std::shared_ptr<Inode>> &durable)
{
    std::vector<std::shared_ptr<Inode>> out;
    if (auto it = current.find(path); it != current.end())
        out.push_back(it->second);
    if (auto it = durable.find(path); it != durable.end() && (out.empty() || out.front() != it->second))
        out.push_back(it->second);
    return out;
}

} // namespace

bool FaultyFileSystem::flipBit(const std::string &path, std::uint64_t offset, int bit)
{
    std::lock_guard lock(m_state->mutex);
    auto inodes = inodesOf(path, m_state->current, m_state->durable);
    bool any = false;
    for (auto &inode : inodes) {
        for (std::string *s : {&inode->synced, &inode->cached}) {
            if (offset < s->size()) {
                (*s)[offset] = static_cast<char>((*s)[offset] ^ (1 << bit));
                any = true;
            }
        }
    }
    return any;
}

bool FaultyFileSystem::truncateFile(const std::string &path, std::uint64_t size)
{
    std::lock_guard lock(m_state->mutex);
    auto inodes = inodesOf(path, m_state->current, m_state->durable);
    for (auto &inode : inodes) {
        inode->synced.resize(size, '\0');
        inode->cached.resize(size, '\0');
    }
    return !inodes.empty();
}

bool FaultyFileSystem::deleteFile(const std::string &path)
{
    std::lock_guard lock(m_state->mutex);
    const bool a = m_state->current.erase(path) > 0;
    const bool b = m_state->durable.erase(path) > 0;
    return a || b;
}

bool FaultyFileSystem::renameFile(const std::string &from, const std::string &to)
{
    std::lock_guard lock(m_state->mutex);
    bool any = false;
    for (auto *ns : {&m_state->current, &m_state->durable}) {
        auto it = ns->find(from);
        if (it == ns->end())
            continue;
        auto inode = it->second;
        ns->erase(it);
        (*ns)[to] = inode;
        any = true;
    }
    return any;
}

void FaultyFileSystem::putFile(const std::string &path, const std::string &bytes)
{
    std::lock_guard lock(m_state->mutex);
    State &s = *m_state;
    const std::string dir = parentOf(path);
    for (std::size_t i = 1; i <= dir.size(); ++i)
        if (i == dir.size() || dir[i] == '/')
            s.dirs.insert(dir.substr(0, i));
    auto inode = std::make_shared<Inode>();
    inode->synced = bytes;
    inode->cached = bytes;
    s.current[path] = inode;
    s.durable[path] = inode;
}

std::size_t FaultyFileSystem::unsyncedCount() const
{
    std::lock_guard lock(m_state->mutex);
    std::size_t n = 0;
    std::set<const Inode *> seen;
    for (const auto &[path, inode] : m_state->current) {
        if (seen.insert(inode.get()).second && inode->synced != inode->cached)
            ++n;
        auto it = m_state->durable.find(path);
        if (it == m_state->durable.end() || it->second != inode)
            ++n;
    }
    for (const auto &[path, inode] : m_state->durable)
        if (!m_state->current.count(path))
            ++n;
    return n;
}

} // namespace dengine::storage::test
