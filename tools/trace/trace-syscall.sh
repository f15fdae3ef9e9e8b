#!/usr/bin/env bash
# Traces one kernel invocation of the `bench` program instruction by instruction and
# prints where its guest instructions go (docs/fastpath.md). Usage:
#   tools/trace/trace-syscall.sh LABEL [MR0|-1] [SKIP]
# LABEL: the invocation label (abi::invocation), MR0: the first message register to
# match (-1: any), SKIP: matching calls to let pass first. TRACE_LIST=1 prints every
# instruction with its disassembly instead of the split. Needs `make image` and gdb.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
label=${1:?usage: trace-syscall.sh LABEL [MR0] [SKIP]}
mr0=${2:--1}
skip=${3:-0}
port=${GDB_PORT:-1237}
command -v gdb >/dev/null || { echo "trace-syscall: gdb not found (apt-get install gdb)"; exit 1; }
[ -f "$root/build/system.elf" ] || { echo "trace-syscall: build/system.elf missing: run make image"; exit 1; }
out=$(mktemp -d)
trap 'kill $qemu 2>/dev/null || true; rm -rf "$out"' EXIT
qemu-system-x86_64 -machine q35 -accel tcg -smp 1 -display none -monitor none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -cpu max -m 256M -serial "file:$out/serial.log" \
    -device intel-iommu,intremap=on -kernel "$root/build/system.elf" -append init=bench \
    -icount shift=0,sleep=off -gdb "tcp:127.0.0.1:$port" -S >/dev/null 2>&1 &
qemu=$!
sleep 1
sysno=$(grep -oE 'Call = [0-9]+' "$root/libcap/abi/src/syscall.rs" | head -1 | awk '{print $3}')
{
    echo "python PORT=$port; SYSNO=$sysno; LABEL=$label; MR0=$mr0; SKIP=$skip; MAX_STEPS=100000; OUT='$out/pcs'"
    echo "source $root/tools/trace/trace_gdb.py"
} > "$out/cmd.gdb"
timeout 600 gdb -q -batch -x "$out/cmd.gdb" "$root/build/kernel.elf" > "$out/gdb.log" 2>&1 \
    || { tail -5 "$out/gdb.log"; echo "trace-syscall: gdb failed"; exit 1; }
[ -s "$out/pcs" ] || { tail -5 "$out/gdb.log"; echo "trace-syscall: no matching call was traced"; exit 1; }
python3 "$root/tools/trace/split.py" "$root/build/kernel.elf" "$out/pcs" ${TRACE_LIST:+--list}
