#!/bin/sh
# report.sh SIZE NM DIR - the footprint table of `make -C firmware size`.
#
# DIR holds, built for a Cortex-M0+ at -Os with -ffunction-sections
# -fdata-sections, --gc-sections and newlib-nano:
#   empty.elf  a main that does nothing (the baseline: vectors, crt0, libc init)
#   codec.elf  a main that decodes and encodes (the codec alone)
#   client.elf a main that calls every client operation (the full client)
#   mqttsn.o, mqttsn_client.o, and their call graphs with frame sizes (*.ci).
#
# It prints, for the codec and for the full client:
#   library   the sizes of the library's own functions and constants kept in
#             the linked program, plus the libc functions (memcpy, memset,
#             memcmp, memmove, strlen) that the baseline does not have: what
#             an application pays for the library;
#   linked    the growth of the whole program over the baseline (.text and
#             .data + .bss), which also holds the test main and its stubs;
# and the RAM the client needs beyond the application's tx and rx buffers:
# sizeof(mqttsn_client_t) and the deepest stack frame of a library function
# (from -fstack-usage; add the callbacks' own).
set -eu
SIZE=$1 NM=$2 DIR=$3

field() { "$SIZE" -A "$1" | awk -v s="$2" '$1 == s { print $2 + 0 }'; }
text() { echo $(( $(field "$1" .text) + $(field "$1" .rodata 2>/dev/null || echo 0) )); }
ram() { echo $(( $(field "$1" .data) + $(field "$1" .bss) )); }

# names of the functions and objects a .o defines
defined() { "$NM" --defined-only "$@" | awk '$2 ~ /[TtRrDdBb]/ { print $3 }' | sort -u; }
libc_names="memcpy memset memcmp memmove strlen"

# library ELF OBJS...: sum of the symbol sizes of the library's names and of
# the libc functions the baseline does not contain
library() {
	elf=$1; shift
	names=$( { defined "$@"; for n in $libc_names; do
		"$NM" "$DIR/empty.elf" | awk '{print $3}' | grep -qx "$n" || echo "$n"; done; } | sort -u)
	"$NM" -S -t d "$elf" | awk -v names="$names" '
		BEGIN { n = split(names, a, "\n"); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		NF == 4 && ($3 ~ /[TtRr]/) && want[$4] { flash += $2 + 0 }
		NF == 4 && ($3 ~ /[DdBb]/) && want[$4] { ram += $2 + 0 }
		END { printf "%d %d\n", flash, ram }'
}

base_t=$(text "$DIR/empty.elf") base_r=$(ram "$DIR/empty.elf")
codec_t=$(text "$DIR/codec.elf") codec_r=$(ram "$DIR/codec.elf")
client_t=$(text "$DIR/client.elf") client_r=$(ram "$DIR/client.elf")
set -- $(library "$DIR/codec.elf" "$DIR/mqttsn.o"); lib_codec_t=$1 lib_codec_r=$2
set -- $(library "$DIR/client.elf" "$DIR/mqttsn.o" "$DIR/mqttsn_client.o"); lib_client_t=$1 lib_client_r=$2
state=$("$NM" -S -t d "$DIR/client.elf" | awk '$4 == "client" { print $2 + 0 }')
# The deepest stack: size/stack.awk walks the call graphs gcc wrote
# (-fcallgraph-info=su) from every public function.
set -- $(awk -f "$(dirname "$0")/stack.awk" "$DIR"/*.ci)
stack=$1; shift; path="$*"

echo "MQTT-SN client footprint, Cortex-M0+ (-mcpu=cortex-m0plus -mthumb -Os, gc-sections, newlib-nano)"
printf '%-34s %10s %14s\n' "" "flash (B)" "RAM (B)"
printf '%-34s %10d %14d\n' "codec: library + libc it pulls in" "$lib_codec_t" "$lib_codec_r"
printf '%-34s %10d %14d\n' "codec: linked, over the baseline" "$((codec_t - base_t))" "$((codec_r - base_r))"
printf '%-34s %10d %14d\n' "client: library + libc it pulls in" "$lib_client_t" "$lib_client_r"
printf '%-34s %10d %14d\n' "client: linked, over the baseline" "$((client_t - base_t))" "$((client_r - base_r))"
printf '%-34s %10s %14d\n' "client state (mqttsn_client_t)" "" "$state"
printf '%-34s %10s %14d\n' "stack, deepest library call path" "" "$stack"
printf '%-34s %10s %14d\n' "RAM beyond the buffers: state+stack" "" "$((state + stack))"
echo "(flash = .text + .rodata; RAM = .data + .bss. The linked rows include the test mains (size/main_*.c)"
echo " and their buffers. The library has no static state: the client's state is the application's"
echo " mqttsn_client_t, beside its tx and rx buffers. Stack: the deepest path from a public function,"
echo " $path,"
echo " from gcc's call graph (-fcallgraph-info), without the application's callbacks.)"
echo "goal for the full client: <= 6144 B flash, <= 512 B RAM beyond the application's buffers"
if [ -z "$stack" ] || [ "$stack" -le 0 ]; then
	echo "size: no call graph in $DIR (-fcallgraph-info)"; exit 1
fi
if [ "$lib_client_t" -gt 6144 ] || [ $((state + stack)) -gt 512 ]; then
	echo "size: over the goal"; exit 1
fi
