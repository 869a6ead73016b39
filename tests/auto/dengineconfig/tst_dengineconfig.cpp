// SPDX-License-Identifier: Apache-2.0
#include <dengine/dengineconfig.h>

#include <QtCore/QTemporaryDir>
#include <QtTest/QtTest>

class tst_DEngineConfig : public QObject {
    Q_OBJECT

private:
    static DEngineConfig valid()
    {
        DEngineConfig c;
        c.nodeId = 1;
        c.peers = {{1, QStringLiteral("127.0.0.1:7001")}, {2, QStringLiteral("127.0.0.1:7002")}, {3, QStringLiteral("127.0.0.1:7003")}};
        c.dataDirectory = QStringLiteral("/tmp/node1");
        c.tlsCaFile = QStringLiteral("/etc/dengine/ca.pem");
        c.tlsCertificateFile = QStringLiteral("/etc/dengine/node-1.pem");
        c.tlsKeyFile = QStringLiteral("/etc/dengine/node-1.key");
        return c;
    }

    static QString writeFile(const QTemporaryDir &dir, const QByteArray &json)
    {
        const QString path = dir.filePath(QStringLiteral("node.json"));
        QFile f(path);
        if (!f.open(QIODevice::WriteOnly) || f.write(json) != json.size())
            return {};
        return path;
    }

private Q_SLOTS:
    void validate_acceptsACompleteConfig() { QVERIFY2(valid().validate().isEmpty(), qPrintable(valid().validate())); }

    void validate_namesTheBadField_data()
    {
        QTest::addColumn<QString>("field");
        QTest::addColumn<int>("which");
        QTest::newRow("nodeId") << QStringLiteral("nodeId") << 0;
        QTest::newRow("peers without self") << QStringLiteral("peers") << 1;
        QTest::newRow("peer address") << QStringLiteral("peers") << 2;
        QTest::newRow("dataDirectory") << QStringLiteral("dataDirectory") << 3;
        QTest::newRow("electionTicks") << QStringLiteral("electionTicks") << 4;
        QTest::newRow("listenAddress") << QStringLiteral("listenAddress") << 5;
        QTest::newRow("maxKeyBytes") << QStringLiteral("maxKeyBytes") << 6;
        QTest::newRow("peer host name (not resolved)") << QStringLiteral("peers") << 7;
        QTest::newRow("leaseReads without checkQuorum") << QStringLiteral("leaseReads") << 8;
        QTest::newRow("two peers, one address") << QStringLiteral("peers") << 9;
        QTest::newRow("same address, localhost spelled out") << QStringLiteral("peers") << 10;
        QTest::newRow("port 0 in a peer others dial") << QStringLiteral("peers") << 11;
        QTest::newRow("maxPendingBytes") << QStringLiteral("maxPendingBytes") << 12;
        QTest::newRow("maxScanItems") << QStringLiteral("maxScanItems") << 13;
        QTest::newRow("TLS without the authority") << QStringLiteral("tlsCaFile") << 14;
        QTest::newRow("TLS without the key") << QStringLiteral("tlsKeyFile") << 15;
    }
    void validate_namesTheBadField()
    {
        QFETCH(QString, field);
        QFETCH(int, which);
        DEngineConfig c = valid();
        switch (which) {
        case 0: c.nodeId = 0; break;
        case 1: c.peers.remove(1); break;
        case 2: c.peers[2] = QStringLiteral("no-port"); break;
        case 3: c.dataDirectory.clear(); break;
        case 4: c.electionTicks = c.heartbeatTicks; break;
        case 5: c.listenAddress = QStringLiteral("localhost:99999"); break;
        case 6: c.maxKeyBytes = 0; break;
        case 7: c.peers[2] = QStringLiteral("db2.example:7002"); break;
        case 8:
            c.leaseReads = true;
            c.checkQuorum = false;
            break;
        case 9: c.peers[3] = c.peers[2]; break;
        case 10:
            c.peers[2] = QStringLiteral("localhost:7001");
            c.peers[1] = QStringLiteral("127.0.0.1:7001");
            break;
        case 11: c.peers[2] = QStringLiteral("127.0.0.1:0"); break;
        case 12: c.maxPendingBytes = 0; break;
        case 13: c.maxScanItems = 0; break;
        case 14: c.tlsCaFile.clear(); break;
        case 15: c.tlsKeyFile.clear(); break;
        }
        const QString problem = c.validate();
        QVERIFY2(problem.startsWith(field + QLatin1Char(':')), qPrintable(problem));
    }

    void fromFile_readsEveryField()
    {
        QTemporaryDir dir;
        const QString path = writeFile(dir, R"({"nodeId": 2, "clusterId": 42, "dataDirectory": "/var/lib/dengine/2",
            "peers": {"1": "10.0.0.1:7001", "2": "10.0.0.2:7001", "3": "10.0.0.3:7001"},
            "listenAddress": "0.0.0.0:7001", "tickIntervalMs": 50, "electionTicks": 20, "heartbeatTicks": 2,
            "checkQuorum": false, "preVote": true, "maxKeyBytes": 100, "maxValueBytes": 1000,
            "maxBatchOperations": 10, "maxPendingRequests": 99, "requestTimeoutMs": 1234, "stopTimeoutMs": 4321,
            "tlsCaFile": "certs/ca.pem", "tlsCertificateFile": "/etc/dengine/node-2.pem", "tlsKeyFile": "certs/../keys/node-2.key",
            "join": true})");
        QString error;
        const DEngineConfig c = DEngineConfig::fromFile(path, &error);
        QVERIFY2(error.isEmpty(), qPrintable(error));
        QCOMPARE(c.nodeId, NodeId(2));
        QCOMPARE(c.clusterId, quint64(42));
        QCOMPARE(c.peers.size(), 3);
        QCOMPARE(c.peers.value(3), QStringLiteral("10.0.0.3:7001"));
        QCOMPARE(c.listenAddress, QStringLiteral("0.0.0.0:7001"));
        QCOMPARE(c.tickIntervalMs, 50);
        QCOMPARE(c.electionTicks, 20);
        QCOMPARE(c.heartbeatTicks, 2);
        QCOMPARE(c.checkQuorum, false);
        QCOMPARE(c.maxKeyBytes, 100);
        QCOMPARE(c.maxValueBytes, 1000);
        QCOMPARE(c.maxBatchOperations, 10);
        QCOMPARE(c.maxPendingRequests, 99);
        QCOMPARE(c.requestTimeoutMs, 1234);
        QCOMPARE(c.stopTimeoutMs, 4321);
        // TLS files: relative to the configuration file's directory.
        QCOMPARE(c.tlsCaFile, dir.filePath(QStringLiteral("certs/ca.pem")));
        QCOMPARE(c.tlsCertificateFile, QStringLiteral("/etc/dengine/node-2.pem"));
        QCOMPARE(c.tlsKeyFile, dir.filePath(QStringLiteral("keys/node-2.key")));
        QCOMPARE(c.insecure, false);
        QCOMPARE(c.join, true);
    }

    // A joining node names itself and at least one member to start from.
    void validate_joinNeedsAMemberToJoin()
    {
        DEngineConfig c = valid();
        c.join = true;
        QCOMPARE(c.validate(), QString());
        const NodeId self = c.nodeId;
        const QString address = c.peers.value(self);
        c.peers.clear();
        c.peers.insert(self, address);
        QVERIFY(c.validate().startsWith(QStringLiteral("peers: a node that joins")));
    }

    // Plain TCP only when asked for: without TLS files and without insecure, a config is refused.
    void validate_insecureIsAnExplicitOptIn()
    {
        DEngineConfig c = valid();
        c.tlsCaFile.clear();
        c.tlsCertificateFile.clear();
        c.tlsKeyFile.clear();
        QVERIFY(c.validate().startsWith(QStringLiteral("tlsCaFile:")));
        c.insecure = true;
        QCOMPARE(c.validate(), QString());
    }

    void fromFile_refusesWithAReason_data()
    {
        QTest::addColumn<QByteArray>("json");
        QTest::addColumn<QString>("expected");
        QTest::newRow("not json") << QByteArray("{nodeId: 1") << QStringLiteral("not valid JSON");
        QTest::newRow("not an object") << QByteArray("[1, 2]") << QStringLiteral("top level");
        QTest::newRow("join not a bool") << QByteArray(R"({"join": "yes"})") << QStringLiteral("join: must be true or false");
        QTest::newRow("unknown field") << QByteArray(R"({"nodeId": 1, "colour": "blue"})") << QStringLiteral("unknown field \"colour\"");
        QTest::newRow("wrong type") << QByteArray(R"({"nodeId": "one"})") << QStringLiteral("nodeId");
        QTest::newRow("fractional") << QByteArray(R"({"nodeId": 1, "tickIntervalMs": 1.5})") << QStringLiteral("tickIntervalMs");
        QTest::newRow("bad peer id") << QByteArray(R"({"nodeId": 1, "peers": {"x": "h:1"}})") << QStringLiteral("peers");
        QTest::newRow("invalid after reading") << QByteArray(R"({"nodeId": 1, "peers": {"1": "127.0.0.1:1"}})") << QStringLiteral("dataDirectory");
    }
    void fromFile_refusesWithAReason()
    {
        QFETCH(QByteArray, json);
        QFETCH(QString, expected);
        QTemporaryDir dir;
        const QString path = writeFile(dir, json);
        QString error;
        DEngineConfig::fromFile(path, &error);
        QVERIFY2(error.contains(expected), qPrintable(error));
        QVERIFY2(error.startsWith(path), qPrintable(error));
    }

    // Port 0 ("any free port") where nobody dials it: the listen address, a one-node cluster's peer.
    void validate_acceptsPortZeroWhereNobodyDialsIt()
    {
        DEngineConfig c = valid();
        c.listenAddress = QStringLiteral("0.0.0.0:0");
        QVERIFY2(c.validate().isEmpty(), qPrintable(c.validate()));
        DEngineConfig one = valid();
        one.peers = {{1, QStringLiteral("127.0.0.1:0")}};
        QVERIFY2(one.validate().isEmpty(), qPrintable(one.validate()));
    }

    // A JSON number holds 53 bits exactly: a bigger id as a number is refused (it would silently be
    // another id); as a string of digits, any 64-bit id is read exactly.
    void fromFile_idsAbove2To53_areStrings()
    {
        QTemporaryDir dir;
        QString error;
        const QString big = writeFile(dir, R"({"nodeId": 1, "clusterId": 18446744073709551615, "dataDirectory": "/tmp/x",
            "peers": {"1": "127.0.0.1:7001"}})");
        DEngineConfig::fromFile(big, &error);
        QVERIFY2(error.contains(QStringLiteral("clusterId")) && error.contains(QStringLiteral("string")), qPrintable(error));
        const QString asString = writeFile(dir, R"({"nodeId": "9007199254740993", "clusterId": "18446744073709551615",
            "dataDirectory": "/tmp/x", "peers": {"9007199254740993": "127.0.0.1:7001"}, "insecure": true})");
        const DEngineConfig c = DEngineConfig::fromFile(asString, &error);
        QVERIFY2(error.isEmpty(), qPrintable(error));
        QCOMPARE(c.nodeId, NodeId(9007199254740993ULL));
        QCOMPARE(c.clusterId, quint64(18446744073709551615ULL));
        const QString bad = writeFile(dir, R"({"nodeId": "12x"})");
        DEngineConfig::fromFile(bad, &error);
        QVERIFY2(error.contains(QStringLiteral("nodeId")), qPrintable(error));
    }

    void fromFile_missingFile_saysSo()
    {
        QString error;
        DEngineConfig::fromFile(QStringLiteral("/nonexistent/dengine.json"), &error);
        QVERIFY(error.startsWith(QStringLiteral("/nonexistent/dengine.json: ")));
    }
};

QTEST_GUILESS_MAIN(tst_DEngineConfig)
#include "tst_dengineconfig.moc"
