// SPDX-License-Identifier: Apache-2.0
// The entry point of the wire codec fuzzer, shared by the libFuzzer target and the corpus replay test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dengine::transport::test {

// An input is a byte stream as a peer would send it, and the way it arrives:
//   byte 0: flags
//     bits 0-1  the reader's frame limit: 16, 256, 4096 or 1 MiB bytes (codecFrameLimit)
//     bit 2     connection order: the first frame is decoded as a Hello, every later one as an
//               Envelope (else every frame is decoded as both)
//     bit 3     the stream is repeated until it passes 70 000 bytes, so that the reader compacts its
//               buffer (it does so past 64 KiB consumed)
//     bits 4-7  k, the number of chunk sizes that follow
//   bytes 1..k: chunk sizes: the stream is fed to the FrameReader in pieces of these many bytes, the
//               sizes taken in turn and cycled (0 is an empty feed); k == 0, or sizes that are all
//               zero, feed the stream whole
//   the rest:   the stream
struct CodecOutcome {
    std::string violation; // empty, or the broken property: the fuzzer aborts on it
    std::size_t frames = 0;    // payloads the reader returned
    std::size_t hellos = 0;    // payloads decoded as a valid Hello
    std::size_t envelopes = 0; // payloads decoded as a valid Envelope
    std::size_t messages = 0;  // the messages in those envelopes
    std::size_t refused = 0;   // decode attempts refused (with a reason)
    bool tooLarge = false;     // the reader reported a frame over the limit
    std::size_t leftover = 0;  // bytes still buffered at the end (an incomplete frame)
};

// Checks, for every input: nothing crashes or hangs; the reader returns exactly the frames of the
// stream, in order, whatever the chunking, and reports TooLarge (finally) as soon as a length over
// the limit is readable, without waiting for that frame's bytes; a refused payload comes with a
// reason; a decoded Hello has both ids, a decoded Envelope only messages that pass the decoder's
// own rules, and both re-encode to a frame that decodes to the same values and re-encodes to the
// same bytes.
CodecOutcome checkCodecInput(const std::uint8_t *data, std::size_t size);

enum class Decode { Both, ConnectionOrder };
std::uint32_t codecFrameLimit(unsigned flags);
// `limitSelector` picks the frame limit (0-3, see above).
std::string makeCodecInput(const std::string &stream, unsigned limitSelector, Decode decode, bool repeat,
                           const std::vector<std::uint8_t> &chunks = {});

} // namespace dengine::transport::test
