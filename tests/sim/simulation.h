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
    Linearizability = 1u << 5,    // the client history has a linearization
    All = (1u << 6) - 1,
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
    // message size limits, inflight windows, pre-vote/check-quorum and the read mode. When false,
    // the fields below are used as they are.
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
    bool faults = true; // nemesis on (partitions, crashes, loss); off for a calm cluster
    // A fault every few ticks and quick restarts instead of one every 20-170 ticks: many more
    // elections with half-replicated tails, the ground where commit-rule bugs show (Figure 8).
    bool intenseFaults = false;

    int clients = 4;
    int keys = 3;
    std::uint64_t clientStartTick = 5; // clients start between this tick and 20 ticks later

    // Nodes (the first ones) that stay down when the faults heal. A minority down must not stop
    // progress; a majority down must be reported by the liveness check.
    int keepDownAfterHeal = 0;

    raft::InjectedBugs bugs; // proves the checks can fail; see tests
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
    std::uint64_t linearizableReads = 0;
    std::uint64_t staleReads = 0;
    std::uint64_t healTicks = 0; // ticks from healing to the liveness write applied everywhere
};

SimResult runSimulation(const SimOptions &options);

// The command line that replays a seed, for failure messages.
std::string replayCommand(const SimOptions &options);

} // namespace dengine::sim
