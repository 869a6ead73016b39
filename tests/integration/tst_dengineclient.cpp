// SPDX-License-Identifier: Apache-2.0
// DEngineClient against three dengined processes, and the shared surface (DEngineInterface) proved
// by one behavioural body run on two fixtures: an embedded DEngine cluster in this process, and a
// DEngineClient of a standalone cluster. Then what only a client meets: calls through any member,
// the leader killed (SIGKILL) or paused (SIGSTOP) with calls in flight (every call finishes with a
// status, none hangs, and the client follows the new leader), an unreachable cluster. Every wait
// is a QTRY_* or a bounded wait on a signal; nothing sleeps.
#include "../auto/dengine/enginetestkit.h"
#include "clientconfig.h"
#include "denginedcluster.h"

#include <dengine/dengine.h>
#include <dengine/dengineclient.h>

#include "certs/certs.h"

#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtTest/QtTest>

using namespace dengine::test;

namespace {

// The statuses a call may end with while its member dies: never a hang, never another.
bool failoverStatus(Status s) { return s == Status::Ok || s == Status::Timeout || s == Status::NoQuorum; }

// The terms a recorder saw, in order.
QList<quint64> terms(const Recorder &r)
{
    QList<quint64> out;
    for (const QString &e : r.events)
        if (e.startsWith(QLatin1String("term ")))
            out << e.mid(5).toULongLong();
    return out;
}

} // namespace

class TestDEngineClient : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<DEnginedCluster> m_cluster;

    NodeId statusLeader()
    {
        DEngineClient probe(insecureClientConfig(m_cluster->clientAddresses()));
        probe.start();
        return probe.waitForReady(Long) ? probe.currentLeader() : 0;
    }

    // The behaviour both implementations share. `subject` is started, and `rec` has recorded it
    // from before its start; `node(id)` is a member's leader view as an embedded engine or a
    // client of that member sees it (0 when it is down), to check agreement.
    void surfaceBody(DEngineInterface *subject, Recorder &rec)
    {
        // ready: once, after the leader is known; the first firstCommit right after it.
        QVERIFY(subject->waitForReady(Long));
        QVERIFY(subject->isReady());
        QCOMPARE(subject->state(), DEngineInterface::State::Running);
        QVERIFY(subject->currentLeader() != 0);
        QVERIFY(subject->currentTerm() > 0);
        QTRY_VERIFY_WITH_TIMEOUT(!rec.firstCommits.isEmpty(), Long);
        QCOMPARE(rec.count(QStringLiteral("ready")), 1);
        QVERIFY2(rec.indexOf(QStringLiteral("ready")) < rec.indexOf(QStringLiteral("first %1").arg(rec.firstCommits.first())),
                 qPrintable(rec.events.join(QLatin1Char(','))));
        QCOMPARE(rec.leaders.last(), subject->currentLeader());
        QCOMPARE(subject->voters(), (QList<NodeId>{1, 2, 3}));
        QCOMPARE(subject->members(), (QList<NodeId>{1, 2, 3}));
        QVERIFY(subject->learners().isEmpty());
        QVERIFY(!subject->memberAddress(1).isEmpty());
        QTRY_VERIFY_WITH_TIMEOUT(subject->appliedIndex() >= rec.firstCommits.first(), Long);

        // Key-value calls and their statuses.
        DEngineResult r = await(subject->put("surface/a", "1"));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(r.revision > 0);
        const quint64 firstWrite = r.revision;
        r = await(subject->get("surface/a"));
        QVERIFY(r.ok());
        QCOMPARE(r.value, QByteArray("1"));
        QVERIFY(r.revision >= firstWrite);
        // The key's history: created and changed by that put, its first version; then a second.
        QCOMPARE(r.createRevision, firstWrite);
        QCOMPARE(r.modRevision, firstWrite);
        QCOMPARE(r.version, quint64(1));
        r = await(subject->put("surface/a", "1b"));
        QVERIFY2(r.ok(), qPrintable(r.message));
        const quint64 secondWrite = r.revision;
        r = await(subject->get("surface/a"));
        QCOMPARE(r.value, QByteArray("1b"));
        QCOMPARE(r.createRevision, firstWrite);
        QCOMPARE(r.modRevision, secondWrite);
        QCOMPARE(r.version, quint64(2));
        QCOMPARE(await(subject->get("surface/none")).status, Status::NotFound);
        // Compare and swap: on the revision last seen; again with the same, the failure branch.
        r = await(subject->txn({DEngineCompare::modRevisionIs("surface/a", secondWrite)}, {DEngineOperation::put("surface/a", "swapped")},
                               {DEngineOperation::put("surface/lost", "1")}));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(r.succeeded);
        const quint64 swapWrite = r.revision;
        r = await(subject->txn({DEngineCompare::modRevisionIs("surface/a", secondWrite)}, {DEngineOperation::put("surface/a", "again")},
                               {DEngineOperation::put("surface/lost", "1")}));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(!r.succeeded);
        r = await(subject->get("surface/a"));
        QCOMPARE(r.value, QByteArray("swapped"));
        QCOMPARE(r.modRevision, swapWrite);
        QCOMPARE(await(subject->get("surface/lost")).value, QByteArray("1"));
        // Create if absent, once.
        QVERIFY(await(subject->txn({DEngineCompare::absent("surface/once")}, {DEngineOperation::put("surface/once", "first")})).succeeded);
        QVERIFY(!await(subject->txn({DEngineCompare::absent("surface/once")}, {DEngineOperation::put("surface/once", "second")})).succeeded);
        QCOMPARE(await(subject->get("surface/once")).value, QByteArray("first"));
        QCOMPARE(await(subject->txn({DEngineCompare::absent(QByteArray())}, {})).status, Status::InvalidArgument);
        QVERIFY(await(subject->remove("surface/lost")).ok());
        QVERIFY(await(subject->remove("surface/once")).ok());
        r = await(subject->batch({DEngineOperation::put("surface/b", "2"), DEngineOperation::put("surface/c", "3"),
                                  DEngineOperation::remove("surface/a")}));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QVERIFY(r.revision > secondWrite);
        const quint64 batchWrite = r.revision;
        QCOMPARE(await(subject->get("surface/a")).status, Status::NotFound);
        r = await(subject->scan("surface/", 1));
        QVERIFY(r.ok());
        QCOMPARE(r.items.size(), 1);
        QCOMPARE(r.items.first().key, QByteArray("surface/b"));
        QCOMPARE(r.nextKey, QByteArray("surface/c"));
        r = await(subject->range(r.nextKey, DEngineInterface::prefixEnd("surface/")));
        QCOMPARE(r.items, (QList<DEngineKeyValue>{{"surface/c", "3", batchWrite, batchWrite, 1}}));
        QVERIFY(await(subject->remove("surface/b")).ok());
        r = await(subject->get("surface/c", DEngineInterface::Consistency::Local));
        QVERIFY(r.ok() || r.status == Status::NotFound); // local: possibly behind, never wrong
        QCOMPARE(await(subject->put(QByteArray(), "v")).status, Status::InvalidArgument);
        QCOMPARE(await(subject->get(QByteArray())).status, Status::InvalidArgument);
        QCOMPARE(await(subject->range("b", "a")).status, Status::InvalidArgument);
        QCOMPARE(await(subject->promote(9)).status, Status::Refused); // not a member
        QCOMPARE(await(subject->addLearner(4, QStringLiteral("no port"))).status, Status::InvalidArgument);

        // A leadership change, asked through the surface of the leader (an engine that leads; a client
        // that moved to the leader): the subject follows it, in order.
        QTRY_COMPARE_WITH_TIMEOUT(subject->role(), DEngineInterface::Role::Leader, Long);
        const NodeId old = subject->currentLeader();
        const quint64 oldTerm = subject->currentTerm();
        NodeId target = 0;
        for (NodeId id : subject->voters())
            if (id != old && target == 0)
                target = id;
        r = await(subject->transferLeadership(target));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QTRY_COMPARE_WITH_TIMEOUT(subject->currentLeader(), target, Long);
        QVERIFY(subject->currentTerm() > oldTerm);
        QCOMPARE(rec.leaders.last(), target);
        QTRY_VERIFY_WITH_TIMEOUT(rec.firstCommits.size() >= 2, Long);
        const QList<quint64> seen = terms(rec);
        for (int i = 1; i < seen.size(); ++i)
            QVERIFY2(seen[i] > seen[i - 1], qPrintable(rec.events.join(QLatin1Char(','))));
        QCOMPARE(seen.last(), subject->currentTerm());
        QVERIFY(rec.gettersMatched);
        QVERIFY(rec.onOwnerThread);
        QVERIFY2(await(subject->put("surface/after", "transfer")).ok(), "a write after the change");
        QCOMPARE(await(subject->get("surface/after")).value, QByteArray("transfer"));
        QCOMPARE(rec.count(QStringLiteral("ready")), 1); // once per start, whatever happens after

        // stop(): stopping, then stopped; calls after it fail at once with Stopping.
        subject->stop();
        QCOMPARE(subject->state(), DEngineInterface::State::Stopping);
        QVERIFY(!subject->isReady());
        QCOMPARE(subject->put("k", "v").result().status, Status::Stopping);
        QVERIFY(subject->waitForStopped(Long));
        QCOMPARE(rec.count(QStringLiteral("stopping")), 1);
        QCOMPARE(rec.count(QStringLiteral("stopped")), 1);
        QVERIFY(rec.indexOf(QStringLiteral("stopping")) < rec.indexOf(QStringLiteral("stopped")));
        QCOMPARE(subject->currentLeader(), NodeId(0));
        QCOMPARE(subject->role(), DEngineInterface::Role::Stopped);
    }

private Q_SLOTS:
    void initTestCase()
    {
        m_cluster = std::make_unique<DEnginedCluster>(3);
        QVERIFY(m_cluster->isValid());
        QVERIFY(m_cluster->startAll());
        QTRY_VERIFY_WITH_TIMEOUT(statusLeader() != 0, Long);
    }
    void cleanupTestCase() { m_cluster.reset(); }

    // One behavioural test, two fixtures: what code written against DEngineInterface may rely on.
    void sharedSurface_data()
    {
        QTest::addColumn<bool>("standalone");
        QTest::newRow("embedded DEngine") << false;
        QTest::newRow("DEngineClient of dengined") << true;
    }
    void sharedSurface()
    {
        QFETCH(bool, standalone);
        if (standalone) {
            Recorder rec;
            DEngineClient client(insecureClientConfig(m_cluster->clientAddresses()));
            rec.attach(&client);
            QVERIFY(client.start());
            surfaceBody(&client, rec);
            return;
        }
        // Embedded: the subject is the leader (transferLeadership is the leader's to do).
        Cluster cluster(3);
        cluster.startAll();
        QTRY_VERIFY_WITH_TIMEOUT(cluster.allReady() && cluster.agreedLeader() != 0, Long);
        const NodeId leader = cluster.agreedLeader();
        surfaceBody(cluster.node(leader), *cluster.recorders.at(leader));
    }

    void callsThroughAnyMember_eachMemberOnItsOwn()
    {
        for (NodeId id = 1; id <= 3; ++id) {
            DEngineClientConfig c = insecureClientConfig({m_cluster->clientAddress(id)});
            c.followLeader = false; // stay with this member: it forwards
            DEngineClient client(c);
            QSignalSpy endpoint(&client, &DEngineClient::connectedEndpointChanged);
            QVERIFY(client.start());
            QVERIFY(client.waitForReady(Long));
            QCOMPARE(client.nodeId(), id);
            QCOMPARE(client.connectedEndpoint(), m_cluster->clientAddress(id));
            QVERIFY(!endpoint.isEmpty());
            const QByteArray key = "through/" + QByteArray::number(id);
            QVERIFY(await(client.put(key, "v")).ok());
            QCOMPARE(await(client.get(key)).value, QByteArray("v"));
            QCOMPARE(client.role(), client.currentLeader() == id ? DEngineInterface::Role::Leader : DEngineInterface::Role::Follower);
        }
        // Pointed at a follower first, a client that follows the leader moves there (it asks the
        // other endpoints which member each is).
        const NodeId leader = statusLeader();
        const NodeId follower = leader == 1 ? 2 : 1;
        QStringList endpoints = m_cluster->clientAddresses();
        endpoints.move(int(follower - 1), 0);
        DEngineClient client(insecureClientConfig(endpoints));
        QVERIFY(client.start());
        QVERIFY(client.waitForReady(Long));
        QTRY_COMPARE_WITH_TIMEOUT(client.nodeId(), leader, Long);
        QCOMPARE(client.connectedEndpoint(), m_cluster->clientAddress(leader));
        QVERIFY(await(client.put("moved", "to the leader")).ok());
    }

    // Each member writes its client port into the replicated address book: a client told of one
    // follower learns every member's (memberClientAddress) and goes to the leader's directly.
    void oneEndpoint_learnsEveryMembersClientPort_fromTheReplicatedBook()
    {
        const NodeId leader = statusLeader();
        const NodeId follower = leader == 1 ? 2 : 1;
        DEngineClient client(insecureClientConfig({m_cluster->clientAddress(follower)}));
        QSignalSpy members(&client, &DEngineInterface::membersChanged);
        QVERIFY(client.start());
        QVERIFY(client.waitForReady(Long));
        for (NodeId id = 1; id <= 3; ++id)
            QTRY_COMPARE_WITH_TIMEOUT(client.memberClientAddress(id), m_cluster->clientAddress(id), Long);
        QVERIFY(!members.isEmpty());
        QTRY_COMPARE_WITH_TIMEOUT(client.nodeId(), leader, Long);
        QCOMPARE(client.connectedEndpoint(), m_cluster->clientAddress(leader));
        QVERIFY(client.memberClientAddress(99).isEmpty());
        QVERIFY(await(client.put("book/learned", "from one endpoint")).ok());
    }

    // The leader dies hard (SIGKILL) with 300 writes and reads in flight, or is paused (SIGSTOP):
    // every call finishes, with Ok, Timeout or NoQuorum; the client follows the new leader without
    // a second ready, its terms only grow, and writes go on.
    void leaderKilledOrPaused_callsInFlightFinish_clientFollows_data()
    {
        QTest::addColumn<int>("signal");
        QTest::newRow("SIGKILL") << int(SIGKILL);
        QTest::newRow("SIGSTOP") << int(SIGSTOP);
    }
    void leaderKilledOrPaused_callsInFlightFinish_clientFollows()
    {
        QFETCH(int, signal);
        Recorder rec;
        DEngineClient client(insecureClientConfig(m_cluster->clientAddresses()));
        rec.attach(&client);
        QVERIFY(client.start());
        QVERIFY(client.waitForReady(Long));
        QTRY_VERIFY_WITH_TIMEOUT(client.role() == DEngineInterface::Role::Leader, Long); // it moved to the leader
        const NodeId victim = client.currentLeader();
        QCOMPARE(client.nodeId(), victim);

        QList<QFuture<DEngineResult>> calls;
        for (int i = 0; i < 300; ++i)
            calls << (i % 3 == 2 ? client.get("inflight/" + QByteArray::number(i - 1)) : client.put("inflight/" + QByteArray::number(i), "v"));
        m_cluster->signal(victim, signal);
        for (int i = 0; i < 100; ++i)
            calls << client.put("after/" + QByteArray::number(i), "v");
        for (const QFuture<DEngineResult> &f : calls) {
            const DEngineResult r = await(f);
            QVERIFY2(failoverStatus(r.status) || r.status == Status::NotFound, qPrintable(r.message));
        }
        QTRY_VERIFY_WITH_TIMEOUT(client.currentLeader() != 0 && client.currentLeader() != victim, Long);
        QTRY_VERIFY_WITH_TIMEOUT(client.nodeId() == client.currentLeader(), Long);
        const DEngineResult r = await(client.put("after/failover", "ok"));
        QVERIFY2(r.ok(), qPrintable(r.message));
        QCOMPARE(rec.count(QStringLiteral("ready")), 1);
        QCOMPARE(rec.count(QStringLiteral("stopping")), 0);
        const QList<quint64> seen = terms(rec);
        for (int i = 1; i < seen.size(); ++i)
            QVERIFY2(seen[i] > seen[i - 1], qPrintable(rec.events.join(QLatin1Char(','))));
        QVERIFY(rec.gettersMatched);

        // Bring it back: a paused one resumes (and steps down), a killed one restarts on its data.
        if (signal == SIGSTOP) {
            m_cluster->signal(victim, SIGCONT);
        } else {
            QTRY_VERIFY_WITH_TIMEOUT(!m_cluster->running(victim), Long);
            m_cluster->start(victim);
        }
        DEngineClientConfig only = insecureClientConfig({m_cluster->clientAddress(victim)});
        only.followLeader = false;
        DEngineClient back(only);
        back.start();
        QVERIFY(back.waitForReady(Long));
        QTRY_COMPARE_WITH_TIMEOUT(await(back.get("after/failover")).value, QByteArray("ok"), Long);
    }

    // A cluster on TLS, peers and clients: a client with a certificate of the cluster's authority
    // works (the library and the command line); one of another authority, or one speaking plain
    // TCP, is refused with a ConnectionError that says why, and its calls finish with NoQuorum.
    void tlsClientPort_theAuthoritysClientsOnly()
    {
        DEnginedCluster tlsCluster(3);
        const std::string dir = tlsCluster.dir.filePath(QStringLiteral("certs")).toStdString();
        const std::string stranger = tlsCluster.dir.filePath(QStringLiteral("stranger")).toStdString();
        QVERIFY(QDir().mkpath(QString::fromStdString(dir)) && QDir().mkpath(QString::fromStdString(stranger)));
        std::string why;
        dengine::certs::Options o;
        o.cluster = 1;
        QVERIFY2(dengine::certs::createAuthority(dir, o, &why), why.c_str());
        for (quint64 id = 1; id <= 3; ++id)
            QVERIFY2(dengine::certs::createMember(dir, id, o, &why), why.c_str());
        QVERIFY2(dengine::certs::createClient(dir, "app", o, &why), why.c_str());
        QVERIFY2(dengine::certs::createAuthority(stranger, o, &why), why.c_str());
        QVERIFY2(dengine::certs::createClient(stranger, "app", o, &why), why.c_str());
        const QString d = QString::fromStdString(dir);
        for (quint64 id = 1; id <= 3; ++id) {
            QVERIFY(tlsCluster.writeConfig(id, QStringLiteral(R"(, "tlsCaFile": "%1/ca.pem", "tlsCertificateFile": "%1/node-%2.pem", "tlsKeyFile": "%1/node-%2.key")")
                                                   .arg(d)
                                                   .arg(id)));
            tlsCluster.start(id);
        }
        DEngineClientConfig c = insecureClientConfig(tlsCluster.clientAddresses());
        c.insecure = false;
        c.tlsCaFile = d + QStringLiteral("/ca.pem");
        c.tlsCertificateFile = d + QStringLiteral("/client-app.pem");
        c.tlsKeyFile = d + QStringLiteral("/client-app.key");
        DEngineClient client(c);
        QVERIFY(client.start());
        QVERIFY(client.waitForReady(Long));
        QVERIFY(await(client.put("tls/k", "v")).ok());
        QCOMPARE(await(client.get("tls/k")).value, QByteArray("v"));

        // The command line, with the same files.
        QProcess cli;
        cli.start(QStringLiteral(DENGINE_CLI_PATH), {QStringLiteral("--endpoints"), tlsCluster.clientAddresses().join(QLatin1Char(',')),
                                                     QStringLiteral("--cacert"), c.tlsCaFile, QStringLiteral("--cert"), c.tlsCertificateFile,
                                                     QStringLiteral("--key"), c.tlsKeyFile, QStringLiteral("get"), QStringLiteral("tls/k")});
        QVERIFY(cli.waitForFinished(Long));
        QCOMPARE(cli.exitCode(), 0);
        QCOMPARE(cli.readAllStandardOutput(), QByteArray("v\n"));
        cli.start(QStringLiteral(DENGINE_CLI_PATH), {QStringLiteral("--endpoints"), tlsCluster.clientAddress(1), QStringLiteral("--timeout"),
                                                     QStringLiteral("2000"), QStringLiteral("get"), QStringLiteral("tls/k")});
        QVERIFY(cli.waitForFinished(Long));
        QCOMPARE(cli.exitCode(), 3); // plain TCP to a TLS port: no answer

        // Another authority's client, and a plain one: refused, and they say so.
        for (const bool plain : {false, true}) {
            DEngineClientConfig bad = c;
            bad.requestTimeoutMs = 1500;
            if (plain) {
                bad.insecure = true;
            } else {
                bad.tlsCaFile = QString::fromStdString(stranger) + QStringLiteral("/ca.pem");
                bad.tlsCertificateFile = QString::fromStdString(stranger) + QStringLiteral("/client-app.pem");
                bad.tlsKeyFile = QString::fromStdString(stranger) + QStringLiteral("/client-app.key");
            }
            DEngineClient refused(bad);
            QSignalSpy errors(&refused, &DEngineInterface::errorOccurred);
            QVERIFY(refused.start());
            const DEngineResult r = await(refused.put("tls/intruder", "x"));
            QCOMPARE(r.status, Status::NoQuorum);
            QVERIFY(!refused.isReady());
            QVERIFY(!errors.isEmpty());
            QCOMPARE(errors.first().at(0).value<DEngineInterface::Error>(), DEngineInterface::Error::ConnectionError);
        }
        QCOMPARE(await(client.get("tls/intruder")).status, Status::NotFound);
    }

    // `dengine bench`: a row per load, with its figures (JSON lines for scripts), no failed call.
    void cliBench_rowsAsJsonLines()
    {
        QProcess cli;
        cli.start(QStringLiteral(DENGINE_CLI_PATH), {QStringLiteral("--endpoints"), m_cluster->clientAddresses().join(QLatin1Char(',')),
                                                     QStringLiteral("--json"), QStringLiteral("bench"), QStringLiteral("rows"),
                                                     QStringLiteral("put:4,lget:2,sget:2"), QStringLiteral("seconds"), QStringLiteral("1")});
        QVERIFY(cli.waitForFinished(Long));
        QCOMPARE(cli.exitCode(), 0);
        const QList<QByteArray> lines = cli.readAllStandardOutput().split('\n');
        QStringList loads;
        for (const QByteArray &line : lines) {
            if (line.isEmpty())
                continue;
            const QJsonObject o = QJsonDocument::fromJson(line).object();
            loads << o.value(QStringLiteral("load")).toString();
            QVERIFY2(o.value(QStringLiteral("opsPerSecond")).toDouble() > 0, line.constData()); // calls were made
            QCOMPARE(o.value(QStringLiteral("errors")).toInt(-1), 0);
        }
        QCOMPARE(loads, (QStringList{QStringLiteral("put"), QStringLiteral("lget"), QStringLiteral("sget")}));
        QVERIFY(cli.readAllStandardError().contains("[####################] 1/1 s")); // the progress line
        cli.start(QStringLiteral(DENGINE_CLI_PATH), {QStringLiteral("--endpoints"), m_cluster->clientAddress(1), QStringLiteral("bench"),
                                                     QStringLiteral("rows"), QStringLiteral("jump:3")});
        QVERIFY(cli.waitForFinished(Long));
        QCOMPARE(cli.exitCode(), 2);
    }

    void unreachableCluster_connectionErrorOnce_callsFinishWithNoQuorum_stopStillWorks()
    {
        const QList<quint16> nobody = freePorts(2);
        DEngineClientConfig c = insecureClientConfig({QStringLiteral("127.0.0.1:%1").arg(nobody[0]), QStringLiteral("127.0.0.1:%1").arg(nobody[1])});
        c.requestTimeoutMs = 1000;
        DEngineClient client(c);
        QSignalSpy errors(&client, &DEngineInterface::errorOccurred);
        QVERIFY(client.start());
        const QFuture<DEngineResult> f = client.put("k", "v");
        QTRY_VERIFY_WITH_TIMEOUT(!errors.isEmpty(), Long);
        QCOMPARE(errors.first().at(0).value<DEngineInterface::Error>(), DEngineInterface::Error::ConnectionError);
        QVERIFY2(errors.first().at(1).toString().contains(QString::number(nobody[0])), qPrintable(errors.first().at(1).toString()));
        const DEngineResult r = await(f);
        QCOMPARE(r.status, Status::NoQuorum);
        QVERIFY(!client.isReady());
        QCOMPARE(errors.size(), 1); // said once, not once per attempt
        client.stop();
        QVERIFY(client.waitForStopped(Long));

        // A bad configuration is refused at start(), naming the field.
        DEngineClientConfig bad = insecureClientConfig({QStringLiteral("nowhere")});
        DEngineClient refused(bad);
        QSignalSpy badErrors(&refused, &DEngineInterface::errorOccurred);
        QVERIFY(!refused.start());
        QCOMPARE(refused.error(), DEngineInterface::Error::ConfigurationError);
        QVERIFY(refused.errorString().contains(QStringLiteral("endpoints")));
        DEngineClientConfig noTls = insecureClientConfig(m_cluster->clientAddresses());
        noTls.insecure = false;
        QVERIFY(!DEngineClient(noTls).start());
    }
};

QTEST_GUILESS_MAIN(TestDEngineClient)
#include "tst_dengineclient.moc"
