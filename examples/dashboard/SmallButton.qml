// SPDX-License-Identifier: Apache-2.0
// A compact flat button for the cards (Material's default is 48 px tall).
import QtQuick
import QtQuick.Controls

Button {
    flat: true
    topInset: 0
    bottomInset: 0
    implicitHeight: 30
    leftPadding: 8
    rightPadding: 8
    font.pixelSize: 12
    font.capitalization: Font.MixedCase
}
