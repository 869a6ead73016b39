// SPDX-License-Identifier: Apache-2.0
// The runner of the QML module's Qt Quick Test cases (tst_*.qml beside this file). Its setup gives
// the cases a `testEnv` object (free ports, a temporary directory) and makes the build's QML module
// importable; it records every QML warning, which the cases check in their cleanup (and which
// fail the run at the end if a case did not), so that a binding error cannot pass unnoticed.

#include "../auto/common/testports.h"
#include "qmlwarnings.h"

#include <QtCore/QDir>
#include <QtCore/QObject>
#include <QtCore/QTemporaryDir>
#include <QtQml/QQmlContext>
#include <QtQml/QQmlEngine>
#include <QtQuickTest/quicktest.h>

#include <cstdio>
#include <cstdlib>

using dengine::test::QmlWarnings;

// QtTest installs its own handler (the one that prints QWARN, and does not pass messages on) when a
// case starts logging, after the setup's hooks ran: ours goes back in front of it, passing every
// message on, whenever a case calls testEnv (each calls testEnv.watch() in init() and
// testEnv.takeWarnings() in cleanup()).
static void ensureRecording() { QmlWarnings::ensureRecording(); }

// What the cases get as `testEnv`.
class TestEnv : public QObject {
    Q_OBJECT
public:
    // `count` distinct free ports on 127.0.0.1.
    Q_INVOKABLE QVariantList freePorts(int count) const
    {
        ensureRecording();
        QVariantList out;
        for (quint16 p : dengine::test::freePorts(count))
            out << int(p);
        return out;
    }
    // A fresh path under the run's temporary directory (removed at exit).
    Q_INVOKABLE QString tempPath(const QString &name)
    {
        ensureRecording();
        return m_dir.filePath(QStringLiteral("%1-%2").arg(++m_serial).arg(name));
    }
    // Records the warnings from now on (a case calls this in init()).
    Q_INVOKABLE void watch() const { ensureRecording(); }
    // The QML warnings since the last call (a case's cleanup compares this with []).
    Q_INVOKABLE QStringList takeWarnings() const
    {
        ensureRecording();
        return QmlWarnings::take();
    }

private:
    QTemporaryDir m_dir;
    int m_serial = 0;
};

class Setup : public QObject {
    Q_OBJECT
public slots:
    void qmlEngineAvailable(QQmlEngine *engine)
    {
        // The engine's own warnings (binding and type errors) as signals; console.warn and the
        // rest through the message handler (see ensureRecording()).
        engine->setOutputWarningsToStandardError(true);
        QObject::connect(engine, &QQmlEngine::warnings, engine, [](const QList<QQmlError> &errors) {
            for (const QQmlError &e : errors)
                QmlWarnings::record(QStringLiteral("qml: %1").arg(e.toString()));
        });
        ensureRecording();
        engine->addImportPath(QStringLiteral(DENGINE_QML_IMPORT_DIR));
        engine->rootContext()->setContextProperty(QStringLiteral("testEnv"), &m_env);
    }
    void cleanupTestCase()
    {
        const QStringList left = m_env.takeWarnings();
        if (!left.isEmpty()) {
            std::fprintf(stderr, "FAIL: %d QML warning(s) no case took:\n", int(left.size()));
            for (const QString &w : left)
                std::fprintf(stderr, "  %s\n", qPrintable(w));
            std::fflush(stderr);
            std::_Exit(1);
        }
    }

private:
    TestEnv m_env;
};

QUICK_TEST_MAIN_WITH_SETUP(dengine_qml, Setup)

#include "tst_qml.moc"
