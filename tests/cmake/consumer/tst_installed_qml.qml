// SPDX-License-Identifier: Apache-2.0
// The installed QML module, found as an application finds it (qmltestrunner -import
// <prefix>/<qml dir>): one embedded node starts, gets ready, takes a write and stops. Its data goes
// in the working directory (the consumer test's scratch directory); its port is a random one below
// the ephemeral range.
import QtQuick
import QtTest
import DEngine

TestCase {
    name: "InstalledModule"
    readonly property int port: 20000 + Math.floor(Math.random() * 12000)

    EngineNode {
        id: node
        configNodeId: 1
        peers: ({ "1": "127.0.0.1:" + port })
        dataDirectory: "installed-qml-node"
        insecure: true
    }

    function test_nodeStartsTakesAWriteAndStops() {
        verify(node.start(), node.errorString)
        tryCompare(node, "isReady", true, 30000)
        var done = false, result
        node.put("installed", "yes").then(function (r) { result = r; done = true })
        tryVerify(function () { return done }, 10000)
        verify(result.ok, result.statusName)
        node.stop()
        tryCompare(node, "stateName", "Stopped", 10000)
    }
}
