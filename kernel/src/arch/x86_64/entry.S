/* Trap entry and exit: CPU exception stubs, the `syscall` entry and the common return
 * to user mode. Every path builds the same TrapFrame (see trap.rs) on the kernel stack. */

.set USER_CS, 0x23
.set USER_SS, 0x1b
.set SYSCALL_VECTOR, 0x100

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

.macro EXC_ERR vec
.balign 16
    push \vec
    jmp exception_common
.endm

.section .text.trap_entry, "ax"
.code64
/* 32 stubs, 16 bytes apart, starting at exception_stubs. */
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

exception_common:
    PUSH_GPRS
    cld
    mov rdi, rsp
    call exception_dispatch
    jmp trap_return

/* syscall: rcx = user rip, r11 = user rflags, rsp = user rsp. Interrupts are masked by
 * SFMASK. Single CPU: the user rsp is parked in a scratch word until it is on the frame. */
.global syscall_entry
syscall_entry:
    mov [rip + syscall_user_rsp], rsp
    mov rsp, [rip + syscall_kernel_rsp]
    push USER_SS
    push qword ptr [rip + syscall_user_rsp]
    push r11
    push USER_CS
    push rcx
    push 0
    push SYSCALL_VECTOR
    PUSH_GPRS
    cld
    mov rdi, rsp
    call syscall_dispatch
    jmp trap_return

/* Restore a TrapFrame at rsp and return with iretq. */
.global trap_return
trap_return:
    POP_GPRS
    add rsp, 16
    iretq

/* enter_user(frame: *const TrapFrame) -> ! : switch to the frame and return to it. */
.global enter_user
enter_user:
    mov rsp, rdi
    jmp trap_return

.section .bss.syscall_scratch, "aw", @nobits
.balign 8
.global syscall_user_rsp
syscall_user_rsp: .skip 8
.global syscall_kernel_rsp
syscall_kernel_rsp: .skip 8
