# 64-bit Arm Linux, statically linked, run under qemu-user on an x86-64 host.
# Debian: apt-get install g++-aarch64-linux-gnu qemu-user
# The page size the tests see is qemu's: set QEMU_PAGESIZE (4096, 16384, 65536) in the
# environment of ctest; the aarch64-* test presets do, to cover 4 KiB, 16 KiB (Apple Silicon)
# and 64 KiB kernels with one build.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(PICORING_QEMU_AARCH64 qemu-aarch64)
if(PICORING_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PICORING_QEMU_AARCH64})
endif()
