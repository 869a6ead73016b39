// SPDX-License-Identifier: Apache-2.0
// The HTTP/JSON gateway (server/httpgateway.h) on a three-node cluster in this process, spoken to
// as curl or wrk would: etcd's shapes for put, range and deleterange through a follower and the
// leader, pipelined requests answered in order, /health and /metrics, and bad input (bad base64,
// not JSON, a huge body, a malformed request, a slow client, wrong paths and methods) answered with
// etcd's error shape or closed, harmlessly.
#include "../dengine/enginetestkit.h"

#include "server/httpgateway.h"
#include "server/servermetrics.h"

#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtNetwork/QTcpSocket>

using namespace dengine;
using namespace dengine::test;
using dengine::server::HttpGateway;
using dengine::server::ServerMetrics;

namespace {

struct Reply {
    int status = 0;
    QByteArray headers;
    QByteArray body;
    QJsonObject json() const { return QJsonDocument::fromJson(body).object(); }
};

// An HTTP/1.1 client on one keep-alive connection that sends raw bytes and reads whole answers.
class HttpClient {
public:
    explicit HttpClient(quint16 port)
    {
        m_socket.connectToHost(QHostAddress::LocalHost, port);
    }
    bool connected() { return m_socket.state() == QAbstractSocket::ConnectedState; }
    bool closed() const { return m_socket.state() == QAbstractSocket::UnconnectedState; }
    void sendRaw(const QByteArray &bytes) { m_socket.write(bytes); }
    void post(const QByteArray &path, const QByteArray &body)
    {
        sendRaw("POST " + path + " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: " + QByteArray::number(body.size())
                + "\r\n\r\n" + body);
    }
    // The next whole answer, waiting for it.
    Reply next()
    {
        Reply r;
        // QTRY evaluates its condition once more after it holds: taking must happen once.
        [&] { QTRY_VERIFY_WITH_TIMEOUT(r.status != 0 || take(r), Long); }();
        if (r.status == 0)
            qWarning() << "no answer; received so far:" << m_in;
        return r;
    }
    Reply call(const QByteArray &path, const QJsonObject &body)
    {
        post(path, QJsonDocument(body).toJson(QJsonDocument::Compact));
        return next();
    }

private:
    bool take(Reply &r)
    {
        m_in += m_socket.readAll();
        const qsizetype end = m_in.indexOf("\r\n\r\n");
        if (end < 0)
            return false;
        const QByteArray head = m_in.left(end);
        const qsizetype at = head.toLower().indexOf("content-length: ");
        const qsizetype length = at < 0 ? 0 : head.mid(at + 16, head.indexOf("\r\n", at) - at - 16).toLongLong();
        if (m_in.size() < end + 4 + length)
            return false;
        r.status = head.mid(9, 3).toInt();
        r.headers = head;
        r.body = m_in.mid(end + 4, length);
        m_in.remove(0, end + 4 + length);
        return true;
    }
    QTcpSocket m_socket;
    QByteArray m_in;
};

QString b64(const QByteArray &s) { return QString::fromLatin1(s.toBase64()); }

} // namespace

class TestHttpGateway : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<Cluster> m_cluster;
    ServerMetrics m_metrics;
    std::map<NodeId, std::unique_ptr<HttpGateway>> m_gateways;

    quint16 serve(NodeId id, HttpGateway::Options o = {})
    {
        o.listenAddress = QStringLiteral("127.0.0.1:0");
        auto g = std::make_unique<HttpGateway>(m_cluster->node(id), &m_metrics, o);
        QString error;
        if (!g->listen(&error))
            qWarning() << error;
        const quint16 port = g->port();
        m_gateways[id] = std::move(g);
        return port;
    }

private Q_SLOTS:
    void initTestCase()
    {
        m_cluster = std::make_unique<Cluster>(3);
        m_cluster->startAll();
        QTRY_VERIFY_WITH_TIMEOUT(m_cluster->allReady() && m_cluster->agreedLeader() != 0, Long);
    }
    void cleanupTestCase()
    {
        m_gateways.clear();
        m_cluster.reset();
    }

    // Refused and dropped clients are logged through a budget: a flood is counted, not written line
    // by line, and the next line let through says how many were held back.
    void logBudget_holdsBackAFlood_andSaysHowMany()
    {
        using dengine::server::LogBudget;
        LogBudget budget(3, 10000);
        int held = -1;
        for (int i = 0; i < 3; ++i) {
            QVERIFY(budget.takeAt(&held, 100 + i));
            QCOMPARE(held, 0);
        }
        for (int i = 0; i < 500; ++i)
            QVERIFY(!budget.takeAt(&held, 200 + i));
        QVERIFY(!budget.takeAt(&held, 10099)); // the window is not over yet
        QVERIFY(budget.takeAt(&held, 10100));
        QCOMPARE(held, 501);
        QVERIFY(dengine::server::heldBackNote(held).contains(QStringLiteral("501 more")));
        QVERIFY(budget.takeAt(&held, 10101));
        QCOMPARE(held, 0);
        QCOMPARE(dengine::server::heldBackNote(0), QString());
    }

    void etcdShapes_putRangeDeleterange_throughAFollower()
    {
        const NodeId leader = m_cluster->agreedLeader();
        HttpClient c(serve(leader == 1 ? 2 : 1));
        QTRY_VERIFY_WITH_TIMEOUT(c.connected(), Long);
        Reply r = c.call("/v3/kv/put", {{QStringLiteral("key"), b64("fruit/apple")}, {QStringLiteral("value"), b64("red")}});
        QCOMPARE(r.status, 200);
        const QJsonObject header = r.json().value(QStringLiteral("header")).toObject();
        const quint64 appleWritten = header.value(QStringLiteral("revision")).toString().toULongLong();
        QVERIFY(appleWritten > 0);
        QCOMPARE(header.value(QStringLiteral("cluster_id")).toString(), QStringLiteral("1"));
        QVERIFY(header.value(QStringLiteral("raft_term")).toString().toULongLong() > 0);
        QVERIFY(r.headers.contains("Content-Type: application/json"));
        QCOMPARE(c.call("/v3/kv/put", {{QStringLiteral("key"), b64("fruit/banana")}, {QStringLiteral("value"), b64("yellow")}}).status, 200);
        QCOMPARE(c.call("/v3/kv/put", {{QStringLiteral("key"), b64("fruit/cherry")}, {QStringLiteral("value"), b64("dark")}}).status, 200);

        // One key, linearizable and serializable.
        r = c.call("/v3/kv/range", {{QStringLiteral("key"), b64("fruit/apple")}});
        QCOMPARE(r.status, 200);
        QJsonArray kvs = r.json().value(QStringLiteral("kvs")).toArray();
        QCOMPARE(kvs.size(), 1);
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("value")).toString(), b64("red"));
        QCOMPARE(r.json().value(QStringLiteral("count")).toString(), QStringLiteral("1"));
        // etcd's key history, int64s as strings: created and changed by the put, version 1.
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("create_revision")).toString(), QString::number(appleWritten));
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("mod_revision")).toString(), QString::number(appleWritten));
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("version")).toString(), QStringLiteral("1"));
        r = c.call("/v3/kv/put", {{QStringLiteral("key"), b64("fruit/apple")}, {QStringLiteral("value"), b64("green")}});
        QCOMPARE(r.status, 200);
        const quint64 appleChanged = r.json().value(QStringLiteral("header")).toObject().value(QStringLiteral("revision")).toString().toULongLong();
        r = c.call("/v3/kv/range", {{QStringLiteral("key"), b64("fruit/apple")}, {QStringLiteral("serializable"), true}});
        QCOMPARE(r.status, 200);
        kvs = r.json().value(QStringLiteral("kvs")).toArray();
        QCOMPARE(kvs.size(), 1);
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("value")).toString(), b64("green"));
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("create_revision")).toString(), QString::number(appleWritten));
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("mod_revision")).toString(), QString::number(appleChanged));
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("version")).toString(), QStringLiteral("2"));

        // A txn in etcd's shape: compare and swap on the mod revision, then again (now stale).
        const QJsonObject cas{
            {QStringLiteral("compare"), QJsonArray{QJsonObject{{QStringLiteral("key"), b64("fruit/apple")},
                                                               {QStringLiteral("target"), QStringLiteral("MOD")},
                                                               {QStringLiteral("result"), QStringLiteral("EQUAL")},
                                                               {QStringLiteral("mod_revision"), QString::number(appleChanged)}}}},
            {QStringLiteral("success"), QJsonArray{QJsonObject{{QStringLiteral("request_put"),
                                                                QJsonObject{{QStringLiteral("key"), b64("fruit/apple")}, {QStringLiteral("value"), b64("gold")}}}}}},
            {QStringLiteral("failure"),
             QJsonArray{QJsonObject{{QStringLiteral("request_put"), QJsonObject{{QStringLiteral("key"), b64("fruit/lost")}, {QStringLiteral("value"), b64("1")}}}}}}};
        r = c.call("/v3/kv/txn", cas);
        QCOMPARE(r.status, 200);
        QVERIFY(r.json().value(QStringLiteral("succeeded")).toBool());
        QVERIFY(r.json().value(QStringLiteral("responses")).toArray().at(0).toObject().contains(QStringLiteral("response_put")));
        r = c.call("/v3/kv/txn", cas);
        QCOMPARE(r.status, 200);
        QVERIFY(!r.json().contains(QStringLiteral("succeeded"))); // false: left out, as etcd does
        r = c.call("/v3/kv/range", {{QStringLiteral("key"), b64("fruit/apple")}});
        QCOMPARE(r.json().value(QStringLiteral("kvs")).toArray().at(0).toObject().value(QStringLiteral("value")).toString(), b64("gold"));
        r = c.call("/v3/kv/range", {{QStringLiteral("key"), b64("fruit/lost")}});
        QCOMPARE(r.json().value(QStringLiteral("kvs")).toArray().size(), 1);
        QCOMPARE(c.call("/v3/kv/deleterange", {{QStringLiteral("key"), b64("fruit/lost")}}).status, 200);
        // Bad txns: an unknown target, a range in a compare, a request_range in a branch.
        QCOMPARE(c.call("/v3/kv/txn", {{QStringLiteral("compare"), QJsonArray{QJsonObject{{QStringLiteral("key"), b64("k")}, {QStringLiteral("target"), QStringLiteral("SIZE")}}}}})
                     .status,
                 400);
        QCOMPARE(c.call("/v3/kv/txn", {{QStringLiteral("compare"), QJsonArray{QJsonObject{{QStringLiteral("key"), b64("k")}, {QStringLiteral("range_end"), b64("l")}}}}})
                     .status,
                 400);
        QCOMPARE(c.call("/v3/kv/txn", {{QStringLiteral("success"), QJsonArray{QJsonObject{{QStringLiteral("request_range"), QJsonObject{{QStringLiteral("key"), b64("k")}}}}}}})
                     .status,
                 400);
        // A missing key: a header and no kvs, as etcd answers.
        r = c.call("/v3/kv/range", {{QStringLiteral("key"), b64("fruit/none")}});
        QCOMPARE(r.status, 200);
        QVERIFY(!r.json().contains(QStringLiteral("kvs")));
        // A prefix (range_end = the prefix's end), with a limit: "more" says more follow.
        r = c.call("/v3/kv/range", {{QStringLiteral("key"), b64("fruit/")}, {QStringLiteral("range_end"), b64("fruit0")}, {QStringLiteral("limit"), 2}});
        QCOMPARE(r.status, 200);
        QCOMPARE(r.json().value(QStringLiteral("kvs")).toArray().size(), 2);
        QVERIFY(r.json().value(QStringLiteral("more")).toBool());
        // range_end "\0": every key from `key` on; limit as a string, as protobuf's JSON allows.
        r = c.call("/v3/kv/range", {{QStringLiteral("key"), b64("fruit/b")}, {QStringLiteral("range_end"), QStringLiteral("AA==")},
                                    {QStringLiteral("limit"), QStringLiteral("10")}, {QStringLiteral("keys_only"), true}});
        kvs = r.json().value(QStringLiteral("kvs")).toArray();
        QVERIFY(kvs.size() >= 2);
        QCOMPARE(kvs[0].toObject().value(QStringLiteral("key")).toString(), b64("fruit/banana"));
        QVERIFY(!kvs[0].toObject().contains(QStringLiteral("value")));

        // deleterange: one key, then the rest of the prefix.
        r = c.call("/v3/kv/deleterange", {{QStringLiteral("key"), b64("fruit/apple")}});
        QCOMPARE(r.status, 200);
        QCOMPARE(r.json().value(QStringLiteral("deleted")).toString(), QStringLiteral("1"));
        r = c.call("/v3/kv/deleterange", {{QStringLiteral("key"), b64("fruit/")}, {QStringLiteral("range_end"), b64("fruit0")}});
        QCOMPARE(r.json().value(QStringLiteral("deleted")).toString(), QStringLiteral("2"));
        r = c.call("/v3/kv/range", {{QStringLiteral("key"), b64("fruit/")}, {QStringLiteral("range_end"), b64("fruit0")}});
        QVERIFY(!r.json().contains(QStringLiteral("kvs")));
        QCOMPARE(DEngine::waitForResult(m_cluster->node(leader)->get("fruit/banana")).status, Status::NotFound);
    }

    void pipelinedRequests_answeredInOrder()
    {
        HttpClient c(serve(m_cluster->agreedLeader()));
        QTRY_VERIFY_WITH_TIMEOUT(c.connected(), Long);
        for (int i = 0; i < 25; ++i)
            QCOMPARE(c.call("/v3/kv/put", {{QStringLiteral("key"), b64("pipe/" + QByteArray::number(i))}, {QStringLiteral("value"), b64("v" + QByteArray::number(i))}})
                         .status,
                     200);
        // Writes and reads in one burst: a read finishes before the write sent ahead of it, yet
        // each answer comes in its request's place (a read's value names its key).
        QByteArray burst;
        for (int i = 0; i < 50; ++i) {
            const bool write = i % 2 == 0;
            const QByteArray body = QJsonDocument(write ? QJsonObject{{QStringLiteral("key"), b64("burst/" + QByteArray::number(i))},
                                                                      {QStringLiteral("value"), b64("w")}}
                                                        : QJsonObject{{QStringLiteral("key"), b64("pipe/" + QByteArray::number(i / 2))},
                                                                      {QStringLiteral("serializable"), i % 4 == 1}})
                                        .toJson(QJsonDocument::Compact);
            burst += (write ? QByteArray("POST /v3/kv/put") : QByteArray("POST /v3/kv/range")) + " HTTP/1.1\r\nContent-Length: "
                + QByteArray::number(body.size()) + "\r\n\r\n" + body;
        }
        c.sendRaw(burst);
        for (int i = 0; i < 50; ++i) {
            const Reply r = c.next();
            QCOMPARE(r.status, 200);
            const QJsonArray kvs = r.json().value(QStringLiteral("kvs")).toArray();
            if (i % 2 == 0) {
                QVERIFY(kvs.isEmpty()); // a put's answer
            } else {
                QCOMPARE(kvs.size(), 1);
                QCOMPARE(kvs[0].toObject().value(QStringLiteral("value")).toString(), b64("v" + QByteArray::number(i / 2)));
            }
        }
    }

    void healthAndMetrics()
    {
        HttpClient c(serve(m_cluster->agreedLeader()));
        QTRY_VERIFY_WITH_TIMEOUT(c.connected(), Long);
        c.sendRaw("GET /health HTTP/1.1\r\n\r\n");
        Reply r = c.next();
        QCOMPARE(r.status, 200);
        QCOMPARE(r.json().value(QStringLiteral("health")).toString(), QStringLiteral("true"));
        c.post("/v3/kv/put", R"({"key":"bWV0cmljcw==","value":"eA=="})");
        QCOMPARE(c.next().status, 200);
        c.sendRaw("GET /metrics HTTP/1.1\r\n\r\n");
        r = c.next();
        QCOMPARE(r.status, 200);
        QVERIFY(r.headers.contains("text/plain; version=0.0.4"));
        for (const char *name : {"dengine_raft_term ", "dengine_raft_leader ", "dengine_raft_commit_index ", "dengine_raft_applied_index ",
                                 "dengine_proposals_committed_total ", "dengine_proposals_failed_total ",
                                 "dengine_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} ", "dengine_wal_fsync_duration_seconds_count ",
                                 "dengine_request_duration_seconds_bucket{call=\"put\",door=\"http\",le=\"+Inf\"} ",
                                 "dengine_snapshots_taken_total ", "dengine_peer_frames_sent_total ", "dengine_client_connections{door=\"http\"} "})
            QVERIFY2(r.body.contains(name), name);
        // The values say what happened: this node leads, it committed writes, it synced its log.
        const auto value = [&](const QByteArray &name) {
            const qsizetype at = r.body.indexOf("\n" + name + ' ');
            return at < 0 ? -1.0 : r.body.mid(at + name.size() + 2, r.body.indexOf('\n', at + 1) - at - name.size() - 2).toDouble();
        };
        QCOMPARE(value("dengine_raft_is_leader"), 1.0);
        QVERIFY(value("dengine_proposals_committed_total") >= 1);
        QTRY_VERIFY_WITH_TIMEOUT(m_cluster->node(m_cluster->agreedLeader())->metrics().fsyncCount > 0, Long);
        // A stopped node is not healthy: 503, with the reason.
        const NodeId other = m_cluster->agreedLeader() == 3 ? 2 : 3;
        HttpClient d(serve(other));
        QTRY_VERIFY_WITH_TIMEOUT(d.connected(), Long);
        m_cluster->node(other)->stop();
        QVERIFY(m_cluster->node(other)->waitForStopped(Long));
        d.sendRaw("GET /health HTTP/1.1\r\n\r\n");
        r = d.next();
        QCOMPARE(r.status, 503);
        QCOMPARE(r.json().value(QStringLiteral("health")).toString(), QStringLiteral("false"));
        QVERIFY(!r.json().value(QStringLiteral("reason")).toString().isEmpty());
        QVERIFY(m_cluster->node(other)->start());
        QTRY_VERIFY_WITH_TIMEOUT(m_cluster->node(other)->isReady(), Long);
    }

    void badInput_etcdErrorShape_orClosed_othersUnharmed()
    {
        HttpGateway::Options o;
        o.maxBodyBytes = 1024;
        o.requestTimeoutMs = 300;
        const quint16 port = serve(m_cluster->agreedLeader(), o);
        HttpClient bystander(port);
        QTRY_VERIFY_WITH_TIMEOUT(bystander.connected(), Long);

        HttpClient c(port);
        QTRY_VERIFY_WITH_TIMEOUT(c.connected(), Long);
        Reply r = c.call("/v3/kv/put", {{QStringLiteral("key"), QStringLiteral("not base64!")}, {QStringLiteral("value"), b64("v")}});
        QCOMPARE(r.status, 400);
        QCOMPARE(r.json().value(QStringLiteral("code")).toInt(), 3);
        QVERIFY(r.json().value(QStringLiteral("message")).toString().contains(QStringLiteral("base64")));
        c.post("/v3/kv/put", "{not json");
        QCOMPARE(c.next().status, 400);
        QCOMPARE(c.call("/v3/kv/put", {{QStringLiteral("value"), b64("v")}}).status, 400); // no key
        QCOMPARE(c.call("/v3/kv/nothing", {}).status, 404);
        c.sendRaw("GET /v3/kv/put HTTP/1.1\r\n\r\n");
        QCOMPARE(c.next().status, 405);
        QVERIFY(c.connected()); // all of these keep the connection

        // A body over the limit: 413 on its Content-Length, before it is sent, and closed.
        HttpClient huge(port);
        QTRY_VERIFY_WITH_TIMEOUT(huge.connected(), Long);
        huge.sendRaw("POST /v3/kv/put HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n");
        QCOMPARE(huge.next().status, 413);
        QTRY_VERIFY_WITH_TIMEOUT(huge.closed(), Long);
        // A malformed request: 400 and closed.
        HttpClient garbage(port);
        QTRY_VERIFY_WITH_TIMEOUT(garbage.connected(), Long);
        garbage.sendRaw("\x16\x03\x01 not http at all\r\n\r\n");
        QCOMPARE(garbage.next().status, 400);
        QTRY_VERIFY_WITH_TIMEOUT(garbage.closed(), Long);
        // A slow client (a request begun and never finished) is closed after requestTimeoutMs.
        HttpClient slow(port);
        QTRY_VERIFY_WITH_TIMEOUT(slow.connected(), Long);
        slow.sendRaw("POST /v3/kv/put HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"k");
        QTRY_VERIFY_WITH_TIMEOUT(slow.closed(), Long);

        // The bystander was served throughout.
        QCOMPARE(bystander.call("/v3/kv/range", {{QStringLiteral("key"), b64("anything")}}).status, 200);
    }
};

QTEST_GUILESS_MAIN(TestHttpGateway)
#include "tst_httpgateway.moc"
