// SPDX-License-Identifier: Apache-2.0
// snapshot_bench: what snapshots and compaction cost and save, measured on this machine.
//
// Three embedded nodes in this process on 127.0.0.1, data directories under --dir, fsync on. Key
// 16 B ("key%013d", every put a new key), value 128 B, calls to the leader, closed loop.
//
//  1. "history": --writes puts (default 1,000,000) at --clients in flight (default 256), once with
//     the default compaction (snapshotEntries 100000) and once with compaction off (snapshotEntries
//     and snapshotBytes 0). For each: the write rate, each node's disk use (log, snapshots), and a
//     follower's restart (stop, start on the same directory): the time until it has applied the
//     index it had, and until it is ready.
//  2. "install": a follower of the compacted cluster loses its data directory and starts empty; the
//     leader streams it its snapshot. Printed: the file's size and the time from start to installed
//     (network, checksum, disk, restore), as MB/s, next to this disk's write rate for a file of the
//     same size written in 1 MiB pieces and fdatasynced once (measured in the same run).
//  3. "stall": put latency at 16 clients over --seconds (default 20) on a cluster holding --keys
//     keys (default 500000), with snapshots every --snapshot-entries entries (default 100000, the
//     engine's default: several during the window) and with snapshots off: p50, p99, p99.9 and
//     max, and the snapshots taken in the window.
//
// Part 1 runs again with keys wrapping around --overwrite-keys (default 10000): a state that stays
// small while the history grows, the case compaction is for.
//
//   snapshot_bench [--dir DIR] [--writes N] [--clients C] [--keys K] [--seconds S] [--overwrite-keys K] [--parts 1,2,3]
#include <dengine/dengine.h>

#include "cli/benchkit.h"

#include "../tests/auto/common/testports.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QDir>
#include <QtCore/QDirIterator>
#include <QtCore/QElapsedTimer>
#include <QtCore/QLoggingCategory>
#include <QtCore/QTimer>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using dengine::test::freePorts;

using dengine::bench::keyOf;
using dengine::bench::pump;

// The disk space the files take (allocated blocks: a preallocated segment counts whole).
qint64 bytesUnder(const QString &path, const QString &pattern = QStringLiteral("*"))
{
    qint64 total = 0;
    QDirIterator it(path, {pattern}, QDir::Files, QDirIterator::Subdirectories);
    while (it.hasNext()) {
        struct stat st {};
        if (::stat(QFile::encodeName(it.next()).constData(), &st) == 0)
            total += static_cast<qint64>(st.st_blocks) * 512;
    }
    return total;
}

double mib(qint64 bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// What the snapshot lines of the log said (the engine logs each snapshot it writes).
int g_snapshotsWritten = 0;
QString g_lastDelivery; // the transport's line for the last snapshot sent: size, seconds, MiB/s
QString g_lastInstall;  // the engine's line for the last snapshot installed: keys, size, ms
QtMessageHandler g_previousHandler = nullptr;
void countSnapshots(QtMsgType type, const QMessageLogContext &context, const QString &message)
{
    if (message.contains(QLatin1String(": snapshot at index")) && message.contains(QLatin1String("written in")))
        ++g_snapshotsWritten;
    if (message.contains(QLatin1String("delivered to node")))
        g_lastDelivery = message;
    if (message.contains(QLatin1String("installed snapshot")))
        g_lastInstall = message;
    if (type >= QtWarningMsg && g_previousHandler)
        g_previousHandler(type, context, message);
}

class Cluster {
public:
    Cluster(const QString &dir, qint64 snapshotEntries) : m_dir(dir)
    {
        const QList<quint16> ports = freePorts(4);
        for (int i = 0; i < 3; ++i)
            m_peers.insert(NodeId(i + 1), QStringLiteral("127.0.0.1:%1").arg(ports[i]));
        spareAddress = QStringLiteral("127.0.0.1:%1").arg(ports[3]);
        QDir(dir).removeRecursively();
        QDir().mkpath(dir);
        for (NodeId id = 1; id <= 3; ++id) {
            DEngineConfig c;
            c.nodeId = id;
            c.peers = m_peers;
            c.dataDirectory = QDir(dir).filePath(QStringLiteral("node%1").arg(id));
            c.maxPendingRequests = 1000000;
            c.insecure = true;
            c.requestTimeoutMs = 30000;
            c.snapshotEntries = snapshotEntries;
            if (snapshotEntries == 0)
                c.snapshotBytes = 0;
            configs[id] = c;
            start(id);
        }
    }
    void start(NodeId id)
    {
        nodes[id] = std::make_unique<DEngine>(configs[id]);
        nodes[id]->start();
    }
    DEngine *leader()
    {
        for (auto &[id, n] : nodes)
            if (n && n->isReady() && n->role() == DEngine::Role::Leader)
                return n.get();
        return nullptr;
    }
    DEngine *waitForLeader()
    {
        DEngine *l = nullptr;
        pump([&] { return (l = leader()) != nullptr; }, 60000);
        if (!l) {
            std::fprintf(stderr, "snapshot_bench: no leader within 60 s\n");
            std::exit(1);
        }
        return l;
    }
    NodeId followerId()
    {
        for (auto &[id, n] : nodes)
            if (n && n->role() != DEngine::Role::Leader)
                return id;
        return 0;
    }
    // Starts node 4 in join mode (an empty data directory, one member known).
    void startJoiner()
    {
        DEngineConfig c = configs[1];
        c.nodeId = 4;
        c.join = true;
        c.peers = {{4, spareAddress}, {1, m_peers.value(1)}};
        c.dataDirectory = QDir(m_dir).filePath(QStringLiteral("node4"));
        configs[4] = c;
        start(4);
    }
    std::map<NodeId, DEngineConfig> configs;
    std::map<NodeId, std::unique_ptr<DEngine>> nodes;
    QString spareAddress;

private:
    QString m_dir;
    QMap<NodeId, QString> m_peers;
};

// Puts keys [from, to) with `clients` calls in flight; returns the seconds it took (or -1 on errors).
// `keySpace` > 0: keys wrap around it (overwrites), so the state stays that size while the history grows.
double putRange(DEngine *via, quint64 from, quint64 to, int clients, bool progress, quint64 keySpace = 0)
{
    const QByteArray value(128, 'v');
    quint64 next = from, done = 0, errors = 0;
    QObject context;
    std::function<void()> issue = [&] {
        if (next >= to)
            return;
        const quint64 i = next++;
        via->put(keyOf(keySpace ? i % keySpace : i), value).then(&context, [&](const DEngineResult &r) {
            ++done;
            if (!r.ok())
                ++errors;
            issue();
        });
    };
    const auto t0 = Clock::now();
    for (int c = 0; c < clients; ++c)
        issue();
    const quint64 total = to - from;
    quint64 lastShown = 0;
    QTimer show;
    if (progress) {
        QObject::connect(&show, &QTimer::timeout, [&] {
            if (done - lastShown >= total / 20 || done == total) {
                std::fprintf(stderr, "\r  %llu/%llu writes", static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
                lastShown = done;
            }
        });
        show.start(500);
    }
    pump([&] { return done >= total; }, 3600 * 1000);
    if (progress)
        std::fprintf(stderr, "\n");
    if (errors > 0) {
        std::fprintf(stderr, "snapshot_bench: %llu writes failed\n", static_cast<unsigned long long>(errors));
        return -1;
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

void history(const QString &base, quint64 writes, int clients, quint64 keySpace, Cluster **keep, std::unique_ptr<Cluster> &kept)
{
    for (const bool compaction : {true, false}) {
        const QString dir = QDir(base).filePath(compaction ? QStringLiteral("compacted") : QStringLiteral("whole"));
        auto cluster = std::make_unique<Cluster>(dir, compaction ? 100000 : 0);
        DEngine *leader = cluster->waitForLeader();
        std::fprintf(stderr, "history, compaction %s:\n", compaction ? "on" : "off");
        const double seconds = putRange(leader, 0, writes, clients, true, keySpace);
        if (seconds < 0)
            std::exit(1);
        // Every node applied everything, and took its last snapshot.
        const quint64 commit = leader->commitIndex();
        pump([&] {
            for (auto &[id, n] : cluster->nodes)
                if (n->appliedIndex() < commit)
                    return false;
            return true;
        },
             60000);
        pump([] { return false; }, 2000);
        std::printf("history  compaction=%-3s writes=%llu keys=%llu clients=%d rate=%.0f/s", compaction ? "on" : "off",
                    static_cast<unsigned long long>(writes), static_cast<unsigned long long>(keySpace ? keySpace : writes), clients,
                    static_cast<double>(writes) / seconds);
        for (auto &[id, cfg] : cluster->configs)
            std::printf("  node%llu: log %.1f MiB, snapshots %.1f MiB", static_cast<unsigned long long>(id),
                        mib(bytesUnder(cfg.dataDirectory + QStringLiteral("/wal"))), // recycled segments too
                        mib(bytesUnder(cfg.dataDirectory + QStringLiteral("/snap"), QStringLiteral("*.snap"))));
        std::printf("\n");
        // A follower restarts on its directory.
        const NodeId f = cluster->followerId();
        const quint64 had = cluster->nodes[f]->appliedIndex();
        const qint64 diskBytes = bytesUnder(cluster->configs[f].dataDirectory);
        cluster->nodes[f]->stop();
        cluster->nodes[f]->waitForStopped(30000);
        cluster->nodes[f].reset();
        QElapsedTimer t;
        t.start();
        cluster->start(f);
        DEngine *n = cluster->nodes[f].get();
        pump([&] { return n->appliedIndex() >= had; }, 600000);
        const qint64 appliedMs = t.elapsed();
        pump([&] { return n->isReady(); }, 600000);
        std::printf("restart  compaction=%-3s node%llu: %.1f MiB on disk, applied index %llu again in %lld ms, ready in %lld ms\n",
                    compaction ? "on" : "off", static_cast<unsigned long long>(f), mib(diskBytes), static_cast<unsigned long long>(had),
                    static_cast<long long>(appliedMs), static_cast<long long>(t.elapsed()));
        std::fflush(stdout);
        if (compaction && keep) {
            kept = std::move(cluster);
            *keep = kept.get();
        }
    }
}

// Writes `bytes` to a new file in 1 MiB pieces and fdatasyncs it once: MB/s.
double diskWriteRate(const QString &dir, qint64 bytes)
{
    const QByteArray path = QDir(dir).filePath(QStringLiteral("disk-rate.tmp")).toLocal8Bit();
    const int fd = ::open(path.constData(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return 0;
    const std::vector<char> piece(1 << 20, 'd');
    const auto t0 = Clock::now();
    for (qint64 done = 0; done < bytes;) {
        const ssize_t n = ::write(fd, piece.data(), static_cast<std::size_t>(std::min<qint64>(piece.size(), bytes - done)));
        if (n <= 0)
            break;
        done += n;
    }
    ::fdatasync(fd);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    ::close(fd);
    ::unlink(path.constData());
    return static_cast<double>(bytes) / 1e6 / seconds;
}

void install(Cluster &cluster, const QString &base)
{
    // A new member (a wiped follower under its old id could not be repaired: it acknowledged
    // entries it no longer has): started in join mode, added as a learner; the leader's log is
    // compacted, so it gets the snapshot, then the log after it.
    DEngine *leader = cluster.waitForLeader();
    const quint64 target = leader->commitIndex();
    cluster.startJoiner();
    DEngine *n = cluster.nodes[4].get();
    QElapsedTimer t;
    t.start();
    auto added = leader->addLearner(4, cluster.spareAddress);
    pump([&] { return added.isFinished() && n->appliedIndex() >= target; }, 600000);
    const qint64 ms = std::max<qint64>(1, t.elapsed());
    if (!added.isFinished() || !added.result().ok() || n->appliedIndex() < target) {
        std::fprintf(stderr, "snapshot_bench: node 4 did not catch up: %s\n", added.isFinished() ? qPrintable(added.result().message) : "no answer");
        return;
    }
    const QString dir = cluster.configs[4].dataDirectory;
    const qint64 snapBytes = bytesUnder(dir + QStringLiteral("/snap"), QStringLiteral("*.snap"));
    const double installRate = static_cast<double>(snapBytes) / 1e6 / (static_cast<double>(ms) / 1000.0);
    const double diskRate = diskWriteRate(base, std::max<qint64>(snapBytes, 64LL << 20));
    std::printf("install  node4 joins (addLearner): snapshot %.1f MiB, caught up to index %llu in %lld ms: %.0f MB/s; this disk writes "
                "%.0f MB/s (1 MiB pieces, one fdatasync); ratio %.2f\n",
                mib(snapBytes), static_cast<unsigned long long>(target), static_cast<long long>(ms), installRate, diskRate,
                diskRate > 0 ? installRate / diskRate : 0.0);
    std::printf("install  the stream: %s\ninstall  the install: %s\n", qPrintable(g_lastDelivery.isEmpty() ? QStringLiteral("(no snapshot sent: the log was not compacted)") : g_lastDelivery),
                qPrintable(g_lastInstall.isEmpty() ? QStringLiteral("-") : g_lastInstall));
    std::fflush(stdout);
}

void stall(const QString &base, quint64 keys, double seconds, qint64 snapshotEntries)
{
    for (const bool snapshots : {false, true}) {
        const QString dir = QDir(base).filePath(snapshots ? QStringLiteral("stall-on") : QStringLiteral("stall-off"));
        Cluster cluster(dir, snapshots ? snapshotEntries : 0);
        DEngine *leader = cluster.waitForLeader();
        // The keys, in batches (quick), then the measured puts.
        const QByteArray value(128, 'v');
        quint64 loaded = 0, batchesInFlight = 0;
        while (loaded < keys) {
            QList<DEngineOperation> ops;
            for (int i = 0; i < 500 && loaded < keys; ++i)
                ops << DEngineOperation::put(keyOf(loaded++), value);
            ++batchesInFlight;
            leader->batch(ops).then(leader, [&](const DEngineResult &) { --batchesInFlight; });
            if (batchesInFlight >= 32)
                pump([&] { return batchesInFlight < 16; }, 60000);
        }
        pump([&] { return batchesInFlight == 0; }, 60000);
        std::vector<double> latencies;
        quint64 next = keys;
        bool running = true;
        QObject context;
        std::function<void()> issue = [&] {
            if (!running)
                return;
            const auto start = Clock::now();
            leader->put(keyOf(next++), value).then(&context, [&, start](const DEngineResult &) {
                if (running)
                    latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
                issue();
            });
        };
        for (int c = 0; c < 16; ++c)
            issue();
        pump([] { return false; }, 500);
        latencies.clear();
        g_snapshotsWritten = 0;
        const auto t0 = Clock::now();
        pump([] { return false; }, static_cast<int>(seconds * 1000));
        const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
        running = false;
        const int taken = g_snapshotsWritten;
        pump([] { return false; }, 300);
        std::sort(latencies.begin(), latencies.end());
        const auto at = [&](double q) { return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1, static_cast<std::size_t>(latencies.size() * q))]; };
        std::printf("stall    snapshots=%-3s keys=%llu put c=16: %.0f/s p50 %.2f ms p99 %.2f ms p99.9 %.2f ms max %.2f ms; snapshots written "
                    "in the window (3 nodes): %d\n",
                    snapshots ? "on" : "off", static_cast<unsigned long long>(keys), static_cast<double>(latencies.size()) / wall, at(0.5),
                    at(0.99), at(0.999), latencies.empty() ? 0.0 : latencies.back(), taken);
        std::fflush(stdout);
    }
}

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral("Snapshots and compaction: disk use, restart, install rate, write stall."));
    p.addHelpOption();
    QCommandLineOption dirOpt(QStringLiteral("dir"), QStringLiteral("Data directories go here (on the disk to measure)."), QStringLiteral("DIR"),
                              QDir::temp().filePath(QStringLiteral("dengine-snapshot-bench")));
    QCommandLineOption writesOpt(QStringLiteral("writes"), QStringLiteral("Writes of the history part."), QStringLiteral("N"), QStringLiteral("1000000"));
    QCommandLineOption clientsOpt(QStringLiteral("clients"), QStringLiteral("Calls in flight in the history part."), QStringLiteral("C"), QStringLiteral("256"));
    QCommandLineOption keysOpt(QStringLiteral("keys"), QStringLiteral("Keys held during the stall part."), QStringLiteral("K"), QStringLiteral("500000"));
    QCommandLineOption secOpt(QStringLiteral("seconds"), QStringLiteral("Measured seconds of the stall part, per row."), QStringLiteral("S"), QStringLiteral("20"));
    QCommandLineOption everyOpt(QStringLiteral("snapshot-entries"), QStringLiteral("snapshotEntries during the stall part."), QStringLiteral("N"),
                                QStringLiteral("100000"));
    QCommandLineOption spaceOpt(QStringLiteral("overwrite-keys"), QStringLiteral("History part again with keys wrapping around K (overwrites; 0: skip)."),
                                QStringLiteral("K"), QStringLiteral("10000"));
    QCommandLineOption partsOpt(QStringLiteral("parts"), QStringLiteral("Parts to run: 1 history, 2 install (needs 1), 3 stall."), QStringLiteral("LIST"),
                                QStringLiteral("1,2,3"));
    for (const auto *o : {&dirOpt, &writesOpt, &clientsOpt, &keysOpt, &secOpt, &everyOpt, &spaceOpt, &partsOpt})
        p.addOption(*o);
    p.process(app);
    QLoggingCategory::setFilterRules(QStringLiteral("dengine.*.info=true\ndengine.*.debug=false"));
    g_previousHandler = qInstallMessageHandler(countSnapshots);
    const QString base = p.value(dirOpt);
    QDir().mkpath(base);
    const QStringList parts = p.value(partsOpt).split(QLatin1Char(','));
    std::printf("snapshot_bench: 3 embedded nodes, 127.0.0.1, fsync on, key 16 B, value 128 B, dir %s\n", qPrintable(base));
    std::unique_ptr<Cluster> kept;
    Cluster *compacted = nullptr;
    if (parts.contains(QLatin1String("1")))
        history(base, p.value(writesOpt).toULongLong(), p.value(clientsOpt).toInt(), 0, &compacted, kept);
    if (parts.contains(QLatin1String("2")) && compacted)
        install(*compacted, base);
    kept.reset();
    if (parts.contains(QLatin1String("1")) && p.value(spaceOpt).toULongLong() > 0) {
        std::unique_ptr<Cluster> none;
        history(base, p.value(writesOpt).toULongLong(), p.value(clientsOpt).toInt(), p.value(spaceOpt).toULongLong(), nullptr, none);
    }
    if (parts.contains(QLatin1String("3")))
        stall(base, p.value(keysOpt).toULongLong(), p.value(secOpt).toDouble(), p.value(everyOpt).toLongLong());
    QDir(base).removeRecursively();
    return 0;
}
