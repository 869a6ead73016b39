// SPDX-License-Identifier: Apache-2.0
#include "server/servermetrics.h"

#include <dengine/dengine.h>

#include <cmath>

namespace dengine::server {

void ServerMetrics::record(const char *call, const char *door, double seconds, bool ok)
{
    Histogram &h = m_calls[{call, door}];
    std::size_t b = 0;
    while (b < LatencyBounds.size() && seconds > LatencyBounds[b])
        ++b;
    ++h.buckets[b];
    h.sum += seconds;
    ++h.count;
    if (!ok)
        ++h.failed;
}

namespace {

void metric(QByteArray &out, const char *name, const char *type, const char *help)
{
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(QByteArray &out, const char *name, double value, const QByteArray &labels = {})
{
    out += name;
    if (!labels.isEmpty())
        out += '{' + labels + '}';
    out += ' ';
    out += std::isinf(value) ? QByteArray("+Inf") : QByteArray::number(value, 'g', 17);
    out += '\n';
}

QByteArray bound(double b) { return std::isinf(b) ? QByteArray("+Inf") : QByteArray::number(b, 'g', 6); }

} // namespace

QByteArray ServerMetrics::prometheus(const DEngine &e) const
{
    QByteArray out;
    out.reserve(8192);
    const auto gauge = [&](const char *name, const char *help, double v) {
        metric(out, name, "gauge", help);
        sample(out, name, v);
    };
    const auto counter = [&](const char *name, const char *help, double v) {
        metric(out, name, "counter", help);
        sample(out, name, v);
    };
    gauge("dengine_node_id", "This member's node id.", static_cast<double>(e.nodeId()));
    gauge("dengine_raft_term", "The current Raft term.", static_cast<double>(e.currentTerm()));
    gauge("dengine_raft_leader", "The leader this member knows (0: none).", static_cast<double>(e.currentLeader()));
    gauge("dengine_raft_is_leader", "1 when this member leads.", e.role() == DEngine::Role::Leader ? 1 : 0);
    gauge("dengine_raft_commit_index", "The commit index this member knows.", static_cast<double>(e.commitIndex()));
    gauge("dengine_raft_applied_index", "The index this member applied.", static_cast<double>(e.appliedIndex()));
    gauge("dengine_ready", "1 once ready() (a leader known, its first entry applied), until stopping().", e.isReady() ? 1 : 0);
    gauge("dengine_members", "Members of the applied configuration.", static_cast<double>(e.members().size()));
    gauge("dengine_learners", "Learners of the applied configuration.", static_cast<double>(e.learners().size()));

    const DEngineMetrics m = e.metrics();
    counter("dengine_proposals_committed_total", "Writes and membership calls finished Ok on this member.", static_cast<double>(m.proposalsCommitted));
    counter("dengine_proposals_failed_total", "Writes and membership calls finished with another status.", static_cast<double>(m.proposalsFailed));
    counter("dengine_wal_batches_total", "Group-commit rounds of the write-ahead log.", static_cast<double>(m.walBatches));
    counter("dengine_wal_entries_total", "Entries written to the write-ahead log.", static_cast<double>(m.walEntries));
    metric(out, "dengine_wal_fsync_duration_seconds", "histogram", "fsync latency of the write-ahead log.");
    const QList<double> bounds = DEngineMetrics::fsyncBucketBounds();
    for (qsizetype i = 0; i < bounds.size() && i < m.fsyncBuckets.size(); ++i)
        sample(out, "dengine_wal_fsync_duration_seconds_bucket", static_cast<double>(m.fsyncBuckets[i]), "le=\"" + bound(bounds[i]) + '"');
    sample(out, "dengine_wal_fsync_duration_seconds_sum", m.fsyncSecondsTotal);
    sample(out, "dengine_wal_fsync_duration_seconds_count", static_cast<double>(m.fsyncCount));
    counter("dengine_snapshots_taken_total", "Snapshots this member wrote.", static_cast<double>(m.snapshotsTaken));
    counter("dengine_snapshots_installed_total", "Snapshots received from a leader and installed.", static_cast<double>(m.snapshotsInstalled));
    counter("dengine_snapshots_sent_total", "Snapshots streamed to followers.", static_cast<double>(m.snapshotsSent));
    counter("dengine_peer_frames_sent_total", "Frames sent to other members.", static_cast<double>(m.peerFramesSent));
    counter("dengine_peer_frames_received_total", "Frames received from other members.", static_cast<double>(m.peerFramesReceived));
    counter("dengine_peer_connections_accepted_total", "Inbound peer connections past the handshake.", static_cast<double>(m.peerConnectionsAccepted));
    counter("dengine_peer_connections_refused_total", "Peer connections refused (strangers, bad handshakes, limits).",
            static_cast<double>(m.peerConnectionsRefused));
    counter("dengine_peer_messages_dropped_total", "Messages dropped on full peer queues.", static_cast<double>(m.peerMessagesDropped));

    metric(out, "dengine_client_connections", "gauge", "Client connections open, by door (client protocol, HTTP gateway).");
    for (const auto &[door, n] : m_connections)
        sample(out, "dengine_client_connections", static_cast<double>(n), "door=\"" + QByteArray(door.c_str()) + '"');
    metric(out, "dengine_request_duration_seconds", "histogram", "Time from a request's arrival to its answer, by call and door.");
    for (const auto &[key, h] : m_calls) {
        const QByteArray labels = "call=\"" + QByteArray(key.first.c_str()) + "\",door=\"" + QByteArray(key.second.c_str()) + '"';
        quint64 cumulative = 0;
        for (std::size_t i = 0; i < h.buckets.size(); ++i) {
            cumulative += h.buckets[i];
            const double b = i < LatencyBounds.size() ? LatencyBounds[i] : INFINITY;
            sample(out, "dengine_request_duration_seconds_bucket", static_cast<double>(cumulative), labels + ",le=\"" + bound(b) + '"');
        }
        sample(out, "dengine_request_duration_seconds_sum", h.sum, labels);
        sample(out, "dengine_request_duration_seconds_count", static_cast<double>(h.count), labels);
    }
    metric(out, "dengine_requests_failed_total", "counter", "Requests answered with a status other than Ok or NotFound, by call and door.");
    for (const auto &[key, h] : m_calls)
        sample(out, "dengine_requests_failed_total", static_cast<double>(h.failed),
               "call=\"" + QByteArray(key.first.c_str()) + "\",door=\"" + QByteArray(key.second.c_str()) + '"');
    return out;
}

} // namespace dengine::server
