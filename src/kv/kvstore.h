// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "raft/types.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dengine::kv {

// One write operation of a command.
struct Operation {
    enum class Kind : std::uint8_t { Put, Remove };
    Kind kind = Kind::Put;
    std::string key;
    std::string value;
    std::uint64_t lease = 0;  // Put: the lease the key is attached to (0: none)
    bool sequential = false;  // Put: `key` is a prefix (sequentialKey() names the key written)
};

// The key a sequential put writes: the prefix, the entry's index in 20 digits, '-', and the put's
// place among the command's sequential puts (0, 1, ...) in 4 digits. Keys of later entries sort
// after earlier ones: a prefix of them is a queue in commit order.
std::string sequentialKey(std::string_view prefix, std::uint64_t index, std::uint32_t ordinal);
inline constexpr std::size_t SequentialSuffixBytes = 25;

// A lease command: see LeaseCommand in dengine.proto.
struct LeaseCommand {
    enum class Kind : std::uint8_t { Grant, KeepAlive, Revoke, Expire };
    Kind kind = Kind::Grant;
    std::uint64_t id = 0;
    std::uint64_t ttlMs = 0;
    std::uint64_t renewedAt = 0;
};
inline constexpr std::uint64_t MinLeaseTtlMs = 1000;
inline constexpr std::uint64_t MaxLeaseTtlMs = 30ULL * 24 * 3600 * 1000;

// A replicated lease: keys attached to it go when it is revoked or expires. Its id is the index
// of the entry that granted it. `renewedAt` is the index of its grant or last renewal: the leader
// times it from when it applied that entry (or from when it became leader, whichever is later).
struct Lease {
    std::uint64_t ttlMs = 0;
    raft::Index renewedAt = 0;
    std::set<std::string, std::less<>> keys;
};

// A change to a key, as a watch delivers it: every put and delete, in log order, with the key's
// history after it (a delete's are 0).
struct Event {
    enum class Type : std::uint8_t { Put, Delete };
    Type type = Type::Put;
    std::string key;
    std::string value;
    raft::Index revision = 0; // the entry's index
    raft::Index createRevision = 0;
    std::uint64_t version = 0;
    std::uint64_t lease = 0;
    std::size_t bytes() const { return key.size() + value.size() + 48; }
};

// A condition of a transaction on a key's value or history (KeyRecord). A missing key has version
// and revisions 0 and no value: a compare of its value never holds (whatever the op), so "absent"
// is version == 0.
struct Compare {
    enum class Target : std::uint8_t { Value, Version, CreateRevision, ModRevision };
    enum class Op : std::uint8_t { Equal, NotEqual, Less, Greater };
    Target target = Target::Value;
    Op op = Op::Equal;
    std::string key;
    std::string value;        // Value
    std::uint64_t number = 0; // Version, CreateRevision, ModRevision
    friend bool operator==(const Compare &, const Compare &) = default;
};

// A replicated command: operations applied atomically at one log index. (origin, session, request)
// identify the call that proposed it: the node that took the call answers it when the command is
// applied, and a command seen twice (a forward retried) applies once.
struct Command {
    raft::NodeId origin = 0;
    std::uint64_t session = 0; // one per engine start: request ids restart with it
    std::uint64_t request = 0; // increasing within a session
    std::vector<Operation> operations;
    // Instead of operations: a command for the application's state machine (applied by the
    // engine, deduplicated here like any other).
    std::optional<std::string> application;
    // The origin's lowest request id still in flight in this session (0: unknown). Every id below it
    // has finished at the origin: a copy of one that still reaches the log is a duplicate.
    std::uint64_t lowestPending = 0;
    // Instead of operations: where members listen, (id, "host:port"); an empty address forgets it.
    std::vector<std::pair<raft::NodeId, std::string>> members;
    // Instead of operations: where members serve clients (a standalone server's client port),
    // (id, "host:port"); an empty address forgets it. A node proposes only its own (a forwarded
    // command naming another node is dropped), and forgetting a member's peer address forgets
    // this one too.
    std::vector<std::pair<raft::NodeId, std::string>> clientAddresses;
    // A transaction: when every compare holds against the state before it, `operations` apply,
    // otherwise `failure` does (either may be empty).
    bool txn = false;
    std::vector<Compare> compares;
    std::vector<Operation> failure;
    // Instead of operations: key histories start here on every replica (KvStore::historyFrom()).
    bool resetHistory = false;
    // Instead of operations: a lease command.
    std::optional<LeaseCommand> lease;
};

inline constexpr std::size_t MaxMemberAddressBytes = 256;

// What the store holds for a key: its value, and its history in revisions (log indexes, the same
// on every replica): the index that created the key (since it last did not exist), the index that
// last changed it, and how many times it was written since it was created (1 after the first
// put). A command changing one key twice counts two versions at one revision.
struct KeyRecord {
    std::string value;
    raft::Index createRevision = 0;
    raft::Index modRevision = 0;
    std::uint64_t version = 0;
    std::uint64_t lease = 0; // the lease it is attached to (0: none)
    friend bool operator==(const KeyRecord &, const KeyRecord &) = default;
};

// The log payload of a command (Protocol Buffers, src/transport/dengine.proto).
raft::Payload encodeCommand(const Command &command);
bool decodeCommand(std::string_view bytes, Command &out, std::string &why);

// The replicated key-value state machine: an ordered map, changed only by applying committed log
// entries in order. Deterministic: every node applying the same entries holds the same map.
// Not thread-safe: the engine's worker thread owns it.
class KvStore {
public:
    enum class ApplyOutcome { Applied, Duplicate, NoOp, Malformed };
    struct Applied {
        ApplyOutcome outcome = ApplyOutcome::NoOp;
        Command command; // when Applied or Duplicate: whose call it was
        bool succeeded = false; // Applied transaction: its compares held (its operations ran)
        // Applied command that could not be carried out (nothing ran): why. A compare on a version
        // or revision before the histories are established (historyFrom() == 0), or a lease that
        // does not exist (notFound).
        std::string rejected;
        bool notFound = false;
        // A lease command: the lease's id and TTL; Expire: whether it expired (false: renewed since).
        std::uint64_t leaseId = 0;
        std::uint64_t leaseTtlMs = 0;
        bool expired = false;
        // The keys this entry changed, in order, when events are kept (setKeepEvents()).
        std::vector<Event> events;
    };
    // Whether apply() reports the changes it made (Applied::events): on for a node that serves
    // watches. Off by default (a copy of every value written).
    void setKeepEvents(bool on) { m_keepEvents = on; }

    // Applies the entry at `index` (must be appliedIndex() + 1). A malformed payload is skipped on
    // every node alike (and reported), so the replicas stay identical. An application command
    // changes nothing here: Applied tells the caller to hand it to the application, once.
    Applied apply(const raft::Entry &entry);

    std::optional<std::string> get(std::string_view key) const;
    // The key's value and revisions (nullopt: no such key).
    std::optional<KeyRecord> record(std::string_view key) const;
    // Whether a transaction's compare holds now.
    bool holds(const Compare &compare) const;
    // Where key histories start, the same on every replica: the index of the last history reset
    // (Command::resetHistory); 0 before the first. Until then a key's revisions and version are
    // this replica's own count (a store restored from an older snapshot guessed them), so a
    // transaction may not compare them. A record last changed before the reset reads as created
    // and changed at it, version 1.
    raft::Index historyFrom() const { return m_historyFrom; }

    // A page of a scan or range: the items, and the key to continue from when the page was cut
    // short by a limit (empty when the scan is complete).
    struct Page {
        std::vector<std::pair<std::string, std::string>> items;
        // Each item's record, in the same order (its value is left empty: it is in `items`).
        std::vector<KeyRecord> records;
        std::string nextKey;
    };
    // Keys with the prefix, in order, at most `limit` items (0: no limit) and about `maxBytes` of
    // keys and values (at least one item).
    Page scan(std::string_view prefix, std::size_t limit, std::size_t maxBytes = SIZE_MAX) const;
    // Keys in [begin, end) in order (an empty `end`: no upper bound), limited the same way.
    Page range(std::string_view begin, std::string_view end, std::size_t limit, std::size_t maxBytes = SIZE_MAX) const;

    // Snapshots. The store's whole state (the keys with their revisions and leases, the
    // deduplication sessions, the member addresses, the leases, the applied index) as bytes: the
    // same state gives the same bytes on every replica. Format (little-endian): "DKVSNAP5", u64
    // applied index, u64 history start (historyFrom()), u64 key count and per key (u32 length,
    // bytes, u32 length, value, u64 create revision, u64 mod revision, u64 version, u64 lease),
    // u64 session count and per session (u64 origin, u64 session, u64 floor, u64 first index, u64
    // id count, the ids ascending), u64 member count and per member (u64 id, u32 length, address),
    // the client addresses the same way as the members, then u64 lease count and per lease (u64
    // id, u64 TTL in ms, u64 renewed at). The file or stream around it carries the checksum.
    // restore() also reads "DKVSNAP4" (no leases), "DKVSNAP3" (no revisions either: every key gets
    // the snapshot's index as its create and mod revision, and version 1, and the histories are
    // not established until the next reset) and "DKVSNAP2" (no client addresses either).
    //
    // A Frozen is the state at one applied index, immutable, cheap to take (no copy of the keys):
    // it shares the store's map, and from then on the store writes its changes beside it (an
    // overlay) until thaw(). Serialize it on any thread while the store goes on applying here.
    class Frozen {
    public:
        raft::Index appliedIndex() const { return m_applied; }
        std::size_t size() const { return m_data->size(); }
        // Hands the snapshot bytes to `sink` in pieces of about `piece` bytes; stops early (false)
        // when the sink says so.
        bool serialize(const std::function<bool(std::string_view)> &sink, std::size_t piece = 1 << 20) const;

    private:
        friend class KvStore;
        std::shared_ptr<const std::map<std::string, KeyRecord, std::less<>>> m_data;
        std::string m_tail; // sessions and members, serialized at freeze time (small)
        raft::Index m_applied = 0;
        raft::Index m_historyFrom = 0;
    };
    // Any number of Frozen may exist at once; each holds the map it was taken from.
    std::shared_ptr<const Frozen> freeze();
    // Folds the changes made since freeze() back into the map, once no Frozen is held any more
    // (false, and nothing changes, while one still is). Call it after the snapshot is written.
    bool thaw();
    bool frozen() const { return m_frozen; }
    std::string snapshot();
    // Replaces the whole state with a snapshot's; false (and the store unchanged) when the bytes are
    // not one, with the reason in `why`.
    bool restore(std::string_view bytes, std::string &why);

    raft::Index appliedIndex() const { return m_applied; }
    std::size_t size() const { return m_size; }
    // The live leases, by id.
    const std::map<std::uint64_t, Lease> &leases() const { return m_leases; }
    // Where the members listen, as the log said (Command::members).
    const std::map<raft::NodeId, std::string> &memberAddresses() const { return m_members; }
    // Where the members serve clients, as the log said (Command::clientAddresses).
    const std::map<raft::NodeId, std::string> &clientAddresses() const { return m_clientAddresses; }
    // Deduplication state, for tests and status: sessions remembered, request ids remembered.
    std::size_t sessionCount() const { return m_sessions.size(); }
    std::size_t rememberedRequests() const;

    // Sessions kept per origin: a node's newest ones (one per start). A copy of a command from an
    // older session still reaching the log would need that many restarts of its origin in between.
    static constexpr std::size_t SessionsPerOrigin = 4;

private:
    using Map = std::map<std::string, KeyRecord, std::less<>>;
    using Overlay = std::map<std::string, std::optional<KeyRecord>, std::less<>>; // nullopt: deleted
    void put(const std::string &key, const std::string &value, raft::Index index, std::uint64_t lease, Applied *out);
    void remove(const std::string &key, raft::Index index, Applied *out);
    // Deletes a lease and every key attached to it.
    void dropLease(std::uint64_t id, raft::Index index, Applied *out);
    void applyLease(const LeaseCommand &lc, raft::Index index, Applied &result);
    std::string serializeTail() const;
    // Frozen: whether `key` holds a value, given the overlay's entry for it (or end()).
    bool overlaid(Overlay::const_iterator it, const std::string &key) const;

    // The keys. While frozen, m_data is shared with the Frozen snapshots and read-only; changes go
    // to m_overlay (nullopt: deleted) until thaw() folds them in.
    std::shared_ptr<Map> m_data = std::make_shared<Map>();
    Overlay m_overlay;
    bool m_frozen = false;
    std::size_t m_size = 0;
    std::map<raft::NodeId, std::string> m_members;
    std::map<raft::NodeId, std::string> m_clientAddresses;
    // Per (origin, session): which requests were applied. A node retries a forwarded command whose
    // fate it does not know (the leader changed) under the same id, so requests may arrive out of
    // order and twice; each id applies at most once. Ids below `floor` have finished at the origin
    // (its lowestPending said so) and count as applied; the set holds the applied ids above it,
    // so it stays as small as the origin's calls in flight.
    //
    // A hard cap guards against an origin that never reports progress (entries written before
    // lowestPending existed): past it the oldest ids fold into the floor. It is far above any
    // maxPendingRequests the engine allows, so no call still in flight is folded in.
    static constexpr std::size_t MaxRememberedRequests = 1 << 22;
    struct Session {
        std::uint64_t floor = 0;
        std::set<std::uint64_t> applied;
        raft::Index firstIndex = 0; // where it first appeared: the order sessions are pruned in
    };
    struct SessionKey {
        raft::NodeId origin;
        std::uint64_t session;
        friend bool operator==(const SessionKey &, const SessionKey &) = default;
    };
    struct SessionHash {
        std::size_t operator()(const SessionKey &k) const { return std::hash<std::uint64_t>()(k.origin * 0x9e3779b97f4a7c15ULL ^ k.session); }
    };
    std::unordered_map<SessionKey, Session, SessionHash> m_sessions;
    void pruneSessions(raft::NodeId origin);
    raft::Index m_applied = 0;
    raft::Index m_historyFrom = 0;
    std::map<std::uint64_t, Lease> m_leases;
    bool m_keepEvents = false;
    // The stored record of a key (its history not yet read through historyFrom()); null: none.
    const KeyRecord *find(std::string_view key) const;
};

} // namespace dengine::kv
