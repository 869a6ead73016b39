# DENGINE_SANITIZE=address builds everything with AddressSanitizer and UndefinedBehaviorSanitizer,
# DENGINE_SANITIZE=thread with ThreadSanitizer. Applied globally so libraries and tests agree.
if(DENGINE_SANITIZE STREQUAL "address")
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
elseif(DENGINE_SANITIZE STREQUAL "thread")
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
elseif(NOT DENGINE_SANITIZE STREQUAL "")
    message(FATAL_ERROR "DENGINE_SANITIZE must be empty, 'address' or 'thread', not '${DENGINE_SANITIZE}'")
endif()
