// SPDX-License-Identifier: Apache-2.0
#include "kv/eventlog.h"

#include <gtest/gtest.h>

using namespace dengine;
using namespace dengine::kv;

namespace {

Event put(std::string key, raft::Index revision, std::string value = "v")
{
    return Event{Event::Type::Put, std::move(key), std::move(value), revision, revision, 1, 0};
}

std::vector<std::string> keys(const EventLog::Slice &s)
{
    std::vector<std::string> out;
    for (const Event &e : s.events)
        out.push_back(e.key);
    return out;
}

} // namespace

TEST(EventLog, read_fromARevision_inARange_wholeRevisions)
{
    EventLog log(100, 1 << 20);
    log.reset(10);
    log.append(11, {put("a", 11), put("b", 11)});
    log.append(12, {});
    log.append(13, {put("c", 13)});
    log.append(14, {put("b", 14)});
    EventLog::Slice s;
    ASSERT_TRUE(log.read(11, "a", "c", 1 << 20, s));
    EXPECT_EQ(keys(s), (std::vector<std::string>{"a", "b", "b"}));
    EXPECT_EQ(s.upTo, 14u);
    ASSERT_TRUE(log.read(13, "", "", 1 << 20, s));
    EXPECT_EQ(keys(s), (std::vector<std::string>{"c", "b"}));
    // From after the end: nothing yet, and up to where it starts.
    ASSERT_TRUE(log.read(20, "", "", 1 << 20, s));
    EXPECT_TRUE(s.events.empty());
    EXPECT_EQ(s.upTo, 19u);
    // A budget cuts after a whole revision, never inside one.
    ASSERT_TRUE(log.read(11, "", "", 1, s));
    EXPECT_EQ(keys(s), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(s.upTo, 12u);
    // At or before the start: not served (a gap would follow).
    EXPECT_FALSE(log.read(10, "", "", 1 << 20, s));
    EXPECT_THROW(log.append(14, {}), std::logic_error);
}

TEST(EventLog, bounded_byRevisionsAndBytes_compactedSaysHowFarBack)
{
    EventLog byRevisions(3, 1 << 20);
    byRevisions.reset(0);
    for (raft::Index r = 1; r <= 10; ++r)
        byRevisions.append(r, {put("k", r)});
    EXPECT_EQ(byRevisions.compacted(), 7u);
    EXPECT_EQ(byRevisions.size(), 3u);
    EventLog::Slice s;
    EXPECT_FALSE(byRevisions.read(7, "", "", 1 << 20, s));
    ASSERT_TRUE(byRevisions.read(8, "", "", 1 << 20, s));
    EXPECT_EQ(s.events.size(), 3u);

    EventLog byBytes(1000, 3 * put("k", 1).bytes());
    byBytes.reset(0);
    for (raft::Index r = 1; r <= 10; ++r)
        byBytes.append(r, {put("k", r)});
    EXPECT_EQ(byBytes.size(), 3u);
    EXPECT_EQ(byBytes.compacted(), 7u);
    EXPECT_LE(byBytes.bytes(), 3 * put("k", 1).bytes());
    // A revision larger than the whole budget is dropped whole, and says so.
    byBytes.append(11, {put("k", 11, std::string(1000, 'x'))});
    EXPECT_EQ(byBytes.compacted(), 11u);
    EXPECT_EQ(byBytes.size(), 0u);
    byBytes.reset(50);
    EXPECT_EQ(byBytes.compacted(), 50u);
    EXPECT_EQ(byBytes.last(), 50u);
}
