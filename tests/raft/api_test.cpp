// SPDX-License-Identifier: Apache-2.0
//
// The core's answers to bad input: configuration validation, stored state it cannot use, reserved
// features, unknown peers and malformed messages. None of these is in the paper; they are the
// closed set of Status values and exceptions raft.h and rawnode.h document.

#include "network.h"

#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>

namespace dengine::raft::test {
namespace {

Config validConfig()
{
    Config c;
    c.id = 1;
    return c;
}

// ---- Config::validate -------------------------------------------------------------------------

TEST(ConfigValidation, DefaultsWithAnIdAreValid)
{
    EXPECT_EQ(validConfig().validate(), "");
}

// "Empty when the configuration is usable; otherwise a sentence naming the offending field."
TEST(ConfigValidation, EachBadSettingIsRejectedNamingItsField)
{
    struct Case {
        const char *field;
        std::function<void(Config &)> breakIt;
    };
    const std::vector<Case> cases{
        {"id", [](Config &c) { c.id = NoNode; }},
        {"heartbeatTick", [](Config &c) { c.heartbeatTick = 0; }},
        {"electionTick", [](Config &c) { c.electionTick = c.heartbeatTick; }},
        {"maxSizePerMsg", [](Config &c) { c.maxSizePerMsg = 0; }},
        {"maxCommittedSizePerReady", [](Config &c) { c.maxCommittedSizePerReady = 0; }},
        {"maxInflightMsgs", [](Config &c) { c.maxInflightMsgs = 0; }},
        {"maxInflightBytes", [](Config &c) { c.maxInflightBytes = 0; }},
        {"maxInflightBytes", [](Config &c) { c.maxInflightBytes = c.maxSizePerMsg - 1; }},
        {"readOnlyOption",
         [](Config &c) {
             c.readOnlyOption = ReadOnlyOption::LeaseBased;
             c.checkQuorum = false;
         }},
        {"leaseDriftTicks", [](Config &c) { c.leaseDriftTicks = -1; }},
        {"leaseDriftTicks", [](Config &c) { c.leaseDriftTicks = c.electionTick - 1; }},
    };
    for (const Case &k : cases) {
        Config c = validConfig();
        k.breakIt(c);
        const std::string problem = c.validate();
        EXPECT_EQ(problem.rfind(std::string(k.field) + ":", 0), 0u) << "expected a complaint about " << k.field << ", got \"" << problem << "\"";

        MemoryStorage storage({1, 2, 3});
        try {
            RawNode node(c, storage);
            ADD_FAILURE() << "RawNode accepted a bad " << k.field;
        } catch (const std::invalid_argument &e) {
            EXPECT_NE(std::string(e.what()).find(k.field), std::string::npos) << e.what();
        }
    }
}

// ---- Stored state the core cannot use ---------------------------------------------------------

// A Storage whose configuration uses what the core does not support yet.
class ConfStateStorage final : public Storage {
public:
    explicit ConfStateStorage(ConfState cs) : m_conf(std::move(cs)) {}
    InitialState initialState() const override { return {HardState{}, m_conf}; }
    StorageError entries(Index lo, Index hi, std::uint64_t maxBytes, std::vector<Entry> &out) const override
    {
        return m_log.entries(lo, hi, maxBytes, out);
    }
    StorageError term(Index index, Term &out) const override { return m_log.term(index, out); }
    Index firstIndex() const override { return m_log.firstIndex(); }
    Index lastIndex() const override { return m_log.lastIndex(); }
    Snapshot snapshot() const override { return {}; }

private:
    ConfState m_conf;
    MemoryStorage m_log;
};

// Learners and joint configurations are stored states like any other (raft/confchange.h); turning
// voters into learners (learnersNext) is not supported, and learners without voters make no sense.
TEST(RaftConstruction, TakesLearnersAndJointConfigurations_refusesWhatIsNotSupported)
{
    ConfState joint;
    joint.voters = {1, 2, 4};
    joint.votersOutgoing = {1, 2, 3};
    joint.learners = {5};
    joint.autoLeave = true;
    ConfStateStorage ok(joint);
    EXPECT_NO_THROW(Raft(validConfig(), ok));
    Raft r(validConfig(), ok);
    EXPECT_EQ(r.confState(), joint);
    EXPECT_TRUE(r.voters().contains(3)) << "an old voter still votes while the configuration is joint";
    EXPECT_FALSE(r.voters().contains(5));

    ConfState next;
    next.voters = {1, 2, 3};
    next.learnersNext = {4};
    ConfStateStorage demotion(next);
    EXPECT_THROW(Raft(validConfig(), demotion), std::invalid_argument);
    ConfState learnersOnly;
    learnersOnly.learners = {1};
    ConfStateStorage noVoters(learnersOnly);
    EXPECT_THROW(Raft(validConfig(), noVoters), std::invalid_argument);
}

// No configuration at all: a node that joins a cluster. It waits for a leader to add it.
TEST(RaftConstruction, WithoutAConfiguration_aNodeWaitsToBeAdded)
{
    MemoryStorage storage{std::vector<NodeId>{}};
    RawNode node(validConfig(), storage);
    for (int i = 0; i < 100; ++i)
        node.tick();
    EXPECT_EQ(node.status().softState.role, Role::Follower) << "it never campaigns";
    EXPECT_EQ(node.status().hardState.term, 0u);
    EXPECT_EQ(node.campaign(), Status::Ok);
    EXPECT_EQ(node.status().softState.role, Role::Follower);
}

// The stored commit index cannot lie beyond the stored log, nor Config::applied beyond the commit.
TEST(RaftConstruction, RejectsCommitBeyondTheLogAndAppliedBeyondCommit)
{
    MemoryStorage storage({1, 2, 3});
    ASSERT_TRUE(storage.append({Entry{1, 1, EntryType::Normal, Payload("a")}}));
    storage.setHardState(HardState{1, NoNode, 2});
    EXPECT_THROW(RawNode(validConfig(), storage), std::invalid_argument);

    storage.setHardState(HardState{1, NoNode, 1});
    Config c = validConfig();
    c.applied = 2;
    EXPECT_THROW(RawNode(c, storage), std::invalid_argument);
    c.applied = 1;
    EXPECT_NO_THROW(RawNode(c, storage));
}

// ---- step() -----------------------------------------------------------------------------------

TEST(Step, ReservedMessageTypesAreUnsupported)
{
    Network net(3);
    EXPECT_EQ(net.step(makeMessage(MessageType::SnapshotResponse, 2, 1, 5)), Status::Unsupported);
    EXPECT_EQ(net.raft(1).term(), 0u) << "an unsupported message must change nothing, even the term";
    net.drainAll();
    EXPECT_TRUE(net.inFlight().empty());
}

// A Snapshot message without a snapshot (or with an empty one) is malformed: it changes nothing.
TEST(Step, SnapshotMessagesWithoutASnapshotAreInvalid)
{
    Network net(3);
    Message m = makeMessage(MessageType::Snapshot, 2, 1, 5);
    EXPECT_EQ(net.step(m), Status::InvalidMessage);
    m.snapshot = std::make_shared<Snapshot>();
    EXPECT_EQ(net.step(m), Status::InvalidMessage);
    EXPECT_EQ(net.raft(1).term(), 0u);
    net.drainAll();
    EXPECT_TRUE(net.inFlight().empty());
}

// Nodes outside the configuration may not talk to a node as to their leader (raft.cpp, step()):
// their proposals, reads and answers are ignored. A leader's messages and vote requests are taken
// from anyone (a node may not have the change that added them yet).
TEST(Step, UnknownPeers_mayNotProposeReadOrAnswer_butLeadersAndCandidatesAreHeard)
{
    Network net(3);
    Message propose = makeMessage(MessageType::Propose, 9, 1, 0);
    propose.entries.push_back(Entry{0, 0, EntryType::Normal, Payload("x")});
    EXPECT_EQ(net.step(propose), Status::UnknownPeer);
    EXPECT_EQ(net.step(makeMessage(MessageType::ReadIndex, 9, 1, 0)), Status::UnknownPeer);
    EXPECT_EQ(net.step(makeMessage(MessageType::AppendResponse, 9, 1, 7)), Status::UnknownPeer);
    EXPECT_EQ(net.step(makeMessage(MessageType::HeartbeatResponse, 9, 1, 7)), Status::UnknownPeer);
    EXPECT_EQ(net.raft(1).term(), 0u);

    EXPECT_EQ(net.step(makeMessage(MessageType::Heartbeat, 4, 1, 7)), Status::Ok);
    EXPECT_EQ(net.raft(1).term(), 7u);
    EXPECT_EQ(net.raft(1).leader(), 4u) << "a leader this node has not been told about yet";
    Message vote = makeMessage(MessageType::Vote, 9, 2, 8);
    EXPECT_EQ(net.step(vote), Status::Ok);
    EXPECT_EQ(net.raft(2).term(), 8u);
}

TEST(Step, MalformedMessagesAreInvalid)
{
    Network net(3);
    EXPECT_EQ(net.step(makeMessage(MessageType::Heartbeat, 2, 1, 1)), Status::Ok) << "the well-formed control case";
    const Term term = net.raft(1).term();

    Message wrongRecipient = makeMessage(MessageType::Heartbeat, 2, 3, term);
    // Step it into node 1 directly: the network would route it to node 3.
    EXPECT_EQ(net.node(1).step(wrongRecipient), Status::InvalidMessage);
    EXPECT_EQ(net.step(makeMessage(MessageType::Heartbeat, NoNode, 1, term)), Status::InvalidMessage);
    EXPECT_EQ(net.step(makeMessage(MessageType::Heartbeat, 1, 1, term)), Status::InvalidMessage);
    EXPECT_EQ(net.step(makeMessage(MessageType::Propose, 2, 1, 3)), Status::InvalidMessage) << "term-less type with a term";
    EXPECT_EQ(net.step(makeMessage(MessageType::ReadIndex, 2, 1, 3)), Status::InvalidMessage) << "term-less type with a term";
    EXPECT_EQ(net.step(makeMessage(MessageType::Append, 2, 1, 0)), Status::InvalidMessage) << "a termed type without one";
    EXPECT_EQ(net.raft(1).term(), term);
}

// ---- propose() and campaign() -----------------------------------------------------------------

// A configuration change whose bytes are not a list of operations is dropped: nothing is appended.
TEST(Propose, MalformedConfigurationChangesAreDropped)
{
    MemoryStorage storage({1});
    Raft raft(validConfig(), storage);
    raft.campaign();
    ASSERT_EQ(raft.role(), Role::Leader);
    const Index last = raft.log().lastIndex();
    EXPECT_EQ(raft.propose({Payload("conf")}, EntryType::ConfChange), Status::ProposalDropped);
    EXPECT_EQ(raft.log().lastIndex(), last);
    EXPECT_EQ(raft.propose({}, EntryType::Normal), Status::Ok);
    EXPECT_EQ(raft.log().lastIndex(), last) << "an empty batch appends nothing";
}

TEST(Campaign, LeaderCampaigningAgainChangesNothing)
{
    Network net(3);
    net.elect(1);
    const Term term = net.raft(1).term();
    net.drainAll();
    EXPECT_EQ(net.campaign(1), Status::Ok);
    EXPECT_EQ(net.raft(1).term(), term);
    EXPECT_EQ(net.raft(1).role(), Role::Leader);
    net.drain(1);
    EXPECT_EQ(net.count(ofType(MessageType::PreVote)) + net.count(ofType(MessageType::Vote)), 0u);
}

// ---- names ------------------------------------------------------------------------------------

TEST(Names, EveryEnumeratorHasAName)
{
    for (int i = 0; i <= static_cast<int>(MessageType::TimeoutNow); ++i)
        EXPECT_NE(toString(static_cast<MessageType>(i)), "?") << i;
    for (int i = 0; i <= static_cast<int>(Role::Leader); ++i)
        EXPECT_NE(toString(static_cast<Role>(i)), "?") << i;
    for (int i = 0; i <= static_cast<int>(Status::Unsupported); ++i)
        EXPECT_NE(toString(static_cast<Status>(i)), "?") << i;
    EXPECT_EQ(toString(MessageType::Append), "Append");
    EXPECT_EQ(toString(Status::NoLeader), "no leader");
}

} // namespace
} // namespace dengine::raft::test
