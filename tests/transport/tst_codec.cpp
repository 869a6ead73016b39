// SPDX-License-Identifier: Apache-2.0
// The wire codec between nodes: every field survives a round trip, and bytes from the network that
// are not a well-formed frame are refused with a reason, never crash or hang the reader.
#include "raft/random.h"
#include "transport/codec.h"

#include <gtest/gtest.h>

using namespace dengine;
using namespace dengine::transport;

namespace {

raft::Message sample(raft::MessageType type, std::size_t entries)
{
    raft::Message m;
    m.type = type;
    m.from = 3;
    m.to = 1;
    m.term = 7;
    m.logTerm = 6;
    m.index = 41;
    m.commit = 40;
    m.reject = type == raft::MessageType::AppendResponse;
    m.rejectHint = 12;
    m.context = 0xfeedfacecafebeefULL;
    const bool proposal = type == raft::MessageType::Propose; // forwarded entries have no term or index yet
    for (std::size_t i = 0; i < entries; ++i)
        m.entries.push_back(raft::Entry{proposal ? raft::Term{0} : raft::Term{7}, proposal ? raft::Index{0} : raft::Index{42 + i},
                                        raft::EntryType::Normal, raft::Payload(std::string(i * 37, static_cast<char>('a' + i)))});
    return m;
}

void expectSame(const raft::Message &a, const raft::Message &b)
{
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.from, b.from);
    EXPECT_EQ(a.to, b.to);
    EXPECT_EQ(a.term, b.term);
    EXPECT_EQ(a.logTerm, b.logTerm);
    EXPECT_EQ(a.index, b.index);
    EXPECT_EQ(a.commit, b.commit);
    EXPECT_EQ(a.reject, b.reject);
    EXPECT_EQ(a.rejectHint, b.rejectHint);
    EXPECT_EQ(a.context, b.context);
    ASSERT_EQ(a.entries.size(), b.entries.size());
    for (std::size_t i = 0; i < a.entries.size(); ++i) {
        EXPECT_EQ(a.entries[i].index, b.entries[i].index);
        EXPECT_EQ(a.entries[i].term, b.entries[i].term);
        EXPECT_EQ(a.entries[i].type, b.entries[i].type);
        EXPECT_EQ(a.entries[i].data.view(), b.entries[i].data.view());
    }
}

std::string payloadOf(const std::string &frame) { return frame.substr(FrameHeaderBytes); }

} // namespace

TEST(Codec, envelope_roundTripsEveryMessageType)
{
    std::vector<raft::Message> in;
    for (int t = 0; t <= static_cast<int>(raft::MessageType::TimeoutNow); ++t)
        if (t != static_cast<int>(raft::MessageType::Snapshot)) // only inside a snapshot stream
            in.push_back(sample(static_cast<raft::MessageType>(t), static_cast<std::size_t>(t % 4)));
    std::string frame;
    appendEnvelope(frame, in);
    std::vector<raft::Message> out;
    std::string why;
    ASSERT_TRUE(decodeEnvelope(payloadOf(frame), out, why)) << why;
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i)
        expectSame(in[i], out[i]);
}

TEST(Codec, snapshotStream_chunksAndAcksRoundTrip_andABareSnapshotMessageIsRefused)
{
    SnapshotChunk c;
    c.index = 5000;
    c.term = 3;
    c.offset = 1 << 20;
    c.data = std::string(1000, 'x');
    c.last = true;
    c.message = sample(raft::MessageType::Snapshot, 0);
    std::string frame;
    appendSnapshotChunk(frame, c);
    Frame f;
    std::string why;
    ASSERT_TRUE(decodeFrame(payloadOf(frame), f, why)) << why;
    ASSERT_TRUE(f.chunk.has_value());
    EXPECT_EQ(f.chunk->offset, c.offset);
    EXPECT_EQ(f.chunk->data, c.data);
    EXPECT_TRUE(f.chunk->last);
    expectSame(c.message, f.chunk->message);

    std::string ackFrame;
    appendSnapshotAck(ackFrame, SnapshotAck{5000, 3, 123, false, "checksum mismatch"});
    Frame a;
    ASSERT_TRUE(decodeFrame(payloadOf(ackFrame), a, why)) << why;
    ASSERT_TRUE(a.ack.has_value());
    EXPECT_EQ(a.ack->received, 123u);
    EXPECT_EQ(a.ack->refused, "checksum mismatch");

    // The last chunk must carry a snapshot message; a snapshot message alone is not a stream.
    c.message = sample(raft::MessageType::Append, 1);
    std::string wrong;
    appendSnapshotChunk(wrong, c);
    Frame w;
    EXPECT_FALSE(decodeFrame(payloadOf(wrong), w, why));

    // A last chunk with no message at all is refused with a reason (found by fuzz_codec). Protobuf
    // merges a repeated embedded message, so a second `chunk` field setting only `last` (field 5)
    // turns a middle chunk into a last one without a message.
    c.last = false;
    std::string middle;
    appendSnapshotChunk(middle, c);
    const std::string lastWithoutMessage = std::string(payloadOf(middle)) + std::string("\x12\x02\x28\x01", 4);
    Frame n;
    why.clear();
    EXPECT_FALSE(decodeFrame(lastWithoutMessage, n, why));
    EXPECT_NE(why.find("does not carry a snapshot message"), std::string::npos) << why;
    std::string bare;
    appendEnvelope(bare, {sample(raft::MessageType::Snapshot, 0)});
    std::vector<raft::Message> out;
    EXPECT_FALSE(decodeEnvelope(payloadOf(bare), out, why));
    EXPECT_NE(why.find("outside a snapshot stream"), std::string::npos) << why;
}

TEST(Codec, removalNotice_roundTrips_andOrdinaryFramesCarryNone)
{
    std::string frame;
    appendRemovalNotice(frame, 4711);
    Frame f;
    std::string why;
    ASSERT_TRUE(decodeFrame(payloadOf(frame), f, why)) << why;
    EXPECT_EQ(f.removedAt, 4711u);
    EXPECT_TRUE(f.messages.empty());
    std::string plain;
    appendEnvelope(plain, {sample(raft::MessageType::Heartbeat, 0)});
    Frame g;
    ASSERT_TRUE(decodeFrame(payloadOf(plain), g, why)) << why;
    EXPECT_EQ(g.removedAt, 0u);
}

TEST(Codec, forwardedProposal_carriesUnindexedEntries_andRefusesIndexedOnes)
{
    // A follower forwards new entries, which get their index only in the leader's log.
    std::vector<raft::Message> in{sample(raft::MessageType::Propose, 3)};
    std::string frame;
    appendEnvelope(frame, in);
    std::vector<raft::Message> out;
    std::string why;
    ASSERT_TRUE(decodeEnvelope(payloadOf(frame), out, why)) << why;
    expectSame(in[0], out[0]);
    in[0].entries[1].index = 5;
    frame.clear();
    appendEnvelope(frame, in);
    EXPECT_FALSE(decodeEnvelope(payloadOf(frame), out, why));
    EXPECT_NE(why.find("proposal"), std::string::npos) << why;
}

TEST(Codec, hello_roundTripsAndRequiresIds)
{
    std::string frame;
    appendHello(frame, Hello{99, 2, ProtocolVersion, "127.0.0.1:7002"});
    Hello h;
    std::string why;
    ASSERT_TRUE(decodeHello(payloadOf(frame), h, why)) << why;
    EXPECT_EQ(h.clusterId, 99u);
    EXPECT_EQ(h.nodeId, 2u);
    EXPECT_EQ(h.protocolVersion, ProtocolVersion);
    EXPECT_EQ(h.address, "127.0.0.1:7002");

    std::string anonymous;
    appendHello(anonymous, Hello{99, 0, ProtocolVersion, {}});
    EXPECT_FALSE(decodeHello(payloadOf(anonymous), h, why));
    EXPECT_NE(why.find("node id"), std::string::npos) << why;
}

TEST(Codec, frameReader_reassemblesFramesSplitAnywhere)
{
    std::string stream;
    std::vector<std::vector<raft::Message>> sent;
    for (int i = 0; i < 20; ++i) {
        sent.push_back({sample(raft::MessageType::Append, static_cast<std::size_t>(i % 5))});
        appendEnvelope(stream, sent.back());
    }
    raft::Random rng(5);
    FrameReader reader(1 << 20);
    std::size_t pos = 0, got = 0;
    std::string payload;
    while (pos < stream.size()) {
        const std::size_t n = std::min<std::size_t>(stream.size() - pos, 1 + rng.below(97));
        reader.feed(stream.data() + pos, n);
        pos += n;
        while (reader.next(payload) == FrameReader::Result::Frame) {
            std::vector<raft::Message> out;
            std::string why;
            ASSERT_TRUE(decodeEnvelope(payload, out, why)) << why;
            ASSERT_EQ(out.size(), 1u);
            expectSame(sent[got][0], out[0]);
            ++got;
        }
    }
    EXPECT_EQ(got, sent.size());
    EXPECT_EQ(reader.buffered(), 0u);
}

TEST(Codec, frameReader_refusesAnOversizedLength)
{
    FrameReader reader(1024);
    const char header[4] = {0x01, 0x10, 0x00, 0x00}; // 4097 bytes announced
    reader.feed(header, 4);
    std::string payload;
    EXPECT_EQ(reader.next(payload), FrameReader::Result::TooLarge);
}

TEST(Codec, envelope_refusesGarbageAndNonsense)
{
    std::vector<raft::Message> out;
    std::string why;
    EXPECT_FALSE(decodeEnvelope(std::string("\xff\xff\xff\xff\xff", 5), out, why));
    EXPECT_FALSE(why.empty());

    raft::Message m = sample(raft::MessageType::Append, 3);
    m.entries[2].index = 99; // a gap
    std::string frame;
    appendEnvelope(frame, {m});
    EXPECT_FALSE(decodeEnvelope(payloadOf(frame), out, why));
    EXPECT_NE(why.find("consecutive"), std::string::npos) << why;

    m = sample(raft::MessageType::Heartbeat, 0);
    m.from = 0;
    frame.clear();
    appendEnvelope(frame, {m});
    EXPECT_FALSE(decodeEnvelope(payloadOf(frame), out, why));
    EXPECT_NE(why.find("sender"), std::string::npos) << why;

    m = sample(raft::MessageType::Heartbeat, 0);
    m.type = static_cast<raft::MessageType>(200);
    frame.clear();
    appendEnvelope(frame, {m});
    EXPECT_FALSE(decodeEnvelope(payloadOf(frame), out, why));
    EXPECT_NE(why.find("unknown type"), std::string::npos) << why;
}

TEST(Codec, randomDamage_neverCrashesTheDecoder)
{
    // Valid frames with random bytes changed, cut or appended: the decoder either refuses them or
    // returns messages that pass its own checks. (Run under the sanitizers in CI.)
    std::string frame;
    appendEnvelope(frame, {sample(raft::MessageType::Append, 4), sample(raft::MessageType::ReadIndex, 0)});
    const std::string good = payloadOf(frame);
    std::size_t refused = 0, accepted = 0;
    for (std::uint64_t seed = 1; seed <= 3000; ++seed) {
        raft::Random rng(seed);
        std::string bytes = good;
        const int edits = 1 + static_cast<int>(rng.below(4));
        for (int e = 0; e < edits; ++e) {
            switch (rng.below(3)) {
            case 0:
                bytes[rng.below(bytes.size())] = static_cast<char>(rng.next());
                break;
            case 1:
                bytes.resize(rng.below(bytes.size() + 1));
                break;
            default:
                bytes.push_back(static_cast<char>(rng.next()));
                break;
            }
            if (bytes.empty())
                bytes.push_back('\x08');
        }
        std::vector<raft::Message> out;
        std::string why;
        if (!decodeEnvelope(bytes, out, why)) {
            ++refused;
            EXPECT_FALSE(why.empty()) << "seed " << seed;
            continue;
        }
        ++accepted;
        for (const raft::Message &m : out) {
            EXPECT_NE(m.from, 0u) << "seed " << seed;
            EXPECT_NE(m.to, 0u) << "seed " << seed;
            for (std::size_t i = 1; i < m.entries.size(); ++i)
                EXPECT_EQ(m.entries[i].index, m.entries[i - 1].index + 1) << "seed " << seed;
        }
    }
    EXPECT_GT(refused, 100u);
    EXPECT_GT(accepted, 0u);
}
