// SPDX-License-Identifier: Apache-2.0
#include <dengine/dengineconfig.h>

#include "engine/hostport.h"

#include <QtCore/QDir>
#include <QtCore/QFile>
#include <QtCore/QFileInfo>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QMap>
#include <QtCore/QPair>
#include <QtCore/QSet>
#include <QtNetwork/QHostAddress>

#include <cmath>

using dengine::engine::parseHostPort;

QString DEngineConfig::validate() const
{
    if (nodeId == 0)
        return QStringLiteral("nodeId: must not be 0 (0 means \"no node\")");
    if (peers.isEmpty())
        return QStringLiteral("peers: must list every member, this node included");
    if (!peers.contains(nodeId))
        return QStringLiteral("peers: does not contain this node's id %1").arg(nodeId);
    if (join && peers.size() < 2)
        return QStringLiteral("peers: a node that joins (join) must name at least one member of the cluster besides itself");
    QMap<QPair<QString, quint16>, NodeId> addresses;
    for (auto it = peers.cbegin(); it != peers.cend(); ++it) {
        if (it.key() == 0)
            return QStringLiteral("peers: node id 0 is not allowed");
        QString host;
        quint16 port = 0;
        // Port 0 ("any free port") only where nobody needs to dial it: a one-node cluster's own entry.
        const bool anyPort = peers.size() == 1;
        if (!parseHostPort(it.value(), &host, &port, anyPort))
            return QStringLiteral("peers: address \"%1\" of node %2 is not host:port (port 1..65535)").arg(it.value()).arg(it.key());
        const QHostAddress ip = host == QLatin1String("localhost") ? QHostAddress(QHostAddress::LocalHost) : QHostAddress(host);
        if (ip.isNull())
            return QStringLiteral("peers: the host of node %1 (\"%2\") must be an IP address or localhost (names are not resolved yet)")
                .arg(it.key())
                .arg(host);
        const auto key = qMakePair(ip.toString(), port);
        if (addresses.contains(key))
            return QStringLiteral("peers: nodes %1 and %2 have the same address %3").arg(addresses.value(key)).arg(it.key()).arg(it.value());
        addresses.insert(key, it.key());
    }
    if (!listenAddress.isEmpty() && !parseHostPort(listenAddress, nullptr, nullptr, true))
        return QStringLiteral("listenAddress: \"%1\" is not host:port (port 0..65535, 0: any free port)").arg(listenAddress);
    if (!clientAddress.isEmpty()) {
        quint16 port = 0;
        if (!parseHostPort(clientAddress, nullptr, &port, false) || port == 0 || clientAddress.toUtf8().size() > 256)
            return QStringLiteral("clientAddress: \"%1\" is not host:port (a port 1..65535, at most 256 bytes)").arg(clientAddress);
    }
    if (clusterId == 0)
        return QStringLiteral("clusterId: must not be 0");
    if (dataDirectory.isEmpty())
        return QStringLiteral("dataDirectory: not set");
    if (!insecure) {
        if (tlsCaFile.isEmpty())
            return QStringLiteral("tlsCaFile: not set (TLS between nodes needs the cluster's authority, a certificate and a key; "
                                  "or set insecure for plain TCP)");
        if (tlsCertificateFile.isEmpty())
            return QStringLiteral("tlsCertificateFile: not set (or set insecure for plain TCP)");
        if (tlsKeyFile.isEmpty())
            return QStringLiteral("tlsKeyFile: not set (or set insecure for plain TCP)");
    }
    if (tickIntervalMs < 1 || tickIntervalMs > 60000)
        return QStringLiteral("tickIntervalMs: must be in 1..60000");
    if (heartbeatTicks < 1)
        return QStringLiteral("heartbeatTicks: must be at least 1");
    if (electionTicks <= heartbeatTicks)
        return QStringLiteral("electionTicks: must be greater than heartbeatTicks");
    if (electionTicks < 3)
        return QStringLiteral("electionTicks: must be at least 3");
    if (maxKeyBytes < 1 || maxKeyBytes > (1 << 20))
        return QStringLiteral("maxKeyBytes: must be in 1..1048576");
    if (maxValueBytes < 0 || maxValueBytes > (64 << 20))
        return QStringLiteral("maxValueBytes: must be in 0..67108864");
    if (maxBatchOperations < 1 || maxBatchOperations > 1000000)
        return QStringLiteral("maxBatchOperations: must be in 1..1000000");
    if (maxPendingRequests < 1)
        return QStringLiteral("maxPendingRequests: must be at least 1");
    if (maxPendingBytes < 1)
        return QStringLiteral("maxPendingBytes: must be at least 1");
    if (maxScanItems < 1)
        return QStringLiteral("maxScanItems: must be at least 1");
    if (maxScanBytes < 1)
        return QStringLiteral("maxScanBytes: must be at least 1");
    if (watchHistoryRevisions < 1)
        return QStringLiteral("watchHistoryRevisions: must be at least 1");
    if (watchHistoryBytes < 1)
        return QStringLiteral("watchHistoryBytes: must be at least 1");
    if (requestTimeoutMs < 1)
        return QStringLiteral("requestTimeoutMs: must be positive");
    if (stopTimeoutMs < 1)
        return QStringLiteral("stopTimeoutMs: must be positive");
    if (walSegmentBytes < (64 << 10) || walSegmentBytes > (1LL << 32))
        return QStringLiteral("walSegmentBytes: must be in 64 KiB..4 GiB");
    if (snapshotEntries < 0 || snapshotBytes < 0)
        return QStringLiteral("snapshotEntries, snapshotBytes: must not be negative (0 disables the trigger)");
    if (leaseReads && !checkQuorum)
        return QStringLiteral("leaseReads: needs checkQuorum (a leader must step down when it loses its quorum)");
    return {};
}

DEngineConfig DEngineConfig::fromFile(const QString &path, QString *error)
{
    const auto fail = [&](const QString &why) {
        if (error)
            *error = path + QStringLiteral(": ") + why;
        return DEngineConfig();
    };
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return fail(file.errorString());
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(file.readAll(), &parseError);
    if (doc.isNull())
        return fail(QStringLiteral("not valid JSON at offset %1: %2").arg(parseError.offset).arg(parseError.errorString()));
    if (!doc.isObject())
        return fail(QStringLiteral("the top level must be an object"));
    const QJsonObject o = doc.object();
    DEngineConfig c;
    static const QSet<QString> known = {
        QStringLiteral("nodeId"),          QStringLiteral("peers"),          QStringLiteral("listenAddress"),
        QStringLiteral("clusterId"),       QStringLiteral("dataDirectory"),  QStringLiteral("tickIntervalMs"),
        QStringLiteral("electionTicks"),   QStringLiteral("heartbeatTicks"), QStringLiteral("checkQuorum"),
        QStringLiteral("preVote"),         QStringLiteral("maxKeyBytes"),    QStringLiteral("maxValueBytes"),
        QStringLiteral("maxBatchOperations"), QStringLiteral("maxPendingRequests"), QStringLiteral("requestTimeoutMs"),
        QStringLiteral("stopTimeoutMs"), QStringLiteral("leaseReads"), QStringLiteral("maxPendingBytes"),
        QStringLiteral("maxScanItems"), QStringLiteral("maxScanBytes"), QStringLiteral("tlsCaFile"),
        QStringLiteral("tlsCertificateFile"), QStringLiteral("tlsKeyFile"), QStringLiteral("insecure"),
        QStringLiteral("snapshotEntries"), QStringLiteral("snapshotBytes"), QStringLiteral("walSegmentBytes"),
        QStringLiteral("join"), QStringLiteral("watchHistoryRevisions"), QStringLiteral("watchHistoryBytes"),
        QStringLiteral("server"), // dengined's own section (client port and limits): not the engine's
    };
    for (auto it = o.begin(); it != o.end(); ++it)
        if (!known.contains(it.key()))
            return fail(QStringLiteral("unknown field \"%1\"").arg(it.key()));
    const auto integer = [&](const char *name, qint64 &out) -> bool {
        const QJsonValue v = o.value(QLatin1String(name));
        if (v.isUndefined())
            return true;
        if (!v.isDouble() || v.toDouble() != static_cast<double>(v.toInteger()))
            return false;
        out = v.toInteger();
        return true;
    };
    const auto intField = [&](const char *name, int &field) -> bool {
        qint64 v = field;
        if (!integer(name, v) || v < INT_MIN || v > INT_MAX)
            return false;
        field = static_cast<int>(v);
        return true;
    };
    // A 64-bit id: a JSON number up to 2^53 (beyond it a number loses digits, and the id would be
    // another one), or a string of decimal digits for any value.
    const auto id64 = [&](const char *name, quint64 &out) -> QString {
        const QJsonValue v = o.value(QLatin1String(name));
        if (v.isUndefined())
            return {};
        constexpr double exact = 9007199254740992.0; // 2^53
        if (v.isDouble()) {
            const double d = v.toDouble();
            if (d > exact && d == std::floor(d))
                return QStringLiteral("%1: %2 is above 2^53, where a JSON number loses digits; write it as a string").arg(QLatin1String(name)).arg(d, 0, 'g', 20);
            if (d < 0 || d > exact || d != std::floor(d))
                return QStringLiteral("%1: must be a non-negative integer").arg(QLatin1String(name));
            out = static_cast<quint64>(d);
            return {};
        }
        if (v.isString()) {
            bool ok = false;
            const QString text = v.toString();
            out = text.toULongLong(&ok, 10);
            if (!ok || text.isEmpty() || !text.front().isDigit())
                return QStringLiteral("%1: \"%2\" is not a decimal 64-bit integer").arg(QLatin1String(name), text);
            return {};
        }
        return QStringLiteral("%1: must be a non-negative integer (or a string of digits)").arg(QLatin1String(name));
    };
    quint64 id = 0, cluster = c.clusterId;
    if (const QString why = id64("nodeId", id); !why.isEmpty())
        return fail(why);
    c.nodeId = static_cast<NodeId>(id);
    if (const QString why = id64("clusterId", cluster); !why.isEmpty())
        return fail(why);
    c.clusterId = cluster;
    const QJsonValue peers = o.value(QLatin1String("peers"));
    if (!peers.isUndefined()) {
        if (!peers.isObject())
            return fail(QStringLiteral("peers: must be an object of id: \"host:port\""));
        const QJsonObject p = peers.toObject();
        for (auto it = p.begin(); it != p.end(); ++it) {
            bool ok = false;
            const NodeId peer = it.key().toULongLong(&ok);
            if (!ok || !it.value().isString())
                return fail(QStringLiteral("peers: entry \"%1\" must be a numeric id mapped to \"host:port\"").arg(it.key()));
            c.peers.insert(peer, it.value().toString());
        }
    }
    const auto stringField = [&](const char *name, QString &field) -> bool {
        const QJsonValue v = o.value(QLatin1String(name));
        if (v.isUndefined())
            return true;
        if (!v.isString())
            return false;
        field = v.toString();
        return true;
    };
    const auto boolField = [&](const char *name, bool &field) -> bool {
        const QJsonValue v = o.value(QLatin1String(name));
        if (v.isUndefined())
            return true;
        if (!v.isBool())
            return false;
        field = v.toBool();
        return true;
    };
    if (!stringField("listenAddress", c.listenAddress))
        return fail(QStringLiteral("listenAddress: must be a string"));
    if (!stringField("dataDirectory", c.dataDirectory))
        return fail(QStringLiteral("dataDirectory: must be a string"));
    if (!boolField("checkQuorum", c.checkQuorum))
        return fail(QStringLiteral("checkQuorum: must be true or false"));
    if (!boolField("preVote", c.preVote))
        return fail(QStringLiteral("preVote: must be true or false"));
    if (!boolField("leaseReads", c.leaseReads))
        return fail(QStringLiteral("leaseReads: must be true or false"));
    if (!boolField("insecure", c.insecure))
        return fail(QStringLiteral("insecure: must be true or false"));
    if (!boolField("join", c.join))
        return fail(QStringLiteral("join: must be true or false"));
    // TLS files: a relative path is relative to the configuration file's directory.
    const QDir base = QFileInfo(path).absoluteDir();
    for (auto [name, field] : {std::pair{"tlsCaFile", &c.tlsCaFile}, std::pair{"tlsCertificateFile", &c.tlsCertificateFile},
                               std::pair{"tlsKeyFile", &c.tlsKeyFile}}) {
        if (!stringField(name, *field))
            return fail(QStringLiteral("%1: must be a string").arg(QLatin1String(name)));
        if (!field->isEmpty())
            *field = QDir::cleanPath(base.absoluteFilePath(*field));
    }
    struct IntSpec {
        const char *name;
        int *field;
    };
    const IntSpec ints[] = {{"tickIntervalMs", &c.tickIntervalMs},   {"electionTicks", &c.electionTicks},
                            {"heartbeatTicks", &c.heartbeatTicks},   {"maxKeyBytes", &c.maxKeyBytes},
                            {"maxValueBytes", &c.maxValueBytes},     {"maxBatchOperations", &c.maxBatchOperations},
                            {"maxPendingRequests", &c.maxPendingRequests}, {"requestTimeoutMs", &c.requestTimeoutMs},
                            {"stopTimeoutMs", &c.stopTimeoutMs},           {"maxScanItems", &c.maxScanItems}};
    for (const IntSpec &spec : ints)
        if (!intField(spec.name, *spec.field))
            return fail(QStringLiteral("%1: must be an integer").arg(QLatin1String(spec.name)));
    if (!integer("maxPendingBytes", c.maxPendingBytes))
        return fail(QStringLiteral("maxPendingBytes: must be an integer"));
    if (!integer("maxScanBytes", c.maxScanBytes))
        return fail(QStringLiteral("maxScanBytes: must be an integer"));
    if (!integer("watchHistoryRevisions", c.watchHistoryRevisions))
        return fail(QStringLiteral("watchHistoryRevisions: must be an integer"));
    if (!integer("watchHistoryBytes", c.watchHistoryBytes))
        return fail(QStringLiteral("watchHistoryBytes: must be an integer"));
    if (!integer("snapshotEntries", c.snapshotEntries))
        return fail(QStringLiteral("snapshotEntries: must be an integer"));
    if (!integer("snapshotBytes", c.snapshotBytes))
        return fail(QStringLiteral("snapshotBytes: must be an integer"));
    if (!integer("walSegmentBytes", c.walSegmentBytes))
        return fail(QStringLiteral("walSegmentBytes: must be an integer"));
    if (const QString problem = c.validate(); !problem.isEmpty())
        return fail(problem);
    if (error)
        error->clear();
    return c;
}
