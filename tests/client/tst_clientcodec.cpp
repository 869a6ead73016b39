// SPDX-License-Identifier: Apache-2.0
// The client protocol's codec: round trips, refusals with reasons, and the fuzzer's properties over
// a deterministic sweep of valid streams, their truncations and bit flips (with any compiler).
#include "fuzz_clientcodec.h"

#include "client/clientcodec.h"

#include <gtest/gtest.h>

#include <random>

using namespace dengine::clientwire;
using dengine::clientwire::test::checkClientCodecInput;

namespace {

std::string payloadOf(const std::string &frame) { return frame.substr(dengine::transport::FrameHeaderBytes); }

Request sampleBatch()
{
    Request r;
    r.id = 77;
    r.kind = Kind::Batch;
    r.deadlineMs = 250;
    r.operations = {{false, "a", "1"}, {true, "b", {}}, {false, std::string("\0\xff", 2), std::string(1000, 'v')}};
    return r;
}

Response sampleStatus()
{
    Response r;
    r.id = 9;
    r.status = 0;
    r.leader = 2;
    r.revision = 41;
    r.items = {{"k", "v", 3, 5, 2}, {"k2", "", 4, 4, 1}};
    r.createRevision = 3;
    r.modRevision = 5;
    r.version = 2;
    r.nextKey = "k3";
    r.hasNode = true;
    r.node = NodeStatus{3, 2, 7, 1, 41, 40, true, {{1, "127.0.0.1:7001", false, "127.0.0.1:8001"}, {4, "127.0.0.1:7004", true, ""}}, "0.1.0"};
    return r;
}

} // namespace

TEST(ClientCodec, requestsAndResponses_roundTrip)
{
    std::string frame;
    appendRequest(frame, sampleBatch());
    Request back;
    std::string why;
    ASSERT_TRUE(decodeRequest(payloadOf(frame), back, why)) << why;
    EXPECT_EQ(back.id, 77u);
    EXPECT_EQ(back.kind, Kind::Batch);
    EXPECT_EQ(back.deadlineMs, 250u);
    EXPECT_EQ(back.version, ProtocolVersion);
    ASSERT_EQ(back.operations.size(), 3u);
    EXPECT_TRUE(back.operations[1].remove);
    EXPECT_EQ(back.operations[2].key, std::string("\0\xff", 2));

    Request add;
    add.id = 5;
    add.kind = Kind::AddLearner;
    add.node = 4;
    add.address = "127.0.0.1:7004";
    std::string aframe;
    appendRequest(aframe, add);
    ASSERT_TRUE(decodeRequest(payloadOf(aframe), back, why)) << why;
    EXPECT_EQ(back.kind, Kind::AddLearner);
    EXPECT_EQ(back.node, 4u);
    EXPECT_EQ(back.address, "127.0.0.1:7004");

    std::string rframe;
    appendResponse(rframe, sampleStatus());
    Response r;
    ASSERT_TRUE(decodeResponse(payloadOf(rframe), r, why)) << why;
    EXPECT_EQ(r.items, sampleStatus().items);
    EXPECT_EQ(r.createRevision, 3u);
    EXPECT_EQ(r.modRevision, 5u);
    EXPECT_EQ(r.version, 2u);
    ASSERT_TRUE(r.hasNode);
    EXPECT_EQ(r.node.members.size(), 2u);
    EXPECT_TRUE(r.node.members[1].learner);
    EXPECT_EQ(r.node.members[0].clientAddress, "127.0.0.1:8001");
    EXPECT_EQ(r.node.members[1].clientAddress, "");
    EXPECT_EQ(r.node.version, "0.1.0");
}

TEST(ClientCodec, subscriptionPushes_carryOrderedEventsAndTheMembersState)
{
    Request sub;
    sub.id = 9;
    sub.kind = Kind::Subscribe;
    sub.heartbeatMs = 250;
    std::string frame, why;
    appendRequest(frame, sub);
    Request back;
    ASSERT_TRUE(decodeRequest(payloadOf(frame), back, why)) << why;
    EXPECT_EQ(back.kind, Kind::Subscribe);
    EXPECT_EQ(back.heartbeatMs, 250u);

    Response push = sampleStatus();
    push.node.firstCommit = 17;
    push.node.clientAddress = "127.0.0.1:8001";
    push.node.stopping = true;
    // A re-election of the same leader, as the member saw it: nothing coalesced.
    push.events = {{Event::Kind::Leader, 0}, {Event::Kind::Term, 4}, {Event::Kind::Leader, 2}, {Event::Kind::FirstCommit, 17},
                   {Event::Kind::Role, 1}, {Event::Kind::Members, 0}};
    frame.clear();
    appendResponse(frame, push);
    Response r;
    ASSERT_TRUE(decodeResponse(payloadOf(frame), r, why)) << why;
    EXPECT_EQ(r.events, push.events);
    EXPECT_EQ(r.node.firstCommit, 17u);
    EXPECT_EQ(r.node.clientAddress, "127.0.0.1:8001");
    EXPECT_TRUE(r.node.stopping);

    Response badRole = sampleStatus();
    badRole.events = {{Event::Kind::Role, 9}};
    frame.clear();
    appendResponse(frame, badRole);
    EXPECT_FALSE(decodeResponse(payloadOf(frame), r, why));
    EXPECT_NE(why.find("unknown event"), std::string::npos);
}

TEST(ClientCodec, refusals_sayWhy)
{
    const auto refusal = [](Request r) {
        std::string frame, why;
        appendRequest(frame, r);
        Request out;
        EXPECT_FALSE(decodeRequest(payloadOf(frame), out, why));
        return why;
    };
    Request noId = sampleBatch();
    noId.id = 0;
    EXPECT_NE(refusal(noId).find("no id"), std::string::npos);
    Request empty = sampleBatch();
    empty.operations.clear();
    EXPECT_NE(refusal(empty).find("without operations"), std::string::npos);
    Request stray = sampleBatch();
    stray.kind = Kind::Put;
    EXPECT_NE(refusal(stray).find("outside a batch"), std::string::npos);
    Request consistency = sampleBatch();
    consistency.operations.clear();
    consistency.kind = Kind::Get;
    consistency.consistency = 3;
    EXPECT_NE(refusal(consistency).find("consistency"), std::string::npos);
    Request kind = consistency;
    kind.consistency = 0;
    kind.kind = static_cast<Kind>(42);
    EXPECT_NE(refusal(kind).find("unknown kind"), std::string::npos);

    Request member;
    member.id = 3;
    member.kind = Kind::Promote;
    EXPECT_NE(refusal(member).find("without a node"), std::string::npos);
    Request node;
    node.id = 3;
    node.kind = Kind::Get;
    node.node = 4;
    EXPECT_NE(refusal(node).find("outside a membership call"), std::string::npos);

    Response bad = sampleStatus();
    bad.status = 200;
    std::string frame, why;
    appendResponse(frame, bad);
    Response out;
    EXPECT_FALSE(decodeResponse(payloadOf(frame), out, why));
    EXPECT_NE(why.find("unknown status"), std::string::npos);
    Request strayCompare;
    strayCompare.id = 3;
    strayCompare.kind = Kind::Put;
    strayCompare.compares = {{0, 0, "k", "v", 0}};
    EXPECT_NE(refusal(strayCompare).find("outside a transaction"), std::string::npos);
    Request odd;
    odd.id = 3;
    odd.kind = Kind::Txn;
    odd.compares = {{9, 0, "k", "v", 0}};
    EXPECT_NE(refusal(odd).find("unknown target or op"), std::string::npos);
    Request junk;
    EXPECT_FALSE(decodeRequest("\xff\xff\xff", junk, why));
    EXPECT_NE(why.find("not a valid protocol buffer"), std::string::npos);
}

TEST(ClientCodec, fuzzerProperties_overASweepOfValidStreamsTruncationsAndBitFlips)
{
    std::string stream;
    appendRequest(stream, sampleBatch());
    appendResponse(stream, sampleStatus());
    Request get;
    get.id = 5;
    get.kind = Kind::Get;
    get.key = "key";
    appendRequest(stream, get);
    Request txn;
    txn.id = 6;
    txn.kind = Kind::Txn;
    txn.compares = {{2, 0, "k", "", 41}, {0, 1, "v", "old", 0}};
    txn.operations = {{false, "k", "new"}};
    txn.failureOperations = {{true, "k", {}}};
    appendRequest(stream, txn);
    Response push = sampleStatus();
    push.events = {{Event::Kind::Term, 3}, {Event::Kind::Leader, 1}, {Event::Kind::Role, 4}};
    appendResponse(stream, push);
    // Watches and leases.
    Request watch;
    watch.id = 7;
    watch.kind = Kind::Watch;
    watch.key = "w/";
    watch.end = "w0";
    watch.revision = 40;
    appendRequest(stream, watch);
    Request lease;
    lease.id = 8;
    lease.kind = Kind::LeaseKeepAlive;
    lease.lease = 12;
    appendRequest(stream, lease);
    Request leased;
    leased.id = 10;
    leased.kind = Kind::Batch;
    leased.operations = {{false, "q/", "body", 12, true}, {false, "k", "v", 12, false}};
    appendRequest(stream, leased);
    Response events;
    events.id = 7;
    events.revision = 45;
    events.watchEvents = {{false, "w/a", "1", 41, 41, 1, 0}, {true, "w/b", "", 44, 0, 0, 0}};
    appendResponse(stream, events);
    Response done;
    done.id = 7;
    done.status = 9; // Compacted
    done.watchDone = true;
    done.lease = 12;
    done.ttlMs = 5000;
    done.remainingMs = 1200;
    appendResponse(stream, done);
    {
        // They round-trip.
        Request back;
        std::string why;
        std::string frame;
        appendRequest(frame, leased);
        ASSERT_TRUE(decodeRequest(std::string_view(frame).substr(dengine::transport::FrameHeaderBytes), back, why)) << why;
        EXPECT_EQ(back.operations[0].lease, 12u);
        EXPECT_TRUE(back.operations[0].sequential);
        Response rb;
        frame.clear();
        appendResponse(frame, events);
        ASSERT_TRUE(decodeResponse(std::string_view(frame).substr(dengine::transport::FrameHeaderBytes), rb, why)) << why;
        EXPECT_EQ(rb.watchEvents, events.watchEvents);
        // A watch event past the push's revision, or one going back, is refused.
        Response bad = events;
        bad.watchEvents[1].revision = 46;
        frame.clear();
        appendResponse(frame, bad);
        EXPECT_FALSE(decodeResponse(std::string_view(frame).substr(dengine::transport::FrameHeaderBytes), rb, why));
        Request noLease = lease;
        noLease.lease = 0;
        frame.clear();
        appendRequest(frame, noLease);
        EXPECT_FALSE(decodeRequest(std::string_view(frame).substr(dengine::transport::FrameHeaderBytes), back, why));
    }
    std::mt19937_64 rng(20261202);
    std::size_t cases = 0;
    for (unsigned limit = 0; limit < 4; ++limit) {
        const std::string input = std::string(1, static_cast<char>(limit)) + stream;
        for (std::size_t cut = 0; cut <= input.size(); cut += 7) {
            const std::string v = checkClientCodecInput(reinterpret_cast<const std::uint8_t *>(input.data()), cut);
            ASSERT_EQ(v, "") << "limit " << limit << " cut " << cut;
            ++cases;
        }
        for (int flip = 0; flip < 3000; ++flip) {
            std::string mutated = input;
            const std::size_t at = 1 + rng() % (mutated.size() - 1);
            mutated[at] = static_cast<char>(mutated[at] ^ (1 << (rng() % 8)));
            const std::string v = checkClientCodecInput(reinterpret_cast<const std::uint8_t *>(mutated.data()), mutated.size());
            ASSERT_EQ(v, "") << "limit " << limit << " flip at " << at << " (seed 20261202, case " << flip << ")";
            ++cases;
        }
    }
    EXPECT_GT(cases, 12000u);
}
