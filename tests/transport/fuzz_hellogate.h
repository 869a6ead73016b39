// SPDX-License-Identifier: Apache-2.0
// The handshake fuzzer's entry point (transport/hellogate.h), shared by the libFuzzer target and the
// replay test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dengine::transport::test {

// An input is what a stranger sends before it is anyone, and how it arrives:
//   byte 0: the policy: bit 0 TLS; bits 1-3 the member its certificate names (0-7); members are
//           nodes 1-5 of cluster 7, this node is 1
//   byte 1: k, chunk sizes that follow (at most 15); the stream is fed in pieces of these sizes,
//           cycled (0 is an empty feed; none: whole)
//   then k bytes of sizes, then the stream.
//
// Checks: nothing crashes; the gate never buffers more than a Hello and its frame header before it
// decides; once decided it stays decided; it accepts only a member other than this node of this
// cluster, over TLS only the one the certificate names, and then hands back exactly the bytes that
// followed the Hello; a refusal has a reason; the outcome does not depend on the chunking (the
// stream fed whole decides the same). Returns the violated property, or an empty string.
std::string checkHelloGateInput(const std::uint8_t *data, std::size_t size);

} // namespace dengine::transport::test
