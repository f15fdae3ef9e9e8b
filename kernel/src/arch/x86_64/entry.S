/* Trap entry and exit: CPU exception stubs, the `syscall` entry with the IPC fastpath,
 * and the common return to user mode. Every path builds the same TrapFrame (see
 * trap.rs) in the current thread's TCB. The {{NAME}} values are operands of the
 * global_asm! in thread/fastpath.rs, which assembles this file with fastpath.S: frame
 * offsets come from TrapFrame itself, syscall numbers from the ABI crate. */

.set USER_CS, 0x23
.set USER_SS, 0x1b
.set SYSCALL_VECTOR, {SYSCALL_VECTOR}
.set FRAME_SIZE, {FRAME_SIZE}
.set FRAME_CS, {FRAME_CS}
.set FRAME_VECTOR, {FRAME_VECTOR}
.set FRAME_RIP, {FRAME_RIP}
.set FRAME_RFLAGS, {FRAME_RFLAGS}
.set FRAME_RSP, {FRAME_RSP}
.set FRAME_RBX, {FRAME_RBX}
.set FRAME_RBP, {FRAME_RBP}
.set FRAME_R12, {FRAME_R12}
.set FRAME_R13, {FRAME_R13}
.set FRAME_R14, {FRAME_R14}
.set FRAME_R15, {FRAME_R15}
.set FRAME_RDI, {FRAME_RDI}
.set FRAME_RSI, {FRAME_RSI}
.set FRAME_RDX, {FRAME_RDX}
.set FRAME_R10, {FRAME_R10}
.set FRAME_R8, {FRAME_R8}
.set FRAME_R9, {FRAME_R9}
.set SYS_CALL, {SYS_CALL}
.set SYS_REPLY_RECV, {SYS_REPLY_RECV}
.set SYS_YIELD, {SYS_YIELD}

.macro PUSH_GPRS
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
.endm

.macro POP_GPRS
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
.endm

.macro EXC_NOERR vec
.balign 16
    push 0
    push \vec
    jmp exception_common
.endm

/* Vectors whose exceptions push an error code. The same vector can also arrive as an
 * interrupt (a device writing it to the MSI window), which pushes none; the CPU aligns
 * rsp to 16 before pushing its 5- or 6-word frame, so rsp bit 3 is set exactly when
 * no error code was pushed: then push a 0 in its place, so the frame is never read
 * one word off. exception_dispatch then tells such interrupts from exceptions. */
.macro EXC_ERR vec
.balign 16
    test spl, 8
    jz 1f
    push 0
1:
    push \vec
    jmp exception_common
.endm

.section .text.trap_entry, "ax"
.code64
/* 256 stubs, 16 bytes apart, starting at exception_stubs: CPU exceptions 0..31, then
 * interrupt vectors. */
.balign 16
.global exception_stubs
exception_stubs:
    EXC_NOERR 0
    EXC_NOERR 1
    EXC_NOERR 2
    EXC_NOERR 3
    EXC_NOERR 4
    EXC_NOERR 5
    EXC_NOERR 6
    EXC_NOERR 7
    EXC_ERR   8
    EXC_NOERR 9
    EXC_ERR   10
    EXC_ERR   11
    EXC_ERR   12
    EXC_ERR   13
    EXC_ERR   14
    EXC_NOERR 15
    EXC_NOERR 16
    EXC_ERR   17
    EXC_NOERR 18
    EXC_NOERR 19
    EXC_NOERR 20
    EXC_ERR   21
    EXC_NOERR 22
    EXC_NOERR 23
    EXC_NOERR 24
    EXC_NOERR 25
    EXC_NOERR 26
    EXC_NOERR 27
    EXC_NOERR 28
    EXC_ERR   29
    EXC_ERR   30
    EXC_NOERR 31
/* Interrupt vectors 32..255 continue the table at the same stride. */
.irp vec, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100,101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116,117,118,119,120,121,122,123,124,125,126,127,128,129,130,131,132,133,134,135,136,137,138,139,140,141,142,143,144,145,146,147,148,149,150,151,152,153,154,155,156,157,158,159,160,161,162,163,164,165,166,167,168,169,170,171,172,173,174,175,176,177,178,179,180,181,182,183,184,185,186,187,188,189,190,191,192,193,194,195,196,197,198,199,200,201,202,203,204,205,206,207,208,209,210,211,212,213,214,215,216,217,218,219,220,221,222,223,224,225,226,227,228,229,230,231,232,233,234,235,236,237,238,239,240,241,242,243,244,245,246,247,248,249,250,251,252,253,254,255
    EXC_NOERR \vec
.endr

exception_common:
    PUSH_GPRS
    /* Interrupt gates clear IF, TF and NT but keep the user's AC (which would lift
     * SMAP) and DF: start the kernel from all-clear flags. */
    push 0
    popfq
    mov rdi, rsp
    /* NMI, #DF and #MC arrive on their IST stack even from user mode: their frame is
     * not in the TCB, so they always return from where they are. */
    mov rax, [rsp + FRAME_VECTOR]
    cmp rax, 2
    je 1f
    cmp rax, 8
    je 1f
    cmp rax, 18
    je 1f
    test byte ptr [rsp + FRAME_CS], 3
    jz 1f
    /* From user mode: the CPU pushed the frame into the current TCB (TSS rsp0 points
     * at its end); run the kernel on the kernel stack and leave through whichever
     * thread is current afterwards. */
    mov rsp, [rip + kernel_stack_top]
    call exception_dispatch
    jmp return_to_user
1:
    /* From the kernel (only the idle loop takes interrupts): frame on this stack. */
    call exception_dispatch
    POP_GPRS
    add rsp, 16
    iretq

/* syscall: rcx = user rip, r11 = user rflags, rsp = user rsp. SFMASK clears every
 * user-settable flag (IF, TF, DF, AC, NT, ...: see trap.rs). The user frame is built in the current TCB, then the
 * kernel stack is used. The frame's CS and SS words always hold the user selectors
 * (written when the TCB is made; the CPU only ever stores the same values), and a
 * syscall frame's error-code word is unused, so only the changing words are stored. */
.macro SYSCALL_FRAME
    mov [rip + syscall_user_rsp], rsp
    mov rsp, [rip + current_frame_end]
    sub rsp, FRAME_SIZE - FRAME_VECTOR
    mov [rsp + FRAME_RIP - FRAME_VECTOR], rcx
    mov [rsp + FRAME_RFLAGS - FRAME_VECTOR], r11
    mov rcx, [rip + syscall_user_rsp]
    mov [rsp + FRAME_RSP - FRAME_VECTOR], rcx
    mov qword ptr [rsp], SYSCALL_VECTOR
.endm

.global syscall_entry
syscall_entry:
    SYSCALL_FRAME
    cmp rax, SYS_CALL
    je fastpath_call_entry
    cmp rax, SYS_REPLY_RECV
    je fastpath_reply_recv_entry
    cmp rax, SYS_YIELD
    je fastpath_yield_entry
.global syscall_slowpath
syscall_slowpath:
    PUSH_GPRS
    mov rdi, rsp
    mov rsp, [rip + kernel_stack_top]
    call syscall_dispatch
    jmp return_to_user

/* The entry on CPUs without FSGSBASE: every system call takes the slowpath (which
 * switches the FS/GS bases through MSRs), so the fastpath keeps its unconditional
 * rd/wr FS/GS BASE instructions and costs nothing extra where they exist. */
.global syscall_entry_no_fastpath
syscall_entry_no_fastpath:
    SYSCALL_FRAME
    jmp syscall_slowpath

/* The IPC fastpath candidates, fastpath_call_entry and fastpath_reply_recv_entry, are
 * in fastpath.S (assembled in thread/fastpath.rs): they store the callee-saved registers into
 * this frame and either return to the partner or complete the frame and call
 * syscall_dispatch, as syscall_slowpath does. */

/* Return to the current thread: restore its TCB frame and iretq. A thread that is
 * returning from a system call gets zero in rcx and r11 (its clobbers), as after a
 * fast return: the fastpath never stores those slots, so they may hold what an
 * earlier interrupt saved. Interrupted threads get every register back exactly. */
.global return_to_user
return_to_user:
    mov rsp, [rip + current_frame_end]
    sub rsp, FRAME_SIZE
    POP_GPRS
    cmp qword ptr [rsp], SYSCALL_VECTOR
    jne 1f
    xor ecx, ecx
    xor r11d, r11d
1:
    add rsp, 16
    iretq

/* enter_user() -> ! : start the current thread (boot). */
.global enter_user
enter_user:
    jmp return_to_user

.section .bss.syscall_scratch, "aw", @nobits
.balign 8
.global syscall_user_rsp
syscall_user_rsp: .skip 8
.global kernel_stack_top
kernel_stack_top: .skip 8
/* End of the current thread's register frame in its TCB (also TSS rsp0). */
.global current_frame_end
current_frame_end: .skip 8
