// SPDX-License-Identifier: Apache-2.0
// Fuzzer for the client protocol's codec (client/clientcodec.h): arbitrary bytes from a client (or
// a server), split into frames, decoded as requests and responses. Nothing may crash or hang; what
// decodes must keep the decoder's rules and survive a re-encoding. tst_clientcodec runs the same
// function over a deterministic sweep with any compiler.
#include "fuzz_clientcodec.h"

#include "client/clientcodec.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace dengine::clientwire::test {

namespace {

bool sameOperation(const Operation &a, const Operation &b)
{
    return a.remove == b.remove && a.key == b.key && a.value == b.value && a.lease == b.lease && a.sequential == b.sequential;
}

std::string checkRequest(const std::string &payload)
{
    Request r;
    std::string why;
    if (!decodeRequest(payload, r, why))
        return why.empty() ? "decodeRequest refused without saying why" : std::string();
    if (r.id == 0 || r.consistency > MaxConsistency || static_cast<int>(r.kind) < 1 || static_cast<int>(r.kind) > static_cast<int>(Kind::LeaseTimeToLive)
        || isMembership(r.kind) != (r.node != 0) || r.address.size() > 256 || (isLease(r.kind) && r.lease == 0)
        || (r.kind == Kind::CancelWatch && r.watchId == 0))
        return "decodeRequest took a request that breaks its rules";
    for (const auto *ops : {&r.operations, &r.failureOperations})
        for (const Operation &op : *ops)
            if (op.remove && (op.lease != 0 || op.sequential))
                return "decodeRequest took a delete with a lease or sequential";
    if (r.kind == Kind::Batch ? r.operations.empty() : r.kind != Kind::Txn && !r.operations.empty())
        return "decodeRequest took a batch without operations, or operations outside a batch or txn";
    if (r.kind != Kind::Txn && (!r.compares.empty() || !r.failureOperations.empty()))
        return "decodeRequest took compares or failure operations outside a txn";
    for (const Compare &c : r.compares)
        if (c.target > MaxCompareTarget || c.op > MaxCompareOp)
            return "decodeRequest took a compare of an unknown target or op";
    std::string frame;
    appendRequest(frame, r);
    Request back;
    if (!decodeRequest(std::string_view(frame).substr(transport::FrameHeaderBytes), back, why))
        return "a re-encoded request does not decode: " + why;
    if (back.id != r.id || back.kind != r.kind || back.key != r.key || back.value != r.value || back.end != r.end || back.limit != r.limit
        || back.operations.size() != r.operations.size() || back.version != r.version || back.deadlineMs != r.deadlineMs
        || back.node != r.node || back.address != r.address || back.heartbeatMs != r.heartbeatMs || back.compares != r.compares
        || back.lease != r.lease || back.ttlMs != r.ttlMs || back.revision != r.revision || back.watchId != r.watchId
        || back.failureOperations.size() != r.failureOperations.size()
        || !std::equal(back.operations.begin(), back.operations.end(), r.operations.begin(), r.operations.end(), sameOperation)
        || !std::equal(back.failureOperations.begin(), back.failureOperations.end(), r.failureOperations.begin(), r.failureOperations.end(), sameOperation))
        return "a re-encoded request decodes to another request";
    return {};
}

std::string checkResponse(const std::string &payload)
{
    Response r;
    std::string why;
    if (!decodeResponse(payload, r, why))
        return why.empty() ? "decodeResponse refused without saying why" : std::string();
    if (r.id == 0 || r.status > MaxStatus || (r.hasNode && (r.node.role > MaxRole || r.node.nodeId == 0)))
        return "decodeResponse took a response that breaks its rules";
    for (const Event &e : r.events)
        if (e.kind < Event::Kind::Leader || e.kind > Event::Kind::Role || (e.kind == Event::Kind::Role && e.value > MaxRole))
            return "decodeResponse took an unknown event";
    std::uint64_t last = 0;
    for (const WatchEvent &e : r.watchEvents) {
        if (e.key.empty() || e.revision == 0 || e.revision < last || e.revision > r.revision)
            return "decodeResponse took a watch event without a key, or out of order";
        last = e.revision;
    }
    std::string frame;
    appendResponse(frame, r);
    Response back;
    if (!decodeResponse(std::string_view(frame).substr(transport::FrameHeaderBytes), back, why))
        return "a re-encoded response does not decode: " + why;
    if (back.id != r.id || back.status != r.status || back.value != r.value || back.items != r.items || back.nextKey != r.nextKey
        || back.hasNode != r.hasNode || back.node.members.size() != r.node.members.size() || back.events != r.events
        || back.node.firstCommit != r.node.firstCommit || back.node.clientAddress != r.node.clientAddress
        || back.createRevision != r.createRevision || back.modRevision != r.modRevision || back.version != r.version
        || back.succeeded != r.succeeded || back.lease != r.lease || back.ttlMs != r.ttlMs || back.remainingMs != r.remainingMs
        || back.watchEvents != r.watchEvents || back.watchDone != r.watchDone)
        return "a re-encoded response decodes to another response";
    return {};
}

} // namespace

std::string checkClientCodecInput(const std::uint8_t *data, std::size_t size)
{
    // The first byte picks the frame limit; the rest is the stream.
    if (size == 0)
        return {};
    static constexpr std::uint32_t limits[4] = {16, 256, 4096, 1u << 20};
    transport::FrameReader reader(limits[data[0] & 3]);
    reader.feed(reinterpret_cast<const char *>(data + 1), size - 1);
    std::string payload;
    for (int frames = 0; frames < 10000; ++frames) {
        const transport::FrameReader::Result r = reader.next(payload);
        if (r != transport::FrameReader::Result::Frame)
            return {};
        if (std::string e = checkRequest(payload); !e.empty())
            return e;
        if (std::string e = checkResponse(payload); !e.empty())
            return e;
    }
    return {};
}

} // namespace dengine::clientwire::test

#ifndef DENGINE_NO_FUZZ_MAIN
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string violation = dengine::clientwire::test::checkClientCodecInput(data, size);
    if (!violation.empty()) {
        std::fprintf(stderr, "client codec property violated: %s\n", violation.c_str());
        std::abort();
    }
    return 0;
}
#endif
