# -DPIDISTILL_DEPS_DIR=DIR: Debian packages unpacked by scripts/device/fetch_deps.sh (DIR/usr/...), for a machine
# without them (the GPU machine): their headers first on the include path, zlib and libcrypto linked statically.
set(PIDISTILL_DEPS_DIR "" CACHE PATH "Unpacked dependency packages (scripts/device/fetch_deps.sh); empty: the system's")
if(PIDISTILL_DEPS_DIR)
  set(deps ${PIDISTILL_DEPS_DIR}/usr)
  if(NOT EXISTS ${deps}/include/nlohmann/json.hpp)
    message(FATAL_ERROR "PIDISTILL_DEPS_DIR=${PIDISTILL_DEPS_DIR} holds no usr/include/nlohmann/json.hpp; "
                        "hint: scripts/device/fetch_deps.sh ${PIDISTILL_DEPS_DIR}")
  endif()
  list(PREPEND CMAKE_PREFIX_PATH ${deps})  # GTest's CMake config; stb's folder (find_path below)
  # Why include/x86_64-linux-gnu: OpenSSL's configuration.h lives there, a default path only on Debian itself.
  include_directories(BEFORE ${deps}/include ${deps}/include/x86_64-linux-gnu)
  set(ZLIB_INCLUDE_DIR ${deps}/include CACHE PATH "" FORCE)
  set(ZLIB_LIBRARY ${deps}/lib/x86_64-linux-gnu/libz.a CACHE FILEPATH "" FORCE)
  set(OPENSSL_ROOT_DIR ${deps})
  set(OPENSSL_USE_STATIC_LIBS TRUE)
  unset(deps)
endif()
