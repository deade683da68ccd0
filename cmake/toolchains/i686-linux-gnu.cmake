# 32-bit x86 Linux, statically linked (runs directly on an x86-64 host).
# Debian: apt-get install g++-i686-linux-gnu
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR i686)
set(CMAKE_CXX_COMPILER i686-linux-gnu-g++)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_FIND_ROOT_PATH /usr/i686-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Hosts whose kernel runs 32-bit programs could run the tests directly; many (this project's CI
# machines among them) cannot, so the tests run under qemu-user (Debian: qemu-user).
find_program(PICORING_QEMU_I386 qemu-i386)
if(PICORING_QEMU_I386)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PICORING_QEMU_I386})
endif()
