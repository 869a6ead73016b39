// SPDX-License-Identifier: Apache-2.0
#include "linearizability.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>

// How the check works
// -------------------
// Keys are independent registers, so a history is linearizable exactly when the sub-history of every
// key is (P-compositionality), and each key is searched on its own.
//
// For one key, the search is Wing & Gong's: the operations' call and return events are put in time
// order in a doubly linked list; the search walks it from the front, and each call it meets is an
// operation that may go next in the linearization (nothing that must come before it is still
// unplaced). If the register accepts it (a Put or Delete always fits; a Get fits when it observed
// what the register holds; a Cas that succeeded, or whose outcome is unknown, fits when the register
// holds what it expected, and a Cas that failed when it does not), the operation is placed: its two
// events are unlinked from the list and the walk starts again from the front. Meeting a return event means an operation has finished while still
// unplaced: a dead end, so the last placement is undone and the walk goes on after it.
//
// Lowe's memoization makes this fast in practice: a configuration is fully described by the set of
// placed operations (a bitset) and the register's value, and a configuration that was explored once
// and failed fails again, so it is never explored twice. The number of configurations reachable is
// then bounded by the "downward closed" sets of operations times the register values, roughly
// n * 2^c * v for n operations with at most c of them concurrent, instead of the n! orders.
//
// Three prunings on top, all exact:
//  * A read (a Get, or a Cas that failed) that fits the register when the walk meets it is placed
//    without trying alternatives (`forced`): reads do not change the register and everything that
//    must precede this one is already placed, so any linearization from here can be rewritten to
//    start with it.
//  * A write (Put, Delete, or a Cas) whose outcome is unknown is left out when nothing could have
//    observed its effect: no Get read the value it writes (for a Delete: no Get saw the key absent),
//    no Cas expected that value, and no failed Cas expected any other value. Dropping it from a
//    linearization then changes what the register holds only between it and the next write, where
//    no operation could be placed that depended on it; so a linearization without it exists
//    whenever one with it does.
//  * Writes whose outcome is unknown and that act alike (the same kind, the same value written, the
//    same value expected) are used in the order of their calls: one is placed only once all those
//    called before it are. In any linearization, swapping which of two such writes sits where, or
//    putting the earlier-called one where the later one sat, keeps it valid (neither has a return to
//    respect), so one in that canonical form exists whenever any does. Without this, k unknown
//    writes that could each explain a failed Cas would be tried in up to 2^k combinations.
//    To let more writes act alike, every value no operation reads, nor a Cas expects, is one and the
//    same to the search: nothing can tell them apart.
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

// A register value: 0 is "not found" (never written, or deleted), n > 0 the n-th distinct value
// written to the key. Values a Cas expected that nothing wrote come after those written.
using ValueId = std::uint32_t;

// What an operation does to the register, as the search sees it.
enum class Effect : std::uint8_t {
    Write,    // Put, Delete: sets it to `value` (0 for a Delete)
    Read,     // Get: fits when it holds `value`
    Swap,     // Cas that succeeded, or whose outcome is unknown: fits when it holds `expected`, sets `value`
    Mismatch, // Cas that failed: fits when it does not hold `expected`; changes nothing
};

struct KeyOp {
    Effect effect = Effect::Write;
    ValueId value = 0;      // Write, Swap: the value written; Read: the value observed (0: not found)
    ValueId expected = 0;   // Swap, Mismatch: the value compared (0: absent)
    std::uint64_t call = 0;
    std::uint64_t ret = kUnknown; // kUnknown only for a Write or Swap whose outcome is unknown
    std::size_t index = 0;  // position in the checked history
    // For a write whose outcome is unknown: the one acting alike that was called just before it,
    // which must be placed first (an index into the key's operations), or kNone.
    std::size_t follows = kNone;
    bool pending() const { return ret == kUnknown; }
    bool writes() const { return effect == Effect::Write || effect == Effect::Swap; }
    bool fits(ValueId state) const {
        switch (effect) {
        case Effect::Write:
            return true;
        case Effect::Read:
            return state == value;
        case Effect::Swap:
            return state == expected;
        case Effect::Mismatch:
            return state != expected;
        }
        return false;
    }
    ValueId after(ValueId state) const { return writes() ? value : state; }
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

    // Entries 0..n-1 are the calls, n..2n-1 the returns (none for a pending write), 2n the list's head.
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
        bool forced;    // a fitting read, placed without alternatives
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
        if (!op.fits(state) || (op.follows != kNone && ((bits[op.follows >> 6] >> (op.follows & 63)) & 1) == 0)) {
            e = next[e];
            continue;
        }
        const ValueId after = op.after(state);
        toggle(e);
        const ConfigCache::Insert inserted = cache.insert(bits, after, setHash ^ valueHash(after));
        if (inserted == ConfigCache::Insert::Added) {
            place(e, after, !op.writes());
            continue;
        }
        toggle(e);
        if (inserted == ConfigCache::Insert::Full) {
            verdict.cacheFull = true;
            return finish(Outcome::Exhausted);
        }
        if (op.writes()) {
            e = next[e]; // explored before: try the next candidate
        } else if (!backtrack()) {
            // A fitting read whose configuration failed before: the current one fails too.
            return finish(Outcome::NotLinearizable);
        }
    }
    return finish(Outcome::Linearizable);
}

// The operations of one key, ready for the search.
struct KeyHistory {
    std::vector<KeyOp> ops;
    std::vector<std::string> values; // ValueId v > 0 is values[v - 1]
    std::size_t droppedWrites = 0;   // unknown-outcome writes whose effect nothing could observe
};

std::string valueText(const KeyHistory &kh, ValueId v) {
    return v == 0 ? std::string("not found") : quoted(kh.values[v - 1]);
}

// What a Swap or Mismatch compares with: "the key to be absent" or "the register to hold "a"".
std::string expectationText(const KeyHistory &kh, ValueId v) {
    return v == 0 ? std::string("the key to be absent") : "the register to hold " + quoted(kh.values[v - 1]);
}

std::string opLine(const std::vector<Operation> &history, const KeyOp &op) {
    return describeOperation(history[op.index]) + " (op #" + std::to_string(op.index) + ")";
}

std::string droppedNote(const KeyHistory &kh) {
    if (kh.droppedWrites == 0)
        return {};
    return "  (" + std::to_string(kh.droppedWrites) +
           " write(s) with an unknown outcome whose effect no operation could have observed were left out: "
           "they may never have taken effect.)\n";
}

// What the register holds after `order`, named by the last write in it (the search's own value may
// stand for any of the values nothing reads).
std::string registerText(const std::vector<Operation> &history, const std::vector<KeyOp> &ops,
                         const std::vector<std::size_t> &order) {
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        const KeyOp &k = ops[*it];
        if (!k.writes())
            continue;
        const Operation &op = history[k.index];
        if (op.kind == Operation::Kind::Delete)
            break;
        return "the register holds " + quoted(op.value);
    }
    return "the key is absent";
}

std::string explainNotLinearizable(const std::string &key, const std::vector<Operation> &history,
                                   const KeyHistory &kh, const KeyVerdict &v) {
    const std::vector<KeyOp> &ops = kh.ops;
    const std::string holds = registerText(history, ops, v.order);
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
        out += "  after which " + holds + ".\n";
    }
    out += "  Then " + opLine(history, blocking) + " returns at " + timeText(blocking.ret) +
           " unordered, and none of the operations called by then can go next:\n";
    for (std::size_t i = 0; i < v.candidates.size() && i < kCandidatesShown; ++i) {
        const KeyOp &c = ops[v.candidates[i]];
        out += "    " + opLine(history, c) + ": ";
        if (!c.fits(v.state)) {
            if (c.effect == Effect::Read)
                out += "reads " + valueText(kh, c.value) + " but " + holds;
            else if (c.effect == Effect::Swap)
                out += "needs " + expectationText(kh, c.expected) + " but " + holds;
            else
                out += "failed, but " + holds + ", which it expected";
        } else if (c.writes()) {
            out += std::string("fits (") +
                   (c.value == 0 ? std::string("the key would be absent")
                                 : "the register would hold " + quoted(history[c.index].value)) +
                   "), but no order of the rest works after it";
        } else {
            out += "fits, but no order of the rest works after it";
        }
        out += "\n";
    }
    if (v.candidates.size() > kCandidatesShown)
        out += "    ... and " + std::to_string(v.candidates.size() - kCandidatesShown) + " more\n";
    return out + droppedNote(kh);
}

} // namespace

std::string describeOperation(const Operation &op) {
    std::string out = "client " + std::to_string(op.client) + " ";
    switch (op.kind) {
    case Operation::Kind::Put:
        out += "Put(" + quoted(op.key) + ", " + quoted(op.value) + ")";
        break;
    case Operation::Kind::Get:
        out += "Get(" + quoted(op.key) + ") -> ";
        if (op.ret == Operation::Unknown)
            out += "?";
        else
            out += op.found ? quoted(op.value) : std::string("not found");
        break;
    case Operation::Kind::Delete:
        out += "Delete(" + quoted(op.key) + ")";
        break;
    case Operation::Kind::Cas:
        out += "Cas(" + quoted(op.key) + ", " + (op.expectAbsent ? std::string("absent") : quoted(op.expected)) +
               " -> " + quoted(op.value) + ") -> ";
        if (op.ret == Operation::Unknown)
            out += "?";
        else
            out += op.succeeded ? "ok" : "failed";
        break;
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
        auto intern = [&](const std::string &v) {
            const auto [it, added] = ids.emplace(v, ValueId(kh.values.size() + 1));
            if (added)
                kh.values.push_back(v);
            return it->second;
        };
        // The values written come first: a ValueId up to `written` is one the register may hold.
        for (std::size_t i : indices) {
            const Operation &op = history[i];
            if (op.kind == Operation::Kind::Put || op.kind == Operation::Kind::Cas)
                intern(op.value);
        }
        const ValueId written = static_cast<ValueId>(kh.values.size());
        auto isCompleted = [](const Operation &op) { return op.ret != Operation::Unknown; };
        std::string neverWritten;
        for (std::size_t i : indices) {
            const Operation &op = history[i];
            auto where = [&] { return "  " + describeOperation(op) + " (op #" + std::to_string(i) + ")"; };
            if (op.kind == Operation::Kind::Get && op.found && ids.find(op.value) == ids.end())
                neverWritten += where() + " read a value that no Put or Cas on this key wrote.\n";
            else if (op.kind == Operation::Kind::Cas && isCompleted(op) && op.succeeded && !op.expectAbsent &&
                     ids.find(op.expected) == ids.end())
                neverWritten += where() + " succeeded on a value that no Put or Cas on this key wrote.\n";
        }
        if (!neverWritten.empty()) {
            fail("key " + quoted(key) + ": not linearizable.\n" + neverWritten);
            continue;
        }
        // A Cas may expect a value nothing wrote (then only failing is possible): it gets an id too.
        for (std::size_t i : indices) {
            const Operation &op = history[i];
            if (op.kind == Operation::Kind::Cas && !op.expectAbsent)
                intern(op.expected);
        }
        auto expectedId = [&](const Operation &op) { return op.expectAbsent ? ValueId{0} : ids.at(op.expected); };

        for (std::size_t i : indices) {
            const Operation &op = history[i];
            KeyOp k;
            k.call = op.call;
            k.ret = op.ret;
            k.index = i;
            switch (op.kind) {
            case Operation::Kind::Put:
                k.effect = Effect::Write;
                k.value = ids.at(op.value);
                break;
            case Operation::Kind::Delete:
                k.effect = Effect::Write;
                k.value = 0;
                break;
            case Operation::Kind::Get:
                k.effect = Effect::Read;
                k.value = op.found ? ids.at(op.value) : 0;
                break;
            case Operation::Kind::Cas:
                k.effect = !isCompleted(op) || op.succeeded ? Effect::Swap : Effect::Mismatch;
                k.value = ids.at(op.value);
                k.expected = expectedId(op);
                break;
            }
            kh.ops.push_back(k);
        }

        // Which writes of an unknown outcome could matter (see the top of this file): those whose value
        // some operation depends on the register holding (a Get read it, a Cas that held or may have
        // expected it), and all of them as soon as a failed Cas expected some other value.
        std::vector<bool> observed(kh.values.size() + 1, false);
        // What the failed Cas operations expected: nothing, one value (`mismatched`), or several.
        std::size_t mismatches = 0;
        ValueId mismatched = 0;
        for (const KeyOp &k : kh.ops) {
            if (k.effect == Effect::Read) {
                observed[k.value] = true;
            } else if (k.effect == Effect::Swap) {
                observed[k.expected] = true;
            } else if (k.effect == Effect::Mismatch && (mismatches == 0 || k.expected != mismatched)) {
                mismatched = k.expected;
                mismatches = std::min<std::size_t>(mismatches + 1, 2);
            }
        }
        auto droppable = [&](const KeyOp &k) {
            if (!k.pending())
                return false;
            if (k.effect == Effect::Swap && k.expected > written)
                return true; // it expected a value the register never holds: it cannot have taken effect
            return !observed[k.value] && (mismatches == 0 || (mismatches == 1 && mismatched == k.value));
        };
        const auto kept = std::remove_if(kh.ops.begin(), kh.ops.end(), droppable);
        kh.droppedWrites = static_cast<std::size_t>(kh.ops.end() - kept);
        kh.ops.erase(kept, kh.ops.end());

        // Values nothing reads or expects are one to the search: the first of them stands for all.
        std::vector<bool> referenced(kh.values.size() + 1, false);
        referenced[0] = true;
        for (const KeyOp &k : kh.ops)
            referenced[k.effect == Effect::Read ? k.value : k.expected] = true;
        ValueId anonymous = 0;
        for (KeyOp &k : kh.ops) {
            if (!k.writes() || referenced[k.value])
                continue;
            if (anonymous == 0)
                anonymous = k.value;
            k.value = anonymous;
        }
        // Unknown-outcome writes acting alike are placed in call order: link each to the one before.
        std::vector<std::size_t> pendingOps;
        for (std::size_t j = 0; j < kh.ops.size(); ++j)
            if (kh.ops[j].pending())
                pendingOps.push_back(j);
        std::stable_sort(pendingOps.begin(), pendingOps.end(),
                         [&](std::size_t l, std::size_t r) { return kh.ops[l].call < kh.ops[r].call; });
        std::map<std::tuple<Effect, ValueId, ValueId>, std::size_t> lastAlike;
        for (std::size_t j : pendingOps) {
            KeyOp &k = kh.ops[j];
            const auto [it, first] = lastAlike.try_emplace({k.effect, k.value, k.expected}, j);
            if (!first) {
                k.follows = it->second;
                it->second = j;
            }
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
