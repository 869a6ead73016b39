// SPDX-License-Identifier: Apache-2.0
// The events timeline: newest first, each with its time, kind and text; the last 1000 kept.
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts

Rectangle {
    id: view
    property QtObject theme
    readonly property int count: events.count

    function add(kind, text) {
        events.insert(0, { time: Qt.formatTime(new Date(), "hh:mm:ss.zzz"), kind: kind, text: text })
        if (events.count > 1000)
            events.remove(1000, events.count - 1000)
    }
    function kindColor(kind) {
        switch (kind) {
        case "error": return theme.error
        case "leader": return theme.good
        case "term": return theme.series2
        case "ready": return theme.accent
        case "commit": return theme.accent
        default: return theme.muted
        }
    }

    color: theme.card
    border.color: theme.border
    radius: theme.radius

    ListModel { id: events }

    Label {
        anchors.centerIn: parent
        visible: events.count === 0
        text: qsTr("No events yet")
        color: view.theme.muted
    }
    ListView {
        objectName: "eventsList"
        anchors.fill: parent
        anchors.margins: 8
        clip: true
        model: events
        spacing: 2
        ScrollBar.vertical: ScrollBar {}
        delegate: RowLayout {
            required property string time
            required property string kind
            required property string text
            width: ListView.view.width - 12
            spacing: 12
            Label {
                text: parent.time
                font.family: "monospace"
                font.pixelSize: 12
                color: view.theme.muted
            }
            Rectangle {
                Layout.preferredWidth: 84
                implicitHeight: kindLabel.implicitHeight + 4
                radius: 4
                color: "transparent"
                border.color: view.kindColor(parent.kind)
                Label {
                    id: kindLabel
                    anchors.centerIn: parent
                    text: parent.parent.kind
                    font.pixelSize: 11
                    color: view.kindColor(parent.parent.kind)
                }
            }
            Label {
                Layout.fillWidth: true
                text: parent.text
                elide: Text.ElideRight
                font.pixelSize: 13
            }
        }
    }
}
