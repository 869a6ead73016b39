// SPDX-License-Identifier: Apache-2.0
// engine_bench: the reference workload of ../shared/bench/README.md against DEngine.
//
// Three embedded nodes in this process on 127.0.0.1, data directories on the disk under --dir,
// fsync on (the default; durability is never traded here), a new empty cluster for every row, all
// calls to the leader. Closed loop: each client has one call outstanding, no think time. Key 16 B
// ("key%013d", every put a new key), value 128 B; reads hit one existing key.
//
// Rows: put with 1, 16 and 64 clients; linearizable get with 16; lease get with 16 (leaseReads
// on); local get with 16. Then, with three dengine-node processes (like etcd's members): ready
// time (spawn to the first successful put) and failover (kill -9 of the leader to the next
// successful put through a survivor), several trials.
//
// Output: one line per row, "3 dengine <load> <clients> <ops/s> <p50 ms> <p99 ms> <errors>
// <cpu%>", the column layout of etcd-baseline.sh's rows (cpu% is this whole process: nodes and
// clients together; 200 = both cores), then "N=3 ready: ... all=[...]" and "N=3 failover: ...".
//
// With --tls the nodes speak mutual TLS (certificates made under DIR), and the rows are labelled
// "dengtls" instead of "dengine"; without it they run on plain TCP (insecure), as before.
//
//   engine_bench [--dir DIR] [--seconds S] [--rows put:1,put:16,...] [--node PATH] [--trials N] [--tls]
#include <dengine/dengine.h>

#include "cli/benchkit.h"
#include "certs/certs.h"

#include "../tests/auto/common/testports.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QDir>
#include <QtCore/QElapsedTimer>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QLoggingCategory>
#include <QtCore/QProcess>
#include <QtCore/QTimer>
#include <QtNetwork/QTcpServer>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double cpuSeconds()
{
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

using dengine::test::freePorts;

using dengine::bench::keyOf;
using dengine::bench::pump;

struct Row {
    QString load;
    int clients = 1;
};

class InProcessCluster {
public:
    InProcessCluster(const QString &dir, bool leaseReads, bool tls)
    {
        const QList<quint16> ports = freePorts(3);
        QMap<NodeId, QString> peers;
        for (int i = 0; i < 3; ++i)
            peers.insert(NodeId(i + 1), QStringLiteral("127.0.0.1:%1").arg(ports[i]));
        QDir().mkpath(dir);
        if (tls) {
            const std::string certs = QDir(dir).filePath(QStringLiteral("certs")).toStdString();
            QDir().mkpath(QString::fromStdString(certs));
            dengine::certs::Options o;
            o.cluster = 1;
            std::string error;
            bool ok = dengine::certs::createAuthority(certs, o, &error);
            for (NodeId id = 1; ok && id <= 3; ++id)
                ok = dengine::certs::createMember(certs, id, o, &error);
            if (!ok) {
                std::fprintf(stderr, "engine_bench: %s\n", error.c_str());
                std::exit(1);
            }
        }
        for (NodeId id = 1; id <= 3; ++id) {
            DEngineConfig c;
            c.nodeId = id;
            c.peers = peers;
            c.dataDirectory = QDir(dir).filePath(QStringLiteral("node%1").arg(id));
            c.leaseReads = leaseReads;
            c.maxPendingRequests = 1000000;
            if (tls) {
                const QString certs = QDir(dir).filePath(QStringLiteral("certs"));
                c.tlsCaFile = certs + QStringLiteral("/ca.pem");
                c.tlsCertificateFile = certs + QStringLiteral("/node-%1.pem").arg(id);
                c.tlsKeyFile = certs + QStringLiteral("/node-%1.key").arg(id);
            } else {
                c.insecure = true;
            }
            nodes.push_back(std::make_unique<DEngine>(c));
        }
        for (auto &n : nodes)
            n->start();
    }
    DEngine *leader()
    {
        for (auto &n : nodes)
            if (n->isReady() && n->role() == DEngine::Role::Leader)
                return n.get();
        return nullptr;
    }
    std::vector<std::unique_ptr<DEngine>> nodes;
};

struct RowResult {
    double opsPerSecond = 0;
    double p50ms = 0, p99ms = 0;
    quint64 errors = 0;
    double cpuPercent = 0;
};

RowResult runRow(const QString &dir, const Row &row, double seconds, bool tls)
{
    const bool lease = row.load == QLatin1String("leaseget");
    InProcessCluster cluster(dir, lease, tls);
    DEngine *leader = nullptr;
    pump([&] { return (leader = cluster.leader()) != nullptr; }, 60000);
    if (!leader) {
        std::fprintf(stderr, "engine_bench: no leader within 60 s\n");
        std::exit(1);
    }
    const QByteArray value(128, 'v');
    {
        auto f = leader->put("readkey000000000", value);
        pump([&] { return f.isFinished(); }, 30000);
    }
    const bool isPut = row.load == QLatin1String("put");
    const DEngine::Consistency consistency = row.load == QLatin1String("lget") ? DEngine::Consistency::Linearizable
        : lease                                                                ? DEngine::Consistency::Lease
                                                                               : DEngine::Consistency::Local;
    std::vector<double> latencies;
    latencies.reserve(1 << 20);
    quint64 next = 0, errors = 0, done = 0;
    bool measuring = false, running = true;
    QObject context;
    std::function<void()> issue = [&] {
        if (!running)
            return;
        const auto start = Clock::now();
        QFuture<DEngineResult> f = isPut ? leader->put(keyOf(next++), value) : leader->get("readkey000000000", consistency);
        f.then(&context, [&, start](const DEngineResult &r) {
            if (measuring) {
                ++done;
                if (!r.ok())
                    ++errors;
                latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
            }
            issue();
        });
    };
    for (int c = 0; c < row.clients; ++c)
        issue();
    // A short warm-up, then the measured interval.
    pump([] { return false; }, 500);
    measuring = true;
    const double cpu0 = cpuSeconds();
    const auto t0 = Clock::now();
    pump([] { return false; }, static_cast<int>(seconds * 1000));
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu = cpuSeconds() - cpu0;
    measuring = false;
    running = false;
    pump([&] { return false; }, 200); // let the calls in flight finish
    RowResult r;
    r.opsPerSecond = static_cast<double>(done) / wall;
    std::sort(latencies.begin(), latencies.end());
    if (!latencies.empty()) {
        r.p50ms = latencies[latencies.size() / 2];
        r.p99ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
    }
    r.errors = errors;
    r.cpuPercent = 100 * cpu / wall;
    for (auto &n : cluster.nodes)
        n->stop();
    pump([&] {
        for (auto &n : cluster.nodes)
            if (n->isRunning())
                return false;
        return true;
    },
         30000);
    return r;
}

// ---- processes: ready time and failover --------------------------------------------------------

class NodeProcess {
public:
    NodeProcess(const QString &program, const QString &configPath) : m_program(program), m_config(configPath) {}
    void start()
    {
        m_lines.clear();
        m_proc = std::make_unique<QProcess>();
        m_proc->setProcessChannelMode(QProcess::SeparateChannels);
        QObject::connect(m_proc.get(), &QProcess::readyReadStandardOutput, [this] {
            while (m_proc->canReadLine())
                m_lines << QString::fromUtf8(m_proc->readLine()).trimmed();
        });
        m_proc->start(m_program, {QStringLiteral("--config"), m_config});
        m_proc->waitForStarted();
    }
    void command(const QString &line) { m_proc->write((line + QLatin1Char('\n')).toUtf8()); }
    void kill()
    {
        if (m_proc) {
            m_proc->kill();
            m_proc->waitForFinished(5000);
        }
    }
    void stopGracefully()
    {
        if (m_proc && m_proc->state() != QProcess::NotRunning) {
            command(QStringLiteral("stop"));
            if (!m_proc->waitForFinished(10000))
                kill();
        }
    }
    bool running() const { return m_proc && m_proc->state() == QProcess::Running; }
    QStringList &lines() { return m_lines; }
    NodeId leader() const
    {
        for (auto it = m_lines.crbegin(); it != m_lines.crend(); ++it)
            if (it->startsWith(QLatin1String("leader ")))
                return it->mid(7).toULongLong();
        return 0;
    }

private:
    QString m_program, m_config;
    std::unique_ptr<QProcess> m_proc;
    QStringList m_lines;
};

// Sends "put" to the node and waits for its answer line; true on "ok".
bool putVia(NodeProcess &n, const QString &key, int timeoutMs)
{
    const qsizetype before = n.lines().size();
    n.command(QStringLiteral("put %1 v").arg(key));
    bool answered = false, ok = false;
    pump([&] {
        for (qsizetype i = before; i < n.lines().size(); ++i) {
            const QString &l = n.lines()[i];
            if (l.startsWith(QLatin1String("ok ")) || l.startsWith(QLatin1String("fail "))) {
                answered = true;
                ok = l.startsWith(QLatin1String("ok "));
            }
        }
        return answered;
    },
         timeoutMs);
    return ok;
}

void runProcesses(const QString &program, const QString &dir, int trials)
{
    const QList<quint16> ports = freePorts(3);
    QJsonObject peers;
    for (int i = 0; i < 3; ++i)
        peers.insert(QString::number(i + 1), QStringLiteral("127.0.0.1:%1").arg(ports[i]));
    std::vector<std::unique_ptr<NodeProcess>> nodes;
    for (int i = 1; i <= 3; ++i) {
        QJsonObject c;
        c.insert(QStringLiteral("nodeId"), i);
        c.insert(QStringLiteral("peers"), peers);
        c.insert(QStringLiteral("dataDirectory"), QDir(dir).filePath(QStringLiteral("proc%1").arg(i)));
        c.insert(QStringLiteral("insecure"), true); // the ready and failover rows measure elections, not TLS
        const QString path = QDir(dir).filePath(QStringLiteral("node%1.json").arg(i));
        QFile f(path);
        f.open(QIODevice::WriteOnly);
        f.write(QJsonDocument(c).toJson());
        f.close();
        nodes.push_back(std::make_unique<NodeProcess>(program, path));
    }
    // Ready: spawn to the first successful put (a put every 20 ms, round-robin over the members).
    QElapsedTimer t;
    t.start();
    for (auto &n : nodes)
        n->start();
    qint64 readyMs = -1;
    for (int k = 0; readyMs < 0 && t.elapsed() < 60000; ++k) {
        if (putVia(*nodes[static_cast<std::size_t>(k % 3)], QStringLiteral("probe%1").arg(k), 20))
            readyMs = t.elapsed();
    }
    std::printf("N=3 ready: %lld ms (dengine-node processes, spawn to first successful put) all=[%lld]\n", readyMs, readyMs);
    // Failover: kill -9 the leader, then a put every 20 ms through the survivors until one works.
    QList<qint64> failovers;
    for (int trial = 0; trial < trials; ++trial) {
        NodeId leader = 0;
        pump([&] {
            leader = nodes[0]->leader();
            for (auto &n : nodes)
                if (!n->running() || n->leader() != leader)
                    return false;
            return leader != 0;
        },
             30000);
        if (leader == 0)
            break;
        NodeProcess &victim = *nodes[leader - 1];
        QElapsedTimer ft;
        ft.start();
        victim.kill();
        qint64 ms = -1;
        for (int k = 0; ms < 0 && ft.elapsed() < 30000; ++k) {
            NodeProcess &via = *nodes[(leader + static_cast<NodeId>(k % 2)) % 3];
            if (putVia(via, QStringLiteral("after%1x%2").arg(trial).arg(k), 1000))
                ms = ft.elapsed();
        }
        failovers << ms;
        std::printf("  failover trial %d: leader %llu killed, next put ok after %lld ms\n", trial + 1, static_cast<unsigned long long>(leader), ms);
        victim.start(); // rejoins on its data directory
    }
    QList<qint64> sorted = failovers;
    std::sort(sorted.begin(), sorted.end());
    QStringList all;
    for (qint64 v : failovers)
        all << QString::number(v);
    if (!sorted.isEmpty())
        std::printf("N=3 failover: median %lld ms min %lld max %lld (kill -9, election timeout 1000 ms) all=[%s]\n", sorted[sorted.size() / 2],
                    sorted.first(), sorted.last(), qPrintable(all.join(QLatin1Char(' '))));
    for (auto &n : nodes)
        n->stopGracefully();
}

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QLoggingCategory::setFilterRules(QStringLiteral("dengine.*.debug=false\ndengine.*.info=false"));
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral("DEngine under the reference workload of ../shared/bench (3 nodes, fsync on)."));
    p.addHelpOption();
    QCommandLineOption dirOpt(QStringLiteral("dir"), QStringLiteral("Data directories go here (on the disk to measure)."), QStringLiteral("DIR"),
                              QStringLiteral("engine-bench.tmp"));
    QCommandLineOption secOpt(QStringLiteral("seconds"), QStringLiteral("Measured seconds per row."), QStringLiteral("S"), QStringLiteral("5"));
    QCommandLineOption rowsOpt(QStringLiteral("rows"), QStringLiteral("Rows to run, load:clients."), QStringLiteral("LIST"),
                               QStringLiteral("put:1,put:16,put:64,lget:16,leaseget:16,sget:16"));
    QCommandLineOption nodeOpt(QStringLiteral("node"), QStringLiteral("dengine-node, for the ready and failover rows (empty: skip them)."),
                               QStringLiteral("PATH"), QStringLiteral(DENGINE_NODE_PATH));
    QCommandLineOption trialsOpt(QStringLiteral("trials"), QStringLiteral("Failover trials."), QStringLiteral("N"), QStringLiteral("3"));
    p.addOption(dirOpt);
    p.addOption(secOpt);
    p.addOption(rowsOpt);
    p.addOption(nodeOpt);
    QCommandLineOption tlsOpt(QStringLiteral("tls"), QStringLiteral("Mutual TLS between the nodes (rows labelled dengtls)."));
    p.addOption(trialsOpt);
    p.addOption(tlsOpt);
    p.process(app);
    const bool tls = p.isSet(tlsOpt);

    const QString dir = QDir(p.value(dirOpt)).absolutePath();
    const double seconds = p.value(secOpt).toDouble();
    std::printf("engine_bench: 3 embedded nodes in one process on 127.0.0.1, fsync on, %s, data in %s, %.0f s per row, key 16 B, "
                "value 128 B, closed loop, all calls to the leader, a new cluster per row\n",
                tls ? "mutual TLS 1.3 between nodes" : "plain TCP between nodes", qPrintable(dir), seconds);
    std::printf("%-3s %-7s %-8s %4s %10s %9s %9s %6s %6s\n", "N", "tool", "load", "c", "ops/s", "p50_ms", "p99_ms", "errors", "cpu%");
    int rowNumber = 0;
    for (const QString &spec : p.value(rowsOpt).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        Row row{spec.section(QLatin1Char(':'), 0, 0), spec.section(QLatin1Char(':'), 1, 1).toInt()};
        const QString rowDir = QDir(dir).filePath(QStringLiteral("row%1").arg(++rowNumber));
        QDir(rowDir).removeRecursively();
        const RowResult r = runRow(rowDir, row, seconds, tls);
        QDir(rowDir).removeRecursively();
        std::printf("%-3d %-7s %-8s %4d %10.0f %9.2f %9.2f %6llu %6.0f\n", 3, tls ? "dengtls" : "dengine", qPrintable(row.load), row.clients, r.opsPerSecond, r.p50ms,
                    r.p99ms, static_cast<unsigned long long>(r.errors), r.cpuPercent);
        std::fflush(stdout);
    }
    const QString node = p.value(nodeOpt);
    if (!node.isEmpty() && QFile::exists(node)) {
        const QString procDir = QDir(dir).filePath(QStringLiteral("processes"));
        QDir(procDir).removeRecursively();
        QDir().mkpath(procDir);
        runProcesses(node, procDir, p.value(trialsOpt).toInt());
        QDir(procDir).removeRecursively();
    } else {
        std::printf("(ready and failover rows skipped: no dengine-node at \"%s\")\n", qPrintable(node));
    }
    return 0;
}
