// SPDX-License-Identifier: Apache-2.0
#include "transport/codec.h"

#include "dengine.pb.h"

namespace dengine::transport {

namespace {

void appendFrame(std::string &out, const google::protobuf::MessageLite &msg)
{
    const std::size_t size = msg.ByteSizeLong();
    msg.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t *>(appendFrameSpace(out, size)));
}

bool knownType(std::uint32_t type) { return type <= static_cast<std::uint32_t>(raft::MessageType::TimeoutNow); }

} // namespace

void appendHello(std::string &out, const Hello &hello)
{
    wire::Hello h;
    h.set_cluster_id(hello.clusterId);
    h.set_node_id(hello.nodeId);
    h.set_protocol_version(hello.protocolVersion);
    h.set_address(hello.address);
    appendFrame(out, h);
}

static void encodeMessage(wire::RaftMessage *w, const raft::Message &m)
{
    w->set_type(static_cast<std::uint32_t>(m.type));
    w->set_from(m.from);
    w->set_to(m.to);
    w->set_term(m.term);
    w->set_log_term(m.logTerm);
    w->set_index(m.index);
    w->set_commit(m.commit);
    w->set_reject(m.reject);
    w->set_reject_hint(m.rejectHint);
    w->set_context(m.context);
    w->mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
    for (const raft::Entry &e : m.entries) {
        wire::Entry *we = w->add_entries();
        we->set_term(e.term);
        we->set_index(e.index);
        we->set_type(static_cast<std::uint32_t>(e.type));
        we->set_data(e.data.data(), e.data.size());
    }
}

void appendEnvelope(std::string &out, const std::vector<raft::Message> &messages)
{
    wire::Envelope env;
    env.mutable_messages()->Reserve(static_cast<int>(messages.size()));
    for (const raft::Message &m : messages)
        encodeMessage(env.add_messages(), m);
    appendFrame(out, env);
}

void appendSnapshotChunk(std::string &out, const SnapshotChunk &chunk)
{
    wire::Envelope env;
    wire::SnapshotChunk *c = env.mutable_chunk();
    c->set_index(chunk.index);
    c->set_term(chunk.term);
    c->set_offset(chunk.offset);
    c->set_data(chunk.data);
    c->set_last(chunk.last);
    if (chunk.last)
        encodeMessage(c->mutable_message(), chunk.message);
    appendFrame(out, env);
}

void appendSnapshotAck(std::string &out, const SnapshotAck &ack)
{
    wire::Envelope env;
    wire::SnapshotAck *a = env.mutable_ack();
    a->set_index(ack.index);
    a->set_term(ack.term);
    a->set_received(ack.received);
    a->set_done(ack.done);
    a->set_refused(ack.refused);
    appendFrame(out, env);
}

void appendRemovalNotice(std::string &out, std::uint64_t configurationIndex)
{
    wire::Envelope env;
    env.set_removed_at(configurationIndex);
    appendFrame(out, env);
}

bool decodeHello(std::string_view payload, Hello &out, std::string &why)
{
    wire::Hello h;
    if (!h.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        why = "hello: not a valid protocol buffer";
        return false;
    }
    if (h.node_id() == 0 || h.cluster_id() == 0) {
        why = "hello: node id and cluster id must be set";
        return false;
    }
    out.clusterId = h.cluster_id();
    out.nodeId = h.node_id();
    if (h.address().size() > HelloMaxAddressBytes) {
        why = "hello: an address of " + std::to_string(h.address().size()) + " bytes (at most " + std::to_string(HelloMaxAddressBytes) + ")";
        return false;
    }
    out.protocolVersion = h.protocol_version();
    out.address = h.address();
    return true;
}

static bool decodeMessage(const wire::RaftMessage &w, raft::Message &m, std::string &why)
{
    if (!knownType(w.type())) {
        why = "message of unknown type " + std::to_string(w.type());
        return false;
    }
    if (w.from() == 0 || w.to() == 0) {
        why = "message without sender or recipient";
        return false;
    }
    m.type = static_cast<raft::MessageType>(w.type());
    m.from = w.from();
    m.to = w.to();
    m.term = w.term();
    m.logTerm = w.log_term();
    m.index = w.index();
    m.commit = w.commit();
    m.reject = w.reject();
    m.rejectHint = w.reject_hint();
    m.context = w.context();
    m.entries.reserve(static_cast<std::size_t>(w.entries_size()));
    for (const wire::Entry &we : w.entries()) {
        if (we.type() > static_cast<std::uint32_t>(raft::EntryType::ConfChange)) {
            why = "entry of unknown type " + std::to_string(we.type());
            return false;
        }
        // Appends carry log entries (consecutive indexes); a forwarded proposal carries new
        // entries that have no index yet (all zero).
        const bool proposal = m.type == raft::MessageType::Propose;
        if (proposal ? we.index() != 0 : (!m.entries.empty() && we.index() != m.entries.back().index + 1)) {
            why = proposal ? "a forwarded proposal with indexed entries" : "entries with non-consecutive indexes";
            return false;
        }
        m.entries.push_back(raft::Entry{we.term(), we.index(), static_cast<raft::EntryType>(we.type()), raft::Payload(we.data())});
    }
    return true;
}

static bool decodeMessages(const wire::Envelope &env, std::vector<raft::Message> &out, std::string &why)
{
    out.reserve(out.size() + static_cast<std::size_t>(env.messages_size()));
    for (const wire::RaftMessage &w : env.messages()) {
        raft::Message m;
        if (!decodeMessage(w, m, why))
            return false;
        if (m.type == raft::MessageType::Snapshot) {
            why = "a snapshot message outside a snapshot stream";
            return false;
        }
        out.push_back(std::move(m));
    }
    return true;
}

bool decodeEnvelope(std::string_view payload, std::vector<raft::Message> &out, std::string &why)
{
    wire::Envelope env;
    if (!env.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        why = "envelope: not a valid protocol buffer";
        return false;
    }
    return decodeMessages(env, out, why);
}

bool decodeFrame(std::string_view payload, Frame &out, std::string &why)
{
    wire::Envelope env;
    if (!env.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        why = "envelope: not a valid protocol buffer";
        return false;
    }
    if (!decodeMessages(env, out.messages, why))
        return false;
    if (env.has_chunk()) {
        const wire::SnapshotChunk &c = env.chunk();
        SnapshotChunk chunk;
        chunk.index = c.index();
        chunk.term = c.term();
        chunk.offset = c.offset();
        chunk.data = c.data();
        chunk.last = c.last();
        if (chunk.index == 0 || chunk.term == 0 || chunk.offset > (1ULL << 50)) {
            why = "a snapshot chunk without a snapshot";
            return false;
        }
        if (chunk.last) {
            if (!c.has_message()) {
                why = "the last snapshot chunk does not carry a snapshot message";
                return false;
            }
            if (!decodeMessage(c.message(), chunk.message, why))
                return false;
            if (chunk.message.type != raft::MessageType::Snapshot || chunk.message.from == 0 || chunk.message.to == 0) {
                why = "the last snapshot chunk does not carry a snapshot message";
                return false;
            }
        }
        out.chunk = std::move(chunk);
    }
    if (env.has_ack()) {
        const wire::SnapshotAck &a = env.ack();
        if (a.index() == 0 || a.refused().size() > 4096) {
            why = "a malformed snapshot acknowledgement";
            return false;
        }
        out.ack = SnapshotAck{a.index(), a.term(), a.received(), a.done(), a.refused()};
    }
    out.removedAt = env.removed_at();
    return true;
}

} // namespace dengine::transport
