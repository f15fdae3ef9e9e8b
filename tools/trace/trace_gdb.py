"""gdb script for tools/trace/trace-syscall.sh: stops at the kernel's syscall entry
for a Call with the given invocation label (and first message register), then
single-steps to the return to user mode and writes every kernel PC to OUT."""
import gdb

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("target remote :%d" % PORT)
cond = "$rax == %d && ($rsi >> 12) == %d" % (SYSNO, LABEL)
if MR0 >= 0:
    cond += " && $rdx == %d" % MR0
gdb.execute("break *syscall_entry if " + cond)
for _ in range(SKIP + 1):
    gdb.execute("continue")
pcs = []
for _ in range(MAX_STEPS):
    pc = int(gdb.parse_and_eval("$pc")) & 0xFFFFFFFFFFFFFFFF
    if pc < 0xFFFF800000000000:
        break
    pcs.append(pc)
    gdb.execute("stepi", to_string=True)
with open(OUT, "w") as f:
    f.writelines("%x\n" % pc for pc in pcs)
gdb.execute("kill")
