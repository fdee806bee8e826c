# `cpack -G DEB` in a build directory: a Debian package of everything `cmake --install` puts in
# place (headers, static libraries, CMake and pkg-config files, kvevents-cli), under /usr.
set(CPACK_PACKAGE_NAME kvevents)
set(CPACK_PACKAGE_VENDOR kvevents)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
    "Subscribes to the KV-cache events vLLM (and SGLang, TensorRT-LLM) publish over ZeroMQ
and delivers every batch exactly once and in order, healing gaps from the replay
socket and announcing engine restarts and losses. Includes vLLM's block hashes, a
concurrent prefix index for routing by prefix-cache locality, a mock publisher for
tests, and kvevents-cli. Static libraries, with CMake (find_package(kvevents)) and
pkg-config (kvevents, kvevents-routing, kvevents-testing) files.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # kvevents_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "kvevents maintainers <kvevents@localhost>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
# What a consumer of the static libraries links or includes, as -dev packages: libzmq and
# cppzmq (the CMake package looks cppzmq up for the libzmq target), spdlog (in the public
# headers; brings fmt), libcrypto (kvevents::routing). msgpack-cxx and xxHash are compiled in.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libzmq3-dev, cppzmq-dev, libspdlog-dev, libssl-dev")
# kvevents::prometheus is usable only with prometheus-cpp's headers installed.
if(KVEVENTS_HAVE_PROMETHEUS)
    set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus-cpp-dev, pkg-config")
else()
    set(CPACK_DEBIAN_PACKAGE_SUGGESTS "pkg-config")
endif()
# kvevents-cli's shared libraries (dpkg-shlibdeps, from dpkg-dev), added to the list above.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

include(CPack)
