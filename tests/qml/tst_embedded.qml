// SPDX-License-Identifier: Apache-2.0
// The module's types against a real embedded cluster: three EngineNodes in this process, on
// loopback, with their data in the run's temporary directory. The functions run in name order.
import QtQuick
import QtTest
import DEngine

TestCase {
    id: tc
    name: "EmbeddedCluster"

    readonly property var ports: testEnv.freePorts(3)
    readonly property var peerMap: ({
            "1": "127.0.0.1:" + ports[0],
            "2": "127.0.0.1:" + ports[1],
            "3": "127.0.0.1:" + ports[2]
        })
    readonly property var nodes: [n1, n2, n3]

    EngineNode { id: n1; configNodeId: 1; peers: tc.peerMap; dataDirectory: testEnv.tempPath("n1"); insecure: true; tickIntervalMs: 20; electionTicks: 10 }
    EngineNode { id: n2; configNodeId: 2; peers: tc.peerMap; dataDirectory: testEnv.tempPath("n2"); insecure: true; tickIntervalMs: 20; electionTicks: 10 }
    EngineNode { id: n3; configNodeId: 3; peers: tc.peerMap; dataDirectory: testEnv.tempPath("n3"); insecure: true; tickIntervalMs: 20; electionTicks: 10 }

    KeyValueModel { id: keys; engine: n1; prefix: "qml/"; interval: 50 }
    ClusterModel { id: members; engine: n1; nodes: [n1, n2, n3]; updateInterval: 50 }

    SignalSpy { id: readySpy; target: n1; signalName: "ready" }
    SignalSpy { id: leaderSpy; target: n1; signalName: "leaderChanged" }
    SignalSpy { id: firstCommitSpy; target: n1; signalName: "firstCommit" }
    SignalSpy { id: n2StoppedSpy; target: n2; signalName: "stopped" }

    // Waits for a promise (tryVerify spins the event loop) and gives its kvResult.
    function await_(promise) {
        var box = { done: false, value: undefined }
        promise.then(function (r) { box.value = r; box.done = true })
        tryVerify(function () { return box.done }, 20000, "the promise settled")
        return box.value
    }
    function byId(id) {
        for (var i = 0; i < nodes.length; ++i)
            if (nodes[i].nodeId === id)
                return nodes[i]
        return null
    }
    function rowOf(id) {
        for (var r = 0; r < members.count; ++r)
            if (members.get(r).nodeId === id)
                return members.get(r)
        return null
    }

    function initTestCase() {
        testEnv.watch()
    }
    function init() {
        testEnv.watch()
    }
    function cleanup() {
        compare(testEnv.takeWarnings(), [], "no QML warnings")
    }
    function cleanupTestCase() {
        for (var i = 0; i < nodes.length; ++i)
            nodes[i].stop()
        for (i = 0; i < nodes.length; ++i)
            tryCompare(nodes[i], "stateName", "Stopped", 30000)
        compare(testEnv.takeWarnings(), [], "no QML warnings")
    }

    function test_1_readyFlips() {
        compare(n1.isReady, false)
        compare(n1.stateName, "Idle")
        for (var i = 0; i < nodes.length; ++i)
            verify(nodes[i].start(), "node " + (i + 1) + " starts")
        compare(n1.running, true)
        tryCompare(n1, "isReady", true, 30000)
        tryCompare(n2, "isReady", true, 30000)
        tryCompare(n3, "isReady", true, 30000)
        compare(readySpy.count, 1)
        compare(firstCommitSpy.count, 1)
        verify(leaderSpy.count >= 1)
        compare(n1.stateName, "Running")
        verify(n1.leader > 0)
        verify(n1.term > 0)
        tryCompare(n2, "leader", n1.leader)
        tryCompare(n3, "leader", n1.leader)
        compare(n1.members.length, 3)
        compare(n1.nodeId, 1)
        verify(n1.commitIndex >= firstCommitSpy.signalArguments[0][0])
        verify(["Leader", "Follower"].indexOf(n1.roleName) >= 0, n1.roleName)
    }

    function test_2_callsSettleWithResults() {
        var put = await_(n1.put("qml/a", "alpha"))
        verify(put.ok, put.statusName + " " + put.message)
        verify(put.revision > 0)
        verify(put.elapsedMs > 0, "a result says how long it took")
        var got = await_(n2.get("qml/a"))
        verify(got.ok)
        compare(got.value, "alpha")
        compare(got.createRevision, put.revision)
        compare(got.modRevision, put.revision)
        compare(got.version, 1)
        var missing = await_(n3.get("qml/none"))
        compare(missing.ok, false)
        compare(missing.found, false)
        compare(missing.statusName, "NotFound")
        var batch = await_(n1.batch([{ op: "put", key: "qml/b", value: "beta" }, { op: "put", key: "other/x", value: "x" }]))
        verify(batch.ok, batch.message)
        var scan = await_(n1.scan("qml/"))
        verify(scan.ok)
        compare(scan.items.length, 2)
        compare(scan.items[1].key, "qml/b")
        compare(scan.items[1].value, "beta")
        compare(scan.items[1].modRevision, batch.revision)
        compare(scan.items[1].version, 1)
        var lease = await_(n1.get("qml/a", "local"))
        compare(lease.value, "alpha")
    }

    function test_2b_transactions() {
        var seen = await_(n1.get("qml/a"))
        var cas = [{ key: "qml/a", target: "mod", op: "=", number: seen.modRevision }]
        var r = await_(n2.txn(cas, [{ op: "put", key: "qml/a", value: "swapped" }], [{ op: "put", key: "qml/lost", value: "1" }]))
        verify(r.ok, r.message)
        verify(r.succeeded)
        r = await_(n3.txn(cas, [{ op: "put", key: "qml/a", value: "again" }], [{ op: "put", key: "qml/lost", value: "1" }]))
        verify(r.ok)
        verify(!r.succeeded)
        compare(await_(n1.get("qml/lost")).value, "1")
        compare(await_(n1.get("qml/a")).value, "swapped")
        verify(await_(n1.txn([{ key: "qml/a", target: "value", op: "=", value: "swapped" }], [{ op: "put", key: "qml/a", value: "alpha" }, { op: "delete", key: "qml/lost" }])).succeeded)
        compare(await_(n1.get("qml/lost")).found, false)
        r = await_(n1.txn([{ key: "qml/a", target: "size" }], []))
        compare(r.statusName, "InvalidArgument")
    }

    function test_3_badArgumentsGiveResultsNotExceptions() {
        var r = await_(n1.get("qml/a", "bogus"))
        compare(r.statusName, "InvalidArgument")
        verify(r.message.indexOf("bogus") >= 0, r.message)
        r = await_(n1.batch([{ op: "frob", key: "k" }]))
        compare(r.statusName, "InvalidArgument")
        verify(r.message.indexOf("frob") >= 0, r.message)
    }

    function test_4_keyValueModelFollowsWrites() {
        tryCompare(keys, "count", 2, 10000)
        compare(keys.keyAt(0), "qml/a")
        compare(keys.valueAt(1), "beta")
        verify(await_(n2.put("qml/c", "gamma")).ok)
        tryCompare(keys, "count", 3, 10000)
        compare(keys.keyAt(2), "qml/c")
        verify(await_(n1.put("qml/a", "alpha2")).ok)
        tryVerify(function () { return keys.valueAt(0) === "alpha2" }, 10000, "the changed value shows")
        verify(await_(n3.remove("qml/b")).ok)
        tryCompare(keys, "count", 2, 10000)
        compare(keys.keyAt(1), "qml/c")
        compare(keys.lastError, "")
        verify(keys.revision > 0)
        // A narrower query replaces the rows.
        keys.prefix = "qml/c"
        tryCompare(keys, "count", 1, 10000)
        keys.prefix = "qml/"
        tryCompare(keys, "count", 2, 10000)
    }

    function test_5_clusterModelListsMembers() {
        tryCompare(members, "count", 3, 10000)
        tryVerify(function () {
            var leaders = 0
            for (var r = 0; r < members.count; ++r) {
                var row = members.get(r)
                if (!row.connected || !row.ready)
                    return false
                if (row.leader)
                    ++leaders
            }
            return leaders === 1
        }, 10000, "every member connected and ready, one leader")
        var leaderRow = rowOf(n1.leader)
        compare(leaderRow.roleName, "Leader")
        compare(leaderRow.address, tc.peerMap[String(n1.leader)])
        compare(rowOf(1).self, true)
        compare(rowOf(2).self, false)
    }

    function test_6_leaderPropertyFollowsALeaderStop() {
        var old = n1.leader
        var oldTerm = n1.term
        var stopped = byId(old)
        var others = nodes.filter(function (n) { return n !== stopped })
        stopped.stop()
        tryCompare(stopped, "stateName", "Stopped", 30000)
        tryVerify(function () { return others[0].leader !== 0 && others[0].leader !== old }, 30000, "a new leader")
        tryCompare(others[1], "leader", others[0].leader, 30000)
        verify(others[0].term > oldTerm)
        var writes = await_(others[0].put("qml/after", "failover"))
        verify(writes.ok, writes.statusName)
        // The model follows the node it shows (n1 may be the stopped one: it is then not connected).
        tryVerify(function () { var row = rowOf(others[0].leader); return row && row.leader && row.roleName === "Leader" }, 10000)
        tryVerify(function () { var row = rowOf(old); return row && !row.connected }, 10000,
                  "the stopped node's row shows it not connected: " + JSON.stringify(rowOf(old)) + " engine " + members.engine.nodeId)
        // Back again: the node rejoins and learns the new leader.
        verify(stopped.start())
        tryCompare(stopped, "isReady", true, 30000)
        tryCompare(stopped, "leader", others[0].leader, 30000)
    }

    function test_6b_startWhileStoppingRestartsOnceStopped() {
        var before = n2StoppedSpy.count
        n2.stop()
        compare(n2.stateName, "Stopping")
        verify(n2.start(), "a start while stopping is taken, for after stopped()")
        tryCompare(n2StoppedSpy, "count", before + 1, 30000)
        tryCompare(n2, "isReady", true, 30000)
        compare(n2.stateName, "Running")
    }

    function test_7_badConfigurationIsAnErrorNotACrash() {
        var bad = Qt.createQmlObject('import DEngine; EngineNode { configNodeId: 9; insecure: true }', tc)
        var spy = Qt.createQmlObject('import QtTest; SignalSpy { signalName: "errorOccurred" }', tc)
        spy.target = bad
        compare(bad.start(), false)
        compare(spy.count, 1)
        verify(bad.errorString.length > 0)
        compare(bad.stateName, "Idle")
        var r = await_(bad.put("k", "v"))
        compare(r.ok, false)
        bad.destroy()
        spy.destroy()
    }

    function test_8_clientWithNoClusterSaysSo() {
        var client = Qt.createQmlObject('import DEngine; ClusterClient { insecure: true; requestTimeoutMs: 300 }', tc)
        client.endpoints = ["not-an-endpoint"]
        compare(client.start(), false)
        verify(client.errorString.indexOf("not-an-endpoint") >= 0, client.errorString)
        // A closed port: it starts, is not ready, and a call fails with a status (no hang).
        client.endpoints = ["127.0.0.1:" + testEnv.freePorts(1)[0]]
        verify(client.start())
        compare(client.isReady, false)
        var r = await_(client.put("k", "v"))
        compare(r.ok, false)
        verify(r.statusName !== "Ok")
        client.stop()
        tryCompare(client, "stateName", "Stopped", 10000)
        client.destroy()
    }
}
