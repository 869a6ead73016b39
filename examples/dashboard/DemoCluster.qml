// SPDX-License-Identifier: Apache-2.0
// Three embedded nodes in the dashboard's own process, on loopback (plain TCP: nothing leaves the
// machine), for trying the dashboard without a cluster. `watched` is the first running node.
import QtQuick
import DEngine

Item {
    id: demo
    property var ports: []
    property string directory: ""
    readonly property var nodes: [n1, n2, n3]
    readonly property var watched: n1.running ? n1 : n2.running ? n2 : n3.running ? n3 : n1
    readonly property var peerMap: ports.length === 3 ? {
        "1": "127.0.0.1:" + ports[0],
        "2": "127.0.0.1:" + ports[1],
        "3": "127.0.0.1:" + ports[2]
    } : ({})

    // Every node stopped (or never started): the cluster may be destroyed without a wait.
    readonly property bool allStopped: !n1.running && !n2.running && !n3.running

    signal event(string kind, string text)

    // Graceful stops, side by side (a destroyed node would stop itself, one at a time, blocking).
    function stopAll() {
        for (const n of nodes)
            n.stop()
    }

    function node(id) {
        return id >= 1 && id <= 3 ? nodes[id - 1] : null
    }

    EngineNode { id: n1; configNodeId: 1; peers: demo.peerMap; dataDirectory: demo.directory + "/node1"; insecure: true }
    EngineNode { id: n2; configNodeId: 2; peers: demo.peerMap; dataDirectory: demo.directory + "/node2"; insecure: true }
    EngineNode { id: n3; configNodeId: 3; peers: demo.peerMap; dataDirectory: demo.directory + "/node3"; insecure: true }

    component NodeEvents: Connections {
        property int nodeId
        // Every node stopped (or never started): the cluster may be destroyed without a wait.
    readonly property bool allStopped: !n1.running && !n2.running && !n3.running

    signal event(string kind, string text)

    // Graceful stops, side by side (a destroyed node would stop itself, one at a time, blocking).
    function stopAll() {
        for (const n of nodes)
            n.stop()
    }
        function onReady() { event("ready", qsTr("node %1 is ready").arg(nodeId)) }
        function onLeaderChanged(leader) { event("leader", leader > 0 ? qsTr("node %1: leader is node %2").arg(nodeId).arg(leader) : qsTr("node %1: no leader").arg(nodeId)) }
        function onTermChanged(term) { event("term", qsTr("node %1: term %2").arg(nodeId).arg(term)) }
        function onFirstCommit(index) { event("commit", qsTr("node %1: first commit at index %2").arg(nodeId).arg(index)) }
        function onStopping() { event("info", qsTr("node %1 is stopping").arg(nodeId)) }
        function onStopped() { event("info", qsTr("node %1 stopped").arg(nodeId)) }
        function onErrorOccurred(error, message) { event("error", qsTr("node %1: %2").arg(nodeId).arg(message)) }
    }
    NodeEvents { target: n1; nodeId: 1; onEvent: (kind, text) => demo.event(kind, text) }
    NodeEvents { target: n2; nodeId: 2; onEvent: (kind, text) => demo.event(kind, text) }
    NodeEvents { target: n3; nodeId: 3; onEvent: (kind, text) => demo.event(kind, text) }

    // Started once everything here is made, so that the timeline hears a refusal too.
    Component.onCompleted: {
        for (const n of nodes)
            n.start()
    }
}
