// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dengine::sim {

// One client operation on the replicated key-value store, as the client saw it.
//
// Kinds, and what they do to the key's register:
//  * Put: sets it to `value`.
//  * Get: observes it: `found` and, when found, `value`.
//  * Delete: makes the key absent (a later Get sees found = false).
//  * Cas: compare-and-set. It holds when the register's value equals `expected` (or, with
//    `expectAbsent`, when the key is absent); then it sets the register to `value`. A completed Cas
//    reports `succeeded`: true means it held and wrote `value`, false means it did not hold (the
//    register differed from what it expected) and changed nothing.
// A Put, Delete or Cas whose outcome is Unknown (ret == Unknown) may have taken effect at any time
// after its call (a Cas only where it held), or never; its `succeeded` is ignored.
struct Operation {
    enum class Kind { Put, Get, Delete, Cas };
    Kind kind = Kind::Put;
    int client = 0;
    std::string key;
    std::string value;       // Put: the value written. Get: the value observed (if found). Cas: the value written if it holds
    bool found = false;      // Get: whether the key existed
    std::uint64_t call = 0;  // virtual time the client sent the request
    std::uint64_t ret = 0;   // virtual time the client got the answer; Unknown if it never did (timeout, crash)
    static constexpr std::uint64_t Unknown = UINT64_MAX;
    std::string expected;      // Cas: the value compared against (ignored with expectAbsent)
    bool expectAbsent = false; // Cas: it holds iff the key is absent
    bool succeeded = false;    // Cas, completed: whether it held and wrote `value`
};

struct LinearizabilityResult {
    bool ok = true;
    bool exhausted = false;     // the search hit its step budget: no verdict (treated as failure by callers)
    std::string explanation;    // on failure: the key, and the operations that could not be ordered, readable
    std::size_t operations = 0; // operations checked
};

// Checks that the history of a key-value store of independent registers is linearizable. Keys are
// checked independently (P-compositionality). A Put, Delete or Cas whose outcome is Unknown may have
// taken effect at any time after its call, or never; a Get with an Unknown outcome carries no
// information and is ignored. A key that was never written, or was deleted, reads as not found.
//
// Time intervals are closed: an operation that returns at time t and one that is called at time t
// are concurrent (either order is allowed), so equal virtual times never cause a false alarm.
//
// `maxSearchSteps` bounds the whole check (all keys together). When it runs out, or the search's
// memo table outgrows its memory cap, the result is `exhausted` (and not `ok`) unless some key was
// already found not linearizable, which is a verdict in itself. `operations` counts the operations
// of `history` that were checked (all but the ignored Gets with an Unknown outcome).
LinearizabilityResult checkLinearizable(const std::vector<Operation> &history,
                                        std::uint64_t maxSearchSteps = 50'000'000);

// One line for an operation, as explanations print it, e.g.
// `client 2 Get("k1") -> "v7" [call 120, ret 135]`, `client 1 Put("k1", "v9") [call 80, ret ?]`,
// `client 3 Delete("k1") [call 90, ret 95]` or `client 4 Cas("k1", "v7" -> "v8") -> failed [call 96, ret 99]`
// (`absent -> "v8"` with expectAbsent; `-> ok` when it succeeded, `-> ?` when its outcome is unknown).
std::string describeOperation(const Operation &op);

} // namespace dengine::sim
