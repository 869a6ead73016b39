// SPDX-License-Identifier: Apache-2.0
// Commits per second (from the engine's commit index, sampled every second) and the latency of a
// linearizable probe read (one a second), over the last two minutes. A Canvas: two small series
// need no chart library (Qt Charts would add a package and a widgets dependency).
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts

Rectangle {
    id: chart
    property QtObject theme
    property var engine
    property int capacity: 120
    property var rates: []
    property var latencies: []
    property real lastCommit: -1
    property double lastSample: 0
    property bool probing: false
    readonly property real currentRate: rates.length ? rates[rates.length - 1] : 0
    readonly property real currentLatency: latencies.length ? latencies[latencies.length - 1] : NaN

    color: theme.card
    border.color: theme.border
    radius: theme.radius

    onEngineChanged: {
        rates = []
        latencies = []
        lastCommit = -1
        canvas.requestPaint()
    }

    function push(series, value) {
        series.push(value)
        if (series.length > capacity)
            series.splice(0, series.length - capacity)
        return series
    }
    function sample() {
        if (!engine)
            return
        const now = Date.now()
        const commit = engine.commitIndex
        if (lastCommit >= 0 && commit >= lastCommit && now > lastSample)
            rates = push(rates, (commit - lastCommit) * 1000 / (now - lastSample))
        lastCommit = commit
        lastSample = now
        if (!probing && engine.isReady) {
            probing = true
            const probed = engine
            probed.get("__dashboard/probe").then(r => {
                chart.probing = false
                if (probed === chart.engine)
                    chart.latencies = chart.push(chart.latencies, r.ok || r.statusName === "NotFound" ? r.elapsedMs : NaN)
                canvas.requestPaint()
            })
        }
        canvas.requestPaint()
    }
    function niceMax(values, floor) {
        let m = floor
        for (const v of values)
            if (isFinite(v))
                m = Math.max(m, v)
        if (m <= 0)
            return 1
        const p = Math.pow(10, Math.floor(Math.log10(m)))
        for (const f of [1, 2, 5, 10])
            if (m <= f * p)
                return f * p
        return 10 * p
    }

    Timer {
        interval: 1000
        repeat: true
        running: chart.engine !== null && chart.engine !== undefined && chart.engine.running
        onTriggered: chart.sample()
    }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: 12
        spacing: 6
        RowLayout {
            spacing: 16
            Label {
                text: qsTr("Throughput and latency")
                font.bold: true
            }
            Item { Layout.fillWidth: true }
            Rectangle { width: 12; height: 3; color: chart.theme.series1 }
            Label {
                objectName: "rateLabel"
                text: qsTr("%1 commits/s").arg(Math.round(chart.currentRate))
            }
            Rectangle { width: 12; height: 3; color: chart.theme.series2 }
            Label {
                objectName: "latencyLabel"
                text: isNaN(chart.currentLatency) ? qsTr("read latency –") : qsTr("read latency %1 ms").arg(chart.currentLatency.toFixed(2))
            }
        }
        Canvas {
            id: canvas
            Layout.fillWidth: true
            Layout.fillHeight: true
            renderStrategy: Canvas.Cooperative
            onPaint: {
                const ctx = getContext("2d")
                ctx.reset()
                const left = 48, right = 60, top = 8, bottom = 18
                const w = width - left - right, h = height - top - bottom
                if (w <= 0 || h <= 0)
                    return
                const rateMax = chart.niceMax(chart.rates, 100), latMax = chart.niceMax(chart.latencies, 1)
                ctx.font = "11px sans-serif"
                ctx.lineWidth = 1
                ctx.strokeStyle = chart.theme.border
                ctx.fillStyle = chart.theme.muted
                for (let i = 0; i <= 4; ++i) {
                    const y = top + h * i / 4
                    ctx.beginPath()
                    ctx.moveTo(left, y)
                    ctx.lineTo(left + w, y)
                    ctx.stroke()
                    ctx.textAlign = "right"
                    ctx.fillText(String(Math.round(rateMax * (4 - i) / 4)), left - 6, y + 4)
                    ctx.textAlign = "left"
                    ctx.fillText(String(Math.round(latMax * (4 - i) / 4 * 100) / 100) + " ms", left + w + 6, y + 4)
                }
                ctx.textAlign = "left"
                ctx.fillText(qsTr("%1 s ago").arg(chart.capacity), left, top + h + 14)
                ctx.textAlign = "right"
                ctx.fillText(qsTr("now"), left + w, top + h + 14)
                const draw = (series, max, colour) => {
                    ctx.strokeStyle = colour
                    ctx.lineWidth = 2
                    ctx.beginPath()
                    let pen = false
                    for (let i = 0; i < series.length; ++i) {
                        const x = left + w * (chart.capacity - series.length + i) / (chart.capacity - 1)
                        if (!isFinite(series[i])) {
                            pen = false
                            continue
                        }
                        const y = top + h * (1 - Math.min(series[i], max) / max)
                        if (pen)
                            ctx.lineTo(x, y)
                        else
                            ctx.moveTo(x, y)
                        pen = true
                    }
                    ctx.stroke()
                }
                draw(chart.rates, rateMax, chart.theme.series1)
                draw(chart.latencies, latMax, chart.theme.series2)
            }
        }
    }
}
