// SPDX-License-Identifier: Apache-2.0
#pragma once

// Three (or more) dengined processes on 127.0.0.1, each with its own data directory under one
// temporary directory, configured by files the tests may extend; for the integration tests of the
// standalone deployment.

#include "../auto/common/testports.h"

#include <QtCore/QFile>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QProcess>
#include <QtCore/QTemporaryDir>

#include <csignal>
#include <map>
#include <memory>

#ifndef DENGINED_PATH
#error "DENGINED_PATH must name the dengined executable"
#endif

namespace dengine::test {

class DEnginedCluster {
public:
    // `size` founding members, and room (ports) for `spare` more.
    explicit DEnginedCluster(int size, int spare = 0)
    {
        const QList<quint16> ports = freePorts(2 * (size + spare));
        for (int i = 0; i < size + spare; ++i) {
            peerPorts << ports[2 * i];
            clientPorts << ports[2 * i + 1];
        }
        m_size = size;
    }
    ~DEnginedCluster()
    {
        for (auto &[id, p] : nodes) {
            if (p->state() == QProcess::NotRunning)
                continue;
            ::kill(static_cast<pid_t>(p->processId()), SIGCONT); // a paused one, too
            ::kill(static_cast<pid_t>(p->processId()), SIGTERM);
            if (!p->waitForFinished(30000))
                p->kill();
        }
    }
    bool isValid() const { return dir.isValid(); }
    QString configPath(quint64 id) const { return dir.filePath(QStringLiteral("node%1.json").arg(id)); }
    // Node `id`'s lifecycle log (dengined --lifecycle-log), every start's lines in order.
    QString lifecyclePath(quint64 id) const { return dir.filePath(QStringLiteral("lifecycle%1.jsonl").arg(id)); }
    // The events of the process `pid` of node `id`, in order.
    QList<QJsonObject> lifecycle(quint64 id, qint64 pid) const
    {
        QList<QJsonObject> out;
        QFile f(lifecyclePath(id));
        if (f.open(QIODevice::ReadOnly))
            for (const QByteArray &line : f.readAll().split('\n'))
                if (const QJsonObject o = QJsonDocument::fromJson(line).object(); o.value(QLatin1String("pid")).toInteger() == pid)
                    out << o;
        return out;
    }
    QString peerAddress(quint64 id) const { return QStringLiteral("127.0.0.1:%1").arg(peerPorts[int(id - 1)]); }
    QString clientAddress(quint64 id) const { return QStringLiteral("127.0.0.1:%1").arg(clientPorts[int(id - 1)]); }
    QStringList clientAddresses() const
    {
        QStringList e;
        for (int i = 1; i <= m_size; ++i)
            e << clientAddress(quint64(i));
        return e;
    }
    // Writes node `id`'s configuration: the founders as peers, fast ticks, plain TCP unless `extra`
    // (JSON members, with a leading comma) says otherwise; `serverExtra` goes in the server section.
    bool writeConfig(quint64 id, const QString &extra = {}, const QString &serverExtra = {}) const
    {
        QStringList peers;
        for (int i = 1; i <= m_size; ++i)
            peers << QStringLiteral("\"%1\": \"%2\"").arg(i).arg(peerAddress(quint64(i)));
        QFile f(configPath(id));
        if (!f.open(QIODevice::WriteOnly))
            return false;
        f.write(QStringLiteral(R"({"nodeId": %1, "dataDirectory": "%2", "tickIntervalMs": 20, "electionTicks": 10, "peers": {%3}%4,
              "server": {"clientAddress": "%5"%6}})")
                    .arg(id)
                    .arg(dir.filePath(QStringLiteral("data%1").arg(id)), peers.join(QStringLiteral(", ")),
                         extra.isEmpty() ? QStringLiteral(", \"insecure\": true") : extra, clientAddress(id), serverExtra)
                    .toUtf8());
        return true;
    }
    QProcess *start(quint64 id)
    {
        auto p = std::make_unique<QProcess>();
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("QT_LOGGING_RULES"), QStringLiteral("dengine.*.info=false"));
        env.insert(QStringLiteral("DENGINE_LIFECYCLE_LOG"), lifecyclePath(id));
        p->setProcessEnvironment(env);
        p->setProcessChannelMode(QProcess::ForwardedErrorChannel);
        p->start(QStringLiteral(DENGINED_PATH), {QStringLiteral("--config"), configPath(id)});
        QProcess *raw = p.get();
        nodes[id] = std::move(p);
        return raw;
    }
    bool startAll()
    {
        for (int i = 1; i <= m_size; ++i)
            if (!writeConfig(quint64(i)) || !start(quint64(i)))
                return false;
        return true;
    }
    bool running(quint64 id) const
    {
        const auto it = nodes.find(id);
        return it != nodes.end() && it->second->state() != QProcess::NotRunning;
    }
    void signal(quint64 id, int sig) const { ::kill(static_cast<pid_t>(nodes.at(id)->processId()), sig); }

    QTemporaryDir dir;
    QList<quint16> peerPorts, clientPorts;
    std::map<quint64, std::unique_ptr<QProcess>> nodes;

private:
    int m_size = 0;
};

} // namespace dengine::test
