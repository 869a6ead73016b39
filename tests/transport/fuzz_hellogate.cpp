// SPDX-License-Identifier: Apache-2.0
// Fuzzer for the handshake: what a stranger can send before it is anyone (see fuzz_hellogate.h).
#include "fuzz_hellogate.h"

#include "transport/codec.h"
#include "transport/hellogate.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace dengine::transport::test {

namespace {

struct Run {
    HelloGate::Result result = HelloGate::Result::NeedMore;
    raft::NodeId peer = 0;
    std::string leftover;
    std::string reason;
};

HelloGate::Policy policyFor(std::uint8_t byte)
{
    HelloGate::Policy p;
    p.clusterId = 7;
    p.self = 1;
    p.isMember = [](raft::NodeId id) { return id >= 1 && id <= 5; };
    p.tls = byte & 1;
    p.certified = (byte >> 1) & 7;
    return p;
}

} // namespace

std::string checkHelloGateInput(const std::uint8_t *data, std::size_t size)
{
    if (size < 2)
        return {};
    const HelloGate::Policy policy = policyFor(data[0]);
    const std::size_t k = std::min<std::size_t>(data[1] & 15, size - 2);
    const std::vector<std::uint8_t> chunks(data + 2, data + 2 + k);
    const char *stream = reinterpret_cast<const char *>(data + 2 + k);
    const std::size_t length = size - 2 - k;

    // Chunked, checking as it goes.
    HelloGate gate(policy);
    Run chunked;
    std::size_t at = 0, turn = 0;
    bool anyNonZero = false;
    for (std::uint8_t c : chunks)
        anyNonZero = anyNonZero || c != 0;
    while (at < length || (turn == 0 && length == 0)) {
        std::size_t n = length - at;
        if (anyNonZero)
            n = std::min<std::size_t>(n, chunks[turn % chunks.size()]);
        ++turn;
        const HelloGate::Result before = chunked.result;
        chunked.result = gate.feed(stream + at, n);
        at += n;
        if (before != HelloGate::Result::NeedMore && chunked.result != before)
            return "a decided gate changed its mind";
        if (chunked.result == HelloGate::Result::NeedMore && gate.buffered() > FrameHeaderBytes + HelloGate::HelloMaxBytes)
            return "buffered " + std::to_string(gate.buffered()) + " bytes before deciding";
    }
    if (chunked.result == HelloGate::Result::Accepted) {
        chunked.peer = gate.peer();
        chunked.leftover = gate.takeLeftover();
        if (chunked.peer == policy.self || !policy.isMember(chunked.peer))
            return "accepted node " + std::to_string(chunked.peer) + ", not another member";
        if (policy.tls && chunked.peer != policy.certified)
            return "over TLS accepted node " + std::to_string(chunked.peer) + " whose certificate named " + std::to_string(policy.certified);
        // The leftover is exactly what followed the Hello in the stream.
        std::uint32_t helloLength = 0;
        std::memcpy(&helloLength, stream, FrameHeaderBytes);
        const std::size_t consumed = FrameHeaderBytes + helloLength;
        if (chunked.leftover != std::string(stream + consumed, length - consumed))
            return "the bytes after the Hello were not handed back as they came";
    }
    if (chunked.result == HelloGate::Result::Refused && gate.reason().empty())
        return "refused without a reason";

    // Whole: the same decision.
    HelloGate whole(policy);
    const HelloGate::Result w = whole.feed(stream, length);
    if (w != chunked.result)
        return "fed whole it decided otherwise";
    if (w == HelloGate::Result::Accepted && whole.peer() != chunked.peer)
        return "fed whole it accepted another peer";
    return {};
}

} // namespace dengine::transport::test

#ifndef DENGINE_NO_FUZZ_MAIN
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string violation = dengine::transport::test::checkHelloGateInput(data, size);
    if (!violation.empty()) {
        std::fprintf(stderr, "handshake property violated: %s\n", violation.c_str());
        std::abort();
    }
    return 0;
}
#endif
