// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengineclient.h>

namespace dengine::cli {

struct BenchOptions {
    QString rows = QStringLiteral("put:1,put:16,put:64,lget:16,sget:16");
    int seconds = 5;
    int valueSize = 128;
    int timeoutMs = 10000; // to become ready
    bool json = false;
};

// Runs `dengine bench` (bench.cpp says what it measures) and returns the exit status: 0 done, 2 bad
// rows, 3 no ready member, 4 calls failed. Blocks, running the event loop, for the rows' time.
int runBench(const DEngineClientConfig &config, const BenchOptions &options);

} // namespace dengine::cli
