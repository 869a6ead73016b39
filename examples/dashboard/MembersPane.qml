// SPDX-License-Identifier: Apache-2.0
// One card per member (a ClusterModel), with what can be done to it: hand it the leadership,
// promote a learner, remove it; in the demo cluster, stop and start its node. A form at the foot
// adds a learner.
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import DEngine

ColumnLayout {
    id: pane
    property QtObject theme
    property var model
    property var engine
    property var demoCluster: null

    // A call's outcome, for the events timeline.
    signal result(string what, var r)

    function run(what, promise) {
        promise.then(r => pane.result(what, r))
    }

    spacing: theme.spacing

    RowLayout {
        Label {
            text: qsTr("Members")
            font.pixelSize: 16
            font.bold: true
        }
        Label {
            text: pane.model ? qsTr("%1 in the configuration").arg(pane.model.count) : ""
            color: pane.theme.muted
        }
    }

    ListView {
        id: cards
        objectName: "memberCards"
        Layout.fillWidth: true
        Layout.fillHeight: true
        clip: true
        spacing: 10
        model: pane.model
        ScrollBar.vertical: ScrollBar {}
        Label {
            anchors.centerIn: parent
            visible: cards.count === 0
            text: qsTr("No members known yet")
            color: pane.theme.muted
        }
        delegate: MemberCard {
            id: card
            required property var model
            width: ListView.view.width - 8
            objectName: "member" + model.nodeId
            nodeId: model.nodeId
            address: model.address
            clientAddress: model.clientAddress
            roleName: model.roleName
            leader: model.leader
            learner: model.learner
            self: model.self
            connected: model.connected
            ready: model.ready
            term: model.term
            commitIndex: model.commitIndex
            appliedIndex: model.appliedIndex
            lag: model.lag
            textColor: pane.theme.foreground
            mutedColor: pane.theme.muted
            accentColor: pane.theme.accent
            leaderColor: pane.theme.good
            warnColor: pane.theme.warn
            cardColor: pane.theme.card
            borderColor: pane.theme.border

            readonly property var demoNode: pane.demoCluster ? pane.demoCluster.node(model.nodeId) : null

            SmallButton {
                text: qsTr("Make leader")
                visible: !card.leader && !card.learner && card.connected
                // On the leader: an embedded node refuses a transfer it does not lead (the demo's
                // watched node may be a follower); a cluster client goes to the leader anyway.
                onClicked: {
                    const via = pane.demoCluster ? pane.demoCluster.node(pane.engine.leader) : pane.engine
                    if (via)
                        pane.run(qsTr("transfer leadership to node %1").arg(card.nodeId), via.transferLeadership(card.nodeId))
                }
            }
            SmallButton {
                text: qsTr("Promote")
                visible: card.learner
                onClicked: pane.run(qsTr("promote node %1").arg(card.nodeId), pane.engine.promote(card.nodeId))
            }
            SmallButton {
                text: qsTr("Remove")
                visible: !pane.demoCluster
                onClicked: {
                    confirmRemove.target = card.nodeId
                    confirmRemove.open()
                }
            }
            SmallButton {
                text: card.demoNode && card.demoNode.running ? qsTr("Stop node") : qsTr("Start node")
                visible: card.demoNode !== null
                onClicked: card.demoNode.running ? card.demoNode.stop() : card.demoNode.start()
            }
        }
    }

    // Adding a member: as a learner first (it catches up without counting in the quorum), then
    // Promote on its card.
    Rectangle {
        Layout.fillWidth: true
        implicitHeight: addColumn.implicitHeight + 24
        color: pane.theme.card
        border.color: pane.theme.border
        radius: pane.theme.radius
        visible: !pane.demoCluster
        ColumnLayout {
            id: addColumn
            anchors.fill: parent
            anchors.margins: 12
            spacing: 6
            Label {
                text: qsTr("Add a learner")
                font.bold: true
            }
            RowLayout {
                spacing: 8
                TextField {
                    id: newId
                    Layout.preferredWidth: 64
                    placeholderText: qsTr("id")
                    validator: IntValidator { bottom: 1 }
                    selectByMouse: true
                }
                TextField {
                    id: newAddress
                    Layout.fillWidth: true
                    placeholderText: qsTr("peer address host:port")
                    selectByMouse: true
                }
                SmallButton {
                    text: qsTr("Add")
                    enabled: pane.engine !== null && newId.acceptableInput && newAddress.text.trim().length > 0
                    onClicked: pane.run(qsTr("add learner %1 at %2").arg(newId.text).arg(newAddress.text.trim()),
                                        pane.engine.addLearner(Number(newId.text), newAddress.text.trim()))
                }
            }
        }
    }

    Dialog {
        id: confirmRemove
        property real target: 0
        anchors.centerIn: Overlay.overlay
        modal: true
        title: qsTr("Remove node %1?").arg(target)
        standardButtons: Dialog.Ok | Dialog.Cancel
        Label {
            text: qsTr("It leaves the configuration; its data stays on its disk.")
        }
        onAccepted: pane.run(qsTr("remove node %1").arg(target), pane.engine.removeMember(target))
    }
}
