// SPDX-License-Identifier: Apache-2.0
#include "kv/kvstore.h"

#include "dengine.pb.h"
#include "raft/bytes.h"

#include <algorithm>
#include <stdexcept>

namespace dengine::kv {

using raft::putBytes;
using raft::putU64;

raft::Payload encodeCommand(const Command &command)
{
    wire::Command c;
    c.set_origin(command.origin);
    c.set_session(command.session);
    c.set_request(command.request);
    c.set_lowest_pending(command.lowestPending);
    if (command.application) {
        c.set_application(*command.application);
        c.set_has_application(true);
    }
    c.mutable_operations()->Reserve(static_cast<int>(command.operations.size()));
    for (const Operation &op : command.operations) {
        wire::Operation *w = c.add_operations();
        w->set_kind(op.kind == Operation::Kind::Put ? wire::Operation::PUT : wire::Operation::DELETE);
        w->set_key(op.key);
        if (op.kind == Operation::Kind::Put)
            w->set_value(op.value);
    }
    return raft::Payload(c.SerializeAsString());
}

bool decodeCommand(std::string_view bytes, Command &out, std::string &why)
{
    wire::Command c;
    if (!c.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        why = "command: not a valid protocol buffer";
        return false;
    }
    if (c.has_application() == (c.operations_size() > 0)) {
        why = c.has_application() ? "command: both operations and an application command" : "command: no operations";
        return false;
    }
    out.origin = c.origin();
    out.session = c.session();
    out.request = c.request();
    out.lowestPending = c.lowest_pending();
    out.application.reset();
    if (c.has_application())
        out.application = c.application();
    out.operations.clear();
    out.operations.reserve(static_cast<std::size_t>(c.operations_size()));
    for (const wire::Operation &w : c.operations()) {
        if (w.key().empty()) {
            why = "command: an operation with an empty key";
            return false;
        }
        Operation op;
        op.kind = w.kind() == wire::Operation::DELETE ? Operation::Kind::Remove : Operation::Kind::Put;
        op.key = w.key();
        op.value = w.value();
        out.operations.push_back(std::move(op));
    }
    return true;
}

KvStore::Applied KvStore::apply(const raft::Entry &entry)
{
    if (entry.index != m_applied + 1)
        throw std::logic_error("kv: entry " + std::to_string(entry.index) + " applied after " + std::to_string(m_applied));
    m_applied = entry.index;
    Applied result;
    if (entry.data.empty())
        return result; // a leader's no-op
    std::string why;
    if (entry.type != raft::EntryType::Normal || !decodeCommand(entry.data.view(), result.command, why)) {
        result.outcome = ApplyOutcome::Malformed;
        return result;
    }
    const Command &cmd = result.command;
    const SessionKey key{cmd.origin, cmd.session};
    const bool newSession = !m_sessions.count(key);
    Session &session = m_sessions[key];
    if (newSession) {
        session.firstIndex = entry.index;
        pruneSessions(cmd.origin);
    }
    // What the origin has finished is forgotten: ids below its lowest pending one.
    if (cmd.lowestPending > session.floor + 1) {
        session.floor = cmd.lowestPending - 1;
        session.applied.erase(session.applied.begin(), session.applied.upper_bound(session.floor));
    }
    if (cmd.request <= session.floor || !session.applied.insert(cmd.request).second) {
        result.outcome = ApplyOutcome::Duplicate;
        return result;
    }
    while (session.applied.size() > MaxRememberedRequests) {
        session.floor = *session.applied.begin();
        session.applied.erase(session.applied.begin());
    }
    for (const Operation &op : cmd.operations) {
        if (op.kind == Operation::Kind::Put)
            m_data.insert_or_assign(op.key, op.value);
        else if (auto it = m_data.find(op.key); it != m_data.end())
            m_data.erase(it);
    }
    result.outcome = ApplyOutcome::Applied;
    return result;
}

void KvStore::pruneSessions(raft::NodeId origin)
{
    // Deterministic (it depends on the applied entries only): every replica prunes alike.
    std::vector<std::pair<raft::Index, std::uint64_t>> mine;
    for (const auto &[k, s] : m_sessions)
        if (k.origin == origin)
            mine.emplace_back(s.firstIndex, k.session);
    if (mine.size() <= SessionsPerOrigin)
        return;
    std::sort(mine.begin(), mine.end());
    for (std::size_t i = 0; i + SessionsPerOrigin < mine.size(); ++i)
        m_sessions.erase(SessionKey{origin, mine[i].second});
}

namespace {

constexpr std::string_view SnapshotMagic = "DKVSNAP1";

} // namespace

std::string KvStore::snapshot() const
{
    std::size_t bytes = SnapshotMagic.size() + 32;
    for (const auto &[k, v] : m_data)
        bytes += 8 + k.size() + v.size();
    for (const auto &[k, s] : m_sessions)
        bytes += 40 + 8 * s.applied.size();
    std::string out;
    out.reserve(bytes); // one allocation, no copies as it grows
    out.append(SnapshotMagic);
    putU64(out, m_applied);
    putU64(out, m_data.size());
    for (const auto &[k, v] : m_data) {
        putBytes(out, k);
        putBytes(out, v);
    }
    // Sessions in a fixed order, so that equal states give equal bytes.
    std::vector<std::pair<SessionKey, const Session *>> sessions;
    sessions.reserve(m_sessions.size());
    for (const auto &[k, s] : m_sessions)
        sessions.emplace_back(k, &s);
    std::sort(sessions.begin(), sessions.end(), [](const auto &a, const auto &b) {
        return a.first.origin != b.first.origin ? a.first.origin < b.first.origin : a.first.session < b.first.session;
    });
    putU64(out, sessions.size());
    for (const auto &[k, s] : sessions) {
        putU64(out, k.origin);
        putU64(out, k.session);
        putU64(out, s->floor);
        putU64(out, s->firstIndex);
        putU64(out, s->applied.size());
        for (std::uint64_t id : s->applied)
            putU64(out, id);
    }
    return out;
}

bool KvStore::restore(std::string_view bytes, std::string &why)
{
    if (bytes.substr(0, SnapshotMagic.size()) != SnapshotMagic) {
        why = "kv snapshot: not a key-value snapshot (bad magic)";
        return false;
    }
    raft::ByteReader r{bytes.substr(SnapshotMagic.size())};
    const raft::Index applied = r.take(8);
    const std::uint64_t count = r.take(8);
    if (!r.ok || count > r.in.size() / 8) {
        why = "kv snapshot: truncated before its keys";
        return false;
    }
    std::map<std::string, std::string, std::less<>> data;
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::string_view k = r.bytes();
        const std::string_view v = r.bytes();
        if (!r.ok) {
            why = "kv snapshot: truncated in key " + std::to_string(i);
            return false;
        }
        if (k.empty() || (!data.empty() && !(data.rbegin()->first < k))) {
            why = "kv snapshot: key " + std::to_string(i) + " is empty or out of order";
            return false;
        }
        data.emplace_hint(data.end(), std::string(k), std::string(v));
    }
    const std::uint64_t sessions = r.take(8);
    if (!r.ok || sessions > r.in.size() / 40) {
        why = "kv snapshot: truncated before its sessions";
        return false;
    }
    std::unordered_map<SessionKey, Session, SessionHash> table;
    for (std::uint64_t i = 0; i < sessions; ++i) {
        const SessionKey key{r.take(8), r.take(8)};
        Session s;
        s.floor = r.take(8);
        s.firstIndex = r.take(8);
        const std::uint64_t ids = r.take(8);
        if (!r.ok || ids > r.in.size() / 8 || ids > MaxRememberedRequests) {
            why = "kv snapshot: truncated in session " + std::to_string(i);
            return false;
        }
        for (std::uint64_t j = 0; j < ids; ++j) {
            const std::uint64_t id = r.take(8);
            if (id <= s.floor || (!s.applied.empty() && id <= *s.applied.rbegin())) {
                why = "kv snapshot: session " + std::to_string(i) + " has request ids out of order";
                return false;
            }
            s.applied.insert(s.applied.end(), id);
        }
        if (!table.emplace(key, std::move(s)).second) {
            why = "kv snapshot: session " + std::to_string(i) + " appears twice";
            return false;
        }
    }
    if (!r.ok || !r.in.empty()) {
        why = r.ok ? "kv snapshot: " + std::to_string(r.in.size()) + " bytes after its end" : "kv snapshot: truncated";
        return false;
    }
    m_data = std::move(data);
    m_sessions = std::move(table);
    m_applied = applied;
    return true;
}

std::size_t KvStore::rememberedRequests() const
{
    std::size_t n = 0;
    for (const auto &[k, s] : m_sessions)
        n += s.applied.size();
    return n;
}

std::optional<std::string> KvStore::get(std::string_view key) const
{
    const auto it = m_data.find(key);
    if (it == m_data.end())
        return std::nullopt;
    return it->second;
}

namespace {

// Collects items from `it` while `inside` holds, up to the limits; the first item always fits.
template <typename It, typename Inside>
KvStore::Page collect(It it, It end, Inside inside, std::size_t limit, std::size_t maxBytes)
{
    KvStore::Page page;
    std::size_t bytes = 0;
    for (; it != end && inside(it->first); ++it) {
        const std::size_t size = it->first.size() + it->second.size();
        if ((limit && page.items.size() == limit) || (!page.items.empty() && bytes + size > maxBytes)) {
            page.nextKey = it->first;
            break;
        }
        bytes += size;
        page.items.emplace_back(it->first, it->second);
    }
    return page;
}

} // namespace

KvStore::Page KvStore::scan(std::string_view prefix, std::size_t limit, std::size_t maxBytes) const
{
    return collect(
        m_data.lower_bound(prefix), m_data.end(), [prefix](const std::string &k) { return k.compare(0, prefix.size(), prefix) == 0; }, limit,
        maxBytes);
}

KvStore::Page KvStore::range(std::string_view begin, std::string_view end, std::size_t limit, std::size_t maxBytes) const
{
    return collect(
        m_data.lower_bound(begin), m_data.end(), [end](const std::string &k) { return end.empty() || k < end; }, limit, maxBytes);
}

} // namespace dengine::kv
