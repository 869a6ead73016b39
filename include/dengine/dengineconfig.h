// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengine_global.h>

#include <QtCore/QMap>
#include <QtCore/QString>

// Everything one node needs to know: who it is, who its peers are, where it keeps its data.
//
// A plain value: copy it, fill it in, validate() it (start() does too). Thread: any; not shared.
struct DENGINE_EXPORT DEngineConfig {
    NodeId nodeId = 0;
    // Every member of the cluster, this node included: id -> "host:port" it listens on for peers.
    // They found the cluster on a new data directory; after that the log's configuration (changed
    // by DEngine::addLearner and the others) is the membership, and these are only addresses.
    QMap<NodeId, QString> peers;
    // This node joins a running cluster instead of founding one. On a new data directory it starts
    // with no configuration, a voter of nothing, and waits for a member to add it (addLearner on
    // any member, with this node's address); `peers` names this node and at least one member (it
    // learns the others from the log and from their connections). A data directory that already
    // holds a log keeps its configuration: join only matters on the first start.
    bool join = false;
    // Where this node listens; empty means the address peers[nodeId] names.
    QString listenAddress;
    // Where this node serves clients, if it does ("host:port", a concrete port: dengined sets its
    // client port here). Once ready the node writes it into the cluster's replicated address book,
    // so a client that reaches any member learns where every member serves
    // (DEngineInterface::memberClientAddress). Empty: it serves none (an embedded node).
    QString clientAddress;
    // Shared by all members; connections from another cluster are refused.
    quint64 clusterId = 1;
    // The node's data directory (write-ahead log, snapshots). Created if missing; locked while open.
    QString dataDirectory;

    // Mutual TLS between nodes (TLS 1.3): the cluster's certificate authority (PEM), this node's
    // certificate, which must name it (dengine-ctl certs node makes one), and its private key.
    // Every connection is verified both ways against the authority, and a peer's certificate must
    // name the member the peer says it is. All three are required unless `insecure` is set.
    QString tlsCaFile;
    QString tlsCertificateFile;
    QString tlsKeyFile;
    // Plain TCP between nodes: anyone who can reach the port can write to the cluster. For demos
    // and tests on one machine only; the engine logs a warning at start.
    bool insecure = false;

    int tickIntervalMs = 100; // one Raft tick
    int electionTicks = 10;   // election timeout: [electionTicks, 2 x electionTicks) ticks
    int heartbeatTicks = 1;   // a leader's heartbeat period
    bool checkQuorum = true;  // a leader that loses its quorum steps down; needed for lease reads
    bool preVote = true;
    // Allows DEngine::Consistency::Lease reads: the leader answers them from its lease, without a
    // quorum round. The lease lasts (electionTicks - 2) ticks from a heartbeat round a majority
    // answered, measured on the boot-time clock (a paused or suspended node catches up before it
    // decides anything), and assumes no node's clock runs more than 12% faster than another's
    // (electionTicks 10). In exchange every node keeps a promise: for an election timeout after it
    // last heard the leader, and after it starts, it votes for nobody, itself included. So with
    // leaseReads a new leader is elected no sooner than an election timeout after the old one was
    // last heard (a stopping leader's hand-over is not delayed), and a leader that handed over
    // serves no lease read for the rest of its term. Off: Lease reads take the Linearizable path.
    bool leaseReads = false;

    int maxKeyBytes = 4096;
    int maxValueBytes = 1 << 20;
    int maxBatchOperations = 1024;
    int maxPendingRequests = 100000; // calls in flight at once; more fail with Busy at the call
    // Bytes of keys, values and commands in flight at once (from the call until its future
    // finishes); a call that would pass it fails with Busy at the call. One call alone may be larger.
    qint64 maxPendingBytes = 128LL << 20;
    int requestTimeoutMs = 10000;    // a call not answered by then fails with Timeout
    // A scan or range answers at most this many items and about this many bytes of keys and values
    // (at least one item), whatever its own limit; DEngineResult::nextKey says where the rest starts.
    int maxScanItems = 10000;
    qint64 maxScanBytes = 16LL << 20;
    int stopTimeoutMs = 5000;        // stop() returns within this, whatever the peers do

    // Watches: the node keeps the changes of its last watchHistoryRevisions applied entries, within
    // about watchHistoryBytes, so that a watch can start or resume from a past revision (and a slow
    // consumer catch up). A watch from before that finishes with Compacted. The history is the
    // node's own (not replicated): a node restarted or sent a snapshot keeps it from then on.
    qint64 watchHistoryRevisions = 100000;
    qint64 watchHistoryBytes = 64LL << 20;

    // Snapshots and log compaction. A node writes a snapshot of its state (the keys and the
    // application's, DEngineStateMachine::snapshot) once this many entries, or this many bytes of
    // entries, were applied since its last one; the state is frozen at once and written by a
    // helper thread while the node goes on. The log is then kept back to the snapshot before (a
    // damaged newest snapshot costs a longer replay, not the node) and older segments are dropped,
    // so disk use stays bounded under any steady load. A restart loads the newest snapshot and
    // replays only the log after it; a follower that fell behind the log gets the snapshot streamed.
    // 0 disables that trigger (both 0: the log is never compacted).
    qint64 snapshotEntries = 100000;
    qint64 snapshotBytes = 256LL << 20;
    // The size of a log segment file: compaction drops whole segments, so the log on disk is at
    // most about two snapshot intervals plus a segment or two.
    qint64 walSegmentBytes = 64LL << 20;

    // Empty when usable, else a sentence naming the offending field.
    QString validate() const;

    // Reads a JSON file:
    //   {"nodeId": 1, "clusterId": 7, "dataDirectory": "/var/lib/dengine/1",
    //    "peers": {"1": "127.0.0.1:7001", "2": "127.0.0.1:7002", "3": "127.0.0.1:7003"},
    //    "tickIntervalMs": 100, "electionTicks": 10, ...}   (every field of this struct, same names)
    // Unknown fields are an error, except "server", an object the standalone server (dengined)
    // reads for itself (its client address and limits); an embedded engine ignores it. nodeId and
    // clusterId above 2^53 (where a JSON number loses digits) must be written as strings
    // ("18446744073709551615"). On failure returns a default config and sets *error.
    static DEngineConfig fromFile(const QString &path, QString *error);
};
