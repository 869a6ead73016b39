// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

namespace dengine::raft {

enum class LogLevel { Debug, Info, Warning, Error };

// Where the core's rare, operator-relevant events go (elections, step-downs, rejected
// configuration). The core does no IO itself; the runtime routes these into its logging
// categories and tests may collect them. Called synchronously from whichever thread steps the node.
class Logger {
public:
    virtual ~Logger() = default;
    virtual void log(LogLevel level, std::string_view message) = 0;
};

} // namespace dengine::raft
