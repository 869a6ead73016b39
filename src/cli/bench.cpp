// SPDX-License-Identifier: Apache-2.0
// `dengine bench`: the reference workload (../shared/bench/README.md) through DEngineClient, the
// way an application reaches a standalone cluster. Closed loop: each of `c` clients keeps one call
// outstanding, no think time, all pipelined on the client's connection to the leader. Key 16 B
// ("key" and 13 digits, every put a new key), value 128 B (--value-size); reads hit one key.
//
// Rows: put:C (writes), lget:C (linearizable gets), leaseget:C (lease gets), sget:C (local gets,
// etcd's "serializable"). Progress on stderr every second; a table on stdout, one line per row in
// the column layout of etcd-baseline.sh ("3 dclient put 64 <ops/s> <p50 ms> <p99 ms> <errors>
// <cpu%>", cpu% of this process only), or JSON lines with --json.
#include "cli/bench.h"
#include "cli/benchkit.h"

#include <dengine/dengineclient.h>

#include <QtCore/QCoreApplication>
#include <QtCore/QDateTime>
#include <QtCore/QElapsedTimer>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QTimer>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <vector>

#include <unistd.h>

namespace dengine::cli {

namespace {

using Clock = std::chrono::steady_clock;

double cpuSeconds()
{
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

using bench::keyOf;
using bench::pump;

struct Row {
    QString load;
    int clients = 1;
};

struct Result {
    double opsPerSecond = 0, p50ms = 0, p99ms = 0, cpuPercent = 0;
    quint64 errors = 0;
    QString firstError;
};

Result runRow(DEngineClient &client, const Row &row, const BenchOptions &o, quint64 &nextKey)
{
    const bool isPut = row.load == QLatin1String("put");
    const auto consistency = row.load == QLatin1String("lget") ? DEngineInterface::Consistency::Linearizable
        : row.load == QLatin1String("leaseget")                ? DEngineInterface::Consistency::Lease
                                                               : DEngineInterface::Consistency::Local;
    const QByteArray value(o.valueSize, 'v');
    std::vector<double> latencies;
    latencies.reserve(1 << 20);
    quint64 done = 0;
    Result r;
    bool measuring = false, running = true;
    int outstanding = 0;
    std::function<void()> issue = [&] {
        if (!running)
            return;
        const auto start = Clock::now();
        QFuture<DEngineResult> f = isPut ? client.put(keyOf(nextKey++), value) : client.get("readkey000000000", consistency);
        ++outstanding;
        f.then([&, start](const DEngineResult &res) {
            --outstanding;
            if (measuring) {
                ++done;
                if (!res.ok()) {
                    ++r.errors;
                    if (r.firstError.isEmpty())
                        r.firstError = res.message;
                }
                latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
            }
            issue();
        });
    };
    for (int c = 0; c < row.clients; ++c)
        issue();
    pump([] { return false; }, 500); // warm-up
    measuring = true;
    const double cpu0 = cpuSeconds();
    const auto t0 = Clock::now();
    const bool tty = ::isatty(STDERR_FILENO);
    for (int s = 0; s < o.seconds; ++s) {
        const quint64 before = done;
        pump([] { return false; }, 1000);
        const int width = 20, filled = (s + 1) * width / std::max(1, o.seconds);
        std::fprintf(stderr, "%s%-8s c=%-3d [%s%s] %d/%d s  %7.0f ops/s%s", tty ? "\r" : "", qPrintable(row.load), row.clients,
                     std::string(static_cast<std::size_t>(filled), '#').c_str(), std::string(static_cast<std::size_t>(width - filled), '.').c_str(),
                     s + 1, o.seconds, static_cast<double>(done - before), tty ? "" : "\n");
        std::fflush(stderr);
    }
    if (tty)
        std::fprintf(stderr, "\n");
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    r.cpuPercent = 100 * (cpuSeconds() - cpu0) / wall;
    measuring = false;
    running = false;
    pump([&] { return outstanding == 0; }, 30000); // the calls in flight finish before the next row
    r.opsPerSecond = static_cast<double>(done) / wall;
    std::sort(latencies.begin(), latencies.end());
    if (!latencies.empty()) {
        r.p50ms = latencies[latencies.size() / 2];
        r.p99ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
    }
    return r;
}

} // namespace

int runBench(const DEngineClientConfig &config, const BenchOptions &o)
{
    std::vector<Row> rows;
    for (const QString &spec : o.rows.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        const QStringList parts = spec.split(QLatin1Char(':'));
        bool ok = false;
        const int c = parts.size() == 2 ? parts[1].toInt(&ok) : 0;
        static const QStringList loads{QStringLiteral("put"), QStringLiteral("lget"), QStringLiteral("leaseget"), QStringLiteral("sget")};
        if (!ok || c < 1 || c > 10000 || !loads.contains(parts[0])) {
            std::fprintf(stderr, "dengine: bench: row \"%s\": LOAD:CLIENTS with LOAD put, lget, leaseget or sget\n", qPrintable(spec));
            return 2;
        }
        rows.push_back({parts[0], c});
    }
    if (rows.empty() || o.seconds < 1 || o.valueSize < 0) {
        std::fprintf(stderr, "dengine: bench: --rows, --seconds (>= 1) and --value-size (>= 0) are needed\n");
        return 2;
    }
    DEngineClientConfig c = config;
    c.maxPendingRequests = std::max(c.maxPendingRequests, 20000);
    DEngineClient client(c);
    if (!client.start() || !client.waitForReady(o.timeoutMs)) {
        std::fprintf(stderr, "dengine: bench: no ready member within %d ms: %s\n", o.timeoutMs, qPrintable(client.errorString()));
        return 3;
    }
    // Wait (bounded) for the client to reach the leader: its figures are the leader's, as etcd's are.
    pump([&] { return client.role() == DEngineInterface::Role::Leader; }, 3000);
    const DEngineResult seed = DEngineInterface::waitForResult(client.put("readkey000000000", QByteArray(o.valueSize, 'v')));
    if (!seed.ok()) {
        std::fprintf(stderr, "dengine: bench: the first write failed: %s\n", qPrintable(seed.message));
        return 4;
    }
    // A run's keys start after the ones written before (the cluster may hold an earlier run's).
    quint64 nextKey = static_cast<quint64>(QDateTime::currentMSecsSinceEpoch()) * 1000;
    if (!o.json) {
        std::printf("dengine bench: DEngineClient to %s (member %llu, %s), value %d B, key 16 B, %d s per row; the cluster's fsync setting\n",
                    qPrintable(client.connectedEndpoint()), static_cast<unsigned long long>(client.nodeId()),
                    client.role() == DEngineInterface::Role::Leader ? "the leader" : "a follower", o.valueSize, o.seconds);
        std::printf("%-3s %-7s %-8s %4s %10s %9s %9s %6s %6s\n", "N", "tool", "load", "c", "ops/s", "p50_ms", "p99_ms", "errors", "cpu%");
    }
    int exitCode = 0;
    for (const Row &row : rows) {
        const Result r = runRow(client, row, o, nextKey);
        if (o.json) {
            std::printf("%s\n", QJsonDocument(QJsonObject{{QStringLiteral("load"), row.load},
                                                          {QStringLiteral("clients"), row.clients},
                                                          {QStringLiteral("opsPerSecond"), r.opsPerSecond},
                                                          {QStringLiteral("p50ms"), r.p50ms},
                                                          {QStringLiteral("p99ms"), r.p99ms},
                                                          {QStringLiteral("errors"), static_cast<qint64>(r.errors)},
                                                          {QStringLiteral("clientCpuPercent"), r.cpuPercent}})
                                    .toJson(QJsonDocument::Compact)
                                    .constData());
        } else {
            std::printf("%-3d %-7s %-8s %4d %10.0f %9.2f %9.2f %6llu %6.0f\n", 3, "dclient", qPrintable(row.load), row.clients, r.opsPerSecond, r.p50ms,
                        r.p99ms, static_cast<unsigned long long>(r.errors), r.cpuPercent);
        }
        std::fflush(stdout);
        if (r.errors > 0) {
            std::fprintf(stderr, "dengine: bench: %s c=%d: %llu calls failed, the first: %s\n", qPrintable(row.load), row.clients,
                         static_cast<unsigned long long>(r.errors), qPrintable(r.firstError));
            exitCode = 4;
        }
    }
    client.stop();
    client.waitForStopped(5000);
    return exitCode;
}

} // namespace dengine::cli
