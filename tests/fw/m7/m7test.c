/* Cortex-M7 core test scenarios for tests/test_cortexm.py.

   The test patches g_test (in .config) before reset, runs until g_done == DONE, and checks what the
   firmware recorded in g_out[] / g_log[]. Indices are listed per scenario below (O_* names). */
#include "m7.h"

#define DONE 0xD0E5D0E5u
enum {
    T_NEST = 1, T_TAIL, T_MASK, T_PRIGROUP, T_FP, T_BUSFAULT, T_USAGE, T_SVC_PENDSV, T_PSP,
    T_RESET, T_MPU, T_MPU_COST, T_LOOP_BASE, T_LOCKUP, T_VTOR, T_SYSTICK, T_WFE_BKPT,
};

__attribute__((section(".config"), used)) volatile const uint32_t g_test = 0;

volatile uint32_t g_done;
volatile uint32_t g_out[96];
volatile uint32_t g_log[32];
volatile uint32_t g_nlog;
volatile uint32_t g_counts[8];
volatile uint32_t g_progress;
volatile uint32_t g_apsr_after;
volatile uint32_t g_fault_action;    /* 0 hang, 1 resume at the caller (stacked LR), 3 fault again */
volatile uint32_t g_faults;
volatile uint32_t g_ticks;
volatile uint32_t g_data_var = 7;
volatile uint32_t g_bss_marker;

struct noinit { uint32_t magic, boots, marker_before; };
__attribute__((section(".noinit"))) volatile struct noinit g_ni;

uint32_t stack_check(volatile uint32_t *pend_reg, uint32_t pend_value);
void fp_pend_check(const uint32_t in[17], uint32_t out[17], volatile uint32_t *pend, uint32_t v);
void fp_clobber(const uint32_t in[17]);
uint32_t fault_load(uint32_t addr);
void fault_store(uint32_t addr, uint32_t v);
void do_udf(void);
void do_invstate(void);
uint32_t svc_call5(uint32_t a, uint32_t b);
void svc_start(void);
void do_yield(void);
void do_wfe(void);
void do_bkpt(void);
uint32_t load_loop(const volatile uint32_t *p, uint32_t n);

static void logv(uint32_t v) { g_log[g_nlog++ & 31u] = v; }
static void spin(uint32_t n) { for (volatile uint32_t i = 0; i < n; i++) { g_progress++; } }
static void pend(uint32_t irq) { NVIC_STIR = irq; dsb_isb(); }
static void prio(uint32_t irq, uint32_t p) { NVIC_IPR(irq) = (uint8_t)p; }
static void enable(uint32_t irq) { NVIC_ISER(irq >> 5) = 1u << (irq & 31u); }
static uint32_t get_primask(void) { uint32_t v; __asm volatile("mrs %0, primask" : "=r"(v)); return v; }
static uint32_t get_basepri(void) { uint32_t v; __asm volatile("mrs %0, basepri" : "=r"(v)); return v; }

/* ---- FP tables ---------------------------------------------------------------------------- */
static const uint32_t fp_thread_in[17] = {
    0x3F800000, 0x40000000, 0x40400000, 0x40800000, 0x40A00000, 0x40C00000, 0x40E00000,
    0x41000000, 0x41100000, 0x41200000, 0x41300000, 0x41400000, 0x41500000, 0x41600000,
    0x41700000, 0x41800000, 0xA0C00000 };
static const uint32_t fp_irq_in[17] = {
    0xC1000001, 0xC1000002, 0xC1000003, 0xC1000004, 0xC1000005, 0xC1000006, 0xC1000007,
    0xC1000008, 0xC1000009, 0xC100000A, 0xC100000B, 0xC100000C, 0xC100000D, 0xC100000E,
    0xC100000F, 0xC1000010, 0x50400000 };
static const uint32_t fp_junk[17] = {
    0xDEAD0000, 0xDEAD0001, 0xDEAD0002, 0xDEAD0003, 0xDEAD0004, 0xDEAD0005, 0xDEAD0006,
    0xDEAD0007, 0xDEAD0008, 0xDEAD0009, 0xDEAD000A, 0xDEAD000B, 0xDEAD000C, 0xDEAD000D,
    0xDEAD000E, 0xDEAD000F, 0x00000000 };
uint32_t g_fp_thread_out[17];
uint32_t g_fp_irq_out[17];
uint32_t g_fp_frame[26];

/* ---- PSP task ---------------------------------------------------------------------------- */
uint32_t g_task_stack[256] __attribute__((aligned(8)));
volatile uint32_t g_task_psp;
volatile uint32_t g_start_task;

/* ---- MPU targets --------------------------------------------------------------------------- */
volatile uint32_t g_guard[256] __attribute__((aligned(1024)));          /* 1 KiB, no access */
volatile uint32_t g_ro[256] __attribute__((aligned(1024)));             /* 1 KiB, read-only */
struct small_page { uint32_t neighbour[8]; uint32_t guard[8]; uint32_t after[240]; };
volatile struct small_page g_small __attribute__((aligned(1024)));      /* 32-byte guard inside */
uint16_t g_ramfn[512] __attribute__((aligned(1024)));                   /* 1 KiB, XN */

/* ---- VTOR -------------------------------------------------------------------------------- */
uint32_t g_ram_vectors[64] __attribute__((aligned(256)));

/* ---- handlers ---------------------------------------------------------------------------- */
#define WRAP(name, cfn, arg)                                                   \
    __attribute__((naked)) void name(void)                                     \
    {                                                                          \
        __asm volatile("mov r0, lr\n tst r0, #4\n ite eq\n mrseq r1, msp\n"    \
                       " mrsne r1, psp\n movs r2, #" #arg "\n b " #cfn);       \
    }
void irq_c(uint32_t exc_return, uint32_t *frame, uint32_t n);
void fault_c(uint32_t exc_return, uint32_t *frame, uint32_t exc);
void svc_c(uint32_t exc_return, uint32_t *frame, uint32_t unused);
void pendsv_c(uint32_t exc_return, uint32_t *frame, uint32_t unused);
WRAP(IRQ0_Handler, irq_c, 0) WRAP(IRQ1_Handler, irq_c, 1) WRAP(IRQ2_Handler, irq_c, 2)
WRAP(IRQ3_Handler, irq_c, 3) WRAP(IRQ4_Handler, irq_c, 4) WRAP(IRQ5_Handler, irq_c, 5)
WRAP(IRQ6_Handler, irq_c, 6) WRAP(IRQ7_Handler, irq_c, 7)
WRAP(HardFault_Handler, fault_c, 3) WRAP(MemManage_Handler, fault_c, 4)
WRAP(BusFault_Handler, fault_c, 5) WRAP(UsageFault_Handler, fault_c, 6)
WRAP(PendSV_Handler, pendsv_c, 14)

/* SVC #1 while g_start_task is set starts the PSP task (EXC_RETURN 0xFFFFFFFD) */
__attribute__((naked)) void SVC_Handler(void)
{
    __asm volatile(
        "ldr r2, =g_start_task\n ldr r3, [r2]\n cbz r3, 1f\n"
        "movs r3, #0\n str r3, [r2]\n"
        "ldr r0, =g_task_psp\n ldr r0, [r0]\n msr psp, r0\n"
        "ldr lr, =0xFFFFFFFD\n bx lr\n"
        "1: mov r0, lr\n tst r0, #4\n ite eq\n mrseq r1, msp\n mrsne r1, psp\n b svc_c\n");
}

void SysTick_Handler(void) { g_ticks++; }

static void alt_irq7(void) { g_out[40] = 0x7A17; g_counts[7] += 100; }

void irq_c(uint32_t exc_return, uint32_t *frame, uint32_t n)
{
    uint32_t ipsr = get_ipsr();
    g_counts[n]++;
    switch (g_test) {
    case T_NEST:
        logv(0x100 + ipsr);
        if (n == 0) {
            g_out[2] = exc_return; g_out[3] = frame[7];
            pend(1);
        } else if (n == 1) {
            g_out[4] = exc_return; g_out[5] = frame[7]; g_out[6] = frame[6];
            pend(2);
        } else if (n == 2) {
            g_out[7] = exc_return; g_out[8] = frame[7]; g_out[9] = SCB_ICSR;
            g_out[10] = NVIC_IABR(0); g_out[11] = frame[6];
        }
        logv(0x200 + ipsr);
        break;
    case T_TAIL:
        logv(0x100 + ipsr);
        if (n == 3) {
            g_out[1] = g_progress; g_out[2] = get_msp(); g_out[3] = exc_return;
            NVIC_ISPR(0) = (1u << 4) | (1u << 5);      /* same and lower priority: wait */
            g_out[4] = g_counts[4];                   /* 0: no preemption */
        } else if (n == 4) {
            g_out[5] = g_progress; g_out[6] = get_msp(); g_out[7] = exc_return;
            g_out[8] = frame[6];
        } else if (n == 5) {
            g_out[9] = g_progress; g_out[10] = exc_return;
        }
        break;
    case T_PRIGROUP:
        logv(0x100 + ipsr);
        if (n == 0 && g_out[1] == 0) pend(1);
        logv(0x200 + ipsr);
        break;
    case T_FP:
        if (n == 0) {
            g_out[1] = exc_return; g_out[2] = get_control();
            for (int i = 0; i < 26; i++) g_fp_frame[i] = frame[i];
            fp_pend_check(fp_irq_in, g_fp_irq_out, &NVIC_STIR, 1);
            g_out[3] = get_control();
        } else if (n == 1) {
            g_out[4] = exc_return;
            fp_clobber(fp_junk);
        }
        break;
    case T_PSP:
        if (n == 2) {
            g_out[10] = exc_return; g_out[11] = (uint32_t)frame; g_out[12] = get_psp();
            g_out[13] = get_msp(); g_out[14] = frame[6]; g_out[15] = get_control();
        } else if (n == 3) {                     /* the task used FP: extended frame on PSP */
            g_out[16] = exc_return; g_out[17] = (uint32_t)frame;
            fp_clobber(fp_junk);
        }
        break;
    default:
        break;
    }
}

void fault_c(uint32_t exc_return, uint32_t *frame, uint32_t exc)
{
    uint32_t k = 8u * (g_faults++ & 7u);        /* 8 words per fault in g_out[48..111) */
    volatile uint32_t *o = &g_out[32 + k];
    if (32 + k + 8 > 96) o = &g_out[88];
    o[0] = exc; o[1] = SCB_CFSR; o[2] = SCB_HFSR; o[3] = SCB_BFAR; o[4] = SCB_MMFAR;
    o[5] = frame[6]; o[6] = exc_return; o[7] = SCB_SHCSR;
    SCB_CFSR = 0xFFFFFFFFu;                      /* write-1-to-clear */
    SCB_HFSR = 0xFFFFFFFFu;
    if (g_fault_action == 1) {
        frame[6] = frame[5] & ~1u;               /* resume at the caller of the leaf */
        frame[0] = 0xBADBAD;
        return;
    }
    if (g_fault_action == 3) {
        g_fault_action = 0;
        (void)fault_load(0x60000000u);           /* a fault inside HardFault: lockup */
    }
    for (;;) { }
}

void svc_c(uint32_t exc_return, uint32_t *frame, uint32_t unused)
{
    (void)unused;
    uint32_t num = ((const uint16_t *)frame[6])[-1] & 0xFFu;
    logv(0x300 + num);
    g_out[20] = num; g_out[21] = exc_return; g_out[22] = frame[6]; g_out[23] = get_ipsr();
    if (num == 5) frame[0] = frame[0] + frame[1];
    if (g_test == T_SVC_PENDSV) SCB_ICSR = ICSR_PENDSVSET;   /* lower priority: after the SVC */
    logv(0x400 + num);
}

void pendsv_c(uint32_t exc_return, uint32_t *frame, uint32_t unused)
{
    (void)frame; (void)unused;
    logv(0x500);
    g_counts[6]++;
    g_out[24 + (g_counts[6] & 3u)] = g_progress;
    g_out[29] = SCB_ICSR & 0x1FFu;
    g_out[30] = exc_return;
}

static void task_main(void)
{
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    g_out[1] = get_control(); g_out[2] = sp; g_out[3] = get_psp(); g_out[4] = get_ipsr();
    pend(2);                                      /* IRQ2 stacks on the PSP */
    __asm volatile("mov %0, sp" : "=r"(sp));
    g_out[5] = sp; g_out[6] = get_control();
    g_out[7] = svc_call5(40, 2);                  /* SVC from the PSP thread */
    fp_pend_check(fp_thread_in, g_fp_thread_out, &NVIC_STIR, 3);   /* FP + PSP: 0xFFFFFFED */
    g_out[8] = get_control();
    g_done = DONE;
    for (;;) { }
}

/* ---- scenarios --------------------------------------------------------------------------- */
static void t_nest(void)
{
    prio(0, 0xC0); prio(1, 0x80); prio(2, 0x40);
    enable(0); enable(1); enable(2);
    g_out[0] = stack_check(&NVIC_STIR, 0);
    g_out[1] = g_apsr_after;
}

static void t_tail(void)
{
    prio(3, 0x80); prio(4, 0x80); prio(5, 0xC0);
    enable(3); enable(4); enable(5);
    g_progress = 0;
    NVIC_STIR = 3;
    spin(3000);
    g_out[11] = g_progress;
}

static void t_mask(void)
{
    prio(0, 0x80); prio(1, 0x80); prio(2, 0x20); prio(6, 0x80);
    enable(0); enable(1); enable(2); enable(6);
    irq_disable();
    NVIC_STIR = 0;
    spin(20000);
    g_out[1] = g_counts[0];
    g_out[2] = (SCB_ICSR >> 12) & 0x1FFu;        /* VECTPENDING */
    g_out[3] = NVIC_ISPR(0) & 1u;
    g_out[4] = get_primask();
    irq_enable();                                /* taken at the next slice boundary */
    spin(20000);
    g_out[5] = g_counts[0];
    set_basepri(0x40);
    NVIC_ISPR(0) = (1u << 1) | (1u << 2);
    spin(20000);
    g_out[6] = g_counts[1]; g_out[7] = g_counts[2]; g_out[8] = get_basepri();
    set_basepri(0);
    spin(20000);
    g_out[9] = g_counts[1];
    /* WFI with PRIMASK set: wakes on the pending IRQ6 but does not take it */
    irq_disable();
    g_out[10] = 0xAAAA;
    wfi();
    g_out[11] = g_counts[6];
    g_out[12] = NVIC_ISPR(0) & (1u << 6);
    irq_enable();
    spin(20000);
    g_out[13] = g_counts[6];
}

static void t_prigroup(void)
{
    prio(0, 0x50); prio(1, 0x40);
    enable(0); enable(1);
    SCB_AIRCR = AIRCR_VECTKEY | (5u << 8);       /* group = bits [7:6]: 0x40 and 0x50 tie */
    g_out[2] = SCB_AIRCR;
    pend(0);                                     /* IRQ0 pends IRQ1: no preemption */
    spin(100);
    logv(0xAAA);
    g_out[1] = 1;
    NVIC_ISPR(0) = 3u;                           /* both: subpriority picks IRQ1 first */
    spin(100);
    logv(0xBBB);
    g_out[1] = 0;
    SCB_AIRCR = AIRCR_VECTKEY | (0u << 8);       /* 4 group bits: IRQ1 preempts IRQ0 */
    pend(0);
    spin(100);
}

static void t_fp(void)
{
    prio(0, 0xC0); prio(1, 0x40);
    enable(0); enable(1);
    g_out[0] = get_control();
    fp_pend_check(fp_thread_in, g_fp_thread_out, &NVIC_STIR, 0);
    g_out[5] = get_control();
}

static void t_busfault(void)
{
    g_fault_action = 1;
    g_out[0] = fault_load(0x60000000u);          /* BusFault disabled: HardFault FORCED */
    SCB_SHCSR |= SHCSR_BUSFAULTENA;
    g_out[1] = fault_load(0x60000010u);          /* BusFault handler */
    irq_disable();
    g_out[2] = fault_load(0x60000020u);          /* PRIMASK: BusFault cannot preempt -> HardFault */
    irq_enable();
    fault_store(0x60000030u, 1);                 /* store: imprecise BusFault */
    g_out[3] = g_faults;
}

static void t_usage(void)
{
    g_fault_action = 1;
    SCB_SHCSR |= SHCSR_USGFAULTENA;
    do_udf();                                    /* UsageFault UNDEFINSTR */
    do_invstate();                               /* UsageFault INVSTATE */
    SCB_SHCSR &= ~SHCSR_USGFAULTENA;
    do_udf();                                    /* HardFault FORCED, CFSR.UNDEFINSTR */
    g_out[0] = g_faults;
}

static void t_svc_pendsv(void)
{
    SCB_SHPR(14) = 0xF0;                         /* PendSV lowest */
    g_out[0] = svc_call5(0x1230, 4);
    g_progress = 1;
    SCB_ICSR = ICSR_PENDSVSET;                   /* taken right after the store */
    g_progress = 2;
    dsb_isb();
    g_out[1] = g_progress;
    g_fault_action = 1;
    irq_disable();
    g_out[2] = svc_call5(1, 2);                  /* SVC with PRIMASK set: HardFault FORCED */
    irq_enable();
}

static void t_psp(void)
{
    prio(2, 0x80); enable(2);
    prio(3, 0x80); enable(3);
    uint32_t *sp = &g_task_stack[256 - 8];
    sp[0] = 0xA0; sp[1] = 0xA1; sp[2] = 0xA2; sp[3] = 0xA3; sp[4] = 0xAC;
    sp[5] = 0xFFFFFFFFu; sp[6] = (uint32_t)task_main & ~1u; sp[7] = 1u << 24;
    g_task_psp = (uint32_t)sp;
    g_out[0] = get_msp();
    g_start_task = 1;
    svc_start();
    for (;;) { }                                 /* not reached */
}

static void t_reset(void)
{
    if (g_ni.magic != 0xB007B007u) {
        g_ni.magic = 0xB007B007u;
        g_ni.boots = 0;
    }
    g_ni.boots++;
    if (g_ni.boots == 1) {
        g_bss_marker = 0x55AA;
        g_data_var = 99;
        g_ni.marker_before = g_bss_marker;
        SCB_SHCSR |= SHCSR_USGFAULTENA;
        SCB_VTOR = (uint32_t)g_ram_vectors;
        set_basepri(0x40);
        SYST_RVR = 1000; SYST_CSR = 7;
        irq_disable();
        SCB_AIRCR = AIRCR_VECTKEY | (3u << 8) | AIRCR_SYSRESETREQ;
        for (;;) { }
    }
    g_out[0] = g_ni.boots; g_out[1] = g_bss_marker; g_out[2] = g_data_var;
    g_out[3] = g_ni.marker_before; g_out[4] = SCB_VTOR; g_out[5] = SCB_SHCSR;
    g_out[6] = get_basepri(); g_out[7] = get_primask(); g_out[8] = SYST_CSR & 3u;
    g_out[9] = (SCB_AIRCR >> 8) & 7u; g_out[10] = get_msp();
}

static void mpu_region(uint32_t n, uint32_t base, uint32_t size_log2, uint32_t ap, uint32_t xn)
{
    MPU_RNR = n;
    MPU_RBAR = base;
    MPU_RASR = (xn << 28) | (ap << 24) | (1u << 19) /* TEX=001 normal NC */ |
               ((size_log2 - 1u) << 1) | 1u;
}

static void t_mpu(void)
{
    g_fault_action = 1;
    SCB_SHCSR |= SHCSR_MEMFAULTENA;
    mpu_region(0, (uint32_t)g_guard, 10, 0, 1);
    mpu_region(1, (uint32_t)g_ro, 10, 6, 1);
    mpu_region(2, (uint32_t)g_small.guard, 5, 0, 1);
    mpu_region(3, (uint32_t)g_ramfn, 10, 3, 1);
    g_ramfn[0] = 0x4770;                         /* bx lr */
    MPU_CTRL = 5;                                /* ENABLE | PRIVDEFENA */
    dsb_isb();
    g_out[0] = fault_load((uint32_t)&g_guard[3]);            /* DACCVIOL, MMFAR */
    g_out[1] = fault_load((uint32_t)&g_ro[5]);               /* read-only: read is fine */
    fault_store((uint32_t)&g_ro[6], 0x1234);                 /* ... write faults */
    g_small.neighbour[7] = 0x77;                             /* same 1 KiB page, allowed */
    g_small.after[0] = 0x88;
    g_out[2] = g_small.neighbour[7] + g_small.after[0];
    g_out[3] = fault_load((uint32_t)&g_small.guard[2]);      /* the 32-byte guard */
    ((void (*)(void))((uint32_t)g_ramfn | 1u))();            /* XN: IACCVIOL */
    SCB_SHCSR &= ~SHCSR_MEMFAULTENA;
    g_out[4] = fault_load((uint32_t)&g_guard[9]);            /* MemManage off: HardFault */
    MPU_CTRL = 0;
    g_out[5] = fault_load((uint32_t)&g_guard[9]);            /* MPU off: plain load */
    g_out[6] = g_faults;
}

static void t_mpu_cost(uint32_t with_mpu)
{
    if (with_mpu) {
        mpu_region(2, (uint32_t)g_small.guard, 5, 0, 1);
        MPU_CTRL = 5;
        dsb_isb();
    }
    g_out[0] = load_loop(&g_small.neighbour[1], 100000);
}

static void t_vtor(void)
{
    const uint32_t *flash_vectors = (const uint32_t *)0x08000000u;
    for (int i = 0; i < 64; i++) g_ram_vectors[i] = flash_vectors[i];
    g_ram_vectors[16 + 7] = (uint32_t)alt_irq7;
    prio(7, 0x80); enable(7);
    pend(7);
    g_out[1] = g_counts[7];                      /* 1: the flash-table handler */
    SCB_VTOR = (uint32_t)g_ram_vectors;
    g_out[2] = SCB_VTOR;
    pend(7);
    g_out[3] = g_counts[7];                      /* 101: the RAM-table handler */
}

static void t_systick(void)
{
    SYST_RVR = 480000u - 1u;                     /* 1 ms at 480 MHz */
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
    while (g_ticks < 10) wfi();
    g_out[1] = g_ticks;
    g_out[2] = SYST_CVR;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_CLKSOURCE;   /* no interrupt: poll COUNTFLAG */
    (void)SYST_CSR;
    for (int i = 0; i < 3; i++)
        while (!(SYST_CSR & SYST_CSR_COUNTFLAG)) { }
    g_out[3] = g_ticks;
    g_out[4] = SCB_CPUID;
}

static void t_wfe_bkpt(void)
{
    SYST_RVR = 480000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
    do_yield();
    g_out[1] = 1;
    do_wfe();
    g_out[2] = g_ticks;
    g_done = DONE;
    do_bkpt();
    g_out[3] = 0xBAD;
}

int main(void)
{
    switch (g_test) {
    case T_NEST: t_nest(); break;
    case T_TAIL: t_tail(); break;
    case T_MASK: t_mask(); break;
    case T_PRIGROUP: t_prigroup(); break;
    case T_FP: t_fp(); break;
    case T_BUSFAULT: t_busfault(); break;
    case T_USAGE: t_usage(); break;
    case T_SVC_PENDSV: t_svc_pendsv(); break;
    case T_PSP: t_psp(); break;
    case T_RESET: t_reset(); break;
    case T_MPU: t_mpu(); break;
    case T_MPU_COST: t_mpu_cost(1); break;
    case T_LOOP_BASE: t_mpu_cost(0); break;
    case T_LOCKUP: g_fault_action = 3; (void)fault_load(0x60000000u); break;
    case T_VTOR: t_vtor(); break;
    case T_SYSTICK: t_systick(); break;
    case T_WFE_BKPT: t_wfe_bkpt(); break;
    default: break;
    }
    g_done = DONE;
    for (;;) { wfi(); }
}
