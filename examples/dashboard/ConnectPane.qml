// SPDX-License-Identifier: Apache-2.0
// Where to connect: members' client addresses, plain TCP or TLS files; or a demo cluster.
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts

Pane {
    id: pane
    property QtObject theme
    property string endpoints: ""
    property bool insecure: false
    property string caFile: ""
    property string certificateFile: ""
    property string keyFile: ""

    signal connectRequested(var endpoints, bool insecure, string caFile, string certificateFile, string keyFile)
    signal demoRequested()

    padding: 24
    background: Rectangle {
        color: pane.theme.card
        border.color: pane.theme.border
        radius: pane.theme.radius
    }

    function submit() {
        const list = endpointsField.text.split(/[\s,]+/).filter(e => e.length > 0)
        pane.connectRequested(list, insecureBox.checked, caField.text.trim(), certField.text.trim(), keyField.text.trim())
    }

    ColumnLayout {
        anchors.fill: parent
        spacing: pane.theme.spacing

        Label {
            text: qsTr("Connect to a cluster")
            font.pixelSize: 20
            font.bold: true
        }
        Label {
            Layout.fillWidth: true
            text: qsTr("The client addresses of one or more members (dengined's server.clientAddress); the dashboard finds the others.")
            wrapMode: Text.Wrap
            color: pane.theme.muted
        }
        TextField {
            id: endpointsField
            objectName: "endpointsField"
            Layout.fillWidth: true
            placeholderText: qsTr("127.0.0.1:8101, 127.0.0.1:8102")
            text: pane.endpoints
            selectByMouse: true
            onAccepted: pane.submit()
        }
        CheckBox {
            id: insecureBox
            text: qsTr("Plain TCP (no TLS)")
            checked: pane.insecure
        }
        GridLayout {
            Layout.fillWidth: true
            enabled: !insecureBox.checked
            columns: 2
            columnSpacing: pane.theme.spacing
            Label { text: qsTr("CA certificate") }
            TextField { id: caField; Layout.fillWidth: true; text: pane.caFile; placeholderText: qsTr("/path/to/ca.pem"); selectByMouse: true }
            Label { text: qsTr("Certificate") }
            TextField { id: certField; Layout.fillWidth: true; text: pane.certificateFile; placeholderText: qsTr("/path/to/client.pem"); selectByMouse: true }
            Label { text: qsTr("Private key") }
            TextField { id: keyField; Layout.fillWidth: true; text: pane.keyFile; placeholderText: qsTr("/path/to/client.key"); selectByMouse: true }
        }
        RowLayout {
            Layout.topMargin: 8
            spacing: pane.theme.spacing
            Button {
                objectName: "connectButton"
                text: qsTr("Connect")
                highlighted: true
                enabled: endpointsField.text.trim().length > 0
                onClicked: pane.submit()
            }
            Item { Layout.fillWidth: true }
            Button {
                text: qsTr("Start a demo cluster")
                flat: true
                onClicked: pane.demoRequested()
            }
        }
    }
}
