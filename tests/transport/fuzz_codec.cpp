// SPDX-License-Identifier: Apache-2.0
// Fuzzer for the wire codec: arbitrary bytes from a peer, arriving in arbitrary pieces, through the
// FrameReader and the payload decoders (decodeHello, decodeEnvelope, decodeFrame). Nothing may crash or hang.
// The reader is checked against a model of the framing at every call; every payload it returns is
// decoded, and whatever decodes must satisfy the decoder's own rules and survive a re-encoding.
//
// Build with clang -fsanitize=fuzzer (see CMakeLists.txt); tst_codec_corpus replays the seed
// corpus through the same function with any compiler.
#include "fuzz_codec.h"

#include "transport/codec.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

namespace dengine::transport::test {

namespace {

constexpr std::size_t RepeatUntil = 70000;
constexpr std::size_t MaxRememberedPayloads = 4096;

std::uint32_t readLength(const std::string &stream, std::size_t at)
{
    const auto b = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(stream[at + k])); };
    return b(0) | b(1) << 8 | b(2) << 16 | b(3) << 24;
}

std::string describe(FrameReader::Result r)
{
    switch (r) {
    case FrameReader::Result::Frame: return "Frame";
    case FrameReader::Result::NeedMore: return "NeedMore";
    case FrameReader::Result::TooLarge: return "TooLarge";
    }
    return "?";
}

// The first difference between two message lists, or empty.
std::string compareMessages(const std::vector<raft::Message> &a, const std::vector<raft::Message> &b)
{
    if (a.size() != b.size())
        return std::to_string(a.size()) + " messages became " + std::to_string(b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        const raft::Message &x = a[i];
        const raft::Message &y = b[i];
        const std::string at = "message " + std::to_string(i) + ": ";
        if (x.type != y.type || x.from != y.from || x.to != y.to || x.term != y.term || x.logTerm != y.logTerm
            || x.index != y.index || x.commit != y.commit || x.reject != y.reject || x.rejectHint != y.rejectHint
            || x.context != y.context)
            return at + "a field changed";
        if (x.entries.size() != y.entries.size())
            return at + std::to_string(x.entries.size()) + " entries became " + std::to_string(y.entries.size());
        for (std::size_t k = 0; k < x.entries.size(); ++k) {
            const raft::Entry &e = x.entries[k];
            const raft::Entry &f = y.entries[k];
            if (e.term != f.term || e.index != f.index || e.type != f.type || !(e.data == f.data))
                return at + "entry " + std::to_string(k) + " changed";
        }
    }
    return {};
}

// The single payload of a frame made by appendHello / appendEnvelope, read back through a reader.
std::string singlePayload(const std::string &frame, std::string &payload)
{
    if (frame.size() < FrameHeaderBytes || readLength(frame, 0) != frame.size() - FrameHeaderBytes)
        return "the encoder's length header does not match its frame";
    FrameReader reader(std::numeric_limits<std::uint32_t>::max());
    reader.feed(frame.data(), frame.size());
    if (reader.next(payload) != FrameReader::Result::Frame || reader.buffered() != 0)
        return "the reader does not return an encoded frame whole";
    if (reader.next(payload) != FrameReader::Result::NeedMore)
        return "the reader returns more than the one encoded frame";
    return {};
}

// A decoded envelope's messages obey the rules decodeEnvelope promises to check.
std::string checkRules(const raft::Message &m)
{
    if (static_cast<unsigned>(m.type) > static_cast<unsigned>(raft::MessageType::TimeoutNow))
        return "a message of unknown type passed";
    if (m.from == raft::NoNode || m.to == raft::NoNode)
        return "a message without sender or recipient passed";
    for (std::size_t k = 0; k < m.entries.size(); ++k) {
        const raft::Entry &e = m.entries[k];
        if (static_cast<unsigned>(e.type) > static_cast<unsigned>(raft::EntryType::ConfChange))
            return "an entry of unknown type passed";
        if (m.type == raft::MessageType::Propose) {
            if (e.index != 0)
                return "a forwarded proposal with an indexed entry passed";
        } else if (k > 0 && e.index != m.entries[k - 1].index + 1) {
            return "entries with non-consecutive indexes passed";
        }
    }
    return {};
}

class Checker {
public:
    explicit Checker(CodecOutcome &out) : m_out(out) {}

    bool failed() const { return !m_out.violation.empty(); }
    void fail(std::string what)
    {
        if (m_out.violation.empty())
            m_out.violation = std::move(what);
    }

    void hello(const std::string &payload)
    {
        if (!firstTime('h', payload))
            return;
        Hello h;
        std::string why;
        if (!decodeHello(payload, h, why)) {
            ++m_out.refused;
            if (why.empty())
                fail("decodeHello refused a payload without saying why");
            return;
        }
        ++m_out.hellos;
        if (h.clusterId == 0 || h.nodeId == raft::NoNode)
            return fail("decodeHello accepted a hello without cluster or node id");
        std::string frame, again;
        appendHello(frame, h);
        std::string reread;
        if (std::string e = singlePayload(frame, reread); !e.empty())
            return fail("hello: " + e);
        Hello back;
        if (!decodeHello(reread, back, why))
            return fail("a re-encoded hello does not decode: " + why);
        if (back.clusterId != h.clusterId || back.nodeId != h.nodeId || back.protocolVersion != h.protocolVersion
            || back.address != h.address)
            return fail("a re-encoded hello decodes to another hello");
        appendHello(again, back);
        if (again != frame)
            return fail("a hello's encoding is not stable");
    }

    void envelope(const std::string &payload)
    {
        if (!firstTime('e', payload))
            return;
        // decodeEnvelope appends: what `out` held before stays as it was.
        std::vector<raft::Message> out(1);
        out[0].type = raft::MessageType::TimeoutNow;
        out[0].context = 0x5e5e;
        std::string why;
        // The same payload as a whole frame (messages, snapshot chunk, acknowledgement).
        Frame frameOut;
        std::string frameWhy;
        const bool frameOk = decodeFrame(payload, frameOut, frameWhy);
        if (!frameOk && frameWhy.empty())
            return fail("decodeFrame refused a payload without saying why");
        if (frameOk && frameOut.chunk && frameOut.chunk->last && frameOut.chunk->message.type != raft::MessageType::Snapshot)
            return fail("decodeFrame took a last snapshot chunk without a snapshot message");
        if (frameOk && frameOut.chunk && frameOut.chunk->index == 0)
            return fail("decodeFrame took a snapshot chunk without a snapshot");
        if (!decodeEnvelope(payload, out, why)) {
            if (frameOk)
                return fail("decodeFrame took a payload whose messages decodeEnvelope refused");
            ++m_out.refused;
            if (why.empty())
                fail("decodeEnvelope refused a payload without saying why");
            return;
        }
        ++m_out.envelopes;
        if (out.empty() || out[0].type != raft::MessageType::TimeoutNow || out[0].context != 0x5e5e || !out[0].entries.empty())
            return fail("decodeEnvelope changed what its output held before");
        const std::vector<raft::Message> messages(std::make_move_iterator(out.begin() + 1), std::make_move_iterator(out.end()));
        m_out.messages += messages.size();
        for (const raft::Message &m : messages)
            if (std::string e = checkRules(m); !e.empty())
                return fail(e);

        std::string frame;
        appendEnvelope(frame, messages);
        std::string reread;
        if (std::string e = singlePayload(frame, reread); !e.empty())
            return fail("envelope: " + e);
        std::vector<raft::Message> back;
        if (!decodeEnvelope(reread, back, why))
            return fail("a re-encoded envelope does not decode: " + why);
        if (std::string diff = compareMessages(messages, back); !diff.empty())
            return fail("a re-encoded envelope decodes to other messages: " + diff);
        std::string again;
        appendEnvelope(again, back);
        if (again != frame)
            return fail("an envelope's encoding is not stable");
    }

private:
    // Payloads are decoded once each (a repeated stream repeats them).
    bool firstTime(char kind, const std::string &payload)
    {
        if (m_seen.size() >= MaxRememberedPayloads)
            return true;
        return m_seen.insert(kind + payload).second;
    }

    CodecOutcome &m_out;
    std::set<std::string> m_seen;
};

} // namespace

std::uint32_t codecFrameLimit(unsigned flags)
{
    static constexpr std::uint32_t limits[4] = {16, 256, 4096, 1u << 20};
    return limits[flags & 3];
}

std::string makeCodecInput(const std::string &stream, unsigned limitSelector, Decode decode, bool repeat,
                           const std::vector<std::uint8_t> &chunks)
{
    const std::size_t k = chunks.size() > 15 ? 15 : chunks.size();
    std::string out(1, '\0');
    out[0] = static_cast<char>((limitSelector & 3) | (decode == Decode::ConnectionOrder ? 4 : 0) | (repeat ? 8 : 0) | (k << 4));
    for (std::size_t i = 0; i < k; ++i)
        out.push_back(static_cast<char>(chunks[i]));
    return out + stream;
}

CodecOutcome checkCodecInput(const std::uint8_t *data, std::size_t size)
{
    CodecOutcome result;
    if (size == 0)
        return result;
    const unsigned flags = data[0];
    const std::uint32_t limit = codecFrameLimit(flags);
    const bool connectionOrder = (flags & 4) != 0;
    const std::size_t k = std::min<std::size_t>(flags >> 4, size - 1);
    std::vector<std::size_t> chunks(data + 1, data + 1 + k);
    bool anyBytes = false;
    for (std::size_t c : chunks)
        anyBytes = anyBytes || c > 0;
    if (!anyBytes)
        chunks.clear();

    std::string stream(reinterpret_cast<const char *>(data + 1 + k), size - 1 - k);
    if ((flags & 8) && !stream.empty()) {
        const std::string once = stream;
        while (stream.size() <= RepeatUntil)
            stream += once;
    }

    Checker check(result);
    FrameReader reader(limit);
    std::size_t fed = 0;      // bytes handed to the reader
    std::size_t consumed = 0; // bytes of the frames it returned (the model's cursor)
    std::size_t turn = 0;
    std::string payload;
    // Feeds until the stream is used up; an empty stream still gets one (empty) feed.
    do {
        const std::size_t n = chunks.empty() ? stream.size() - fed : std::min(chunks[turn++ % chunks.size()], stream.size() - fed);
        reader.feed(stream.data() + fed, n);
        fed += n;
        for (;;) {
            // What the reader must answer now.
            FrameReader::Result expect = FrameReader::Result::NeedMore;
            std::uint32_t length = 0;
            if (fed - consumed >= FrameHeaderBytes) {
                length = readLength(stream, consumed);
                if (length > limit)
                    expect = FrameReader::Result::TooLarge;
                else if (fed - consumed >= FrameHeaderBytes + length)
                    expect = FrameReader::Result::Frame;
            }
            const FrameReader::Result got = reader.next(payload);
            if (got != expect) {
                check.fail("the reader answered " + describe(got) + " where " + describe(expect) + " was due, with "
                           + std::to_string(fed - consumed) + " bytes buffered and a frame limit of " + std::to_string(limit));
                return result;
            }
            if (got == FrameReader::Result::TooLarge) {
                // Final: the stream cannot be trusted, whatever follows. Said at once, with only the
                // bytes fed so far buffered, not after waiting for the frame.
                result.tooLarge = true;
                if (reader.next(payload) != FrameReader::Result::TooLarge)
                    check.fail("TooLarge was not final");
                if (reader.buffered() != fed - consumed)
                    check.fail("the reader buffers bytes it was not given");
                result.leftover = reader.buffered();
                return result;
            }
            if (got == FrameReader::Result::NeedMore) {
                if (reader.buffered() != fed - consumed)
                    check.fail("the reader holds " + std::to_string(reader.buffered()) + " bytes, not the "
                               + std::to_string(fed - consumed) + " fed and not returned");
                break;
            }
            if (payload.size() != length || payload.compare(0, std::string::npos, stream, consumed + FrameHeaderBytes, length) != 0) {
                check.fail("frame " + std::to_string(result.frames) + " is not the bytes the stream holds");
                return result;
            }
            consumed += FrameHeaderBytes + length;
            if (reader.buffered() != fed - consumed) {
                check.fail("the reader holds another number of bytes after a frame than it was fed");
                return result;
            }
            if (!connectionOrder || result.frames == 0)
                check.hello(payload);
            if (!connectionOrder || result.frames > 0)
                check.envelope(payload);
            ++result.frames;
            if (check.failed())
                return result;
        }
        if (check.failed())
            return result;
    } while (fed < stream.size());
    result.leftover = reader.buffered();
    return result;
}

} // namespace dengine::transport::test

#ifndef DENGINE_NO_FUZZ_MAIN
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const auto outcome = dengine::transport::test::checkCodecInput(data, size);
    if (!outcome.violation.empty()) {
        std::fprintf(stderr, "wire codec property violated: %s\n", outcome.violation.c_str());
        std::abort();
    }
    return 0;
}
#endif
