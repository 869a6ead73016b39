// SPDX-License-Identifier: Apache-2.0
#include "raft/rawnode.h"

#include <stdexcept>
#include <string>

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
    RaftLog &log = m_raft.log();
    Ready rd;
    // Committed entries first: applying them may change the configuration, and what that brings
    // (a leader leaving a joint configuration appends an entry; a removed leader steps down and
    // hands over) belongs in this same Ready. Read before anything is marked as handed out, so a
    // storage failure leaves the node as it was.
    if (log.hasCommittedToApply()) {
        rd.committedEntries = log.committedToApply();
        log.acceptApplying(rd.committedEntries.back().index);
        m_raft.onApplied(rd.committedEntries);
    }
    m_raft.flush();
    rd.softStates = m_raft.takeSoftStateLog();
    const SoftState soft = m_raft.softState();
    if (soft != m_prevSoft) {
        rd.softState = soft;
        m_prevSoft = soft;
    }
    const bool writesEntries = log.hasUnstableToHandOut();
    const HardState hard = m_raft.hardState();
    if (writesEntries || hard != m_prevHard)
        rd.writeId = ++m_lastWriteId;
    if (writesEntries) {
        if (const Snapshot *snap = log.unstableSnapshotToHandOut()) {
            rd.snapshot = *snap;
            // The state machine restores it with this Ready: it counts as applied from now on.
            if (!rd.committedEntries.empty())
                throw std::logic_error("raft: a Ready with a snapshot has committed entries");
            log.acceptApplying(snap->metadata.index);
        }
        rd.entries = log.unstableToHandOut();
        log.acceptUnstable(rd.writeId);
    }
    if (hard != m_prevHard) {
        rd.hardState = hard;
        rd.mustSync = hard.term != m_prevHard.term || hard.vote != m_prevHard.vote;
        m_prevHard = hard;
    }
    rd.mustSync = rd.mustSync || !rd.entries.empty() || rd.snapshot.has_value();
    rd.messages.swap(m_raft.m_msgs);
    rd.messagesAfterPersist.swap(m_raft.m_msgsAfterPersist);
    rd.readStates.swap(m_raft.m_readStates);
    rd.droppedReads.swap(m_raft.m_droppedReads);
    return rd;
}

void RawNode::acknowledgePersisted(std::uint64_t writeId)
{
    if (writeId == 0 || writeId > m_lastWriteId)
        throw std::invalid_argument("raft: acknowledged write " + std::to_string(writeId) + ", but the last write handed out is "
                                    + std::to_string(m_lastWriteId));
    m_raft.acknowledgePersisted(writeId);
}

} // namespace dengine::raft
