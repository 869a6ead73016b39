// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "storage/filesystem.h"

#include <memory>
#include <string>

namespace dengine::storage {

// A test instrument for real processes: a FileSystem over another one that keeps, beside the
// directory `root`, a shadow directory holding exactly what a power cut would leave of it, so that a
// fault harness can cut a node's power (kill -9, then replace `root` by the shadow) where the page
// cache would otherwise keep every unsynced write. It is the in-process FaultyFileSystem's model
// (tests/storage/faultyfs.h) on a real disk:
//
//  - A file's data and size reach the shadow when File::syncData() (or a zero-filling preallocate,
//    which syncs) succeeds: the extents written through that handle since its last sync, and the
//    whole file at a handle's first sync (fdatasync also flushes what an earlier process left dirty).
//  - rename() and remove() reach the shadow when syncDirectory() of the directory they changed
//    succeeds; until then a power cut leaves the old names. A file's data synced before its rename
//    became durable goes under its old name, as on a disk.
//  - Created files appear in the shadow at their first sync (lenient: ext4 usually keeps them;
//    the harness cannot tell the engine from the file system there). Directories always do.
//
// Paths outside `root` and lock files pass through untouched. Only for tests: every synced byte is
// written twice. Switched on in FileSystem::posix() by DENGINE_TEST_DURABLE_SHADOW=ROOT:SHADOW
// (an engine started that way logs it).
//
// Thread-safe.
std::unique_ptr<FileSystem> makeDurableShadow(FileSystem &real, std::string root, std::string shadow);

} // namespace dengine::storage
