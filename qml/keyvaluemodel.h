// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <QtCore/QAbstractListModel>
#include <QtCore/QByteArray>
#include <QtCore/QElapsedTimer>
#include <QtCore/QPointer>
#include <QtCore/QTimer>
#include <QtQml/QQmlParserStatus>
#include <QtQml/qqmlregistration.h>

#include <dengine/dengineinterface.h>

#include <vector>

#include "qmlengine.h"

// The keys of a prefix (or a range) of an engine's store, in key order, kept live: re-read every
// `interval` ms when the engine has applied anything since the last read (there is no watch in
// the engine yet) and updated in place, so that views keep
// their scroll position and selection: rows that appear are inserted, rows that go are removed,
// changed values are dataChanged. A re-read pages through the range (the engine caps a page),
// and holds at most `maxRows` keys (more are counted in `truncated`).
//
// Roles: key, value (strings, UTF-8). Thread: the GUI thread. Never blocks.
class KeyValueModel : public QAbstractListModel, public QQmlParserStatus {
    Q_OBJECT
    Q_INTERFACES(QQmlParserStatus)
    QML_ELEMENT
    Q_PROPERTY(EngineBase *engine READ engine WRITE setEngine NOTIFY engineChanged)
    // The keys starting with `prefix` (when `end` is empty and `begin` is not set) ...
    Q_PROPERTY(QString prefix READ prefix WRITE setPrefix NOTIFY queryChanged)
    // ... or those in [begin, end) when `begin` is set (an empty end: no upper bound).
    Q_PROPERTY(QString begin READ begin WRITE setBegin NOTIFY queryChanged)
    Q_PROPERTY(QString end READ end WRITE setEnd NOTIFY queryChanged)
    // "linearizable" (the default), "lease" or "local".
    Q_PROPERTY(QString consistency READ consistency WRITE setConsistency NOTIFY queryChanged)
    // Milliseconds between re-reads (default 2000; 0: only refresh() reads). A tick with nothing
    // applied since the last read reads nothing.
    Q_PROPERTY(int interval READ interval WRITE setInterval NOTIFY intervalChanged)
    Q_PROPERTY(int maxRows READ maxRows WRITE setMaxRows NOTIFY queryChanged)
    Q_PROPERTY(int count READ count NOTIFY countChanged)
    // The last read found more keys than maxRows (false: the model holds the whole range).
    Q_PROPERTY(bool truncated READ truncated NOTIFY countChanged)
    // The revision (log index) the last complete read reflects, and its status ("" when Ok).
    Q_PROPERTY(double revision READ revision NOTIFY refreshed)
    Q_PROPERTY(QString lastError READ lastError NOTIFY refreshed)
    // A read is under way.
    Q_PROPERTY(bool loading READ loading NOTIFY loadingChanged)

public:
    enum Role { KeyRole = Qt::UserRole + 1, ValueRole };

    explicit KeyValueModel(QObject *parent = nullptr);

    EngineBase *engine() const { return m_engine; }
    void setEngine(EngineBase *engine);
    QString prefix() const { return m_prefix; }
    void setPrefix(const QString &v);
    QString begin() const { return m_begin; }
    void setBegin(const QString &v);
    QString end() const { return m_end; }
    void setEnd(const QString &v);
    QString consistency() const { return m_consistency; }
    void setConsistency(const QString &v);
    int interval() const { return m_interval; }
    void setInterval(int ms);
    int maxRows() const { return m_maxRows; }
    void setMaxRows(int n);
    int count() const { return int(m_rows.size()); }
    bool truncated() const { return m_truncated; }
    double revision() const { return m_revision; }
    QString lastError() const { return m_lastError; }
    bool loading() const { return m_reading; }

    // Reads the range again now (a read under way is abandoned for the new one).
    Q_INVOKABLE void refresh();
    // A row's key and value as the model holds them ("" past the end).
    Q_INVOKABLE QString keyAt(int row) const;
    Q_INVOKABLE QString valueAt(int row) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role) const override;
    QHash<int, QByteArray> roleNames() const override;

    void classBegin() override {}
    void componentComplete() override;

Q_SIGNALS:
    void engineChanged();
    void queryChanged();
    void intervalChanged();
    void countChanged();
    void loadingChanged();
    // A read finished (revision and lastError are its).
    void refreshed();

private:
    struct Row {
        QByteArray key;
        QByteArray value;
    };
    void restartTimer();
    void readPage(quint64 generation, const QByteArray &from);
    // Replaces the rows with `fresh` (sorted) by inserts, removes and dataChanged.
    void merge(std::vector<Row> &&fresh);
    void queryChangedInternal();
    void clearRows(); // the query or the engine changed: no rows until the next read
    bool usable() const;

    QPointer<EngineBase> m_engine;
    QString m_prefix, m_begin, m_end, m_consistency;
    bool m_beginSet = false;
    int m_interval = 2000;
    int m_maxRows = 100000;
    std::vector<Row> m_rows;
    std::vector<Row> m_incoming; // the read under way
    bool m_truncated = false;
    bool m_reading = false;
    bool m_complete = false;
    quint64 m_generation = 0; // the read under way (a newer one abandons it)
    double m_revision = 0;
    quint64 m_readFrom = 0; // the engine's applied index when the last read started
    QString m_lastError;
    QTimer m_timer;
};
