// SPDX-License-Identifier: Apache-2.0
// A caption over a value, for the header's leader, term and commit index.
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts

ColumnLayout {
    property string caption
    property string value
    // The value label's objectName (tests find the shown leader and term by it).
    property string valueName
    spacing: 0
    Label {
        text: parent.caption
        font.pixelSize: 10
        font.letterSpacing: 1
        opacity: 0.75
    }
    Label {
        objectName: parent.valueName
        text: parent.value
        font.pixelSize: 16
        font.bold: true
    }
}
