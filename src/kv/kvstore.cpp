// SPDX-License-Identifier: Apache-2.0
#include "kv/kvstore.h"

#include "dengine.pb.h"
#include "raft/bytes.h"

#include <algorithm>
#include <cstdio>
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
    for (const auto &[id, address] : command.members) {
        wire::MemberAddress *m = c.add_members();
        m->set_id(id);
        m->set_address(address);
    }
    for (const auto &[id, address] : command.clientAddresses) {
        wire::MemberAddress *m = c.add_client_addresses();
        m->set_id(id);
        m->set_address(address);
    }
    const auto addOperations = [](const std::vector<Operation> &ops, auto *list) {
        list->Reserve(static_cast<int>(ops.size()));
        for (const Operation &op : ops) {
            wire::Operation *w = list->Add();
            w->set_kind(op.kind == Operation::Kind::Put ? wire::Operation::PUT : wire::Operation::DELETE);
            w->set_key(op.key);
            if (op.kind == Operation::Kind::Put) {
                w->set_value(op.value);
                if (op.lease)
                    w->set_lease(op.lease);
                if (op.sequential)
                    w->set_sequential(true);
            }
        }
    };
    addOperations(command.operations, c.mutable_operations());
    if (command.txn) {
        c.set_txn(true);
        for (const Compare &cmp : command.compares) {
            wire::Compare *w = c.add_compares();
            w->set_target(static_cast<wire::Compare::Target>(cmp.target));
            w->set_op(static_cast<wire::Compare::Op>(cmp.op));
            w->set_key(cmp.key);
            if (cmp.target == Compare::Target::Value)
                w->set_value(cmp.value);
            else
                w->set_number(cmp.number);
        }
        addOperations(command.failure, c.mutable_failure_operations());
    }
    if (command.resetHistory)
        c.set_reset_history(true);
    if (command.lease) {
        wire::LeaseCommand *l = c.mutable_lease();
        l->set_kind(static_cast<wire::LeaseCommand::Kind>(command.lease->kind));
        l->set_id(command.lease->id);
        l->set_ttl_ms(command.lease->ttlMs);
        l->set_renewed_at(command.lease->renewedAt);
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
    const int kinds = (c.has_application() ? 1 : 0) + (c.operations_size() > 0 || c.txn() ? 1 : 0) + (c.members_size() > 0 ? 1 : 0)
                      + (c.client_addresses_size() > 0 ? 1 : 0) + (c.reset_history() ? 1 : 0) + (c.has_lease() ? 1 : 0);
    if (kinds != 1) {
        why = kinds == 0 ? "command: no operations"
                         : "command: more than one of operations, an application command, member addresses, client addresses, "
                           "a history reset and a lease command";
        return false;
    }
    if (!c.txn() && (c.compares_size() > 0 || c.failure_operations_size() > 0)) {
        why = "command: compares or failure operations outside a transaction";
        return false;
    }
    const auto addresses = [&](const auto &list, std::vector<std::pair<raft::NodeId, std::string>> &into) {
        into.clear();
        for (const wire::MemberAddress &m : list) {
            if (m.id() == 0 || m.address().size() > MaxMemberAddressBytes) {
                why = "command: a member address without an id or longer than " + std::to_string(MaxMemberAddressBytes) + " bytes";
                return false;
            }
            into.emplace_back(m.id(), m.address());
        }
        return true;
    };
    if (!addresses(c.members(), out.members) || !addresses(c.client_addresses(), out.clientAddresses))
        return false;
    out.origin = c.origin();
    out.session = c.session();
    out.request = c.request();
    out.lowestPending = c.lowest_pending();
    out.application.reset();
    if (c.has_application())
        out.application = c.application();
    const auto operations = [&](const auto &list, std::vector<Operation> &into) {
        into.clear();
        into.reserve(static_cast<std::size_t>(list.size()));
        for (const wire::Operation &w : list) {
            if (w.key().empty()) {
                why = "command: an operation with an empty key";
                return false;
            }
            Operation op;
            op.kind = w.kind() == wire::Operation::DELETE ? Operation::Kind::Remove : Operation::Kind::Put;
            op.key = w.key();
            op.value = w.value();
            if (op.kind == Operation::Kind::Put) {
                op.lease = w.lease();
                op.sequential = w.sequential();
            }
            into.push_back(std::move(op));
        }
        return true;
    };
    if (!operations(c.operations(), out.operations) || !operations(c.failure_operations(), out.failure))
        return false;
    out.txn = c.txn();
    out.resetHistory = c.reset_history();
    out.lease.reset();
    if (c.has_lease()) {
        const wire::LeaseCommand &l = c.lease();
        if (l.kind() < wire::LeaseCommand::GRANT || l.kind() > wire::LeaseCommand::EXPIRE) {
            why = "command: a lease command of an unknown kind";
            return false;
        }
        out.lease = LeaseCommand{static_cast<LeaseCommand::Kind>(l.kind()), l.id(), l.ttl_ms(), l.renewed_at()};
    }
    out.compares.clear();
    out.compares.reserve(static_cast<std::size_t>(c.compares_size()));
    for (const wire::Compare &w : c.compares()) {
        if (w.key().empty() || w.target() < wire::Compare::VALUE || w.target() > wire::Compare::MOD_REVISION || w.op() < wire::Compare::EQUAL
            || w.op() > wire::Compare::GREATER) {
            why = "command: a compare with an empty key, or of an unknown target or op";
            return false;
        }
        out.compares.push_back(Compare{static_cast<Compare::Target>(w.target()), static_cast<Compare::Op>(w.op()), w.key(), w.value(), w.number()});
    }
    return true;
}

std::string sequentialKey(std::string_view prefix, std::uint64_t index, std::uint32_t ordinal)
{
    char suffix[48];
    const int n = std::snprintf(suffix, sizeof suffix, "%020llu-%04u", static_cast<unsigned long long>(index), ordinal % 10000);
    std::string key(prefix);
    key.append(suffix, static_cast<std::size_t>(n));
    return key;
}

namespace {

// A record's history (no value) as it reads with the histories reset at `historyFrom`
// (KvStore::historyFrom()): one last changed before the reset counts as created and changed there.
KeyRecord historyOf(const KeyRecord &r, raft::Index historyFrom)
{
    if (r.modRevision < historyFrom)
        return KeyRecord{{}, historyFrom, historyFrom, 1, r.lease};
    return KeyRecord{{}, r.createRevision, r.modRevision, r.version, r.lease};
}

} // namespace

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
    if (cmd.resetHistory)
        m_historyFrom = entry.index; // every record reads from its history start on (historyOf())
    // A transaction's compares see the state before it; then one branch applies. One that
    // compares a history not yet the same on every replica decides nothing, alike everywhere.
    bool succeeded = true;
    if (cmd.txn) {
        for (const Compare &c : cmd.compares) {
            if (m_historyFrom == 0 && c.target != Compare::Target::Value) {
                result.rejected = "the cluster's key histories are not established yet (a leader establishes them at once): try again";
                result.outcome = ApplyOutcome::Applied;
                return result;
            }
        }
        for (const Compare &c : cmd.compares)
            succeeded = succeeded && holds(c);
    }
    const std::vector<Operation> &ops = succeeded ? cmd.operations : cmd.failure;
    // A put onto a lease that does not exist changes nothing, alike everywhere.
    for (const Operation &op : ops) {
        if (op.kind == Operation::Kind::Put && op.lease && !m_leases.count(op.lease)) {
            result.rejected = "lease " + std::to_string(op.lease) + " not found (expired or revoked)";
            result.notFound = true;
            result.succeeded = cmd.txn && succeeded;
            result.outcome = ApplyOutcome::Applied;
            return result;
        }
    }
    std::uint32_t ordinal = 0;
    for (const Operation &op : ops) {
        if (op.kind == Operation::Kind::Put)
            put(op.sequential ? sequentialKey(op.key, entry.index, ordinal++) : op.key, op.value, entry.index, op.lease, &result);
        else
            remove(op.key, entry.index, &result);
    }
    if (cmd.lease)
        applyLease(*cmd.lease, entry.index, result);
    result.succeeded = cmd.txn && succeeded;
    for (const auto &[id, address] : cmd.members) {
        if (address.empty()) {
            m_members.erase(id);
            m_clientAddresses.erase(id);
        } else {
            m_members[id] = address;
        }
    }
    for (const auto &[id, address] : cmd.clientAddresses) {
        if (address.empty())
            m_clientAddresses.erase(id);
        else
            m_clientAddresses[id] = address;
    }
    result.outcome = ApplyOutcome::Applied;
    return result;
}

bool KvStore::overlaid(Overlay::const_iterator it, const std::string &key) const
{
    return it != m_overlay.end() ? it->second.has_value() : m_data->count(key) > 0;
}

void KvStore::put(const std::string &key, const std::string &value, raft::Index index, std::uint64_t lease, Applied *out)
{
    // The key's next record: a new key starts its history here; an existing one keeps its
    // creation and counts one more version.
    std::uint64_t leaseBefore = 0;
    const auto next = [&](const KeyRecord *before) {
        KeyRecord r{value, index, index, 1, lease};
        if (before) {
            const KeyRecord history = historyOf(*before, m_historyFrom);
            r.createRevision = history.createRevision;
            r.version = history.version + 1;
            leaseBefore = before->lease;
        }
        return r;
    };
    const KeyRecord *written = nullptr;
    if (!m_frozen) {
        // One lookup: the write path of every put.
        auto it = m_data->lower_bound(key);
        if (it != m_data->end() && it->first == key) {
            it->second = next(&it->second);
        } else {
            it = m_data->emplace_hint(it, key, next(nullptr));
            ++m_size;
        }
        written = &it->second;
    } else {
        const KeyRecord *before = find(key);
        const bool existed = before != nullptr;
        KeyRecord record = next(before); // before the overlay changes under `before`
        auto it = m_overlay.find(key);
        if (it != m_overlay.end())
            it->second = std::move(record);
        else
            it = m_overlay.emplace(key, std::move(record)).first;
        if (!existed)
            ++m_size;
        written = &*it->second;
    }
    if (leaseBefore != lease) {
        if (leaseBefore)
            if (auto l = m_leases.find(leaseBefore); l != m_leases.end())
                l->second.keys.erase(key);
        if (lease)
            m_leases[lease].keys.insert(key);
    }
    if (m_keepEvents && out)
        out->events.push_back(Event{Event::Type::Put, key, value, index, written->createRevision, written->version, lease});
}

void KvStore::remove(const std::string &key, raft::Index index, Applied *out)
{
    std::uint64_t lease = 0;
    if (!m_frozen) {
        const auto it = m_data->find(key);
        if (it == m_data->end())
            return;
        lease = it->second.lease;
        m_data->erase(it);
    } else {
        const KeyRecord *before = find(key);
        if (!before)
            return;
        lease = before->lease;
        if (auto it = m_overlay.find(key); it != m_overlay.end())
            it->second.reset();
        else
            m_overlay.emplace(key, std::nullopt);
    }
    --m_size;
    if (lease)
        if (auto l = m_leases.find(lease); l != m_leases.end())
            l->second.keys.erase(key);
    if (m_keepEvents && out)
        out->events.push_back(Event{Event::Type::Delete, key, {}, index, 0, 0, 0});
}

void KvStore::dropLease(std::uint64_t id, raft::Index index, Applied *out)
{
    const auto l = m_leases.find(id);
    if (l == m_leases.end())
        return;
    const std::set<std::string, std::less<>> keys = std::move(l->second.keys);
    m_leases.erase(l);
    for (const std::string &key : keys)
        remove(key, index, out);
}

void KvStore::applyLease(const LeaseCommand &lc, raft::Index index, Applied &result)
{
    result.leaseId = lc.kind == LeaseCommand::Kind::Grant ? index : lc.id;
    const auto notFound = [&] {
        result.rejected = "lease " + std::to_string(lc.id) + " not found (expired or revoked)";
        result.notFound = true;
    };
    switch (lc.kind) {
    case LeaseCommand::Kind::Grant:
        // The TTL is checked where it is proposed; here only kept within bounds, alike everywhere.
        m_leases[index] = Lease{std::clamp(lc.ttlMs, MinLeaseTtlMs, MaxLeaseTtlMs), index, {}};
        result.leaseTtlMs = m_leases[index].ttlMs;
        return;
    case LeaseCommand::Kind::KeepAlive:
        if (auto l = m_leases.find(lc.id); l != m_leases.end()) {
            l->second.renewedAt = index;
            result.leaseTtlMs = l->second.ttlMs;
        } else {
            notFound();
        }
        return;
    case LeaseCommand::Kind::Revoke:
        if (!m_leases.count(lc.id))
            notFound();
        dropLease(lc.id, index, &result);
        return;
    case LeaseCommand::Kind::Expire:
        if (auto l = m_leases.find(lc.id); l != m_leases.end() && l->second.renewedAt == lc.renewedAt) {
            result.expired = true;
            dropLease(lc.id, index, &result);
        }
        return;
    }
}

std::shared_ptr<const KvStore::Frozen> KvStore::freeze()
{
    if (m_frozen && !m_overlay.empty()) {
        // A newer state while an older one is still held: the map cannot change in place, so
        // this one gets its own copy with the overlay folded in (rare: one snapshot at a time).
        auto copy = std::make_shared<Map>(*m_data);
        for (auto &[k, v] : m_overlay) {
            if (v)
                (*copy)[k] = *v;
            else
                copy->erase(k);
        }
        m_overlay.clear();
        m_data = std::move(copy);
    }
    m_frozen = true;
    auto f = std::make_shared<Frozen>();
    f->m_data = m_data;
    f->m_tail = serializeTail();
    f->m_applied = m_applied;
    f->m_historyFrom = m_historyFrom;
    return f;
}

bool KvStore::thaw()
{
    if (!m_frozen)
        return true;
    if (m_data.use_count() != 1)
        return false;
    for (auto &[k, v] : m_overlay) {
        if (v)
            m_data->insert_or_assign(k, std::move(*v));
        else
            m_data->erase(k);
    }
    m_overlay.clear();
    m_frozen = false;
    return true;
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

constexpr std::string_view SnapshotMagic = "DKVSNAP5";
constexpr std::string_view SnapshotMagicV4 = "DKVSNAP4"; // read only: no leases
constexpr std::string_view SnapshotMagicV3 = "DKVSNAP3"; // read only: no revisions
constexpr std::string_view SnapshotMagicV2 = "DKVSNAP2"; // read only: no revisions, no client addresses

} // namespace

std::string KvStore::serializeTail() const
{
    // Sessions in a fixed order, so that equal states give equal bytes.
    std::vector<std::pair<SessionKey, const Session *>> sessions;
    sessions.reserve(m_sessions.size());
    for (const auto &[k, s] : m_sessions)
        sessions.emplace_back(k, &s);
    std::sort(sessions.begin(), sessions.end(), [](const auto &a, const auto &b) {
        return a.first.origin != b.first.origin ? a.first.origin < b.first.origin : a.first.session < b.first.session;
    });
    std::string out;
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
    for (const auto *book : {&m_members, &m_clientAddresses}) {
        putU64(out, book->size());
        for (const auto &[id, address] : *book) {
            putU64(out, id);
            putBytes(out, address);
        }
    }
    putU64(out, m_leases.size());
    for (const auto &[id, lease] : m_leases) {
        putU64(out, id);
        putU64(out, lease.ttlMs);
        putU64(out, lease.renewedAt);
    }
    return out;
}

bool KvStore::Frozen::serialize(const std::function<bool(std::string_view)> &sink, std::size_t piece) const
{
    std::string out;
    out.reserve(piece + 4096);
    out.append(SnapshotMagic);
    putU64(out, m_applied);
    putU64(out, m_historyFrom);
    putU64(out, m_data->size());
    for (const auto &[k, v] : *m_data) {
        putBytes(out, k);
        putBytes(out, v.value);
        putU64(out, v.createRevision);
        putU64(out, v.modRevision);
        putU64(out, v.version);
        putU64(out, v.lease);
        if (out.size() >= piece) {
            if (!sink(out))
                return false;
            out.clear();
        }
    }
    out.append(m_tail);
    return sink(out);
}

std::string KvStore::snapshot()
{
    std::string out;
    {
        const std::shared_ptr<const Frozen> f = freeze();
        f->serialize([&](std::string_view piece) {
            out.append(piece);
            return true;
        });
    }
    thaw();
    return out;
}

bool KvStore::restore(std::string_view bytes, std::string &why)
{
    const std::string_view magic = bytes.substr(0, SnapshotMagic.size());
    const bool v2 = magic == SnapshotMagicV2;
    const bool leases = magic == SnapshotMagic;
    const bool revisions = leases || magic == SnapshotMagicV4;
    if (!revisions && magic != SnapshotMagicV3 && !v2) {
        why = "kv snapshot: not a key-value snapshot (bad magic)";
        return false;
    }
    raft::ByteReader r{bytes.substr(SnapshotMagic.size())};
    const raft::Index applied = r.take(8);
    const raft::Index historyFrom = revisions ? r.take(8) : 0; // older: not established
    const std::uint64_t count = r.take(8);
    if (r.ok && historyFrom > applied) {
        why = "kv snapshot: its key histories start after its applied index";
        return false;
    }
    if (!r.ok || count > r.in.size() / 8) {
        why = "kv snapshot: truncated before its keys";
        return false;
    }
    auto data = std::make_shared<Map>();
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::string_view k = r.bytes();
        const std::string_view v = r.bytes();
        // Before revisions were kept: the whole history is the snapshot's index.
        KeyRecord record{std::string(v), applied, applied, 1};
        if (revisions) {
            record.createRevision = r.take(8);
            record.modRevision = r.take(8);
            record.version = r.take(8);
        }
        if (leases)
            record.lease = r.take(8);
        if (!r.ok) {
            why = "kv snapshot: truncated in key " + std::to_string(i);
            return false;
        }
        if (k.empty() || (!data->empty() && !(data->rbegin()->first < k))) {
            why = "kv snapshot: key " + std::to_string(i) + " is empty or out of order";
            return false;
        }
        if (record.createRevision == 0 || record.createRevision > record.modRevision || record.modRevision > applied || record.version == 0) {
            why = "kv snapshot: key " + std::to_string(i) + " has impossible revisions";
            return false;
        }
        data->emplace_hint(data->end(), std::string(k), std::move(record));
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
    const auto readBook = [&](std::map<raft::NodeId, std::string> &book, const char *what) {
        const std::uint64_t n = r.take(8);
        if (!r.ok || n > r.in.size() / 12) {
            why = std::string("kv snapshot: truncated before its ") + what + "es";
            return false;
        }
        for (std::uint64_t i = 0; i < n; ++i) {
            const raft::NodeId id = r.take(8);
            const std::string_view address = r.bytes();
            if (!r.ok || id == 0 || address.empty() || address.size() > MaxMemberAddressBytes || !book.emplace(id, std::string(address)).second) {
                why = std::string("kv snapshot: ") + what + " " + std::to_string(i) + " is malformed or repeated";
                return false;
            }
        }
        return true;
    };
    std::map<raft::NodeId, std::string> members;
    std::map<raft::NodeId, std::string> clientAddresses;
    if (!readBook(members, "member address") || (!v2 && !readBook(clientAddresses, "client address")))
        return false;
    std::map<std::uint64_t, Lease> leaseTable;
    if (leases) {
        const std::uint64_t n = r.take(8);
        if (!r.ok || n > r.in.size() / 24) {
            why = "kv snapshot: truncated before its leases";
            return false;
        }
        for (std::uint64_t i = 0; i < n; ++i) {
            const std::uint64_t id = r.take(8);
            Lease lease;
            lease.ttlMs = r.take(8);
            lease.renewedAt = r.take(8);
            if (!r.ok || id == 0 || id > applied || lease.renewedAt < id || lease.renewedAt > applied || lease.ttlMs < MinLeaseTtlMs
                || lease.ttlMs > MaxLeaseTtlMs || !leaseTable.emplace(id, std::move(lease)).second) {
                why = "kv snapshot: lease " + std::to_string(i) + " is malformed or repeated";
                return false;
            }
        }
        for (const auto &[k, v] : *data) {
            if (!v.lease)
                continue;
            const auto l = leaseTable.find(v.lease);
            if (l == leaseTable.end()) {
                why = "kv snapshot: a key is attached to lease " + std::to_string(v.lease) + ", which it does not hold";
                return false;
            }
            l->second.keys.insert(k);
        }
    }
    if (!r.ok || !r.in.empty()) {
        why = r.ok ? "kv snapshot: " + std::to_string(r.in.size()) + " bytes after its end" : "kv snapshot: truncated";
        return false;
    }
    m_size = data->size();
    m_data = std::move(data);
    m_overlay.clear();
    m_frozen = false;
    m_sessions = std::move(table);
    m_members = std::move(members);
    m_clientAddresses = std::move(clientAddresses);
    m_leases = std::move(leaseTable);
    m_applied = applied;
    m_historyFrom = historyFrom;
    return true;
}

std::size_t KvStore::rememberedRequests() const
{
    std::size_t n = 0;
    for (const auto &[k, s] : m_sessions)
        n += s.applied.size();
    return n;
}

const KeyRecord *KvStore::find(std::string_view key) const
{
    if (m_frozen)
        if (const auto o = m_overlay.find(key); o != m_overlay.end())
            return o->second ? &*o->second : nullptr;
    const auto it = m_data->find(key);
    return it == m_data->end() ? nullptr : &it->second;
}

std::optional<KeyRecord> KvStore::record(std::string_view key) const
{
    const KeyRecord *r = find(key);
    if (!r)
        return std::nullopt;
    KeyRecord out = historyOf(*r, m_historyFrom);
    out.value = r->value;
    return out;
}

bool KvStore::holds(const Compare &c) const
{
    const KeyRecord *r = find(c.key);
    if (c.target == Compare::Target::Value) {
        if (!r)
            return false; // no value to compare
        const int order = r->value.compare(c.value);
        switch (c.op) {
        case Compare::Op::Equal: return order == 0;
        case Compare::Op::NotEqual: return order != 0;
        case Compare::Op::Less: return order < 0;
        case Compare::Op::Greater: return order > 0;
        }
        return false;
    }
    const KeyRecord history = r ? historyOf(*r, m_historyFrom) : KeyRecord{};
    const std::uint64_t have = c.target == Compare::Target::Version          ? history.version
                               : c.target == Compare::Target::CreateRevision ? history.createRevision
                                                                             : history.modRevision;
    switch (c.op) {
    case Compare::Op::Equal: return have == c.number;
    case Compare::Op::NotEqual: return have != c.number;
    case Compare::Op::Less: return have < c.number;
    case Compare::Op::Greater: return have > c.number;
    }
    return false;
}

std::optional<std::string> KvStore::get(std::string_view key) const
{
    const KeyRecord *r = find(key);
    return r ? std::optional<std::string>(r->value) : std::nullopt;
}

namespace {

// Collects items from `lo` on while `inside` holds, up to the limits; the first item always fits.
// The items are the map's, with the overlay's changes over them (an overlay entry without a value
// hides the map's key).
template <typename Map, typename Overlay, typename Inside>
KvStore::Page collect(const Map &map, const Overlay *overlay, std::string_view lo, Inside inside, std::size_t limit, std::size_t maxBytes,
                      raft::Index historyFrom)
{
    KvStore::Page page;
    std::size_t bytes = 0;
    auto it = map.lower_bound(lo);
    typename Overlay::const_iterator ot{};
    if (overlay)
        ot = overlay->lower_bound(lo);
    for (;;) {
        const bool haveMap = it != map.end();
        const bool haveOverlay = overlay && ot != overlay->end();
        if (!haveMap && !haveOverlay)
            break;
        const std::string *key;
        const KeyRecord *record;
        if (haveOverlay && (!haveMap || ot->first <= it->first)) {
            if (haveMap && ot->first == it->first)
                ++it; // the overlay's version wins
            key = &ot->first;
            record = ot->second ? &*ot->second : nullptr;
            ++ot;
        } else {
            key = &it->first;
            record = &it->second;
            ++it;
        }
        if (!inside(*key))
            break;
        if (!record)
            continue;
        const std::string *value = &record->value;
        const std::size_t size = key->size() + value->size();
        if ((limit && page.items.size() == limit) || (!page.items.empty() && bytes + size > maxBytes)) {
            page.nextKey = *key;
            break;
        }
        bytes += size;
        page.items.emplace_back(*key, *value);
        page.records.push_back(historyOf(*record, historyFrom));
    }
    return page;
}

} // namespace

KvStore::Page KvStore::scan(std::string_view prefix, std::size_t limit, std::size_t maxBytes) const
{
    return collect(
        *m_data, m_frozen ? &m_overlay : nullptr, prefix, [prefix](const std::string &k) { return k.compare(0, prefix.size(), prefix) == 0; },
        limit, maxBytes, m_historyFrom);
}

KvStore::Page KvStore::range(std::string_view begin, std::string_view end, std::size_t limit, std::size_t maxBytes) const
{
    return collect(
        *m_data, m_frozen ? &m_overlay : nullptr, begin, [end](const std::string &k) { return end.empty() || k < end; }, limit, maxBytes,
        m_historyFrom);
}

} // namespace dengine::kv
