// SPDX-License-Identifier: Apache-2.0
#include "raft/confchange.h"

#include "raft/bytes.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <set>
#include <sstream>

namespace dengine::raft {

namespace {

constexpr unsigned char OpsMagic = 'K';
constexpr unsigned char StateMagic = 'C';
constexpr unsigned char Version = 1;
constexpr std::uint32_t MaxIds = 1u << 16; // far beyond any real cluster; bounds a decoder's allocation

void putIds(std::string &out, const std::vector<NodeId> &ids)
{
    putU32(out, static_cast<std::uint32_t>(ids.size()));
    for (NodeId id : ids)
        putU64(out, id);
}

struct Reader : ByteReader {
    std::vector<NodeId> ids()
    {
        const std::uint64_t n = take(4);
        std::vector<NodeId> out;
        if (!ok || n > MaxIds || n * 8 > in.size()) {
            ok = false;
            return out;
        }
        out.reserve(n);
        for (std::uint64_t i = 0; i < n; ++i) {
            const NodeId id = take(8);
            if (id == NoNode)
                ok = false;
            out.push_back(id);
        }
        return out;
    }
};

bool sortedUnique(const std::vector<NodeId> &ids)
{
    return std::adjacent_find(ids.begin(), ids.end(), [](NodeId a, NodeId b) { return a >= b; }) == ids.end();
}

std::vector<NodeId> sorted(std::set<NodeId> s) { return {s.begin(), s.end()}; }

std::string list(const std::vector<NodeId> &ids)
{
    std::ostringstream out;
    out << '{';
    for (std::size_t i = 0; i < ids.size(); ++i)
        out << (i ? "," : "") << ids[i];
    out << '}';
    return out.str();
}

} // namespace

std::vector<NodeId> members(const ConfState &cs)
{
    std::set<NodeId> all(cs.voters.begin(), cs.voters.end());
    all.insert(cs.votersOutgoing.begin(), cs.votersOutgoing.end());
    all.insert(cs.learners.begin(), cs.learners.end());
    all.insert(cs.learnersNext.begin(), cs.learnersNext.end());
    return sorted(std::move(all));
}

std::string describe(const ConfState &cs)
{
    std::string out = "voters " + list(cs.voters);
    if (isJoint(cs))
        out += " and " + list(cs.votersOutgoing) + " (joint)";
    if (!cs.learners.empty())
        out += ", learners " + list(cs.learners);
    return out;
}

std::string planConfChange(const ConfState &current, const std::vector<ConfChangeOp> &ops, ConfState &next)
{
    if (ops.empty()) {
        if (!isJoint(current))
            return "the configuration is not joint: there is nothing to leave";
        next = ConfState{};
        next.voters = current.voters;
        next.learners = current.learners;
        return {};
    }
    if (isJoint(current))
        return "the configuration is joint: it must leave it before another change";
    std::set<NodeId> voters(current.voters.begin(), current.voters.end());
    std::set<NodeId> learners(current.learners.begin(), current.learners.end());
    std::set<NodeId> touched;
    for (const ConfChangeOp &op : ops) {
        const std::string who = "node " + std::to_string(op.node);
        if (op.node == NoNode)
            return "node id 0 is not a node";
        if (!touched.insert(op.node).second)
            return who + " appears twice in one change";
        switch (op.type) {
        case ConfChangeOp::Type::AddVoter:
            if (voters.count(op.node))
                return who + " is a voter already";
            learners.erase(op.node); // promotion
            voters.insert(op.node);
            break;
        case ConfChangeOp::Type::AddLearner:
            if (voters.count(op.node))
                return who + " is a voter: turning a voter into a learner is not supported";
            if (learners.count(op.node))
                return who + " is a learner already";
            learners.insert(op.node);
            break;
        case ConfChangeOp::Type::Remove:
            if (!voters.erase(op.node) && !learners.erase(op.node))
                return who + " is not a member";
            break;
        default:
            return "unknown operation on " + who;
        }
    }
    if (voters.empty())
        return "the change would leave no voters";
    std::vector<NodeId> changed;
    const std::set<NodeId> old(current.voters.begin(), current.voters.end());
    std::set_symmetric_difference(old.begin(), old.end(), voters.begin(), voters.end(), std::back_inserter(changed));
    next = ConfState{};
    next.voters = sorted(voters);
    next.learners = sorted(learners);
    if (changed.size() > 1) {
        next.votersOutgoing = current.voters;
        std::sort(next.votersOutgoing.begin(), next.votersOutgoing.end());
        next.autoLeave = true;
    }
    return {};
}

Payload encodeConfChangeOps(const std::vector<ConfChangeOp> &ops)
{
    std::string out;
    out.push_back(static_cast<char>(OpsMagic));
    out.push_back(static_cast<char>(Version));
    putU32(out, static_cast<std::uint32_t>(ops.size()));
    for (const ConfChangeOp &op : ops) {
        out.push_back(static_cast<char>(op.type));
        putU64(out, op.node);
    }
    return Payload(out);
}

bool decodeConfChangeOps(const Payload &payload, std::vector<ConfChangeOp> &ops)
{
    Reader r{{payload.view()}};
    if (r.take(1) != OpsMagic || r.take(1) != Version)
        return false;
    const std::uint64_t n = r.take(4);
    if (!r.ok || n > MaxIds || n * 9 != r.in.size())
        return false;
    ops.clear();
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto type = r.take(1);
        const NodeId node = r.take(8);
        if (type > 2)
            return false;
        ops.push_back({static_cast<ConfChangeOp::Type>(type), node});
    }
    return r.ok;
}

Payload encodeConfState(const ConfState &cs)
{
    std::string out;
    out.push_back(static_cast<char>(StateMagic));
    out.push_back(static_cast<char>(Version));
    putIds(out, cs.voters);
    putIds(out, cs.votersOutgoing);
    putIds(out, cs.learners);
    out.push_back(cs.autoLeave ? 1 : 0);
    return Payload(out);
}

bool decodeConfState(const Payload &payload, ConfState &cs)
{
    Reader r{{payload.view()}};
    if (r.take(1) != StateMagic || r.take(1) != Version)
        return false;
    ConfState out;
    out.voters = r.ids();
    out.votersOutgoing = r.ids();
    out.learners = r.ids();
    const auto autoLeave = r.take(1);
    if (!r.ok || !r.in.empty() || autoLeave > 1 || out.voters.empty())
        return false;
    if (!sortedUnique(out.voters) || !sortedUnique(out.votersOutgoing) || !sortedUnique(out.learners))
        return false;
    for (NodeId l : out.learners)
        if (std::binary_search(out.voters.begin(), out.voters.end(), l) || std::binary_search(out.votersOutgoing.begin(), out.votersOutgoing.end(), l))
            return false;
    out.autoLeave = autoLeave == 1;
    cs = std::move(out);
    return true;
}

} // namespace dengine::raft
