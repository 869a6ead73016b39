// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dengine::clientwire::test {

// Feeds `data` to the client protocol's decoders as a server and a client would (a byte stream
// split into frames by a FrameReader, every payload decoded as a request and as a response) and
// checks the codec's promises: what decodes obeys its rules and re-encodes to something that
// decodes the same; what is refused says why. Empty when they hold, else the first violation.
std::string checkClientCodecInput(const std::uint8_t *data, std::size_t size);

} // namespace dengine::clientwire::test
