// SPDX-License-Identifier: Apache-2.0
// The client port (server/clientservice.h) on a three-node cluster in this process, spoken to with
// raw frames: every call through any member, pipelined requests answered by id, STATUS, the
// client's deadline, and bad input (another version, a reused id, garbage, an oversized frame)
// answered or closed without harm to the other connections.
#include "../dengine/enginetestkit.h"

#include "client/clientcodec.h"
#include "server/clientservice.h"

#include <QtNetwork/QTcpSocket>

using namespace dengine;
using namespace dengine::test;
using dengine::server::ClientService;

namespace {

// A client made of a socket, the codec and a frame reader: what DEngineClient will do, bare.
class RawClient {
public:
    explicit RawClient(quint16 port)
    {
        m_socket.connectToHost(QHostAddress::LocalHost, port);
        QObject::connect(&m_socket, &QTcpSocket::readyRead, [this] { read(); });
    }
    bool connected() { return m_socket.state() == QAbstractSocket::ConnectedState; }
    bool closed() const { return m_socket.state() == QAbstractSocket::UnconnectedState; }
    void send(const clientwire::Request &r)
    {
        std::string frame;
        clientwire::appendRequest(frame, r);
        sendRaw(frame);
    }
    void sendRaw(const std::string &bytes) { m_socket.write(bytes.data(), static_cast<qint64>(bytes.size())); }
    // Sends one request and waits for its answer.
    clientwire::Response call(clientwire::Request r)
    {
        r.id = ++m_nextId;
        send(r);
        [&] { QTRY_VERIFY_WITH_TIMEOUT(responses.count(r.id), Long); }();
        return responses.count(r.id) ? responses.at(r.id) : clientwire::Response{};
    }
    std::uint64_t nextId() { return ++m_nextId; }
    std::map<std::uint64_t, clientwire::Response> responses;
    std::vector<std::uint64_t> order; // ids in the order answered
    QString error;

private:
    void read()
    {
        const QByteArray in = m_socket.readAll();
        m_reader.feed(in.constData(), static_cast<std::size_t>(in.size()));
        std::string payload;
        while (m_reader.next(payload) == transport::FrameReader::Result::Frame) {
            clientwire::Response r;
            std::string why;
            if (!clientwire::decodeResponse(payload, r, why)) {
                error = QString::fromStdString(why);
                return;
            }
            order.push_back(r.id);
            responses[r.id] = std::move(r);
        }
    }
    QTcpSocket m_socket;
    transport::FrameReader m_reader{64u << 20};
    std::uint64_t m_nextId = 0;
};

clientwire::Request request(clientwire::Kind kind, std::string key = {}, std::string value = {})
{
    clientwire::Request r;
    r.kind = kind;
    r.key = std::move(key);
    r.value = std::move(value);
    return r;
}

std::uint32_t ok() { return static_cast<std::uint32_t>(Status::Ok); }

} // namespace

class TestClientService : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<Cluster> m_cluster;
    std::map<NodeId, std::unique_ptr<ClientService>> m_services;

    ClientService *serve(NodeId id, ClientService::Options o = {})
    {
        o.listenAddress = QStringLiteral("127.0.0.1:0");
        o.version = QStringLiteral("test");
        auto s = std::make_unique<ClientService>(m_cluster->node(id), o);
        QString error;
        if (!s->listen(&error))
            qWarning() << error;
        ClientService *raw = s.get();
        m_services[id] = std::move(s);
        return raw;
    }

private Q_SLOTS:
    void init()
    {
        m_cluster = std::make_unique<Cluster>(3);
        m_cluster->startAll();
        QTRY_VERIFY_WITH_TIMEOUT(m_cluster->allReady(), Long);
    }
    void cleanup()
    {
        m_services.clear();
        m_cluster.reset();
    }

    void everyCall_throughAnyMember()
    {
        const NodeId leader = m_cluster->agreedLeader();
        const NodeId follower = leader == 1 ? 2 : 1;
        RawClient a(serve(leader)->port()), b(serve(follower)->port());
        QTRY_VERIFY_WITH_TIMEOUT(a.connected() && b.connected(), Long);

        clientwire::Response r = b.call(request(clientwire::Kind::Put, "k1", "v1")); // forwarded by the follower
        QCOMPARE(r.status, ok());
        QVERIFY(r.revision > 0);
        QCOMPARE(r.leader, leader);
        const std::uint64_t written = r.revision;
        r = a.call(request(clientwire::Kind::Get, "k1"));
        QCOMPARE(r.status, ok());
        QCOMPARE(r.value, std::string("v1"));
        // The key's history: created and last changed by that put, its first version.
        QCOMPARE(r.createRevision, written);
        QCOMPARE(r.modRevision, written);
        QCOMPARE(r.version, std::uint64_t(1));
        r = b.call(request(clientwire::Kind::Get, "missing"));
        QCOMPARE(r.status, static_cast<std::uint32_t>(Status::NotFound));

        clientwire::Request batch = request(clientwire::Kind::Batch);
        batch.operations = {{false, "p/a", "1"}, {false, "p/b", "2"}, {false, "p/c", "3"}, {true, "k1", {}}};
        QCOMPARE(a.call(batch).status, ok());
        r = b.call(request(clientwire::Kind::Scan, "p/"));
        QCOMPARE(r.status, ok());
        QCOMPARE(r.items.size(), std::size_t(3));
        QCOMPARE(r.items[1].key, std::string("p/b"));
        QCOMPARE(r.items[1].value, std::string("2"));
        QVERIFY(r.items[1].modRevision > 0 && r.items[1].createRevision == r.items[1].modRevision && r.items[1].version == 1);
        clientwire::Request range = request(clientwire::Kind::Range, "p/b");
        range.end = "p/c";
        r = a.call(range);
        QCOMPARE(r.items.size(), std::size_t(1));
        clientwire::Request limited = request(clientwire::Kind::Scan, "p/");
        limited.limit = 2;
        r = a.call(limited);
        QCOMPARE(r.items.size(), std::size_t(2));
        QCOMPARE(r.nextKey, std::string("p/c"));
        QCOMPARE(a.call(request(clientwire::Kind::Get, "k1")).status, static_cast<std::uint32_t>(Status::NotFound));
        QCOMPARE(b.call(request(clientwire::Kind::Delete, "p/a")).status, ok());
        clientwire::Request local = request(clientwire::Kind::Get, "p/b");
        local.consistency = static_cast<std::uint32_t>(DEngine::Consistency::Local);
        QCOMPARE(b.call(local).value, std::string("2"));

        // Bad arguments come back as the engine's statuses, the connection stays.
        QCOMPARE(a.call(request(clientwire::Kind::Put, "", "v")).status, static_cast<std::uint32_t>(Status::InvalidArgument));
        QCOMPARE(a.call(request(clientwire::Kind::Get, "p/b")).status, ok());

        r = b.call(request(clientwire::Kind::Status));
        QCOMPARE(r.status, ok());
        QVERIFY(r.hasNode);
        QCOMPARE(r.node.nodeId, follower);
        QCOMPARE(r.node.leader, leader);
        QVERIFY(r.node.ready);
        QCOMPARE(r.node.role, static_cast<std::uint32_t>(DEngine::Role::Follower));
        QCOMPARE(r.node.members.size(), std::size_t(3));
        QCOMPARE(r.node.version, std::string("test"));
        QVERIFY(r.node.applied >= r.revision || r.node.applied > 0);
    }

    void pipelinedRequests_areAllAnsweredById()
    {
        const NodeId leader = m_cluster->agreedLeader();
        RawClient c(serve(leader)->port());
        QTRY_VERIFY_WITH_TIMEOUT(c.connected(), Long);
        std::string burst;
        std::vector<std::uint64_t> ids;
        for (int i = 0; i < 500; ++i) {
            clientwire::Request r = request(i % 2 ? clientwire::Kind::Get : clientwire::Kind::Put, "key" + std::to_string(i / 2), "v");
            r.id = c.nextId();
            ids.push_back(r.id);
            clientwire::appendRequest(burst, r);
        }
        c.sendRaw(burst); // one write: 500 requests in flight at once
        QTRY_COMPARE_WITH_TIMEOUT(c.responses.size(), std::size_t(500), Long);
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const clientwire::Response &r = c.responses.at(ids[i]);
            if (i % 2 == 0)
                QCOMPARE(r.status, ok());
            else
                QVERIFY(r.status == ok() || r.status == static_cast<std::uint32_t>(Status::NotFound)); // a get may overtake its put
        }
        QVERIFY(c.error.isEmpty());
    }

    void badInput_isAnsweredOrClosed_andOthersGoOn()
    {
        const NodeId leader = m_cluster->agreedLeader();
        ClientService::Options small;
        small.maxFrameBytes = 4096;
        small.maxInFlight = 2;
        ClientService *service = serve(leader, small);
        RawClient good(service->port()), versioned(service->port()), garbage(service->port()), huge(service->port());
        QTRY_VERIFY_WITH_TIMEOUT(good.connected() && versioned.connected() && garbage.connected() && huge.connected(), Long);

        clientwire::Request future = request(clientwire::Kind::Get, "k");
        future.version = 99;
        clientwire::Response r = versioned.call(future);
        QCOMPARE(r.status, static_cast<std::uint32_t>(Status::InvalidArgument));
        QVERIFY2(QString::fromStdString(r.message).contains("speaks 1"), r.message.c_str());
        QVERIFY(!versioned.closed());

        garbage.sendRaw(std::string("\x05\0\0\0garbage", 11));
        QTRY_VERIFY_WITH_TIMEOUT(garbage.closed(), Long);
        std::string header(4, '\0');
        const std::uint32_t n = 1u << 20;
        std::memcpy(header.data(), &n, 4);
        huge.sendRaw(header);
        QTRY_VERIFY_WITH_TIMEOUT(huge.closed(), Long);
        QCOMPARE(service->stats().connectionsClosedForErrors, quint64(2));

        // maxInFlight 2: a third request at once is answered Busy; a reused id is refused.
        std::string three;
        std::vector<std::uint64_t> ids;
        for (int i = 0; i < 3; ++i) {
            clientwire::Request p = request(clientwire::Kind::Put, "b" + std::to_string(i), "v");
            p.id = good.nextId();
            ids.push_back(p.id);
            clientwire::appendRequest(three, p);
        }
        good.sendRaw(three);
        QTRY_COMPARE_WITH_TIMEOUT(good.responses.size(), std::size_t(3), Long);
        QCOMPARE(good.responses.at(ids[2]).status, static_cast<std::uint32_t>(Status::Busy));
        QCOMPARE(good.responses.at(ids[0]).status, ok());
        QCOMPARE(good.call(request(clientwire::Kind::Get, "b0")).value, std::string("v"));
    }

    void close_endsEveryConnection_withCallsInFlight()
    {
        const NodeId leader = m_cluster->agreedLeader();
        ClientService *service = serve(leader);
        RawClient a(service->port()), b(service->port());
        QTRY_VERIFY_WITH_TIMEOUT(a.connected() && b.connected(), Long);
        std::string burst;
        for (int i = 0; i < 50; ++i) {
            clientwire::Request r = request(clientwire::Kind::Put, "c" + std::to_string(i), "v");
            r.id = a.nextId();
            clientwire::appendRequest(burst, r);
        }
        a.sendRaw(burst);
        service->close(); // calls in flight finish later, unanswered
        QTRY_VERIFY_WITH_TIMEOUT(a.closed() && b.closed(), Long);
        QCOMPARE(service->port(), quint16(0));
        // The engine is unharmed: a new service on it answers.
        RawClient c(serve(leader)->port());
        QTRY_VERIFY_WITH_TIMEOUT(c.connected(), Long);
        QCOMPARE(c.call(request(clientwire::Kind::Put, "after", "close")).status, ok());
    }

    void clientDeadline_answersTimeout_whenNoQuorum()
    {
        const NodeId leader = m_cluster->agreedLeader();
        RawClient c(serve(leader)->port());
        QTRY_VERIFY_WITH_TIMEOUT(c.connected(), Long);
        // The two followers go: a write cannot commit, the client's 300 ms come first.
        for (NodeId id = 1; id <= 3; ++id)
            if (id != leader)
                m_cluster->engines.erase(id);
        clientwire::Request w = request(clientwire::Kind::Put, "x", "y");
        w.deadlineMs = 300;
        const clientwire::Response r = c.call(w);
        QCOMPARE(r.status, static_cast<std::uint32_t>(Status::Timeout));
        QVERIFY(!r.message.empty());
    }
};

QTEST_GUILESS_MAIN(TestClientService)
#include "tst_clientservice.moc"
