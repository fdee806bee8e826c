# Warnings are set per target so they never leak into a parent project's code.
function(kvevents_set_warnings target)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                             -Wsign-conversion -Wnon-virtual-dtor)
    if(KVEVENTS_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
endfunction()
