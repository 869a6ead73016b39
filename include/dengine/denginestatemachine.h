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
//   - the state starts empty at each start(): the engine applies the whole log again (there are no
//     snapshots of application state yet).
//
// Threads: both functions are called on the engine's worker thread, never concurrently; they must
// not block (they hold up the node) and must not call the DEngine. The object must outlive the
// engine it is given to.
class DENGINE_EXPORT DEngineStateMachine {
public:
    virtual ~DEngineStateMachine();
    // Applies one committed command at log index `index`; returns the result for the proposer.
    virtual QByteArray apply(quint64 index, const QByteArray &command) = 0;
    // Answers a read-only query from the state applied so far.
    virtual QByteArray query(const QByteArray &query) = 0;
};
