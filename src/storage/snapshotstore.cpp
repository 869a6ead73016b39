// SPDX-License-Identifier: Apache-2.0
#include "storage/snapshotstore.h"

#include "storage/crc32c.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace dengine::storage {

namespace {

constexpr std::uint64_t Magic = 0x31504e53474e4544ULL; // "DENGSNP1"
constexpr std::uint32_t Version = 1;

void add64(std::string &s, std::uint64_t v)
{
    char b[8];
    std::memcpy(b, &v, 8);
    s.append(b, 8);
}

bool take64(std::string_view &p, std::uint64_t &v)
{
    if (p.size() < 8)
        return false;
    std::memcpy(&v, p.data(), 8);
    p.remove_prefix(8);
    return true;
}

std::string fileName(raft::Index index, raft::Term term)
{
    char name[64];
    std::snprintf(name, sizeof name, "%016llx-%016llx.snap", static_cast<unsigned long long>(index), static_cast<unsigned long long>(term));
    return name;
}

bool isSnapshotName(const std::string &n) { return n.size() == 38 && n.compare(33, 5, ".snap") == 0 && n[16] == '-'; }

} // namespace

SnapshotStore::SnapshotStore(std::string dataDir, FileSystem *fs, std::size_t keep)
    : m_dir(joinPath(dataDir, "snap")), m_fs(fs ? fs : &FileSystem::posix()), m_keep(std::max<std::size_t>(keep, 1))
{
}

StorageStatus SnapshotStore::save(const raft::Snapshot &snap)
{
    if (snap.metadata.index == 0)
        return {StorageErrorCode::Config, "snapshot: index 0 is not a snapshot"};
    if (IoStatus st = m_fs->createDirectories(m_dir); !st)
        return StorageStatus::fromIo(st);
    std::string bytes;
    add64(bytes, Magic);
    add64(bytes, Version);
    add64(bytes, snap.metadata.index);
    add64(bytes, snap.metadata.term);
    add64(bytes, snap.metadata.confState.voters.size());
    for (raft::NodeId id : snap.metadata.confState.voters)
        add64(bytes, id);
    add64(bytes, snap.data.size());
    bytes.append(snap.data.view());
    const std::uint32_t crc = crc32c(bytes.data(), bytes.size());
    char c[4];
    std::memcpy(c, &crc, 4);
    bytes.append(c, 4);

    const std::string name = fileName(snap.metadata.index, snap.metadata.term);
    const std::string path = joinPath(m_dir, name);
    const std::string tmp = path + ".tmp";
    m_fs->remove(tmp);
    std::unique_ptr<File> file;
    if (IoStatus st = m_fs->open(tmp, OpenMode::CreateNew, file); !st)
        return StorageStatus::fromIo(st);
    if (IoStatus st = file->write(bytes.data(), bytes.size(), 0); !st)
        return StorageStatus::fromIo(st);
    if (IoStatus st = file->syncData(); !st)
        return StorageStatus::fromIo(st);
    file.reset();
    if (IoStatus st = m_fs->rename(tmp, path); !st)
        return StorageStatus::fromIo(st);
    if (IoStatus st = m_fs->syncDirectory(m_dir); !st)
        return StorageStatus::fromIo(st);

    std::vector<std::string> names;
    if (IoStatus st = m_fs->list(m_dir, names); !st)
        return StorageStatus::fromIo(st);
    std::vector<std::string> snaps;
    for (const std::string &n : names)
        if (isSnapshotName(n))
            snaps.push_back(n); // names sort by index, then term
    if (snaps.size() > m_keep) {
        for (std::size_t i = 0; i + m_keep < snaps.size(); ++i)
            if (IoStatus st = m_fs->remove(joinPath(m_dir, snaps[i])); !st)
                return StorageStatus::fromIo(st);
        if (IoStatus st = m_fs->syncDirectory(m_dir); !st)
            return StorageStatus::fromIo(st);
    }
    return {};
}

StorageStatus SnapshotStore::loadLatest(std::optional<raft::Snapshot> &out)
{
    out.reset();
    if (!m_fs->exists(m_dir))
        return {};
    std::vector<std::string> names;
    if (IoStatus st = m_fs->list(m_dir, names); !st)
        return StorageStatus::fromIo(st);
    std::string newest;
    for (const std::string &n : names)
        if (isSnapshotName(n))
            newest = n;
    if (newest.empty())
        return {};
    const std::string path = joinPath(m_dir, newest);
    std::unique_ptr<File> file;
    std::uint64_t size = 0;
    if (IoStatus st = m_fs->open(path, OpenMode::ReadOnly, file); !st)
        return StorageStatus::fromIo(st);
    if (IoStatus st = file->size(size); !st)
        return StorageStatus::fromIo(st);
    std::string bytes(size, '\0');
    std::size_t got = 0;
    if (IoStatus st = file->read(bytes.data(), bytes.size(), 0, got); !st)
        return StorageStatus::fromIo(st);
    const auto damaged = [&](const std::string &why) { return StorageStatus{StorageErrorCode::Corrupt, "snapshot " + path + ": " + why}; };
    if (got != size || size < 4)
        return damaged("truncated");
    std::uint32_t stored;
    std::memcpy(&stored, bytes.data() + size - 4, 4);
    if (crc32c(bytes.data(), size - 4) != stored)
        return damaged("checksum mismatch");
    std::string_view p(bytes.data(), size - 4);
    std::uint64_t magic, version, index, term, voters, length;
    if (!take64(p, magic) || magic != Magic || !take64(p, version) || version != Version)
        return damaged("not a DEngine snapshot of a known version");
    raft::Snapshot snap;
    if (!take64(p, index) || !take64(p, term) || !take64(p, voters) || voters > 1024)
        return damaged("malformed metadata");
    for (std::uint64_t i = 0; i < voters; ++i) {
        std::uint64_t id;
        if (!take64(p, id))
            return damaged("malformed voters");
        snap.metadata.confState.voters.push_back(id);
    }
    if (!take64(p, length) || length != p.size())
        return damaged("data length does not match the file");
    if (newest != fileName(index, term))
        return damaged("its name does not match its contents");
    snap.metadata.index = index;
    snap.metadata.term = term;
    snap.data = raft::Payload(p);
    out = std::move(snap);
    return {};
}

} // namespace dengine::storage
