// SPDX-License-Identifier: Apache-2.0
// dengine-sim: runs the deterministic cluster simulation over a range of seeds.
//
//   dengine-sim --seeds 1-500            a sweep (what CI runs, in shards)
//   dengine-sim --seeds 1-100000 --jobs 2 --progress   a soak
//   dengine-sim --seed 42 --trace        replay one seed, printing every event
//   dengine-sim --seed 42 --narrate      replay one seed, printing elections, faults, commits
//   dengine-sim --seed 42 --bug read-without-quorum   with a known bug switched on
//   dengine-sim --seeds 1-2000 --bug campaign-in-restart-quarantine   how soon the sweep catches it
//
// Exit status 0 when every seed passed, 1 when any failed (each failure prints its seed and the
// command that replays it), 2 for bad arguments.
#include "simulation.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace dengine::sim;

namespace {

void usage()
{
    std::cerr << "usage: dengine-sim [--seed N | --seeds A-B] [--ticks N] [--heal-bound N] [--jobs N]\n"
                 "                   [--bug NAME]... [--no-tick-catch-up] [--snapshot-omits-last-entry]\n"
                 "                   [--snapshots] [--membership] [--first-failure]\n"
                 "                   [--intense | --leases] [--trace] [--narrate] [--progress] [--quiet]\n"
                 "bugs (each breaks Raft on purpose, to show the checks catch it):";
    for (const dengine::raft::InjectedBugName &b : dengine::raft::InjectedBugNames)
        std::cerr << ' ' << b.name;
    std::cerr << "\n--no-tick-catch-up: a paused node is not given the ticks it missed (a runtime bug)\n"
                 "--snapshot-omits-last-entry: a snapshot holds the state before its last entry (a runtime bug)\n"
                 "--snapshots: every seed takes snapshots and compacts (the seed chooses how often)\n"
                 "--membership: every seed changes its membership (adds, promotes, removes, replaces nodes)\n"
                 "--first-failure: stop at the first failing seed and report it\n";
}

bool parseRange(const std::string &text, std::uint64_t &lo, std::uint64_t &hi)
{
    const auto dash = text.find('-');
    char *end = nullptr;
    lo = std::strtoull(text.c_str(), &end, 10);
    if (dash == std::string::npos) {
        hi = lo;
        return *end == '\0' && lo > 0;
    }
    hi = std::strtoull(text.c_str() + dash + 1, &end, 10);
    return *end == '\0' && lo > 0 && hi >= lo;
}

} // namespace

int main(int argc, char **argv)
{
    SimOptions base;
    std::uint64_t lo = 1, hi = 1;
    bool trace = false, narrate = false, progress = false, quiet = false, firstFailure = false;
    unsigned jobs = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--seed" || arg == "--seeds") {
            if (!parseRange(value(), lo, hi)) {
                std::cerr << "dengine-sim: bad seed range (want N or A-B, seeds start at 1)\n";
                return 2;
            }
        } else if (arg == "--ticks") {
            base.faultTicks = std::strtoull(value().c_str(), nullptr, 10);
        } else if (arg == "--heal-bound") {
            base.healBoundTicks = std::strtoull(value().c_str(), nullptr, 10);
        } else if (arg == "--jobs") {
            jobs = static_cast<unsigned>(std::max(1L, std::strtol(value().c_str(), nullptr, 10)));
        } else if (arg == "--bug") {
            const std::string bug = value();
            bool known = false;
            for (const dengine::raft::InjectedBugName &b : dengine::raft::InjectedBugNames) {
                if (bug == b.name) {
                    base.bugs.*b.flag = true;
                    known = true;
                }
            }
            if (!known) {
                std::cerr << "dengine-sim: unknown bug '" << bug << "'\n";
                usage();
                return 2;
            }
        } else if (arg == "--no-tick-catch-up") {
            base.noTickCatchUp = true;
        } else if (arg == "--snapshot-omits-last-entry") {
            base.snapshotOmitsLastEntry = true;
        } else if (arg == "--snapshots") {
            base.snapshots = true;
        } else if (arg == "--membership") {
            base.membership = true;
        } else if (arg == "--first-failure") {
            firstFailure = true;
        } else if (arg == "--figure8") {
            // The profile tests/sim uses for the old-term commit bug: see tst_simulation.cpp.
            base.randomizeProfile = false;
            base.intenseFaults = true;
            base.nodes = 3;
            base.maxSizePerMsg = 1;
            base.maxInflightMsgs = 16;
            base.maxDelayTicks = std::strtod(value().c_str(), nullptr);
        } else if (arg == "--nodes") {
            base.nodes = static_cast<int>(std::strtol(value().c_str(), nullptr, 10));
        } else if (arg == "--slow-disk") {
            base.maxSyncTicks = std::strtod(value().c_str(), nullptr);
            base.groupCommit = false;
            base.lateAcks = true;
        } else if (arg == "--read-only") {
            const std::string v = value();
            base.readOnlyOption = v == "lease-based" ? dengine::raft::ReadOnlyOption::LeaseBased
                : v == "lease-on-request"            ? dengine::raft::ReadOnlyOption::LeaseOnRequest
                                                     : dengine::raft::ReadOnlyOption::Safe;
        } else if (arg == "--without-check") {
            // Switch one check off, to see whether the others catch a bug too.
            const std::string c = value();
            const std::pair<const char *, unsigned> names[] = {{"node", Check::Node}, {"election-safety", Check::ElectionSafety},
                {"log-matching", Check::LogMatching}, {"state-machine-safety", Check::StateMachineSafety},
                {"leader-completeness", Check::LeaderCompleteness}, {"linearizability", Check::Linearizability},
                {"durable-log", Check::DurableLog}, {"lease-safety", Check::LeaseSafety}};
            bool known = false;
            for (const auto &[name, bit] : names)
                if (c == name) {
                    base.checks &= ~bit;
                    known = true;
                }
            if (!known) {
                std::cerr << "dengine-sim: unknown check '" << c << "'\n";
                return 2;
            }
        } else if (arg == "--leases") {
            base.focus = SimOptions::Focus::Leases;
        } else if (arg == "--intense") {
            base.intenseFaults = true;
        } else if (arg == "--trace") {
            trace = true;
        } else if (arg == "--narrate") {
            narrate = true;
        } else if (arg == "--progress") {
            progress = true;
        } else if (arg == "--quiet") {
            quiet = true;
        } else {
            usage();
            return 2;
        }
    }
    if ((trace || narrate) && hi != lo) {
        std::cerr << "dengine-sim: --trace and --narrate replay a single seed\n";
        return 2;
    }
    if (trace)
        base.trace = [](const std::string &line) { std::cout << line << '\n'; };
    if (narrate)
        base.narrate = [](const std::string &line) { std::cout << line << '\n'; };

    const auto started = std::chrono::steady_clock::now();
    std::mutex mutex;
    std::atomic<std::uint64_t> next{lo};
    std::uint64_t done = 0, failed = 0, elections = 0, ops = 0, unknown = 0, reads = 0, crashes = 0, partitions = 0, transfers = 0;
    std::uint64_t leaseReads = 0, pauses = 0, stalls = 0, unreachable = 0, flips = 0, flipsDone = 0;
    std::uint64_t snapsTaken = 0, snapsSent = 0, snapsInstalled = 0, confProposed = 0, confApplied = 0;
    std::uint64_t maxHeal = 0;
    const std::uint64_t total = hi - lo + 1;

    const auto worker = [&] {
        for (std::uint64_t seed = next++; seed <= hi; seed = next++) {
            SimOptions opts = base;
            opts.seed = seed;
            const SimResult r = runSimulation(opts);
            std::lock_guard lock(mutex);
            ++done;
            elections += r.elections;
            ops += r.opsOk;
            unknown += r.opsUnknown;
            reads += r.linearizableReads;
            crashes += r.crashes;
            partitions += r.partitions;
            transfers += r.transfers;
            leaseReads += r.leaseReads;
            pauses += r.pauses;
            stalls += r.diskStalls;
            unreachable += r.unreachableReports;
            flips += r.flipFlops;
            flipsDone += r.flipFlopsCompleted;
            snapsTaken += r.snapshotsTaken;
            snapsSent += r.snapshotsSent;
            snapsInstalled += r.snapshotsInstalled;
            confProposed += r.confChangesProposed;
            confApplied += r.confChangesApplied;
            maxHeal = std::max(maxHeal, r.healTicks);
            if (!r.ok) {
                ++failed;
                if (firstFailure)
                    next = hi + 1; // no new seeds: the ones running finish
                std::cout << "FAIL seed " << seed << " [" << r.profile << "]\n  " << r.failure << "\n  replay: "
                          << replayCommand(opts) << "\n  trace hash " << std::hex << r.traceHash << std::dec << "\n"
                          << "  last events:\n"
                          << r.recentTrace << std::flush;
            } else if (!quiet && total <= 20) {
                std::cout << "ok seed " << seed << " [" << r.profile << "] elections " << r.elections << ", max term "
                          << r.maxTerm << ", commit " << r.maxCommit << ", ops " << r.opsOk << " ok / " << r.opsUnknown
                          << " unknown / " << r.opsFailed << " failed, reads " << r.linearizableReads << " linearizable ("
                          << r.leaseReads << " from a lease) + " << r.staleReads << " stale, crashes " << r.crashes
                          << ", pauses " << r.pauses << ", partitions " << r.partitions
                          << ", healed in " << r.healTicks << " ticks, trace hash " << std::hex << r.traceHash << std::dec
                          << '\n';
            }
            if (progress && done % 1000 == 0) {
                const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
                std::cerr << "dengine-sim: " << done << "/" << total << " seeds, " << failed << " failed, " << secs << " s\n";
            }
        }
    };
    std::vector<std::thread> threads;
    for (unsigned j = 1; j < jobs; ++j)
        threads.emplace_back(worker);
    worker();
    for (auto &t : threads)
        t.join();

    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << "seeds " << lo << "-" << hi << ": " << (done - failed) << " passed, " << failed << " failed in " << secs
              << " s (elections " << elections << ", client ops " << ops << " ok + " << unknown << " unknown, linearizable reads "
              << reads << " (" << leaseReads << " from a lease), crashes " << crashes << ", pauses " << pauses << ", partitions " << partitions
              << ", unreachable reports " << unreachable << ", disk stalls " << stalls << ", flip-flops " << flipsDone << "/" << flips
              << ", leadership transfers " << transfers << ", snapshots " << snapsTaken << " taken, " << snapsSent << " sent, "
              << snapsInstalled << " installed, membership changes " << confProposed << " proposed, " << confApplied << " applied"
              << ", slowest recovery " << maxHeal << " ticks)\n";
    // A sweep that exercised nothing proves nothing.
    if (failed == 0 && total >= 20
        && (elections < total || reads == 0 || crashes == 0 || partitions == 0
            || (base.randomizeProfile && total >= 200 && (leaseReads == 0 || pauses == 0 || transfers == 0)))) {
        std::cout << "dengine-sim: the sweep was vacuous (no elections, reads, lease reads, crashes, pauses, transfers or partitions)\n";
        return 1;
    }
    return failed == 0 ? 0 : 1;
}
