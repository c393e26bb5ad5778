# `cmake --install build --prefix P`: the static libraries (one per src/pidistill folder), their headers, the
# pidistill binary with the bundled models, and a CMake package: `find_package(pidistill)` in another project
# gives the target `pidistill::pidistill`, which brings Torch, zlib and OpenSSL (find_dependency) with it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(PIDISTILL_VERSION 0.1.0)  # the package version; `pidistill --version` says the same

get_property(pidistill_libraries GLOBAL PROPERTY PIDISTILL_LIBRARIES)
# One target for users: every folder library (static libraries link in dependency order through their own
# links). Its export name makes the imported target pidistill::pidistill.
add_library(pidistill_library INTERFACE)
target_link_libraries(pidistill_library INTERFACE ${pidistill_libraries})
target_compile_features(pidistill_library INTERFACE cxx_std_17)
set_target_properties(pidistill_library PROPERTIES EXPORT_NAME pidistill)
add_library(pidistill::pidistill ALIAS pidistill_library)  # the same name inside this build

install(TARGETS ${pidistill_libraries} pidistill_library EXPORT pidistillTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# Every header, so the stable ones (pidistill/pidistill.h lists them) find the internal ones they include.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/src/pidistill DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(TARGETS pidistill RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# bundled_model() looks in <bin>/../share/pidistill/models (fid --features fmnist needs the classifier).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/pidistill/models
        FILES_MATCHING PATTERN "*.safetensors")

set(pidistill_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/pidistill)
install(EXPORT pidistillTargets NAMESPACE pidistill:: DESTINATION ${pidistill_cmake_dir})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/pidistillConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/pidistillConfig.cmake INSTALL_DESTINATION ${pidistill_cmake_dir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/pidistillConfigVersion.cmake VERSION ${PIDISTILL_VERSION}
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/pidistillConfig.cmake ${CMAKE_BINARY_DIR}/pidistillConfigVersion.cmake
        DESTINATION ${pidistill_cmake_dir})
