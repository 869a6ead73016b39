// SPDX-License-Identifier: Apache-2.0
// dqueue: producers, consumers, stats and a benchmark for the replicated work queue (dqueue.h), as
// a client of a dengined cluster (--endpoints) or as an embedded member of one (--node CONFIG:
// the process is a DEngine node itself, with the same queue code).
//
// Lines on standard output (one per event, flushed, for scripts and tests):
//   produce: ENQ <body> <id>        the enqueue was acknowledged (durable on a majority)
//            DUP <body>             its idempotency key was seen: not added again (a retry)
//   consume: GOT <body> <id> <claim revision> <attempts>
//            ACK <body> <id> <rev>  acknowledged (deleted, at that revision; or found acked already)
//            LOST <body> <id>       the ack came too late: the claim had run out
#include "dqueue.h"

#include <dengine/dengine.h>
#include <dengine/dengineclient.h>

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QElapsedTimer>
#include <QtCore/QLoggingCategory>
#include <QtCore/QTimer>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <vector>

Q_LOGGING_CATEGORY(lcDqueue, "dengine.dqueue")

using Status = DEngineInterface::Status;

namespace {

void out(const QByteArray &line)
{
    std::fwrite(line.constData(), 1, static_cast<std::size_t>(line.size()), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

bool transient(Status s) { return s == Status::Timeout || s == Status::NoQuorum || s == Status::Busy || s == Status::Stopping; }

// Where the queue's engine comes from: a client of a cluster, or a node of it.
struct Connection {
    std::unique_ptr<DEngineInterface> engine;
    QString error;
};

Connection connectTo(const QCommandLineParser &p, const QCommandLineOption &endpoints, const QCommandLineOption &node, const QCommandLineOption &ca,
                     const QCommandLineOption &cert, const QCommandLineOption &key)
{
    Connection c;
    if (p.isSet(node)) {
        QString why;
        DEngineConfig config = DEngineConfig::fromFile(p.value(node), &why);
        if (!why.isEmpty()) {
            c.error = why;
            return c;
        }
        c.engine = std::make_unique<DEngine>(config);
        return c;
    }
    DEngineClientConfig config;
    const QString list = p.isSet(endpoints) ? p.value(endpoints) : qEnvironmentVariable("DENGINE_ENDPOINTS");
    config.endpoints = list.split(QLatin1Char(','), Qt::SkipEmptyParts);
    config.tlsCaFile = p.isSet(ca) ? p.value(ca) : qEnvironmentVariable("DENGINE_CACERT");
    config.tlsCertificateFile = p.isSet(cert) ? p.value(cert) : qEnvironmentVariable("DENGINE_CERT");
    config.tlsKeyFile = p.isSet(key) ? p.value(key) : qEnvironmentVariable("DENGINE_KEY");
    config.insecure = config.tlsCaFile.isEmpty();
    config.requestTimeoutMs = 5000;
    if (const QString why = config.validate(); !why.isEmpty()) {
        c.error = why;
        return c;
    }
    c.engine = std::make_unique<DEngineClient>(config);
    return c;
}

// Producer: enqueues prefix-0 .. prefix-(count-1) one at a time, each with its body as its
// idempotency key (when asked), retrying a failed call with the same key until it is in.
class Producer : public QObject {
public:
    Producer(DQueue *q, QByteArray prefix, int count, bool idempotent, int intervalMs)
        : m_q(q), m_prefix(std::move(prefix)), m_count(count), m_idempotent(idempotent), m_intervalMs(intervalMs)
    {
    }
    void start() { next(); }
    std::function<void()> done;

private:
    void next()
    {
        if (m_i >= m_count) {
            if (done)
                done();
            return;
        }
        const QByteArray body = m_prefix + '-' + QByteArray::number(m_i);
        m_q->enqueue(body, m_idempotent ? body : QByteArray()).then(this, [this, body](const DEngineResult &r) {
            if (r.ok()) {
                out((r.succeeded ? QByteArray("ENQ ") + body + ' ' + r.value : QByteArray("DUP ") + body));
                ++m_i;
                if (m_intervalMs > 0)
                    QTimer::singleShot(m_intervalMs, this, [this] { next(); });
                else
                    next();
                return;
            }
            qCInfo(lcDqueue).noquote() << "enqueue" << body << "failed:" << r.message << "(trying again)";
            // Without an idempotency key a retry after Timeout may add it twice: say so.
            if (!m_idempotent && r.status == Status::Timeout)
                out("MAYBE " + body);
            QTimer::singleShot(transient(r.status) ? 100 : 1000, this, [this] { next(); });
        });
    }
    DQueue *m_q;
    QByteArray m_prefix;
    int m_count;
    bool m_idempotent;
    int m_intervalMs;
    int m_i = 0;
};

// Consumer: dequeue (waiting on the watch), ack; `count` acks then done (0: forever).
class Consumer : public QObject {
public:
    Consumer(DQueue *q, int count, int processMs) : m_q(q), m_count(count), m_processMs(processMs) {}
    void start() { next(); }
    std::function<void()> done;

private:
    void next()
    {
        if (m_count > 0 && m_acked >= m_count) {
            if (done)
                done();
            return;
        }
        m_q->dequeue(2000).then(this, [this](const DQueueMessage &m) {
            if (m.status == Status::NotFound) {
                next(); // nothing within the wait: wait again
                return;
            }
            if (!m.ok()) {
                qCInfo(lcDqueue).noquote() << "dequeue failed:" << m.error << "(trying again)";
                QTimer::singleShot(100, this, [this] { next(); });
                return;
            }
            out("GOT " + m.body + ' ' + m.id + ' ' + QByteArray::number(m.claimRevision) + ' ' + QByteArray::number(m.attempts));
            QTimer::singleShot(m_processMs, this, [this, m] { ack(m); });
        });
    }
    void ack(const DQueueMessage &m)
    {
        m_q->ack(m).then(this, [this, m](const DEngineResult &r) {
            if (r.ok()) {
                out("ACK " + m.body + ' ' + m.id + ' ' + QByteArray::number(r.revision));
                ++m_acked;
            } else if (r.status == Status::NotFound) {
                out("LOST " + m.body + ' ' + m.id);
            } else {
                qCInfo(lcDqueue).noquote() << "ack failed:" << r.message << "(trying again)";
                QTimer::singleShot(100, this, [this, m] { ack(m); });
                return;
            }
            next();
        });
    }
    DQueue *m_q;
    int m_count;
    int m_processMs;
    int m_acked = 0;
};

double percentile(std::vector<double> v, double p)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

} // namespace

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("dqueue"));
    // The client library's connection notes are not this tool's output (QT_LOGGING_RULES brings them back).
    if (qEnvironmentVariableIsEmpty("QT_LOGGING_RULES"))
        QLoggingCategory::setFilterRules(QStringLiteral("dengine.client.info=false\ndengine.client.debug=false"));
    QCommandLineParser p;
    p.setApplicationDescription(QStringLiteral(
        "A replicated work queue on DEngine.\n\n"
        "  dqueue [options] produce QUEUE --count N [--prefix P] [--idempotent] [--interval MS]\n"
        "  dqueue [options] consume QUEUE [--count N] [--visibility MS] [--process-ms MS]\n"
        "  dqueue [options] stats QUEUE\n"
        "  dqueue [options] bench [--producers 8] [--consumers 8] [--seconds 10] [--body 128] [--timeline]\n\n"
        "The queue's engine: --endpoints (a client of dengined members; or DENGINE_ENDPOINTS, with TLS from\n"
        "--cacert/--cert/--key or DENGINE_CACERT/DENGINE_CERT/DENGINE_KEY, plain TCP without them), or --node\n"
        "CONFIG (this process is a member itself: an embedded DEngine with that configuration file).\n"
        "Output lines: ENQ <body> <id> / DUP <body> (produce); GOT <body> <id> <claim-revision> <attempts>,\n"
        "ACK <body> <id> <revision>, LOST <body> <id> (consume). Exit status: 0 done, 2 bad usage, 3 no cluster."));
    p.addHelpOption();
    p.addPositionalArgument(QStringLiteral("command"), QStringLiteral("produce, consume, stats or bench"));
    const QCommandLineOption endpoints(QStringLiteral("endpoints"), QStringLiteral("Members' client addresses, comma-separated."), QStringLiteral("list"));
    const QCommandLineOption node(QStringLiteral("node"), QStringLiteral("Run as an embedded member with this configuration."), QStringLiteral("file"));
    const QCommandLineOption ca(QStringLiteral("cacert"), QStringLiteral("The cluster's authority (PEM)."), QStringLiteral("file"));
    const QCommandLineOption cert(QStringLiteral("cert"), QStringLiteral("This client's certificate."), QStringLiteral("file"));
    const QCommandLineOption key(QStringLiteral("key"), QStringLiteral("This client's key."), QStringLiteral("file"));
    const QCommandLineOption count(QStringLiteral("count"), QStringLiteral("Messages to produce, or acks to make (0: forever)."), QStringLiteral("n"), QStringLiteral("0"));
    const QCommandLineOption prefix(QStringLiteral("prefix"), QStringLiteral("Bodies are PREFIX-0, PREFIX-1, ..."), QStringLiteral("p"), QStringLiteral("m"));
    const QCommandLineOption interval(QStringLiteral("interval"), QStringLiteral("produce: pause between enqueues (ms)."), QStringLiteral("ms"), QStringLiteral("0"));
    const QCommandLineOption idempotent(QStringLiteral("idempotent"), QStringLiteral("Each body is its own idempotency key (retries add nothing)."));
    const QCommandLineOption visibility(QStringLiteral("visibility"), QStringLiteral("Visibility timeout (ms)."), QStringLiteral("ms"), QStringLiteral("30000"));
    const QCommandLineOption processMs(QStringLiteral("process-ms"), QStringLiteral("Time a consumer takes per message before its ack."), QStringLiteral("ms"), QStringLiteral("0"));
    const QCommandLineOption producers(QStringLiteral("producers"), QStringLiteral("bench: producers."), QStringLiteral("n"), QStringLiteral("8"));
    const QCommandLineOption consumers(QStringLiteral("consumers"), QStringLiteral("bench: consumers."), QStringLiteral("n"), QStringLiteral("8"));
    const QCommandLineOption seconds(QStringLiteral("seconds"), QStringLiteral("bench: measured seconds."), QStringLiteral("s"), QStringLiteral("10"));
    const QCommandLineOption warmup(QStringLiteral("warmup"), QStringLiteral("bench: seconds before measuring."), QStringLiteral("s"), QStringLiteral("2"));
    const QCommandLineOption bodyBytes(QStringLiteral("body"), QStringLiteral("bench: body size."), QStringLiteral("bytes"), QStringLiteral("128"));
    const QCommandLineOption timeline(QStringLiteral("timeline"), QStringLiteral("bench: acks per 100 ms, and the longest gap in the flow."));
    p.addOptions({endpoints, node, ca, cert, key, count, prefix, interval, idempotent, visibility, processMs, producers, consumers, seconds, warmup, bodyBytes, timeline});
    p.process(app);
    const QStringList args = p.positionalArguments();
    const auto usage = [&](const QString &why) {
        std::fprintf(stderr, "dqueue: %s (dqueue --help)\n", qPrintable(why));
        return 2;
    };
    if (args.isEmpty())
        return usage(QStringLiteral("no command"));
    const QString command = args.first();
    const bool bench = command == QLatin1String("bench");
    if (!bench && (args.size() != 2 || !DQueue::validName(args.at(1))))
        return usage(QStringLiteral("%1 QUEUE: a queue name of letters, digits, '.', '-' and '_'").arg(command));
    if (!bench && command != QLatin1String("produce") && command != QLatin1String("consume") && command != QLatin1String("stats"))
        return usage(QStringLiteral("unknown command %1").arg(command));

    std::signal(SIGPIPE, SIG_IGN);
    const auto quitOn = [](int) { QMetaObject::invokeMethod(QCoreApplication::instance(), &QCoreApplication::quit, Qt::QueuedConnection); };
    std::signal(SIGINT, quitOn);
    std::signal(SIGTERM, quitOn);

    if (bench) {
        // Every producer and consumer its own client connection (as the etcd side of the
        // comparison has), closed loop, no think time.
        const int np = p.value(producers).toInt(), nc = p.value(consumers).toInt();
        const int secs = p.value(seconds).toInt(), warm = p.value(warmup).toInt();
        const QByteArray body(p.value(bodyBytes).toInt(), 'b');
        if (np < 1 || nc < 1 || secs < 1 || body.isEmpty())
            return usage(QStringLiteral("bench: --producers, --consumers, --seconds and --body must be positive"));
        std::vector<std::unique_ptr<DEngineInterface>> engines;
        std::vector<std::unique_ptr<DQueue>> queues;
        for (int i = 0; i < np + nc; ++i) {
            Connection c = connectTo(p, endpoints, node, ca, cert, key);
            if (!c.engine)
                return usage(c.error);
            if (p.isSet(node) && i > 0)
                return usage(QStringLiteral("bench: runs with --endpoints (one client per producer and consumer)"));
            c.engine->start();
            DQueueOptions o;
            o.consumerName = QStringLiteral("bench-%1").arg(i);
            o.visibilityTimeoutMs = p.value(visibility).toLongLong();
            queues.push_back(std::make_unique<DQueue>(c.engine.get(), QStringLiteral("bench"), o));
            engines.push_back(std::move(c.engine));
        }
        for (auto &e : engines)
            if (!e->waitForReady(30000)) {
                std::fprintf(stderr, "dqueue bench: the cluster is not ready: %s\n", qPrintable(e->errorString()));
                return 3;
            }
        QElapsedTimer clock;
        clock.start();
        const qint64 start = qint64(warm) * 1000, end = start + qint64(secs) * 1000;
        quint64 enqueued = 0, acked = 0, conflicts = 0, errors = 0, lost = 0;
        std::vector<double> latencies;
        std::vector<quint64> perTick(static_cast<std::size_t>((end + 99) / 100) + 1, 0);
        QHash<QByteArray, qint64> enqueuedAt; // body -> ms: end to end, enqueue acked -> ack acked
        quint64 serial = 0;
        bool running = true;
        std::function<void(int)> produce = [&](int i) {
            if (!running)
                return;
            QByteArray b = body;
            const QByteArray id = QByteArray::number(++serial);
            b.replace(0, std::min(id.size(), b.size()), id.left(b.size()));
            queues[std::size_t(i)]->enqueue(b, id).then(queues[std::size_t(i)].get(), [&, i, id](const DEngineResult &r) {
                const qint64 now = clock.elapsed();
                if (r.ok()) {
                    enqueuedAt.insert(id, now);
                    if (now >= start && now < end)
                        ++enqueued;
                } else if (now >= start && now < end) {
                    ++errors;
                }
                produce(i);
            });
        };
        std::function<void(int)> consume = [&](int i) {
            if (!running)
                return;
            DQueue *q = queues[std::size_t(i)].get();
            q->dequeue(1000).then(q, [&, i, q](const DQueueMessage &m) {
                if (!m.ok()) {
                    if (m.status != Status::NotFound && clock.elapsed() >= start && clock.elapsed() < end)
                        ++errors;
                    consume(i);
                    return;
                }
                const qint64 now0 = clock.elapsed();
                if (now0 >= start && now0 < end)
                    conflicts += static_cast<quint64>(std::max(0, m.attempts - 1));
                q->ack(m).then(q, [&, i, m](const DEngineResult &r) {
                    const qint64 now = clock.elapsed();
                    const QByteArray id = m.body.left(m.body.indexOf('b') < 0 ? m.body.size() : m.body.indexOf('b'));
                    if (r.ok()) {
                        if (now < qint64(perTick.size()) * 100)
                            ++perTick[std::size_t(now / 100)];
                        if (now >= start && now < end) {
                            ++acked;
                            if (enqueuedAt.contains(id))
                                latencies.push_back(double(now - enqueuedAt.value(id)));
                        }
                        enqueuedAt.remove(id);
                    } else if (now >= start && now < end) {
                        r.status == Status::NotFound ? ++lost : ++errors;
                    }
                    consume(i);
                });
            });
        };
        std::printf("# dqueue bench: members via %s, fsync on (the cluster's), producers=%d consumers=%d body_bytes=%d duration_s=%d "
                    "warmup_s=%d visibility_ms=%lld, one DEngineClient per producer and consumer, blocking dequeue on a watch\n",
                    p.isSet(endpoints) ? qPrintable(p.value(endpoints)) : "DENGINE_ENDPOINTS", np, nc, int(body.size()), secs, warm,
                    p.value(visibility).toLongLong());
        std::fflush(stdout);
        for (int i = 0; i < np; ++i)
            produce(i);
        for (int i = 0; i < nc; ++i)
            consume(np + i);
        QTimer::singleShot(int(end), &app, [&] {
            running = false;
            app.quit();
        });
        app.exec();
        running = false;
        const double dur = secs;
        std::printf("dqueue msgs_per_s=%.1f enqueued_per_s=%.1f acked=%llu conflicts=%llu errors=%llu lost=%llu p50_ms=%.2f p99_ms=%.2f\n",
                    double(acked) / dur, double(enqueued) / dur, static_cast<unsigned long long>(acked), static_cast<unsigned long long>(conflicts),
                    static_cast<unsigned long long>(errors), static_cast<unsigned long long>(lost), percentile(latencies, 0.5),
                    percentile(latencies, 0.99));
        if (p.isSet(timeline)) {
            // The longest stretch without an ack after the warm-up: a failover's gap in the flow.
            qint64 gap = 0, run = 0;
            QByteArray line;
            for (std::size_t t = std::size_t(start / 100); t < perTick.size() && qint64(t) * 100 < end; ++t) {
                line += QByteArray::number(perTick[t]) + ' ';
                run = perTick[t] == 0 ? run + 100 : 0;
                gap = std::max(gap, run);
            }
            std::printf("dqueue timeline acks_per_100ms: %s\ndqueue longest_gap_ms=%lld\n", line.constData(), static_cast<long long>(gap));
        }
        std::fflush(stdout);
        queues.clear();
        for (auto &e : engines)
            e->stop();
        for (auto &e : engines)
            e->waitForStopped(5000);
        return 0;
    }

    Connection c = connectTo(p, endpoints, node, ca, cert, key);
    if (!c.engine)
        return usage(c.error);
    DEngineInterface *engine = c.engine.get();
    if (!engine->start())
        return 3;
    if (!engine->waitForReady(60000)) {
        std::fprintf(stderr, "dqueue: the cluster is not ready: %s\n", qPrintable(engine->errorString()));
        return 3;
    }
    DQueueOptions o;
    o.consumerName = QStringLiteral("%1-%2").arg(command).arg(QCoreApplication::applicationPid());
    o.visibilityTimeoutMs = p.value(visibility).toLongLong();
    DQueue queue(engine, args.at(1), o);
    int status = 0;
    std::unique_ptr<QObject> worker;
    if (command == QLatin1String("produce")) {
        auto *producer = new Producer(&queue, p.value(prefix).toUtf8(), p.value(count).toInt(), p.isSet(idempotent), p.value(interval).toInt());
        producer->done = [] { QCoreApplication::quit(); };
        producer->start();
        worker.reset(producer);
    } else if (command == QLatin1String("consume")) {
        auto *consumer = new Consumer(&queue, p.value(count).toInt(), p.value(processMs).toInt());
        consumer->done = [] { QCoreApplication::quit(); };
        consumer->start();
        worker.reset(consumer);
    } else {
        queue.stats().then(&queue, [&status](const DQueueStats &s) {
            if (s.status != Status::Ok) {
                std::fprintf(stderr, "dqueue: %s\n", qPrintable(s.error));
                status = 4;
            } else {
                std::printf("ready %lld\nin-flight %lld\n", static_cast<long long>(s.ready), static_cast<long long>(s.inFlight));
            }
            QCoreApplication::quit();
        });
    }
    app.exec();
    worker.reset();
    engine->stop();
    engine->waitForStopped(10000);
    return status;
}
