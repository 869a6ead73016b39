// SPDX-License-Identifier: Apache-2.0
#pragma once

// The fault harness's network: one Linux network namespace per node, each joined to a bridge in
// the harness's namespace by a veth pair, addresses 10.77.0.<node> inside them (the harness is
// 10.77.0.254 on the bridge). Faults between nodes are nftables rules inside a node's namespace
// (drop what comes from, or goes to, given nodes); the harness's own traffic (the clients) is
// never dropped. Needs root (CAP_NET_ADMIN), iproute2 and nftables.
//
// Everything it makes is named with the prefix "dch" and removed by down(), also what a crashed
// earlier run left (up() clears it first).

#include <QtCore/QList>
#include <QtCore/QString>
#include <QtCore/QStringList>

class NetLab {
public:
    explicit NetLab(int nodes) : m_nodes(nodes) {}
    ~NetLab() { down(); }
    // Makes the bridge, namespaces and links; false with the failing command's output.
    bool up(QString *why);
    void down();
    int nodes() const { return m_nodes; }
    static QString address(int node) { return QStringLiteral("10.77.0.%1").arg(node); }
    static QString harnessAddress() { return QStringLiteral("10.77.0.254"); }
    QString ns(int node) const { return QStringLiteral("dchn%1").arg(node); }
    // The command line that runs `program` inside node's namespace.
    QStringList exec(int node, const QString &program) const { return {QStringLiteral("netns"), QStringLiteral("exec"), ns(node), program}; }

    // Node `at` drops packets from (`in`) and to (`out`) the given nodes, on top of what it drops
    // already. Empty `from`: nothing changes.
    bool block(int at, const QList<int> &from, bool in, bool out, QString *why = nullptr);
    // Node `at` drops nothing any more.
    bool heal(int at);
    void healAll();

    // Runs `ip`, `nft` or another tool; false with its output in *why.
    static bool run(const QString &program, const QStringList &args, QString *why = nullptr, const QByteArray &input = {});

private:
    int m_nodes;
    bool m_up = false;
    QList<int> m_filtered; // nodes with a chaos table
};
