#!/bin/sh
# ctest's emulator for the Windows cross build: runs one test program under wine.
# WINEPREFIX defaults to a prefix of picoring's own, so ~/.wine is never touched.
: "${WINEPREFIX:=${XDG_CACHE_HOME:-$HOME/.cache}/picoring-wine}"
export WINEPREFIX
mkdir -p "$(dirname "$WINEPREFIX")"  # wine creates the prefix itself, but not its parents
export WINEDEBUG=-all
# wine's server and background services must be started detached from ctest's output pipe: if
# a test started them, they would inherit the pipe and ctest would wait for them to exit.
[ -f "$WINEPREFIX/system.reg" ] || wineboot -i </dev/null >/dev/null 2>&1
# Exit status 2: a server is already running for this prefix (and so are its services).
wineserver -p60 </dev/null >/dev/null 2>&1
if [ $? -ne 2 ]; then
  wine cmd /c exit </dev/null >/dev/null 2>&1
fi
exec wine "$@"
