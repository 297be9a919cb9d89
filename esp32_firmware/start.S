/*
 * Reset entry, trap entry and the GC burn loop.
 *
 * mtvec is in direct mode: every trap enters trap_entry, which saves the caller-saved registers and
 * calls trap_dispatch(mcause, mepc, mtval, frame) (trap.c); interrupts are not nested.
 */
    .equ TRAP_FRAME, 64             /* 16 registers, keeps sp 16-byte aligned */
    .equ MSTATUS_MIE, 8

    .section .text.start, "ax"
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, __stack_top
    csrw    mie, zero
    csrci   mstatus, MSTATUS_MIE
    la      t0, trap_entry
    csrw    mtvec, t0               /* direct mode: trap_entry is 4-byte aligned, MODE = 0 */

    /* .data: copy from its load address in IROM to DRAM */
    la      a0, __data_start
    la      a1, __data_end
    la      a2, __data_load
1:  bgeu    a0, a1, 2f
    lw      t0, 0(a2)
    sw      t0, 0(a0)
    addi    a0, a0, 4
    addi    a2, a2, 4
    j       1b
2:
    /* .bss: zero */
    la      a0, __bss_start
    la      a1, __bss_end
3:  bgeu    a0, a1, 4f
    sw      zero, 0(a0)
    addi    a0, a0, 4
    j       3b
4:
    /* paint the stack for the high-water mark (nothing is on it yet) */
    la      a0, __stack_bottom
    la      a1, __stack_top
    li      t0, 0xA5A5A5A5
5:  bgeu    a0, a1, 6f
    sw      t0, 0(a0)
    addi    a0, a0, 4
    j       5b
6:
    call    main
7:  wfi
    j       7b
    .size _start, . - _start

    .section .text.trap, "ax"
    .balign 4
    .globl trap_entry
    .type trap_entry, @function
trap_entry:
    addi    sp, sp, -TRAP_FRAME
    sw      ra,  0(sp)
    sw      t0,  4(sp)
    sw      t1,  8(sp)
    sw      t2, 12(sp)
    sw      a0, 16(sp)
    sw      a1, 20(sp)
    sw      a2, 24(sp)
    sw      a3, 28(sp)
    sw      a4, 32(sp)
    sw      a5, 36(sp)
    sw      a6, 40(sp)
    sw      a7, 44(sp)
    sw      t3, 48(sp)
    sw      t4, 52(sp)
    sw      t5, 56(sp)
    sw      t6, 60(sp)
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    mv      a3, sp
    call    trap_dispatch           /* returns the pc to resume at */
    csrw    mepc, a0
    lw      ra,  0(sp)
    lw      t0,  4(sp)
    lw      t1,  8(sp)
    lw      t2, 12(sp)
    lw      a0, 16(sp)
    lw      a1, 20(sp)
    lw      a2, 24(sp)
    lw      a3, 28(sp)
    lw      a4, 32(sp)
    lw      a5, 36(sp)
    lw      a6, 40(sp)
    lw      a7, 44(sp)
    lw      t3, 48(sp)
    lw      t4, 52(sp)
    lw      t5, 56(sp)
    lw      t6, 60(sp)
    addi    sp, sp, TRAP_FRAME
    mret
    .size trap_entry, . - trap_entry

    /* void gc_burn_loop(uint32_t iterations): the GC pause's CPU cost, 2 instructions per iteration */
    .section .text.gc_burn_loop, "ax"
    .globl gc_burn_loop
    .type gc_burn_loop, @function
gc_burn_loop:
    beqz    a0, 2f
1:  addi    a0, a0, -1
    bnez    a0, 1b
2:  ret
    .size gc_burn_loop, . - gc_burn_loop

    /*
     * void cpu_idle(const volatile uint32_t *wake): sleep until an interrupt unless *wake is set.
     * Runs with interrupts enabled (mstatus.MIE = 1). The race between the check and the WFI is
     * closed in trap_dispatch: an interrupt taken with mepc == cpu_idle_wfi resumes after the WFI,
     * so the wake-up it signals is never slept through.
     */
    .section .text.cpu_idle, "ax"
    .globl cpu_idle
    .globl cpu_idle_wfi
    .type cpu_idle, @function
cpu_idle:
    lw      t0, 0(a0)
    bnez    t0, 1f
cpu_idle_wfi:
    wfi
1:  ret
    .size cpu_idle, . - cpu_idle
