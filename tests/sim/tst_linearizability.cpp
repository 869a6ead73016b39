// SPDX-License-Identifier: Apache-2.0
#include "linearizability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace dengine::sim {
namespace {

constexpr std::uint64_t U = Operation::Unknown;

Operation put(int client, const std::string &key, const std::string &value, std::uint64_t call, std::uint64_t ret) {
    Operation op;
    op.kind = Operation::Kind::Put;
    op.client = client;
    op.key = key;
    op.value = value;
    op.call = call;
    op.ret = ret;
    return op;
}

// A Get that observed `value`, or "not found" when it is nullopt.
Operation get(int client, const std::string &key, std::optional<std::string> value, std::uint64_t call,
              std::uint64_t ret) {
    Operation op;
    op.kind = Operation::Kind::Get;
    op.client = client;
    op.key = key;
    op.found = value.has_value();
    op.value = value.value_or("");
    op.call = call;
    op.ret = ret;
    return op;
}

const std::nullopt_t missing = std::nullopt;

Operation del(int client, const std::string &key, std::uint64_t call, std::uint64_t ret) {
    Operation op;
    op.kind = Operation::Kind::Delete;
    op.client = client;
    op.key = key;
    op.call = call;
    op.ret = ret;
    return op;
}

// A compare-and-set from `expected` (nullopt: "the key is absent") to `value`; `succeeded` is the
// outcome the client saw, meaningless when ret is U.
Operation cas(int client, const std::string &key, std::optional<std::string> expected, const std::string &value,
              bool succeeded, std::uint64_t call, std::uint64_t ret) {
    Operation op;
    op.kind = Operation::Kind::Cas;
    op.client = client;
    op.key = key;
    op.expectAbsent = !expected.has_value();
    op.expected = expected.value_or("");
    op.value = value;
    op.succeeded = succeeded;
    op.call = call;
    op.ret = ret;
    return op;
}

constexpr bool ok = true;
constexpr bool failed = false;

// ---------------------------------------------------------------------------------------------
// Hand-written histories

TEST(Linearizability, EmptyHistoryIsLinearizable) {
    const auto r = checkLinearizable({});
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.operations, 0u);
}

TEST(Linearizability, SequentialHistoryIsLinearizable) {
    const auto r = checkLinearizable({
        get(1, "x", missing, 0, 5),
        put(1, "x", "a", 10, 20),
        get(1, "x", "a", 30, 40),
        put(2, "x", "b", 50, 60),
        get(3, "x", "b", 70, 80),
        get(1, "x", "b", 90, 95),
    });
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_FALSE(r.exhausted);
    EXPECT_EQ(r.operations, 6u);
    EXPECT_TRUE(r.explanation.empty());
}

TEST(Linearizability, StaleReadAfterCompletedWriteIsNotLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        put(2, "x", "b", 20, 30),
        get(3, "x", "a", 40, 50),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.exhausted);
    // The explanation names the key, the order that worked, and the read that could not be placed.
    EXPECT_NE(r.explanation.find("key \"x\""), std::string::npos) << r.explanation;
    EXPECT_NE(r.explanation.find("longest linearizable prefix found orders 2"), std::string::npos) << r.explanation;
    EXPECT_NE(r.explanation.find("client 2 Put(\"x\", \"b\") [call 20, ret 30]"), std::string::npos)
        << r.explanation;
    EXPECT_NE(r.explanation.find("client 3 Get(\"x\") -> \"a\" [call 40, ret 50] (op #2)"), std::string::npos)
        << r.explanation;
    EXPECT_NE(r.explanation.find("reads \"a\" but the register holds \"b\""), std::string::npos) << r.explanation;
}

TEST(Linearizability, ConcurrentWritesMayBeSeenInEitherOrder) {
    // Two overlapping writes; reads that overlap them may see them take effect in either order.
    const auto aThenB = checkLinearizable({
        put(1, "x", "a", 0, 100),
        put(2, "x", "b", 10, 90),
        get(3, "x", "a", 20, 30),
        get(3, "x", "b", 40, 50),
        get(4, "x", "b", 110, 120),
    });
    EXPECT_TRUE(aThenB.ok) << aThenB.explanation;
    const auto bThenA = checkLinearizable({
        put(1, "x", "a", 0, 100),
        put(2, "x", "b", 10, 90),
        get(3, "x", "b", 20, 30),
        get(3, "x", "a", 40, 50),
        get(4, "x", "a", 110, 120),
    });
    EXPECT_TRUE(bThenA.ok) << bThenA.explanation;
    // But once both have completed, the winner is fixed: reads cannot flip between them.
    const auto flipAfterward = checkLinearizable({
        put(1, "x", "a", 0, 100),
        put(2, "x", "b", 10, 90),
        get(3, "x", "b", 110, 120),
        get(3, "x", "a", 130, 140),
    });
    EXPECT_FALSE(flipAfterward.ok);
}

TEST(Linearizability, ReadOfValueBeforeItsPutWasCalledIsNotLinearizable) {
    const auto r = checkLinearizable({
        get(1, "x", "a", 0, 10),
        put(2, "x", "a", 20, 30),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.explanation.find("No order can even start"), std::string::npos) << r.explanation;
    // The same read overlapping the put is fine.
    EXPECT_TRUE(checkLinearizable({get(1, "x", "a", 0, 25), put(2, "x", "a", 20, 30)}).ok);
}

TEST(Linearizability, ReadOfValueNeverWrittenIsNotLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        get(2, "x", "zz", 20, 30),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.explanation.find("key \"x\""), std::string::npos) << r.explanation;
    EXPECT_NE(r.explanation.find("no Put or Cas on this key wrote"), std::string::npos) << r.explanation;
    EXPECT_NE(r.explanation.find("\"zz\""), std::string::npos) << r.explanation;
}

TEST(Linearizability, UnknownPutThatLaterAppearsInAReadIsLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        put(2, "x", "b", 20, U), // timed out
        get(3, "x", "a", 30, 40),
        get(3, "x", "b", 500, 510), // took effect long after the client gave up
        get(4, "x", "b", 600, 610),
    });
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_EQ(r.operations, 5u);
    // Once it has been seen, it cannot be undone: going back to the older value is a violation.
    const auto back = checkLinearizable({
        put(1, "x", "a", 0, 10),
        put(2, "x", "b", 20, U),
        get(3, "x", "b", 500, 510),
        get(3, "x", "a", 600, 610),
    });
    EXPECT_FALSE(back.ok);
}

TEST(Linearizability, UnknownPutThatNeverAppearsIsLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        put(2, "x", "b", 20, U),
        get(3, "x", "a", 30, 40),
        get(3, "x", "a", 500, 510),
        put(1, "x", "c", 600, 610),
        get(4, "x", "c", 700, 710),
    });
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_EQ(r.operations, 6u);
    // Still, an unknown put cannot be seen before it was called.
    const auto early = checkLinearizable({
        get(3, "x", "b", 0, 10),
        put(2, "x", "b", 20, U),
    });
    EXPECT_FALSE(early.ok);
}

TEST(Linearizability, UnknownPutLeftOutIsMentionedInTheExplanation) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        put(2, "x", "b", 20, U),
        put(2, "x", "c", 30, 40),
        get(3, "x", "a", 50, 60),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.explanation.find("1 write(s) with an unknown outcome"), std::string::npos) << r.explanation;
}

TEST(Linearizability, NewOldInversionIsNotLinearizable) {
    // A write is in flight across two sequential reads; the first sees the new value, the second
    // the old one. Each read alone is fine, together they are not.
    const auto r = checkLinearizable({
        put(1, "x", "old", 0, 10),
        put(2, "x", "new", 20, 200),
        get(3, "x", "new", 30, 40),
        get(4, "x", "old", 50, 60),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.explanation.find("reads \"old\" but the register holds \"new\""), std::string::npos)
        << r.explanation;
    // Reads in the other order are fine: old, then new.
    const auto oldThenNew = checkLinearizable({
        put(1, "x", "old", 0, 10),
        put(2, "x", "new", 20, 200),
        get(3, "x", "old", 30, 40),
        get(4, "x", "new", 50, 60),
    });
    EXPECT_TRUE(oldThenNew.ok) << oldThenNew.explanation;
}

TEST(Linearizability, KeysAreIndependent) {
    // Interleaved keys: as one register this would be a stale read of "1"; per key it is fine.
    const auto r = checkLinearizable({
        put(1, "x", "1", 0, 10),
        put(2, "y", "2", 20, 30),
        get(3, "x", "1", 40, 50),
        get(3, "y", "2", 60, 70),
        get(4, "z", missing, 80, 90),
    });
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_EQ(r.operations, 5u);

    // A value written to one key does not exist on another.
    const auto crossed = checkLinearizable({
        put(1, "x", "1", 0, 10),
        get(2, "y", "1", 20, 30),
    });
    EXPECT_FALSE(crossed.ok);
    EXPECT_NE(crossed.explanation.find("key \"y\""), std::string::npos) << crossed.explanation;

    // A violation on one key is reported for that key only.
    const auto oneBad = checkLinearizable({
        put(1, "good", "a", 0, 10),
        get(2, "good", "a", 20, 30),
        put(1, "bad", "a", 0, 10),
        put(1, "bad", "b", 20, 30),
        get(2, "bad", "a", 40, 50),
    });
    EXPECT_FALSE(oneBad.ok);
    EXPECT_NE(oneBad.explanation.find("key \"bad\""), std::string::npos) << oneBad.explanation;
    EXPECT_EQ(oneBad.explanation.find("key \"good\""), std::string::npos) << oneBad.explanation;
}

TEST(Linearizability, NotFoundBeforeAnyPutIsLinearizable) {
    const auto r = checkLinearizable({
        get(1, "x", missing, 0, 10),
        get(2, "x", missing, 5, 30), // overlaps the put: may come before it
        put(3, "x", "a", 20, 40),
        get(1, "x", "a", 50, 60),
    });
    EXPECT_TRUE(r.ok) << r.explanation;
}

TEST(Linearizability, NotFoundAfterACompletedPutIsNotLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        get(2, "x", missing, 20, 30),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.explanation.find("reads not found but the register holds \"a\""), std::string::npos)
        << r.explanation;
}

TEST(Linearizability, GetWithUnknownOutcomeIsIgnored) {
    Operation lost = get(2, "x", "never-written", 20, U);
    const auto r = checkLinearizable({put(1, "x", "a", 0, 10), lost, get(3, "x", "a", 30, 40)});
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_EQ(r.operations, 2u);
}

TEST(Linearizability, EqualTimesAreConcurrent) {
    // Closed intervals: a read called at the very tick a put returns may still precede it.
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), get(2, "x", missing, 10, 20)}).ok);
    EXPECT_FALSE(checkLinearizable({put(1, "x", "a", 0, 10), get(2, "x", missing, 11, 20)}).ok);
}

TEST(Linearizability, MalformedOperationIsReported) {
    const auto r = checkLinearizable({put(1, "x", "a", 10, 5)});
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.explanation.find("returns before its call"), std::string::npos) << r.explanation;
}

TEST(Linearizability, StepBudgetExhaustedGivesNoVerdict) {
    std::vector<Operation> h;
    for (int c = 0; c < 8; ++c)
        h.push_back(put(c, "x", "v" + std::to_string(c), 0, 100));
    h.push_back(get(9, "x", "nope-but-written", 200, 210));
    h.push_back(put(9, "x", "nope-but-written", 300, 310));
    const auto r = checkLinearizable(h, 5);
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.exhausted);
    EXPECT_NE(r.explanation.find("no verdict"), std::string::npos) << r.explanation;
    // With the default budget the same history gets a verdict.
    const auto full = checkLinearizable(h);
    EXPECT_FALSE(full.ok);
    EXPECT_FALSE(full.exhausted);
}

TEST(Linearizability, ViolationOutranksNoVerdict) {
    // Key "a" fails outright; key "b" (checked after it) runs out of budget. A failure is a verdict.
    std::vector<Operation> h = {put(1, "a", "1", 0, 10), get(2, "a", missing, 20, 30)};
    for (int c = 0; c < 8; ++c)
        h.push_back(put(c, "b", "v" + std::to_string(c), 0, 100));
    h.push_back(get(9, "b", "v0", 200, 210));
    const auto r = checkLinearizable(h, 8);
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.exhausted);
    EXPECT_NE(r.explanation.find("key \"a\": not linearizable"), std::string::npos) << r.explanation;
    EXPECT_NE(r.explanation.find("key \"b\": no verdict"), std::string::npos) << r.explanation;
}

// ---------------------------------------------------------------------------------------------
// Delete and compare-and-set

TEST(Linearizability, DescribeOperationNamesDeleteAndCas) {
    EXPECT_EQ(describeOperation(del(3, "x", 90, 95)), "client 3 Delete(\"x\") [call 90, ret 95]");
    EXPECT_EQ(describeOperation(del(3, "x", 90, U)), "client 3 Delete(\"x\") [call 90, ret ?]");
    EXPECT_EQ(describeOperation(cas(4, "x", "a", "b", failed, 96, 99)),
              "client 4 Cas(\"x\", \"a\" -> \"b\") -> failed [call 96, ret 99]");
    EXPECT_EQ(describeOperation(cas(4, "x", missing, "b", ok, 96, 99)),
              "client 4 Cas(\"x\", absent -> \"b\") -> ok [call 96, ret 99]");
    EXPECT_EQ(describeOperation(cas(4, "x", "a", "b", ok, 96, U)),
              "client 4 Cas(\"x\", \"a\" -> \"b\") -> ? [call 96, ret ?]");
}

TEST(Linearizability, SequentialHistoryWithDeleteAndCasIsLinearizable) {
    const auto r = checkLinearizable({
        cas(1, "x", missing, "a", ok, 0, 5),     // creates the key
        cas(2, "x", missing, "z", failed, 10, 15), // it exists now
        cas(1, "x", "a", "b", ok, 20, 25),
        cas(2, "x", "a", "c", failed, 30, 35),   // "a" is gone
        get(3, "x", "b", 40, 45),
        del(1, "x", 50, 55),
        get(3, "x", missing, 60, 65),
        cas(2, "x", "b", "d", failed, 70, 75),   // nothing to compare with
        cas(2, "x", missing, "e", ok, 80, 85),
        get(3, "x", "e", 90, 95),
        del(1, "x", 100, 105),
        del(1, "x", 110, 115),                   // deleting an absent key is fine
        get(3, "x", missing, 120, 125),
    });
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_EQ(r.operations, 13u);
}

TEST(Linearizability, GetNotFoundAfterACompletedDeleteIsLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        del(2, "x", 20, 30),
        get(3, "x", missing, 40, 50),
        get(4, "x", "a", 15, 25), // overlaps the delete: may precede it
    });
    EXPECT_TRUE(r.ok) << r.explanation;
}

TEST(Linearizability, StaleReadAfterACompletedDeleteIsNotLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        del(2, "x", 20, 30),
        get(3, "x", "a", 40, 50),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.exhausted);
    EXPECT_NE(r.explanation.find("reads \"a\" but the key is absent"), std::string::npos) << r.explanation;
    // Found, then not found, then found again with nothing rewriting it: also a violation.
    EXPECT_FALSE(checkLinearizable({
                                       put(1, "x", "a", 0, 10),
                                       del(2, "x", 20, 100),
                                       get(3, "x", missing, 30, 40),
                                       get(3, "x", "a", 50, 60),
                                   })
                     .ok);
}

TEST(Linearizability, UnknownDeleteMayOrMayNotHaveTakenEffect) {
    // Never seen: the value stays.
    const auto kept = checkLinearizable({
        put(1, "x", "a", 0, 10),
        del(2, "x", 20, U),
        get(3, "x", "a", 500, 510),
    });
    EXPECT_TRUE(kept.ok) << kept.explanation;
    // Seen absent: it took effect...
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), del(2, "x", 20, U), get(3, "x", missing, 500, 510)}).ok);
    // ...and then cannot be undone.
    const auto undone = checkLinearizable({
        put(1, "x", "a", 0, 10),
        del(2, "x", 20, U),
        get(3, "x", missing, 500, 510),
        get(3, "x", "a", 600, 610),
    });
    EXPECT_FALSE(undone.ok);
    // And it cannot be seen before its call.
    EXPECT_FALSE(checkLinearizable({put(1, "x", "a", 0, 10), get(3, "x", missing, 20, 30), del(2, "x", 40, U)}).ok);
}

TEST(Linearizability, TwoConcurrentCasFromTheSameValueCannotBothSucceed) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        cas(2, "x", "a", "b", ok, 20, 40),
        cas(3, "x", "a", "c", ok, 25, 45),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.exhausted);
    EXPECT_NE(r.explanation.find("needs the register to hold \"a\" but the register holds"), std::string::npos)
        << r.explanation;
    // One wins, the other fails: fine, whichever it is.
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "a", "b", ok, 20, 40),
                                   cas(3, "x", "a", "c", failed, 25, 45), get(4, "x", "b", 50, 60)})
                    .ok);
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "a", "b", failed, 20, 40),
                                   cas(3, "x", "a", "c", ok, 25, 45), get(4, "x", "c", 50, 60)})
                    .ok);
    // Chained they may both succeed: a -> b, then b -> c.
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "b", "c", ok, 20, 40),
                                   cas(3, "x", "a", "b", ok, 25, 45), get(4, "x", "c", 50, 60)})
                    .ok);
    // The same with "create if absent": two creators cannot both win.
    EXPECT_FALSE(checkLinearizable({cas(2, "x", missing, "b", ok, 20, 40), cas(3, "x", missing, "c", ok, 25, 45)}).ok);
    EXPECT_TRUE(checkLinearizable({cas(2, "x", missing, "b", ok, 20, 40), cas(3, "x", missing, "c", failed, 25, 45)}).ok);
}

TEST(Linearizability, FailedCasWhileTheValueMatchedIsNotLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        cas(2, "x", "a", "b", failed, 20, 30),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.exhausted);
    EXPECT_NE(r.explanation.find("failed, but the register holds \"a\", which it expected"), std::string::npos)
        << r.explanation;
    // Likewise "create if absent" failing on a key that is absent.
    EXPECT_FALSE(checkLinearizable({cas(2, "x", missing, "b", failed, 20, 30)}).ok);
    EXPECT_FALSE(checkLinearizable({put(1, "x", "a", 0, 10), del(1, "x", 11, 12), cas(2, "x", missing, "b", failed, 20, 30)}).ok);
    // A concurrent write explains the failure: the value no longer matched.
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "a", "b", failed, 20, 30), put(3, "x", "c", 15, 25)}).ok);
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "a", "b", failed, 20, 30), del(3, "x", 15, 25)}).ok);
    // So does a write whose outcome is unknown, even though no read ever shows its value.
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), put(3, "x", "c", 15, U), cas(2, "x", "a", "b", failed, 20, 30)}).ok);
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), del(3, "x", 15, U), cas(2, "x", "a", "b", failed, 20, 30)}).ok);
    EXPECT_TRUE(checkLinearizable({cas(3, "x", missing, "c", ok, 15, U), cas(2, "x", missing, "b", failed, 20, 30)}).ok);
    // But not one called after the failed Cas returned.
    EXPECT_FALSE(checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "a", "b", failed, 20, 30), put(3, "x", "c", 31, U)}).ok);
}

TEST(Linearizability, UnknownCasThatMustHaveAppliedIsLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        cas(2, "x", "a", "b", failed, 20, U), // timed out: `succeeded` means nothing
        get(3, "x", "a", 30, 40),
        get(3, "x", "b", 500, 510), // it took effect late
    });
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_EQ(r.operations, 4u);
    // It need not have applied at all.
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "a", "b", ok, 20, U), get(3, "x", "a", 500, 510)}).ok);
    // It only applies where it held: after a completed overwrite it no longer can.
    EXPECT_FALSE(checkLinearizable({
                                       put(1, "x", "a", 0, 10),
                                       cas(2, "x", "a", "b", ok, 20, U),
                                       put(3, "x", "c", 30, 40),
                                       get(3, "x", "b", 500, 510),
                                   })
                     .ok);
    // ...unless the value it expects comes back.
    EXPECT_TRUE(checkLinearizable({
                                      put(1, "x", "a", 0, 10),
                                      cas(2, "x", "a", "b", ok, 20, U),
                                      put(3, "x", "c", 30, 40),
                                      put(3, "x", "a", 50, 60),
                                      get(3, "x", "b", 500, 510),
                                  })
                    .ok);
    // An unknown Cas that expected a value nothing wrote can never have applied.
    const auto never = checkLinearizable({cas(2, "x", "zz", "b", ok, 20, U), get(3, "x", "b", 500, 510)});
    EXPECT_FALSE(never.ok);
}

TEST(Linearizability, UnknownCasReadBeforeItsCallIsNotLinearizable) {
    const auto r = checkLinearizable({
        put(1, "x", "a", 0, 10),
        get(3, "x", "b", 20, 30),
        cas(2, "x", "a", "b", ok, 40, U),
    });
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.exhausted);
    EXPECT_NE(r.explanation.find("reads \"b\" but the register holds \"a\""), std::string::npos) << r.explanation;
    // Overlapping its call it is fine.
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), get(3, "x", "b", 20, 45), cas(2, "x", "a", "b", ok, 40, U)}).ok);
}

TEST(Linearizability, SucceededCasOnAValueNeverWrittenIsNotLinearizable) {
    const auto r = checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "zz", "b", ok, 20, 30)});
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.explanation.find("succeeded on a value that no Put or Cas on this key wrote"), std::string::npos)
        << r.explanation;
    // Failing on it is what it must do.
    EXPECT_TRUE(checkLinearizable({put(1, "x", "a", 0, 10), cas(2, "x", "zz", "b", failed, 20, 30)}).ok);
    // A value only a Cas wrote counts as written.
    EXPECT_TRUE(checkLinearizable({cas(1, "x", missing, "a", ok, 0, 10), cas(2, "x", "a", "b", ok, 20, 30),
                                   get(3, "x", "b", 40, 50)})
                    .ok);
}

// ---------------------------------------------------------------------------------------------
// Generated histories

struct GenOptions {
    int clients = 4;
    int opsPerClient = 10;
    int keys = 2;
    double putRate = 0.5;
    double unknownRate = 0.08; // share of operations whose client never hears back
    // Of the writes (putRate), the shares that are a Delete or a Cas instead of a Put.
    double deleteRate = 0.0;
    double casRate = 0.0;
};

// A linearizable history by construction: each operation gets a linearization point strictly inside
// its interval, the points are distinct, and reads return what a sequential run in point order gives.
// Clients are sequential; intervals of different clients overlap at random. A write with an unknown
// outcome takes effect at its point or never (a coin flip); a Get with an unknown outcome claims
// nonsense, which the checker must ignore. A Cas expects, at its point, the key's current state or
// (a third of the time) another value or absence, and succeeds exactly when that matches. Values
// written are unique.
std::vector<Operation> generateLinearizable(std::mt19937_64 &rng, const GenOptions &o) {
    auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };

    struct Planned {
        Operation op;
        std::uint64_t point;
        bool takesEffect;
    };
    std::vector<Planned> planned;
    int nextValue = 0;
    for (int c = 0; c < o.clients; ++c) {
        std::uint64_t cursor = static_cast<std::uint64_t>(uniform(0, 3));
        for (int j = 0; j < o.opsPerClient; ++j) {
            // Times are in units of 16 ticks; a point is at a unit plus 1 + client, so points are
            // distinct across clients and strictly inside [call, ret].
            const std::uint64_t a = cursor + static_cast<std::uint64_t>(uniform(0, 3));
            const std::uint64_t x = a + static_cast<std::uint64_t>(uniform(0, 6));
            const std::uint64_t b = x + 1 + static_cast<std::uint64_t>(uniform(0, 6));
            cursor = b;
            Planned p;
            p.op.client = c;
            p.op.key = "k" + std::to_string(uniform(0, o.keys - 1));
            p.op.kind = chance(o.putRate) ? Operation::Kind::Put : Operation::Kind::Get;
            if (p.op.kind == Operation::Kind::Put && o.deleteRate + o.casRate > 0) {
                const double pick = std::uniform_real_distribution<double>(0, 1)(rng);
                if (pick < o.deleteRate)
                    p.op.kind = Operation::Kind::Delete;
                else if (pick < o.deleteRate + o.casRate)
                    p.op.kind = Operation::Kind::Cas;
            }
            if (p.op.kind == Operation::Kind::Put || p.op.kind == Operation::Kind::Cas)
                p.op.value = "v" + std::to_string(nextValue++);
            p.op.call = 16 * a;
            p.op.ret = 16 * b;
            p.point = 16 * x + 1 + static_cast<std::uint64_t>(c);
            p.takesEffect = true;
            if (chance(o.unknownRate)) {
                p.op.ret = Operation::Unknown;
                if (p.op.kind != Operation::Kind::Get) {
                    p.takesEffect = chance(0.5);
                } else {
                    p.op.found = true;
                    p.op.value = "garbage";
                    p.takesEffect = false;
                }
            }
            planned.push_back(p);
        }
    }
    std::vector<std::size_t> byPoint(planned.size());
    for (std::size_t i = 0; i < byPoint.size(); ++i)
        byPoint[i] = i;
    std::sort(byPoint.begin(), byPoint.end(),
              [&](std::size_t l, std::size_t r) { return planned[l].point < planned[r].point; });
    std::map<std::string, std::string> store;
    std::vector<std::string> written; // every value written so far, for a Cas to expect wrongly
    for (std::size_t i : byPoint) {
        Planned &p = planned[i];
        if (p.op.kind == Operation::Kind::Cas) {
            // Chosen even when it never takes effect: an unknown Cas still expected something.
            const auto it = store.find(p.op.key);
            if (!chance(1.0 / 3)) {
                p.op.expectAbsent = it == store.end();
                p.op.expected = p.op.expectAbsent ? std::string() : it->second;
            } else if (written.empty() || chance(0.3)) {
                p.op.expectAbsent = true;
            } else {
                p.op.expected = written[std::uniform_int_distribution<std::size_t>(0, written.size() - 1)(rng)];
            }
            p.op.succeeded = p.op.expectAbsent ? it == store.end() : it != store.end() && it->second == p.op.expected;
        }
        if (!p.takesEffect)
            continue;
        if (p.op.kind == Operation::Kind::Put) {
            store[p.op.key] = p.op.value;
            written.push_back(p.op.value);
        } else if (p.op.kind == Operation::Kind::Delete) {
            store.erase(p.op.key);
        } else if (p.op.kind == Operation::Kind::Cas) {
            if (p.op.succeeded) {
                store[p.op.key] = p.op.value;
                written.push_back(p.op.value);
            }
        } else {
            const auto it = store.find(p.op.key);
            p.op.found = it != store.end();
            p.op.value = p.op.found ? it->second : std::string();
        }
    }
    // Hand the history over in call order, as a simulator would record it.
    std::vector<Operation> history;
    for (const Planned &p : planned)
        history.push_back(p.op);
    std::stable_sort(history.begin(), history.end(),
                     [](const Operation &l, const Operation &r) { return l.call < r.call; });
    return history;
}

bool completed(const Operation &op) { return op.ret != Operation::Unknown; }

// Makes one completed Get read a value that was overwritten before the Get was called: a Put P1
// wrote it, a Put P2 of another value began after P1 returned, and P2 returned before the Get was
// called. Values are unique, so no order can explain the read. False when the history has no such
// Get.
bool mutateToOverwrittenValue(std::vector<Operation> &h, std::mt19937_64 &rng) {
    struct Choice {
        std::size_t get;
        std::size_t put;
    };
    std::vector<Choice> choices;
    for (std::size_t g = 0; g < h.size(); ++g) {
        if (h[g].kind != Operation::Kind::Get || !completed(h[g]))
            continue;
        for (std::size_t p1 = 0; p1 < h.size(); ++p1) {
            if (h[p1].kind != Operation::Kind::Put || !completed(h[p1]) || h[p1].key != h[g].key)
                continue;
            const bool overwritten = std::any_of(h.begin(), h.end(), [&](const Operation &p2) {
                return p2.kind == Operation::Kind::Put && completed(p2) && p2.key == h[g].key &&
                       p2.value != h[p1].value && h[p1].ret < p2.call && p2.ret < h[g].call;
            });
            if (overwritten)
                choices.push_back({g, p1});
        }
    }
    if (choices.empty())
        return false;
    const Choice c = choices[std::uniform_int_distribution<std::size_t>(0, choices.size() - 1)(rng)];
    h[c.get].found = true;
    h[c.get].value = h[c.put].value;
    return true;
}

TEST(Linearizability, RandomizedGeneratedHistoriesAndMutations) {
    int mutated = 0;
    for (std::uint64_t seed = 1; seed <= 300; ++seed) {
        std::mt19937_64 rng(seed);
        GenOptions o;
        o.clients = std::uniform_int_distribution<int>(1, 8)(rng);
        o.opsPerClient = std::uniform_int_distribution<int>(1, 20)(rng);
        o.keys = std::uniform_int_distribution<int>(1, 3)(rng);
        o.putRate = std::uniform_real_distribution<double>(0.2, 0.8)(rng);
        std::vector<Operation> h = generateLinearizable(rng, o);

        const auto r = checkLinearizable(h);
        ASSERT_TRUE(r.ok) << "seed " << seed << ": generated history rejected\n" << r.explanation;
        ASSERT_FALSE(r.exhausted) << "seed " << seed;

        if (!mutateToOverwrittenValue(h, rng))
            continue;
        ++mutated;
        const auto m = checkLinearizable(h);
        ASSERT_FALSE(m.ok) << "seed " << seed << ": a read of an overwritten value was accepted";
        ASSERT_FALSE(m.exhausted) << "seed " << seed;
        ASSERT_NE(m.explanation.find("not linearizable"), std::string::npos) << "seed " << seed;
    }
    // The mutation half must not be vacuous.
    EXPECT_GE(mutated, 150);
}

// Flips the outcome of one completed Cas whose outcome was forced: every operation on its key that
// is not strictly after it (itself included) completed, and they are strictly sequential. The state
// it met is then the one a sequential run of them gives, so the flipped outcome has no explanation.
// False when the history has no such Cas.
bool mutateForcedCasOutcome(std::vector<Operation> &h, std::mt19937_64 &rng) {
    std::vector<std::size_t> choices;
    for (std::size_t c = 0; c < h.size(); ++c) {
        if (h[c].kind != Operation::Kind::Cas || !completed(h[c]))
            continue;
        std::vector<const Operation *> upTo;
        bool forced = true;
        for (const Operation &o : h) {
            if (o.key != h[c].key || (o.kind == Operation::Kind::Get && !completed(o)) || h[c].ret < o.call)
                continue;
            forced = forced && completed(o);
            upTo.push_back(&o);
        }
        std::sort(upTo.begin(), upTo.end(), [](const Operation *l, const Operation *r) { return l->call < r->call; });
        for (std::size_t i = 1; i < upTo.size() && forced; ++i)
            forced = upTo[i - 1]->ret < upTo[i]->call;
        if (forced)
            choices.push_back(c);
    }
    if (choices.empty())
        return false;
    Operation &c = h[choices[std::uniform_int_distribution<std::size_t>(0, choices.size() - 1)(rng)]];
    c.succeeded = !c.succeeded;
    return true;
}

TEST(Linearizability, RandomizedGeneratedHistoriesWithDeleteAndCas) {
    int mutated = 0;
    int flipped = 0;
    std::map<std::string, int> cases;
    for (std::uint64_t seed = 1; seed <= 300; ++seed) {
        std::mt19937_64 rng(seed + 1000);
        GenOptions o;
        o.clients = std::uniform_int_distribution<int>(1, 8)(rng);
        o.opsPerClient = std::uniform_int_distribution<int>(1, 20)(rng);
        o.keys = std::uniform_int_distribution<int>(1, 3)(rng);
        o.putRate = std::uniform_real_distribution<double>(0.3, 0.8)(rng);
        o.deleteRate = 0.15;
        o.casRate = 0.45;
        const std::vector<Operation> h = generateLinearizable(rng, o);
        for (const Operation &op : h)
            if (op.kind == Operation::Kind::Cas && completed(op))
                ++cases[op.succeeded ? "cas ok" : "cas failed"];

        const auto r = checkLinearizable(h);
        ASSERT_TRUE(r.ok) << "seed " << seed << ": generated history rejected\n" << r.explanation;
        ASSERT_FALSE(r.exhausted) << "seed " << seed;

        std::vector<Operation> stale = h;
        if (mutateToOverwrittenValue(stale, rng)) {
            ++mutated;
            const auto m = checkLinearizable(stale);
            ASSERT_FALSE(m.ok) << "seed " << seed << ": a read of an overwritten value was accepted";
            ASSERT_FALSE(m.exhausted) << "seed " << seed;
        }
        std::vector<Operation> flip = h;
        if (mutateForcedCasOutcome(flip, rng)) {
            ++flipped;
            const auto m = checkLinearizable(flip);
            ASSERT_FALSE(m.ok) << "seed " << seed << ": a forced Cas with its outcome flipped was accepted";
            ASSERT_FALSE(m.exhausted) << "seed " << seed;
        }
    }
    std::cout << "[ info     ] " << cases["cas ok"] << " Cas succeeded, " << cases["cas failed"] << " failed; "
              << mutated << " stale reads and " << flipped << " flipped Cas outcomes rejected\n";
    // The mutation halves must not be vacuous.
    EXPECT_GE(mutated, 100);
    EXPECT_GE(flipped, 40);
    EXPECT_GE(cases["cas ok"], 500);
    EXPECT_GE(cases["cas failed"], 300);
}

// The definition, checked literally: some subset of the unknown-outcome writes (Put, Delete, Cas), in
// some order together with every other operation, respects real time and register semantics. An
// unknown Cas that is included must hold where it is placed. Feasible up to ~8 ops.
bool bruteForceLinearizable(const std::vector<Operation> &history) {
    std::vector<Operation> ops;
    std::vector<std::size_t> pending;
    for (const Operation &op : history) {
        if (op.kind == Operation::Kind::Get && !completed(op))
            continue;
        if (!completed(op))
            pending.push_back(ops.size());
        ops.push_back(op);
    }
    for (std::uint32_t mask = 0; mask < (1u << pending.size()); ++mask) {
        std::vector<std::size_t> order;
        for (std::size_t i = 0; i < ops.size(); ++i) {
            const auto p = std::find(pending.begin(), pending.end(), i);
            if (p == pending.end() || (mask >> (p - pending.begin())) & 1u)
                order.push_back(i);
        }
        do {
            bool good = true;
            for (std::size_t i = 0; i < order.size() && good; ++i)
                for (std::size_t j = i + 1; j < order.size() && good; ++j)
                    good = !(ops[order[j]].ret < ops[order[i]].call); // closed intervals
            std::map<std::string, std::string> store;
            for (std::size_t i = 0; i < order.size() && good; ++i) {
                const Operation &op = ops[order[i]];
                const auto it = store.find(op.key);
                switch (op.kind) {
                case Operation::Kind::Put:
                    store[op.key] = op.value;
                    break;
                case Operation::Kind::Delete:
                    if (it != store.end())
                        store.erase(it);
                    break;
                case Operation::Kind::Get:
                    good = op.found ? (it != store.end() && it->second == op.value) : it == store.end();
                    break;
                case Operation::Kind::Cas: {
                    const bool holds =
                        op.expectAbsent ? it == store.end() : it != store.end() && it->second == op.expected;
                    const bool applied = !completed(op) || op.succeeded;
                    good = holds == applied;
                    if (good && applied)
                        store[op.key] = op.value;
                    break;
                }
                }
            }
            if (good)
                return true;
        } while (std::next_permutation(order.begin(), order.end()));
    }
    return false;
}

TEST(Linearizability, AgreesWithBruteForceOnSmallArbitraryHistories) {
    // Arbitrary (mostly not linearizable) histories with repeated values, two keys, equal times and
    // unknown outcomes: the search must agree with the definition both ways.
    int linearizable = 0;
    int notLinearizable = 0;
    for (std::uint64_t seed = 1; seed <= 3000; ++seed) {
        std::mt19937_64 rng(seed);
        auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
        std::vector<Operation> h;
        const int n = uniform(1, 7);
        for (int i = 0; i < n; ++i) {
            const std::string key = uniform(0, 3) == 0 ? "y" : "x";
            const auto call = static_cast<std::uint64_t>(uniform(0, 12));
            const std::uint64_t ret = uniform(0, 7) == 0 ? U : call + static_cast<std::uint64_t>(uniform(0, 6));
            const std::string value = std::string(1, static_cast<char>('a' + uniform(0, 2)));
            if (uniform(0, 1) == 0)
                h.push_back(put(i, key, value, call, ret));
            else if (uniform(0, 3) == 0)
                h.push_back(get(i, key, missing, call, ret));
            else
                h.push_back(get(i, key, value, call, ret));
        }
        const bool expected = bruteForceLinearizable(h);
        const auto r = checkLinearizable(h);
        ASSERT_FALSE(r.exhausted) << "seed " << seed;
        ASSERT_EQ(r.ok, expected) << "seed " << seed << "\n" << r.explanation;
        ++(expected ? linearizable : notLinearizable);
    }
    // Both verdicts must be well represented, or the comparison proves little.
    EXPECT_GE(linearizable, 500);
    EXPECT_GE(notLinearizable, 500);
}

TEST(Linearizability, AgreesWithBruteForceOnSmallHistoriesWithDeleteAndCas) {
    // As above with all four kinds: repeated values, Cas from a value or from absence, succeeded or
    // failed, unknown outcomes of every kind. Exercises the left-out unknown writes against failed Cas.
    int linearizable = 0;
    int notLinearizable = 0;
    std::map<Operation::Kind, int> kinds;
    for (std::uint64_t seed = 1; seed <= 6000; ++seed) {
        std::mt19937_64 rng(seed);
        auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
        auto letter = [&]() { return std::string(1, static_cast<char>('a' + uniform(0, 2))); };
        std::vector<Operation> h;
        const int n = uniform(1, 7);
        for (int i = 0; i < n; ++i) {
            const std::string key = uniform(0, 4) == 0 ? "y" : "x";
            const auto call = static_cast<std::uint64_t>(uniform(0, 12));
            const std::uint64_t ret = uniform(0, 5) == 0 ? U : call + static_cast<std::uint64_t>(uniform(0, 6));
            switch (uniform(0, 5)) {
            case 0:
                h.push_back(put(i, key, letter(), call, ret));
                break;
            case 1:
                h.push_back(get(i, key, uniform(0, 2) == 0 ? std::optional<std::string>() : letter(), call, ret));
                break;
            case 2:
                h.push_back(del(i, key, call, ret));
                break;
            default:
                h.push_back(cas(i, key, uniform(0, 3) == 0 ? std::optional<std::string>() : letter(), letter(),
                                uniform(0, 1) == 0, call, ret));
                break;
            }
            ++kinds[h.back().kind];
        }
        const bool expected = bruteForceLinearizable(h);
        const auto r = checkLinearizable(h);
        ASSERT_FALSE(r.exhausted) << "seed " << seed;
        ASSERT_EQ(r.ok, expected) << "seed " << seed << "\n" << r.explanation;
        ++(expected ? linearizable : notLinearizable);
    }
    EXPECT_GE(linearizable, 1000);
    EXPECT_GE(notLinearizable, 1000);
    std::cout << "[ info     ] " << linearizable << " linearizable, " << notLinearizable << " not; "
              << kinds[Operation::Kind::Cas] << " Cas, " << kinds[Operation::Kind::Delete] << " Delete\n";
}

TEST(Linearizability, FiveHundredOperationsEightClientsOneKey) {
    std::mt19937_64 rng(20240501);
    GenOptions o;
    o.clients = 8;
    o.opsPerClient = 500 / 8 + 1; // 504
    o.keys = 1;
    std::vector<Operation> h = generateLinearizable(rng, o);

    const auto start = std::chrono::steady_clock::now();
    const auto r = checkLinearizable(h);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_FALSE(r.exhausted);
    EXPECT_GE(r.operations, 450u);
    std::cout << "[ info     ] " << r.operations << " operations checked in "
              << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() << " us\n";

    // The same history with one stale read: the search has to exhaust every order it can build
    // before it can say no; memoization keeps that cheap too.
    ASSERT_TRUE(mutateToOverwrittenValue(h, rng));
    const auto bad = checkLinearizable(h);
    EXPECT_FALSE(bad.ok);
    EXPECT_FALSE(bad.exhausted) << bad.explanation;
}

TEST(Linearizability, FiveHundredOperationsEightClientsOneKeyWithDeleteAndCas) {
    // Failed Cas operations keep every unknown write in the search (any of them may explain a
    // failure): still well within the budget.
    std::mt19937_64 rng(20240502);
    GenOptions o;
    o.clients = 8;
    o.opsPerClient = 500 / 8 + 1;
    o.keys = 1;
    o.deleteRate = 0.15;
    o.casRate = 0.45;
    o.unknownRate = 0.1;
    std::vector<Operation> h = generateLinearizable(rng, o);

    const auto start = std::chrono::steady_clock::now();
    const auto r = checkLinearizable(h);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(r.ok) << r.explanation;
    EXPECT_FALSE(r.exhausted);
    std::cout << "[ info     ] " << r.operations << " operations checked in "
              << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() << " us\n";

    ASSERT_TRUE(mutateToOverwrittenValue(h, rng));
    const auto bad = checkLinearizable(h);
    EXPECT_FALSE(bad.ok);
    EXPECT_FALSE(bad.exhausted) << bad.explanation;
}

} // namespace
} // namespace dengine::sim
