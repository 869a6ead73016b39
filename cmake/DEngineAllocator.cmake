# The allocator the programs link (dengined, dengine): never the library's choice, which is left to
# the application that embeds it.
#
# glibc's malloc takes 12% of a standalone cluster's CPU at put c=64 (perf, all three dengined);
# a thread-caching allocator takes most of that back. Interleaved A/B on this project's 2-core
# machine, `dengine bench` against three dengined: put c=64 45.7k -> 55.3k ops/s (server CPU per
# put 31 -> 24 us), linearizable get c=16 68.8k -> 80.2k; jemalloc gained as much on puts and less
# on gets. gperftools' tcmalloc_minimal is Debian's libtcmalloc-minimal4 (no profiler, no
# libunwind); its runtime package is enough to link against.
#
# DENGINE_ALLOCATOR: "tcmalloc" (the default; falls back to the system's with a warning when the
# library is missing) or "system". Sanitizer builds always use the system's: the sanitizers
# replace malloc themselves.
set(DENGINE_ALLOCATOR "tcmalloc" CACHE STRING "Allocator dengined and dengine link: 'tcmalloc' or 'system'")
set_property(CACHE DENGINE_ALLOCATOR PROPERTY STRINGS tcmalloc system)
if(NOT DENGINE_ALLOCATOR MATCHES "^(tcmalloc|system)$")
    message(FATAL_ERROR "DENGINE_ALLOCATOR must be 'tcmalloc' or 'system', not '${DENGINE_ALLOCATOR}'")
endif()

set(DENGINE_ALLOCATOR_IN_USE system)
if(DENGINE_ALLOCATOR STREQUAL "tcmalloc")
    if(NOT DENGINE_SANITIZE STREQUAL "")
        message(STATUS "DEngine: sanitizers on, the programs use the system allocator")
    else()
        find_library(DENGINE_TCMALLOC_LIBRARY NAMES tcmalloc_minimal libtcmalloc_minimal.so.4)
        if(DENGINE_TCMALLOC_LIBRARY)
            set(DENGINE_ALLOCATOR_IN_USE tcmalloc)
            message(STATUS "DEngine: the programs link tcmalloc (${DENGINE_TCMALLOC_LIBRARY})")
        else()
            message(WARNING "DEngine: tcmalloc_minimal not found (Debian: libtcmalloc-minimal4, which "
                            "scripts/setup-debian.sh installs); dengined and dengine use the system allocator")
        endif()
    endif()
endif()

# Links TARGET (an executable) with the chosen allocator, and tells it which (DENGINE_ALLOCATOR_NAME).
function(dengine_link_allocator target)
    if(DENGINE_ALLOCATOR_IN_USE STREQUAL "tcmalloc")
        # Nothing names tcmalloc's symbols directly: keep the linker from dropping it as unneeded.
        target_link_libraries(${target} PRIVATE -Wl,--push-state,--no-as-needed ${DENGINE_TCMALLOC_LIBRARY} -Wl,--pop-state)
    endif()
    target_compile_definitions(${target} PRIVATE DENGINE_ALLOCATOR_NAME="${DENGINE_ALLOCATOR_IN_USE}")
endfunction()
