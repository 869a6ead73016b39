// SPDX-License-Identifier: Apache-2.0
// PeerTransport on 127.0.0.1: messages flow both ways, bad connections are closed without harm,
// a taken port is reported, and a restarted peer is reached again. Waits are QTRY_* with generous
// limits; nothing sleeps.
#include "engine/peertransport.h"
#include "../common/testports.h"

#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>
#include <QtTest/QtTest>

using dengine::engine::PeerTransport;
using namespace dengine;

namespace {

using dengine::test::freePorts;

raft::Message heartbeat(raft::NodeId from, raft::NodeId to, std::uint64_t context)
{
    raft::Message m;
    m.type = raft::MessageType::Heartbeat;
    m.from = from;
    m.to = to;
    m.term = 3;
    m.context = context;
    return m;
}

struct Node {
    std::vector<raft::Message> received;
    std::vector<raft::NodeId> unreachable;
    std::unique_ptr<PeerTransport> transport;

    void start(raft::NodeId self, const QMap<raft::NodeId, QString> &peers, quint64 cluster = 7, quint32 maxFrame = 64u << 20,
               bool acceptNonMembers = false)
    {
        PeerTransport::Options o;
        o.self = self;
        o.clusterId = cluster;
        o.peers = peers;
        o.maxFrameBytes = maxFrame;
        o.acceptNonMembers = acceptNonMembers;
        transport = std::make_unique<PeerTransport>(
            o, [this](std::vector<raft::Message> &&ms) { received.insert(received.end(), ms.begin(), ms.end()); },
            [this](raft::NodeId id) { unreachable.push_back(id); });
        QString error;
        QVERIFY2(transport->listen(&error), qPrintable(error));
    }
};

} // namespace

class tst_PeerTransport : public QObject {
    Q_OBJECT

private:
    QMap<raft::NodeId, QString> m_peers;
    quint16 m_spare = 0; // a port no member uses

private Q_SLOTS:
    void init()
    {
        m_peers.clear();
        const QList<quint16> ports = freePorts(4);
        for (raft::NodeId id = 1; id <= 3; ++id)
            m_peers.insert(id, QStringLiteral("127.0.0.1:%1").arg(ports[int(id - 1)]));
        m_spare = ports[3];
    }

    void messages_flowBothWaysInOrder()
    {
        Node a, b;
        a.start(1, m_peers);
        b.start(2, m_peers);
        for (std::uint64_t i = 1; i <= 100; ++i)
            a.transport->send({heartbeat(1, 2, i)});
        b.transport->send({heartbeat(2, 1, 42)});
        QTRY_COMPARE_WITH_TIMEOUT(b.received.size(), std::size_t(100), 10000);
        QTRY_COMPARE_WITH_TIMEOUT(a.received.size(), std::size_t(1), 10000);
        for (std::size_t i = 0; i < b.received.size(); ++i)
            QCOMPARE(b.received[i].context, std::uint64_t(i + 1));
        QCOMPARE(a.received[0].context, std::uint64_t(42));
        QVERIFY2(a.transport->stats().framesSent < 100, "messages of one turn share frames");
    }

    void oneTurnOverTheFrameLimit_isSplitIntoFrames_andAllArrives()
    {
        // 40 Appends of 10 KiB in one turn, frames limited to 64 KiB on both ends: one frame
        // would be refused (and the connection closed), so they must travel as several.
        Node a, b;
        a.start(1, m_peers, 7, 64 * 1024);
        b.start(2, m_peers, 7, 64 * 1024);
        std::vector<raft::Message> burst;
        for (std::uint64_t i = 1; i <= 40; ++i) {
            raft::Message m = heartbeat(1, 2, i);
            m.type = raft::MessageType::Append;
            m.index = i - 1;
            m.logTerm = 3;
            m.entries.push_back(raft::Entry{3, i, raft::EntryType::Normal, raft::Payload(std::string(10 * 1024, 'x'))});
            burst.push_back(std::move(m));
        }
        a.transport->send(std::move(burst));
        QTRY_COMPARE_WITH_TIMEOUT(b.received.size(), std::size_t(40), 10000);
        for (std::size_t i = 0; i < b.received.size(); ++i)
            QCOMPARE(b.received[i].context, std::uint64_t(i + 1));
        QVERIFY(a.transport->stats().framesSent >= 8);
        QVERIFY(a.unreachable.empty());
    }

    void foreignCluster_isRefusedAndTheNodeGoesOn()
    {
        Node a, b, stranger;
        a.start(1, m_peers);
        b.start(2, m_peers);
        QMap<raft::NodeId, QString> strangerPeers = m_peers;
        strangerPeers[3] = QStringLiteral("127.0.0.1:%1").arg(m_spare);
        stranger.start(3, strangerPeers, /*cluster*/ 99);
        stranger.transport->send({heartbeat(3, 1, 1)});
        QTRY_VERIFY_WITH_TIMEOUT(a.transport->stats().connectionsRefused >= 1, 10000);
        QVERIFY(a.received.empty());
        b.transport->send({heartbeat(2, 1, 5)});
        QTRY_COMPARE_WITH_TIMEOUT(a.received.size(), std::size_t(1), 10000);
    }

    void garbageAndOversizedFrames_closeTheConnection()
    {
        Node a;
        a.start(1, m_peers);
        QString host;
        quint16 port = 0;
        QVERIFY(dengine::engine::parseHostPort(m_peers[1], &host, &port));
        for (const QByteArray &junk : {QByteArray("\x05\x00\x00\x00hello", 9), QByteArray("\xff\xff\xff\x7f", 4)}) {
            QTcpSocket raw;
            raw.connectToHost(QHostAddress::LocalHost, port);
            QVERIFY(raw.waitForConnected(10000));
            raw.write(junk);
            QTRY_COMPARE_WITH_TIMEOUT(raw.state(), QAbstractSocket::UnconnectedState, 10000);
        }
        QCOMPARE(a.transport->stats().connectionsRefused, quint64(2));
        QVERIFY(a.received.empty());
    }

    void portInUse_isReportedWithTheAddress()
    {
        Node a;
        a.start(1, m_peers);
        PeerTransport::Options o;
        o.self = 1;
        o.clusterId = 7;
        o.peers = m_peers;
        PeerTransport second(o, [](std::vector<raft::Message> &&) {}, nullptr);
        QString error;
        QVERIFY(!second.listen(&error));
        QVERIFY2(error.contains(m_peers[1]), qPrintable(error));
    }

    void restartedPeer_isReachedAgain()
    {
        Node a, b;
        a.start(1, m_peers);
        b.start(2, m_peers);
        a.transport->send({heartbeat(1, 2, 1)});
        QTRY_COMPARE_WITH_TIMEOUT(b.received.size(), std::size_t(1), 10000);
        b.transport.reset(); // node 2 goes away
        a.transport->send({heartbeat(1, 2, 2)});
        QTRY_VERIFY_WITH_TIMEOUT(!a.unreachable.empty(), 10000);
        QCOMPARE(a.unreachable.front(), raft::NodeId(2));
        Node b2;
        b2.start(2, m_peers);
        // Like Raft's heartbeats: node 1 keeps sending on a timer until the new node hears one.
        std::uint64_t next = 3;
        QTimer heartbeats;
        connect(&heartbeats, &QTimer::timeout, this, [&] { a.transport->send({heartbeat(1, 2, next++)}); });
        heartbeats.start(20);
        QTRY_VERIFY_WITH_TIMEOUT(!b2.received.empty(), 10000);
    }

    void joiningNode_acceptsTheCluster_andAnswersAtTheAddressFromTheHello()
    {
        // Node 4 knows only itself and node 2; node 1 (which added it) reaches it first.
        QMap<raft::NodeId, QString> all = m_peers;
        all.insert(4, QStringLiteral("127.0.0.1:%1").arg(m_spare));
        Node leader, joiner;
        leader.start(1, all);
        joiner.start(4, {{4, all.value(4)}, {2, all.value(2)}}, 7, 64u << 20, /*acceptNonMembers*/ true);
        leader.transport->send({heartbeat(1, 4, 1)});
        QTRY_COMPARE_WITH_TIMEOUT(joiner.received.size(), std::size_t(1), 10000);
        QCOMPARE(joiner.transport->peers().value(1), all.value(1)); // from node 1's Hello
        joiner.transport->send({heartbeat(4, 1, 2)});
        QTRY_COMPARE_WITH_TIMEOUT(leader.received.size(), std::size_t(1), 10000);
        QCOMPARE(leader.received[0].context, std::uint64_t(2));

        // Once a member, it takes members only.
        joiner.transport->setAcceptNonMembers(false);
        joiner.transport->setPeers({{1, all.value(1)}, {2, all.value(2)}});
        Node third;
        third.start(3, all);
        const quint64 refused = joiner.transport->stats().connectionsRefused;
        third.transport->send({heartbeat(3, 4, 3)});
        QTRY_VERIFY_WITH_TIMEOUT(joiner.transport->stats().connectionsRefused > refused, 10000);
        QCOMPARE(joiner.received.size(), std::size_t(1));
    }

    void setPeers_dropsARemovedMemberBothWays_andFollowsAMovedOne()
    {
        Node a, b;
        a.start(1, m_peers);
        b.start(2, m_peers);
        a.transport->send({heartbeat(1, 2, 1)});
        b.transport->send({heartbeat(2, 1, 2)});
        QTRY_COMPARE_WITH_TIMEOUT(b.received.size(), std::size_t(1), 10000);
        QTRY_COMPARE_WITH_TIMEOUT(a.received.size(), std::size_t(1), 10000);

        // Node 2 is removed from node 1's members: its connection in is closed, nothing goes out.
        QMap<raft::NodeId, QString> without2 = m_peers;
        without2.remove(2);
        a.transport->setPeers(without2);
        QVERIFY(!a.transport->peers().contains(2));
        QVERIFY(a.transport->peers().contains(1)); // its own entry stays
        const quint64 dropped = a.transport->stats().messagesDropped;
        a.transport->send({heartbeat(1, 2, 3)});
        QTRY_VERIFY_WITH_TIMEOUT(a.transport->stats().messagesDropped > dropped, 10000);
        const quint64 refused = a.transport->stats().connectionsRefused;
        b.transport->send({heartbeat(2, 1, 4)});
        QTRY_VERIFY_WITH_TIMEOUT(a.transport->stats().connectionsRefused > refused, 10000);
        QCOMPARE(a.received.size(), std::size_t(1));

        // Node 2 comes back at another address: node 1 reaches it there.
        b.transport.reset();
        QMap<raft::NodeId, QString> moved = m_peers;
        moved[2] = QStringLiteral("127.0.0.1:%1").arg(m_spare);
        Node b2;
        b2.start(2, moved);
        a.transport->setPeers(moved);
        std::uint64_t next = 10;
        QTimer heartbeats;
        connect(&heartbeats, &QTimer::timeout, this, [&] { a.transport->send({heartbeat(1, 2, next++)}); });
        heartbeats.start(20);
        QTRY_VERIFY_WITH_TIMEOUT(!b2.received.empty(), 10000);
    }
};

QTEST_GUILESS_MAIN(tst_PeerTransport)
#include "tst_peertransport.moc"
