// SPDX-License-Identifier: Apache-2.0
#include "raft/rawnode.h"

namespace dengine::raft {

RawNode::RawNode(const Config &config, Storage &storage) : m_raft(config, storage)
{
    m_prevSoft = m_raft.softState();
    m_raft.takeSoftStateLog();
    m_prevHard = m_raft.hardState(); // what the storage holds already is not handed out again
}

bool RawNode::hasReady() const
{
    // flush() may create messages; conservatively report work when it has any to do.
    const Raft &r = m_raft;
    return r.softState() != m_prevSoft || r.hasSoftStateLog() || r.hardState() != m_prevHard || r.log().hasUnstableToHandOut()
        || r.log().hasCommittedToApply() || !r.m_msgs.empty() || !r.m_msgsAfterPersist.empty() || !r.m_readStates.empty()
        || !r.m_droppedReads.empty() || r.hasPendingFlush();
}

Ready RawNode::ready()
{
    m_raft.flush();
    Ready rd;
    rd.softStates = m_raft.takeSoftStateLog();
    const SoftState soft = m_raft.softState();
    if (soft != m_prevSoft) {
        rd.softState = soft;
        m_prevSoft = soft;
    }
    RaftLog &log = m_raft.log();
    if (log.hasUnstableToHandOut()) {
        rd.entries = log.unstableToHandOut();
        log.acceptUnstable();
    }
    const HardState hard = m_raft.hardState();
    if (hard != m_prevHard) {
        rd.hardState = hard;
        rd.mustSync = hard.term != m_prevHard.term || hard.vote != m_prevHard.vote;
        m_prevHard = hard;
    }
    rd.mustSync = rd.mustSync || !rd.entries.empty();
    if (log.hasCommittedToApply()) {
        rd.committedEntries = log.committedToApply();
        log.acceptApplying(rd.committedEntries.back().index);
        m_raft.reduceUncommittedSize(rd.committedEntries);
    }
    rd.messages.swap(m_raft.m_msgs);
    rd.messagesAfterPersist.swap(m_raft.m_msgsAfterPersist);
    rd.readStates.swap(m_raft.m_readStates);
    rd.droppedReads.swap(m_raft.m_droppedReads);
    return rd;
}

} // namespace dengine::raft
