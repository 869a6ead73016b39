// SPDX-License-Identifier: Apache-2.0
#include "client/clientcodec.h"

#include "clientwire.pb.h"

namespace dengine::clientwire {

namespace {

void appendMessage(std::string &out, const google::protobuf::MessageLite &m)
{
    const std::size_t size = m.ByteSizeLong();
    m.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t *>(transport::appendFrameSpace(out, size)));
}

} // namespace

const char *kindName(Kind kind)
{
    switch (kind) {
    case Kind::Put: return "put";
    case Kind::Get: return "get";
    case Kind::Delete: return "delete";
    case Kind::Batch: return "batch";
    case Kind::Scan: return "scan";
    case Kind::Range: return "range";
    case Kind::Status: return "status";
    case Kind::AddLearner: return "add-learner";
    case Kind::Promote: return "promote";
    case Kind::RemoveMember: return "remove-member";
    case Kind::TransferLeadership: return "transfer-leadership";
    case Kind::Subscribe: return "subscribe";
    case Kind::Txn: return "txn";
    case Kind::Watch: return "watch";
    case Kind::CancelWatch: return "cancel-watch";
    case Kind::LeaseGrant: return "lease-grant";
    case Kind::LeaseKeepAlive: return "lease-keep-alive";
    case Kind::LeaseRevoke: return "lease-revoke";
    case Kind::LeaseTimeToLive: return "lease-time-to-live";
    }
    return "?";
}

void appendRequest(std::string &out, const Request &r)
{
    wire::Request w;
    w.set_version(r.version);
    w.set_id(r.id);
    w.set_deadline_ms(r.deadlineMs);
    w.set_kind(static_cast<wire::Request::Kind>(r.kind));
    w.set_key(r.key);
    w.set_value(r.value);
    w.set_end(r.end);
    w.set_limit(r.limit);
    w.set_consistency(r.consistency);
    const auto addOperations = [](const std::vector<Operation> &ops, auto *list) {
        for (const Operation &op : ops) {
            wire::Operation *o = list->Add();
            o->set_remove(op.remove);
            o->set_key(op.key);
            o->set_value(op.value);
            o->set_lease(op.lease);
            o->set_sequential(op.sequential);
        }
    };
    addOperations(r.operations, w.mutable_operations());
    addOperations(r.failureOperations, w.mutable_failure_operations());
    for (const Compare &c : r.compares) {
        wire::Compare *o = w.add_compares();
        o->set_target(c.target);
        o->set_op(c.op);
        o->set_key(c.key);
        o->set_value(c.value);
        o->set_number(c.number);
    }
    w.set_node(r.node);
    w.set_address(r.address);
    w.set_heartbeat_ms(r.heartbeatMs);
    w.set_lease(r.lease);
    w.set_ttl_ms(r.ttlMs);
    w.set_revision(r.revision);
    w.set_watch_id(r.watchId);
    appendMessage(out, w);
}

bool decodeRequest(std::string_view payload, Request &out, std::string &why)
{
    wire::Request w;
    if (!w.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        why = "request: not a valid protocol buffer";
        return false;
    }
    if (w.id() == 0) {
        why = "request: no id";
        return false;
    }
    if (w.kind() < wire::Request::PUT || w.kind() > wire::Request::LEASE_TIME_TO_LIVE) {
        why = "request " + std::to_string(w.id()) + ": unknown kind " + std::to_string(static_cast<int>(w.kind()));
        return false;
    }
    if (w.consistency() > MaxConsistency) {
        why = "request " + std::to_string(w.id()) + ": unknown consistency " + std::to_string(w.consistency());
        return false;
    }
    const bool txn = w.kind() == wire::Request::TXN;
    if (w.kind() == wire::Request::BATCH ? w.operations_size() == 0 : !txn && w.operations_size() != 0) {
        why = "request " + std::to_string(w.id()) + (w.kind() == wire::Request::BATCH ? ": a batch without operations" : ": operations outside a batch");
        return false;
    }
    if (!txn && (w.compares_size() != 0 || w.failure_operations_size() != 0)) {
        why = "request " + std::to_string(w.id()) + ": compares or failure operations outside a transaction";
        return false;
    }
    for (const wire::Compare &c : w.compares()) {
        if (c.target() > MaxCompareTarget || c.op() > MaxCompareOp) {
            why = "request " + std::to_string(w.id()) + ": a compare of an unknown target or op";
            return false;
        }
    }
    const bool membership = isMembership(static_cast<Kind>(w.kind()));
    if (membership != (w.node() != 0)) {
        why = "request " + std::to_string(w.id()) + (membership ? ": a membership call without a node" : ": a node outside a membership call");
        return false;
    }
    if (isLease(static_cast<Kind>(w.kind())) && w.lease() == 0) {
        why = "request " + std::to_string(w.id()) + ": a lease call without a lease";
        return false;
    }
    if (w.kind() == wire::Request::CANCEL_WATCH && w.watch_id() == 0) {
        why = "request " + std::to_string(w.id()) + ": a cancel-watch without the watch's id";
        return false;
    }
    for (const auto *list : {&w.operations(), &w.failure_operations()})
        for (const wire::Operation &o : *list)
            if (o.remove() && (o.lease() != 0 || o.sequential())) {
                why = "request " + std::to_string(w.id()) + ": a delete with a lease or sequential";
                return false;
            }
    if (w.address().size() > 256) {
        why = "request " + std::to_string(w.id()) + ": an address over 256 bytes";
        return false;
    }
    out = Request{};
    out.version = w.version();
    out.node = w.node();
    out.address = w.address();
    out.heartbeatMs = w.heartbeat_ms();
    out.id = w.id();
    out.deadlineMs = w.deadline_ms();
    out.kind = static_cast<Kind>(w.kind());
    out.key = w.key();
    out.value = w.value();
    out.end = w.end();
    out.limit = w.limit();
    out.consistency = w.consistency();
    out.lease = w.lease();
    out.ttlMs = w.ttl_ms();
    out.revision = w.revision();
    out.watchId = w.watch_id();
    const auto takeOperations = [](const auto &list, std::vector<Operation> &into) {
        into.reserve(static_cast<std::size_t>(list.size()));
        for (const wire::Operation &o : list)
            into.push_back(Operation{o.remove(), o.key(), o.value(), o.lease(), o.sequential()});
    };
    takeOperations(w.operations(), out.operations);
    takeOperations(w.failure_operations(), out.failureOperations);
    for (const wire::Compare &c : w.compares())
        out.compares.push_back(Compare{c.target(), c.op(), c.key(), c.value(), c.number()});
    return true;
}

void appendResponse(std::string &out, const Response &r)
{
    wire::Response w;
    w.set_id(r.id);
    w.set_status(r.status);
    w.set_message(r.message);
    w.set_revision(r.revision);
    w.set_leader(r.leader);
    w.set_value(r.value);
    w.set_create_revision(r.createRevision);
    w.set_mod_revision(r.modRevision);
    w.set_version(r.version);
    w.set_succeeded(r.succeeded);
    for (const KeyValue &item : r.items) {
        wire::KeyValue *kv = w.add_items();
        kv->set_key(item.key);
        kv->set_value(item.value);
        kv->set_create_revision(item.createRevision);
        kv->set_mod_revision(item.modRevision);
        kv->set_version(item.version);
    }
    w.set_next_key(r.nextKey);
    if (r.hasNode) {
        wire::NodeStatus *n = w.mutable_node();
        n->set_node_id(r.node.nodeId);
        n->set_leader(r.node.leader);
        n->set_term(r.node.term);
        n->set_role(r.node.role);
        n->set_commit(r.node.commit);
        n->set_applied(r.node.applied);
        n->set_ready(r.node.ready);
        for (const Member &m : r.node.members) {
            wire::Member *wm = n->add_members();
            wm->set_id(m.id);
            wm->set_address(m.address);
            wm->set_learner(m.learner);
            wm->set_client_address(m.clientAddress);
        }
        n->set_version(r.node.version);
        n->set_first_commit(r.node.firstCommit);
        n->set_client_address(r.node.clientAddress);
        n->set_stopping(r.node.stopping);
    }
    for (const Event &e : r.events) {
        wire::Event *we = w.add_events();
        we->set_kind(static_cast<wire::Event::Kind>(e.kind));
        we->set_value(e.value);
    }
    w.set_lease(r.lease);
    w.set_ttl_ms(r.ttlMs);
    w.set_remaining_ms(r.remainingMs);
    for (const WatchEvent &e : r.watchEvents) {
        wire::WatchEvent *we = w.add_watch_events();
        we->set_deleted(e.deleted);
        we->set_key(e.key);
        we->set_value(e.value);
        we->set_revision(e.revision);
        we->set_create_revision(e.createRevision);
        we->set_version(e.version);
        we->set_lease(e.lease);
    }
    w.set_watch_done(r.watchDone);
    appendMessage(out, w);
}

bool decodeResponse(std::string_view payload, Response &out, std::string &why)
{
    wire::Response w;
    if (!w.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        why = "response: not a valid protocol buffer";
        return false;
    }
    if (w.id() == 0) {
        why = "response: no id";
        return false;
    }
    if (w.status() > MaxStatus) {
        why = "response " + std::to_string(w.id()) + ": unknown status " + std::to_string(w.status());
        return false;
    }
    if (w.has_node() && (w.node().role() > MaxRole || w.node().node_id() == 0)) {
        why = "response " + std::to_string(w.id()) + ": a malformed node status";
        return false;
    }
    for (const wire::Event &e : w.events()) {
        if (e.kind() < wire::Event::LEADER || e.kind() > wire::Event::ROLE || (e.kind() == wire::Event::ROLE && e.value() > MaxRole)) {
            why = "response " + std::to_string(w.id()) + ": an unknown event";
            return false;
        }
    }
    out = Response{};
    out.id = w.id();
    out.status = w.status();
    out.message = w.message();
    out.revision = w.revision();
    out.leader = w.leader();
    out.value = w.value();
    out.createRevision = w.create_revision();
    out.modRevision = w.mod_revision();
    out.version = w.version();
    out.succeeded = w.succeeded();
    out.items.reserve(static_cast<std::size_t>(w.items_size()));
    for (const wire::KeyValue &kv : w.items())
        out.items.push_back(KeyValue{kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.version()});
    out.nextKey = w.next_key();
    if (w.has_node()) {
        out.hasNode = true;
        const wire::NodeStatus &n = w.node();
        out.node.nodeId = n.node_id();
        out.node.leader = n.leader();
        out.node.term = n.term();
        out.node.role = n.role();
        out.node.commit = n.commit();
        out.node.applied = n.applied();
        out.node.ready = n.ready();
        for (const wire::Member &m : n.members())
            out.node.members.push_back(Member{m.id(), m.address(), m.learner(), m.client_address()});
        out.node.version = n.version();
        out.node.firstCommit = n.first_commit();
        out.node.clientAddress = n.client_address();
        out.node.stopping = n.stopping();
    }
    out.events.reserve(static_cast<std::size_t>(w.events_size()));
    for (const wire::Event &e : w.events())
        out.events.push_back(Event{static_cast<Event::Kind>(e.kind()), e.value()});
    out.lease = w.lease();
    out.ttlMs = w.ttl_ms();
    out.remainingMs = w.remaining_ms();
    std::uint64_t last = 0;
    out.watchEvents.reserve(static_cast<std::size_t>(w.watch_events_size()));
    for (const wire::WatchEvent &e : w.watch_events()) {
        if (e.key().empty() || e.revision() == 0 || e.revision() < last || e.revision() > w.revision()) {
            why = "response " + std::to_string(w.id()) + ": a watch event without a key, or out of order";
            return false;
        }
        last = e.revision();
        out.watchEvents.push_back(WatchEvent{e.deleted(), e.key(), e.value(), e.revision(), e.create_revision(), e.version(), e.lease()});
    }
    out.watchDone = w.watch_done();
    return true;
}

} // namespace dengine::clientwire
