// SPDX-License-Identifier: Apache-2.0
#pragma once

// Records QML warnings (the engine's categories, console.warn/error, anything whose source is a
// .qml or .js file) so that a test can fail on them, while passing every message on to the
// handler that was in place (QtTest's, which prints them).

#include <QtCore/QMutex>
#include <QtCore/QStringList>
#include <QtCore/QtGlobal>

#include <cstdio>
#include <utility>

namespace dengine::test {

struct QmlWarnings {
    QMutex lock;
    QStringList seen;
    QtMessageHandler previous = nullptr;

    static QmlWarnings &instance()
    {
        static QmlWarnings w;
        return w;
    }
    static bool isQmlWarning(QtMsgType type, const QMessageLogContext &context)
    {
        if (type != QtWarningMsg && type != QtCriticalMsg)
            return false;
        const QByteArray category = context.category ? QByteArray(context.category) : QByteArray();
        const QByteArray file = context.file ? QByteArray(context.file) : QByteArray();
        return category.startsWith("qt.qml") || category.startsWith("qt.quick") || category == "qml" || category == "js"
               || file.endsWith(".qml") || file.endsWith(".js");
    }
    static void handler(QtMsgType type, const QMessageLogContext &context, const QString &message)
    {
        QmlWarnings &w = instance();
        if (isQmlWarning(type, context)) {
            QMutexLocker locker(&w.lock);
            w.seen << QStringLiteral("%1: %2").arg(QString::fromLatin1(context.category ? context.category : "default"), message);
        }
        if (w.previous)
            w.previous(type, context, message);
        else
            std::fprintf(stderr, "%s\n", qPrintable(message));
    }
    // Puts the recorder in front of the current handler (again, if something replaced it).
    static void ensureRecording()
    {
        const QtMessageHandler before = qInstallMessageHandler(handler);
        if (before != handler)
            instance().previous = before;
    }
    static void record(const QString &warning)
    {
        QMutexLocker locker(&instance().lock);
        instance().seen << warning;
    }
    static QStringList take()
    {
        QMutexLocker locker(&instance().lock);
        return std::exchange(instance().seen, {});
    }
};

} // namespace dengine::test
