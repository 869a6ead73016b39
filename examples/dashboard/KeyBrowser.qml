// SPDX-License-Identifier: Apache-2.0
// The key browser: the keys under a prefix (a KeyValueModel, re-read every 2 s while the tab is
// shown), and put, get and delete of one key.
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import DEngine

ColumnLayout {
    id: browser
    property QtObject theme
    property var engine
    property bool active: true
    readonly property alias model: keys

    // A call's outcome (errors go to the timeline).
    signal result(string what, var r)

    spacing: 8

    function call(what, promise) {
        busy.running = true
        promise.then(r => {
            busy.running = false
            resultLabel.text = r.ok ? qsTr("%1: ok%2").arg(what).arg(r.revision > 0 ? qsTr(" (revision %1)").arg(r.revision) : "")
                                    : qsTr("%1: %2%3").arg(what).arg(r.statusName).arg(r.message ? " — " + r.message : "")
            resultLabel.color = r.ok ? browser.theme.foreground : browser.theme.warn
            if (r.ok && what.startsWith("get"))
                valueField.text = r.value
            browser.result(what, r)
            keys.refresh()
        })
    }

    KeyValueModel {
        id: keys
        engine: browser.engine
        prefix: prefixField.text
        interval: browser.active ? 2000 : 0
    }

    RowLayout {
        Layout.fillWidth: true
        spacing: 8
        TextField {
            id: prefixField
            objectName: "prefixField"
            Layout.fillWidth: true
            placeholderText: qsTr("Prefix (empty: every key)")
            selectByMouse: true
        }
        Label {
            objectName: "keyCount"
            text: keys.truncated ? qsTr("first %1 keys").arg(keys.count) : qsTr("%n key(s)", "", keys.count)
            color: browser.theme.muted
        }
        // Only for the calls below: the model's background re-reads would keep it spinning (and the
        // window repainting) all the time on a big key set.
        BusyIndicator {
            id: busy
            running: false
            implicitWidth: 28
            implicitHeight: 28
        }
    }

    Rectangle {
        Layout.fillWidth: true
        Layout.fillHeight: true
        color: browser.theme.card
        border.color: browser.theme.border
        radius: browser.theme.radius
        Label {
            anchors.centerIn: parent
            visible: keys.count === 0
            text: keys.lastError !== "" ? keys.lastError : qsTr("No keys")
            color: browser.theme.muted
        }
        ListView {
            id: list
            objectName: "keyList"
            anchors.fill: parent
            anchors.margins: 4
            clip: true
            model: keys
            currentIndex: -1
            reuseItems: true
            ScrollBar.vertical: ScrollBar {}
            delegate: ItemDelegate {
                required property int index
                required property string key
                required property string value
                width: ListView.view.width - 12
                height: 30
                highlighted: ListView.isCurrentItem
                onClicked: {
                    list.currentIndex = index
                    keyField.text = key
                    valueField.text = value
                }
                contentItem: RowLayout {
                    spacing: 16
                    Label {
                        Layout.preferredWidth: parent.width * 0.4
                        text: key
                        elide: Text.ElideRight
                        font.family: "monospace"
                    }
                    Label {
                        Layout.fillWidth: true
                        text: value
                        elide: Text.ElideRight
                        color: browser.theme.muted
                    }
                }
            }
        }
    }

    RowLayout {
        Layout.fillWidth: true
        spacing: 8
        TextField {
            id: keyField
            objectName: "keyField"
            Layout.preferredWidth: 240
            placeholderText: qsTr("key")
            selectByMouse: true
        }
        TextField {
            id: valueField
            objectName: "valueField"
            Layout.fillWidth: true
            placeholderText: qsTr("value")
            selectByMouse: true
        }
        Button {
            text: qsTr("Put")
            highlighted: true
            enabled: browser.engine !== null && keyField.text.length > 0
            onClicked: browser.call(qsTr("put %1").arg(keyField.text), browser.engine.put(keyField.text, valueField.text))
        }
        Button {
            text: qsTr("Get")
            enabled: browser.engine !== null && keyField.text.length > 0
            onClicked: browser.call(qsTr("get %1").arg(keyField.text), browser.engine.get(keyField.text))
        }
        Button {
            text: qsTr("Delete")
            enabled: browser.engine !== null && keyField.text.length > 0
            onClicked: browser.call(qsTr("delete %1").arg(keyField.text), browser.engine.remove(keyField.text))
        }
    }
    Label {
        id: resultLabel
        objectName: "keyResult"
        Layout.fillWidth: true
        elide: Text.ElideRight
        text: " "
    }
}
