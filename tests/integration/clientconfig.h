// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengineclient.h>

namespace dengine::test {

// A DEngineClient's configuration for the test clusters of denginedcluster.h: plain TCP (the TLS
// client port has tests of its own), a short heartbeat.
inline DEngineClientConfig insecureClientConfig(const QStringList &endpoints)
{
    DEngineClientConfig c;
    c.endpoints = endpoints;
    c.insecure = true;
    c.requestTimeoutMs = 5000;
    c.heartbeatMs = 200;
    return c;
}

} // namespace dengine::test
