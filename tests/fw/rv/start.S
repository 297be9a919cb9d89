/* Startup and trap entry for the RV32 test firmwares.
 * Direct mode: mtvec = trap_entry. With -DVECTORED: mtvec = vector_table | 1, a 32-entry table of
 * 4-byte jumps on a 256-byte boundary (as the real C3 needs); each used entry passes its slot number
 * to the C handler so tests can see which entry the core took. */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    la t0, __data_load
    la t1, __data_start
    la t2, __data_end
1:  bgeu t1, t2, 2f
    lw t3, 0(t0)
    sw t3, 0(t1)
    addi t0, t0, 4
    addi t1, t1, 4
    j 1b
2:  la t1, __bss_start
    la t2, __bss_end
3:  bgeu t1, t2, 4f
    sw zero, 0(t1)
    addi t1, t1, 4
    j 3b
4:
#ifdef VECTORED
    la t0, vector_table
    ori t0, t0, 1
#else
    la t0, trap_entry
#endif
    csrw mtvec, t0
    call main
5:  wfi
    j 5b

/* Save the caller-saved registers, call trap_handler(mcause, mepc, slot), restore, mret. */
    .text
    .globl trap_entry
    .align 2
trap_entry:
    addi sp, sp, -64
    sw a2, 40(sp)
    li a2, -1
trap_common:
    sw ra, 0(sp)
    sw t0, 4(sp)
    sw t1, 8(sp)
    sw t2, 12(sp)
    sw t3, 16(sp)
    sw t4, 20(sp)
    sw t5, 24(sp)
    sw t6, 28(sp)
    sw a0, 32(sp)
    sw a1, 36(sp)
    sw a3, 44(sp)
    sw a4, 48(sp)
    sw a5, 52(sp)
    sw a6, 56(sp)
    sw a7, 60(sp)
    csrr a0, mcause
    csrr a1, mepc
    call trap_handler
    lw ra, 0(sp)
    lw t0, 4(sp)
    lw t1, 8(sp)
    lw t2, 12(sp)
    lw t3, 16(sp)
    lw t4, 20(sp)
    lw t5, 24(sp)
    lw t6, 28(sp)
    lw a0, 32(sp)
    lw a1, 36(sp)
    lw a2, 40(sp)
    lw a3, 44(sp)
    lw a4, 48(sp)
    lw a5, 52(sp)
    lw a6, 56(sp)
    lw a7, 60(sp)
    addi sp, sp, 64
    mret

#ifdef VECTORED
.macro VSTUB n
vstub_\n:
    addi sp, sp, -64
    sw a2, 40(sp)
    li a2, \n
    j trap_common
.endm
    VSTUB 0
    VSTUB 3
    VSTUB 7
    VSTUB 11
    VSTUB 99

    .section .vectors, "ax"
    .option push
    .option norvc
    .balign 256
    .globl vector_table
vector_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .if \n == 0 || \n == 3 || \n == 7 || \n == 11
    j vstub_\n
    .else
    j vstub_99
    .endif
    .endr
    .option pop
#endif
