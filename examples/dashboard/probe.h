// SPDX-License-Identifier: Apache-2.0
#pragma once

// Finding the dashboard's parts by objectName, for the programs that drive it from C++ (its
// screenshot test, tests/qml/tst_dashboard.cpp, and bench/dashboard_bench.cpp). Delegates (the
// member cards, the key list's rows) are in the item tree, not the QObject tree findChild walks.
// GUI thread.

#include <QtCore/QObject>
#include <QtCore/QString>
#include <QtQuick/QQuickItem>

namespace dengine::dashboard {

inline QQuickItem *findItem(QQuickItem *item, const QString &name)
{
    if (!item)
        return nullptr;
    if (item->objectName() == name)
        return item;
    const QList<QQuickItem *> children = item->childItems();
    for (QQuickItem *child : children)
        if (QQuickItem *found = findItem(child, name))
            return found;
    return nullptr;
}

// The `text` of the object named `name` below `root` (a label); empty when there is none.
inline QString textOf(QObject *root, const char *name)
{
    QObject *o = root ? root->findChild<QObject *>(QLatin1String(name)) : nullptr;
    return o ? o->property("text").toString() : QString();
}

} // namespace dengine::dashboard
