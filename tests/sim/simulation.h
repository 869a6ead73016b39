// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/config.h"
#include "raft/types.h"

#include <cstdint>
#include <functional>
#include <string>

namespace dengine::sim {

// The checks a run makes; all are on by default. Tests switch some off to prove that each of the
// others catches a known bug on its own.
namespace Check {
enum : unsigned {
    Node = 1u << 0,               // per node: term/commit monotonic, commit within log, one vote per term
    ElectionSafety = 1u << 1,     // at most one leader per term
    LogMatching = 1u << 2,        // same (index, term) => same entry and same history
    StateMachineSafety = 1u << 3, // no two nodes apply different entries at an index
    LeaderCompleteness = 1u << 4, // a new leader holds every applied entry
    Linearizability = 1u << 5,    // the client history has a linearization (lease reads included)
    DurableLog = 1u << 6,         // what the core holds as durable is on the simulated disk, as it wrote it
    LeaseSafety = 1u << 7,        // no node is lease-readable once an entry of a later term is committed
    All = (1u << 8) - 1,
};
}

// One simulated run: a whole cluster, its disks, its network and its clients on one thread, in
// virtual time, driven by a single seed. Everything random (fault schedule, delays, drops, election
// timeouts, client behaviour) is drawn from generators seeded from `seed`, so a run is a pure
// function of its options: the same options give the same trace hash.
struct SimOptions {
    std::uint64_t seed = 1;

    // The fault phase lasts this many ticks of virtual time; then faults heal and the cluster must
    // make progress (a write applied on every node) within healBoundTicks.
    std::uint64_t faultTicks = 1200;
    std::uint64_t healBoundTicks = 300;

    // When true (the default), the seed also chooses the cluster size (3 or 5), the fault mix,
    // message size limits, inflight windows, pre-vote/check-quorum, the read mode (Safe, LeaseBased
    // or LeaseOnRequest) and the disk's speed. When false, the fields below are used as they are.
    bool randomizeProfile = true;
    int nodes = 3;
    double dropRate = 0.02;
    double duplicateRate = 0.02;
    bool preVote = true;
    bool checkQuorum = true;
    raft::ReadOnlyOption readOnlyOption = raft::ReadOnlyOption::Safe;
    std::uint64_t maxSizePerMsg = 4096;
    double maxDelayTicks = 1.5; // message delay is uniform up to this
    std::size_t maxInflightMsgs = 8;
    double maxSyncTicks = 0.62; // a disk sync takes up to this long
    bool groupCommit = true;    // one sync covers every queued write (else a random part of them)
    bool lateAcks = false;      // durability acknowledgements reach the core late, in any order
    bool faults = true; // nemesis on (partitions, crashes, loss); off for a calm cluster
    // A fault every few ticks and quick restarts instead of one every 20-170 ticks: many more
    // elections with half-replicated tails, the ground where commit-rule bugs show (Figure 8).
    bool intenseFaults = false;
    // Which part of the fault space to search. Leases: lease modes only, networks fast enough for a
    // lease to matter, and the faults that set a lease beside a new leader (lease splits, stale
    // TimeoutNows, transfers cut short, pauses, quick restarts) drawn far more often.
    enum class Focus { Everything, Leases };
    Focus focus = Focus::Everything;

    int clients = 4;
    int keys = 3;
    std::uint64_t clientStartTick = 5; // clients start between this tick and 20 ticks later

    // Nodes (the first ones) that stay down when the faults heal. A minority down must not stop
    // progress; a majority down must be reported by the liveness check.
    int keepDownAfterHeal = 0;

    // Snapshots and log compaction: a node snapshots its state machine every `snapshotEvery` applied
    // entries (0: never) and compacts its log to `snapshotKeep` entries behind the snapshot; a leader
    // then sends its snapshot to a follower that needs compacted entries. With a randomized profile
    // the seed chooses both, or no snapshots at all unless `snapshots` is set.
    std::uint64_t snapshotEvery = 0;
    std::uint64_t snapshotKeep = 0;
    bool snapshots = false;

    // Membership changes: `spares` more nodes run without a configuration, and every 30-120 ticks
    // of the fault phase the leader is asked to add one as a learner, promote a learner, remove a
    // voter (the leader too), remove a learner or replace a voter (joint consensus). With a
    // randomized profile the seed chooses whether, unless `membership` is set.
    bool membership = false;
    int spares = 2;

    raft::InjectedBugs bugs; // proves the checks can fail; see tests
    // A runtime bug: a node's snapshot at applied index i holds the state before entry i.
    bool snapshotOmitsLastEntry = false;
    // A runtime bug rather than a core one: a paused node is not given the ticks it missed (what a
    // plain QTimer does), so a leader counts its lease from a stale tick.
    bool noTickCatchUp = false;
    unsigned checks = Check::All;

    // Scripted failover for the demo: crash the leader at this tick (0 = never), restart it later.
    std::uint64_t crashLeaderAtTick = 0;

    // Observers. `narrate` gets human-readable lifecycle lines (elections, commits, faults);
    // `trace` gets one line per simulated event (very verbose; for replaying a failing seed).
    std::function<void(const std::string &)> narrate;
    std::function<void(const std::string &)> trace;
};

struct SimResult {
    bool ok = true;
    std::string failure;     // the first violation, with the virtual time it happened at
    std::string recentTrace; // the last events before the failure, for a first look
    std::uint64_t traceHash = 0;

    // What the run did, for reports and to make sure a sweep is not vacuous.
    int nodes = 0;
    std::string profile;
    std::uint64_t events = 0;
    std::uint64_t messagesDelivered = 0;
    std::uint64_t elections = 0; // distinct (term, leader) pairs seen
    raft::Term maxTerm = 0;
    raft::Index maxCommit = 0;
    std::uint64_t crashes = 0;
    std::uint64_t partitions = 0;
    std::uint64_t transfers = 0; // leadership handed over by a leader
    std::uint64_t opsOk = 0;
    std::uint64_t opsFailed = 0;  // definite failures (no leader, dropped read): not in the history
    std::uint64_t opsUnknown = 0; // timed out: may or may not have taken effect
    std::uint64_t linearizableReads = 0; // served reads in the history (lease reads included)
    std::uint64_t leaseReads = 0;        // of which answered from a leader's lease
    std::uint64_t staleReads = 0;
    std::uint64_t pauses = 0;            // nodes paused (stopped and resumed)
    std::uint64_t diskStalls = 0;
    std::uint64_t unreachableReports = 0;
    std::uint64_t flipFlops = 0;         // started, and carried through to the old leader's return
    std::uint64_t flipFlopsCompleted = 0;
    std::uint64_t healTicks = 0; // ticks from healing to the liveness write applied everywhere
    std::uint64_t snapshotsTaken = 0;     // made by nodes of their own state machines
    std::uint64_t snapshotsSent = 0;      // Snapshot messages leaders sent
    std::uint64_t snapshotsInstalled = 0; // received snapshots that replaced a follower's log
    std::uint64_t confChangesProposed = 0; // membership changes a leader took
    std::uint64_t confChangesApplied = 0;  // distinct configurations committed and applied
};

SimResult runSimulation(const SimOptions &options);

// The command line that replays a seed, for failure messages.
std::string replayCommand(const SimOptions &options);

} // namespace dengine::sim
