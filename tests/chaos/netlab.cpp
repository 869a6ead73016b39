// SPDX-License-Identifier: Apache-2.0
#include "netlab.h"

#include <QtCore/QProcess>

namespace {
const QString Bridge = QStringLiteral("dchbr");
QString hostVeth(int node) { return QStringLiteral("dchv%1").arg(node); }
QString nodeVeth(int node) { return QStringLiteral("dchp%1").arg(node); }
} // namespace

bool NetLab::run(const QString &program, const QStringList &args, QString *why, const QByteArray &input)
{
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(program, args);
    if (!p.waitForStarted(10000)) {
        if (why)
            *why = QStringLiteral("%1: cannot start (%2)").arg(program, p.errorString());
        return false;
    }
    if (!input.isEmpty())
        p.write(input);
    p.closeWriteChannel();
    if (!p.waitForFinished(20000) || p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
        if (why)
            *why = QStringLiteral("%1 %2: %3").arg(program, args.join(QLatin1Char(' ')), QString::fromLocal8Bit(p.readAll()).trimmed());
        return false;
    }
    return true;
}

bool NetLab::up(QString *why)
{
    down();
    m_up = true;
    const QString ip = QStringLiteral("ip");
    if (!run(ip, {QStringLiteral("link"), QStringLiteral("add"), Bridge, QStringLiteral("type"), QStringLiteral("bridge")}, why)
        || !run(ip, {QStringLiteral("addr"), QStringLiteral("add"), harnessAddress() + QStringLiteral("/24"), QStringLiteral("dev"), Bridge}, why)
        || !run(ip, {QStringLiteral("link"), QStringLiteral("set"), Bridge, QStringLiteral("up")}, why))
        return false;
    for (int i = 1; i <= m_nodes; ++i) {
        const QString n = ns(i);
        const QStringList in{QStringLiteral("netns"), QStringLiteral("exec"), n, ip};
        if (!run(ip, {QStringLiteral("netns"), QStringLiteral("add"), n}, why)
            || !run(ip, {QStringLiteral("link"), QStringLiteral("add"), hostVeth(i), QStringLiteral("type"), QStringLiteral("veth"), QStringLiteral("peer"),
                         QStringLiteral("name"), nodeVeth(i)},
                    why)
            || !run(ip, {QStringLiteral("link"), QStringLiteral("set"), nodeVeth(i), QStringLiteral("netns"), n}, why)
            || !run(ip, {QStringLiteral("link"), QStringLiteral("set"), hostVeth(i), QStringLiteral("master"), Bridge, QStringLiteral("up")}, why)
            || !run(ip, in + QStringList{QStringLiteral("link"), QStringLiteral("set"), QStringLiteral("lo"), QStringLiteral("up")}, why)
            || !run(ip, in + QStringList{QStringLiteral("addr"), QStringLiteral("add"), address(i) + QStringLiteral("/24"), QStringLiteral("dev"), nodeVeth(i)}, why)
            || !run(ip, in + QStringList{QStringLiteral("link"), QStringLiteral("set"), nodeVeth(i), QStringLiteral("up")}, why))
            return false;
    }
    return true;
}

void NetLab::down()
{
    // Also what an earlier run left behind: every name this harness uses.
    for (int i = 1; i <= 9; ++i) {
        run(QStringLiteral("ip"), {QStringLiteral("netns"), QStringLiteral("del"), ns(i)});
        run(QStringLiteral("ip"), {QStringLiteral("link"), QStringLiteral("del"), hostVeth(i)});
    }
    run(QStringLiteral("ip"), {QStringLiteral("link"), QStringLiteral("del"), Bridge});
    m_filtered.clear();
    m_up = false;
}

bool NetLab::block(int at, const QList<int> &from, bool in, bool out, QString *why)
{
    if (from.isEmpty())
        return true;
    QByteArray script;
    if (!m_filtered.contains(at)) {
        script += "table inet chaos {\n"
                  "  chain in { type filter hook input priority 0; policy accept; }\n"
                  "  chain out { type filter hook output priority 0; policy accept; }\n"
                  "}\n";
    }
    for (int node : from) {
        const QByteArray a = address(node).toLatin1();
        if (in)
            script += "add rule inet chaos in ip saddr " + a + " drop\n";
        if (out)
            script += "add rule inet chaos out ip daddr " + a + " drop\n";
    }
    if (!run(QStringLiteral("ip"), exec(at, QStringLiteral("nft")) + QStringList{QStringLiteral("-f"), QStringLiteral("-")}, why, script))
        return false;
    if (!m_filtered.contains(at))
        m_filtered << at;
    return true;
}

bool NetLab::heal(int at)
{
    if (!m_filtered.contains(at))
        return true;
    m_filtered.removeAll(at);
    return run(QStringLiteral("ip"), exec(at, QStringLiteral("nft")) + QStringList{QStringLiteral("delete"), QStringLiteral("table"), QStringLiteral("inet"),
                                                                                     QStringLiteral("chaos")});
}

void NetLab::healAll()
{
    const QList<int> filtered = m_filtered;
    for (int node : filtered)
        heal(node);
}
