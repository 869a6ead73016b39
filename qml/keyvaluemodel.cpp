// SPDX-License-Identifier: Apache-2.0
#include "keyvaluemodel.h"

#include "qmlengine.h"

#include <limits>
#include <utility>

KeyValueModel::KeyValueModel(QObject *parent) : QAbstractListModel(parent)
{
    // A tick while a read is under way lets it finish (a read longer than the interval would
    // otherwise be abandoned at every tick, and never land).
    connect(&m_timer, &QTimer::timeout, this, [this] {
        // Nothing applied since the last read started (and it went well): nothing can differ.
        const bool moved = !usable() || m_engine->engine()->appliedIndex() != m_readFrom || !m_lastError.isEmpty();
        if (!m_reading && moved)
            refresh();
    });
}

void KeyValueModel::componentComplete()
{
    m_complete = true;
    restartTimer();
    refresh();
}

void KeyValueModel::setEngine(EngineBase *engine)
{
    if (m_engine == engine)
        return;
    if (m_engine)
        m_engine->disconnect(this);
    m_engine = engine;
    if (engine) {
        // A read as soon as there is something to read from, and again when the engine is new.
        connect(engine, &EngineBase::readyChanged, this, [this] {
            if (m_engine && m_engine->isReady())
                refresh();
        });
        connect(engine, &EngineBase::engineChanged, this, [this] {
            clearRows(); // another cluster, perhaps: its keys are not these
            refresh();
        });
    }
    Q_EMIT engineChanged();
    queryChangedInternal();
}

void KeyValueModel::setPrefix(const QString &v)
{
    if (m_prefix == v)
        return;
    m_prefix = v;
    queryChangedInternal();
}

void KeyValueModel::setBegin(const QString &v)
{
    if (m_beginSet && m_begin == v)
        return;
    m_begin = v;
    m_beginSet = true;
    queryChangedInternal();
}

void KeyValueModel::setEnd(const QString &v)
{
    if (m_end == v)
        return;
    m_end = v;
    queryChangedInternal();
}

void KeyValueModel::setConsistency(const QString &v)
{
    if (m_consistency == v)
        return;
    m_consistency = v;
    queryChangedInternal();
}

void KeyValueModel::setMaxRows(int n)
{
    n = qMax(1, n);
    if (m_maxRows == n)
        return;
    m_maxRows = n;
    queryChangedInternal();
}

void KeyValueModel::setInterval(int ms)
{
    ms = qMax(0, ms);
    if (m_interval == ms)
        return;
    m_interval = ms;
    Q_EMIT intervalChanged();
    restartTimer();
}

void KeyValueModel::restartTimer()
{
    m_timer.stop();
    if (m_complete && m_interval > 0)
        m_timer.start(m_interval);
}

void KeyValueModel::queryChangedInternal()
{
    Q_EMIT queryChanged();
    clearRows(); // rows of another query (or engine) are not this one's, even until it reads
    if (m_complete)
        refresh();
}

void KeyValueModel::clearRows()
{
    ++m_generation; // abandons a read under way
    m_incoming.clear();
    m_readFrom = 0;
    const bool hadRows = !m_rows.empty();
    if (hadRows) {
        beginResetModel();
        m_rows.clear();
        endResetModel();
    }
    const bool hadTruncated = m_truncated;
    m_truncated = false;
    m_revision = 0;
    m_lastError.clear();
    if (m_reading) {
        m_reading = false;
        Q_EMIT loadingChanged();
    }
    if (hadRows || hadTruncated)
        Q_EMIT countChanged();
}

bool KeyValueModel::usable() const { return m_engine && m_engine->engine() && m_engine->isReady(); }

void KeyValueModel::refresh()
{
    if (!usable())
        return;
    const bool wasLoading = loading();
    ++m_generation; // abandons a read under way
    m_reading = true;
    m_readFrom = m_engine->engine()->appliedIndex();
    m_incoming.clear();
    if (!wasLoading)
        Q_EMIT loadingChanged();
    const QByteArray from = m_beginSet ? m_begin.toUtf8() : m_prefix.toUtf8();
    readPage(m_generation, from);
}

void KeyValueModel::readPage(quint64 generation, const QByteArray &from)
{
    if (!m_engine || !m_engine->engine()) { // the engine went while the read was under way
        m_reading = false;
        Q_EMIT loadingChanged();
        return;
    }
    DEngineInterface *e = m_engine->engine();
    const QByteArray end = m_beginSet ? m_end.toUtf8() : DEngineInterface::prefixEnd(m_prefix.toUtf8());
    // One row over maxRows tells whether the range holds more.
    const int room = int(qMin<qint64>(qint64(m_maxRows) + 1 - qint64(m_incoming.size()), std::numeric_limits<int>::max()));
    QPointer<KeyValueModel> self(this);
    DEngineInterface::Consistency consistency = DEngineInterface::Consistency::Linearizable; // an unknown name too
    parseConsistency(m_consistency, &consistency);
    e->range(from, end, room, consistency).then([self, generation](const DEngineResult &r) {
        if (!self || generation != self->m_generation)
            return; // gone, or a newer read took over
        if (!r.ok()) {
            self->m_reading = false;
            self->m_lastError = QStringLiteral("%1: %2").arg(KvResult(r).statusName(), r.message);
            Q_EMIT self->loadingChanged();
            Q_EMIT self->refreshed();
            return;
        }
        for (const DEngineKeyValue &kv : r.items)
            self->m_incoming.push_back(Row{kv.key, kv.value});
        if (!r.nextKey.isEmpty() && int(self->m_incoming.size()) <= self->m_maxRows) {
            self->readPage(generation, r.nextKey); // the engine cut the page short: go on
            return;
        }
        const bool truncated = int(self->m_incoming.size()) > self->m_maxRows || !r.nextKey.isEmpty();
        if (int(self->m_incoming.size()) > self->m_maxRows)
            self->m_incoming.resize(std::size_t(self->m_maxRows));
        self->m_reading = false;
        self->m_revision = double(r.revision);
        self->m_lastError.clear();
        const bool truncatedChanged = truncated != self->m_truncated;
        self->m_truncated = truncated;
        const int before = self->count();
        // Out of m_incoming first: a slot of the row signals may start another read.
        self->merge(std::exchange(self->m_incoming, {}));
        if (before != self->count() || truncatedChanged)
            Q_EMIT self->countChanged();
        Q_EMIT self->loadingChanged();
        Q_EMIT self->refreshed();
    });
}

void KeyValueModel::merge(std::vector<Row> &&fresh)
{
    std::size_t i = 0; // in m_rows, as it is being changed
    std::size_t j = 0; // in fresh
    qsizetype changedFrom = -1;
    const auto flushChanged = [&](std::size_t upTo) {
        if (changedFrom < 0)
            return;
        Q_EMIT dataChanged(index(int(changedFrom)), index(int(upTo) - 1), {ValueRole});
        changedFrom = -1;
    };
    while (i < m_rows.size() || j < fresh.size()) {
        if (i < m_rows.size() && (j == fresh.size() || m_rows[i].key < fresh[j].key)) {
            flushChanged(i);
            std::size_t k = i; // the run of rows that are gone
            while (k < m_rows.size() && (j == fresh.size() || m_rows[k].key < fresh[j].key))
                ++k;
            beginRemoveRows({}, int(i), int(k) - 1);
            m_rows.erase(m_rows.begin() + qsizetype(i), m_rows.begin() + qsizetype(k));
            endRemoveRows();
        } else if (i == m_rows.size() || fresh[j].key < m_rows[i].key) {
            flushChanged(i);
            std::size_t k = j; // the run of new rows before row i
            while (k < fresh.size() && (i == m_rows.size() || fresh[k].key < m_rows[i].key))
                ++k;
            beginInsertRows({}, int(i), int(i + (k - j)) - 1);
            m_rows.insert(m_rows.begin() + qsizetype(i), std::make_move_iterator(fresh.begin() + qsizetype(j)),
                          std::make_move_iterator(fresh.begin() + qsizetype(k)));
            endInsertRows();
            i += k - j;
            j = k;
        } else {
            if (m_rows[i].value != fresh[j].value) {
                m_rows[i].value = std::move(fresh[j].value);
                if (changedFrom < 0)
                    changedFrom = qsizetype(i);
            } else {
                flushChanged(i);
            }
            ++i;
            ++j;
        }
    }
    flushChanged(i);
}

QString KeyValueModel::keyAt(int row) const
{
    return row >= 0 && row < count() ? QString::fromUtf8(m_rows[std::size_t(row)].key) : QString();
}

QString KeyValueModel::valueAt(int row) const
{
    return row >= 0 && row < count() ? QString::fromUtf8(m_rows[std::size_t(row)].value) : QString();
}

int KeyValueModel::rowCount(const QModelIndex &parent) const { return parent.isValid() ? 0 : count(); }

QVariant KeyValueModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || index.row() >= count())
        return {};
    const Row &row = m_rows[std::size_t(index.row())];
    switch (role) {
    case KeyRole:
    case Qt::DisplayRole: return QString::fromUtf8(row.key);
    case ValueRole: return QString::fromUtf8(row.value);
    default: return {};
    }
}

QHash<int, QByteArray> KeyValueModel::roleNames() const
{
    return {{KeyRole, "key"}, {ValueRole, "value"}};
}
