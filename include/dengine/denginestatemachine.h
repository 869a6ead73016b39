// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengine_global.h>

#include <QtCore/QByteArray>

// An application's own replicated state, kept beside DEngine's key-value store in the same log.
//
// DEngine::propose(command) replicates an opaque command; once it is committed every node calls
// apply() with it, in log order, exactly once per proposal (retried forwards are deduplicated), and
// the proposer's future carries what apply() returned on its node. DEngine::query() answers from
// query() at the chosen consistency (Linearizable: after every command committed before the call
// has been applied here).
//
// Rules an implementation must keep, or its replicas diverge:
//   - apply() is deterministic: its effect depends only on the state and the command (no clocks,
//     randomness, or local files);
//   - every node of a cluster has the same implementation installed before start();
//   - the state starts empty at each start(); the engine then restore()s the newest snapshot, if
//     any, and applies the log after it.
//
// Threads: every function is called on the engine's worker thread, never concurrently; they must
// not block for long (they hold up the node) and must not call the DEngine. The object must outlive
// the engine it is given to.
class DENGINE_EXPORT DEngineStateMachine {
public:
    virtual ~DEngineStateMachine();
    // Applies one committed command at log index `index`; returns the result for the proposer.
    virtual QByteArray apply(quint64 index, const QByteArray &command) = 0;
    // Answers a read-only query from the state applied so far.
    virtual QByteArray query(const QByteArray &query) = 0;
    // The whole state after applying the command at `index`, as bytes, for a snapshot of the node
    // (the engine writes it with the keys, checksummed, on a helper thread; this call itself runs
    // on the worker, so a large state should be cheap to copy, e.g. implicitly shared).
    virtual QByteArray snapshot(quint64 index) = 0;
    // Replaces the whole state with what snapshot() gave at `index` (on this node or, for a node
    // that fell behind, on the leader). False when the bytes are not a state this implementation
    // can read: the engine then stops with an error rather than run on a wrong state.
    virtual bool restore(quint64 index, const QByteArray &state) = 0;
};
