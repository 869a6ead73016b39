// SPDX-License-Identifier: Apache-2.0
// The dashboard's window: a header with the cluster's state, leader and term; member cards on the
// left; a throughput and latency chart, the key browser and the events timeline on the right.
// It watches `engine`: the ClusterClient in client mode, or a running node of the demo cluster.
import QtQuick
import QtQuick.Controls
import QtQuick.Controls.Material
import QtQuick.Layouts
import DEngine

ApplicationWindow {
    id: win

    // Set by main.cpp (or a test) as initial properties.
    property var startEndpoints: []
    property bool startInsecure: false
    property string startCaFile: ""
    property string startCertificateFile: ""
    property string startKeyFile: ""
    property bool startDemo: false
    property var demoPorts: []
    property string demoDirectory: ""
    // "system" (the default: follows the desktop's light or dark setting), "light" or "dark".
    property string themeChoice: "system"

    // "none" (the connect form), "client" (a standalone cluster) or "demo" (embedded nodes).
    property string mode: "none"
    readonly property var engine: mode === "client" ? client : (mode === "demo" && demo.item ? demo.item.watched : null)
    readonly property bool demoMode: mode === "demo"
    property string lastError: ""
    // The demo cluster is stopping; it is unloaded (and the window closed, with quitting) once
    // every node has stopped.
    property bool closingDemo: false
    property bool quitting: false

    width: 1280
    height: 800
    minimumWidth: 1024
    minimumHeight: 640
    visible: true
    title: qsTr("DEngine dashboard")

    Material.theme: themeChoice === "dark" ? Material.Dark : themeChoice === "light" ? Material.Light : Material.System
    Material.accent: Material.Teal
    Material.primary: Material.BlueGrey

    Theme {
        id: theme
        dark: win.Material.theme === Material.Dark
        foreground: win.Material.foreground
        accent: win.Material.accent
    }

    function report(kind, text) {
        eventsView.add(kind, text)
        if (kind === "error")
            lastError = text
    }
    function closeDemo() {
        if (!demo.item)
            return
        closingDemo = true
        demo.item.stopAll()
        if (demo.item.allStopped)
            demoStopped()
    }
    function demoStopped() {
        closingDemo = false
        demo.active = false
        if (quitting)
            Qt.quit()
    }
    function connectTo(endpoints, insecure, caFile, certificateFile, keyFile) {
        if (demoMode)
            closeDemo()
        if (client.running)
            client.stop() // start() below waits for stopped()
        lastError = ""
        client.endpoints = endpoints
        client.insecure = insecure
        client.tlsCaFile = caFile
        client.tlsCertificateFile = certificateFile
        client.tlsKeyFile = keyFile
        mode = "client"
        report("info", qsTr("connecting to %1").arg(endpoints.join(", ")))
        client.start() // a refusal comes back as errorOccurred
    }
    function startDemoCluster() {
        if (client.running)
            client.stop()
        if (closingDemo) { // still stopping the last one: its ports are not free yet
            report("info", qsTr("the last demo cluster is still stopping: start it again in a moment"))
            return
        }
        lastError = ""
        mode = "demo"
        demo.active = true
        report("info", qsTr("demo cluster: three embedded nodes in this process, data in %1").arg(demoDirectory))
    }
    function showResult(what, r) {
        report(r.ok ? "membership" : "error", r.ok ? qsTr("%1: done").arg(what) : qsTr("%1: %2 %3").arg(what).arg(r.statusName).arg(r.message))
    }

    ClusterClient {
        id: client
        requestTimeoutMs: 5000
        onReady: {
            win.lastError = "" // the cluster is reachable after all; the timeline keeps the error
            win.report("ready", qsTr("connected to a ready cluster through %1").arg(client.connectedEndpoint))
        }
        onLeaderChanged: leader => win.report("leader", leader > 0 ? qsTr("leader is node %1").arg(leader) : qsTr("no leader"))
        onTermChanged: term => win.report("term", qsTr("term %1").arg(term))
        onFirstCommit: index => win.report("commit", qsTr("first commit of this leader at index %1").arg(index))
        onStopping: win.report("info", qsTr("disconnecting"))
        onStopped: win.report("info", qsTr("disconnected"))
        onErrorOccurred: (error, message) => win.report("error", message)
    }

    onClosing: close => {
        if (demo.item && !demo.item.allStopped) {
            close.accepted = false
            quitting = true
            closeDemo()
        }
    }

    Connections {
        target: demo.item
        function onAllStoppedChanged() {
            if (win.closingDemo && demo.item.allStopped)
                win.demoStopped()
        }
    }

    Loader {
        id: demo
        active: false
        sourceComponent: DemoCluster {
            ports: win.demoPorts
            directory: win.demoDirectory
            onEvent: (kind, text) => win.report(kind, text)
        }
    }

    ClusterModel {
        id: clusterModel
        engine: win.engine
        nodes: win.demoMode && demo.item ? demo.item.nodes : []
        updateInterval: 250
    }

    header: ToolBar {
        objectName: "header"
        Material.foreground: "white"
        background: Rectangle {
            color: theme.dark ? "#1b2530" : "#34495e"
        }
        RowLayout {
            anchors.fill: parent
            anchors.leftMargin: 16
            anchors.rightMargin: 8
            spacing: 24

            Label {
                text: qsTr("DEngine")
                font.pixelSize: 20
                font.bold: true
            }
            RowLayout {
                spacing: 8
                Rectangle {
                    width: 10
                    height: 10
                    radius: 5
                    color: !win.engine ? theme.muted : win.engine.isReady ? theme.good : win.lastError !== "" ? theme.error : theme.warn
                }
                Label {
                    objectName: "statusLabel"
                    text: {
                        if (!win.engine)
                            return qsTr("not connected")
                        const where = win.mode === "client" && client.connectedEndpoint !== "" ? qsTr(" via %1").arg(client.connectedEndpoint)
                                    : win.demoMode ? qsTr(" · demo, watching node %1").arg(win.engine.nodeId) : ""
                        if (win.engine.isReady)
                            return qsTr("ready") + where
                        if (win.engine.stateName === "Running")
                            return (win.mode === "client" && client.connectedEndpoint === "" ? qsTr("connecting") : qsTr("waiting for a leader")) + where
                        return win.engine.stateName.toLowerCase()
                    }
                }
            }
            Item { Layout.fillWidth: true }
            HeaderValue { caption: qsTr("LEADER"); valueName: "leaderLabel"; value: win.engine && win.engine.leader > 0 ? qsTr("node %1").arg(win.engine.leader) : qsTr("none") }
            HeaderValue { caption: qsTr("TERM"); valueName: "termLabel"; value: win.engine && win.engine.term > 0 ? String(win.engine.term) : "–" }
            HeaderValue { caption: qsTr("COMMIT"); valueName: "commitLabel"; value: win.engine && win.engine.commitIndex > 0 ? String(win.engine.commitIndex) : "–" }
            ToolButton {
                text: qsTr("Connect…")
                onClicked: connectPopup.open()
            }
            ToolButton {
                text: win.demoMode ? qsTr("Stop demo") : qsTr("Demo cluster")
                onClicked: {
                    if (win.demoMode) {
                        win.closeDemo()
                        win.mode = "none"
                        win.report("info", qsTr("demo cluster stopped"))
                    } else {
                        win.startDemoCluster()
                    }
                }
            }
        }
    }

    // The landing page: nothing to watch yet.
    ConnectPane {
        visible: win.mode === "none"
        anchors.centerIn: parent
        width: 520
        theme: theme
        endpoints: win.startEndpoints.join(", ")
        insecure: win.startInsecure
        caFile: win.startCaFile
        certificateFile: win.startCertificateFile
        keyFile: win.startKeyFile
        onConnectRequested: (endpoints, insecure, ca, cert, key) => win.connectTo(endpoints, insecure, ca, cert, key)
        onDemoRequested: win.startDemoCluster()
    }

    Popup {
        id: connectPopup
        anchors.centerIn: parent
        modal: true
        padding: 0
        contentItem: ConnectPane {
            width: 520
            theme: theme
            endpoints: client.endpoints.join(", ")
            insecure: client.insecure
            caFile: client.tlsCaFile
            certificateFile: client.tlsCertificateFile
            keyFile: client.tlsKeyFile
            onConnectRequested: (endpoints, insecure, ca, cert, key) => {
                connectPopup.close()
                win.connectTo(endpoints, insecure, ca, cert, key)
            }
            onDemoRequested: {
                connectPopup.close()
                win.startDemoCluster()
            }
        }
    }

    ColumnLayout {
        visible: win.mode !== "none" || win.lastError !== ""
        anchors.fill: parent
        anchors.margins: 16
        spacing: 12

        // Errors stay until dismissed or the next connection: the tool keeps running.
        Rectangle {
            objectName: "errorBanner"
            visible: win.lastError !== ""
            Layout.fillWidth: true
            implicitHeight: errorRow.implicitHeight + 16
            radius: 6
            color: theme.errorBackground
            border.color: theme.error
            RowLayout {
                id: errorRow
                anchors.fill: parent
                anchors.margins: 8
                anchors.leftMargin: 12
                Label {
                    objectName: "errorText"
                    Layout.fillWidth: true
                    text: win.lastError
                    color: theme.error
                    wrapMode: Text.Wrap
                }
                Button {
                    flat: true
                    text: qsTr("Dismiss")
                    topInset: 0
                    bottomInset: 0
                    implicitHeight: 32
                    onClicked: win.lastError = ""
                }
            }
        }

        RowLayout {
            visible: win.mode !== "none"
            Layout.fillWidth: true
            Layout.fillHeight: true
            spacing: 16

            MembersPane {
                Layout.preferredWidth: 340
                Layout.maximumWidth: 340
                Layout.fillHeight: true
                theme: theme
                model: clusterModel
                engine: win.engine
                demoCluster: win.demoMode ? demo.item : null
                onResult: (what, r) => win.showResult(what, r)
            }

            ColumnLayout {
                Layout.fillWidth: true
                Layout.fillHeight: true
                spacing: 12

                ThroughputChart {
                    Layout.fillWidth: true
                    Layout.preferredHeight: 240
                    theme: theme
                    engine: win.engine
                }
                TabBar {
                    id: tabs
                    objectName: "tabs"
                    Layout.fillWidth: true
                    TabButton { text: qsTr("Keys") }
                    TabButton { text: qsTr("Events (%1)").arg(eventsView.count) }
                }
                StackLayout {
                    Layout.fillWidth: true
                    Layout.fillHeight: true
                    currentIndex: tabs.currentIndex
                    KeyBrowser {
                        theme: theme
                        engine: win.engine
                        active: tabs.currentIndex === 0 && win.mode !== "none"
                        onResult: (what, r) => { if (!r.ok && r.statusName !== "NotFound") win.report("error", qsTr("%1: %2 %3").arg(what).arg(r.statusName).arg(r.message)) }
                    }
                    EventsView {
                        id: eventsView
                        theme: theme
                    }
                }
            }
        }
    }

    Component.onCompleted: {
        if (startDemo)
            startDemoCluster()
        else if (startEndpoints.length > 0)
            connectTo(startEndpoints, startInsecure, startCaFile, startCertificateFile, startKeyFile)
    }
}
