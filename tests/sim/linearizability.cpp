// SPDX-License-Identifier: Apache-2.0
#include "linearizability.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string_view>
#include <utility>

// How the check works
// -------------------
// Keys are independent registers, so a history is linearizable exactly when the sub-history of every
// key is (P-compositionality), and each key is searched on its own.
//
// For one key, the search is Wing & Gong's: the operations' call and return events are put in time
// order in a doubly linked list; the search walks it from the front, and each call it meets is an
// operation that may go next in the linearization (nothing that must come before it is still
// unplaced). If the register accepts it (a Put always fits; a Get fits when it observed what the
// register holds), the operation is placed: its two events are unlinked from the list and the walk
// starts again from the front. Meeting a return event means an operation has finished while still
// unplaced: a dead end, so the last placement is undone and the walk goes on after it.
//
// Lowe's memoization makes this fast in practice: a configuration is fully described by the set of
// placed operations (a bitset) and the register's value, and a configuration that was explored once
// and failed fails again, so it is never explored twice. The number of configurations reachable is
// then bounded by the "downward closed" sets of operations times the register values, roughly
// n * 2^c * v for n operations with at most c of them concurrent, instead of the n! orders.
//
// Two prunings on top, both exact:
//  * A Get that fits the register when the walk meets it is placed without trying alternatives
//    (`forced`): reads do not change the register and everything that must precede this one is
//    already placed, so any linearization from here can be rewritten to start with it.
//  * A Put whose outcome is unknown and whose value no Get of the key observed is left out: it can
//    always be placed at the very end (its return is at infinity), where it changes nothing.
//
// The set hash is kept incrementally (Zobrist: one random word per operation, xor-ed in and out), so
// a step costs O(1) plus one probe of the memo table, which compares the bitset words on a hit.

namespace dengine::sim {
namespace {

constexpr std::uint64_t kUnknown = Operation::Unknown;
// The memo table of one key may grow to this size before the check gives up with no verdict.
constexpr std::size_t kCacheByteLimit = std::size_t{1} << 30;
// How much of the longest order found, and of the stuck operations, an explanation lists.
constexpr std::size_t kOrderShown = 12;
constexpr std::size_t kCandidatesShown = 16;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

std::uint64_t mix64(std::uint64_t x) {
    // splitmix64's finalizer: a cheap bijection with good avalanche.
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::string quoted(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            out += "\\x";
            out += kHex[u >> 4];
            out += kHex[u & 0xf];
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::string timeText(std::uint64_t t) { return t == kUnknown ? std::string("?") : std::to_string(t); }

// A register value: 0 is "not found" (never written), n > 0 the n-th distinct value written to the key.
using ValueId = std::uint32_t;

struct KeyOp {
    bool put = true;
    ValueId value = 0;      // Put: the value written; Get: the value observed (0: not found)
    std::uint64_t call = 0;
    std::uint64_t ret = kUnknown; // kUnknown only for a Put whose outcome is unknown
    std::size_t index = 0;  // position in the checked history
    bool pending() const { return ret == kUnknown; }
};

// The set of (placed operations, register value) configurations already explored: open addressing
// over entries stored back to back in one arena (the bitset's words, then the value).
class ConfigCache {
public:
    enum class Insert { Added, Present, Full };

    explicit ConfigCache(std::size_t bitWords) : m_words(bitWords), m_slots(1024, 0) {}

    Insert insert(const std::vector<std::uint64_t> &bits, ValueId value, std::uint64_t hash) {
        std::size_t mask = m_slots.size() - 1;
        std::size_t i = hash & mask;
        for (; m_slots[i] != 0; i = (i + 1) & mask) {
            const std::size_t entry = m_slots[i] - 1;
            if (m_hashes[entry] == hash && matches(entry, bits, value))
                return Insert::Present;
        }
        if (bytes() > kCacheByteLimit)
            return Insert::Full;
        const std::size_t entry = m_hashes.size();
        m_hashes.push_back(hash);
        m_arena.insert(m_arena.end(), bits.begin(), bits.end());
        m_arena.push_back(value);
        m_slots[i] = static_cast<std::uint32_t>(entry + 1);
        if (m_hashes.size() * 2 > m_slots.size())
            grow();
        return Insert::Added;
    }

    std::size_t size() const { return m_hashes.size(); }

private:
    bool matches(std::size_t entry, const std::vector<std::uint64_t> &bits, ValueId value) const {
        const std::uint64_t *stored = m_arena.data() + entry * (m_words + 1);
        return stored[m_words] == value && std::memcmp(stored, bits.data(), m_words * sizeof(std::uint64_t)) == 0;
    }

    std::size_t bytes() const {
        return m_arena.capacity() * sizeof(std::uint64_t) + m_hashes.capacity() * sizeof(std::uint64_t) +
               m_slots.capacity() * sizeof(std::uint32_t);
    }

    void grow() {
        std::vector<std::uint32_t> slots(m_slots.size() * 2, 0);
        const std::size_t mask = slots.size() - 1;
        for (std::size_t entry = 0; entry < m_hashes.size(); ++entry) {
            std::size_t i = m_hashes[entry] & mask;
            while (slots[i] != 0)
                i = (i + 1) & mask;
            slots[i] = static_cast<std::uint32_t>(entry + 1);
        }
        m_slots = std::move(slots);
    }

    std::size_t m_words;
    std::vector<std::uint32_t> m_slots; // 0: empty, else entry + 1
    std::vector<std::uint64_t> m_hashes;
    std::vector<std::uint64_t> m_arena;
};

enum class Outcome { Linearizable, NotLinearizable, Exhausted };

struct KeyVerdict {
    Outcome outcome = Outcome::Linearizable;
    bool cacheFull = false;
    std::uint64_t steps = 0;
    std::size_t configurations = 0;
    // The deepest dead end met: the operations placed, in order, the register's value after them, and
    // the operation whose return was reached while it was still unplaced.
    std::vector<std::size_t> order;
    ValueId state = 0;
    std::size_t blocking = kNone;
    // Candidates at that dead end: the unplaced operations called before `blocking` returned.
    std::vector<std::size_t> candidates;
};

KeyVerdict searchKey(const std::vector<KeyOp> &ops, std::uint64_t &stepsLeft) {
    KeyVerdict verdict;
    const auto n = static_cast<std::uint32_t>(ops.size());

    // Entries 0..n-1 are the calls, n..2n-1 the returns (none for a pending Put), 2n the list's head.
    struct Event {
        std::uint64_t time;
        int rank; // calls before returns at equal times: closed intervals, equal times overlap
        std::uint32_t entry;
    };
    std::vector<Event> events;
    events.reserve(2 * std::size_t{n});
    std::size_t openCompleted = 0; // completed operations not placed yet
    for (std::uint32_t i = 0; i < n; ++i) {
        events.push_back({ops[i].call, 0, i});
        if (!ops[i].pending()) {
            events.push_back({ops[i].ret, 1, n + i});
            ++openCompleted;
        }
    }
    std::sort(events.begin(), events.end(), [](const Event &a, const Event &b) {
        if (a.time != b.time)
            return a.time < b.time;
        if (a.rank != b.rank)
            return a.rank < b.rank;
        return a.entry < b.entry;
    });

    const std::uint32_t head = 2 * n;
    std::vector<std::uint32_t> next(2 * std::size_t{n} + 1, head);
    std::vector<std::uint32_t> prev(2 * std::size_t{n} + 1, head);
    std::vector<std::size_t> position(2 * std::size_t{n}, kNone);
    std::uint32_t last = head;
    for (std::size_t p = 0; p < events.size(); ++p) {
        const std::uint32_t entry = events[p].entry;
        position[entry] = p;
        next[last] = entry;
        prev[entry] = last;
        last = entry;
    }
    next[last] = head;
    prev[head] = last;

    auto unlink = [&](std::uint32_t e) {
        next[prev[e]] = next[e];
        prev[next[e]] = prev[e];
    };
    auto relink = [&](std::uint32_t e) {
        next[prev[e]] = e;
        prev[next[e]] = e;
    };
    // Placing an operation removes its call and its return; undoing puts them back in reverse order.
    auto lift = [&](std::uint32_t op) {
        unlink(op);
        if (!ops[op].pending())
            unlink(n + op);
    };
    auto unlift = [&](std::uint32_t op) {
        if (!ops[op].pending())
            relink(n + op);
        relink(op);
    };

    std::vector<std::uint64_t> zobrist(n);
    for (std::uint32_t i = 0; i < n; ++i)
        zobrist[i] = mix64(i);
    auto valueHash = [](ValueId v) { return mix64(~std::uint64_t{v}); };

    std::vector<std::uint64_t> bits((std::size_t{n} + 63) / 64, 0);
    std::uint64_t setHash = 0;
    auto toggle = [&](std::uint32_t op) {
        bits[op >> 6] ^= std::uint64_t{1} << (op & 63);
        setHash ^= zobrist[op];
    };

    struct Frame {
        std::uint32_t op;
        ValueId before; // the register's value before this operation
        bool forced;    // a fitting Get, placed without alternatives
    };
    std::vector<Frame> stack;
    stack.reserve(n);
    ValueId state = 0;
    ConfigCache cache(bits.size());
    std::uint32_t e = next[head];

    auto place = [&](std::uint32_t op, ValueId after, bool forced) {
        stack.push_back({op, state, forced});
        state = after;
        lift(op);
        if (!ops[op].pending())
            --openCompleted;
        e = next[head];
    };
    // Undoes placements up to the last one that has alternatives, and moves on to the next of them.
    // False when there is none left: the history is not linearizable.
    auto backtrack = [&]() {
        while (!stack.empty()) {
            const Frame f = stack.back();
            stack.pop_back();
            state = f.before;
            toggle(f.op);
            unlift(f.op);
            if (!ops[f.op].pending())
                ++openCompleted;
            if (!f.forced) {
                e = next[f.op];
                return true;
            }
        }
        return false;
    };
    auto recordDeadEnd = [&](std::size_t blocking) {
        if (verdict.blocking != kNone && stack.size() <= verdict.order.size())
            return;
        verdict.order.clear();
        for (const Frame &f : stack)
            verdict.order.push_back(f.op);
        verdict.state = state;
        verdict.blocking = blocking;
        verdict.candidates.clear();
        for (std::uint32_t c = next[head]; c != n + blocking && c != head; c = next[c])
            verdict.candidates.push_back(c);
    };
    auto finish = [&](Outcome outcome) {
        verdict.outcome = outcome;
        verdict.configurations = cache.size();
        return verdict;
    };

    while (openCompleted > 0) {
        if (stepsLeft == 0)
            return finish(Outcome::Exhausted);
        --stepsLeft;
        ++verdict.steps;

        if (e >= n) {
            // A return (the head cannot be met while a completed operation is unplaced: its return
            // is still ahead). That operation finished before it could be placed: a dead end.
            if (e != head)
                recordDeadEnd(e - n);
            if (!backtrack())
                return finish(Outcome::NotLinearizable);
            continue;
        }

        const KeyOp &op = ops[e];
        if (!op.put && op.value != state) {
            e = next[e];
            continue;
        }
        const ValueId after = op.put ? op.value : state;
        toggle(e);
        const ConfigCache::Insert inserted = cache.insert(bits, after, setHash ^ valueHash(after));
        if (inserted == ConfigCache::Insert::Added) {
            place(e, after, !op.put);
            continue;
        }
        toggle(e);
        if (inserted == ConfigCache::Insert::Full) {
            verdict.cacheFull = true;
            return finish(Outcome::Exhausted);
        }
        if (op.put) {
            e = next[e]; // explored before: try the next candidate
        } else if (!backtrack()) {
            // A fitting Get whose configuration failed before: the current one fails too.
            return finish(Outcome::NotLinearizable);
        }
    }
    return finish(Outcome::Linearizable);
}

// The operations of one key, ready for the search.
struct KeyHistory {
    std::vector<KeyOp> ops;
    std::vector<std::string> values; // ValueId v > 0 is values[v - 1]
    std::size_t droppedPuts = 0;     // unknown-outcome Puts whose value nobody read
};

std::string valueText(const KeyHistory &kh, ValueId v) {
    return v == 0 ? std::string("not found") : quoted(kh.values[v - 1]);
}

std::string registerText(const KeyHistory &kh, ValueId v) {
    return v == 0 ? std::string("the key is still unwritten") : "the register holds " + quoted(kh.values[v - 1]);
}

std::string opLine(const std::vector<Operation> &history, const KeyOp &op) {
    return describeOperation(history[op.index]) + " (op #" + std::to_string(op.index) + ")";
}

std::string droppedNote(const KeyHistory &kh) {
    if (kh.droppedPuts == 0)
        return {};
    return "  (" + std::to_string(kh.droppedPuts) +
           " Put(s) with an unknown outcome whose value no Get observed were left out: they may never have "
           "taken effect.)\n";
}

std::string explainNotLinearizable(const std::string &key, const std::vector<Operation> &history,
                                   const KeyHistory &kh, const KeyVerdict &v) {
    const std::vector<KeyOp> &ops = kh.ops;
    std::string out = "key " + quoted(key) + ": not linearizable (" + std::to_string(ops.size()) +
                      " operations searched on this key).\n";
    if (v.blocking == kNone)
        return out + droppedNote(kh);

    const KeyOp &blocking = ops[v.blocking];
    if (v.order.empty()) {
        out += "  No order can even start.\n";
    } else {
        out += "  The longest linearizable prefix found orders " + std::to_string(v.order.size()) + " of them";
        if (v.order.size() > kOrderShown)
            out += " (the first " + std::to_string(v.order.size() - kOrderShown) + " are not shown)";
        out += ":\n";
        for (std::size_t i = v.order.size() > kOrderShown ? v.order.size() - kOrderShown : 0; i < v.order.size(); ++i)
            out += "    " + std::to_string(i + 1) + ". " + opLine(history, ops[v.order[i]]) + "\n";
        out += "  after which " + registerText(kh, v.state) + ".\n";
    }
    out += "  Then " + opLine(history, blocking) + " returns at " + timeText(blocking.ret) +
           " unordered, and none of the operations called by then can go next:\n";
    for (std::size_t i = 0; i < v.candidates.size() && i < kCandidatesShown; ++i) {
        const KeyOp &c = ops[v.candidates[i]];
        out += "    " + opLine(history, c) + ": ";
        if (!c.put && c.value != v.state)
            out += "reads " + valueText(kh, c.value) + " but " + registerText(kh, v.state);
        else if (c.put)
            out += "fits (the register would hold " + valueText(kh, c.value) +
                   "), but no order of the rest works after it";
        else
            out += "fits, but no order of the rest works after it";
        out += "\n";
    }
    if (v.candidates.size() > kCandidatesShown)
        out += "    ... and " + std::to_string(v.candidates.size() - kCandidatesShown) + " more\n";
    return out + droppedNote(kh);
}

} // namespace

std::string describeOperation(const Operation &op) {
    std::string out = "client " + std::to_string(op.client) + " ";
    if (op.kind == Operation::Kind::Put) {
        out += "Put(" + quoted(op.key) + ", " + quoted(op.value) + ")";
    } else {
        out += "Get(" + quoted(op.key) + ") -> ";
        if (op.ret == Operation::Unknown)
            out += "?";
        else
            out += op.found ? quoted(op.value) : std::string("not found");
    }
    out += " [call " + timeText(op.call) + ", ret " + timeText(op.ret) + "]";
    return out;
}

LinearizabilityResult checkLinearizable(const std::vector<Operation> &history, std::uint64_t maxSearchSteps) {
    LinearizabilityResult result;
    std::string failures;
    std::string noVerdict;
    auto fail = [&](const std::string &text) {
        result.ok = false;
        failures += text;
    };

    // Group by key, in key order so that the check (and its budget use) is deterministic.
    std::map<std::string, std::vector<std::size_t>> byKey;
    for (std::size_t i = 0; i < history.size(); ++i) {
        const Operation &op = history[i];
        if (op.kind == Operation::Kind::Get && op.ret == Operation::Unknown)
            continue; // no information
        ++result.operations;
        if (op.ret != Operation::Unknown && op.ret < op.call) {
            fail("key " + quoted(op.key) + ": malformed operation " + describeOperation(op) + " (op #" +
                 std::to_string(i) + ") returns before its call.\n");
            continue;
        }
        byKey[op.key].push_back(i);
    }
    if (!result.ok) {
        result.explanation = failures;
        return result;
    }

    std::uint64_t stepsLeft = maxSearchSteps;
    std::size_t keysLeft = byKey.size();
    for (const auto &[key, indices] : byKey) {
        --keysLeft;
        KeyHistory kh;
        std::map<std::string, ValueId> ids;
        for (std::size_t i : indices) {
            const Operation &op = history[i];
            if (op.kind == Operation::Kind::Put && ids.emplace(op.value, ValueId(kh.values.size() + 1)).second)
                kh.values.push_back(op.value);
        }
        std::vector<bool> observed(kh.values.size() + 1, false);
        std::string neverWritten;
        for (std::size_t i : indices) {
            const Operation &op = history[i];
            if (op.kind != Operation::Kind::Get || !op.found)
                continue;
            const auto it = ids.find(op.value);
            if (it == ids.end())
                neverWritten += "  " + describeOperation(op) + " (op #" + std::to_string(i) +
                                ") read a value that no Put on this key wrote.\n";
            else
                observed[it->second] = true;
        }
        if (!neverWritten.empty()) {
            fail("key " + quoted(key) + ": not linearizable.\n" + neverWritten);
            continue;
        }
        for (std::size_t i : indices) {
            const Operation &op = history[i];
            KeyOp k;
            k.put = op.kind == Operation::Kind::Put;
            k.value = (k.put || op.found) ? ids.at(op.value) : 0;
            k.call = op.call;
            k.ret = op.ret;
            k.index = i;
            if (k.put && k.pending() && !observed[k.value]) {
                ++kh.droppedPuts;
                continue;
            }
            kh.ops.push_back(k);
        }

        const KeyVerdict verdict = searchKey(kh.ops, stepsLeft);
        if (verdict.outcome == Outcome::NotLinearizable) {
            fail(explainNotLinearizable(key, history, kh, verdict));
        } else if (verdict.outcome == Outcome::Exhausted) {
            noVerdict = "key " + quoted(key) + ": no verdict: " +
                        (verdict.cacheFull ? "the search's memo table reached its memory cap ("
                                           : "the search ran out of its step budget (") +
                        std::to_string(verdict.steps) + " steps, " + std::to_string(verdict.configurations) +
                        " configurations, " + std::to_string(kh.ops.size()) + " operations on this key)";
            if (keysLeft > 0)
                noVerdict += "; " + std::to_string(keysLeft) + " more key(s) were not checked";
            noVerdict += ".\n";
            break;
        }
    }

    if (!noVerdict.empty()) {
        result.ok = false;
        result.exhausted = failures.empty();
    }
    result.explanation = failures + noVerdict;
    return result;
}

} // namespace dengine::sim
