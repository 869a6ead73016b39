// SPDX-License-Identifier: Apache-2.0
//
// Unit tests of Payload: an immutable, shared byte buffer.

#include "raft/payload.h"
#include "raft/types.h"

#include <gtest/gtest.h>

#include <utility>

namespace dengine::raft {
namespace {

TEST(Payload, CopiesShareOneBuffer)
{
    const Payload a("hello");
    const Payload b = a;
    Payload c;
    c = a;
    EXPECT_EQ(b.data(), a.data()) << "a copy is a reference, not new bytes";
    EXPECT_EQ(c.data(), a.data());
    EXPECT_EQ(b.view(), "hello");
    EXPECT_EQ(b.size(), 5u);
}

TEST(Payload, CopyOutlivesTheOriginal)
{
    Payload copy;
    {
        const Payload original(std::string(1000, 'z'));
        copy = original;
    }
    EXPECT_EQ(copy.size(), 1000u);
    EXPECT_EQ(copy.view(), std::string(1000, 'z'));
}

TEST(Payload, EmptyPayloadHasNoBuffer)
{
    const Payload none;
    EXPECT_TRUE(none.empty());
    EXPECT_EQ(none.size(), 0u);
    EXPECT_EQ(none.data(), nullptr);
    EXPECT_EQ(none.view(), "");
    EXPECT_EQ(none.toString(), "");

    const Payload fromEmpty(std::string_view(""));
    EXPECT_TRUE(fromEmpty.empty());
    EXPECT_EQ(fromEmpty.data(), nullptr) << "the empty payload shares no block";
    EXPECT_EQ(fromEmpty, none);
}

TEST(Payload, MoveLeavesTheSourceEmpty)
{
    Payload a("bytes");
    const char *bytes = a.data();
    Payload b(std::move(a));
    EXPECT_EQ(b.data(), bytes);
    EXPECT_TRUE(a.empty()); // NOLINT(bugprone-use-after-move): the moved-from state is specified
    Payload c;
    c = std::move(b);
    EXPECT_EQ(c.data(), bytes);
    EXPECT_TRUE(b.empty()); // NOLINT(bugprone-use-after-move)
}

TEST(Payload, SelfAssignmentKeepsTheBytes)
{
    Payload a("self");
    const Payload &alias = a;
    a = alias;
    EXPECT_EQ(a.view(), "self");
    Payload &same = a;
    a = std::move(same);
    EXPECT_EQ(a.view(), "self");
}

TEST(Payload, EqualityComparesBytesNotBuffers)
{
    const Payload a("same");
    const Payload b("same");
    EXPECT_NE(a.data(), b.data());
    EXPECT_EQ(a, b);
    EXPECT_FALSE(a == Payload("diff"));
}

TEST(Payload, HoldsArbitraryBinaryBytes)
{
    const char raw[] = {'a', '\0', 'b', '\xff'};
    const Payload p(raw, sizeof raw);
    EXPECT_EQ(p.size(), 4u);
    EXPECT_EQ(p.view(), std::string_view(raw, sizeof raw));
}

// types.h: the bytes an entry counts as for limits include a fixed framing overhead.
TEST(Payload, EntrySizeCountsPayloadPlusOverhead)
{
    EXPECT_EQ(entrySize(Entry{1, 1, EntryType::Normal, Payload("12345")}), 5 + EntryOverheadBytes);
    EXPECT_EQ(entrySize(Entry{}), EntryOverheadBytes);
}

} // namespace
} // namespace dengine::raft
