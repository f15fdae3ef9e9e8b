/* The IPC fastpath: Call and ReplyRecv with at most four message registers and no
 * caps, between threads whose CSpace root is one CNode resolving all 64 bits. Written
 * whole in assembly (no Rust call: no argument shuffles, no prologue, the message stays
 * in rdx/r10/r8/r9 throughout). Every offset and constant comes from Rust (thread/fastpath.rs).
 *
 * Entered from syscall_entry (entry.S) with rsp = the caller's frame + FRAME_VECTOR, its
 * rip/rflags/rsp stored, rdi = cptr, rsi = message info, rdx/r10/r8/r9 = message.
 * Nothing is changed before the last check passed; a failed check stores the argument
 * registers into the frame and takes the general path (syscall_dispatch), which has the
 * same effect, only slower. Registers: r14 = direct-map base, rbx = the current thread
 * (physical), rbp = its TCB (virtual), r13 = the partner (physical; its TCB is at
 * r14 + r13), r15 = the partner's VSpace root, r12 = the endpoint cap's slot (Call);
 * rax, rcx, r11 scratch. rdi keeps the cptr until the last check. */

/* The {{NAME}} values are operands of the global_asm! in thread/fastpath.rs, which
 * assembles entry.S and this file together: the frame offsets and system call numbers
 * are entry.S's .set names. */
.set SCHED_CURRENT, {SCHED_CURRENT}
.set SCHED_SUMMARY, {SCHED_SUMMARY}
.set SCHED_BITMAP, {SCHED_BITMAP}
.set TSS_RSP0, {TSS_RSP0}
.set PHYS_MAP_BASE, {PHYS_MAP_BASE}
.set INFO_CAPS_AND_LENGTH, {INFO_CAPS_AND_LENGTH}
.set MAX_FAST_LENGTH, {MAX_FAST_LENGTH}
.set EP_STATE_MASK, {EP_STATE_MASK}
.set EP_SENDING, {EP_SENDING}
.set EP_RECEIVING, {EP_RECEIVING}
.set CSPACE_SLOT, {CSPACE_SLOT}
.set VSPACE_SLOT, {VSPACE_SLOT}
.set SLOT_BITS, {SLOT_BITS}
.set TAG_CNODE, {TAG_CNODE}
.set TAG_ENDPOINT, {TAG_ENDPOINT}
.set TAG_FRAME, {TAG_FRAME}
.set TAG_VSPACE, {TAG_VSPACE}
.set TAG_MASK, {TAG_MASK}
.set RIGHTS_SHIFT, {RIGHTS_SHIFT}
.set RIGHT_READ, {RIGHT_READ}
.set RIGHT_WRITE, {RIGHT_WRITE}
.set SMALL_SHIFT, {SMALL_SHIFT}
.set GUARD_BITS_SHIFT, {GUARD_BITS_SHIFT}
.set FIELD_MASK, {FIELD_MASK}
.set WORD_ADDR, {WORD_ADDR}
.set WORD_GUARD, {WORD_GUARD}
.set WORD_BADGE, {WORD_BADGE}
.set TCB_STATE, {TCB_STATE}
.set TCB_PRIORITY, {TCB_PRIORITY}
.set TCB_EP_PREV, {TCB_EP_PREV}
.set TCB_EP_NEXT, {TCB_EP_NEXT}
.set TCB_BLOCKED_ON, {TCB_BLOCKED_ON}
.set TCB_IPC_FLAGS, {TCB_IPC_FLAGS}
.set TCB_REPLY_TO, {TCB_REPLY_TO}
.set TCB_BOUND_NTFN, {TCB_BOUND_NTFN}
.set TCB_FPU, {TCB_FPU}
.set TCB_FS_BASE, {TCB_FS_BASE}
.set TCB_GS_BASE, {TCB_GS_BASE}
.set TCB_FRAME, {TCB_FRAME}
.set IPC_IS_FAULT_BIT, {IPC_IS_FAULT_BIT}
.set STATE_RUNNING, {STATE_RUNNING}
.set STATE_BLOCKED_ON_RECEIVE, {STATE_BLOCKED_ON_RECEIVE}
.set STATE_BLOCKED_ON_REPLY, {STATE_BLOCKED_ON_REPLY}
.set FRAME_RAX, {FRAME_RAX}

/* Its own text section: with LTO every global_asm! is one stream (entry.S ends in .bss). */
.pushsection .text.fastpath, "ax"

/* Save what the caller gets back whatever happens (its callee-saved registers) and the
 * system call number (rax, as PUSH_GPRS stores it: a thread blocked here and later cut
 * loose by Suspend/Resume returns what the frame says, the slowpath's error, never a
 * stale 0 that reads as a reply), then run on the kernel stack. */
.macro FP_SAVE
    mov [rsp + FRAME_RAX - FRAME_VECTOR], rax
    mov [rsp + FRAME_RBX - FRAME_VECTOR], rbx
    mov [rsp + FRAME_RBP - FRAME_VECTOR], rbp
    mov [rsp + FRAME_R12 - FRAME_VECTOR], r12
    mov [rsp + FRAME_R13 - FRAME_VECTOR], r13
    mov [rsp + FRAME_R14 - FRAME_VECTOR], r14
    mov [rsp + FRAME_R15 - FRAME_VECTOR], r15
    mov rsp, [rip + kernel_stack_top]
.endm

/* The slot `rdi` (cptr) names in the CSpace of the thread whose TCB is at rbp, if that
 * is one CNode whose guard and radix cover all 64 bits, into rax (physical); else to
 * \slow (`cnode::single_level_slot`). The radix and guard-bit fields are bytes of the
 * cap's word 0; with cptr >> radix equal to the guard, cptr ^ (that << radix) is the
 * index. rdi is kept; rcx, r11 are clobbered. */
.macro FP_LOOKUP slow
    cmp byte ptr [rbp + CSPACE_SLOT], TAG_CNODE
    jne \slow
    movzx ecx, byte ptr [rbp + CSPACE_SLOT + SMALL_SHIFT / 8]
    movzx r11d, byte ptr [rbp + CSPACE_SLOT + GUARD_BITS_SHIFT / 8]
    add r11d, ecx
    cmp r11d, 64
    jne \slow
    mov rax, rdi
    shr rax, cl
    cmp rax, [rbp + CSPACE_SLOT + 8 * WORD_GUARD]
    jne \slow
    shl rax, cl
    xor rax, rdi
    shl rax, SLOT_BITS
    add rax, [rbp + CSPACE_SLOT + 8 * WORD_ADDR]
.endm

/* No thread of a priority above that of the TCB at [\t] is ready (the ready bitmap's
 * summary word, then the priority's own word: `ReadyQueues::none_above`), else to
 * \slow. Clobbers rax, rcx, r11. */
.macro FP_NONE_ABOVE t, slow
    movzx eax, byte ptr [\t + TCB_PRIORITY]
    mov ecx, eax
    shr ecx, 6
    mov r11, [rip + {sched} + SCHED_SUMMARY]
    shr r11, cl
    cmp r11, 1
    ja \slow
    mov r11, [{sched} + SCHED_BITMAP + rcx * 8]
    mov ecx, eax
    shr r11, cl
    cmp r11, 1
    ja \slow
.endm

/* The VSpace root of the TCB at [\t] into r15, if its VSpace slot holds a VSpace cap
 * (`tcb_state::vspace_of`); else to \slow. */
.macro FP_VSPACE t, slow
    cmp byte ptr [\t + VSPACE_SLOT], TAG_VSPACE
    jne \slow
    mov r15, [\t + VSPACE_SLOT + 8 * WORD_ADDR]
.endm

/* Switch from the thread at rbp to the partner r13, whose VSpace root is r15
 * (`tcb_state::switch_ipc`): FPU state (eager), FS/GS bases, the frame pointer for the
 * next entry and TSS rsp0, CR3 if it changes, the current thread. Then return to the
 * partner with badge rdi, the message in rsi/rdx/r10/r8/r9, result 0, and its
 * callee-saved registers from its frame. */
.macro FP_SWITCH_AND_EXIT
    fxsave64 [rbp + TCB_FPU]
    rdfsbase rax
    mov [rbp + TCB_FS_BASE], rax
    rdgsbase rax
    mov [rbp + TCB_GS_BASE], rax
    lea rbp, [r14 + r13]
    mov rax, [rbp + TCB_FS_BASE]
    wrfsbase rax
    mov rax, [rbp + TCB_GS_BASE]
    wrgsbase rax
    fxrstor64 [rbp + TCB_FPU]
    lea rax, [rbp + TCB_FRAME + FRAME_SIZE]
    mov [rip + current_frame_end], rax
    mov rcx, [rip + {tss_ptr}]
    mov [rcx + TSS_RSP0], rax
    cmp [rip + {active_root}], r15
    je 77f
    mov [rip + {active_root}], r15
    mov cr3, r15
77:
    mov [rip + {sched} + SCHED_CURRENT], r13
    mov rbx, [rbp + TCB_FRAME + FRAME_RBX]
    mov r12, [rbp + TCB_FRAME + FRAME_R12]
    mov r13, [rbp + TCB_FRAME + FRAME_R13]
    mov r14, [rbp + TCB_FRAME + FRAME_R14]
    mov r15, [rbp + TCB_FRAME + FRAME_R15]
    lea rsp, [rbp + TCB_FRAME + FRAME_RIP]
    mov rbp, [rbp + TCB_FRAME + FRAME_RBP]
    /* The partner is blocked in a system call: rcx and r11 are its clobbers. */
    xor ecx, ecx
    xor r11d, r11d
    xor eax, eax
    iretq
.endm

/* The argument registers into the frame (rax = its address), as PUSH_GPRS would have
 * stored them (the number and the callee-saved ones are there already). */
.macro FP_STORE_ARGS
    mov rax, [rip + current_frame_end]
    sub rax, FRAME_SIZE
    mov [rax + FRAME_RDI], rdi
    mov [rax + FRAME_RSI], rsi
    mov [rax + FRAME_RDX], rdx
    mov [rax + FRAME_R10], r10
    mov [rax + FRAME_R8], r8
    mov [rax + FRAME_R9], r9
.endm

/* The general path with the frame FP_STORE_ARGS completed. */
.macro FP_SLOWPATH
    FP_STORE_ARGS
    mov rdi, rax
    call syscall_dispatch
    jmp return_to_user
.endm

/* Message info: no caps, no unwrapped mask, at most four registers; else to \slow.
 * Then r14, rbx and rbp as above. */
.macro FP_BEGIN slow
    mov eax, esi
    and eax, INFO_CAPS_AND_LENGTH
    cmp eax, MAX_FAST_LENGTH
    ja \slow
    movabs r14, PHYS_MAP_BASE
    mov rbx, [rip + {sched} + SCHED_CURRENT]
    lea rbp, [r14 + rbx]
.endm

/* Call on an endpoint (Write) with a receiver waiting whose priority no ready thread
 * exceeds: the receiver leaves the queue, runs, and owes the caller a reply. */
.global fastpath_call_entry
fastpath_call_entry:
    FP_SAVE
    FP_BEGIN .Lfp_call_slow
    FP_LOOKUP .Lfp_call_slow
    lea r12, [r14 + rax]
    mov ecx, [r12]
    and ecx, TAG_MASK | (RIGHT_WRITE << RIGHTS_SHIFT)
    cmp ecx, TAG_ENDPOINT | (RIGHT_WRITE << RIGHTS_SHIFT)
    jne .Lfp_call_other
    /* The endpoint has receivers waiting: the first is the partner. */
    mov rax, [r12 + 8 * WORD_ADDR]
    mov rcx, [r14 + rax + 8]
    and ecx, EP_STATE_MASK
    cmp ecx, EP_RECEIVING
    jne .Lfp_call_slow
    mov r13, [r14 + rax]
    FP_NONE_ABOVE r14 + r13, .Lfp_call_slow
    FP_VSPACE r14 + r13, .Lfp_call_slow
    /* Commit: dequeue the receiver (the head: its prev link is already 0). */
    mov rax, [r12 + 8 * WORD_ADDR]
    add rax, r14
    mov rcx, [r14 + r13 + TCB_EP_NEXT]
    test rcx, rcx
    jz 1f
    mov [rax], rcx
    mov qword ptr [r14 + rcx + TCB_EP_PREV], 0
    jmp 2f
1:
    mov qword ptr [rax], 0
    mov qword ptr [rax + 8], 0
2:
    mov qword ptr [r14 + r13 + TCB_EP_NEXT], 0
    mov qword ptr [r14 + r13 + TCB_STATE], STATE_RUNNING
    mov qword ptr [r14 + r13 + TCB_BLOCKED_ON], 0
    mov [r14 + r13 + TCB_REPLY_TO], rbx
    mov qword ptr [rbp + TCB_STATE], STATE_BLOCKED_ON_REPLY
    /* The other half of the reply link (see `ipc::link_reply`). */
    mov [rbp + TCB_BLOCKED_ON], r13
    /* The cap's word 0 as the caller's ipc_flags (whether the reply may carry a cap:
     * the Grant bit's place in word 0), and the badge for the receiver. */
    mov rax, [r12]
    mov [rbp + TCB_IPC_FLAGS], rax
    mov rdi, [r12 + 8 * WORD_BADGE]
    FP_SWITCH_AND_EXIT
/* Not a fast IPC. The cap is looked up already: a Frame's invocations (MapIO and
 * UnmapIO have a short way) go to syscall_frame_dispatch with its slot, which takes
 * the general path for anything else. */
.Lfp_call_other:
    cmp byte ptr [r12], TAG_FRAME
    jne .Lfp_call_slow
    FP_STORE_ARGS
    mov rdi, rax
    mov rsi, r12
    sub rsi, r14
    call syscall_frame_dispatch
    jmp return_to_user
.Lfp_call_slow:
    FP_SLOWPATH

/* ReplyRecv: reply to a caller blocked in Call (not a fault) whose priority no ready
 * thread exceeds, and wait on an endpoint (Read) nobody is sending to. */
.global fastpath_reply_recv_entry
fastpath_reply_recv_entry:
    FP_SAVE
    FP_BEGIN .Lfp_rr_slow
    /* The caller this thread owes a reply: blocked on it, through a Call. */
    mov r13, [rbp + TCB_REPLY_TO]
    test r13, r13
    jz .Lfp_rr_slow
    cmp qword ptr [rbp + TCB_BOUND_NTFN], 0
    jne .Lfp_rr_slow
    cmp qword ptr [r14 + r13 + TCB_STATE], STATE_BLOCKED_ON_REPLY
    jne .Lfp_rr_slow
    cmp [r14 + r13 + TCB_BLOCKED_ON], rbx
    jne .Lfp_rr_slow
    test byte ptr [r14 + r13 + TCB_IPC_FLAGS + IPC_IS_FAULT_BIT / 8], 1 << (IPC_IS_FAULT_BIT % 8)
    jnz .Lfp_rr_slow
    FP_NONE_ABOVE r14 + r13, .Lfp_rr_slow
    FP_VSPACE r14 + r13, .Lfp_rr_slow
    FP_LOOKUP .Lfp_rr_slow
    mov ecx, [r14 + rax]
    and ecx, TAG_MASK | (RIGHT_READ << RIGHTS_SHIFT)
    cmp ecx, TAG_ENDPOINT | (RIGHT_READ << RIGHTS_SHIFT)
    jne .Lfp_rr_slow
    /* Nobody is sending on the endpoint (r11: physical, rcx: its tail word). */
    mov r11, [r14 + rax + 8 * WORD_ADDR]
    mov rcx, [r14 + r11 + 8]
    mov eax, ecx
    and eax, EP_STATE_MASK
    cmp eax, EP_SENDING
    je .Lfp_rr_slow
    /* Commit: queue this thread last on the endpoint (rax). */
    lea rax, [r14 + r11]
    and rcx, -(EP_STATE_MASK + 1)
    jnz 1f
    mov [rax], rbx
    jmp 2f
1:
    mov [r14 + rcx + TCB_EP_NEXT], rbx
2:
    mov rdi, rbx
    or rdi, EP_RECEIVING
    mov [rax + 8], rdi
    mov [rbp + TCB_EP_PREV], rcx
    mov qword ptr [rbp + TCB_EP_NEXT], 0
    mov qword ptr [rbp + TCB_REPLY_TO], 0
    mov qword ptr [rbp + TCB_STATE], STATE_BLOCKED_ON_RECEIVE
    mov [rbp + TCB_BLOCKED_ON], r11
    mov qword ptr [r14 + r13 + TCB_STATE], STATE_RUNNING
    mov qword ptr [r14 + r13 + TCB_BLOCKED_ON], 0
    /* A reply carries no badge. */
    xor edi, edi
    FP_SWITCH_AND_EXIT
.Lfp_rr_slow:
    FP_SLOWPATH

/* Yield with no ready thread at or above this thread's priority changes nothing: return
 * at once (result 0, rcx and r11 zero, as the general path returns; every other
 * register untouched). Entered with only rip, rflags and rsp stored; rax, rcx and r11
 * are free. */
.global fastpath_yield_entry
fastpath_yield_entry:
    movabs rcx, PHYS_MAP_BASE
    add rcx, [rip + {sched} + SCHED_CURRENT]
    movzx eax, byte ptr [rcx + TCB_PRIORITY]
    mov ecx, eax
    shr ecx, 6
    mov r11, [rip + {sched} + SCHED_SUMMARY]
    shr r11, cl
    cmp r11, 1
    ja .Lfp_yield_slow
    mov r11, [{sched} + SCHED_BITMAP + rcx * 8]
    mov ecx, eax
    shr r11, cl
    test r11, r11
    jnz .Lfp_yield_slow
    lea rsp, [rsp + FRAME_RIP - FRAME_VECTOR]
    xor ecx, ecx
    xor r11d, r11d
    xor eax, eax
    iretq
.Lfp_yield_slow:
    mov eax, SYS_YIELD
    jmp syscall_slowpath

.popsection
