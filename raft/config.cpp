// SPDX-License-Identifier: Apache-2.0
#include "raft/config.h"

namespace dengine::raft {

std::string Config::validate() const
{
    if (id == NoNode)
        return "id: must not be 0 (0 means \"no node\")";
    if (heartbeatTick <= 0)
        return "heartbeatTick: must be positive";
    if (electionTick <= heartbeatTick)
        return "electionTick: must be greater than heartbeatTick";
    if (maxSizePerMsg == 0)
        return "maxSizePerMsg: must be positive";
    if (maxCommittedSizePerReady == 0)
        return "maxCommittedSizePerReady: must be positive";
    if (maxInflightMsgs == 0)
        return "maxInflightMsgs: must be positive";
    if (maxInflightBytes == 0)
        return "maxInflightBytes: must be positive";
    if (maxInflightBytes < maxSizePerMsg)
        return "maxInflightBytes: must be at least maxSizePerMsg";
    if (readOnlyOption != ReadOnlyOption::Safe && !checkQuorum)
        return "readOnlyOption: lease reads are only safe with checkQuorum enabled";
    if (leaseDriftTicks < 0 || leaseDriftTicks >= electionTick - 1)
        return "leaseDriftTicks: must be in [0, electionTick - 1)";
    return {};
}

} // namespace dengine::raft
