// SPDX-License-Identifier: Apache-2.0
#include "storage/snapshotstore.h"

#include "raft/bytes.h"
#include "raft/confchange.h"
#include "storage/crc32c.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace dengine::storage {

namespace {

constexpr std::uint64_t Magic = 0x31504e53474e4544ULL; // "DENGSNP1"
constexpr std::uint32_t Version = 2;
constexpr std::size_t FixedHeaderBytes = 8 + 4 + 4 + 8 + 8 + 4;
constexpr std::uint32_t MaxConfBytes = 1 << 20;
constexpr std::size_t IoChunk = 1 << 20;

std::string fileName(raft::Index index, raft::Term term)
{
    char name[64];
    std::snprintf(name, sizeof name, "%016llx-%016llx.snap", static_cast<unsigned long long>(index), static_cast<unsigned long long>(term));
    return name;
}

bool parseName(const std::string &n, raft::Index &index, raft::Term &term)
{
    if (n.size() != 38 || n.compare(33, 5, ".snap") != 0 || n[16] != '-')
        return false;
    const auto hex = [](std::string_view s, std::uint64_t &v) {
        v = 0;
        for (char c : s) {
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else
                return false;
            v = v * 16 + static_cast<std::uint64_t>(d);
        }
        return true;
    };
    return hex(std::string_view(n).substr(0, 16), index) && hex(std::string_view(n).substr(17, 16), term);
}

std::string encodeHeader(const raft::SnapshotMetadata &m)
{
    const raft::Payload conf = raft::encodeConfState(m.confState);
    std::string h;
    raft::putU64(h, Magic);
    raft::putU32(h, Version);
    raft::putU32(h, 0);
    raft::putU64(h, m.index);
    raft::putU64(h, m.term);
    raft::putU32(h, static_cast<std::uint32_t>(conf.size()));
    h.append(conf.view());
    return h;
}

} // namespace

bool parseSnapshotHeader(std::string_view bytes, raft::SnapshotMetadata &metadata, std::size_t &headerBytes, std::string &why)
{
    raft::ByteReader r{bytes};
    const std::uint64_t magic = r.take(8);
    const auto version = static_cast<std::uint32_t>(r.take(4));
    const auto reserved = static_cast<std::uint32_t>(r.take(4));
    if (!r.ok || magic != Magic) {
        why = "not a DEngine snapshot";
        return false;
    }
    if (version != Version || reserved != 0) {
        why = "a snapshot of unknown version " + std::to_string(version);
        return false;
    }
    raft::SnapshotMetadata m;
    m.index = r.take(8);
    m.term = r.take(8);
    const auto confBytes = static_cast<std::uint32_t>(r.take(4));
    if (!r.ok || confBytes > MaxConfBytes || m.index == 0) {
        why = "malformed snapshot header";
        return false;
    }
    if (r.in.size() < confBytes) {
        why = "the snapshot header is cut short";
        return false;
    }
    if (!raft::decodeConfState(raft::Payload(r.in.substr(0, confBytes)), m.confState)) {
        why = "malformed configuration in the snapshot header";
        return false;
    }
    headerBytes = FixedHeaderBytes + confBytes;
    metadata = std::move(m);
    return true;
}

SnapshotStore::SnapshotStore(std::string dataDir, FileSystem *fs, std::size_t keep)
    : m_dir(joinPath(dataDir, "snap")), m_fs(fs ? fs : &FileSystem::posix()), m_keep(std::max<std::size_t>(keep, 1))
{
}

std::string SnapshotStore::pathOf(raft::Index index, raft::Term term) const { return joinPath(m_dir, fileName(index, term)); }

std::string SnapshotStore::incomingPath(raft::NodeId from) const { return joinPath(m_dir, "incoming-" + std::to_string(from) + ".part"); }

StorageStatus SnapshotStore::save(const raft::Snapshot &snap)
{
    std::unique_ptr<SnapshotWriter> w;
    if (StorageStatus st = SnapshotWriter::create(*this, snap.metadata, w); !st)
        return st;
    if (StorageStatus st = w->append(snap.data.view()); !st)
        return st;
    return w->commit();
}

StorageStatus SnapshotStore::list(std::vector<std::pair<raft::Index, raft::Term>> &out) const
{
    out.clear();
    std::lock_guard lock(m_mutex);
    if (!m_fs->exists(m_dir))
        return {};
    std::vector<std::string> names;
    if (IoStatus st = m_fs->list(m_dir, names); !st)
        return StorageStatus::fromIo(st);
    for (const std::string &n : names) {
        raft::Index i;
        raft::Term t;
        if (parseName(n, i, t))
            out.emplace_back(i, t);
    }
    std::sort(out.begin(), out.end(), std::greater<>());
    return {};
}

StorageStatus SnapshotStore::inspect(FileSystem &fs, const std::string &path, raft::SnapshotMetadata &metadata, std::uint64_t *dataOffset,
                                     std::uint64_t *dataLength, const raft::SnapshotMetadata *expected)
{
    const auto damaged = [&](const std::string &why) { return StorageStatus{StorageErrorCode::Corrupt, "snapshot " + path + ": " + why}; };
    std::unique_ptr<File> file;
    std::uint64_t size = 0;
    if (IoStatus st = fs.open(path, OpenMode::ReadOnly, file); !st)
        return StorageStatus::fromIo(st);
    if (IoStatus st = file->size(size); !st)
        return StorageStatus::fromIo(st);
    if (size < FixedHeaderBytes + SnapshotTrailerBytes)
        return damaged("truncated (" + std::to_string(size) + " bytes)");
    // The header: fixed part, then the configuration it announces.
    std::string head(FixedHeaderBytes, '\0');
    std::size_t got = 0;
    if (IoStatus st = file->read(head.data(), head.size(), 0, got); !st)
        return StorageStatus::fromIo(st);
    std::uint32_t confBytes;
    std::memcpy(&confBytes, head.data() + FixedHeaderBytes - 4, 4);
    if (got != head.size() || confBytes > MaxConfBytes || FixedHeaderBytes + confBytes + SnapshotTrailerBytes > size)
        return damaged("malformed header");
    head.resize(FixedHeaderBytes + confBytes);
    if (IoStatus st = file->read(head.data() + FixedHeaderBytes, confBytes, FixedHeaderBytes, got); !st)
        return StorageStatus::fromIo(st);
    // The CRC first: a damaged header is reported as damage, not as a strange version.
    std::uint32_t crc = 0;
    std::string buffer(IoChunk, '\0');
    const std::uint64_t covered = size - 4;
    for (std::uint64_t at = 0; at < covered;) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(IoChunk, covered - at));
        if (IoStatus st = file->read(buffer.data(), want, at, got); !st)
            return StorageStatus::fromIo(st);
        if (got != want)
            return damaged("the file shrank while it was read");
        crc = crc32c(buffer.data(), want, crc);
        at += want;
    }
    char trailer[SnapshotTrailerBytes];
    if (IoStatus st = file->read(trailer, sizeof trailer, size - SnapshotTrailerBytes, got); !st)
        return StorageStatus::fromIo(st);
    std::uint64_t length;
    std::uint32_t stored;
    std::memcpy(&length, trailer, 8);
    std::memcpy(&stored, trailer + 8, 4);
    if (got != sizeof trailer || stored != crc)
        return damaged("checksum mismatch");
    raft::SnapshotMetadata m;
    std::size_t headerBytes = 0;
    std::string why;
    if (!parseSnapshotHeader(head, m, headerBytes, why))
        return damaged(why);
    if (headerBytes + length + SnapshotTrailerBytes != size)
        return damaged("the data length does not match the file's size");
    if (expected && (expected->index != m.index || expected->term != m.term || !(expected->confState == m.confState)))
        return damaged("it holds snapshot (index " + std::to_string(m.index) + ", term " + std::to_string(m.term) + "), not the one expected (index "
                       + std::to_string(expected->index) + ", term " + std::to_string(expected->term) + ")");
    metadata = std::move(m);
    if (dataOffset)
        *dataOffset = headerBytes;
    if (dataLength)
        *dataLength = length;
    return {};
}

StorageStatus SnapshotStore::load(raft::Index index, raft::Term term, raft::Snapshot &out) const
{
    const std::string path = pathOf(index, term);
    raft::SnapshotMetadata meta;
    std::uint64_t offset = 0, length = 0;
    if (StorageStatus st = inspect(*m_fs, path, meta, &offset, &length); !st)
        return st;
    if (meta.index != index || meta.term != term)
        return {StorageErrorCode::Corrupt, "snapshot " + path + ": its name does not match its contents"};
    std::unique_ptr<File> file;
    if (IoStatus st = m_fs->open(path, OpenMode::ReadOnly, file); !st)
        return StorageStatus::fromIo(st);
    std::string data(static_cast<std::size_t>(length), '\0');
    std::size_t got = 0;
    if (IoStatus st = file->read(data.data(), data.size(), offset, got); !st)
        return StorageStatus::fromIo(st);
    if (got != data.size())
        return {StorageErrorCode::Corrupt, "snapshot " + path + ": the file shrank while it was read"};
    out.metadata = std::move(meta);
    out.data = raft::Payload(data);
    return {};
}

StorageStatus SnapshotStore::loadLatest(std::optional<raft::Snapshot> &out) const
{
    out.reset();
    std::vector<std::pair<raft::Index, raft::Term>> all;
    if (StorageStatus st = list(all); !st)
        return st;
    if (all.empty())
        return {};
    raft::Snapshot snap;
    if (StorageStatus st = load(all.front().first, all.front().second, snap); !st)
        return st;
    out = std::move(snap);
    return {};
}

StorageStatus SnapshotStore::prune()
{
    std::vector<std::string> names;
    if (IoStatus st = m_fs->list(m_dir, names); !st)
        return StorageStatus::fromIo(st);
    std::vector<std::string> snaps;
    for (const std::string &n : names) {
        raft::Index i;
        raft::Term t;
        if (parseName(n, i, t))
            snaps.push_back(n); // names sort by index, then term
    }
    if (snaps.size() <= m_keep)
        return {};
    for (std::size_t i = 0; i + m_keep < snaps.size(); ++i)
        if (IoStatus st = m_fs->remove(joinPath(m_dir, snaps[i])); !st)
            return StorageStatus::fromIo(st);
    if (IoStatus st = m_fs->syncDirectory(m_dir); !st)
        return StorageStatus::fromIo(st);
    return {};
}

StorageStatus SnapshotStore::adopt(const std::string &path, const raft::SnapshotMetadata &metadata)
{
    std::lock_guard lock(m_mutex);
    const std::string target = pathOf(metadata.index, metadata.term);
    if (IoStatus st = m_fs->rename(path, target); !st)
        return StorageStatus::fromIo(st);
    if (IoStatus st = m_fs->syncDirectory(m_dir); !st)
        return StorageStatus::fromIo(st);
    return prune();
}

StorageStatus SnapshotStore::quarantine(raft::Index index, raft::Term term)
{
    std::lock_guard lock(m_mutex);
    const std::string path = pathOf(index, term);
    if (IoStatus st = m_fs->rename(path, path + ".damaged"); !st)
        return StorageStatus::fromIo(st);
    if (IoStatus st = m_fs->syncDirectory(m_dir); !st)
        return StorageStatus::fromIo(st);
    return {};
}

void SnapshotStore::removeLeftovers()
{
    std::lock_guard lock(m_mutex);
    std::vector<std::string> names;
    if (!m_fs->exists(m_dir) || !m_fs->list(m_dir, names))
        return;
    const auto endsWith = [](const std::string &s, std::string_view suffix) {
        return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    for (const std::string &n : names)
        if (endsWith(n, ".tmp") || endsWith(n, ".part") || endsWith(n, ".recv"))
            m_fs->remove(joinPath(m_dir, n));
}

// ---- SnapshotWriter --------------------------------------------------------------------------

StorageStatus SnapshotWriter::create(SnapshotStore &store, const raft::SnapshotMetadata &metadata, std::unique_ptr<SnapshotWriter> &out)
{
    if (metadata.index == 0)
        return {StorageErrorCode::Config, "snapshot: index 0 is not a snapshot"};
    if (metadata.confState.voters.empty())
        return {StorageErrorCode::Config, "snapshot: a configuration without voters"};
    FileSystem &fs = *store.m_fs;
    if (IoStatus st = fs.createDirectories(store.m_dir); !st)
        return StorageStatus::fromIo(st);
    std::unique_ptr<SnapshotWriter> w(new SnapshotWriter(store, metadata));
    w->m_tmp = store.pathOf(metadata.index, metadata.term) + ".tmp";
    fs.remove(w->m_tmp);
    if (IoStatus st = fs.open(w->m_tmp, OpenMode::CreateNew, w->m_file); !st)
        return StorageStatus::fromIo(st);
    w->m_buffer = encodeHeader(metadata);
    out = std::move(w);
    return {};
}

SnapshotWriter::~SnapshotWriter()
{
    if (!m_committed && m_file) {
        m_file.reset();
        m_store.m_fs->remove(m_tmp);
    }
}

StorageStatus SnapshotWriter::flush()
{
    if (m_buffer.empty())
        return {};
    m_crc = crc32c(m_buffer.data(), m_buffer.size(), m_crc);
    if (IoStatus st = m_file->write(m_buffer.data(), m_buffer.size(), m_offset); !st)
        return StorageStatus::fromIo(st);
    m_offset += m_buffer.size();
    m_buffer.clear();
    // Sync as it goes: a whole snapshot's dirty pages flushed by the one sync at the end would
    // queue ahead of the log's fsyncs on the same disk for as long as they take (a write stall).
    if (m_offset - m_syncedTo >= SyncEveryBytes) {
        if (IoStatus st = m_file->syncData(); !st)
            return StorageStatus::fromIo(st);
        m_syncedTo = m_offset;
    }
    return {};
}

StorageStatus SnapshotWriter::append(std::string_view bytes)
{
    m_dataBytes += bytes.size();
    if (m_buffer.size() + bytes.size() < IoChunk) {
        m_buffer.append(bytes);
        return {};
    }
    if (StorageStatus st = flush(); !st)
        return st;
    if (bytes.size() >= IoChunk) {
        m_crc = crc32c(bytes.data(), bytes.size(), m_crc);
        if (IoStatus st = m_file->write(bytes.data(), bytes.size(), m_offset); !st)
            return StorageStatus::fromIo(st);
        m_offset += bytes.size();
        return {};
    }
    m_buffer.append(bytes);
    return {};
}

StorageStatus SnapshotWriter::commit(std::uint64_t *fileBytes)
{
    raft::putU64(m_buffer, m_dataBytes);
    if (StorageStatus st = flush(); !st)
        return st;
    std::string crc;
    raft::putU32(crc, m_crc);
    if (IoStatus st = m_file->write(crc.data(), crc.size(), m_offset); !st)
        return StorageStatus::fromIo(st);
    m_offset += crc.size();
    if (IoStatus st = m_file->syncData(); !st)
        return StorageStatus::fromIo(st);
    m_file.reset();
    FileSystem &fs = *m_store.m_fs;
    std::lock_guard lock(m_store.m_mutex);
    if (IoStatus st = fs.rename(m_tmp, m_store.pathOf(m_meta.index, m_meta.term)); !st)
        return StorageStatus::fromIo(st);
    m_committed = true;
    if (IoStatus st = fs.syncDirectory(m_store.m_dir); !st)
        return StorageStatus::fromIo(st);
    if (fileBytes)
        *fileBytes = m_offset;
    return m_store.prune();
}

StorageStatus openStartPoint(SnapshotStore &snapshots, Wal &wal, const std::function<bool(const raft::Snapshot &, std::string &why)> &restore,
                             StartPoint &out)
{
    out = StartPoint{};
    snapshots.removeLeftovers();
    std::vector<std::pair<raft::Index, raft::Term>> all;
    if (StorageStatus st = snapshots.list(all); !st)
        return st;
    // The log reaches back to here: a snapshot below it would leave a gap.
    const raft::Index logStart = wal.firstIndex() - 1;
    for (const auto &[index, term] : all) {
        const std::string path = snapshots.pathOf(index, term);
        if (index < logStart) {
            out.notes.push_back(path + ": older than the log's start (" + std::to_string(logStart) + "): not usable");
            continue;
        }
        raft::Snapshot snap;
        std::string why;
        StorageStatus st = snapshots.load(index, term, snap);
        if (!st && st.code != StorageErrorCode::Corrupt)
            return {st.code, "cannot read " + path + ": " + st.message};
        if (st && restore(snap, why)) {
            if (wal.term(index) != std::optional<raft::Term>(term)) {
                if (StorageStatus rs = wal.reset(index, term); !rs)
                    return {rs.code, "cannot reset the log to the snapshot " + path + ": " + rs.message};
                out.logReset = true;
            }
            out.snapshot = snap.metadata;
            return {};
        }
        out.notes.push_back(path + " is damaged (" + (st ? why : st.message) + "): set aside as .damaged");
        if (StorageStatus qs = snapshots.quarantine(index, term); !qs)
            return qs;
    }
    if (logStart > 0)
        return {StorageErrorCode::Corrupt, "the log starts after index " + std::to_string(logStart)
                                               + " (compacted) and no intact snapshot reaches back to it: this node's state is lost"};
    return {};
}

} // namespace dengine::storage
