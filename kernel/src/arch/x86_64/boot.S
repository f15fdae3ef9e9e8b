/* 32-bit entry for PVH (QEMU -kernel) and multiboot2 (GRUB): build early page tables,
 * enter long mode, jump to the higher half and call kernel_entry(info_paddr, protocol).
 * Early tables: identity 0..4 GiB, the same at the direct map (PML4[256]) and
 * 0..2 GiB at KERNEL_VMA (PML4[511], PDPT[510..511]), all 2 MiB pages. */

.set KERNEL_VMA,        0xFFFFFFFF80000000
.set MB2_MAGIC,         0xE85250D6
.set MB2_ARCH_I386,     0
.set MB2_BOOT_MAGIC,    0x36D76289
.set PROTOCOL_PVH,      1
.set PROTOCOL_MB2,      2

.section .multiboot2, "a"
.balign 8
mb2_header:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header
    .long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
    /* end tag */
    .balign 8
    .word 0
    .word 0
    .long 8
mb2_header_end:

.section .note.pvh, "a"
.balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start32

.section .boot.text, "ax"
.code32
.global pvh_start32
pvh_start32:
    cli
    cld
    mov esi, PROTOCOL_PVH
    jmp boot_common32

.global mb2_start32
mb2_start32:
    cli
    cld
    cmp eax, MB2_BOOT_MAGIC
    jne boot_fail32
    mov esi, PROTOCOL_MB2

boot_common32:
    /* ebx = boot info pointer, esi = protocol; both live until kernel_entry. */
    mov esp, offset boot_stack_top

    /* Zero the early tables (7 pages). */
    mov edi, offset boot_tables_start
    mov ecx, 7 * 1024          /* 7 pages of dwords: boot_tables_start..end */
    xor eax, eax
    rep stosd

    /* 4 page directories: 2048 x 2 MiB = 4 GiB, present|writable|huge. */
    mov edi, offset boot_pd
    mov eax, 0x83
    xor edx, edx
    mov ecx, 2048
1:
    mov [edi], eax
    mov [edi + 4], edx
    add eax, 0x200000
    adc edx, 0
    add edi, 8
    loop 1b

    /* Low PDPT: 4 entries -> the 4 PDs. */
    mov edi, offset boot_pdpt_low
    mov eax, offset boot_pd
    or eax, 0x3
    mov ecx, 4
2:
    mov [edi], eax
    add eax, 0x1000
    add edi, 8
    loop 2b

    /* High PDPT: entries 510, 511 -> PDs 0, 1 (phys 0..2 GiB at KERNEL_VMA). */
    mov edi, offset boot_pdpt_high
    mov eax, offset boot_pd
    or eax, 0x3
    mov [edi + 510 * 8], eax
    add eax, 0x1000
    mov [edi + 511 * 8], eax

    /* PML4: [0] identity, [256] direct map, [511] kernel. */
    mov edi, offset boot_pml4
    mov eax, offset boot_pdpt_low
    or eax, 0x3
    mov [edi], eax
    mov [edi + 256 * 8], eax
    mov eax, offset boot_pdpt_high
    or eax, 0x3
    mov [edi + 511 * 8], eax

    /* PAE on, load CR3, EFER.LME|NXE, paging + write protect on. */
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | 1
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    /* ljmp 0x08:boot_long_mode (ptr16:32 far jump, encoded by hand) */
    .byte 0xea
    .long boot_long_mode
    .word 0x08

boot_fail32:
    /* Not started by a loader we know: leave QEMU with the bad-boot-input code. */
    mov dx, 0xf4
    mov eax, 0x72
    out dx, eax
3:
    hlt
    jmp 3b

.code64
boot_long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ax, ax
    mov fs, ax
    mov gs, ax
    movabs rax, offset boot_higher_half
    jmp rax

.section .boot.data, "a"
.balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 64-bit code */
    .quad 0x00CF92000000FFFF    /* data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

.section .boot.bss, "aw", @nobits
.balign 4096
boot_tables_start:
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4 * 4096
boot_tables_end:
boot_stack:     .skip 4096
boot_stack_top:

.section .text.boot_higher_half, "ax"
.code64
boot_higher_half:
    /* Paint the boot stack (mmu::BOOT_STACK_PAINT), so boot can log how deep it went. */
    cld
    lea rdi, [rip + kernel_boot_stack]
    mov ecx, 64 * 1024 / 8
    movabs rax, 0x5354414b5354414b
    rep stosq
    lea rsp, [rip + kernel_boot_stack_top]
    xor ebp, ebp
    mov edi, ebx
    /* esi already holds the protocol */
    call kernel_entry
4:
    cli
    hlt
    jmp 4b

.section .bss.kernel_boot_stack, "aw", @nobits
.balign 4096
/* Left unmapped by the final kernel page tables: an overflow faults (and the double
 * fault handler, on its own IST stack, reports it) instead of corrupting memory. */
.global kernel_boot_stack_guard
kernel_boot_stack_guard: .skip 4096
/* 64 KiB (mmu::BOOT_STACK_BYTES): discovery's tables live in boot memory, not here. */
kernel_boot_stack:  .skip 64 * 1024
.global kernel_boot_stack_top
kernel_boot_stack_top:

/* The stack for traps and system calls from user mode, with its own unmapped guard
 * page: a kernel path that recursed too deep (e.g. deleting a deeply nested chain of
 * CNodes) takes a double fault and stops the system instead of overwriting .bss. */
.balign 4096
.global kernel_trap_stack_guard
kernel_trap_stack_guard: .skip 4096
kernel_trap_stack:  .skip 32 * 1024
.global kernel_trap_stack_top
kernel_trap_stack_top:
