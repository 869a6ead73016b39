// SPDX-License-Identifier: Apache-2.0
// What the dashboard (examples/dashboard) costs: it loads the dashboard's QML in this process
// (offscreen, 1280x800, as tests/qml/tst_dashboard does) against a running cluster, then
//   cpu     for S seconds measures this process's CPU time (the window, its models, its clients)
//           while whatever load runs against the cluster (bench/dashboard.sh runs dengine bench
//           put:64 beside it);
//   frames  writes N keys under "frames/" (batches of 500), shows them in the key browser, then
//           scrolls the list every frame for S seconds and reports frame times: the render time
//           (beforeSynchronizing to frameSwapped) and the interval between frames.
// It prints its setup with the numbers. Nothing here asserts a timing.
//
//   dashboard_bench --endpoints 127.0.0.1:8201,... --insecure cpu [seconds 30] [tab keys|events]
//   dashboard_bench --endpoints ... --insecure frames [seconds 20] [keys 100000]

#include "probe.h"

#include <dengine/dengineclient.h>

#include <QtCore/QCommandLineParser>
#include <QtCore/QElapsedTimer>
#include <QtCore/QTemporaryDir>
#include <QtCore/QTimer>
#include <QtGui/QGuiApplication>
#include <QtQml/QQmlApplicationEngine>
#include <QtQuick/QQuickItem>
#include <QtQuick/QQuickWindow>
#include <QtQuickControls2/QQuickStyle>

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

namespace {

double cpuSeconds()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Runs the event loop until `done` or `ms` pass; false on the timeout. It sleeps between events
// (a 50-ms tick wakes it to check), so that the CPU it measures is the dashboard's, not a spin's.
bool waitFor(const std::function<bool()> &done, int ms)
{
    QElapsedTimer t;
    t.start();
    QTimer tick;
    tick.start(50);
    while (!done()) {
        if (t.elapsed() > ms)
            return false;
        QCoreApplication::processEvents(QEventLoop::AllEvents | QEventLoop::WaitForMoreEvents);
    }
    return true;
}

using dengine::dashboard::findItem;
using dengine::dashboard::textOf;

double percentile(std::vector<double> v, double p)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, std::size_t(p * double(v.size() - 1) + 0.5))];
}

} // namespace

int main(int argc, char *argv[])
{
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QGuiApplication app(argc, argv);
    QCommandLineParser parser;
    parser.addHelpOption();
    const QCommandLineOption endpointsOption(QStringLiteral("endpoints"), QStringLiteral("Members' client addresses."), QStringLiteral("LIST"));
    const QCommandLineOption insecureOption(QStringLiteral("insecure"), QStringLiteral("Plain TCP."));
    parser.addOptions({endpointsOption, insecureOption});
    parser.addPositionalArgument(QStringLiteral("mode"), QStringLiteral("cpu [seconds S] [tab keys|events] | frames [seconds S] [keys N]"));
    parser.process(app);
    const QStringList args = parser.positionalArguments();
    if (args.isEmpty() || (args[0] != QLatin1String("cpu") && args[0] != QLatin1String("frames")) || !parser.isSet(endpointsOption)) {
        std::fprintf(stderr, "usage: dashboard_bench --endpoints LIST --insecure cpu|frames [seconds S] [keys N]\n");
        return 2;
    }
    const bool cpuMode = args[0] == QLatin1String("cpu");
    int seconds = cpuMode ? 30 : 20;
    int keys = 100000;
    QString tab = QStringLiteral("keys");
    for (qsizetype i = 1; i + 1 < args.size(); i += 2) {
        if (args[i] == QLatin1String("seconds"))
            seconds = args[i + 1].toInt();
        else if (args[i] == QLatin1String("keys"))
            keys = args[i + 1].toInt();
        else if (args[i] == QLatin1String("tab"))
            tab = args[i + 1];
    }
    const QStringList endpoints = parser.value(endpointsOption).split(QLatin1Char(','), Qt::SkipEmptyParts);

    QQuickStyle::setStyle(QStringLiteral("Material"));
    QTemporaryDir scratch;
    QQmlApplicationEngine engine;
    engine.addImportPath(QStringLiteral(DENGINE_QML_IMPORT_DIR));
    engine.setInitialProperties({{QStringLiteral("startEndpoints"), endpoints},
                                 {QStringLiteral("startInsecure"), parser.isSet(insecureOption)},
                                 {QStringLiteral("demoDirectory"), scratch.path()}});
    engine.load(QUrl::fromLocalFile(QStringLiteral(DASHBOARD_QML_DIR "/Main.qml")));
    if (engine.rootObjects().isEmpty())
        return 1;
    QObject *root = engine.rootObjects().constFirst();
    auto *window = qobject_cast<QQuickWindow *>(root);
    if (!waitFor([&] { return textOf(root, "statusLabel").startsWith(QLatin1String("ready")); }, 60000)) {
        std::fprintf(stderr, "dashboard_bench: the dashboard did not get ready: %s\n", qPrintable(textOf(root, "statusLabel")));
        return 3;
    }
    std::printf("dashboard_bench: window %dx%d, platform %s, graphics %d, endpoints %s\n", window->width(), window->height(),
                qPrintable(QGuiApplication::platformName()), int(window->rendererInterface()->graphicsApi()), qPrintable(endpoints.join(QLatin1Char(','))));

    int frames = 0;
    QObject::connect(window, &QQuickWindow::frameSwapped, &app, [&] { ++frames; }, Qt::DirectConnection);

    if (cpuMode) {
        // The tab shown: the key browser re-reads its keys every 2 s only while it is shown.
        root->findChild<QObject *>(QStringLiteral("tabs"))->setProperty("currentIndex", tab == QLatin1String("events") ? 1 : 0);
        const double cpu0 = cpuSeconds();
        QElapsedTimer wall;
        wall.start();
        for (int s = 5; s <= seconds; s += 5) {
            waitFor([&] { return wall.elapsed() >= qint64(s) * 1000; }, seconds * 1000 + 1000);
            std::fprintf(stderr, "\r  %d/%d s, commit %s   ", s, seconds, qPrintable(textOf(root, "commitLabel")));
        }
        const double cpu = cpuSeconds() - cpu0;
        const double elapsed = double(wall.elapsed()) / 1000.0;
        std::fprintf(stderr, "\n");
        std::printf("dashboard cpu: %.1f%% of one core over %.0f s (%.2f s CPU; %d frames; %s tab shown, "
                    "chart sampling 1/s, member watchers, model updates throttled to 250 ms; last rate %s)\n",
                    100.0 * cpu / elapsed, elapsed, cpu, frames, qPrintable(tab), qPrintable(textOf(root, "rateLabel")));
        return 0;
    }

    // frames: N keys under frames/, written through a client of our own, in batches.
    DEngineClientConfig config;
    config.endpoints = endpoints;
    config.insecure = parser.isSet(insecureOption);
    DEngineClient writer(config);
    writer.start();
    if (!waitFor([&] { return writer.isReady(); }, 60000))
        return 3;
    const QByteArray value(32, 'v');
    int written = 0;
    while (written < keys) {
        QList<DEngineOperation> batch;
        for (int i = 0; i < 500 && written + int(batch.size()) < keys; ++i)
            batch << DEngineOperation::put(QByteArray("frames/") + QByteArray::number(written + i).rightJustified(8, '0'), value);
        QFuture<DEngineResult> f = writer.batch(batch);
        if (!waitFor([&] { return f.isFinished(); }, 60000) || f.result().status != DEngineInterface::Status::Ok) {
            std::fprintf(stderr, "dashboard_bench: a batch failed\n");
            return 4;
        }
        written += int(batch.size());
        if (written % 10000 == 0)
            std::fprintf(stderr, "\r  writing keys %d/%d", written, keys);
    }
    std::fprintf(stderr, "\n");
    QObject *prefix = root->findChild<QObject *>(QStringLiteral("prefixField"));
    prefix->setProperty("text", QStringLiteral("frames/"));
    // The key browser holds up to 100000 keys (its model's maxRows).
    const QString want = keys > 100000 ? QStringLiteral("first 100000 keys") : QStringLiteral("%1 key(s)").arg(keys);
    if (!waitFor([&] { return textOf(root, "keyCount") == want; }, 120000)) {
        std::fprintf(stderr, "dashboard_bench: the key browser shows %s\n", qPrintable(textOf(root, "keyCount")));
        return 5;
    }
    std::printf("key browser: %s\n", qPrintable(textOf(root, "keyCount")));

    QQuickItem *list = findItem(window->contentItem(), QStringLiteral("keyList"));
    std::vector<double> render, interval;
    QElapsedTimer clock;
    clock.start();
    qint64 syncAt = -1, lastSwap = -1;
    QObject::connect(window, &QQuickWindow::beforeSynchronizing, &app, [&] { syncAt = clock.nsecsElapsed(); }, Qt::DirectConnection);
    QObject::connect(window, &QQuickWindow::frameSwapped, &app, [&] {
        const qint64 now = clock.nsecsElapsed();
        if (syncAt >= 0)
            render.push_back(double(now - syncAt) / 1e6);
        if (lastSwap >= 0)
            interval.push_back(double(now - lastSwap) / 1e6);
        lastSwap = now;
    }, Qt::DirectConnection);
    // Scroll by 40 px per frame, wrapping: every frame makes and moves delegates.
    QObject::connect(window, &QQuickWindow::frameSwapped, list, [list] {
        const qreal max = list->property("contentHeight").toReal() - list->height();
        qreal y = list->property("contentY").toReal() + 40;
        list->setProperty("contentY", y > max ? 0 : y);
    }, Qt::QueuedConnection);
    window->update();
    QElapsedTimer wall;
    wall.start();
    waitFor([&] { return wall.elapsed() >= qint64(seconds) * 1000; }, seconds * 1000 + 1000);
    double mean = 0;
    for (double r : render)
        mean += r;
    mean = render.empty() ? 0 : mean / double(render.size());
    std::printf("frames with %s in the model, scrolling 40 px/frame for %d s: %zu frames; render mean %.2f ms, p50 %.2f, p99 %.2f, max %.2f; "
                "frame interval p50 %.2f ms, p99 %.2f, max %.2f (the max includes the model's 2-s re-read of every key)\n",
                qPrintable(textOf(root, "keyCount")), seconds, render.size(), mean, percentile(render, 0.5), percentile(render, 0.99),
                percentile(render, 1.0), percentile(interval, 0.5), percentile(interval, 0.99), percentile(interval, 1.0));
    return 0;
}
