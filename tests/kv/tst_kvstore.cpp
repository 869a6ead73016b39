// SPDX-License-Identifier: Apache-2.0
#include "kv/kvstore.h"

#include "raft/bytes.h"

#include <gtest/gtest.h>

#include <random>
#include <tuple>

using namespace dengine;
using namespace dengine::kv;
using dengine::raft::NodeId;

namespace {

raft::Entry entry(raft::Index index, const Command &c) { return raft::Entry{1, index, raft::EntryType::Normal, encodeCommand(c)}; }

Command put(std::uint64_t request, std::string key, std::string value, std::uint64_t session = 7)
{
    return Command{1, session, request, {Operation{Operation::Kind::Put, std::move(key), std::move(value)}}};
}

Command resetHistory(std::uint64_t request)
{
    Command c{1, 7, request, {}};
    c.resetHistory = true;
    return c;
}

} // namespace

TEST(KvStore, command_roundTripsThroughItsEncoding)
{
    Command c{3, 99, 1234, {{Operation::Kind::Put, "a", std::string("v\0w", 3)}, {Operation::Kind::Remove, "b", ""}}};
    Command out;
    std::string why;
    ASSERT_TRUE(decodeCommand(encodeCommand(c).view(), out, why)) << why;
    EXPECT_EQ(out.origin, 3u);
    EXPECT_EQ(out.session, 99u);
    EXPECT_EQ(out.request, 1234u);
    ASSERT_EQ(out.operations.size(), 2u);
    EXPECT_EQ(out.operations[0].value, std::string("v\0w", 3));
    EXPECT_EQ(out.operations[1].kind, Operation::Kind::Remove);
}

TEST(KvStore, malformedCommands_areRefusedWithAReason)
{
    Command out;
    std::string why;
    EXPECT_FALSE(decodeCommand("\xff\xff\xff", out, why));
    EXPECT_FALSE(why.empty());
    EXPECT_FALSE(decodeCommand(encodeCommand(Command{1, 1, 1, {}}).view(), out, why));
    EXPECT_NE(why.find("no operations"), std::string::npos) << why;
    EXPECT_FALSE(decodeCommand(encodeCommand(put(1, "", "x")).view(), out, why));
    EXPECT_NE(why.find("empty key"), std::string::npos) << why;
}

TEST(KvStore, batch_appliesAllItsOperationsAtOneIndex)
{
    KvStore kv;
    ASSERT_EQ(kv.apply(entry(1, put(1, "a", "1"))).outcome, KvStore::ApplyOutcome::Applied);
    Command batch{1, 7, 2, {{Operation::Kind::Put, "b", "2"}, {Operation::Kind::Remove, "a", ""}, {Operation::Kind::Put, "c", "3"}}};
    ASSERT_EQ(kv.apply(entry(2, batch)).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.appliedIndex(), 2u);
    EXPECT_FALSE(kv.get("a").has_value());
    EXPECT_EQ(kv.get("b"), "2");
    EXPECT_EQ(kv.get("c"), "3");
}

TEST(KvStore, duplicateRequest_appliesOnce)
{
    KvStore kv;
    kv.apply(entry(1, put(5, "k", "first")));
    kv.apply(entry(2, put(6, "k", "second")));
    // The forward of request 5 was retried and committed again later: it must not undo request 6.
    const KvStore::Applied again = kv.apply(entry(3, put(5, "k", "first")));
    EXPECT_EQ(again.outcome, KvStore::ApplyOutcome::Duplicate);
    EXPECT_EQ(kv.get("k"), "second");
    // Another session's request numbers are its own.
    EXPECT_EQ(kv.apply(entry(4, put(5, "k", "third", 8))).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.get("k"), "third");
}

TEST(KvStore, noOpsAndMalformedEntries_advanceTheIndexAndChangeNothing)
{
    KvStore kv;
    EXPECT_EQ(kv.apply(raft::Entry{1, 1, raft::EntryType::Normal, {}}).outcome, KvStore::ApplyOutcome::NoOp);
    EXPECT_EQ(kv.apply(raft::Entry{1, 2, raft::EntryType::Normal, raft::Payload("garbage")}).outcome, KvStore::ApplyOutcome::Malformed);
    EXPECT_EQ(kv.appliedIndex(), 2u);
    EXPECT_EQ(kv.size(), 0u);
    EXPECT_THROW(kv.apply(entry(5, put(1, "a", "b"))), std::logic_error) << "entries must be applied in order";
}

TEST(KvStore, scanAndRange_returnKeysInOrderWithinBounds)
{
    KvStore kv;
    raft::Index i = 0;
    for (const char *k : {"app/2", "app/1", "apple", "b", "app/3", "ap"}) {
        ++i;
        kv.apply(entry(i, put(i, k, std::string("v") + k)));
    }
    auto scan = kv.scan("app/", 0).items;
    ASSERT_EQ(scan.size(), 3u);
    EXPECT_EQ(scan[0].first, "app/1");
    EXPECT_EQ(scan[2].first, "app/3");
    EXPECT_EQ(kv.scan("app/", 0).nextKey, "") << "complete";
    EXPECT_EQ(kv.scan("app/", 2).items.size(), 2u);
    EXPECT_EQ(kv.scan("app/", 2).nextKey, "app/3") << "where the rest begins";
    EXPECT_EQ(kv.scan("zzz", 0).items.size(), 0u);
    auto range = kv.range("app/2", "b", 0).items; // byte order: "app/3" < "apple" < "b"
    ASSERT_EQ(range.size(), 3u);
    EXPECT_EQ(range[0].first, "app/2");
    EXPECT_EQ(range[1].first, "app/3");
    EXPECT_EQ(range[2].first, "apple");
    EXPECT_EQ(kv.range("apple", "", 0).items.size(), 2u) << "an empty end means no upper bound";
    EXPECT_EQ(kv.range("a", "", 1).items.front().first, "ap");
}

// A scan is bounded in bytes too, and always makes progress: a page holds at least one item.
TEST(KvStore, scanAndRange_stopAtTheByteBudget_andSayWhereTheRestBegins)
{
    KvStore kv;
    for (raft::Index i = 1; i <= 10; ++i)
        kv.apply(entry(i, put(i, "k" + std::to_string(i - 1), std::string(100, 'x'))));
    const KvStore::Page first = kv.scan("k", 0, 350);
    ASSERT_EQ(first.items.size(), 3u) << "3 x 102 bytes fit in 350, a fourth does not";
    EXPECT_EQ(first.nextKey, "k3");
    const KvStore::Page rest = kv.range(first.nextKey, "", 0, 1);
    ASSERT_EQ(rest.items.size(), 1u) << "one item even over the budget";
    EXPECT_EQ(rest.items[0].first, "k3");
    EXPECT_EQ(rest.nextKey, "k4");
    std::size_t total = 0;
    for (std::string from = "k"; !from.empty();) {
        const KvStore::Page page = kv.range(from, "", 4, SIZE_MAX);
        total += page.items.size();
        from = page.nextKey;
    }
    EXPECT_EQ(total, 10u) << "paging visits every key once";
}

// A call whose forward is retried late must still apply when it finally commits, however many
// newer calls of its session were applied meanwhile: ids are forgotten only once the origin says
// they finished (lowestPending), not when a fixed window passes them. (Before: 65,536 newer ids
// pushed the floor past it, and its caller got Timeout for a write that certainly did not apply.)
TEST(KvStore, aRequestStillPendingIsAppliedHoweverManyNewerOnesWereApplied)
{
    KvStore kv;
    raft::Index i = 0;
    for (std::uint64_t r = 2; r <= 70002; ++r) {
        Command c = put(r, "k", std::to_string(r));
        c.lowestPending = 1; // request 1 is still in flight at the origin
        ASSERT_EQ(kv.apply(entry(++i, c)).outcome, KvStore::ApplyOutcome::Applied) << r;
    }
    Command late = put(1, "late", "1");
    late.lowestPending = 1;
    EXPECT_EQ(kv.apply(entry(++i, late)).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.apply(entry(++i, late)).outcome, KvStore::ApplyOutcome::Duplicate);
}

// What the origin finished is forgotten: the ids remembered stay as few as its calls in flight.
TEST(KvStore, finishedRequestsAreForgotten)
{
    KvStore kv;
    raft::Index i = 0;
    for (std::uint64_t r = 1; r <= 1000; ++r) {
        Command c = put(r, "k", "v");
        c.lowestPending = r > 3 ? r - 3 : 1; // three calls in flight at a time
        kv.apply(entry(++i, c));
    }
    EXPECT_LE(kv.rememberedRequests(), 4u);
    // A finished request's late copy is a duplicate: it does not apply again.
    Command old = put(10, "k", "stale");
    old.lowestPending = 997;
    EXPECT_EQ(kv.apply(entry(++i, old)).outcome, KvStore::ApplyOutcome::Duplicate);
    EXPECT_EQ(kv.get("k"), "v");
}

// A node starts a new session each time it starts; only its newest few are kept, so a node
// restarted many times does not grow every replica's memory.
TEST(KvStore, sessionsArePrunedAcrossManyRestarts)
{
    KvStore kv;
    raft::Index i = 0;
    for (std::uint64_t session = 1; session <= 200; ++session) {
        for (NodeId origin : {NodeId{1}, NodeId{2}, NodeId{3}}) {
            Command c{origin, session, 1, {Operation{Operation::Kind::Put, "k", "v"}}};
            ASSERT_EQ(kv.apply(entry(++i, c)).outcome, KvStore::ApplyOutcome::Applied);
        }
    }
    EXPECT_EQ(kv.sessionCount(), 3 * KvStore::SessionsPerOrigin);
    // The newest sessions still deduplicate.
    Command again{2, 200, 1, {Operation{Operation::Kind::Put, "k", "again"}}};
    EXPECT_EQ(kv.apply(entry(++i, again)).outcome, KvStore::ApplyOutcome::Duplicate);
}

TEST(KvStore, requestsOutOfOrder_eachAppliesOnce)
{
    // Request 6's forward arrived first; 5's retry (its first forward was lost with a leader) later.
    KvStore kv;
    EXPECT_EQ(kv.apply(entry(1, put(6, "b", "six"))).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.apply(entry(2, put(5, "a", "five"))).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.get("a"), "five");
    EXPECT_EQ(kv.apply(entry(3, put(5, "a", "again"))).outcome, KvStore::ApplyOutcome::Duplicate);
    EXPECT_EQ(kv.apply(entry(4, put(6, "b", "again"))).outcome, KvStore::ApplyOutcome::Duplicate);
    EXPECT_EQ(kv.get("a"), "five");
    EXPECT_EQ(kv.get("b"), "six");
}

TEST(KvStore, applicationCommand_roundTrips_isDeduplicated_andTouchesNoKey)
{
    Command app{1, 7, 3, {}, std::string("add hits 1")};
    Command back;
    std::string why;
    ASSERT_TRUE(decodeCommand(encodeCommand(app).view(), back, why)) << why;
    ASSERT_TRUE(back.application.has_value());
    EXPECT_EQ(*back.application, "add hits 1");
    EXPECT_TRUE(back.operations.empty());
    KvStore kv;
    EXPECT_EQ(kv.apply(entry(1, app)).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.apply(entry(2, app)).outcome, KvStore::ApplyOutcome::Duplicate);
    EXPECT_EQ(kv.size(), 0u);
    // Operations and an application command together, or neither, is malformed.
    Command both{1, 7, 4, {{Operation::Kind::Put, "k", "v"}}, std::string("x")};
    EXPECT_FALSE(decodeCommand(encodeCommand(both).view(), back, why));
    Command empty{1, 7, 5, {}, std::nullopt};
    EXPECT_FALSE(decodeCommand(encodeCommand(empty).view(), back, why));
}

// Snapshots (issue 9): the whole state as bytes, and back, on any replica alike.
TEST(KvStoreSnapshot, roundTrips_andDeduplicationGoesOnAfterIt)
{
    KvStore a;
    a.apply(entry(1, put(1, "alpha", "1")));
    a.apply(entry(2, put(2, "beta", std::string("x\0y", 3))));
    Command del{1, 7, 3, {Operation{Operation::Kind::Remove, "alpha", ""}}, std::nullopt, 0};
    a.apply(entry(3, del));
    a.apply(entry(4, put(1, "gamma", "3", 8)));
    const std::string bytes = a.snapshot();

    KvStore b;
    b.apply(entry(1, put(9, "stale", "gone", 5)));
    std::string why;
    ASSERT_TRUE(b.restore(bytes, why)) << why;
    EXPECT_EQ(b.appliedIndex(), 4u);
    EXPECT_EQ(b.size(), 2u);
    EXPECT_FALSE(b.get("stale")) << "a restore replaces the state";
    EXPECT_EQ(b.get("beta"), std::string("x\0y", 3));
    EXPECT_EQ(b.sessionCount(), a.sessionCount());
    EXPECT_EQ(b.snapshot(), bytes) << "equal states give equal bytes";
    // A retried command that the snapshot holds stays a duplicate.
    EXPECT_EQ(b.apply(entry(5, put(2, "beta", "again"))).outcome, KvStore::ApplyOutcome::Duplicate);
    EXPECT_EQ(b.get("beta"), std::string("x\0y", 3));
    EXPECT_EQ(b.apply(entry(6, put(4, "delta", "4"))).outcome, KvStore::ApplyOutcome::Applied);
}

TEST(KvStoreSnapshot, malformedBytes_areRefused_andChangeNothing)
{
    KvStore a;
    for (std::uint64_t i = 1; i <= 20; ++i)
        a.apply(entry(i, put(i, "k" + std::to_string(i), std::string(i, 'v'))));
    const std::string good = a.snapshot();
    KvStore b;
    b.apply(entry(1, put(1, "mine", "kept", 3)));
    const std::string before = b.snapshot();
    std::string why;
    for (std::size_t cut = 0; cut < good.size(); cut += 7) {
        EXPECT_FALSE(b.restore(std::string_view(good).substr(0, cut), why)) << "cut at " << cut;
        EXPECT_FALSE(why.empty());
    }
    EXPECT_FALSE(b.restore(good + "x", why));
    EXPECT_NE(why.find("after its end"), std::string::npos) << why;
    EXPECT_FALSE(b.restore("DKVSNAP1" + good.substr(8), why));
    EXPECT_NE(why.find("magic"), std::string::npos) << why;
    EXPECT_EQ(b.snapshot(), before) << "a refused restore leaves the store as it was";
    // Flipped bytes never crash it; a snapshot checksum (the file's) is what tells damage apart.
    std::uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 5000; ++i) {
        std::string damaged = good;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        damaged[(x >> 33) % damaged.size()] ^= static_cast<char>(1 + (x >> 13) % 255);
        KvStore c;
        c.restore(damaged, why);
    }
}

TEST(KvStoreSnapshot, frozenState_staysAsItWas_whileTheStoreGoesOn)
{
    KvStore kv;
    for (std::uint64_t i = 1; i <= 50; ++i)
        kv.apply(entry(i, put(i, "k" + std::to_string(100 + i), "v" + std::to_string(i))));
    KvStore reference;
    std::string why;
    ASSERT_TRUE(reference.restore(kv.snapshot(), why)) << why;
    const std::string atFifty = reference.snapshot();

    std::shared_ptr<const KvStore::Frozen> f = kv.freeze();
    EXPECT_TRUE(kv.frozen());
    EXPECT_EQ(f->appliedIndex(), 50u);
    // Changes after the freeze: overwrite, delete, new keys before, among and after the old ones.
    Command batch{1, 7, 51, {{Operation::Kind::Put, "k110", "new"}, {Operation::Kind::Remove, "k120", ""}, {Operation::Kind::Put, "a", "first"},
                             {Operation::Kind::Put, "k1205", "between"}, {Operation::Kind::Put, "z", "last"}, {Operation::Kind::Remove, "nothing", ""}}};
    ASSERT_EQ(kv.apply(entry(51, batch)).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.size(), 52u);
    EXPECT_EQ(kv.get("k110"), "new");
    EXPECT_FALSE(kv.get("k120"));
    EXPECT_EQ(kv.get("a"), "first");
    // Reads see the overlay merged over the frozen map, in order, within the limits.
    const KvStore::Page all = kv.range("", "", 0);
    ASSERT_EQ(all.items.size(), 52u);
    EXPECT_EQ(all.items.front().first, "a");
    EXPECT_EQ(all.items.back().first, "z");
    for (std::size_t i = 1; i < all.items.size(); ++i)
        EXPECT_LT(all.items[i - 1].first, all.items[i].first);
    const KvStore::Page p = kv.scan("k12", 3);
    ASSERT_EQ(p.items.size(), 3u);
    EXPECT_EQ(p.items[0].first, "k1205") << "the deleted k120 is hidden";
    EXPECT_EQ(p.items[1].first, "k121");
    EXPECT_EQ(p.nextKey, "k123");

    // The frozen state serializes as it was at 50, in pieces.
    std::string bytes;
    std::size_t pieces = 0;
    ASSERT_TRUE(f->serialize([&](std::string_view piece) { bytes.append(piece); ++pieces; return true; }, 64));
    EXPECT_GT(pieces, 10u);
    EXPECT_EQ(bytes, atFifty);

    // Folding in waits for the frozen state to be let go.
    EXPECT_FALSE(kv.thaw());
    const std::string whileFrozen = [&] {
        KvStore copy;
        EXPECT_TRUE(copy.restore(kv.snapshot(), why)) << why;
        return copy.snapshot();
    }();
    f.reset();
    EXPECT_TRUE(kv.thaw());
    EXPECT_FALSE(kv.frozen());
    EXPECT_EQ(kv.size(), 52u);
    EXPECT_EQ(kv.get("k110"), "new");
    EXPECT_EQ(kv.snapshot(), whileFrozen) << "the same state before and after folding in";
}

TEST(KvStoreSnapshot, memberAddresses_areAppliedAndKeptInTheSnapshot)
{
    KvStore kv;
    Command m{2, 1, 1, {}};
    m.members = {{4, "127.0.0.1:7004"}, {5, "127.0.0.1:7005"}};
    ASSERT_EQ(kv.apply(entry(1, m)).outcome, KvStore::ApplyOutcome::Applied);
    Command forget{2, 1, 2, {}};
    forget.members = {{5, ""}};
    ASSERT_EQ(kv.apply(entry(2, forget)).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.memberAddresses(), (std::map<NodeId, std::string>{{4, "127.0.0.1:7004"}}));
    EXPECT_EQ(kv.size(), 0u) << "addresses are not keys";
    KvStore b;
    std::string why;
    ASSERT_TRUE(b.restore(kv.snapshot(), why)) << why;
    EXPECT_EQ(b.memberAddresses(), kv.memberAddresses());
    // A command with addresses and operations both is refused.
    Command both = put(3, "k", "v");
    both.members = {{6, "x:1"}};
    Command out;
    EXPECT_FALSE(decodeCommand(encodeCommand(both).view(), out, why));
}

TEST(KvStoreSnapshot, clientAddresses_areApplied_forgottenWithTheMember_andKeptInTheSnapshot)
{
    KvStore kv;
    Command peers{2, 1, 1, {}};
    peers.members = {{4, "127.0.0.1:7004"}, {5, "127.0.0.1:7005"}};
    ASSERT_EQ(kv.apply(entry(1, peers)).outcome, KvStore::ApplyOutcome::Applied);
    Command clients{4, 1, 1, {}};
    clients.clientAddresses = {{4, "127.0.0.1:8004"}};
    Command decoded;
    std::string why;
    ASSERT_TRUE(decodeCommand(encodeCommand(clients).view(), decoded, why)) << why;
    EXPECT_EQ(decoded.clientAddresses, clients.clientAddresses);
    EXPECT_TRUE(decoded.members.empty() && decoded.operations.empty());
    ASSERT_EQ(kv.apply(entry(2, clients)).outcome, KvStore::ApplyOutcome::Applied);
    Command five{5, 1, 1, {}};
    five.clientAddresses = {{5, "127.0.0.1:8005"}};
    ASSERT_EQ(kv.apply(entry(3, five)).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.clientAddresses(), (std::map<NodeId, std::string>{{4, "127.0.0.1:8004"}, {5, "127.0.0.1:8005"}}));
    EXPECT_EQ(kv.memberAddresses().size(), 2u) << "the two books are apart";

    // Forgetting a member's peer address forgets where it serves clients too.
    Command forget{2, 1, 2, {}};
    forget.members = {{5, ""}};
    ASSERT_EQ(kv.apply(entry(4, forget)).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.clientAddresses(), (std::map<NodeId, std::string>{{4, "127.0.0.1:8004"}}));
    // A member moving its client port replaces its entry; an empty one forgets it.
    Command moved{4, 1, 2, {}};
    moved.clientAddresses = {{4, "127.0.0.1:9004"}};
    ASSERT_EQ(kv.apply(entry(5, moved)).outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(kv.clientAddresses().at(4), "127.0.0.1:9004");

    KvStore b;
    ASSERT_TRUE(b.restore(kv.snapshot(), why)) << why;
    EXPECT_EQ(b.clientAddresses(), kv.clientAddresses());
    EXPECT_EQ(b.memberAddresses(), kv.memberAddresses());
    EXPECT_EQ(b.snapshot(), kv.snapshot());

    // Client addresses with anything else in one command are refused.
    Command mixed{4, 1, 3, {}};
    mixed.clientAddresses = {{4, "x:1"}};
    mixed.members = {{4, "x:2"}};
    EXPECT_FALSE(decodeCommand(encodeCommand(mixed).view(), decoded, why));
    EXPECT_NE(why.find("client addresses"), std::string::npos) << why;
    Command tooLong{4, 1, 3, {}};
    tooLong.clientAddresses = {{4, std::string(MaxMemberAddressBytes + 1, 'h')}};
    EXPECT_FALSE(decodeCommand(encodeCommand(tooLong).view(), decoded, why));
}

// A snapshot in a format before the current one, by hand: one key, no sessions, one member address,
// and (from version 3) an empty client address book.
static std::string oldSnapshot(std::string_view magic, raft::Index applied, bool clientBook)
{
    std::string out(magic);
    raft::putU64(out, applied);
    raft::putU64(out, 1);
    raft::putBytes(out, "k");
    raft::putBytes(out, "v");
    raft::putU64(out, 0); // sessions
    raft::putU64(out, 1); // member addresses
    raft::putU64(out, 4);
    raft::putBytes(out, "127.0.0.1:7004");
    if (clientBook)
        raft::putU64(out, 0);
    return out;
}

TEST(KvStoreSnapshot, olderFormats_areStillRead_theirKeysStartTheirHistoryAtTheSnapshot)
{
    for (const bool v2 : {false, true}) {
        SCOPED_TRACE(v2 ? "DKVSNAP2" : "DKVSNAP3");
        KvStore b;
        std::string why;
        ASSERT_TRUE(b.restore(oldSnapshot(v2 ? "DKVSNAP2" : "DKVSNAP3", 9, !v2), why)) << why;
        EXPECT_EQ(b.appliedIndex(), 9u);
        // No revisions were kept then: the key's history starts at the snapshot's index.
        EXPECT_EQ(b.record("k"), (KeyRecord{"v", 9, 9, 1}));
        EXPECT_EQ(b.memberAddresses().at(4), "127.0.0.1:7004");
        EXPECT_TRUE(b.clientAddresses().empty());
        // Written again in the current format, and read back the same.
        const std::string v4 = b.snapshot();
        EXPECT_EQ(v4.substr(0, 8), "DKVSNAP5");
        KvStore c;
        ASSERT_TRUE(c.restore(v4, why)) << why;
        EXPECT_EQ(c.record("k"), b.record("k"));
        EXPECT_EQ(c.snapshot(), v4);
        // Those guessed histories are this replica's own: not established until a reset, which
        // every replica applies alike.
        EXPECT_EQ(c.historyFrom(), 0u);
        c.apply(entry(10, resetHistory(1)));
        EXPECT_EQ(c.record("k"), (KeyRecord{"v", 10, 10, 1}));
    }
    // A version 3 snapshot cut before its client book is refused, not taken for a version 2 one.
    KvStore d;
    std::string why;
    EXPECT_FALSE(d.restore(oldSnapshot("DKVSNAP3", 9, false), why));
}

TEST(KvStore, revisions_followEachKeysHistory)
{
    KvStore kv;
    kv.apply(entry(1, put(1, "a", "1")));
    EXPECT_EQ(kv.record("a"), (KeyRecord{"1", 1, 1, 1}));
    kv.apply(entry(2, put(2, "a", "2")));
    EXPECT_EQ(kv.record("a"), (KeyRecord{"2", 1, 2, 2}));
    // One command writing two keys: both at its index; a key written twice counts two versions.
    kv.apply(entry(3, Command{1, 7, 3, {{Operation::Kind::Put, "b", "x"}, {Operation::Kind::Put, "a", "3"}, {Operation::Kind::Put, "b", "y"}}}));
    EXPECT_EQ(kv.record("a"), (KeyRecord{"3", 1, 3, 3}));
    EXPECT_EQ(kv.record("b"), (KeyRecord{"y", 3, 3, 2}));
    // A duplicate changes nothing; a no-op entry neither.
    EXPECT_EQ(kv.apply(entry(4, put(2, "a", "2"))).outcome, KvStore::ApplyOutcome::Duplicate);
    kv.apply(raft::Entry{1, 5, raft::EntryType::Normal, {}});
    EXPECT_EQ(kv.record("a"), (KeyRecord{"3", 1, 3, 3}));
    // Deleted, then written again: a new history.
    kv.apply(entry(6, Command{1, 7, 4, {{Operation::Kind::Remove, "a", ""}}}));
    EXPECT_FALSE(kv.record("a").has_value());
    kv.apply(entry(7, put(5, "a", "again")));
    EXPECT_EQ(kv.record("a"), (KeyRecord{"again", 7, 7, 1}));
    EXPECT_EQ(kv.get("a"), "again");
    // Scans and ranges give each item's revisions beside it.
    const KvStore::Page page = kv.scan("", 0);
    ASSERT_EQ(page.items.size(), 2u);
    ASSERT_EQ(page.records.size(), 2u);
    EXPECT_EQ(page.items[0].first, "a");
    EXPECT_EQ(page.records[0], (KeyRecord{"", 7, 7, 1}));
    EXPECT_EQ(page.records[1], (KeyRecord{"", 3, 3, 2}));
}

static Command txn(std::uint64_t request, std::vector<Compare> compares, std::vector<Operation> success, std::vector<Operation> failure)
{
    Command c{1, 7, request, std::move(success)};
    c.txn = true;
    c.compares = std::move(compares);
    c.failure = std::move(failure);
    return c;
}

TEST(KvStore, transaction_roundTripsThroughItsEncoding_andIsCheckedOnDecode)
{
    const Command c = txn(9, {Compare{Compare::Target::ModRevision, Compare::Op::Less, "k", "", 42}, Compare{Compare::Target::Value, Compare::Op::NotEqual, "v", "x", 0}},
                          {{Operation::Kind::Put, "k", "new"}}, {{Operation::Kind::Remove, "k", ""}});
    Command out;
    std::string why;
    ASSERT_TRUE(decodeCommand(encodeCommand(c).view(), out, why)) << why;
    EXPECT_TRUE(out.txn);
    EXPECT_EQ(out.compares, c.compares);
    ASSERT_EQ(out.failure.size(), 1u);
    EXPECT_EQ(out.failure[0].kind, Operation::Kind::Remove);
    // A transaction with nothing to do is still one (compares only: a check at one index).
    Command empty = txn(10, {Compare{Compare::Target::Version, Compare::Op::Equal, "k", "", 0}}, {}, {});
    ASSERT_TRUE(decodeCommand(encodeCommand(empty).view(), out, why)) << why;
    EXPECT_TRUE(out.txn);
    EXPECT_TRUE(out.operations.empty());
    // A compare with an empty key is refused.
    Command noKey = txn(11, {Compare{Compare::Target::Version, Compare::Op::Equal, "", "", 0}}, {}, {});
    EXPECT_FALSE(decodeCommand(encodeCommand(noKey).view(), out, why));
    EXPECT_NE(why.find("compare"), std::string::npos) << why;
}

TEST(KvStore, transaction_runsOneBranch_byItsComparesAgainstTheStateBeforeIt)
{
    KvStore kv;
    kv.apply(entry(1, resetHistory(100))); // a new cluster's leader establishes the histories first
    kv.apply(entry(2, put(1, "k", "v1")));
    kv.apply(entry(3, put(2, "k", "v2"))); // k: created 2, changed 3, version 2
    using T = Compare::Target;
    using O = Compare::Op;
    const Operation swap{Operation::Kind::Put, "k", "swapped"};
    const Operation mark{Operation::Kind::Put, "lost", "yes"};
    struct Case {
        Compare compare;
        bool holds;
    };
    const std::vector<Case> cases{
        {{T::Value, O::Equal, "k", "v2", 0}, true},     {{T::Value, O::Equal, "k", "v1", 0}, false},
        {{T::Value, O::NotEqual, "k", "v1", 0}, true},  {{T::Value, O::Less, "k", "v3", 0}, true},
        {{T::Value, O::Greater, "k", "v3", 0}, false},  {{T::Version, O::Equal, "k", "", 2}, true},
        {{T::Version, O::Greater, "k", "", 2}, false},  {{T::CreateRevision, O::Equal, "k", "", 2}, true},
        {{T::ModRevision, O::Equal, "k", "", 3}, true}, {{T::ModRevision, O::Less, "k", "", 3}, false},
        // A missing key: version and revisions 0; its value compares never hold.
        {{T::Version, O::Equal, "none", "", 0}, true},  {{T::CreateRevision, O::Greater, "none", "", 0}, false},
        {{T::Value, O::NotEqual, "none", "x", 0}, false},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.compare.key + " target " + std::to_string(int(c.compare.target)) + " op " + std::to_string(int(c.compare.op)));
        EXPECT_EQ(kv.holds(c.compare), c.holds);
    }
    // Compare and swap on the mod revision: the first holds, the same again does not.
    KvStore::Applied a = kv.apply(entry(4, txn(3, {{T::ModRevision, O::Equal, "k", "", 3}}, {swap}, {mark})));
    EXPECT_EQ(a.outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_TRUE(a.succeeded);
    EXPECT_TRUE(a.rejected.empty());
    EXPECT_EQ(kv.record("k"), (KeyRecord{"swapped", 2, 4, 3}));
    EXPECT_FALSE(kv.get("lost"));
    a = kv.apply(entry(5, txn(4, {{T::ModRevision, O::Equal, "k", "", 3}}, {swap}, {mark})));
    EXPECT_FALSE(a.succeeded);
    EXPECT_EQ(kv.record("k")->modRevision, 4u) << "the success branch did not run";
    EXPECT_EQ(kv.get("lost"), "yes") << "the failure branch ran";
    // Every compare must hold; compares see the state before the entry, not its own writes: the
    // branch deletes the key it compares, and a second copy of the compare still saw it.
    a = kv.apply(entry(6, txn(5, {{T::Version, O::Equal, "fresh", "", 0}, {T::Value, O::Equal, "k", "swapped", 0}},
                              {{Operation::Kind::Put, "fresh", "1"}, {Operation::Kind::Put, "fresh", "2"}, {Operation::Kind::Remove, "k", ""}}, {})));
    EXPECT_TRUE(a.succeeded);
    EXPECT_EQ(kv.record("fresh"), (KeyRecord{"2", 6, 6, 2}));
    EXPECT_FALSE(kv.get("k"));
    a = kv.apply(entry(7, txn(6, {{T::Version, O::Equal, "fresh", "", 0}}, {mark}, {})));
    EXPECT_FALSE(a.succeeded);
    // A duplicate transaction applies once (its answer went with the first).
    EXPECT_EQ(kv.apply(entry(8, txn(6, {}, {mark}, {}))).outcome, KvStore::ApplyOutcome::Duplicate);
    // A plain write is not a transaction.
    EXPECT_FALSE(kv.apply(entry(9, put(8, "x", "y"))).succeeded);
}

TEST(KvStore, keyHistories_startAtAReplicatedReset_andTxnsWaitForIt)
{
    KvStore kv;
    EXPECT_EQ(kv.historyFrom(), 0u);
    kv.apply(entry(1, put(1, "a", "1")));
    kv.apply(entry(2, put(2, "a", "2")));
    kv.apply(entry(3, put(3, "b", "1")));
    // Before the reset a version or revision compare decides nothing (every replica alike); a
    // value compare does.
    KvStore::Applied a = kv.apply(entry(4, txn(4, {{Compare::Target::Version, Compare::Op::Equal, "a", "", 2}}, {{Operation::Kind::Put, "c", "1"}}, {})));
    EXPECT_EQ(a.outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_FALSE(a.rejected.empty());
    EXPECT_FALSE(kv.get("c")) << "nothing ran";
    a = kv.apply(entry(5, txn(5, {{Compare::Target::Value, Compare::Op::Equal, "a", "2", 0}}, {{Operation::Kind::Put, "c", "1"}}, {})));
    EXPECT_TRUE(a.rejected.empty());
    EXPECT_TRUE(a.succeeded);
    // The reset: every key that exists now counts as created and changed at it, version 1; keys
    // written after it count from there.
    kv.apply(entry(6, resetHistory(6)));
    EXPECT_EQ(kv.historyFrom(), 6u);
    EXPECT_EQ(kv.record("a"), (KeyRecord{"2", 6, 6, 1}));
    kv.apply(entry(7, put(7, "a", "3")));
    EXPECT_EQ(kv.record("a"), (KeyRecord{"3", 6, 7, 2}));
    const KvStore::Page page = kv.scan("", 0);
    ASSERT_EQ(page.records.size(), 3u);
    EXPECT_EQ(page.records[0], (KeyRecord{"", 6, 7, 2}));
    EXPECT_EQ(page.records[1], (KeyRecord{"", 6, 6, 1}));
    // While frozen as well, and through a snapshot (the reset's index goes with it).
    {
        const auto frozen = kv.freeze();
        kv.apply(entry(8, put(8, "b", "2")));
        EXPECT_EQ(kv.record("b"), (KeyRecord{"2", 6, 8, 2}));
    }
    ASSERT_TRUE(kv.thaw());
    KvStore copy;
    std::string why;
    ASSERT_TRUE(copy.restore(kv.snapshot(), why)) << why;
    EXPECT_EQ(copy.historyFrom(), 6u);
    EXPECT_EQ(copy.record("a"), kv.record("a"));
    EXPECT_EQ(copy.record("b"), kv.record("b"));
    EXPECT_EQ(copy.record("c"), (KeyRecord{"1", 6, 6, 1}));
    EXPECT_TRUE(copy.apply(entry(9, txn(9, {{Compare::Target::ModRevision, Compare::Op::Equal, "b", "", 8}}, {}, {}))).succeeded);
}

TEST(KvStoreSnapshot, revisions_whileFrozen_afterThaw_andThroughASnapshot)
{
    KvStore kv;
    kv.apply(entry(1, put(1, "a", "1")));
    kv.apply(entry(2, put(2, "b", "1")));
    const std::string before = kv.snapshot();
    {
        const auto frozen = kv.freeze();
        kv.apply(entry(3, put(3, "a", "2")));                                      // in the overlay, over the map
        kv.apply(entry(4, Command{1, 7, 4, {{Operation::Kind::Remove, "b", ""}}})); // hidden by the overlay
        kv.apply(entry(5, put(5, "b", "again")));                                  // a new history, in the overlay
        EXPECT_EQ(kv.record("a"), (KeyRecord{"2", 1, 3, 2}));
        EXPECT_EQ(kv.record("b"), (KeyRecord{"again", 5, 5, 1}));
        // The frozen state is the one at index 2, revisions and all.
        std::string bytes;
        frozen->serialize([&](std::string_view piece) {
            bytes.append(piece);
            return true;
        });
        EXPECT_EQ(bytes, before);
    }
    ASSERT_TRUE(kv.thaw());
    EXPECT_EQ(kv.record("a"), (KeyRecord{"2", 1, 3, 2}));
    EXPECT_EQ(kv.record("b"), (KeyRecord{"again", 5, 5, 1}));
    KvStore copy;
    std::string why;
    ASSERT_TRUE(copy.restore(kv.snapshot(), why)) << why;
    EXPECT_EQ(copy.record("a"), kv.record("a"));
    EXPECT_EQ(copy.record("b"), kv.record("b"));
    // And the history goes on from the restored revisions.
    copy.apply(entry(6, put(6, "a", "3")));
    EXPECT_EQ(copy.record("a"), (KeyRecord{"3", 1, 6, 3}));
}

TEST(KvStoreSnapshot, impossibleRevisions_areRefused)
{
    KvStore kv;
    kv.apply(entry(1, put(1, "a", "1")));
    const std::string good = kv.snapshot();
    // Key "a": magic, applied, history start, count, then u32 length + "a", u32 length + "1", then
    // the revisions.
    const std::size_t revisions = 8 + 8 + 8 + 8 + 4 + 1 + 4 + 1;
    const auto withRevisions = [&](std::uint64_t create, std::uint64_t mod, std::uint64_t version) {
        std::string bad = good.substr(0, revisions);
        raft::putU64(bad, create);
        raft::putU64(bad, mod);
        raft::putU64(bad, version);
        return bad + good.substr(revisions + 24);
    };
    std::string why;
    KvStore b;
    ASSERT_TRUE(b.restore(withRevisions(1, 1, 1), why)) << why;
    for (const auto &[create, mod, version] : std::initializer_list<std::tuple<int, int, int>>{{0, 1, 1}, {1, 2, 1}, {1, 1, 0}, {2, 1, 1}, {1, 5, 1}}) {
        why.clear();
        EXPECT_FALSE(b.restore(withRevisions(std::uint64_t(create), std::uint64_t(mod), std::uint64_t(version)), why));
        EXPECT_NE(why.find("revisions"), std::string::npos) << why;
        EXPECT_EQ(b.get("a"), "1") << "a refused snapshot changes nothing";
    }
}

// Replicas must agree whatever path their state took: one store applies a random log straight
// through; the other is frozen and thawed, snapshotted and restored into a fresh store at random
// points. Transactions (on values, versions and revisions, before and after history resets),
// batches and deletes on a few keys must give the same outcome on both at every entry, and the
// same state at the end.
TEST(KvStore, randomLogs_giveTheSameOutcomes_throughFreezesSnapshotsAndRestores)
{
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " (tst_kvstore --gtest_filter=*randomLogs*)");
        std::mt19937_64 rng(seed);
        const auto pick = [&](std::uint64_t n) { return rng() % n; };
        const std::vector<std::string> keys{"a", "b", "c", "d"};
        KvStore straight;
        auto winding = std::make_unique<KvStore>();
        std::shared_ptr<const KvStore::Frozen> held;
        std::uint64_t request = 0;
        for (raft::Index index = 1; index <= 300; ++index) {
            Command c{1, 7, ++request, {}};
            const auto randomOps = [&] {
                std::vector<Operation> ops;
                for (std::uint64_t i = pick(3); i > 0; --i)
                    ops.push_back(pick(4) == 0 ? Operation{Operation::Kind::Remove, keys[pick(4)], ""}
                                               : Operation{Operation::Kind::Put, keys[pick(4)], std::to_string(pick(5))});
                return ops;
            };
            switch (pick(10)) {
            case 0: c.resetHistory = true; break;
            case 1: case 2: case 3: c.operations = randomOps(); if (c.operations.empty()) c.operations.push_back({Operation::Kind::Put, "a", "x"}); break;
            default: {
                c.txn = true;
                for (std::uint64_t i = pick(3); i > 0; --i)
                    c.compares.push_back(Compare{static_cast<Compare::Target>(pick(4)), static_cast<Compare::Op>(pick(4)), keys[pick(4)],
                                                 std::to_string(pick(5)), pick(index + 1)});
                c.operations = randomOps();
                c.failure = randomOps();
            }
            }
            const KvStore::Applied x = straight.apply(entry(index, c));
            const KvStore::Applied y = winding->apply(entry(index, c));
            ASSERT_EQ(x.outcome, y.outcome) << "entry " << index;
            ASSERT_EQ(x.succeeded, y.succeeded) << "entry " << index;
            ASSERT_EQ(x.rejected, y.rejected) << "entry " << index;
            for (const std::string &k : keys)
                ASSERT_EQ(straight.record(k), winding->record(k)) << "key " << k << " after entry " << index;
            // The winding one's path: freeze (a snapshot being written), thaw, or a restart from
            // its own snapshot.
            switch (pick(8)) {
            case 0: if (!held) held = winding->freeze(); break;
            case 1: held.reset(); ASSERT_TRUE(winding->thaw()); break;
            case 2: {
                held.reset();
                const std::string bytes = winding->snapshot();
                winding = std::make_unique<KvStore>();
                std::string why;
                ASSERT_TRUE(winding->restore(bytes, why)) << why;
                break;
            }
            default: break;
            }
        }
        held.reset();
        ASSERT_TRUE(winding->thaw());
        EXPECT_EQ(straight.snapshot(), winding->snapshot());
        EXPECT_EQ(straight.historyFrom(), winding->historyFrom());
    }
}

namespace {

Command leaseCommand(std::uint64_t request, LeaseCommand::Kind kind, std::uint64_t id, std::uint64_t ttlMs = 0, std::uint64_t renewedAt = 0)
{
    Command c{1, 7, request, {}};
    c.lease = LeaseCommand{kind, id, ttlMs, renewedAt};
    return c;
}

Command leasedPut(std::uint64_t request, std::string key, std::string value, std::uint64_t lease)
{
    Command c = put(request, std::move(key), std::move(value));
    c.operations[0].lease = lease;
    return c;
}

} // namespace

TEST(KvStoreLeases, grantAttachRenewRevoke_keysGoWithTheirLease_atOneRevision)
{
    KvStore kv;
    kv.setKeepEvents(true);
    KvStore::Applied a = kv.apply(entry(1, leaseCommand(1, LeaseCommand::Kind::Grant, 0, 5000)));
    ASSERT_EQ(a.outcome, KvStore::ApplyOutcome::Applied);
    EXPECT_EQ(a.leaseId, 1u); // the granting entry's index
    EXPECT_EQ(a.leaseTtlMs, 5000u);
    EXPECT_TRUE(kv.apply(entry(2, leasedPut(2, "a", "1", 1))).rejected.empty());
    EXPECT_TRUE(kv.apply(entry(3, leasedPut(3, "b", "2", 1))).rejected.empty());
    kv.apply(entry(4, put(4, "c", "free")));
    EXPECT_EQ(kv.record("a")->lease, 1u);
    EXPECT_EQ(kv.leases().at(1).keys, (std::set<std::string, std::less<>>{"a", "b"}));
    // Written again without the lease: detached from it.
    kv.apply(entry(5, put(5, "b", "3")));
    EXPECT_EQ(kv.record("b")->lease, 0u);
    EXPECT_EQ(kv.leases().at(1).keys, (std::set<std::string, std::less<>>{"a"}));
    a = kv.apply(entry(6, leaseCommand(6, LeaseCommand::Kind::KeepAlive, 1)));
    EXPECT_TRUE(a.rejected.empty());
    EXPECT_EQ(kv.leases().at(1).renewedAt, 6u);
    // An expiry decided before that renewal changes nothing.
    a = kv.apply(entry(7, leaseCommand(7, LeaseCommand::Kind::Expire, 1, 0, 1)));
    EXPECT_FALSE(a.expired);
    EXPECT_TRUE(kv.get("a").has_value());
    // One that saw the last renewal deletes the lease and its keys, with events at its index.
    a = kv.apply(entry(8, leaseCommand(8, LeaseCommand::Kind::Expire, 1, 0, 6)));
    EXPECT_TRUE(a.expired);
    EXPECT_FALSE(kv.get("a").has_value());
    EXPECT_TRUE(kv.get("b").has_value());
    EXPECT_TRUE(kv.leases().empty());
    ASSERT_EQ(a.events.size(), 1u);
    EXPECT_EQ(a.events[0].type, Event::Type::Delete);
    EXPECT_EQ(a.events[0].key, "a");
    EXPECT_EQ(a.events[0].revision, 8u);
    // A gone lease: renewals and puts onto it are refused (notFound) and change nothing.
    a = kv.apply(entry(9, leaseCommand(9, LeaseCommand::Kind::KeepAlive, 1)));
    EXPECT_TRUE(a.notFound);
    a = kv.apply(entry(10, leasedPut(10, "d", "x", 1)));
    EXPECT_TRUE(a.notFound);
    EXPECT_FALSE(kv.get("d").has_value());
    a = kv.apply(entry(11, leaseCommand(11, LeaseCommand::Kind::Revoke, 1)));
    EXPECT_TRUE(a.notFound);
    // A TTL outside the bounds is kept within them, alike on every replica.
    a = kv.apply(entry(12, leaseCommand(12, LeaseCommand::Kind::Grant, 0, 1)));
    EXPECT_EQ(a.leaseTtlMs, MinLeaseTtlMs);
}

TEST(KvStoreLeases, snapshot_keepsLeasesAndAttachments_frozenOrNot)
{
    KvStore kv;
    kv.apply(entry(1, leaseCommand(1, LeaseCommand::Kind::Grant, 0, 5000)));
    kv.apply(entry(2, leasedPut(2, "a", "1", 1)));
    auto frozen = kv.freeze();
    // Changes while frozen go to the overlay; the lease table follows them at once.
    kv.apply(entry(3, leasedPut(3, "b", "2", 1)));
    kv.apply(entry(4, put(4, "a", "plain")));
    EXPECT_EQ(kv.leases().at(1).keys, (std::set<std::string, std::less<>>{"b"}));
    std::string bytes;
    frozen->serialize([&](std::string_view p) {
        bytes.append(p);
        return true;
    });
    EXPECT_EQ(bytes.substr(0, 8), "DKVSNAP5");
    KvStore restored;
    std::string why;
    ASSERT_TRUE(restored.restore(bytes, why)) << why;
    EXPECT_EQ(restored.leases().at(1).keys, (std::set<std::string, std::less<>>{"a"}));
    EXPECT_EQ(restored.record("a")->lease, 1u);
    EXPECT_EQ(restored.snapshot(), bytes);
    frozen.reset();
    ASSERT_TRUE(kv.thaw());
    KvStore now;
    ASSERT_TRUE(now.restore(kv.snapshot(), why)) << why;
    EXPECT_EQ(now.leases().at(1).keys, (std::set<std::string, std::less<>>{"b"}));
    // A key attached to a lease the snapshot does not hold is refused.
    std::string broken = kv.snapshot();
    broken.resize(broken.size() - 32); // drop the lease table (count + one lease) ...
    raft::putU64(broken, 0);           // ... and say there are none
    EXPECT_FALSE(KvStore().restore(broken, why));
    EXPECT_NE(why.find("lease"), std::string::npos) << why;
}

TEST(KvStore, sequentialPuts_nameKeysByRevisionAndPlace)
{
    KvStore kv;
    kv.setKeepEvents(true);
    Command c{1, 7, 1, {}};
    c.operations.push_back(Operation{Operation::Kind::Put, "q/", "m1", 0, true});
    c.operations.push_back(Operation{Operation::Kind::Put, "q/", "m2", 0, true});
    const KvStore::Applied a = kv.apply(entry(1, c));
    EXPECT_EQ(sequentialKey("q/", 42, 0), "q/00000000000000000042-0000");
    EXPECT_EQ(kv.get("q/00000000000000000001-0000"), "m1");
    EXPECT_EQ(kv.get("q/00000000000000000001-0001"), "m2");
    ASSERT_EQ(a.events.size(), 2u);
    EXPECT_EQ(a.events[1].key, "q/00000000000000000001-0001");
    EXPECT_LT(sequentialKey("q/", 42, 9999), sequentialKey("q/", 43, 0));
    EXPECT_LT(sequentialKey("q/", 9, 0), sequentialKey("q/", 10, 0));
}

TEST(KvStore, events_reportEveryChangeInOrder_whenKept)
{
    KvStore kv;
    EXPECT_TRUE(kv.apply(entry(1, put(1, "a", "1"))).events.empty()); // off by default
    kv.setKeepEvents(true);
    Command c{1, 7, 2, {{Operation::Kind::Put, "a", "2"}, {Operation::Kind::Remove, "a", ""}, {Operation::Kind::Remove, "none", ""}, {Operation::Kind::Put, "b", "x"}}};
    const KvStore::Applied a = kv.apply(entry(2, c));
    ASSERT_EQ(a.events.size(), 3u); // a delete of a missing key changes nothing
    EXPECT_EQ(a.events[0].type, Event::Type::Put);
    EXPECT_EQ(a.events[0].version, 2u);
    EXPECT_EQ(a.events[1].type, Event::Type::Delete);
    EXPECT_EQ(a.events[2].key, "b");
    EXPECT_EQ(a.events[2].createRevision, 2u);
}
