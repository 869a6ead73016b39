// SPDX-License-Identifier: Apache-2.0
// Fuzzer for key-value snapshots: the bytes a leader streams to a follower that fell behind (after
// the transport's own checks) and a node reads back from its snapshot file. Whatever they are, the
// store either refuses them with a reason and stays as it was, or takes them; what it took it can
// write again, and reading that back gives the same state, byte for byte.
#include "kv/kvstore.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    using dengine::kv::KvStore;
    const std::string_view in(reinterpret_cast<const char *>(data), size);
    KvStore store;
    const std::string empty = store.snapshot();
    std::string why;
    if (!store.restore(in, why)) {
        if (why.empty() || store.snapshot() != empty) {
            std::fprintf(stderr, "fuzz_kvsnapshot: a refusal without a reason, or one that changed the store\n");
            std::abort();
        }
        return 0;
    }
    const std::string again = store.snapshot();
    KvStore copy;
    if (!copy.restore(again, why) || copy.snapshot() != again || copy.appliedIndex() != store.appliedIndex()) {
        std::fprintf(stderr, "fuzz_kvsnapshot: a snapshot the store took does not read back: %s\n", why.c_str());
        std::abort();
    }
    return 0;
}
