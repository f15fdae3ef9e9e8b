"""Attributes a kernel PC trace (tools/trace/trace-syscall.sh) to functions and to the
phases of a system call; repeated PCs inside one function are string-instruction
iterations (`rep stosq` zeroing) and are counted apart."""
import bisect
import collections
import re
import subprocess
import sys

PHASES = [
    ("entry, exit, dispatch, schedule", ["syscall_entry", "fastpath_call_entry", "fastpath_call", "fastpath_exit",
                                         "syscall_dispatch", "lookup_ipc_cap", "schedule", "return_to_user"]),
    ("cap lookups (slot resolve)", ["single_level_cap", "call::{{closure}}"]),
    ("cap decode/encode", ["Cap::decode", "Cap::encode"]),
    ("invocation decode (message, label)", ["invoke::call"]),
]


def main(elf, trace):
    syms = []
    for line in subprocess.run(["nm", "-n", "-C", elf], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), re.sub(r"::h[0-9a-f]{16}$", "", parts[2])))
    syms.sort()
    addrs = [a for a, _ in syms]
    pcs = [int(line, 16) for line in open(trace)]
    funcs, phases = collections.Counter(), collections.Counter()
    prev = None
    for pc in pcs:
        name = syms[bisect.bisect_right(addrs, pc) - 1][1]
        if pc == prev:
            phases["string-instruction iterations (zeroing)"] += 1
            continue
        prev = pc
        funcs[name] += 1
        for phase, keys in PHASES:
            if any(name.endswith(k) for k in keys):
                phases[phase] += 1
                break
        else:
            phases["the operation: " + name.split("::")[-1]] += 1
    print("%d kernel instructions from syscall to sysret" % len(pcs))
    for phase, n in phases.most_common():
        print("  %5d  %s" % (n, phase))
    print("by function:")
    for name, n in funcs.most_common(25):
        print("  %5d  %s" % (n, name[:120]))


def listing(elf, trace):
    """Prints every traced instruction with its function and disassembly."""
    dis = {}
    text = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", "-M", "intel", elf],
                          capture_output=True, text=True, check=True).stdout
    func = "?"
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            func = re.sub(r"::h[0-9a-f]{16}$", "", m.group(2))
            continue
        m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
        if m:
            dis[int(m.group(1), 16)] = (func, " ".join(m.group(2).split()))
    for n, line in enumerate(open(trace), 1):
        pc = int(line, 16)
        func, ins = dis.get(pc, ("?", "?"))
        print("%4d %x %-40s %s" % (n, pc, func[-40:], ins))


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[3] == "--list":
        listing(sys.argv[1], sys.argv[2])
    else:
        main(sys.argv[1], sys.argv[2])
