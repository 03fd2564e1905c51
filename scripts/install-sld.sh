#!/usr/bin/env bash
# Installs the C library of sld: header, static and shared library, a
# pkg-config file and a CMake package.
#
#   scripts/install-sld.sh PREFIX                 # builds sld-ffi --release first
#   scripts/install-sld.sh PREFIX --lib-dir DIR   # installs libsld.{a,so} from DIR
#   scripts/install-sld.sh PREFIX --target aarch64-unknown-linux-gnu
#                                                 # cross-builds for a robot (Jetson,
#                                                 # Raspberry Pi, i.MX; .cargo/config.toml
#                                                 # names the linker)
#   scripts/install-sld.sh [--target T] --print-lib-dir
#                                                 # where the build puts them
#                                                 # (honours CARGO_TARGET_DIR)
#
# Then, from C/C++:
#   CMake:      find_package(sld 0.1 REQUIRED)   (CMAKE_PREFIX_PATH=PREFIX)
#               target_link_libraries(app PRIVATE sld::sld)         # shared
#               target_link_libraries(app PRIVATE sld::sld_static)  # static
#   pkg-config: PKG_CONFIG_PATH=PREFIX/lib/pkgconfig
#               cc app.c $(pkg-config --cflags --libs sld)
#               cc app.c $(pkg-config --static --cflags --libs sld)  # with libsld.a only
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
target=
# The release folder of the workspace's target directory, as cargo resolves
# it (CARGO_TARGET_DIR, .cargo/config.toml build.target-dir, or ./target).
release_dir() {
  local t
  t="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  [ -n "$t" ] || { echo "install-sld.sh: cannot find cargo's target directory" >&2; exit 1; }
  echo "$t${target:+/$target}/release"
}
[ $# -ge 1 ] || usage 2
if [ "$1" = "--target" ]; then target="${2:?--target needs a triple}"; shift 2; fi
case "${1:-}" in
  -h|--help) usage 0 ;;
  --print-lib-dir) release_dir; exit 0 ;;
  "") usage 2 ;;
esac
prefix="$1"; shift
lib_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --lib-dir) lib_dir="${2:?--lib-dir needs a folder}"; shift 2 ;;
    --target) target="${2:?--target needs a triple}"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "install-sld.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done

if [ -z "$lib_dir" ]; then
  cargo build --release -p sld-ffi --manifest-path "$root/Cargo.toml" ${target:+--target "$target"}
  lib_dir="$(release_dir)"
fi
for f in libsld.a libsld.so; do
  [ -f "$lib_dir/$f" ] || { echo "install-sld.sh: $lib_dir/$f not found" >&2; exit 1; }
done

version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
major="${version%%.*}"; rest="${version#*.}"; minor="${rest%%.*}"
# What a static link needs besides libsld.a (rustc --print native-static-libs).
static_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/sld"
prefix="$(cd "$prefix" && pwd)"
install -m 644 "$root/include/sld.h" "$prefix/include/sld.h"
install -m 644 "$lib_dir/libsld.a" "$prefix/lib/libsld.a"
install -m 755 "$lib_dir/libsld.so" "$prefix/lib/libsld.so"

cat > "$prefix/lib/pkgconfig/sld.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: sld
Description: Camera relocalization by scene landmark detection (C ABI)
Version: $version
Libs: -L\${libdir} -lsld
Libs.private: $static_libs
Cflags: -I\${includedir}
PC

cat > "$prefix/lib/cmake/sld/sldConfig.cmake" <<'CMAKE'
# sld CMake package: imported targets sld::sld (shared) and sld::sld_static.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
get_filename_component(_sld_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET sld::sld)
  add_library(sld::sld SHARED IMPORTED)
  set_target_properties(sld::sld PROPERTIES
    IMPORTED_LOCATION "${_sld_prefix}/lib/libsld.so"
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${_sld_prefix}/include")
endif()
if(NOT TARGET sld::sld_static)
  add_library(sld::sld_static STATIC IMPORTED)
  set_target_properties(sld::sld_static PROPERTIES
    IMPORTED_LOCATION "${_sld_prefix}/lib/libsld.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_sld_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;gcc_s;util;rt;m;dl")
endif()
unset(_sld_prefix)
CMAKE

cat > "$prefix/lib/cmake/sld/sldConfigVersion.cmake" <<CMAKE
# 0.x releases are compatible within a minor version, later ones within a major.
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("$major" STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$minor")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
CMAKE

echo "installed sld $version into $prefix"
