// SPDX-License-Identifier: Apache-2.0
// The dashboard (examples/dashboard), offscreen, against three dengined processes: it shows the
// leader and term the cluster has, follows a leader stop, and shows bad endpoints and TLS files as
// errors while it keeps running. Pictures of the window are kept as test artefacts (in
// DASHBOARD_ARTIFACTS_DIR): dashboard-ready.png, dashboard-after-leader-stop.png,
// dashboard-error.png. Any QML warning fails the test.

#include "../integration/denginedcluster.h"
#include "probe.h"
#include "qmlwarnings.h"

#include <dengine/dengineclient.h>

#include <QtCore/QAbstractItemModel>
#include <QtCore/QDir>
#include <QtGui/QImage>
#include <QtQml/QQmlApplicationEngine>
#include <QtQml/QQmlEngine>
#include <QtQuick/QQuickItem>
#include <QtQuick/QQuickWindow>
#include <QtQuickControls2/QQuickStyle>
#include <QtTest/QtTest>

#include <csignal>
#include <memory>
#include <set>

using dengine::test::DEnginedCluster;
using dengine::test::QmlWarnings;

class TestDashboard : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<QQmlApplicationEngine> load(const QVariantMap &properties)
    {
        auto engine = std::make_unique<QQmlApplicationEngine>();
        engine->addImportPath(QStringLiteral(DENGINE_QML_IMPORT_DIR));
        connect(engine.get(), &QQmlEngine::warnings, this, [](const QList<QQmlError> &errors) {
            for (const QQmlError &e : errors)
                QmlWarnings::record(e.toString());
        });
        QVariantMap initial{{QStringLiteral("demoDirectory"), m_scratch.path()}};
        initial.insert(properties);
        engine->setInitialProperties(initial);
        engine->load(QUrl::fromLocalFile(QStringLiteral(DASHBOARD_QML_DIR "/Main.qml")));
        return engine;
    }
    static QQuickWindow *window(QQmlApplicationEngine &engine)
    {
        return engine.rootObjects().isEmpty() ? nullptr : qobject_cast<QQuickWindow *>(engine.rootObjects().constFirst());
    }
    static QString textOf(QQmlApplicationEngine &engine, const char *name)
    {
        return engine.rootObjects().isEmpty() ? QString() : dengine::dashboard::textOf(engine.rootObjects().constFirst(), name);
    }
    static QQuickItem *card(QQmlApplicationEngine &engine, quint64 id)
    {
        QQuickWindow *w = window(engine);
        return w ? dengine::dashboard::findItem(w->contentItem(), QStringLiteral("member%1").arg(id)) : nullptr;
    }
    // Saves the window's picture as an artefact; checks it is the window's size and not blank.
    void grab(QQuickWindow *w, const QString &name)
    {
        const QImage image = w->grabWindow();
        QVERIFY(!image.isNull());
        QCOMPARE(image.size(), QSize(1280, 800));
        std::set<QRgb> colours;
        for (int y = 0; y < image.height(); y += 7)
            for (int x = 0; x < image.width(); x += 7)
                colours.insert(image.pixel(x, y));
        QVERIFY2(colours.size() > 20, "the picture shows more than a blank window");
        QDir().mkpath(QStringLiteral(DASHBOARD_ARTIFACTS_DIR));
        const QString path = QStringLiteral(DASHBOARD_ARTIFACTS_DIR "/%1.png").arg(name);
        QVERIFY2(image.save(path), qPrintable(path));
        qInfo("saved %s", qPrintable(path));
    }

    // The events timeline's entries of one kind.
    static int countEvents(QQmlApplicationEngine &engine, const QString &kind)
    {
        QObject *list = engine.rootObjects().constFirst()->findChild<QObject *>(QStringLiteral("eventsList"));
        auto *model = list ? list->property("model").value<QAbstractItemModel *>() : nullptr;
        if (!model)
            return -1;
        const int role = model->roleNames().key("kind", -1);
        int n = 0;
        for (int row = 0; row < model->rowCount(); ++row)
            n += model->data(model->index(row, 0), role).toString() == kind ? 1 : 0;
        return n;
    }

    QTemporaryDir m_scratch;

private slots:
    void initTestCase()
    {
        QQuickStyle::setStyle(QStringLiteral("Material"));
        QmlWarnings::ensureRecording();
    }
    void init() { QmlWarnings::ensureRecording(); }
    void cleanup()
    {
        const QStringList warnings = QmlWarnings::take();
        QVERIFY2(warnings.isEmpty(), qPrintable(QStringLiteral("QML warnings:\n") + warnings.join(QLatin1Char('\n'))));
    }

    void showsTheClustersLeaderAndTerm_andFollowsALeaderStop()
    {
        DEnginedCluster cluster(3);
        QVERIFY(cluster.isValid());
        QVERIFY(cluster.startAll());

        // What the cluster says, through a client of its own, to check the window against.
        DEngineClientConfig config;
        config.endpoints = cluster.clientAddresses();
        config.insecure = true;
        DEngineClient reference(config);
        QVERIFY(reference.start());
        QTRY_VERIFY_WITH_TIMEOUT(reference.isReady(), 60000);

        auto engine = load({{QStringLiteral("startEndpoints"), cluster.clientAddresses()}, {QStringLiteral("startInsecure"), true}});
        QQuickWindow *w = window(*engine);
        QVERIFY(w);
        QVERIFY(QTest::qWaitForWindowExposed(w));

        QTRY_VERIFY_WITH_TIMEOUT(textOf(*engine, "statusLabel").startsWith(QLatin1String("ready")), 30000);
        QTRY_COMPARE_WITH_TIMEOUT(textOf(*engine, "leaderLabel"), QStringLiteral("node %1").arg(reference.currentLeader()), 30000);
        QTRY_COMPARE_WITH_TIMEOUT(textOf(*engine, "termLabel"), QString::number(reference.currentTerm()), 30000);
        const quint64 oldLeader = reference.currentLeader();
        // A card per member, each connected (the model watches every member), the leader's marked.
        for (quint64 id = 1; id <= 3; ++id) {
            QTRY_VERIFY_WITH_TIMEOUT(card(*engine, id), 30000);
            QTRY_VERIFY_WITH_TIMEOUT(card(*engine, id)->property("connected").toBool(), 30000);
            QTRY_COMPARE_WITH_TIMEOUT(card(*engine, id)->property("leader").toBool(), id == oldLeader, 30000);
        }
        // Some traffic for the chart and the key browser.
        for (int i = 0; i < 20; ++i)
            QVERIFY(reference.put(QByteArray("dashboard/key") + QByteArray::number(i), "value " + QByteArray::number(i)).isValid());
        QTRY_COMPARE_WITH_TIMEOUT(textOf(*engine, "keyCount"), QStringLiteral("20 key(s)"), 30000);
        QTRY_VERIFY_WITH_TIMEOUT(textOf(*engine, "latencyLabel").contains(QLatin1String(" ms")) && !textOf(*engine, "latencyLabel").contains(QLatin1String("–")), 30000);
        grab(w, QStringLiteral("dashboard-ready"));

        // The leader stops (SIGTERM: it hands over first); the window shows the new one and term.
        cluster.signal(oldLeader, SIGTERM);
        QVERIFY(cluster.nodes.at(oldLeader)->waitForFinished(30000));
        QTRY_VERIFY_WITH_TIMEOUT(reference.currentLeader() != 0 && reference.currentLeader() != oldLeader, 30000);
        QTRY_COMPARE_WITH_TIMEOUT(textOf(*engine, "leaderLabel"), QStringLiteral("node %1").arg(reference.currentLeader()), 30000);
        QTRY_COMPARE_WITH_TIMEOUT(textOf(*engine, "termLabel"), QString::number(reference.currentTerm()), 30000);
        QTRY_VERIFY_WITH_TIMEOUT(!card(*engine, oldLeader)->property("connected").toBool(), 30000);
        QTRY_VERIFY_WITH_TIMEOUT(card(*engine, reference.currentLeader())->property("leader").toBool(), 30000);
        QTRY_VERIFY_WITH_TIMEOUT(textOf(*engine, "statusLabel").startsWith(QLatin1String("ready")), 30000);
        grab(w, QStringLiteral("dashboard-after-leader-stop"));
        QVERIFY(window(*engine)->isVisible());

        // Connect… while connected (the client stops, then starts with the new endpoints): ready
        // again, through one of the members still running.
        const int readyEvents = countEvents(*engine, QStringLiteral("ready"));
        QStringList running;
        for (quint64 id = 1; id <= 3; ++id)
            if (id != oldLeader)
                running << cluster.clientAddress(id);
        QObject *root = engine->rootObjects().constFirst();
        QVERIFY(QMetaObject::invokeMethod(root, "connectTo", Q_ARG(QVariant, running), Q_ARG(QVariant, true), Q_ARG(QVariant, QString()),
                                          Q_ARG(QVariant, QString()), Q_ARG(QVariant, QString())));
        QTRY_COMPARE_WITH_TIMEOUT(countEvents(*engine, QStringLiteral("ready")), readyEvents + 1, 30000);
        QTRY_VERIFY_WITH_TIMEOUT(textOf(*engine, "statusLabel").startsWith(QLatin1String("ready")), 30000);
        QTRY_COMPARE_WITH_TIMEOUT(textOf(*engine, "leaderLabel"), QStringLiteral("node %1").arg(reference.currentLeader()), 30000);
    }

    void demoCluster_showsItsNodes_andANodeStopMovesTheLeader()
    {
        auto engine = load({{QStringLiteral("startDemo"), true}, {QStringLiteral("demoPorts"), QVariantList{}}});
        // No ports: the demo says so and the window runs on (the ports are main.cpp's to find).
        QQuickWindow *w = window(*engine);
        QVERIFY(w);
        QTRY_VERIFY(!textOf(*engine, "errorText").isEmpty());
        engine.reset();

        QVariantList ports;
        for (quint16 p : dengine::test::freePorts(3))
            ports << int(p);
        QTemporaryDir dir;
        engine = load({{QStringLiteral("startDemo"), true}, {QStringLiteral("demoPorts"), ports}, {QStringLiteral("demoDirectory"), dir.path()}});
        w = window(*engine);
        QVERIFY(w);
        QVERIFY(QTest::qWaitForWindowExposed(w));
        QTRY_VERIFY_WITH_TIMEOUT(textOf(*engine, "statusLabel").startsWith(QStringLiteral("ready · demo")), 30000);
        QTRY_VERIFY_WITH_TIMEOUT(textOf(*engine, "leaderLabel").startsWith(QLatin1String("node ")), 30000);
        for (quint64 id = 1; id <= 3; ++id)
            QTRY_VERIFY_WITH_TIMEOUT(card(*engine, id) && card(*engine, id)->property("connected").toBool(), 30000);
        const quint64 leader = textOf(*engine, "leaderLabel").mid(5).toULongLong();
        QVERIFY(leader >= 1 && leader <= 3);
        QTRY_VERIFY_WITH_TIMEOUT(card(*engine, leader)->property("leader").toBool(), 30000);
        const QString term = textOf(*engine, "termLabel");

        // The leader's node stops (what its card's Stop node button does); another leads.
        QObject *demo = engine->rootObjects().constFirst()->property("engine").value<QObject *>();
        QVERIFY(demo);
        QObject *cluster = demo->parent();
        QVERIFY(cluster);
        QVariant node;
        QVERIFY(QMetaObject::invokeMethod(cluster, "node", Q_RETURN_ARG(QVariant, node), Q_ARG(QVariant, double(leader))));
        QVERIFY(QMetaObject::invokeMethod(node.value<QObject *>(), "stop"));
        QTRY_VERIFY_WITH_TIMEOUT(!textOf(*engine, "leaderLabel").endsWith(QString::number(leader))
                                     && textOf(*engine, "leaderLabel") != QLatin1String("none"),
                                 30000);
        QTRY_VERIFY_WITH_TIMEOUT(!card(*engine, leader)->property("connected").toBool(), 30000);
        QVERIFY(textOf(*engine, "termLabel").toULongLong() > term.toULongLong());
        // The timeline has the story: readiness, leaders, terms.
        QVERIFY(countEvents(*engine, QStringLiteral("ready")) >= 3);
        QVERIFY(countEvents(*engine, QStringLiteral("leader")) >= 3);
        QVERIFY(countEvents(*engine, QStringLiteral("term")) >= 3);
        grab(w, QStringLiteral("dashboard-demo-after-node-stop"));
    }

    void badEndpointsAndTlsFiles_areShownAsErrors_andTheWindowKeepsRunning()
    {
        auto engine = load({{QStringLiteral("startEndpoints"), QStringList{QStringLiteral("no-port-here")}}, {QStringLiteral("startInsecure"), true}});
        QQuickWindow *w = window(*engine);
        QVERIFY(w);
        QVERIFY(QTest::qWaitForWindowExposed(w));
        QObject *root = engine->rootObjects().constFirst();
        QObject *banner = root->findChild<QObject *>(QStringLiteral("errorBanner"));
        QVERIFY(banner);
        QTRY_VERIFY(banner->property("visible").toBool());
        QVERIFY2(textOf(*engine, "errorText").contains(QLatin1String("no-port-here")), qPrintable(textOf(*engine, "errorText")));

        // Unreadable TLS files: said, with the file's name.
        const QString closed = QStringLiteral("127.0.0.1:%1").arg(dengine::test::freePorts(1).constFirst());
        QVERIFY(QMetaObject::invokeMethod(root, "connectTo", Q_ARG(QVariant, QStringList{closed}), Q_ARG(QVariant, false),
                                          Q_ARG(QVariant, QStringLiteral("/nonexistent/ca.pem")), Q_ARG(QVariant, QStringLiteral("/nonexistent/me.pem")),
                                          Q_ARG(QVariant, QStringLiteral("/nonexistent/me.key"))));
        QTRY_VERIFY_WITH_TIMEOUT(textOf(*engine, "errorText").contains(QLatin1String("/nonexistent/")), 10000);

        // No cluster at the address: the window says it cannot reach it, and keeps running.
        QVERIFY(QMetaObject::invokeMethod(root, "connectTo", Q_ARG(QVariant, QStringList{closed}), Q_ARG(QVariant, true), Q_ARG(QVariant, QString()),
                                          Q_ARG(QVariant, QString()), Q_ARG(QVariant, QString())));
        QTRY_VERIFY_WITH_TIMEOUT(textOf(*engine, "errorText").contains(closed), 30000);
        QCOMPARE(textOf(*engine, "leaderLabel"), QStringLiteral("none"));
        QVERIFY(!textOf(*engine, "statusLabel").startsWith(QLatin1String("ready")));
        grab(w, QStringLiteral("dashboard-error"));
        QVERIFY(w->isVisible());
    }
};

QTEST_MAIN(TestDashboard)

#include "tst_dashboard.moc"
