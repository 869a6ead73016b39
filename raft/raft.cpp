// SPDX-License-Identifier: Apache-2.0
#include "raft/raft.h"

#include "raft/confchange.h"
#include "raft/logger.h"

#include <algorithm>
#include <stdexcept>

namespace dengine::raft {

namespace {

bool isResponseToAttest(MessageType type)
{
    // These tell the recipient something about this node's durable state (its vote, its log), so
    // they may only leave once that state is on disk. Everything else may go at once: a leader's
    // Appends and heartbeats (its term and vote were made durable before it asked for votes, and
    // Raft lets it write its own log in parallel with the followers, thesis §10.2.1), pre-votes
    // (they change no state), heartbeat responses and forwarded requests (they claim nothing).
    switch (MessageType(type)) {
    case MessageType::Vote:
    case MessageType::VoteResponse:
    case MessageType::AppendResponse:
    case MessageType::SnapshotResponse:
        return true;
    default:
        return false;
    }
}

MessageType responseTypeFor(MessageType request)
{
    return request == MessageType::PreVote ? MessageType::PreVoteResponse : MessageType::VoteResponse;
}

} // namespace

std::string_view toString(Status status)
{
    switch (status) {
    case Status::Ok: return "ok";
    case Status::NoLeader: return "no leader";
    case Status::ProposalDropped: return "proposal dropped";
    case Status::UnknownPeer: return "unknown peer";
    case Status::InvalidMessage: return "invalid message";
    case Status::Unsupported: return "unsupported";
    }
    return "?";
}

Raft::Raft(const Config &config, Storage &storage)
    : m_cfg(config), m_id(config.id), m_log(storage, config.maxCommittedSizePerReady), m_rng(config.seed ^ (config.id * 0x9e3779b97f4a7c15ULL))
{
    if (const std::string problem = config.validate(); !problem.empty())
        throw std::invalid_argument("raft config: " + problem);
    const InitialState init = storage.initialState();
    const ConfState &cs = init.confState;
    // No voters: a node that joins an existing cluster. It is nobody's voter until it applies a
    // configuration from its leader's log or snapshot.
    if (cs.voters.empty() && (!cs.votersOutgoing.empty() || !cs.learners.empty()))
        throw std::invalid_argument("raft storage: a configuration with learners or old voters but no voters");
    if (!cs.learnersNext.empty())
        throw std::invalid_argument("raft storage: turning voters into learners is not supported");
    const Index last = m_log.lastIndex();
    m_baseConf = cs;
    m_baseConfIndex = storage.snapshot().metadata.index;
    // The configuration changes in the log after the snapshot take effect as they are appended,
    // committed or not: read them back.
    for (Index lo = m_log.firstIndex(); lo <= last;) {
        std::vector<Entry> chunk;
        if (!m_log.entries(lo, last + 1, 16ULL << 20, chunk) || chunk.empty())
            throw std::invalid_argument("raft storage: cannot read back entries from " + std::to_string(lo));
        noteEntries(chunk);
        lo = chunk.back().index + 1;
    }
    switchConfig(latestConf());

    const HardState &hs = init.hardState;
    if (hs.commit > last)
        throw std::invalid_argument("raft storage: commit index " + std::to_string(hs.commit) + " is beyond the last index "
                                    + std::to_string(last) + " (the log lost entries it had acknowledged)");
    m_log.commitTo(hs.commit);
    if (config.applied > m_log.committed())
        throw std::invalid_argument("raft config: applied " + std::to_string(config.applied) + " is beyond commit "
                                    + std::to_string(m_log.committed()));
    if (config.applied > 0)
        m_log.acceptApplying(config.applied);
    m_term = hs.term;
    m_vote = hs.vote;
    // Read batches are matched to their answers by id. An answer to a batch sent before a restart
    // may still be in flight, so ids must not repeat across restarts: start from a random point.
    m_nextReadBatch = m_rng.next();
    becomeFollower(m_term, NoNode);
    if (leaseMode()) {
        // It may have acknowledged a leader's round just before it stopped: keep that promise.
        m_promiseUntil = static_cast<std::uint64_t>(m_cfg.electionTick);
        m_promiseFromStart = true;
    }
}

NodeStatus Raft::status() const
{
    NodeStatus s;
    s.id = m_id;
    s.hardState = hardState();
    s.softState = softState();
    s.applied = m_log.applied();
    s.lastIndex = m_log.lastIndex();
    s.stableIndex = m_log.stableLastIndex();
    s.committedInTerm = m_committedInTerm;
    return s;
}

void Raft::logEvent(LogLevel level, const std::string &what) const
{
    if (m_cfg.logger)
        m_cfg.logger->log(level, "node " + std::to_string(m_id) + " term " + std::to_string(m_term) + ": " + what);
}

// ---- role transitions -------------------------------------------------------------------------

void Raft::reset(Term term, NodeId lead)
{
    if (m_term != term) {
        m_term = term;
        m_vote = NoNode;
        dropForwardedReads(); // asked of this term's leader: their answers may never come
    }
    // One transition for the term and the leader together: a follower that learns a newer term
    // from its leader's own message never passed through "no leader" (lifecycle: a re-elected
    // leader it did not see elected shows as a term change alone).
    setLead(lead);
    noteSoftState();
    m_leadTransferee = NoNode;
    m_transferElapsed = 0;
    m_electionElapsed = 0;
    m_heartbeatElapsed = 0;
    resetRandomizedElectionTimeout();
    m_votes.clear();
    m_committedInTerm = false;
    m_leaseRevoked = false;
    m_broadcastPending = false;
    m_uncommittedSize = 0;

    for (const ReadIndexRounds::Read &r : m_reads.reset())
        dropRead(r.from, r.context);
    for (const EarlyRead &r : m_readsBeforeCommit)
        dropRead(r.from, r.context);
    m_readsBeforeCommit.clear();

    const Index last = m_log.lastIndex();
    for (auto &[id, pr] : m_progress) {
        const bool learner = pr.isLearner;
        pr = Progress(last + 1, m_cfg.maxInflightMsgs, m_cfg.maxInflightBytes);
        pr.isLearner = learner;
        if (id == m_id)
            pr.match = m_log.stableLastIndex(); // this node counts only what it made durable
    }
}

void Raft::setLead(NodeId lead)
{
    if (m_lead == lead)
        return;
    // Reads forwarded to the old leader may never be answered now: give them back at once.
    dropForwardedReads();
    m_lead = lead;
    noteSoftState();
}

void Raft::noteSoftState()
{
    const SoftState now = softState();
    if (m_softLog.empty() ? now != m_softLogBase : now != m_softLog.back())
        m_softLog.push_back(now);
}

std::vector<SoftState> Raft::takeSoftStateLog()
{
    std::vector<SoftState> out;
    out.swap(m_softLog);
    m_softLogBase = softState();
    return out;
}

void Raft::resetRandomizedElectionTimeout()
{
    m_randomizedElectionTimeout = m_cfg.electionTick + static_cast<int>(m_rng.below(static_cast<std::uint64_t>(m_cfg.electionTick)));
}

void Raft::becomeFollower(Term term, NodeId lead)
{
    const bool wasLeader = m_role == Role::Leader;
    // The role first: the leader changes below are noted as transitions (setLead), and none of them
    // may pair the old role with the new leader (a leader naming another node, a candidate with one).
    m_role = Role::Follower;
    reset(term, lead);
    if (wasLeader)
        logEvent(LogLevel::Info, "stepped down to follower");
}

void Raft::becomePreCandidate()
{
    // A pre-candidate changes neither term nor vote (§9.6): a failed pre-vote leaves no trace.
    m_votes.clear();
    setLead(NoNode);
    m_role = Role::PreCandidate;
    noteSoftState();
    logEvent(LogLevel::Info, "starting pre-vote for term " + std::to_string(m_term + 1));
}

void Raft::becomeCandidate()
{
    m_role = Role::Candidate; // before reset notes the new term: never "pre-candidate of the new term"
    reset(m_term + 1, NoNode);
    m_vote = m_id;
    logEvent(LogLevel::Info, "campaigning");
}

void Raft::becomeLeader()
{
    reset(m_term, NoNode);
    m_role = Role::Leader; // before setLead, which notes the transition: never "candidate led by itself"
    setLead(m_id);
    noteSoftState();
    m_progress.at(m_id).becomeReplicate();
    m_progress.at(m_id).match = m_log.stableLastIndex();
    // §8: a new leader commits a no-op of its own term; until then it cannot know which entries are
    // committed, so reads wait for it and the commit rule (§5.4.2) needs a current-term entry.
    m_noOpIndex = m_log.lastIndex() + 1;
    m_log.appendOne(Entry{m_term, m_noOpIndex, EntryType::Normal, {}});
    m_broadcastPending = true;
    logEvent(LogLevel::Info, "became leader at index " + std::to_string(m_log.lastIndex()));
}

// ---- inputs -----------------------------------------------------------------------------------

void Raft::tick()
{
    ++m_ticks;
    if (m_role == Role::Leader) {
        ++m_heartbeatElapsed;
        ++m_electionElapsed;
        if (m_leadTransferee != NoNode && ++m_transferElapsed >= m_cfg.electionTick) {
            logEvent(LogLevel::Warning, "leadership transfer to node " + std::to_string(m_leadTransferee) + " timed out");
            m_leadTransferee = NoNode;
            m_transferElapsed = 0;
            if (m_cfg.bugs.leaseBackAfterAbortedTransfer)
                m_leaseRevoked = false;
        }
        if (m_electionElapsed >= m_cfg.electionTick) {
            m_electionElapsed = 0;
            if (m_cfg.checkQuorum && !quorumActive()) {
                logEvent(LogLevel::Warning, "lost contact with a quorum for an election timeout (check-quorum)");
                becomeFollower(m_term, NoNode);
                return;
            }
        }
        if (m_heartbeatElapsed >= m_cfg.heartbeatTick) {
            m_heartbeatElapsed = 0;
            broadcastHeartbeat(m_reads.startRound(m_ticks));
        }
        reprobeStalledFollowers();
    } else {
        ++m_electionElapsed;
        if (m_electionElapsed >= m_randomizedElectionTimeout) {
            if (promotable()) {
                m_electionElapsed = 0;
                hup();
            } else if (m_lead != NoNode) {
                // A learner, or a node not (yet) in its configuration: it does not campaign, but after
                // an election timeout without its leader it no longer knows one (and so takes part in
                // the members' elections, see step()).
                m_electionElapsed = 0;
                setLead(NoNode);
            }
        }
    }
    expireReads();
}

Status Raft::campaign()
{
    if (m_role == Role::Leader || !promotable())
        return Status::Ok;
    hup();
    return Status::Ok;
}

void Raft::hup()
{
    if (m_role == Role::Leader || !promotable())
        return;
    if (!mayCampaign()) {
        // A vote for itself would break the promise: the election waits for the promise to end, and
        // a little more, drawn at random: the followers of a leader that died heard its last
        // heartbeat together, and would otherwise all campaign at the same tick and split the vote.
        const auto wait = static_cast<int>(m_promiseUntil - m_ticks) + static_cast<int>(m_rng.below(static_cast<std::uint64_t>(m_cfg.electionTick / 2 + 1)));
        m_electionElapsed = std::max(0, m_randomizedElectionTimeout - wait);
        logEvent(LogLevel::Debug, "election deferred by " + std::to_string(wait) + " ticks: inside a lease promise");
        return;
    }
    startCampaign(m_cfg.preVote ? CampaignType::PreElection : CampaignType::Election);
}

void Raft::startCampaign(CampaignType type)
{
    Term voteTerm;
    MessageType voteType;
    if (type == CampaignType::PreElection) {
        becomePreCandidate();
        voteType = MessageType::PreVote;
        voteTerm = m_term + 1; // the term it would campaign in; its own term stays
    } else {
        if (type == CampaignType::Transfer)
            logEvent(LogLevel::Info, "the leader handed over: campaigning at once");
        becomeCandidate();
        voteType = MessageType::Vote;
        voteTerm = m_term;
    }
    if (poll(m_id, true) == VoteResult::Won) {
        // A single-voter cluster wins at once.
        if (type == CampaignType::PreElection)
            startCampaign(CampaignType::Election);
        else
            becomeLeader();
        return;
    }
    for (NodeId id : m_voters.ids()) {
        if (id == m_id)
            continue;
        Message m;
        m.type = voteType;
        m.to = id;
        m.term = voteTerm;
        m.index = m_log.lastIndex();
        m.logTerm = m_log.lastTerm();
        if (type == CampaignType::Transfer)
            m.context = TransferCampaignContext;
        send(std::move(m));
    }
}

VoteResult Raft::poll(NodeId from, bool granted)
{
    m_votes.emplace(from, granted); // the first answer from a voter counts; duplicates do not
    return m_voters.voteResult([this](NodeId id) -> std::optional<bool> {
        const auto it = m_votes.find(id);
        if (it == m_votes.end())
            return std::nullopt;
        return it->second;
    });
}

bool Raft::quorumActive()
{
    const VoteResult r = m_voters.voteResult([this](NodeId id) -> std::optional<bool> {
        if (id == m_id)
            return true;
        const auto it = m_progress.find(id);
        return it != m_progress.end() && it->second.recentActive;
    });
    for (auto &[id, pr] : m_progress)
        if (id != m_id)
            pr.recentActive = false;
    return r == VoteResult::Won;
}

Status Raft::step(Message m)
{
    if (m.to != m_id || m.from == NoNode || m.from == m_id)
        return Status::InvalidMessage;
    if (m.type == MessageType::SnapshotResponse)
        return Status::Unsupported;
    if (m.type == MessageType::Snapshot && (!m.snapshot || m.snapshot->empty()))
        return Status::InvalidMessage;
    // Nodes outside the configuration may not talk to this node as to their leader (forward
    // proposals and reads, answer its messages). A leader's own messages and vote requests are
    // taken from anyone, though: a node learns its configuration from its leader's log, so it may
    // not have the change that added that leader, or a candidate, yet (a member that ignored a new
    // voter's vote requests could leave a cluster without a majority that can elect). A removed
    // node that campaigns on, not knowing of its removal, is kept from disturbing the members by
    // pre-vote and check-quorum, as any partitioned node is (raft/confchange.h).
    if (!m_progress.count(m.from)) {
        switch (m.type) {
        case MessageType::Append:
        case MessageType::Heartbeat:
        case MessageType::Snapshot:
        case MessageType::TimeoutNow:
        case MessageType::ReadIndexResponse:
        case MessageType::Vote:
        case MessageType::PreVote:
            break;
        default:
            return Status::UnknownPeer;
        }
    }

    const bool termless = m.type == MessageType::Propose || m.type == MessageType::ReadIndex;
    if (termless != (m.term == 0))
        return Status::InvalidMessage;

    if (m.term > m_term) {
        if (m.type == MessageType::Vote || m.type == MessageType::PreVote) {
            // Check-quorum lease (thesis §4.2.3): a node that heard from a live leader within the
            // minimum election timeout ignores candidates, so one partitioned node rejoining with a
            // higher term cannot depose a healthy leader.
            // A campaign the leader itself asked for (a leadership transfer) is the exception: that
            // leader stops serving lease reads when it asks.
            // In the lease modes the promise (raft/config.h) is stricter: it holds whether or not a
            // leader is known now, and only a transfer campaign passes it.
            const bool inLease = m_cfg.checkQuorum && m_lead != NoNode && m_electionElapsed < m_cfg.electionTick;
            const bool transfer = m.type == MessageType::Vote && m.context == TransferCampaignContext;
            if (!transfer && (inLease || promising()))
                return Status::Ok;
        }
        if (m.type == MessageType::PreVote) {
            // Never change the term for a pre-vote.
        } else if (m.type == MessageType::PreVoteResponse && !m.reject) {
            // A granted pre-vote carries the term we would campaign in, not a newer leader's term.
        } else {
            const bool fromLeader = m.type == MessageType::Append || m.type == MessageType::Heartbeat || m.type == MessageType::Snapshot;
            if (m_role == Role::Leader || m_term != m.term)
                logEvent(LogLevel::Info, "saw term " + std::to_string(m.term) + " from node " + std::to_string(m.from));
            becomeFollower(m.term, fromLeader ? m.from : NoNode);
        }
    } else if (m.term != 0 && m.term < m_term) {
        // A node that never campaigns (a learner, a node joining) answers too, even without either
        // option: its term can only move on through others' elections, and a leader it silently
        // ignored would never learn that it must step down for it to catch up.
        if ((m_cfg.checkQuorum || m_cfg.preVote || !promotable())
            && (m.type == MessageType::Heartbeat || m.type == MessageType::Append || m.type == MessageType::Snapshot)) {
            // A stale leader, perhaps back from a partition. With pre-vote or check-quorum our
            // higher term might otherwise never reach it (we never campaign against it), so tell
            // it, and it steps down.
            Message resp;
            resp.type = MessageType::AppendResponse;
            resp.to = m.from;
            send(std::move(resp));
        } else if (m.type == MessageType::PreVote || m.type == MessageType::Vote) {
            // Reject with our term so a candidate stuck in an old term learns the current one (the
            // paper's RequestVote reply carries the term). Without it, a candidate that only nodes
            // with older configurations could tell (they do not ask it for votes) can trail the
            // others' terms for many elections after a membership change.
            Message resp;
            resp.type = responseTypeFor(m.type);
            resp.to = m.from;
            resp.term = m_term;
            resp.reject = true;
            send(std::move(resp));
        }
        return Status::Ok;
    }

    if (m.type == MessageType::Vote || m.type == MessageType::PreVote) {
        handleVoteRequest(m);
        return Status::Ok;
    }
    switch (m_role) {
    case Role::Leader:
        return stepLeader(m);
    case Role::PreCandidate:
    case Role::Candidate:
        return stepCandidate(m);
    case Role::Follower:
        return stepFollower(m);
    }
    return Status::Ok;
}

void Raft::handleVoteRequest(const Message &m)
{
    // §5.2, §5.4.1: one vote per term, only for a candidate at least as up to date. A node that knows
    // a leader in this term does not vote either. A pre-vote for a future term is granted on the log
    // alone: it commits the voter to nothing.
    bool canVote = m_vote == m.from || (m_vote == NoNode && m_lead == NoNode)
        || (m.type == MessageType::PreVote && m.term > m_term);
    // A request in this node's own term (a higher one was filtered in step): the promise holds too.
    if (promising() && m_vote != m.from && !(m.type == MessageType::Vote && m.context == TransferCampaignContext))
        canVote = false;
    if (m_cfg.bugs.grantSecondVoteInTerm && m.type == MessageType::Vote)
        canVote = true;
    Message resp;
    resp.type = responseTypeFor(m.type);
    resp.to = m.from;
    if (canVote && m_log.isUpToDate(m.index, m.logTerm)) {
        resp.term = m.term;
        if (m.type == MessageType::Vote) {
            m_electionElapsed = 0;
            m_vote = m.from;
        }
    } else {
        resp.term = m_term;
        resp.reject = true;
    }
    send(std::move(resp));
}

Status Raft::proposeConfChange(const std::vector<ConfChangeOp> &ops, std::string *why)
{
    if (m_role == Role::Leader) {
        const std::string refusal = confChangeRefusal(ops);
        if (why)
            *why = refusal;
        if (!refusal.empty())
            return Status::ProposalDropped;
    }
    return propose({encodeConfChangeOps(ops)}, EntryType::ConfChange);
}

std::string Raft::confChangeRefusal(const std::vector<ConfChangeOp> &ops) const
{
    if (m_role != Role::Leader)
        return "this node is not the leader";
    if (m_leadTransferee != NoNode)
        return "leadership is being handed over";
    if (!m_committedInTerm)
        return "the leader has not committed an entry of its term yet";
    if (latestConfIndex() > m_log.committed() && !m_cfg.bugs.concurrentConfChanges)
        return "a configuration change is in progress (index " + std::to_string(latestConfIndex()) + " is not committed yet)";
    ConfState next;
    return planConfChange(m_conf, ops, next);
}

Status Raft::propose(std::vector<Payload> proposals, EntryType type)
{
    if (proposals.empty())
        return Status::Ok;
    switch (m_role) {
    case Role::Leader:
        return appendProposals(proposals, type) ? Status::Ok : Status::ProposalDropped;
    case Role::Follower:
        if (m_lead == NoNode)
            return Status::NoLeader;
        if (m_cfg.disableProposalForwarding)
            return Status::ProposalDropped;
        for (Payload &p : proposals)
            m_proposalsToForward.push_back(Entry{0, 0, type, std::move(p)});
        return Status::Ok;
    case Role::PreCandidate:
    case Role::Candidate:
        return Status::NoLeader;
    }
    return Status::NoLeader;
}

Status Raft::readIndex(std::uint64_t context)
{
    if (m_role == Role::Leader) {
        handleReadRequest(m_id, context);
        return Status::Ok;
    }
    if (m_lead == NoNode)
        return Status::NoLeader;
    m_readsToForward.push_back(context);
    return Status::Ok;
}

void Raft::acknowledgePersisted(std::uint64_t writeId)
{
    m_log.stableTo(writeId, m_cfg.bugs.acknowledgeByIndexAndTerm);
    if (m_role != Role::Leader)
        return;
    // The leader's own acknowledgement counts toward commit only now that it is durable.
    if (m_progress.at(m_id).maybeUpdate(m_log.stableLastIndex()) && maybeCommit())
        m_broadcastPending = true;
}

// ---- leader -----------------------------------------------------------------------------------

bool Raft::appendProposals(std::vector<Payload> &proposals, EntryType type)
{
    if (m_leadTransferee != NoNode)
        return false; // leadership is being handed over: the new leader takes them
    if (type == EntryType::ConfChange) {
        // Each proposal holds operations; the entry holds the configuration they make, so that
        // whoever applies it gets the same one. Refused changes are dropped (a forwarded one
        // silently: its proposer learns by not seeing it applied).
        bool any = false;
        for (Payload &p : proposals) {
            std::vector<ConfChangeOp> ops;
            if (!decodeConfChangeOps(p, ops)) {
                logEvent(LogLevel::Warning, "dropped a malformed configuration change");
                continue;
            }
            if (const std::string refusal = confChangeRefusal(ops); !refusal.empty()) {
                logEvent(LogLevel::Info, "refused a configuration change: " + refusal);
                continue;
            }
            ConfState next;
            planConfChange(m_conf, ops, next);
            if (m_cfg.bugs.confChangeWithoutJoint) {
                next.votersOutgoing.clear();
                next.autoLeave = false;
            }
            appendConfState(next);
            any = true;
        }
        return any;
    }
    std::uint64_t size = 0;
    for (const Payload &p : proposals)
        size += p.size() + EntryOverheadBytes;
    // Flow control: refuse once the uncommitted tail is over its budget, but always admit something
    // into an empty tail so a single large proposal is not refused forever.
    if (m_cfg.maxUncommittedEntriesSize > 0 && m_uncommittedSize > 0 && m_uncommittedSize + size > m_cfg.maxUncommittedEntriesSize)
        return false;
    Index index = m_log.lastIndex();
    for (Payload &p : proposals)
        m_log.appendOne(Entry{m_term, ++index, type, std::move(p)});
    m_uncommittedSize += size;
    m_broadcastPending = true;
    return true;
}

void Raft::appendConfState(const ConfState &next)
{
    const Index index = m_log.lastIndex() + 1;
    Payload data = encodeConfState(next);
    m_uncommittedSize += data.size() + EntryOverheadBytes; // as reduceUncommittedSize takes it off
    m_log.appendOne(Entry{m_term, index, EntryType::ConfChange, std::move(data)});
    m_logConfs[index] = next;
    m_broadcastPending = true;
    logEvent(LogLevel::Info, "proposed the configuration " + describe(next) + " at index " + std::to_string(index));
    configChanged();
}

void Raft::noteEntries(const std::vector<Entry> &entries)
{
    for (const Entry &e : entries) {
        if (e.type != EntryType::ConfChange) {
            m_logConfs.erase(e.index);
            continue;
        }
        ConfState cs;
        if (decodeConfState(e.data, cs))
            m_logConfs[e.index] = std::move(cs);
        else
            logEvent(LogLevel::Error, "the configuration change at index " + std::to_string(e.index) + " is malformed");
    }
    // A truncation dropped what came after the last entry.
    m_logConfs.erase(m_logConfs.upper_bound(m_log.lastIndex()), m_logConfs.end());
}

const ConfState &Raft::latestConf() const { return m_logConfs.empty() ? m_baseConf : m_logConfs.rbegin()->second; }

Index Raft::latestConfIndex() const { return m_logConfs.empty() ? m_baseConfIndex : m_logConfs.rbegin()->first; }

std::optional<ConfState> Raft::confStateAt(Index index) const
{
    if (index < m_baseConfIndex)
        return std::nullopt; // before the newest snapshot: not known here any more
    auto it = m_logConfs.upper_bound(index);
    if (it == m_logConfs.begin())
        return m_baseConf;
    return std::prev(it)->second;
}

void Raft::configChanged()
{
    const ConfState &cs = latestConf();
    if (cs == m_conf)
        return;
    logEvent(LogLevel::Info, "the configuration is now " + describe(cs));
    switchConfig(cs);
    if (m_role != Role::Leader)
        return;
    // A lease confirmed by the old voters says nothing about the new ones: earn it again.
    m_reads.revokeLease();
    if (m_leadTransferee != NoNode && !m_voters.contains(m_leadTransferee)) {
        m_leadTransferee = NoNode;
        m_transferElapsed = 0;
    }
    if (maybeCommit())
        m_broadcastPending = true;
    m_broadcastPending = true; // new members get their first Append now
}

bool Raft::confChangeDue() const
{
    if (m_role != Role::Leader || latestConfIndex() == 0 || m_log.committed() < latestConfIndex())
        return false;
    return !m_voters.contains(m_id) || (isJoint(m_conf) && m_conf.autoLeave && m_leadTransferee == NoNode);
}

void Raft::finishConfChange()
{
    if (!confChangeDue())
        return;
    if (!m_voters.contains(m_id)) {
        // The configuration that removed this leader is committed: hand over to the voter with the
        // whole log, if one has it, and step down (until now it led a cluster it is not part of,
        // without counting itself).
        NodeId best = NoNode;
        for (const auto &[id, pr] : m_progress)
            if (id != m_id && m_voters.contains(id) && pr.match == m_log.lastIndex() && best == NoNode)
                best = id;
        logEvent(LogLevel::Info, "removed from the configuration: stepping down"
                                     + (best != NoNode ? ", handing over to node " + std::to_string(best) : std::string()));
        if (best != NoNode)
            sendTimeoutNow(best);
        becomeFollower(m_term, NoNode);
        return;
    }
    // The joint configuration is committed: leave it.
    ConfState next;
    if (planConfChange(m_conf, {}, next).empty())
        appendConfState(next);
}

void Raft::onApplied(const std::vector<Entry> &applied)
{
    reduceUncommittedSize(applied);
    for (const Entry &e : applied) {
        ConfState cs;
        if (e.type == EntryType::ConfChange && !decodeConfState(e.data, cs))
            throw std::runtime_error("raft: the committed configuration change at index " + std::to_string(e.index) + " is malformed");
    }
}

void Raft::switchConfig(const ConfState &cs)
{
    m_conf = cs;
    std::sort(m_conf.voters.begin(), m_conf.voters.end());
    std::sort(m_conf.votersOutgoing.begin(), m_conf.votersOutgoing.end());
    std::sort(m_conf.learners.begin(), m_conf.learners.end());
    m_voters = JointConfig{MajorityConfig(cs.voters), MajorityConfig(cs.votersOutgoing)};
    std::map<NodeId, Progress> progress;
    const Index last = m_log.lastIndex();
    std::vector<NodeId> ids = members(m_conf);
    if (!std::binary_search(ids.begin(), ids.end(), m_id))
        ids.insert(std::lower_bound(ids.begin(), ids.end(), m_id), m_id); // its own, member or not (a leader being removed)
    for (NodeId id : ids) {
        auto it = m_progress.find(id);
        Progress pr = it != m_progress.end() ? std::move(it->second) : Progress(last + 1, m_cfg.maxInflightMsgs, m_cfg.maxInflightBytes);
        pr.isLearner = std::binary_search(m_conf.learners.begin(), m_conf.learners.end(), id);
        if (id == m_id && it == m_progress.end())
            pr.match = m_log.stableLastIndex();
        progress.emplace(id, std::move(pr));
    }
    m_progress = std::move(progress);
}

void Raft::reduceUncommittedSize(const std::vector<Entry> &applied)
{
    if (m_role != Role::Leader)
        return;
    std::uint64_t size = 0;
    // Every entry of this term came through appendProposals, which counted it (empty ones too),
    // except the no-op that opened the term.
    for (const Entry &e : applied)
        if (e.term == m_term && e.index != m_noOpIndex)
            size += entrySize(e);
    m_uncommittedSize = size > m_uncommittedSize ? 0 : m_uncommittedSize - size;
}

bool Raft::maybeCommit()
{
    const Index quorumIndex = m_voters.committedIndex([this](NodeId id) -> std::optional<std::uint64_t> {
        const auto it = m_progress.find(id);
        if (it == m_progress.end())
            return std::nullopt;
        return it->second.match;
    });
    if (quorumIndex <= m_log.committed())
        return false;
    // §5.4.2: only an entry of the leader's own term is committed by counting replicas; earlier ones
    // follow it. Counting an older entry is the Figure 8 bug.
    if (m_log.termOrZero(quorumIndex) != m_term && !m_cfg.bugs.commitOldTermByCounting)
        return false;
    m_log.commitTo(quorumIndex);
    onCommitAdvanced();
    return true;
}

void Raft::onCommitAdvanced()
{
    if (m_committedInTerm || m_log.termOrZero(m_log.committed()) != m_term)
        return;
    m_committedInTerm = true;
    // Reads that arrived before this term's first commit can now be given an index.
    std::vector<EarlyRead> early;
    early.swap(m_readsBeforeCommit);
    for (const EarlyRead &r : early)
        handleReadRequest(r.from, r.context);
}

Status Raft::stepLeader(Message &m)
{
    switch (m.type) {
    case MessageType::Propose:
        // A forwarded proposal; if refused, the follower's client times out and learns nothing
        // was applied under its request id.
        if (!m.entries.empty()) {
            // Runs of the same type together: configuration changes go their own way.
            bool accepted = true;
            for (std::size_t i = 0; i < m.entries.size();) {
                const EntryType type = m.entries[i].type;
                std::vector<Payload> data;
                for (; i < m.entries.size() && m.entries[i].type == type; ++i)
                    data.push_back(std::move(m.entries[i].data));
                accepted = appendProposals(data, type) && accepted;
            }
            if (!accepted)
                return Status::ProposalDropped;
        }
        return Status::Ok;
    case MessageType::ReadIndex:
        handleReadRequest(m.from, m.context);
        return Status::Ok;
    case MessageType::AppendResponse:
        handleAppendResponse(m);
        return Status::Ok;
    case MessageType::HeartbeatResponse:
        handleHeartbeatResponse(m);
        return Status::Ok;
    case MessageType::Append:
    case MessageType::Heartbeat:
    case MessageType::Snapshot:
        // Another leader in our own term: impossible unless election safety is broken. Ignore it and
        // let the invariant checks report the cause.
        logEvent(LogLevel::Error, "received " + std::string(toString(m.type)) + " from node " + std::to_string(m.from)
                                     + " claiming leadership in the same term");
        return Status::Ok;
    default:
        return Status::Ok; // late vote responses and the like
    }
}

void Raft::handleAppendResponse(const Message &m)
{
    Progress &pr = m_progress.at(m.from);
    pr.recentActive = true;
    if (m.reject) {
        if (m.index > pr.match && m.rejectHint < pr.match && !pr.lossReported) {
            // It acknowledged entries of this term up to `match` and now has fewer: its disk lost
            // durable data (a wiped or restored data directory under the same id). Replication
            // cannot repair that (the rejection is below what counted for commits); say so once.
            pr.lossReported = true;
            logEvent(LogLevel::Error, "node " + std::to_string(m.from) + " acknowledged entries up to index " + std::to_string(pr.match)
                                          + " but now holds only up to " + std::to_string(m.rejectHint)
                                          + ": it lost data it had made durable; remove it and add it again with an empty data directory");
        }
        // The follower's hint is the last index whose term is <= the term it was asked about;
        // searching our log for the same gives the next probe point, one term per round trip.
        Index next = m.rejectHint;
        if (m.logTerm > 0)
            next = m_log.findConflictByTerm(m.rejectHint, m.logTerm).first;
        if (pr.maybeDecrTo(m.index, next)) {
            if (pr.state == ProgressState::Replicate)
                pr.becomeProbe();
            m_broadcastPending = true;
        }
        return;
    }
    if (!pr.maybeUpdate(m.index))
        return; // a duplicate or reordered acknowledgement
    if (pr.state == ProgressState::Probe) {
        pr.becomeReplicate();
    } else if (pr.state == ProgressState::Snapshot) {
        // The follower has the snapshot (or got this far otherwise): go on with entries once they
        // follow on from what it has; until then the snapshot's report decides.
        if (pr.match + 1 >= m_log.firstIndex()) {
            pr.becomeProbe();
            pr.becomeReplicate();
        }
    } else {
        pr.inflights.freeLE(m.index);
    }
    maybeCommit();
    m_broadcastPending = true;
    if (m.from == m_leadTransferee && pr.match == m_log.lastIndex())
        sendTimeoutNow(m.from);
}

Status Raft::transferLeadership(NodeId to)
{
    if (m_role != Role::Leader)
        return Status::NoLeader;
    if (to == m_id || !m_progress.count(to) || !m_voters.contains(to))
        return Status::UnknownPeer;
    if (m_leadTransferee == to)
        return Status::Ok;
    m_leadTransferee = to;
    m_transferElapsed = 0;
    logEvent(LogLevel::Info, "handing leadership to node " + std::to_string(to));
    Progress &pr = m_progress.at(to);
    if (pr.match == m_log.lastIndex()) {
        sendTimeoutNow(to);
    } else {
        // Bring it up to date now: probe from what it acknowledged (Appends in flight to it may
        // be lost, and the transfer has only an election timeout).
        if (pr.state == ProgressState::Replicate)
            pr.becomeProbe();
        sendToFollower(to, pr);
    }
    return Status::Ok;
}

void Raft::sendTimeoutNow(NodeId to)
{
    // From now on `to` may win votes past the others' promises: this term's lease is over.
    m_leaseRevoked = true;
    Message m;
    m.type = MessageType::TimeoutNow;
    m.to = to;
    m.index = m_log.lastIndex(); // lets the target tell a stale TimeoutNow (honoursTimeoutNow)
    m.logTerm = m_log.lastTerm();
    send(std::move(m));
}

void Raft::reprobeStalledFollowers()
{
    // An Append lost on the way leaves a follower in replicate state waiting for entries that will
    // never come; usually the next Append exposes the gap (the follower rejects it), but with the
    // window full or nothing new to send, nothing would. A window with no acknowledgement for an
    // election timeout is therefore taken as lost: probe again from the match point.
    const std::uint64_t limit = static_cast<std::uint64_t>(m_cfg.electionTick);
    for (auto &[id, pr] : m_progress) {
        if (id == m_id || pr.state != ProgressState::Replicate || pr.inflights.count() == 0)
            continue;
        if (m_ticks - pr.inflights.oldestSentTick() >= limit) {
            pr.becomeProbe();
            m_broadcastPending = true;
        }
    }
}

void Raft::expediteElection()
{
    if (m_role == Role::Leader || !promotable())
        return;
    // Somewhere in the next electionTick ticks, at random so that nodes told at the same moment
    // (a fresh cluster, a leader that died) do not all campaign at once.
    const int remaining = 1 + static_cast<int>(m_rng.below(static_cast<std::uint64_t>(m_cfg.electionTick)));
    m_electionElapsed = std::max(m_electionElapsed, m_randomizedElectionTimeout - remaining);
}

void Raft::reportUnreachable(NodeId id)
{
    if (id == m_id)
        return;
    if (m_role != Role::Leader) {
        // A follower that lost its connection to its leader (a leader killed closes them all)
        // need not wait out a whole election timeout. Pre-vote keeps this harmless when the leader
        // is in fact alive: the others still hear from it and refuse. Without lease reads this
        // node also stops counting itself in the leader's lease, so it can vote for another at once;
        // with them the lease must run out first (the leader may be serving reads from it).
        if (id == m_lead && m_lead != NoNode) {
            m_leaderUnreachable = true;
            expediteElection();
            if (m_cfg.readOnlyOption == ReadOnlyOption::Safe) {
                logEvent(LogLevel::Info, "lost the connection to leader " + std::to_string(id));
                setLead(NoNode);
            }
        }
        return;
    }
    // The transport lost its connection: whatever was in flight may be gone.
    const auto it = m_progress.find(id);
    if (it != m_progress.end() && it->second.state == ProgressState::Replicate) {
        it->second.becomeProbe();
        m_broadcastPending = true;
    }
}

void Raft::handleHeartbeatResponse(const Message &m)
{
    Progress &pr = m_progress.at(m.from);
    pr.recentActive = true;
    pr.probeSent = false; // a live follower: probe again rather than wait
    if (pr.match < m_log.lastIndex() || pr.sentCommit < m_log.committed())
        m_broadcastPending = true;
    onReadAck(m.from, m.context);
}

void Raft::flush()
{
    forwardPending();
    finishConfChange();
    if (m_role != Role::Leader)
        return;
    if (m_reads.roundNeeded())
        broadcastHeartbeat(m_reads.startRound(m_ticks));
    if (m_broadcastPending) {
        m_broadcastPending = false;
        for (auto &[id, pr] : m_progress)
            if (id != m_id)
                sendToFollower(id, pr);
    }
}

void Raft::forwardPending()
{
    // Proposals and reads taken while this node followed. Should it lead by now, it handles them
    // itself; without a leader, proposals are dropped (their callers time out) and reads are
    // handed back as dropped.
    if (!m_proposalsToForward.empty()) {
        if (m_role == Role::Leader) {
            for (std::size_t i = 0; i < m_proposalsToForward.size();) {
                const EntryType type = m_proposalsToForward[i].type;
                std::vector<Payload> data;
                for (; i < m_proposalsToForward.size() && m_proposalsToForward[i].type == type; ++i)
                    data.push_back(std::move(m_proposalsToForward[i].data));
                appendProposals(data, type);
            }
        } else if (m_lead != NoNode) {
            Message m;
            m.type = MessageType::Propose;
            m.to = m_lead;
            m.entries = std::move(m_proposalsToForward);
            send(std::move(m));
        }
        m_proposalsToForward.clear();
    }
    if (m_readsToForward.empty())
        return;
    std::vector<std::uint64_t> reads;
    reads.swap(m_readsToForward);
    if (m_role == Role::Leader) {
        for (std::uint64_t ctx : reads)
            handleReadRequest(m_id, ctx);
    } else if (m_lead == NoNode) {
        m_droppedReads.insert(m_droppedReads.end(), reads.begin(), reads.end());
    } else {
        const std::uint64_t batch = ++m_nextReadBatch;
        Message m;
        m.type = MessageType::ReadIndex;
        m.to = m_lead;
        m.context = batch;
        send(std::move(m));
        m_forwardedReads.emplace(batch, ForwardedBatch{std::move(reads), m_ticks});
    }
}

void Raft::sendToFollower(NodeId to, Progress &pr)
{
    const Index last = m_log.lastIndex();
    if (pr.state == ProgressState::Probe) {
        // One probe at a time; an empty one still finds the match point.
        if (!pr.isPaused() && (pr.match < last || pr.sentCommit < m_log.committed()))
            sendAppend(to, pr, true);
        return;
    }
    bool sent = false;
    while (!pr.isPaused() && pr.next <= last) {
        if (!sendAppend(to, pr, false))
            break;
        sent = true;
    }
    if (!sent && !pr.isPaused() && pr.sentCommit < m_log.committed())
        sendAppend(to, pr, true); // nothing new but the commit index
}

bool Raft::sendAppend(NodeId to, Progress &pr, bool allowEmpty)
{
    const Index prevIndex = pr.next - 1;
    const auto prevTerm = m_log.term(prevIndex);
    Message m;
    if (!prevTerm || !m_log.entries(pr.next, m_log.lastIndex() + 1, m_cfg.maxSizePerMsg, m.entries)) {
        sendSnapshot(to, pr); // what it needs next is compacted
        return false;
    }
    if (m.entries.empty() && !allowEmpty)
        return false;
    m.type = MessageType::Append;
    m.to = to;
    m.index = prevIndex;
    m.logTerm = *prevTerm;
    m.commit = m_log.committed();
    std::uint64_t bytes = 0;
    for (const Entry &e : m.entries)
        bytes += entrySize(e);
    const Index lastSent = m.entries.empty() ? prevIndex : m.entries.back().index;
    pr.sentEntries(m.entries.size(), bytes, lastSent, m_ticks);
    pr.sentCommit = std::max(pr.sentCommit, m.commit);
    send(std::move(m));
    return true;
}

void Raft::sendSnapshot(NodeId to, Progress &pr)
{
    // Only to a follower heard from lately: a snapshot is big, and a dead node would take it only to
    // lose it.
    if (!pr.recentActive)
        return;
    Snapshot snap = m_log.snapshot();
    if (snap.empty()) {
        logEvent(LogLevel::Error, "node " + std::to_string(to) + " needs entries from " + std::to_string(pr.next)
                                     + ", which are compacted, and there is no snapshot to send");
        return;
    }
    Message m;
    m.type = MessageType::Snapshot;
    m.to = to;
    m.index = snap.metadata.index;
    m.logTerm = snap.metadata.term;
    m.commit = m_log.committed();
    logEvent(LogLevel::Info, "sending the snapshot at index " + std::to_string(snap.metadata.index) + " (term "
                                 + std::to_string(snap.metadata.term) + ") to node " + std::to_string(to) + ", which needs index "
                                 + std::to_string(pr.next) + " (compacted)");
    pr.becomeSnapshot(snap.metadata.index);
    m.snapshot = std::make_shared<const Snapshot>(std::move(snap));
    send(std::move(m));
}

void Raft::reportSnapshot(NodeId id, bool delivered)
{
    if (m_role != Role::Leader)
        return;
    const auto it = m_progress.find(id);
    if (it == m_progress.end() || it->second.state != ProgressState::Snapshot)
        return;
    Progress &pr = it->second;
    if (!delivered) {
        logEvent(LogLevel::Warning, "the snapshot at index " + std::to_string(pr.pendingSnapshot) + " did not reach node "
                                        + std::to_string(id) + "; it will be sent again");
        pr.pendingSnapshot = 0;
    }
    // Probe again, but only once the follower answers a heartbeat (it may still be installing it):
    // its acknowledgement of the snapshot, if it comes first, moves it on as well.
    pr.becomeProbe();
    pr.probeSent = true;
}

void Raft::handleSnapshot(const Message &m)
{
    notePromise();
    const SnapshotMetadata &md = m.snapshot->metadata;
    Message resp;
    resp.type = MessageType::AppendResponse;
    resp.to = m.from;
    if (restore(*m.snapshot)) {
        logEvent(LogLevel::Info, "restored the snapshot at index " + std::to_string(md.index) + " (term " + std::to_string(md.term) + ")");
        resp.index = m_log.lastIndex();
    } else {
        resp.index = m_log.committed();
    }
    send(std::move(resp));
}

bool Raft::restore(const Snapshot &snap)
{
    const SnapshotMetadata &md = snap.metadata;
    const bool bug = m_cfg.bugs.restoreCommittedSnapshot;
    if (md.index <= m_log.committed() && !bug)
        return false; // it has all of that already (a late or duplicated snapshot)
    const ConfState &cs = md.confState;
    if (!cs.learnersNext.empty()) {
        logEvent(LogLevel::Error, "ignored a snapshot whose configuration turns voters into learners (not supported)");
        return false;
    }
    // A configuration without this node is taken too: a node added after the snapshot was made
    // learns of its addition from the log that follows it.
    const bool haveLast = m_cfg.bugs.snapshotCommitWithoutTermCheck ? m_log.lastIndex() >= md.index : m_log.matchTerm(md.index, md.term);
    if (md.index > m_log.committed() && haveLast) {
        // The log already has the snapshot's last entry: everything up to it is committed, and the
        // entries after it may still be good. Fast-forward the commit instead of throwing them away.
        m_log.commitTo(md.index);
        return false;
    }
    m_log.restore(snap, bug);
    m_baseConf = cs;
    m_baseConfIndex = md.index;
    m_logConfs.clear();
    configChanged();
    return true;
}

const ConfState &Raft::confState() const { return m_conf; }

void Raft::broadcastHeartbeat(std::uint64_t round)
{
    for (auto &[id, pr] : m_progress) {
        if (id == m_id)
            continue;
        Message m;
        m.type = MessageType::Heartbeat;
        m.to = id;
        // Never more than the follower is known to have: it may not hold the rest yet.
        m.commit = std::min(pr.match, m_log.committed());
        m.context = round;
        send(std::move(m));
    }
    if (alone())
        onReadAck(m_id, round); // nobody to ask: the round confirms itself
}

// ---- candidate and follower -------------------------------------------------------------------

Status Raft::stepCandidate(Message &m)
{
    const MessageType myResponse = m_role == Role::PreCandidate ? MessageType::PreVoteResponse : MessageType::VoteResponse;
    switch (m.type) {
    case MessageType::TimeoutNow:
        // The leader of this term hands over while a pre-vote of ours is pending: campaign now.
        if (m_role == Role::PreCandidate && honoursTimeoutNow(m))
            startCampaign(CampaignType::Transfer);
        return Status::Ok;
    case MessageType::Propose:
        return Status::NoLeader;
    case MessageType::ReadIndex:
        dropRead(m.from, m.context);
        return Status::Ok;
    case MessageType::Append:
        becomeFollower(m.term, m.from); // a leader of our term exists (§5.2)
        handleAppend(m);
        return Status::Ok;
    case MessageType::Heartbeat:
        becomeFollower(m.term, m.from);
        handleHeartbeat(m);
        return Status::Ok;
    case MessageType::Snapshot:
        becomeFollower(m.term, m.from);
        handleSnapshot(m);
        return Status::Ok;
    default:
        break;
    }
    if (m.type != myResponse)
        return Status::Ok;
    switch (poll(m.from, !m.reject)) {
    case VoteResult::Won:
        if (m_role == Role::PreCandidate)
            startCampaign(CampaignType::Election);
        else
            becomeLeader();
        break;
    case VoteResult::Lost:
        // Stay in this term; the election timer decides when to try again.
        becomeFollower(m_term, NoNode);
        break;
    case VoteResult::Pending:
        break;
    }
    return Status::Ok;
}

Status Raft::stepFollower(Message &m)
{
    switch (m.type) {
    case MessageType::Propose:
        // Sent to us as leader, but we are not (any more): the origin's client will time out.
        return Status::ProposalDropped;
    case MessageType::ReadIndex:
        dropRead(m.from, m.context);
        return Status::Ok;
    case MessageType::Append:
        m_electionElapsed = 0;
        setLead(m.from);
        handleAppend(m);
        return Status::Ok;
    case MessageType::Heartbeat:
        m_electionElapsed = 0;
        setLead(m.from);
        handleHeartbeat(m);
        return Status::Ok;
    case MessageType::Snapshot:
        m_electionElapsed = 0;
        setLead(m.from);
        handleSnapshot(m);
        return Status::Ok;
    case MessageType::TimeoutNow:
        // The leader hands over to us: campaign now, without pre-vote (the leader vouches for it),
        // and past the lease promise (the leader gave its lease up when it sent this).
        if (promotable() && honoursTimeoutNow(m))
            startCampaign(CampaignType::Transfer);
        return Status::Ok;
    case MessageType::ReadIndexResponse: {
        const auto it = m_forwardedReads.find(m.context);
        if (it == m_forwardedReads.end())
            return Status::Ok; // expired or dropped already
        for (std::uint64_t ctx : it->second.contexts) {
            if (m.reject)
                m_droppedReads.push_back(ctx);
            else
                m_readStates.push_back({ctx, m.index});
        }
        m_forwardedReads.erase(it);
        return Status::Ok;
    }
    default:
        return Status::Ok;
    }
}

void Raft::handleAppend(Message &m)
{
    notePromise();
    Message resp;
    resp.type = MessageType::AppendResponse;
    resp.to = m.from;
    if (m.index < m_log.committed()) {
        // Everything up to our commit index matches the leader's log already.
        resp.index = m_log.committed();
        send(std::move(resp));
        return;
    }
    if (auto lastNew = m_log.maybeAppend(m.index, m.logTerm, m.commit, m.entries)) {
        if (!m.entries.empty()) {
            noteEntries(m.entries);
            configChanged();
        }
        resp.index = *lastNew;
        send(std::move(resp));
        return;
    }
    // No match at (index, logTerm). Hint the last index whose term is <= logTerm: everything after
    // it in our log is either absent or from a term the leader's log cannot match.
    const Index probe = std::min(m.index, m_log.lastIndex());
    const auto [hintIndex, hintTerm] = m_log.findConflictByTerm(probe, m.logTerm);
    resp.reject = true;
    resp.index = m.index;
    resp.rejectHint = hintIndex;
    resp.logTerm = hintTerm;
    send(std::move(resp));
}

void Raft::handleHeartbeat(const Message &m)
{
    notePromise();
    m_log.commitTo(std::min(m.commit, m_log.lastIndex()));
    Message resp;
    resp.type = MessageType::HeartbeatResponse;
    resp.to = m.from;
    resp.context = m.context;
    send(std::move(resp));
}

// ---- reads ------------------------------------------------------------------------------------

void Raft::handleReadRequest(NodeId from, std::uint64_t context)
{
    if (!m_committedInTerm) {
        m_readsBeforeCommit.push_back({from, context, m_ticks});
        return;
    }
    const Index index = m_log.committed();
    if (alone() || m_cfg.bugs.readWithoutQuorum || (m_cfg.readOnlyOption == ReadOnlyOption::LeaseBased && leaseHolds())) {
        answerRead(from, context, index);
        return;
    }
    m_reads.add(context, from, index, m_ticks);
}

bool Raft::leaseReadable() const
{
    return m_role == Role::Leader && m_cfg.readOnlyOption != ReadOnlyOption::Safe && leaseHolds();
}

bool Raft::leaseHolds() const
{
    // The leader's side of the rule in raft/config.h ("The lease"). The read path (LeaseBased
    // readIndex) and leaseReadable() both come here, so they cannot disagree.
    // A leader whose log removed it (the change not yet committed) holds none: the voters may
    // already lead on without it, and none of their promises is to a node outside their configuration.
    const bool handingOver = m_leadTransferee != NoNode || m_leaseRevoked;
    return m_committedInTerm && m_voters.contains(m_id) && (!handingOver || m_cfg.bugs.leaseReadAfterTimeoutNow) && leaseValid();
}

bool Raft::promising() const { return leaseMode() && m_ticks < m_promiseUntil; }

void Raft::notePromise()
{
    // Called for every heartbeat and Append from the leader of this node's term.
    if (!leaseMode())
        return;
    m_promiseUntil = std::max(m_promiseUntil, m_ticks + static_cast<std::uint64_t>(m_cfg.electionTick));
    m_promiseFromStart = false;
    m_leaderUnreachable = false;
}

bool Raft::mayCampaign() const
{
    if (!promising())
        return true;
    if (m_cfg.bugs.campaignInRestartQuarantine && m_promiseFromStart)
        return true;
    if (m_cfg.bugs.campaignInPromiseWhenUnreachable && m_leaderUnreachable)
        return true;
    return false;
}

bool Raft::honoursTimeoutNow(const Message &m) const
{
    // Only from the leader of this term (if this node knows one), and only for the transfer that is
    // still going on: during one the leader takes no proposals, so an entry here after the index it
    // named means the transfer was given up since.
    if (m_lead != NoNode && m_lead != m.from)
        return false;
    if (m_log.lastIndex() > m.index) {
        logEvent(LogLevel::Info, "ignored a stale TimeoutNow from node " + std::to_string(m.from) + " (it named index "
                                     + std::to_string(m.index) + ", this log ends at " + std::to_string(m_log.lastIndex()) + ")");
        return false;
    }
    return true;
}

bool Raft::leaseValid() const
{
    if (!m_reads.hasLease())
        return false;
    // A follower that acknowledged the round refuses votes until its election timer has counted
    // electionTick ticks, at least (electionTick - 1) full tick intervals after it saw the round:
    // the first of its ticks may come at once. The lease stays inside that, less the drift margin.
    const std::uint64_t span = static_cast<std::uint64_t>(m_cfg.electionTick - 1 - m_cfg.leaseDriftTicks);
    return m_ticks < m_reads.leaseStartTick() + span;
}

void Raft::answerRead(NodeId from, std::uint64_t context, Index index)
{
    if (from == m_id) {
        m_readStates.push_back({context, index});
        return;
    }
    Message m;
    m.type = MessageType::ReadIndexResponse;
    m.to = from;
    m.index = index;
    m.context = context;
    send(std::move(m));
}

void Raft::dropRead(NodeId from, std::uint64_t context)
{
    if (from == m_id) {
        m_droppedReads.push_back(context);
        return;
    }
    Message m;
    m.type = MessageType::ReadIndexResponse;
    m.to = from;
    m.context = context;
    m.reject = true;
    send(std::move(m));
}

void Raft::onReadAck(NodeId from, std::uint64_t round)
{
    if (from != m_id) {
        Progress &pr = m_progress.at(from);
        pr.ackedRound = std::max(pr.ackedRound, round);
    }
    const std::uint64_t confirmed = m_voters.committedIndex([this](NodeId id) -> std::optional<std::uint64_t> {
        if (id == m_id)
            return m_reads.lastRound();
        const auto it = m_progress.find(id);
        if (it == m_progress.end())
            return std::nullopt;
        return it->second.ackedRound;
    });
    for (const ReadIndexRounds::Read &r : m_reads.confirm(confirmed))
        answerRead(r.from, r.context, r.index);
}

void Raft::dropForwardedReads()
{
    for (auto &[batch, fwd] : m_forwardedReads)
        m_droppedReads.insert(m_droppedReads.end(), fwd.contexts.begin(), fwd.contexts.end());
    m_forwardedReads.clear();
}

void Raft::expireReads()
{
    // Nothing waits forever: a read that no quorum round confirmed, or that the leader never
    // answered, within two election timeouts is handed back as dropped.
    const std::uint64_t limit = 2 * static_cast<std::uint64_t>(m_cfg.electionTick);
    if (m_ticks <= limit)
        return;
    const std::uint64_t cutoff = m_ticks - limit;
    if (m_role == Role::Leader) {
        for (const ReadIndexRounds::Read &r : m_reads.expire(cutoff))
            dropRead(r.from, r.context);
        auto keep = std::remove_if(m_readsBeforeCommit.begin(), m_readsBeforeCommit.end(), [&](const EarlyRead &r) {
            if (r.tick >= cutoff)
                return false;
            dropRead(r.from, r.context);
            return true;
        });
        m_readsBeforeCommit.erase(keep, m_readsBeforeCommit.end());
    }
    for (auto it = m_forwardedReads.begin(); it != m_forwardedReads.end();) {
        if (it->second.sentTick < cutoff) {
            m_droppedReads.insert(m_droppedReads.end(), it->second.contexts.begin(), it->second.contexts.end());
            it = m_forwardedReads.erase(it);
        } else {
            ++it;
        }
    }
}

// ---- output -----------------------------------------------------------------------------------

void Raft::send(Message m)
{
    m.from = m_id;
    const bool carriesOwnTerm = m.type == MessageType::Vote || m.type == MessageType::PreVote
        || m.type == MessageType::VoteResponse || m.type == MessageType::PreVoteResponse;
    if (m.type == MessageType::Propose || m.type == MessageType::ReadIndex)
        m.term = 0;
    else if (!carriesOwnTerm)
        m.term = m_term;
    if (isResponseToAttest(m.type))
        m_msgsAfterPersist.push_back(std::move(m));
    else
        m_msgs.push_back(std::move(m));
}

} // namespace dengine::raft
