// SPDX-License-Identifier: Apache-2.0
// EngineLimits (src/engine/limits.h): whatever a call may write fits in a frame the nodes accept.
// Before, the frame limit was max(64 MiB, 4 x (maxValueBytes + maxKeyBytes)), which a valid
// configuration could pass (many small operations: each costs framing beyond its key and value),
// and a follower that refused the frame never caught up. Here the worst cases are encoded for real.
#include "engine/limits.h"
#include "kv/kvstore.h"
#include "transport/codec.h"

#include <QtTest/QtTest>

using dengine::engine::EngineLimits;

namespace {

// The largest batch a call may make: maxBatchOperations operations whose keys and values use up
// the byte budget, with every length at the size that costs the most framing.
dengine::kv::Command worstBatch(const DEngineConfig &c)
{
    dengine::kv::Command cmd;
    cmd.origin = ~0ULL;
    cmd.session = ~0ULL;
    cmd.request = ~0ULL;
    cmd.lowestPending = ~0ULL;
    qint64 budget = EngineLimits::maxBatchBytes(c);
    for (int i = 0; i < c.maxBatchOperations; ++i) {
        dengine::kv::Operation op;
        const qint64 key = std::min<qint64>({c.maxKeyBytes, budget, 1 << 14});
        op.key.assign(static_cast<std::size_t>(std::max<qint64>(key, 1)), 'k');
        budget -= static_cast<qint64>(op.key.size());
        const qint64 value = i == 0 ? std::min<qint64>(c.maxValueBytes, budget) : std::min<qint64>(budget, 200);
        op.value.assign(static_cast<std::size_t>(std::max<qint64>(value, 0)), 'v');
        budget -= static_cast<qint64>(op.value.size());
        cmd.operations.push_back(std::move(op));
    }
    return cmd;
}

} // namespace

class TestLimits : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void worstBatch_fitsItsEntryBound_andAFrame_data()
    {
        QTest::addColumn<int>("maxValueBytes");
        QTest::addColumn<int>("maxKeyBytes");
        QTest::addColumn<int>("maxBatchOperations");
        QTest::newRow("defaults") << (1 << 20) << 4096 << 1024;
        QTest::newRow("many tiny operations") << (1 << 20) << 1 << 1000000;
        QTest::newRow("16 MiB values") << (16 << 20) << 1 << 1000;
        QTest::newRow("64 MiB values, many operations") << (64 << 20) << 4096 << 100000;
    }
    void worstBatch_fitsItsEntryBound_andAFrame()
    {
        QFETCH(int, maxValueBytes);
        QFETCH(int, maxKeyBytes);
        QFETCH(int, maxBatchOperations);
        DEngineConfig c;
        c.maxValueBytes = maxValueBytes;
        c.maxKeyBytes = maxKeyBytes;
        c.maxBatchOperations = maxBatchOperations;
        const dengine::raft::Payload payload = dengine::kv::encodeCommand(worstBatch(c));
        const qint64 encoded = static_cast<qint64>(payload.size());
        QVERIFY2(encoded <= EngineLimits::maxEntryBytes(c),
                 qPrintable(QStringLiteral("%1 encoded bytes over the bound %2").arg(encoded).arg(EngineLimits::maxEntryBytes(c))));
        // The Append that carries it, with as much more as one Append may carry, in one frame.
        dengine::raft::Message m;
        m.type = dengine::raft::MessageType::Append;
        m.from = 1;
        m.to = 2;
        m.term = ~0ULL >> 1;
        m.index = ~0ULL >> 1;
        m.logTerm = ~0ULL >> 1;
        m.commit = ~0ULL >> 1;
        m.entries.push_back(dengine::raft::Entry{~0ULL >> 1, m.index + 1, dengine::raft::EntryType::Normal, payload});
        m.entries.push_back(dengine::raft::Entry{~0ULL >> 1, m.index + 2, dengine::raft::EntryType::Normal,
                                                 dengine::raft::Payload(std::string(EngineLimits::MaxAppendBytes, 'x'))});
        std::string frame;
        dengine::transport::appendEnvelope(frame, {m});
        QVERIFY2(static_cast<qint64>(frame.size()) <= EngineLimits::maxFrameBytes(c) / 2,
                 qPrintable(QStringLiteral("a %1-byte frame, over half the limit %2").arg(frame.size()).arg(EngineLimits::maxFrameBytes(c))));
        const qint64 oldLimit = std::max<qint64>(64LL << 20, 4LL * (c.maxValueBytes + c.maxKeyBytes));
        if (static_cast<qint64>(frame.size()) > oldLimit)
            qInfo("the old frame limit (%lld bytes) refused this %zu-byte frame", static_cast<long long>(oldLimit), frame.size());
    }
};

QTEST_GUILESS_MAIN(TestLimits)
#include "tst_limits.moc"
