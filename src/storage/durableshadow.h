// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "storage/filesystem.h"

#include <memory>
#include <string>

namespace dengine::storage {

// A test instrument for real processes: a FileSystem over another one that keeps, beside the
// directory `root`, a shadow holding exactly what a power cut would leave of it, so that a fault
// harness can cut a node's power (kill -9, then replace `root` by the shadow's tree) where the page
// cache would otherwise keep every unsynced write. It is the in-process FaultyFileSystem's model
// (tests/storage/faultyfs.h) on a real disk:
//
//  - SHADOW/inodes holds, per real inode, its durable data: what File::syncData() (or a zero-
//    filling preallocate, which syncs) made durable, whatever the file is called. A handle's first
//    sync copies the whole file (fdatasync also flushes what an earlier process left dirty), later
//    ones the extents written through it.
//  - SHADOW/tree is the durable namespace: the root's directories, and in them hard links to inode
//    files. syncDirectory(dir) makes the tree's entries of `dir` what the real directory holds at
//    that moment; until then renames, removals and creations leave the old names. So a name always
//    holds what its inode had synced, as on a disk.
//  - Lenient in one case: a created file gets its name at its first data sync when the name is
//    free (ext4 mostly keeps such files; the engine never relies on it).
//  - A new shadow (no SHADOW/tree yet) starts as a copy of what `root` holds: a harness makes one
//    for a new node, or right after a power cut put the durable state in place.
//
// Paths outside `root` pass through untouched. Only for tests: every synced byte is written twice.
// Switched on in FileSystem::posix() by DENGINE_TEST_DURABLE_SHADOW_ROOT=ROOT and
// DENGINE_TEST_DURABLE_SHADOW=SHADOW (an engine started that way logs it).
//
// Thread-safe, as long as one handle at a time writes a given file (the storage's writers do).
std::unique_ptr<FileSystem> makeDurableShadow(FileSystem &real, std::string root, std::string shadow);

} // namespace dengine::storage
