// SPDX-License-Identifier: Apache-2.0
// The wire codec fuzzer's entry point without libFuzzer: the seed corpus replayed (so that every
// compiler exercises it), the generator of that corpus, which also checks that each generated input
// has the outcome it was made for, and cheap deterministic sweeps in the fuzzer's spirit.
//
// Regenerate the corpus: DENGINE_WRITE_CORPUS=tests/transport/corpus tst_codec_corpus
#include "fuzz_codec.h"
#include "transport/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>

using namespace dengine;
using namespace dengine::transport;
using namespace dengine::transport::test;

namespace {

constexpr unsigned Limit16 = 0, Limit256 = 1, Limit4096 = 2, Limit1MiB = 3;

struct Expect {
    std::optional<std::size_t> frames = std::nullopt;
    std::optional<std::size_t> hellos = std::nullopt;
    std::optional<std::size_t> envelopes = std::nullopt;
    std::optional<std::size_t> messages = std::nullopt;
    std::optional<bool> tooLarge = std::nullopt;
    std::optional<std::size_t> leftover = std::nullopt;
    std::size_t minRefused = 0;
    std::size_t minFrames = 0;
};

struct Case {
    std::string name;
    std::string input;
    Expect expect;
};

raft::Message message(raft::MessageType type, std::size_t entries = 0, std::size_t dataBytes = 8)
{
    raft::Message m;
    m.type = type;
    m.from = 2;
    m.to = 1;
    const bool termless = type == raft::MessageType::Propose || type == raft::MessageType::ReadIndex;
    m.term = termless ? 0 : 5;
    m.logTerm = 4;
    m.index = 10;
    m.commit = 9;
    m.reject = type == raft::MessageType::AppendResponse || type == raft::MessageType::VoteResponse;
    m.rejectHint = m.reject ? 7 : 0;
    m.context = type == raft::MessageType::Heartbeat || type == raft::MessageType::HeartbeatResponse || type == raft::MessageType::ReadIndex
            || type == raft::MessageType::ReadIndexResponse
        ? 0x1234567890abcdefULL
        : 0;
    const bool proposal = type == raft::MessageType::Propose;
    for (std::size_t i = 0; i < entries; ++i)
        m.entries.push_back(raft::Entry{proposal ? raft::Term{0} : raft::Term{5}, proposal ? raft::Index{0} : raft::Index{11 + i}, raft::EntryType::Normal,
                                        raft::Payload(std::string(dataBytes + i, static_cast<char>('a' + i % 26)))});
    return m;
}

std::string envelope(const std::vector<raft::Message> &messages)
{
    std::string frame;
    appendEnvelope(frame, messages);
    return frame;
}

std::string hello(std::uint64_t cluster, raft::NodeId node)
{
    std::string frame;
    appendHello(frame, Hello{cluster, node, ProtocolVersion, {}});
    return frame;
}

std::string lengthHeader(std::uint32_t n)
{
    std::string out;
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    return out;
}

std::string randomBytes(std::mt19937_64 &rng, std::size_t n)
{
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(static_cast<char>(rng() & 0xff));
    return out;
}

// An Append frame whose payload is exactly `payloadBytes` long (one entry, its data sized to fit).
std::string appendOfPayloadSize(std::size_t payloadBytes)
{
    for (std::size_t data = 0; data < payloadBytes; ++data) {
        const std::string frame = envelope({message(raft::MessageType::Append, 1, data)});
        if (frame.size() - FrameHeaderBytes == payloadBytes)
            return frame;
    }
    ADD_FAILURE() << "no Append payload of exactly " << payloadBytes << " bytes";
    return {};
}

// What a connection sends: its Hello, then envelopes.
std::string connectionStream()
{
    return hello(77, 2) + envelope({message(raft::MessageType::Append, 3)})
        + envelope({message(raft::MessageType::Heartbeat), message(raft::MessageType::HeartbeatResponse)})
        + envelope({message(raft::MessageType::AppendResponse)});
}

std::vector<Case> generateCases()
{
    std::vector<Case> cases;
    std::mt19937_64 rng(2024);

    cases.push_back({"hello-then-envelopes",
                     makeCodecInput(connectionStream(), Limit1MiB, Decode::ConnectionOrder, false, {1, 7, 3, 200}),
                     {.frames = 4, .hellos = 1, .envelopes = 3, .messages = 4, .tooLarge = false, .leftover = 0}});
    {
        std::vector<raft::Message> all;
        for (int t = 0; t <= static_cast<int>(raft::MessageType::TimeoutNow); ++t)
            if (t != static_cast<int>(raft::MessageType::Snapshot)) // only inside a snapshot stream
                all.push_back(message(static_cast<raft::MessageType>(t), static_cast<std::size_t>(t % 3)));
        cases.push_back({"every-message-type", makeCodecInput(envelope(all), Limit1MiB, Decode::Both, false),
                         {.frames = 1, .envelopes = 1, .messages = all.size(), .tooLarge = false, .leftover = 0}});
    }
    // A follower forwards new entries, which get their index only in the leader's log.
    cases.push_back({"forwarded-propose-unindexed",
                     makeCodecInput(hello(77, 2) + envelope({message(raft::MessageType::Propose, 3)}), Limit4096,
                                    Decode::ConnectionOrder, false),
                     {.frames = 2, .hellos = 1, .envelopes = 1, .messages = 1, .tooLarge = false, .leftover = 0}});
    cases.push_back({"votes-and-reads",
                     makeCodecInput(envelope({message(raft::MessageType::Vote), message(raft::MessageType::VoteResponse),
                                              message(raft::MessageType::PreVote), message(raft::MessageType::PreVoteResponse)})
                                        + envelope({message(raft::MessageType::ReadIndex), message(raft::MessageType::ReadIndexResponse)}),
                                    Limit4096, Decode::Both, false, {2}),
                     {.frames = 2, .envelopes = 2, .messages = 6, .tooLarge = false, .leftover = 0}});
    cases.push_back({"append-large-entries-in-pieces",
                     makeCodecInput(envelope({message(raft::MessageType::Append, 5, 1000)}), Limit1MiB, Decode::Both, false,
                                    {255, 0, 17, 1}),
                     {.frames = 1, .envelopes = 1, .messages = 1, .tooLarge = false, .leftover = 0}});
    cases.push_back({"frame-at-the-limit",
                     makeCodecInput(hello(77, 2) + appendOfPayloadSize(256), Limit256, Decode::ConnectionOrder, false, {100}),
                     {.frames = 2, .hellos = 1, .envelopes = 1, .tooLarge = false, .leftover = 0}});
    {
        const std::string over = appendOfPayloadSize(257);
        cases.push_back({"frame-one-over-the-limit",
                         makeCodecInput(hello(77, 2) + over, Limit256, Decode::ConnectionOrder, false, {100}),
                         {.frames = 1, .hellos = 1, .tooLarge = true}});
    }
    {
        // A length far over the limit: refused as soon as the header is in, with the rest unread.
        const std::string rest = randomBytes(rng, 40);
        cases.push_back({"oversized-length",
                         makeCodecInput(hello(77, 2) + lengthHeader(0x7fffffff) + rest, Limit256, Decode::ConnectionOrder, false),
                         {.frames = 1, .hellos = 1, .tooLarge = true, .leftover = 4 + rest.size()}});
        cases.push_back({"oversized-max-length-in-pieces",
                         makeCodecInput(lengthHeader(0xffffffff) + rest, Limit16, Decode::Both, false, {3, 1}),
                         {.frames = 0, .tooLarge = true, .leftover = 4}});
    }
    cases.push_back({"garbage", makeCodecInput(randomBytes(rng, 300), Limit1MiB, Decode::Both, false), {}});
    cases.push_back({"garbage-in-pieces", makeCodecInput(randomBytes(rng, 300), Limit16, Decode::ConnectionOrder, false, {5, 1, 9}), {}});
    {
        // Well-framed, but the payloads are noise.
        std::string stream;
        for (std::size_t n : {1, 3, 17, 60, 200}) {
            stream += lengthHeader(static_cast<std::uint32_t>(n));
            stream += randomBytes(rng, n);
        }
        cases.push_back({"garbage-payloads", makeCodecInput(stream, Limit4096, Decode::Both, false),
                         {.frames = 5, .tooLarge = false, .leftover = 0, .minRefused = 1}});
    }
    // An empty payload is an envelope of no messages, and a hello without ids.
    cases.push_back({"empty-frames",
                     makeCodecInput(lengthHeader(0) + lengthHeader(0) + lengthHeader(0), Limit16, Decode::Both, false, {1}),
                     {.frames = 3, .hellos = 0, .envelopes = 1, .messages = 0, .tooLarge = false, .leftover = 0, .minRefused = 1}});
    {
        std::string stream;
        raft::Message m = message(raft::MessageType::Heartbeat);
        m.type = static_cast<raft::MessageType>(200);
        stream += envelope({m});
        m = message(raft::MessageType::Heartbeat);
        m.from = 0;
        stream += envelope({m});
        m = message(raft::MessageType::Append, 3);
        m.entries[2].index = 99;
        stream += envelope({m});
        m = message(raft::MessageType::Propose, 2);
        m.entries[1].index = 5;
        stream += envelope({m});
        m = message(raft::MessageType::Append, 1);
        m.entries[0].type = static_cast<raft::EntryType>(7);
        stream += envelope({message(raft::MessageType::Heartbeat), m}); // a valid message before the bad one
        cases.push_back({"refused-envelopes", makeCodecInput(stream, Limit4096, Decode::Both, false),
                         {.frames = 5, .envelopes = 0, .tooLarge = false, .leftover = 0, .minRefused = 5}});
    }
    cases.push_back({"hello-without-ids",
                     makeCodecInput(hello(77, 0) + envelope({message(raft::MessageType::Heartbeat)}), Limit256,
                                    Decode::ConnectionOrder, false),
                     {.frames = 2, .hellos = 0, .envelopes = 1, .leftover = 0, .minRefused = 1}});
    {
        const std::string cut = envelope({message(raft::MessageType::Append, 2)});
        cases.push_back({"truncated-mid-frame",
                         makeCodecInput(hello(77, 2) + cut.substr(0, cut.size() - 3), Limit4096, Decode::ConnectionOrder, false, {5}),
                         {.frames = 1, .hellos = 1, .tooLarge = false, .leftover = cut.size() - 3}});
        cases.push_back({"truncated-mid-header", makeCodecInput(hello(77, 2) + cut.substr(0, 2), Limit4096, Decode::ConnectionOrder, false),
                         {.frames = 1, .hellos = 1, .tooLarge = false, .leftover = 2}});
    }
    {
        // Past 64 KiB consumed the reader compacts its buffer: frames keep coming out whole.
        const std::string unit = envelope({message(raft::MessageType::Heartbeat)}) + envelope({message(raft::MessageType::HeartbeatResponse)})
            + hello(77, 3);
        cases.push_back({"repeated-past-compaction", makeCodecInput(unit, Limit256, Decode::Both, true, {13, 1, 64}),
                         {.tooLarge = false, .leftover = 0, .minFrames = 3 * (70000 / unit.size())}});
        cases.push_back({"repeated-misaligned", makeCodecInput(unit.substr(0, unit.size() - 2), Limit256, Decode::Both, true, {200}), {}});
    }
    cases.push_back({"byte-at-a-time", makeCodecInput(connectionStream(), Limit4096, Decode::ConnectionOrder, false, {1}),
                     {.frames = 4, .hellos = 1, .envelopes = 3, .messages = 4, .tooLarge = false, .leftover = 0}});
    cases.push_back({"empty-feeds", makeCodecInput(connectionStream(), Limit4096, Decode::ConnectionOrder, false, {0, 0, 9, 0}),
                     {.frames = 4, .hellos = 1, .envelopes = 3, .messages = 4, .tooLarge = false, .leftover = 0}});
    cases.push_back({"empty-stream", makeCodecInput("", Limit16, Decode::Both, false, {4}), {.frames = 0, .tooLarge = false, .leftover = 0}});
    return cases;
}

CodecOutcome check(const std::string &input)
{
    return checkCodecInput(reinterpret_cast<const std::uint8_t *>(input.data()), input.size());
}

template <typename T>
void expectIfSet(const char *what, const std::optional<T> &expected, const T &actual)
{
    if (expected) {
        EXPECT_EQ(actual, *expected) << what;
    }
}

std::string readFile(const std::filesystem::path &path)
{
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

} // namespace

TEST(CodecCorpus, GeneratedInputsHaveTheirOutcomes)
{
    const auto cases = generateCases();
    ASSERT_GE(cases.size(), 15u);
    const char *dir = std::getenv("DENGINE_WRITE_CORPUS");
    for (const Case &c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_LT(c.input.size(), 20000u);
        const CodecOutcome out = check(c.input);
        EXPECT_TRUE(out.violation.empty()) << out.violation;
        const Expect &e = c.expect;
        expectIfSet("frames", e.frames, out.frames);
        expectIfSet("hellos", e.hellos, out.hellos);
        expectIfSet("envelopes", e.envelopes, out.envelopes);
        expectIfSet("messages", e.messages, out.messages);
        expectIfSet("tooLarge", e.tooLarge, out.tooLarge);
        expectIfSet("leftover", e.leftover, out.leftover);
        EXPECT_GE(out.refused, e.minRefused);
        EXPECT_GE(out.frames, e.minFrames);
        if (dir && *dir) {
            std::ofstream f(std::string(dir) + "/" + c.name, std::ios::binary);
            f << c.input;
            ASSERT_TRUE(f.good());
        }
    }
}

TEST(CodecCorpus, SeedCorpusReplays)
{
    std::vector<std::filesystem::path> files;
    for (const auto &e : std::filesystem::directory_iterator(DENGINE_CODEC_CORPUS_DIR))
        if (e.is_regular_file())
            files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_GE(files.size(), 15u) << "corpus missing in " << DENGINE_CODEC_CORPUS_DIR;
    std::size_t hellos = 0, envelopes = 0, refused = 0, tooLarge = 0;
    for (const auto &path : files) {
        const CodecOutcome out = check(readFile(path));
        EXPECT_TRUE(out.violation.empty()) << path << ": " << out.violation;
        hellos += out.hellos;
        envelopes += out.envelopes;
        refused += out.refused;
        tooLarge += out.tooLarge;
    }
    EXPECT_GT(hellos, 0u);
    EXPECT_GT(envelopes, 0u);
    EXPECT_GT(refused, 0u);
    EXPECT_GT(tooLarge, 0u);
}

TEST(CodecCorpus, GeneratedCasesAreInTheSeedCorpus)
{
    // The checked-in corpus is what the generator writes: a generator change needs a regenerated
    // corpus (see the top of this file), or the fuzzer starts from stale seeds.
    for (const Case &c : generateCases()) {
        const std::filesystem::path path = std::filesystem::path(DENGINE_CODEC_CORPUS_DIR) / c.name;
        ASSERT_TRUE(std::filesystem::exists(path)) << path;
        EXPECT_TRUE(readFile(path) == c.input) << path << " differs from what the generator makes";
    }
}

TEST(CodecCorpus, EveryChunkSizeYieldsTheSameFrames)
{
    const std::string stream = connectionStream();
    for (unsigned chunk = 1; chunk <= 255; ++chunk) {
        for (Decode d : {Decode::ConnectionOrder, Decode::Both}) {
            const CodecOutcome out = check(makeCodecInput(stream, Limit4096, d, false, {static_cast<std::uint8_t>(chunk)}));
            ASSERT_TRUE(out.violation.empty()) << "chunk " << chunk << ": " << out.violation;
            EXPECT_EQ(out.frames, 4u) << "chunk " << chunk;
            if (d == Decode::ConnectionOrder) {
                EXPECT_EQ(out.hellos, 1u) << "chunk " << chunk;
                EXPECT_EQ(out.envelopes, 3u) << "chunk " << chunk;
            }
            EXPECT_EQ(out.leftover, 0u) << "chunk " << chunk;
        }
    }
}

TEST(CodecCorpus, TruncationsAndBitFlipsOfAValidStreamNeverBreakTheCodec)
{
    // A cheap deterministic sweep in the spirit of the fuzzer: every prefix, and a flip of every bit
    // of a valid connection stream, in both decoding modes and a small and a large frame limit.
    const std::string stream = connectionStream();
    std::size_t refused = 0, tooLarge = 0;
    for (unsigned limit : {Limit256, Limit1MiB}) {
        for (Decode d : {Decode::ConnectionOrder, Decode::Both}) {
            for (std::size_t n = 0; n <= stream.size(); ++n) {
                const CodecOutcome out = check(makeCodecInput(stream.substr(0, n), limit, d, false, {7}));
                ASSERT_TRUE(out.violation.empty()) << "prefix " << n << ": " << out.violation;
            }
            for (std::size_t bit = 0; bit < 8 * stream.size(); ++bit) {
                std::string damaged = stream;
                damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
                const CodecOutcome out = check(makeCodecInput(damaged, limit, d, false, {static_cast<std::uint8_t>(1 + bit % 50)}));
                ASSERT_TRUE(out.violation.empty()) << "bit " << bit << ": " << out.violation;
                refused += out.refused;
                tooLarge += out.tooLarge;
            }
        }
    }
    EXPECT_GT(refused, 100u);
    EXPECT_GT(tooLarge, 10u);
}
