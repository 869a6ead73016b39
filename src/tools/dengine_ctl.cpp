// SPDX-License-Identifier: Apache-2.0
// dengine-ctl: operator tools for a DEngine data directory.
//
//   dengine-ctl wal check DIR          recover the log read-only and report: segments, entries,
//                                      index range, hard state, a torn tail, or the damage found
//   dengine-ctl wal dump DIR [--all]   every segment and record (entry runs are summarized unless
//                                      --all), with segment boundaries and where damage starts
//   dengine-ctl certs init DIR --cluster N [--days D]
//                                      a certificate authority for cluster N: DIR/ca.pem, ca.key
//   dengine-ctl certs node DIR --cluster N --node ID [--days D]
//                                      a member's certificate and key, signed by DIR's authority:
//                                      DIR/node-ID.pem, DIR/node-ID.key (src/certs/certs.h)
//   dengine-ctl certs client DIR NAME --cluster N [--days D]
//                                      a client's (DEngineClient, dengine): DIR/client-NAME.pem, .key
//
// Exit status: 0 healthy (a torn tail, which start-up cuts, counts as healthy) or done, 1 damaged,
// unreadable or failed, 2 bad usage. Run `wal` on a stopped node: a running one holds the lock.
#include "certs/certs.h"
#include "storage/filesystem.h"
#include "storage/record.h"
#include "storage/wal.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace dengine;
using namespace dengine::storage;

namespace {

int usage()
{
    std::fprintf(stderr, "usage: dengine-ctl wal check DIR\n"
                         "       dengine-ctl wal dump DIR [--all]\n"
                         "       dengine-ctl certs init DIR --cluster N [--days D]\n"
                         "       dengine-ctl certs node DIR --cluster N --node ID [--days D]\n"
                         "       dengine-ctl certs client DIR NAME --cluster N [--days D]\n");
    return 2;
}

int check(const std::string &dir)
{
    WalOptions o;
    o.dir = dir;
    o.readOnly = true;
    std::unique_ptr<Wal> wal;
    RecoveryReport report;
    const StorageStatus st = Wal::open(o, wal, &report);
    if (!st) {
        std::printf("DAMAGED: %s\n", st.message.c_str());
        return 1;
    }
    const raft::HardState hs = wal->hardState();
    const raft::ConfState cs = wal->confState();
    std::printf("ok: %zu segments, %llu entries scanned, %.1f MB read\n", report.segments,
                static_cast<unsigned long long>(report.entries), static_cast<double>(report.bytesScanned) / 1e6);
    std::printf("log: indexes %llu..%llu (the log starts after term %llu)\n", static_cast<unsigned long long>(wal->firstIndex()),
                static_cast<unsigned long long>(wal->lastIndex()), static_cast<unsigned long long>(wal->term(wal->firstIndex() - 1).value_or(0)));
    std::printf("hard state: term %llu, vote %llu, commit %llu\n", static_cast<unsigned long long>(hs.term),
                static_cast<unsigned long long>(hs.vote), static_cast<unsigned long long>(hs.commit));
    std::printf("voters:");
    for (raft::NodeId id : cs.voters)
        std::printf(" %llu", static_cast<unsigned long long>(id));
    std::printf("\n");
    if (!report.tornTail.empty())
        std::printf("torn tail (start-up will cut it): %s\n", report.tornTail.c_str());
    return 0;
}

struct Run {
    raft::Index first = 0, last = 0;
    raft::Term minTerm = 0, maxTerm = 0;
    std::uint64_t bytes = 0;
    std::uint64_t offset = 0;
    void print() const
    {
        if (first == 0)
            return;
        std::printf("  @%-10llu entries %llu..%llu, terms %llu..%llu, %llu payload bytes\n", static_cast<unsigned long long>(offset),
                    static_cast<unsigned long long>(first), static_cast<unsigned long long>(last),
                    static_cast<unsigned long long>(minTerm), static_cast<unsigned long long>(maxTerm),
                    static_cast<unsigned long long>(bytes));
    }
};

int dump(const std::string &dir, bool all)
{
    FileSystem &fs = FileSystem::posix();
    const std::string walDir = joinPath(dir, "wal");
    std::vector<std::string> names;
    if (IoStatus st = fs.list(walDir, names); !st) {
        std::printf("cannot list: %s\n", st.message().c_str());
        return 1;
    }
    bool damaged = false;
    for (const std::string &name : names) {
        std::uint64_t sequence = 0;
        const WalFileKind kind = parseWalFileName(name, sequence);
        if (kind == WalFileKind::Free) {
            std::printf("%s: a compacted segment file kept for reuse\n", name.c_str());
            continue;
        }
        if (kind != WalFileKind::Segment) {
            std::printf("%s: not a segment, ignored\n", name.c_str());
            continue;
        }
        const std::string path = joinPath(walDir, name);
        std::unique_ptr<File> file;
        std::uint64_t size = 0;
        if (IoStatus st = fs.open(path, OpenMode::ReadOnly, file); !st || !file->size(size)) {
            std::printf("%s: cannot open: %s\n", path.c_str(), st.message().c_str());
            damaged = true;
            continue;
        }
        std::string buf(size, '\0');
        std::size_t got = 0;
        if (IoStatus st = file->read(buf.data(), buf.size(), 0, got); !st) {
            std::printf("%s: cannot read: %s\n", path.c_str(), st.message().c_str());
            damaged = true;
            continue;
        }
        buf.resize(got);
        std::printf("segment %s (%llu bytes)\n", path.c_str(), static_cast<unsigned long long>(got));
        std::uint64_t offset = 0;
        Run run;
        for (;;) {
            DecodedRecord rec;
            std::string why;
            const DecodeStatus ds = decodeRecord(std::string_view(buf).substr(offset), rec, why, offset, sequence);
            if (ds != DecodeStatus::Ok) {
                run.print();
                const char *what = ds == DecodeStatus::End ? "an all-zero header"
                    : ds == DecodeStatus::Stale            ? "an earlier segment's record"
                    : ds == DecodeStatus::Truncated        ? "a record that runs past the end of the file"
                    : ds == DecodeStatus::Torn             ? "a torn record"
                                                           : "a damaged record";
                std::printf("  @%-10llu the records stop: %s%s%s (%llu bytes follow; the check below judges them)\n",
                            static_cast<unsigned long long>(offset), what, why.empty() ? "" : ": ", why.c_str(),
                            static_cast<unsigned long long>(got - offset));
                break;
            }
            if (rec.type == RecordType::Entry) {
                raft::Index index;
                raft::Term term;
                peekEntry(rec.payload, index, term);
                const std::uint64_t bytes = rec.payload.size() - 17;
                if (all) {
                    std::printf("  @%-10llu entry index %llu term %llu, %llu bytes\n", static_cast<unsigned long long>(offset),
                                static_cast<unsigned long long>(index), static_cast<unsigned long long>(term),
                                static_cast<unsigned long long>(bytes));
                } else if (run.first != 0 && index == run.last + 1) {
                    run.last = index;
                    run.maxTerm = std::max(run.maxTerm, term);
                    run.bytes += bytes;
                } else {
                    run.print(); // a new run: the first, or an overwrite of a suffix
                    run = Run{index, index, term, term, bytes, offset};
                }
            } else {
                run.print();
                run = Run{};
                std::printf("  @%-10llu %s", static_cast<unsigned long long>(offset), toString(rec.type));
                SegmentHeader h;
                raft::HardState hs;
                raft::ConfState cs;
                raft::Index i;
                raft::Term t;
                if (rec.type == RecordType::SegmentHeader && decodeSegmentHeader(rec.payload, h))
                    std::printf(" sequence %llu, continues the log after index %llu term %llu", static_cast<unsigned long long>(h.sequence),
                                static_cast<unsigned long long>(h.prevIndex), static_cast<unsigned long long>(h.prevTerm));
                else if (rec.type == RecordType::HardState && decodeHardState(rec.payload, hs))
                    std::printf(" term %llu vote %llu commit %llu", static_cast<unsigned long long>(hs.term),
                                static_cast<unsigned long long>(hs.vote), static_cast<unsigned long long>(hs.commit));
                else if (rec.type == RecordType::ConfState && decodeConfState(rec.payload, cs)) {
                    std::printf(" voters");
                    for (raft::NodeId id : cs.voters)
                        std::printf(" %llu", static_cast<unsigned long long>(id));
                } else if (rec.type == RecordType::LogStart && decodeLogStart(rec.payload, i, t)) {
                    std::printf(" the log now starts after index %llu term %llu", static_cast<unsigned long long>(i),
                                static_cast<unsigned long long>(t));
                } else if (rec.type == RecordType::LogReset && decodeLogStart(rec.payload, i, t)) {
                    std::printf(" a snapshot replaced the log: it is empty after index %llu term %llu", static_cast<unsigned long long>(i),
                                static_cast<unsigned long long>(t));
                } else if (std::uint64_t synced = 0; rec.type == RecordType::Synced && decodeSynced(rec.payload, synced)) {
                    std::printf(" durable up to offset %llu", static_cast<unsigned long long>(synced));
                }
                if (rec.type == RecordType::SegmentHeader && h.recycled)
                    std::printf(" (a recycled file)");
                std::printf("\n");
            }
            offset += rec.size;
            if (rec.type == RecordType::SegmentEnd) {
                run.print();
                std::printf("  (%llu bytes after the segment's end record, not read)\n", static_cast<unsigned long long>(got - offset));
                break;
            }
        }
    }
    std::printf("\n");
    const int verdict = check(dir);
    return damaged || verdict != 0 ? 1 : 0;
}

} // namespace

int makeCertificates(int argc, char **argv)
{
    // dengine-ctl certs init|node DIR --cluster N [--node ID] [--days D]; certs client DIR NAME ...
    const std::string cmd = argv[2];
    const std::string dir = argv[3];
    dengine::certs::Options o;
    std::uint64_t node = 0;
    const bool client = cmd == "client";
    if (client && argc < 5)
        return usage();
    const std::string clientName = client ? argv[4] : "";
    for (int i = client ? 5 : 4; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        char *end = nullptr;
        const unsigned long long v = std::strtoull(argv[i + 1], &end, 10);
        if (*end != '\0')
            return usage();
        if (!std::strcmp(argv[i], "--cluster"))
            o.cluster = v;
        else if (!std::strcmp(argv[i], "--node"))
            node = v;
        else if (!std::strcmp(argv[i], "--days") && v > 0 && v < 100000)
            o.days = static_cast<int>(v);
        else
            return usage();
    }
    std::string error;
    if (cmd == "init" && node == 0) {
        if (!dengine::certs::createAuthority(dir, o, &error)) {
            std::fprintf(stderr, "dengine-ctl: %s\n", error.c_str());
            return 1;
        }
        std::printf("made %s/ca.pem and %s/ca.key (the key signs members: keep it off the nodes)\n", dir.c_str(), dir.c_str());
        return 0;
    }
    if (client && node == 0) {
        if (!dengine::certs::createClient(dir, clientName, o, &error)) {
            std::fprintf(stderr, "dengine-ctl: %s\n", error.c_str());
            return 1;
        }
        std::printf("made %s/client-%s.pem and %s/client-%s.key for %s (members take it on their client port)\n", dir.c_str(),
                    clientName.c_str(), dir.c_str(), clientName.c_str(), dengine::certs::clientName(clientName, o.cluster).c_str());
        return 0;
    }
    if (cmd == "node" && node != 0) {
        if (!dengine::certs::createMember(dir, node, o, &error)) {
            std::fprintf(stderr, "dengine-ctl: %s\n", error.c_str());
            return 1;
        }
        std::printf("made %s/node-%llu.pem and %s/node-%llu.key for %s\n", dir.c_str(), static_cast<unsigned long long>(node), dir.c_str(),
                    static_cast<unsigned long long>(node), dengine::certs::memberName(node, o.cluster).c_str());
        return 0;
    }
    return usage();
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !std::strcmp(argv[1], "certs"))
        return makeCertificates(argc, argv);
    if (argc < 4 || std::strcmp(argv[1], "wal") != 0)
        return usage();
    const std::string cmd = argv[2];
    const std::string dir = argv[3];
    if (cmd == "check" && argc == 4)
        return check(dir);
    if (cmd == "dump" && (argc == 4 || (argc == 5 && !std::strcmp(argv[4], "--all"))))
        return dump(dir, argc == 5);
    return usage();
}
