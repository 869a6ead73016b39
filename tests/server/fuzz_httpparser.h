// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dengine::server::test {

// The HTTP parser's properties over one input (the fuzz target's body, also run by the unit test
// over a deterministic sweep): the first byte picks the limits and how the rest is cut into feeds;
// the rest is the stream. Empty when every property held, else what broke.
std::string checkHttpParserInput(const std::uint8_t *data, std::size_t size);

} // namespace dengine::server::test
