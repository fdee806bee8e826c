# Finds xxHash's header (Debian: libxxhash-dev) and its version. kvevents compiles XXH3 inline
# (XXH_INLINE_ALL), so it needs the header only and a consumer links nothing of xxHash.
# Defines xxHash_FOUND, xxHash_VERSION and the target xxHash::headers.

find_path(xxHash_INCLUDE_DIR NAMES xxhash.h)
if(xxHash_INCLUDE_DIR AND EXISTS "${xxHash_INCLUDE_DIR}/xxhash.h")
    file(STRINGS "${xxHash_INCLUDE_DIR}/xxhash.h" _xxhash_version_lines
         REGEX "^#define XXH_VERSION_(MAJOR|MINOR|RELEASE) +[0-9]+")
    foreach(_part MAJOR MINOR RELEASE)
        string(REGEX REPLACE ".*#define XXH_VERSION_${_part} +([0-9]+).*" "\\1" _xxhash_${_part}
               "${_xxhash_version_lines}")
    endforeach()
    set(xxHash_VERSION "${_xxhash_MAJOR}.${_xxhash_MINOR}.${_xxhash_RELEASE}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(xxHash REQUIRED_VARS xxHash_INCLUDE_DIR VERSION_VAR xxHash_VERSION)

if(xxHash_FOUND AND NOT TARGET xxHash::headers)
    add_library(xxHash::headers INTERFACE IMPORTED)
    set_target_properties(xxHash::headers PROPERTIES
                          INTERFACE_INCLUDE_DIRECTORIES "${xxHash_INCLUDE_DIR}")
endif()
mark_as_advanced(xxHash_INCLUDE_DIR)
