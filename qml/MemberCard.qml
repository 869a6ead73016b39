// SPDX-License-Identifier: Apache-2.0
// One member's status as a card: id, role, leader mark, addresses, term, commit/applied and lag,
// connected or not. Bind its properties to a ClusterModel row (the dashboard does), or to anything
// else. Plain Qt Quick: it takes its colours from the properties below, so that any style fits.
import QtQuick

Rectangle {
    id: card

    property real nodeId: 0
    property string address: ""
    property string clientAddress: ""
    property string roleName: "Unknown"
    property bool leader: false
    property bool learner: false
    property bool self: false
    property bool connected: false
    property bool ready: false
    property real term: 0
    property real commitIndex: 0
    property real appliedIndex: 0
    property real lag: 0

    property color textColor: "#1d2330"
    property color mutedColor: "#5f6b7a"
    property color accentColor: "#2f6fde"
    property color leaderColor: "#1f9d55"
    property color warnColor: "#c2410c"
    property color cardColor: "#ffffff"
    property color borderColor: "#d5dbe3"
    property real spacing: 8
    // Extra items (the dashboard's action buttons) go in a row at the card's foot.
    default property alias actions: actionRow.data

    implicitWidth: 260
    implicitHeight: column.implicitHeight + 2 * 14
    radius: 10
    color: cardColor
    border.width: leader ? 2 : 1
    border.color: leader ? leaderColor : borderColor
    opacity: connected ? 1.0 : 0.72

    Column {
        id: column
        anchors.fill: parent
        anchors.margins: 14
        spacing: card.spacing

        Row {
            spacing: card.spacing
            Text {
                objectName: "memberTitle"
                text: qsTr("Node %1").arg(card.nodeId)
                font.pixelSize: 18
                font.bold: true
                color: card.textColor
            }
            Rectangle {
                visible: card.leader
                radius: 4
                color: card.leaderColor
                width: leaderText.implicitWidth + 10
                height: leaderText.implicitHeight + 4
                anchors.verticalCenter: parent.verticalCenter
                Text {
                    id: leaderText
                    anchors.centerIn: parent
                    text: qsTr("LEADER")
                    color: "white"
                    font.pixelSize: 11
                    font.bold: true
                }
            }
            Text {
                visible: card.learner
                text: qsTr("learner")
                color: card.mutedColor
                font.pixelSize: 12
                anchors.verticalCenter: parent.verticalCenter
            }
        }
        Text {
            objectName: "memberRole"
            text: card.connected ? card.roleName + (card.ready ? "" : qsTr(" · not ready")) : qsTr("not connected")
            color: card.connected ? card.textColor : card.warnColor
            font.pixelSize: 14
        }
        Grid {
            columns: 2
            columnSpacing: 12
            rowSpacing: 4
            Text { text: qsTr("term"); color: card.mutedColor; font.pixelSize: 12 }
            Text { objectName: "memberTerm"; text: card.connected ? card.term : "–"; color: card.textColor; font.pixelSize: 12 }
            Text { text: qsTr("commit / applied"); color: card.mutedColor; font.pixelSize: 12 }
            Text { text: card.connected ? card.commitIndex + " / " + card.appliedIndex : "–"; color: card.textColor; font.pixelSize: 12 }
            Text { text: qsTr("lag"); color: card.mutedColor; font.pixelSize: 12 }
            Text {
                text: card.connected ? qsTr("%n entries", "", card.lag) : "–"
                color: card.lag > 1000 ? card.warnColor : card.textColor
                font.pixelSize: 12
            }
            Text { text: qsTr("peers"); color: card.mutedColor; font.pixelSize: 12 }
            Text { text: card.address || "–"; color: card.textColor; font.pixelSize: 12 }
            Text { text: qsTr("clients"); color: card.mutedColor; font.pixelSize: 12 }
            Text { text: card.clientAddress || "–"; color: card.textColor; font.pixelSize: 12 }
        }
        Row {
            id: actionRow
            spacing: card.spacing
            visible: children.length > 0
        }
    }
}
