// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of the log: Unstable (the tail not yet durable) and RaftLog (storage + unstable,
// commit, apply, byte limits).

#include "raft/log.h"
#include "raft/storage.h"

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <stdexcept>

namespace dengine::raft {
namespace {

constexpr std::uint64_t NoLimit = std::numeric_limits<std::uint64_t>::max();

Entry entry(Index index, Term term, std::string data = "0123456789")
{
    return Entry{term, index, EntryType::Normal, Payload(data)};
}

// Entries first.. with the given terms.
std::vector<Entry> run(Index first, const std::vector<Term> &terms)
{
    std::vector<Entry> out;
    for (std::size_t i = 0; i < terms.size(); ++i)
        out.push_back(entry(first + i, terms[i]));
    return out;
}

std::vector<Index> indexes(const std::vector<Entry> &entries)
{
    std::vector<Index> out;
    for (const Entry &e : entries)
        out.push_back(e.index);
    return out;
}

// ---- Unstable ---------------------------------------------------------------------------------

TEST(Unstable, TruncateAndAppendExtendsWhenEntriesFollowDirectly)
{
    Unstable u(5);
    EXPECT_FALSE(u.lastIndex().has_value());
    u.truncateAndAppend(run(5, {1, 1}));
    u.truncateAndAppend(run(7, {2}));
    EXPECT_EQ(u.offset(), 5u);
    EXPECT_EQ(u.lastIndex(), 7u);
    EXPECT_EQ(u.term(6), 1u);
    EXPECT_EQ(u.term(7), 2u);
    EXPECT_FALSE(u.term(4).has_value());
    EXPECT_FALSE(u.term(8).has_value());
}

TEST(Unstable, TruncateAndAppendReplacesAConflictingSuffix)
{
    Unstable u(5);
    u.truncateAndAppend(run(5, {1, 1, 1}));
    u.truncateAndAppend(run(6, {2}));
    EXPECT_EQ(u.lastIndex(), 6u);
    EXPECT_EQ(u.term(5), 1u);
    EXPECT_EQ(u.term(6), 2u);
    EXPECT_FALSE(u.term(7).has_value()) << "entries after the conflict are gone";
}

TEST(Unstable, TruncateAndAppendBeforeTheOffsetReplacesTheWholeTail)
{
    Unstable u(5);
    u.truncateAndAppend(run(5, {1, 1}));
    u.truncateAndAppend(run(3, {2, 2}));
    EXPECT_EQ(u.offset(), 3u);
    EXPECT_EQ(u.lastIndex(), 4u);
    EXPECT_EQ(u.term(3), 2u);
    EXPECT_FALSE(u.term(5).has_value());
}

TEST(Unstable, EntriesAreHandedOutOnce)
{
    Unstable u(1);
    u.truncateAndAppend(run(1, {1, 1}));
    EXPECT_TRUE(u.hasNotInProgress());
    EXPECT_EQ(indexes(u.notInProgress()), (std::vector<Index>{1, 2}));
    u.acceptInProgress(1);
    EXPECT_FALSE(u.hasNotInProgress());
    EXPECT_TRUE(u.notInProgress().empty());
    u.appendOne(entry(3, 1));
    EXPECT_EQ(indexes(u.notInProgress()), (std::vector<Index>{3}));
}

// A conflicting append that cuts into entries already handed out hands out the replacements again.
TEST(Unstable, ConflictingAppendHandsOutTheReplacementEntries)
{
    Unstable u(1);
    u.truncateAndAppend(run(1, {1, 1, 1}));
    u.acceptInProgress(1);
    u.truncateAndAppend(run(2, {2}));
    ASSERT_TRUE(u.hasNotInProgress());
    const std::vector<Entry> again = u.notInProgress();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].index, 2u);
    EXPECT_EQ(again[0].term, 2u);
}

TEST(Unstable, StableToRemovesWhatTheAcknowledgedWritesWrote)
{
    Unstable u(1);
    u.truncateAndAppend(run(1, {1, 1}));
    u.acceptInProgress(1);
    u.appendOne(entry(3, 1));
    u.acceptInProgress(2);
    u.stableTo(1);
    EXPECT_EQ(u.offset(), 3u);
    EXPECT_FALSE(u.term(2).has_value());
    EXPECT_EQ(u.lastIndex(), 3u);
    EXPECT_FALSE(u.hasNotInProgress());
    u.stableTo(2);
    EXPECT_TRUE(u.empty());
    EXPECT_EQ(u.offset(), 4u);
}

// Acknowledgements are cumulative: a later write durable means the earlier ones are, so one may
// come late, twice, or not at all.
TEST(Unstable, StableToIsCumulativeAndIgnoresLateAcknowledgements)
{
    Unstable u(1);
    u.truncateAndAppend(run(1, {1}));
    u.acceptInProgress(1);
    u.appendOne(entry(2, 1));
    u.acceptInProgress(2);
    u.appendOne(entry(3, 1));
    u.acceptInProgress(3);
    u.stableTo(2);
    EXPECT_EQ(u.offset(), 3u) << "writes 1 and 2";
    u.stableTo(1);
    u.stableTo(2);
    EXPECT_EQ(u.offset(), 3u) << "late and repeated acknowledgements change nothing";
    u.stableTo(3);
    EXPECT_EQ(u.offset(), 4u);
}

// An acknowledged write makes durable only what it left standing: a later write that cut into it
// replaced the rest, and that stays unstable until its own acknowledgement.
TEST(Unstable, StableToIgnoresWhatALaterWriteReplaced)
{
    Unstable u(1);
    u.truncateAndAppend(run(1, {1, 1, 1})); // write A: 1..3 of term 1
    u.acceptInProgress(1);
    u.truncateAndAppend(run(2, {2})); // write B replaces 2.. with 2 of term 2
    u.acceptInProgress(2);

    u.stableTo(1); // A's acknowledgement: only entry 1 of what A wrote still stands
    EXPECT_EQ(u.offset(), 2u);
    EXPECT_EQ(u.term(2), 2u) << "the replacement stays unstable until its own write is acknowledged";

    u.stableTo(2); // B's acknowledgement
    EXPECT_TRUE(u.empty());
    EXPECT_EQ(u.offset(), 3u);
}

// The case (index, term) matching got wrong: A writes 2@1, 3@1; B cuts back to 1 and writes 2@2;
// C writes 2@1, 3@1 again. A's acknowledgement names (3, 1), which is in the log again, but on disk
// after A and B there is only [1, 2@2]: nothing past 1 may count as durable until C's.
TEST(Unstable, StableToIsNotFooledByTheSameEntryAppendedAgain)
{
    Unstable u(2); // entry 1 is durable already
    u.truncateAndAppend(run(2, {1, 1}));
    u.acceptInProgress(1);
    u.truncateAndAppend(run(2, {2}));
    u.acceptInProgress(2);
    u.truncateAndAppend(run(2, {1, 1}));
    u.acceptInProgress(3);

    u.stableTo(1);
    u.stableTo(2);
    EXPECT_EQ(u.offset(), 2u);
    EXPECT_EQ(u.term(3), 1u);
    u.stableTo(3);
    EXPECT_EQ(u.offset(), 4u);

    // The injected bug matches A's (3, 1) and takes 2 and 3 as durable at once.
    Unstable bug(2);
    bug.truncateAndAppend(run(2, {1, 1}));
    bug.acceptInProgress(1);
    bug.truncateAndAppend(run(2, {2}));
    bug.acceptInProgress(2);
    bug.truncateAndAppend(run(2, {1, 1}));
    bug.acceptInProgress(3);
    bug.stableTo(1, true);
    EXPECT_EQ(bug.offset(), 4u);
}

TEST(Unstable, WritesWithoutEntriesLeaveNoMark)
{
    Unstable u(5);
    u.truncateAndAppend(run(5, {1, 1}));
    u.acceptInProgress(1);
    u.acceptInProgress(2); // a write of the hard state only
    u.stableTo(2);
    EXPECT_EQ(u.offset(), 7u);
    u.stableTo(9);
    EXPECT_EQ(u.offset(), 7u);
}

TEST(Unstable, SliceStopsAtTheBudgetButReturnsAtLeastOne)
{
    Unstable u(1);
    u.truncateAndAppend(run(1, {1, 1, 1}));
    const std::uint64_t size = entrySize(entry(1, 1));

    std::vector<Entry> out;
    std::uint64_t budget = 2 * size;
    u.slice(1, 4, budget, out);
    EXPECT_EQ(indexes(out), (std::vector<Index>{1, 2}));

    out.clear();
    budget = 1;
    u.slice(2, 4, budget, out);
    EXPECT_EQ(indexes(out), (std::vector<Index>{2}));
}

// ---- RaftLog ----------------------------------------------------------------------------------

MemoryStorage storageWith(const std::vector<Term> &terms)
{
    MemoryStorage s({1, 2, 3});
    EXPECT_TRUE(s.append(run(1, terms)));
    return s;
}

TEST(RaftLog, TermsSpanStorageAndTheUnstableTail)
{
    MemoryStorage storage = storageWith({1, 1, 2});
    RaftLog log(storage, NoLimit);
    EXPECT_EQ(log.firstIndex(), 1u);
    EXPECT_EQ(log.lastIndex(), 3u);
    EXPECT_EQ(log.stableLastIndex(), 3u);
    log.appendOne(entry(4, 3));
    EXPECT_EQ(log.lastIndex(), 4u);
    EXPECT_EQ(log.lastTerm(), 3u);
    EXPECT_EQ(log.term(3), 2u);
    EXPECT_EQ(log.term(4), 3u);
    EXPECT_EQ(log.term(0), 0u) << "the dummy position before the first entry";
    EXPECT_FALSE(log.term(5).has_value());
    EXPECT_TRUE(log.matchTerm(4, 3));
    EXPECT_FALSE(log.matchTerm(4, 2));
}

TEST(RaftLog, UnstableOverwriteHidesConflictingStoredEntries)
{
    MemoryStorage storage = storageWith({1, 1, 1});
    RaftLog log(storage, NoLimit);
    log.truncateAndAppend(run(2, {2}));
    EXPECT_EQ(log.lastIndex(), 2u);
    EXPECT_EQ(log.term(2), 2u);
    EXPECT_FALSE(log.term(3).has_value()) << "storage still has entry 3, but the log no longer does";
    EXPECT_EQ(log.stableLastIndex(), 1u);
}

// §5.4.1: "If the logs have last entries with different terms, then the log with the later term is
// more up-to-date. If the logs end with the same term, then whichever log is longer is more
// up-to-date."
TEST(RaftLog, IsUpToDateComparesTheLastTermThenTheLength)
{
    MemoryStorage storage = storageWith({1, 2, 2});
    RaftLog log(storage, NoLimit);
    EXPECT_TRUE(log.isUpToDate(3, 2));
    EXPECT_TRUE(log.isUpToDate(4, 2));
    EXPECT_FALSE(log.isUpToDate(2, 2));
    EXPECT_FALSE(log.isUpToDate(100, 1));
    EXPECT_TRUE(log.isUpToDate(1, 3));
}

// Figure 2, AppendEntries receiver, rules 2 to 5.
TEST(RaftLog, MaybeAppendFollowsTheAppendEntriesReceiverRules)
{
    MemoryStorage storage = storageWith({1, 1, 2, 2});
    RaftLog log(storage, NoLimit);

    EXPECT_FALSE(log.maybeAppend(3, 1, 0, run(4, {3})).has_value()) << "rule 2: no entry 3 of term 1";
    EXPECT_FALSE(log.maybeAppend(7, 2, 0, {}).has_value()) << "rule 2: no entry 7 at all";
    EXPECT_EQ(log.lastIndex(), 4u);

    // Rule 4 without rule 3: entries already present change nothing, and what follows them stays.
    EXPECT_EQ(log.maybeAppend(1, 1, 0, run(2, {1, 2})), std::optional<Index>(3));
    EXPECT_EQ(log.lastIndex(), 4u);

    // Rule 3: the conflict at 3 removes 3 and 4; rule 5: commit = min(leaderCommit, last new).
    EXPECT_EQ(log.maybeAppend(2, 1, 10, run(3, {3})), std::optional<Index>(3));
    EXPECT_EQ(log.lastIndex(), 3u);
    EXPECT_EQ(log.term(3), 3u);
    EXPECT_EQ(log.committed(), 3u);
}

// A leader never sends an entry that conflicts with a committed one; seeing one is data loss.
TEST(RaftLog, MaybeAppendRefusesToOverwriteACommittedEntry)
{
    MemoryStorage storage = storageWith({1, 1, 1});
    RaftLog log(storage, NoLimit);
    log.commitTo(2);
    EXPECT_THROW(log.maybeAppend(1, 1, 0, run(2, {2})), std::logic_error);
    EXPECT_EQ(log.term(2), 1u);
}

TEST(RaftLog, FindConflictByTermReturnsTheLastIndexWithATermAtMost)
{
    //                                   index: 1  2  3  4  5  6  7  8
    MemoryStorage storage = storageWith({1, 1, 1, 4, 4, 5, 5, 5});
    RaftLog log(storage, NoLimit);
    EXPECT_EQ(log.findConflictByTerm(8, 5), (std::pair<Index, Term>{8, 5}));
    EXPECT_EQ(log.findConflictByTerm(8, 4), (std::pair<Index, Term>{5, 4}));
    EXPECT_EQ(log.findConflictByTerm(8, 3), (std::pair<Index, Term>{3, 1}));
    EXPECT_EQ(log.findConflictByTerm(2, 3), (std::pair<Index, Term>{2, 1}));
    EXPECT_EQ(log.findConflictByTerm(8, 0), (std::pair<Index, Term>{0, 0}));
    EXPECT_EQ(log.findConflictByTerm(10, 5), (std::pair<Index, Term>{10, 0})) << "beyond the log: no term known";
}

TEST(RaftLog, CommitNeverGoesBackAndNeverPassesTheLastIndex)
{
    MemoryStorage storage = storageWith({1, 1, 1});
    RaftLog log(storage, NoLimit);
    log.commitTo(2);
    log.commitTo(1);
    EXPECT_EQ(log.committed(), 2u);
    EXPECT_THROW(log.commitTo(4), std::logic_error);
    EXPECT_EQ(log.committed(), 2u);
}

// Storage holds 1..3, the unstable tail 4..6; every entry counts entrySize() = 34 bytes.
class RaftLogEntries : public ::testing::Test {
protected:
    void SetUp() override
    {
        ASSERT_TRUE(storage.append(run(1, {1, 1, 1})));
        log = std::make_unique<RaftLog>(storage, NoLimit);
        for (Index i = 4; i <= 6; ++i)
            log->appendOne(entry(i, 2));
        ASSERT_EQ(log->stableLastIndex(), 3u);
    }
    std::vector<Index> read(Index lo, Index hi, std::uint64_t maxBytes)
    {
        std::vector<Entry> out;
        EXPECT_TRUE(log->entries(lo, hi, maxBytes, out));
        return indexes(out);
    }
    const std::uint64_t size = entrySize(entry(1, 1));
    MemoryStorage storage{std::vector<NodeId>{1, 2, 3}};
    std::unique_ptr<RaftLog> log;
};

TEST_F(RaftLogEntries, ByteLimitsApplyAcrossTheStableUnstableBoundary)
{
    EXPECT_EQ(read(1, 7, NoLimit), (std::vector<Index>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(read(1, 7, 4 * size), (std::vector<Index>{1, 2, 3, 4})) << "three stable, one unstable";
    EXPECT_EQ(read(1, 7, 4 * size - 1), (std::vector<Index>{1, 2, 3}));
    EXPECT_EQ(read(1, 7, 3 * size), (std::vector<Index>{1, 2, 3})) << "the budget ends exactly at the boundary";
    EXPECT_EQ(read(1, 7, 2 * size + 5), (std::vector<Index>{1, 2})) << "the storage read stops early";
    EXPECT_EQ(read(3, 7, 2 * size), (std::vector<Index>{3, 4}));
    EXPECT_EQ(read(2, 5, NoLimit), (std::vector<Index>{2, 3, 4}));
    EXPECT_EQ(read(5, 100, NoLimit), (std::vector<Index>{5, 6})) << "hi is clamped to the log";
}

TEST_F(RaftLogEntries, AtLeastOneEntryIsReturnedHoweverSmallTheLimit)
{
    EXPECT_EQ(read(1, 7, 0), (std::vector<Index>{1}));
    EXPECT_EQ(read(4, 7, 1), (std::vector<Index>{4}));
    EXPECT_EQ(read(3, 7, 1), (std::vector<Index>{3}));
}

TEST_F(RaftLogEntries, EmptyRangesAndCompactedIndexes)
{
    EXPECT_TRUE(read(4, 4, NoLimit).empty());
    EXPECT_TRUE(read(7, 9, NoLimit).empty());
    std::vector<Entry> out;
    EXPECT_FALSE(log->entries(0, 3, NoLimit, out)) << "index 0 lies below the first index";
}

// Ready field 5: committed entries go to the state machine only once durable here, in batches of at
// most maxApplyBytes.
TEST(RaftLog, CommittedEntriesAreHandedOutOnlyOnceDurableAndInBoundedBatches)
{
    MemoryStorage storage = storageWith({1, 1});
    const std::uint64_t size = entrySize(entry(1, 1));
    RaftLog log(storage, 2 * size);
    log.appendOne(entry(3, 1));
    log.appendOne(entry(4, 1));
    log.acceptUnstable(1);
    log.commitTo(4);
    EXPECT_EQ(indexes(log.committedToApply()), (std::vector<Index>{1, 2})) << "3 and 4 are not durable";
    log.acceptApplying(2);
    EXPECT_FALSE(log.hasCommittedToApply());

    ASSERT_TRUE(storage.append(run(3, {1, 1})));
    log.stableTo(1);
    ASSERT_TRUE(log.hasCommittedToApply());
    EXPECT_EQ(indexes(log.committedToApply()), (std::vector<Index>{3, 4}));
    log.acceptApplying(4);
    EXPECT_EQ(log.applied(), 4u);
    EXPECT_FALSE(log.hasCommittedToApply());
}

// A storage that loses entries it held as durable broke its contract: handing out fewer committed
// entries (or none, and a Ready built on an empty list) would skip them silently. The core says so.
TEST(RaftLog, CommittedEntriesTheStorageLostAreAnErrorNotAGap)
{
    MemoryStorage storage = storageWith({1, 1, 1});
    RaftLog log(storage, UINT64_MAX);
    log.commitTo(3);
    ASSERT_TRUE(storage.append(run(2, {2}))); // the disk now ends at 2, with another entry
    EXPECT_THROW(log.committedToApply(), std::runtime_error);
}

} // namespace
} // namespace dengine::raft
