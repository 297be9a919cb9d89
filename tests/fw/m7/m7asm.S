/* Assembly helpers for m7test.c: exact register contents around exception entry/return. */
    .syntax unified
    .cpu cortex-m7
    .fpu fpv5-d16
    .thumb

/* uint32_t stack_check(volatile uint32_t *pend_reg, uint32_t pend_value)
   Loads magic values into r0-r3, r12, lr and APSR, pends an interrupt with one store (taken right
   after it), then returns a bit mask of registers that came back wrong. APSR -> g_apsr_after. */
    .global stack_check
    .type stack_check, %function
stack_check:
    push {r4-r7, lr}
    mov r4, r0
    mov r5, r1
    ldr r0, =0x10101010
    ldr r1, =0x21212121
    ldr r2, =0x32323232
    ldr r3, =0x43434343
    ldr r12, =0xC5C5C5C5
    ldr lr, =0xE1E1E1E1
    ldr r6, =0xF8000000
    msr APSR_nzcvq, r6
    .global stack_check_pend
stack_check_pend:
    str r5, [r4]
    nop
    nop
    mrs r7, APSR
    movs r6, #0
    ldr r5, =0x10101010
    cmp r0, r5
    it ne
    orrne r6, r6, #1
    ldr r5, =0x21212121
    cmp r1, r5
    it ne
    orrne r6, r6, #2
    ldr r5, =0x32323232
    cmp r2, r5
    it ne
    orrne r6, r6, #4
    ldr r5, =0x43434343
    cmp r3, r5
    it ne
    orrne r6, r6, #8
    ldr r5, =0xC5C5C5C5
    cmp r12, r5
    it ne
    orrne r6, r6, #16
    ldr r5, =0xE1E1E1E1
    cmp lr, r5
    it ne
    orrne r6, r6, #32
    ldr r5, =g_apsr_after
    str r7, [r5]
    mov r0, r6
    pop {r4-r7, pc}

/* void fp_pend_check(const uint32_t in[17], uint32_t out[17], volatile uint32_t *pend, uint32_t v)
   s0-s15 and FPSCR <- in; pend (taken right after the store); out <- s0-s15 and FPSCR. */
    .global fp_pend_check
    .type fp_pend_check, %function
fp_pend_check:
    vldm r0, {s0-s15}
    ldr r12, [r0, #64]
    vmsr fpscr, r12
    str r3, [r2]
    nop
    nop
    vstm r1, {s0-s15}
    vmrs r12, fpscr
    str r12, [r1, #64]
    bx lr

/* void fp_clobber(const uint32_t in[17]): overwrite s0-s15 and FPSCR. */
    .global fp_clobber
    .type fp_clobber, %function
fp_clobber:
    vldm r0, {s0-s15}
    ldr r12, [r0, #64]
    vmsr fpscr, r12
    bx lr

/* uint32_t fault_load(uint32_t addr) / void fault_store(uint32_t addr, uint32_t v):
   leaf functions whose only access may fault (the handler resumes at the caller). */
    .global fault_load, fault_load_insn
    .type fault_load, %function
fault_load:
fault_load_insn:
    ldr r0, [r0]
    bx lr

    .global fault_store, fault_store_insn
    .type fault_store, %function
fault_store:
fault_store_insn:
    str r1, [r0]
    nop
    bx lr

/* void do_udf(void): UDF #7 (UsageFault UNDEFINSTR). */
    .global do_udf, do_udf_insn
    .type do_udf, %function
do_udf:
do_udf_insn:
    udf #7
    bx lr

/* void do_invstate(void): BX to an even address (UsageFault INVSTATE at the target). */
    .global do_invstate, invstate_target
    .type do_invstate, %function
do_invstate:
    ldr r0, =invstate_target
    bic r0, r0, #1
    bx r0
    .balign 4
invstate_target:
    bx lr

/* uint32_t svc_call5(uint32_t a, uint32_t b): SVC #5; the handler returns a + b in r0. */
    .global svc_call5, svc_call5_ret
    .type svc_call5, %function
svc_call5:
    svc #5
svc_call5_ret:
    bx lr

/* void svc_start(void): SVC #1 (the handler starts the PSP task). */
    .global svc_start
    .type svc_start, %function
svc_start:
    svc #1
    bx lr

/* void do_yield_wfe_bkpt(void) */
    .global do_yield, do_wfe, do_bkpt, do_bkpt_insn
    .type do_yield, %function
do_yield:
    yield
    bx lr
    .type do_wfe, %function
do_wfe:
    wfe
    bx lr
    .type do_bkpt, %function
do_bkpt:
do_bkpt_insn:
    bkpt #0x42
    bx lr

/* uint32_t load_loop(const volatile uint32_t *p, uint32_t n): n loads of *p. */
    .global load_loop
    .type load_loop, %function
load_loop:
    movs r2, #0
1:  ldr r3, [r0]
    add r2, r2, r3
    subs r1, r1, #1
    bne 1b
    mov r0, r2
    bx lr
