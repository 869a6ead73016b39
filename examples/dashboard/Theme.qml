// SPDX-License-Identifier: Apache-2.0
// The dashboard's colours and spacing, light or dark (the window sets `dark` from the system's
// Material theme). Every component takes one of these, so that the whole window changes together.
import QtQuick

QtObject {
    property bool dark: false
    property color foreground: dark ? "#e6e9ee" : "#1d2330"
    property color accent: "#009688"
    readonly property color muted: dark ? "#9aa4b2" : "#5f6b7a"
    readonly property color card: dark ? "#272c35" : "#ffffff"
    readonly property color panel: dark ? "#1f232a" : "#f3f5f8"
    readonly property color border: dark ? "#3a414c" : "#d5dbe3"
    readonly property color good: "#1f9d55"
    readonly property color warn: dark ? "#f59e0b" : "#c2410c"
    readonly property color error: dark ? "#f87171" : "#c62828"
    readonly property color errorBackground: dark ? "#3b1f22" : "#fdecea"
    readonly property color series1: accent
    readonly property color series2: dark ? "#fbbf24" : "#d97706"
    readonly property int spacing: 12
    readonly property int radius: 8
}
