// SPDX-License-Identifier: Apache-2.0
// dengine-dashboard: watch a DEngine cluster from the desktop.
//
//   dengine-dashboard --endpoints 127.0.0.1:8101,127.0.0.1:8102 --insecure
//   dengine-dashboard --endpoints host:8101 --cacert ca.pem --cert me.pem --key me.key
//   dengine-dashboard --demo            (three embedded nodes in this process)
//   dengine-dashboard                   (the connect form)
//   dengine-dashboard --demo --screenshot shot.png   (a picture of the window, then exit)
//
// The theme follows the system's (Material, light or dark). Errors (a bad endpoint, an unreachable
// cluster, unreadable TLS files) show in the window; the tool keeps running.

#include <QtCore/QCommandLineParser>
#include <QtCore/QDir>
#include <QtCore/QFileInfo>
#include <QtCore/QTemporaryDir>
#include <QtGui/QGuiApplication>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QTcpServer>
#include <QtCore/QTimer>
#include <QtQml/QQmlApplicationEngine>
#include <QtQuick/QQuickWindow>
#include <QtQuickControls2/QQuickStyle>

#include <cstdio>
#include <memory>
#include <vector>

namespace {

// Free ports on 127.0.0.1 for the demo cluster's peers (all probes held until every one is chosen).
QVariantList freePorts(int count)
{
    std::vector<std::unique_ptr<QTcpServer>> probes;
    QVariantList ports;
    for (int i = 0; i < count; ++i) {
        probes.push_back(std::make_unique<QTcpServer>());
        if (!probes.back()->listen(QHostAddress::LocalHost, 0))
            return {};
        ports << int(probes.back()->serverPort());
    }
    return ports;
}

} // namespace

int main(int argc, char *argv[])
{
    QGuiApplication app(argc, argv);
    QGuiApplication::setApplicationName(QStringLiteral("dengine-dashboard"));
    QGuiApplication::setOrganizationName(QStringLiteral("DEngine"));
    QGuiApplication::setApplicationVersion(QStringLiteral("1.0"));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Watch a DEngine cluster: members, leader, throughput, keys."));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption endpoints(QStringLiteral("endpoints"), QStringLiteral("Members' client addresses, comma-separated (DENGINE_ENDPOINTS)."),
                                       QStringLiteral("host:port,..."));
    const QCommandLineOption insecure(QStringLiteral("insecure"), QStringLiteral("Plain TCP to the cluster (no TLS)."));
    const QCommandLineOption ca(QStringLiteral("cacert"), QStringLiteral("The cluster's CA certificate, PEM (DENGINE_CACERT)."), QStringLiteral("file"));
    const QCommandLineOption cert(QStringLiteral("cert"), QStringLiteral("This client's certificate, PEM (DENGINE_CERT)."), QStringLiteral("file"));
    const QCommandLineOption key(QStringLiteral("key"), QStringLiteral("This client's private key, PEM (DENGINE_KEY)."), QStringLiteral("file"));
    const QCommandLineOption demo(QStringLiteral("demo"), QStringLiteral("Start an embedded 3-node demo cluster and watch it."));
    const QCommandLineOption demoDir(QStringLiteral("demo-dir"), QStringLiteral("Keep the demo cluster's data here (default: a temporary directory)."),
                                     QStringLiteral("dir"));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("Save a picture of the window to this PNG file after --screenshot-delay ms, then exit."),
                                        QStringLiteral("file"));
    const QCommandLineOption screenshotDelay(QStringLiteral("screenshot-delay"), QStringLiteral("Milliseconds before --screenshot (default 8000)."),
                                             QStringLiteral("ms"), QStringLiteral("8000"));
    const QCommandLineOption themeOption(QStringLiteral("theme"), QStringLiteral("light, dark or system (the default: the desktop's)."),
                                         QStringLiteral("theme"), QStringLiteral("system"));
    parser.addOptions({endpoints, insecure, ca, cert, key, demo, demoDir, screenshot, screenshotDelay, themeOption});
    parser.process(app);
    // As the command line does: a flag, else its DENGINE_* variable.
    const auto valueOr = [&parser](const QCommandLineOption &o, const char *variable) {
        return parser.isSet(o) ? parser.value(o) : qEnvironmentVariable(variable);
    };

    QQuickStyle::setStyle(QStringLiteral("Material"));

    QTemporaryDir scratch;
    const QString demoDirectory = parser.isSet(demoDir) ? QFileInfo(parser.value(demoDir)).absoluteFilePath() : scratch.path();

    QQmlApplicationEngine engine;
    // The module from the build tree when run from it; otherwise the installed one (Qt's qml
    // directory, or QML_IMPORT_PATH).
    if (QFileInfo::exists(QStringLiteral(DENGINE_QML_BUILD_DIR "/DEngine/qmldir")))
        engine.addImportPath(QStringLiteral(DENGINE_QML_BUILD_DIR));
    QStringList endpointList;
    for (const QString &e : valueOr(endpoints, "DENGINE_ENDPOINTS").split(QLatin1Char(','), Qt::SkipEmptyParts))
        endpointList << e.trimmed();
    engine.setInitialProperties({
        {QStringLiteral("startEndpoints"), endpointList},
        {QStringLiteral("startInsecure"), parser.isSet(insecure)},
        {QStringLiteral("startCaFile"), valueOr(ca, "DENGINE_CACERT")},
        {QStringLiteral("startCertificateFile"), valueOr(cert, "DENGINE_CERT")},
        {QStringLiteral("startKeyFile"), valueOr(key, "DENGINE_KEY")},
        {QStringLiteral("startDemo"), parser.isSet(demo)},
        {QStringLiteral("demoPorts"), freePorts(3)},
        {QStringLiteral("demoDirectory"), demoDirectory},
        {QStringLiteral("themeChoice"), parser.value(themeOption)},
    });
    QObject::connect(&engine, &QQmlApplicationEngine::objectCreationFailed, &app, [] { QCoreApplication::exit(1); }, Qt::QueuedConnection);
    engine.load(QUrl(QStringLiteral("qrc:/DEngineDashboard/Main.qml")));
    if (engine.rootObjects().isEmpty())
        return 1;
    if (parser.isSet(screenshot)) {
        auto *window = qobject_cast<QQuickWindow *>(engine.rootObjects().constFirst());
        const QString path = parser.value(screenshot);
        QTimer::singleShot(parser.value(screenshotDelay).toInt(), window, [window, path] {
            const QImage image = window->grabWindow();
            if (image.isNull() || !image.save(path)) {
                std::fprintf(stderr, "dengine-dashboard: could not save the screenshot to %s\n", qPrintable(path));
                QCoreApplication::exit(1);
                return;
            }
            std::fprintf(stderr, "dengine-dashboard: saved %s (%dx%d)\n", qPrintable(path), image.width(), image.height());
            window->close();
            QCoreApplication::exit(0);
        });
    }
    return QGuiApplication::exec();
}
