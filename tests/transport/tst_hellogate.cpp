// SPDX-License-Identifier: Apache-2.0
// The handshake gate (transport/hellogate.h): what it accepts and refuses, and the fuzzer's
// properties over its seed corpus and a deterministic sweep (with any compiler).
//
// Regenerate the seeds: DENGINE_WRITE_CORPUS=tests/transport/corpus_hellogate tst_hellogate
#include "fuzz_hellogate.h"
#include "transport/codec.h"
#include "transport/hellogate.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

using namespace dengine;
using namespace dengine::transport;

namespace {

HelloGate::Policy policy(bool tls = false, raft::NodeId certified = 0)
{
    HelloGate::Policy p;
    p.clusterId = 7;
    p.self = 1;
    p.isMember = [](raft::NodeId id) { return id >= 1 && id <= 5; };
    p.tls = tls;
    p.certified = certified;
    return p;
}

std::string helloFrame(std::uint64_t cluster, raft::NodeId node)
{
    std::string out;
    appendHello(out, Hello{cluster, node, ProtocolVersion, {}});
    return out;
}

HelloGate::Result feedAll(HelloGate &g, const std::string &bytes) { return g.feed(bytes.data(), bytes.size()); }

} // namespace

TEST(HelloGate, aMembersHello_isAccepted_andWhatFollowsIsHandedBack)
{
    HelloGate g(policy());
    const std::string stream = helloFrame(7, 3) + "next frames";
    EXPECT_EQ(feedAll(g, stream), HelloGate::Result::Accepted);
    EXPECT_EQ(g.peer(), 3u);
    EXPECT_EQ(g.takeLeftover(), "next frames");
}

TEST(HelloGate, byteByByte_decidesTheSame)
{
    HelloGate g(policy());
    const std::string stream = helloFrame(7, 2) + "xyz";
    HelloGate::Result r = HelloGate::Result::NeedMore;
    for (char c : stream)
        r = g.feed(&c, 1);
    EXPECT_EQ(r, HelloGate::Result::Accepted);
    EXPECT_EQ(g.takeLeftover(), "xyz");
}

TEST(HelloGate, refusals_sayWhy)
{
    const auto refusal = [](const std::string &bytes, HelloGate::Policy p = policy()) {
        HelloGate g(std::move(p));
        EXPECT_EQ(feedAll(g, bytes), HelloGate::Result::Refused);
        return g.reason();
    };
    std::string huge(4, '\0');
    const std::uint32_t n = 64u << 20;
    std::memcpy(huge.data(), &n, 4);
    EXPECT_NE(refusal(huge).find("a Hello is at most"), std::string::npos) << "decided on the header alone";
    EXPECT_NE(refusal(helloFrame(8, 2)).find("cluster 8"), std::string::npos);
    EXPECT_NE(refusal(helloFrame(7, 9)).find("not a member"), std::string::npos);
    EXPECT_NE(refusal(helloFrame(7, 1)).find("not a member"), std::string::npos) << "itself";
    EXPECT_NE(refusal(std::string("\x05\0\0\0garbage", 12)).find("hello"), std::string::npos);
    EXPECT_NE(refusal(helloFrame(7, 2), policy(true, 3)).find("certificate names node 3"), std::string::npos);
    EXPECT_NE(refusal(helloFrame(7, 2), policy(true, 0)).find("no member"), std::string::npos);
    HelloGate over(policy(true, 2));
    EXPECT_EQ(feedAll(over, helloFrame(7, 2)), HelloGate::Result::Accepted) << "the member the certificate names";
}

TEST(HelloGate, theSendersAddress_isHandedOn_andBounded)
{
    HelloGate g(policy());
    std::string frame;
    appendHello(frame, Hello{7, 4, ProtocolVersion, "127.0.0.1:7004"});
    EXPECT_EQ(feedAll(g, frame), HelloGate::Result::Accepted);
    EXPECT_EQ(g.address(), "127.0.0.1:7004");

    // More than HelloMaxAddressBytes: refused with the reason (the frame still fits a Hello).
    std::string longFrame;
    appendHello(longFrame, Hello{7, 4, ProtocolVersion, std::string(HelloMaxAddressBytes + 1, 'a')});
    HelloGate h(policy());
    EXPECT_EQ(feedAll(h, longFrame), HelloGate::Result::Refused);
    EXPECT_NE(h.reason().find("address"), std::string::npos) << h.reason();
}

TEST(HelloGate, buffersNoMoreThanAHello_beforeDeciding)
{
    HelloGate g(policy());
    std::string header(4, '\0');
    const std::uint32_t n = 200; // a plausible length, then a slow trickle
    std::memcpy(header.data(), &n, 4);
    EXPECT_EQ(feedAll(g, header + std::string(150, 'x')), HelloGate::Result::NeedMore);
    EXPECT_LE(g.buffered(), FrameHeaderBytes + HelloGate::HelloMaxBytes);
}

TEST(HelloGate, fuzzerProperties_overTheSeedCorpus_andASweep)
{
    namespace fs = std::filesystem;
    std::vector<std::string> seeds;
    // Seeds: the policy byte, no chunks, then a stream.
    const auto seed = [&](std::uint8_t policyByte, std::vector<std::uint8_t> chunks, const std::string &stream) {
        std::string s;
        s += static_cast<char>(policyByte);
        s += static_cast<char>(chunks.size());
        for (std::uint8_t c : chunks)
            s += static_cast<char>(c);
        seeds.push_back(s + stream);
    };
    seed(0, {}, helloFrame(7, 2) + "rest");
    seed(1 | (2 << 1), {1, 3}, helloFrame(7, 2) + "rest");
    seed(1 | (3 << 1), {}, helloFrame(7, 2));
    seed(0, {2}, helloFrame(8, 2));
    seed(0, {}, std::string("\xff\xff\xff\xff", 4));
    if (const char *dir = std::getenv("DENGINE_WRITE_CORPUS")) {
        fs::create_directories(dir);
        for (std::size_t i = 0; i < seeds.size(); ++i)
            std::ofstream(fs::path(dir) / ("seed-" + std::to_string(i)), std::ios::binary) << seeds[i];
    }
    const fs::path corpus = DENGINE_HELLOGATE_CORPUS_DIR;
    if (fs::exists(corpus))
        for (const auto &entry : fs::directory_iterator(corpus)) {
            std::ifstream in(entry.path(), std::ios::binary);
            seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
    // A deterministic sweep: mutations of the seeds (bit flips, cuts, splices, chunkings).
    std::mt19937_64 rng(20261202);
    const std::size_t base = seeds.size();
    for (int i = 0; i < 20000; ++i) {
        std::string s = seeds[rng() % base];
        switch (rng() % 4) {
        case 0:
            if (!s.empty())
                s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
            break;
        case 1: s.resize(rng() % (s.size() + 1)); break;
        case 2: s += seeds[rng() % base]; break;
        case 3:
            if (s.size() > 1)
                s[1] = static_cast<char>(rng() % 16);
            break;
        }
        seeds.push_back(std::move(s));
    }
    for (const std::string &s : seeds) {
        const std::string v = test::checkHelloGateInput(reinterpret_cast<const std::uint8_t *>(s.data()), s.size());
        ASSERT_EQ(v, "") << "input of " << s.size() << " bytes";
    }
}
