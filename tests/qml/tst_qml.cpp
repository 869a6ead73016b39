// SPDX-License-Identifier: Apache-2.0
// The runner of the QML module's Qt Quick Test cases (tst_*.qml beside this file). Its setup gives
// the cases a `testEnv` object (free ports, a temporary directory) and makes the build's QML module
// importable; it records every QML warning, which the cases check in their cleanup (and which
// fail the run at the end if a case did not), so that a binding error cannot pass unnoticed.

#include "../auto/common/testports.h"

#include <QtCore/QDir>
#include <QtCore/QMutex>
#include <QtCore/QObject>
#include <QtCore/QTemporaryDir>
#include <QtQml/QQmlContext>
#include <QtQml/QQmlEngine>
#include <QtQuickTest/quicktest.h>

#include <cstdio>
#include <cstdlib>

namespace {

QMutex warningsLock;
QStringList warnings; // QML warnings not yet taken by a case
QtMessageHandler previousHandler = nullptr;

// A warning from QML: the engine's own categories, console.warn/error, or any message whose
// source is a .qml file.
bool isQmlWarning(QtMsgType type, const QMessageLogContext &context)
{
    if (type != QtWarningMsg && type != QtCriticalMsg)
        return false;
    const QByteArray category = context.category ? QByteArray(context.category) : QByteArray();
    const QByteArray file = context.file ? QByteArray(context.file) : QByteArray();
    return category.startsWith("qt.qml") || category.startsWith("qt.quick") || category == "qml" || category == "js"
           || file.endsWith(".qml") || file.endsWith(".js");
}

void recordWarnings(QtMsgType type, const QMessageLogContext &context, const QString &message)
{
    if (isQmlWarning(type, context)) {
        QMutexLocker lock(&warningsLock);
        warnings << QStringLiteral("%1: %2").arg(QString::fromLatin1(context.category ? context.category : "default"), message);
    }
    if (previousHandler)
        previousHandler(type, context, message);
    else
        std::fprintf(stderr, "%s\n", qPrintable(message));
}

// QtTest installs its own handler (the one that prints QWARN, and does not pass messages on) when a
// case starts logging, after the setup's hooks ran: ours goes back in front of it, passing every
// message on, whenever a case calls testEnv (each calls testEnv.watch() in init() and
// testEnv.takeWarnings() in cleanup()).
void ensureRecording()
{
    const QtMessageHandler previous = qInstallMessageHandler(recordWarnings);
    if (previous != recordWarnings)
        previousHandler = previous;
}

} // namespace

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
        QMutexLocker lock(&warningsLock);
        return std::exchange(warnings, {});
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
            QMutexLocker lock(&warningsLock);
            for (const QQmlError &e : errors)
                warnings << QStringLiteral("qml: %1").arg(e.toString());
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
