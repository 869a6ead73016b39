// SPDX-License-Identifier: Apache-2.0
#include "kv/kvstore.h"

#include "dengine.pb.h"

#include <stdexcept>

namespace dengine::kv {

raft::Payload encodeCommand(const Command &command)
{
    wire::Command c;
    c.set_origin(command.origin);
    c.set_session(command.session);
    c.set_request(command.request);
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
    Session &session = m_sessions[SessionKey{cmd.origin, cmd.session}];
    if (cmd.request <= session.floor || !session.applied.insert(cmd.request).second) {
        result.outcome = ApplyOutcome::Duplicate;
        return result;
    }
    // Bounded memory: the oldest ids fold into the floor. A retry that old (its call has long
    // timed out) is then taken for a duplicate: it is not applied, never applied twice.
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

std::optional<std::string> KvStore::get(std::string_view key) const
{
    const auto it = m_data.find(key);
    if (it == m_data.end())
        return std::nullopt;
    return it->second;
}

std::vector<std::pair<std::string, std::string>> KvStore::scan(std::string_view prefix, std::size_t limit) const
{
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = m_data.lower_bound(prefix); it != m_data.end(); ++it) {
        if (it->first.compare(0, prefix.size(), prefix) != 0)
            break;
        if (limit && out.size() == limit)
            break;
        out.emplace_back(it->first, it->second);
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> KvStore::range(std::string_view begin, std::string_view end, std::size_t limit) const
{
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = m_data.lower_bound(begin); it != m_data.end(); ++it) {
        if (!end.empty() && it->first >= end)
            break;
        if (limit && out.size() == limit)
            break;
        out.emplace_back(it->first, it->second);
    }
    return out;
}

} // namespace dengine::kv
