// SPDX-License-Identifier: Apache-2.0
// An in-memory model of what a Wal holds, and a comparison of a Wal against it (test helper).
#pragma once

#include "storage/wal.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace dengine::storage::test {

struct ModelEntry {
    raft::Term term = 0;
    raft::EntryType type = raft::EntryType::Normal;
    std::string data;
    friend bool operator==(const ModelEntry &, const ModelEntry &) = default;
};

inline raft::Entry makeEntry(raft::Index index, raft::Term term, std::string data, raft::EntryType type = raft::EntryType::Normal)
{
    raft::Entry e;
    e.index = index;
    e.term = term;
    e.type = type;
    e.data = raft::Payload(data);
    return e;
}

// The log as the Wal should present it: entries [first, last], the term before first, hard state.
struct LogModel {
    raft::Index first = 1;
    raft::Term startTerm = 0;
    std::vector<ModelEntry> entries; // entries[i] has index first + i
    raft::HardState hardState;

    raft::Index last() const { return first - 1 + entries.size(); }
    std::optional<raft::Term> term(raft::Index i) const
    {
        if (i + 1 == first)
            return startTerm;
        if (i < first || i > last())
            return std::nullopt;
        return entries[i - first].term;
    }
    const ModelEntry &at(raft::Index i) const { return entries[i - first]; }
    // One entry record: replaces the suffix from its index on.
    void put(raft::Index index, const ModelEntry &e)
    {
        entries.resize(index - first);
        entries.push_back(e);
    }
    void append(const std::vector<raft::Entry> &es)
    {
        for (const raft::Entry &e : es)
            put(e.index, ModelEntry{e.term, e.type, e.data.toString()});
    }
    // What Wal::compact(index, term) does to the log's content.
    void compact(raft::Index index, raft::Term term)
    {
        if (index < first)
            return;
        const raft::Index drop = std::min<raft::Index>(index - first + 1, entries.size());
        entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(drop));
        first = index + 1;
        startTerm = term;
    }
    // What Wal::reset(index, term) does: a snapshot replaced the whole log.
    void reset(raft::Index index, raft::Term term)
    {
        entries.clear();
        first = index + 1;
        startTerm = term;
    }
    // The entries Storage::entries(lo, hi, maxBytes) must return (raft::MemoryStorage's rule).
    std::vector<ModelEntry> slice(raft::Index lo, raft::Index hi, std::uint64_t maxBytes) const
    {
        std::vector<ModelEntry> out;
        std::uint64_t bytes = 0;
        for (raft::Index i = lo; i < hi; ++i) {
            bytes += at(i).data.size() + raft::EntryOverheadBytes;
            if (i > lo && bytes > maxBytes)
                break;
            out.push_back(at(i));
        }
        return out;
    }
    friend bool operator==(const LogModel &, const LogModel &) = default;
};

inline std::string describe(const raft::HardState &hs)
{
    return "{term " + std::to_string(hs.term) + ", vote " + std::to_string(hs.vote) + ", commit " + std::to_string(hs.commit) + "}";
}

// Reads everything the Wal presents into a model (entries read back from the files or the cache).
// Returns an empty string, or what could not be read.
inline std::string readBack(const Wal &wal, LogModel &out)
{
    out = {};
    out.first = wal.firstIndex();
    const auto start = wal.term(out.first - 1);
    if (!start)
        return "no term for index " + std::to_string(out.first - 1) + " (first index - 1)";
    out.startTerm = *start;
    out.hardState = wal.hardState();
    const raft::Index last = wal.lastIndex();
    if (last + 1 < out.first)
        return "last index " + std::to_string(last) + " is below first index " + std::to_string(out.first) + " - 1";
    if (last >= out.first) {
        std::vector<raft::Entry> es;
        StorageStatus err;
        if (!wal.entries(out.first, last + 1, std::numeric_limits<std::uint64_t>::max(), es, &err))
            return "entries(" + std::to_string(out.first) + ", " + std::to_string(last + 1) + ") failed: " + err.message;
        if (es.size() != last + 1 - out.first)
            return "entries(" + std::to_string(out.first) + ", " + std::to_string(last + 1) + ") returned " + std::to_string(es.size())
                + " entries";
        for (std::size_t k = 0; k < es.size(); ++k) {
            const raft::Index want = out.first + k;
            if (es[k].index != want)
                return "entry at position " + std::to_string(k) + " has index " + std::to_string(es[k].index) + ", expected "
                    + std::to_string(want);
            const auto t = wal.term(want);
            if (!t || *t != es[k].term)
                return "term(" + std::to_string(want) + ") disagrees with the entry read back";
            out.entries.push_back(ModelEntry{es[k].term, es[k].type, es[k].data.toString()});
        }
    }
    if (wal.term(last + 1))
        return "term(" + std::to_string(last + 1) + ") exists beyond the last index";
    if (out.first >= 2 && wal.term(out.first - 2))
        return "term(" + std::to_string(out.first - 2) + ") exists below the first index - 1";
    return {};
}

// Empty if the Wal presents exactly `want`; otherwise the first difference.
inline std::string compareWal(const Wal &wal, const LogModel &want)
{
    LogModel got;
    if (std::string err = readBack(wal, got); !err.empty())
        return err;
    std::ostringstream s;
    if (got.first != want.first)
        s << "first index " << got.first << ", model " << want.first << "; ";
    if (got.last() != want.last())
        s << "last index " << got.last() << ", model " << want.last() << "; ";
    if (got.startTerm != want.startTerm)
        s << "term(first - 1) " << got.startTerm << ", model " << want.startTerm << "; ";
    if (got.hardState != want.hardState)
        s << "hard state " << describe(got.hardState) << ", model " << describe(want.hardState) << "; ";
    if (got.first == want.first) {
        for (raft::Index i = got.first; i <= std::min(got.last(), want.last()); ++i) {
            if (got.at(i) != want.at(i)) {
                s << "entry " << i << ": term " << got.at(i).term << " (" << got.at(i).data.size() << " bytes), model term "
                  << want.at(i).term << " (" << want.at(i).data.size() << " bytes); ";
                break;
            }
        }
    }
    return s.str();
}

inline std::string randomBytes(std::mt19937_64 &rng, std::size_t n)
{
    std::string s(n, '\0');
    for (char &c : s)
        c = static_cast<char>(rng() & 0xff);
    return s;
}

// Payload sizes: mostly small, sometimes empty, sometimes several sectors, rarely larger than an
// 8 KiB segment.
inline std::size_t randomPayloadSize(std::mt19937_64 &rng)
{
    const unsigned r = static_cast<unsigned>(rng() % 100);
    if (r < 10)
        return 0;
    if (r < 70)
        return rng() % 200;
    if (r < 95)
        return 200 + rng() % 1800;
    return 6000 + rng() % 6000;
}

} // namespace dengine::storage::test
