# pkg-config files installed next to the CMake package, in <libdir>/pkgconfig.
#
# kvevents_install_pkg_config(<name> TARGET <library target> DESCRIPTION <text>
#     [REQUIRES <modules>...] [REQUIRES_PRIVATE <modules>...] [LIBS_PRIVATE <flags>...])
#
# The prefix is found from the file's own location (${pcfiledir}), so an install moved with
# `cmake --install --prefix` or packaged by CPack needs no editing.
function(kvevents_install_pkg_config name)
    cmake_parse_arguments(PARSE_ARGV 1 arg "" "TARGET;DESCRIPTION"
                          "REQUIRES;REQUIRES_PRIVATE;LIBS_PRIVATE")
    set(pkgconfig_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
    file(RELATIVE_PATH KVEVENTS_PC_PREFIX_FROM_PCFILEDIR /root/${pkgconfig_dir} /root)
    string(REGEX REPLACE "/$" "" KVEVENTS_PC_PREFIX_FROM_PCFILEDIR "${KVEVENTS_PC_PREFIX_FROM_PCFILEDIR}")
    set(KVEVENTS_PC_NAME ${name})
    set(KVEVENTS_PC_DESCRIPTION ${arg_DESCRIPTION})
    get_target_property(KVEVENTS_PC_LIBRARY ${arg_TARGET} OUTPUT_NAME)
    if(NOT KVEVENTS_PC_LIBRARY)
        set(KVEVENTS_PC_LIBRARY ${arg_TARGET})
    endif()
    list(JOIN arg_REQUIRES " " KVEVENTS_PC_REQUIRES)
    list(JOIN arg_REQUIRES_PRIVATE " " KVEVENTS_PC_REQUIRES_PRIVATE)
    list(JOIN arg_LIBS_PRIVATE " " KVEVENTS_PC_LIBS_PRIVATE)
    configure_file(${PROJECT_SOURCE_DIR}/cmake/kvevents.pc.in
                   ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc @ONLY)
    install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc DESTINATION ${pkgconfig_dir})
endfunction()
