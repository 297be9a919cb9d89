/*
 * Cortex-M7 core registers used by the duohil STM32H743 firmware: SCB, NVIC, SysTick, MPU, the L1
 * cache maintenance operations, and the few intrinsics we need. Our own header (no CMSIS); names
 * follow the ARMv7-M ARM / CMSIS core_cm7.h so a reader can hold them side by side.
 * Facts: /work/shared/reference/stm32h7-registers.md sections 9 and 10.
 */
#ifndef DUOHIL_REGS_CM7_H
#define DUOHIL_REGS_CM7_H

#include <stdint.h>

#define REG32(addr)            (*(volatile uint32_t *)(uintptr_t)(addr))
#define REG8(addr)             (*(volatile uint8_t *)(uintptr_t)(addr))

/* ---- SCB (0xE000ED00) ------------------------------------------------------------------------ */
typedef struct {
    volatile uint32_t CPUID;     /* 0x00 */
    volatile uint32_t ICSR;      /* 0x04 */
    volatile uint32_t VTOR;      /* 0x08 */
    volatile uint32_t AIRCR;     /* 0x0C */
    volatile uint32_t SCR;       /* 0x10 */
    volatile uint32_t CCR;       /* 0x14 */
    volatile uint8_t  SHPR[12];  /* 0x18: system handler priority, index = exception number - 4 */
    volatile uint32_t SHCSR;     /* 0x24 */
    volatile uint32_t CFSR;      /* 0x28 */
    volatile uint32_t HFSR;      /* 0x2C */
    volatile uint32_t DFSR;      /* 0x30 */
    volatile uint32_t MMFAR;     /* 0x34 */
    volatile uint32_t BFAR;      /* 0x38 */
    volatile uint32_t AFSR;      /* 0x3C */
    uint32_t          _r0[14];   /* 0x40..0x74: ID_PFR0.. */
    volatile uint32_t CLIDR;     /* 0x78 */
    volatile uint32_t CTR;       /* 0x7C */
    volatile uint32_t CCSIDR;    /* 0x80 */
    volatile uint32_t CSSELR;    /* 0x84 */
    volatile uint32_t CPACR;     /* 0x88 */
} scb_t;
#define SCB                    ((scb_t *)0xE000ED00u)

#define SCB_AIRCR_VECTKEY      (0x05FAu << 16)
#define SCB_AIRCR_SYSRESETREQ  (1u << 2)
#define SCB_AIRCR_PRIGROUP_Pos 8u
#define SCB_AIRCR_PRIGROUP_Msk (7u << SCB_AIRCR_PRIGROUP_Pos)

#define SCB_CCR_DC             (1u << 16)
#define SCB_CCR_IC             (1u << 17)

#define SCB_SHCSR_MEMFAULTENA  (1u << 16)
#define SCB_SHCSR_BUSFAULTENA  (1u << 17)
#define SCB_SHCSR_USGFAULTENA  (1u << 18)

#define SCB_CPACR_CP10_CP11    (0xFu << 20)

#define SCB_CCSIDR_NUMSETS(x)  (((x) >> 13) & 0x7FFFu)
#define SCB_CCSIDR_ASSOC(x)    (((x) >> 3) & 0x3FFu)

/* exception numbers of the system handlers whose priority sits in SHPR */
#define EXC_MEMMANAGE          4u
#define EXC_BUSFAULT           5u
#define EXC_USAGEFAULT         6u
#define EXC_SVCALL             11u
#define EXC_PENDSV             14u
#define EXC_SYSTICK            15u

/* ---- L1 cache maintenance (write-only) ------------------------------------------------------- */
#define SCB_ICIALLU            REG32(0xE000EF50u)
#define SCB_DCIMVAC            REG32(0xE000EF5Cu)   /* invalidate D-cache line by address */
#define SCB_DCISW              REG32(0xE000EF60u)   /* invalidate D-cache line by set/way */
#define SCB_DCCMVAC            REG32(0xE000EF68u)   /* clean D-cache line by address */
#define SCB_DCCIMVAC           REG32(0xE000EF70u)   /* clean+invalidate D-cache line by address */
#define DCACHE_LINE_SIZE       32u
#define SCB_DCISW_SET_Pos      5u
#define SCB_DCISW_WAY_Pos      30u

/* ---- NVIC (0xE000E100) ----------------------------------------------------------------------- */
#define NVIC_ISER(n)           REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n)           REG32(0xE000E180u + 4u * (n))
#define NVIC_ISPR(n)           REG32(0xE000E200u + 4u * (n))
#define NVIC_ICPR(n)           REG32(0xE000E280u + 4u * (n))
#define NVIC_IPR(irq)          REG8(0xE000E400u + (irq))
#define NVIC_PRIO_BITS         4u

/* ---- SysTick (0xE000E010) -------------------------------------------------------------------- */
#define SYST_CSR               REG32(0xE000E010u)
#define SYST_RVR               REG32(0xE000E014u)
#define SYST_CVR               REG32(0xE000E018u)
#define SYST_CSR_ENABLE        (1u << 0)
#define SYST_CSR_TICKINT       (1u << 1)
#define SYST_CSR_CLKSOURCE     (1u << 2)

/* ---- MPU (0xE000ED90) ------------------------------------------------------------------------ */
#define MPU_TYPE               REG32(0xE000ED90u)
#define MPU_CTRL               REG32(0xE000ED94u)
#define MPU_RNR                REG32(0xE000ED98u)
#define MPU_RBAR               REG32(0xE000ED9Cu)
#define MPU_RASR               REG32(0xE000EDA0u)
#define MPU_CTRL_ENABLE        (1u << 0)
#define MPU_CTRL_HFNMIENA      (1u << 1)
#define MPU_CTRL_PRIVDEFENA    (1u << 2)
#define MPU_RASR_ENABLE        (1u << 0)
#define MPU_RASR_SIZE(log2m1)  ((uint32_t)(log2m1) << 1)   /* region = 2^(SIZE+1) bytes */
#define MPU_RASR_AP(ap)        ((uint32_t)(ap) << 24)      /* 0 = no access */
#define MPU_RASR_XN            (1u << 28)

/* ---- CFSR / HFSR bits the fault path decodes -------------------------------------------------- */
#define CFSR_MMARVALID         (1u << 7)
#define CFSR_BFARVALID         (1u << 15)
#define HFSR_FORCED            (1u << 30)

/* ---- intrinsics -------------------------------------------------------------------------------- */
static inline void cpu_dsb(void) { __asm__ volatile("dsb 0xF" ::: "memory"); }
static inline void cpu_isb(void) { __asm__ volatile("isb 0xF" ::: "memory"); }
static inline void cpu_dmb(void) { __asm__ volatile("dmb 0xF" ::: "memory"); }
static inline void cpu_wfi(void) { __asm__ volatile("wfi"); }
static inline void cpu_irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }
static inline void cpu_irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
static inline uint32_t cpu_irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) :: "memory");
    return primask;
}
static inline void cpu_irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" :: "r"(primask) : "memory");
}
static inline uint32_t cpu_get_msp(void)
{
    uint32_t v;
    __asm__ volatile("mrs %0, msp" : "=r"(v));
    return v;
}

/* ---- NVIC helpers ------------------------------------------------------------------------------ */
static inline void nvic_set_priority(uint32_t irq, uint32_t prio)
{
    NVIC_IPR(irq) = (uint8_t)((prio << (8u - NVIC_PRIO_BITS)) & 0xFFu);
}
static inline void nvic_enable(uint32_t irq) { NVIC_ISER(irq >> 5) = 1u << (irq & 31u); }
static inline void nvic_disable(uint32_t irq) { NVIC_ICER(irq >> 5) = 1u << (irq & 31u); }
static inline void nvic_set_pending(uint32_t irq) { NVIC_ISPR(irq >> 5) = 1u << (irq & 31u); }
static inline void nvic_clear_pending(uint32_t irq) { NVIC_ICPR(irq >> 5) = 1u << (irq & 31u); }
static inline void scb_set_system_priority(uint32_t exc, uint32_t prio)
{
    SCB->SHPR[exc - 4u] = (uint8_t)((prio << (8u - NVIC_PRIO_BITS)) & 0xFFu);
}
static inline void scb_set_priority_grouping(uint32_t prigroup)
{
    uint32_t v = SCB->AIRCR & ~(0xFFFFu << 16) & ~SCB_AIRCR_PRIGROUP_Msk;
    SCB->AIRCR = v | SCB_AIRCR_VECTKEY | ((prigroup & 7u) << SCB_AIRCR_PRIGROUP_Pos);
}
static inline void scb_system_reset(void)
{
    cpu_dsb();
    SCB->AIRCR = SCB_AIRCR_VECTKEY | (SCB->AIRCR & SCB_AIRCR_PRIGROUP_Msk) | SCB_AIRCR_SYSRESETREQ;
    cpu_dsb();
    for (;;) {
        cpu_wfi();
    }
}

/* ---- D-cache maintenance by address (CMSIS semantics, section 9.3) ------------------------------ */
static inline void dcache_invalidate_by_addr(const volatile void *addr, int32_t size)
{
    if (size > 0) {
        uintptr_t op_addr = (uintptr_t)addr;
        int32_t op_size = size + (int32_t)(op_addr & (DCACHE_LINE_SIZE - 1u));
        cpu_dsb();
        do {
            SCB_DCIMVAC = (uint32_t)op_addr;
            op_addr += DCACHE_LINE_SIZE;
            op_size -= (int32_t)DCACHE_LINE_SIZE;
        } while (op_size > 0);
        cpu_dsb();
        cpu_isb();
    }
}
static inline void dcache_clean_by_addr(const volatile void *addr, int32_t size)
{
    if (size > 0) {
        uintptr_t op_addr = (uintptr_t)addr;
        int32_t op_size = size + (int32_t)(op_addr & (DCACHE_LINE_SIZE - 1u));
        cpu_dsb();
        do {
            SCB_DCCMVAC = (uint32_t)op_addr;
            op_addr += DCACHE_LINE_SIZE;
            op_size -= (int32_t)DCACHE_LINE_SIZE;
        } while (op_size > 0);
        cpu_dsb();
        cpu_isb();
    }
}

_Static_assert(__builtin_offsetof(scb_t, CPACR) == 0x88u, "SCB_CPACR");
_Static_assert(__builtin_offsetof(scb_t, CFSR) == 0x28u, "SCB_CFSR");

#endif
