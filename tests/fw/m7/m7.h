/* Cortex-M7 core registers for the test firmwares (ARMv7-M ARM / core_cm7.h names). */
#ifndef M7_H
#define M7_H
#include <stdint.h>

#define REG32(a) (*(volatile uint32_t *)(a))
#define REG8(a)  (*(volatile uint8_t *)(a))

#define SYST_CSR   REG32(0xE000E010u)
#define SYST_RVR   REG32(0xE000E014u)
#define SYST_CVR   REG32(0xE000E018u)
#define SYST_CSR_ENABLE    (1u << 0)
#define SYST_CSR_TICKINT   (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)
#define SYST_CSR_COUNTFLAG (1u << 16)

#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * (n))
#define NVIC_ISPR(n) REG32(0xE000E200u + 4u * (n))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * (n))
#define NVIC_IABR(n) REG32(0xE000E300u + 4u * (n))
#define NVIC_IPR(n)  REG8(0xE000E400u + (n))
#define NVIC_STIR    REG32(0xE000EF00u)

#define SCB_CPUID  REG32(0xE000ED00u)
#define SCB_ICSR   REG32(0xE000ED04u)
#define SCB_VTOR   REG32(0xE000ED08u)
#define SCB_AIRCR  REG32(0xE000ED0Cu)
#define SCB_SCR    REG32(0xE000ED10u)
#define SCB_CCR    REG32(0xE000ED14u)
#define SCB_SHPR(n) REG8(0xE000ED18u + (n) - 4u)     /* n = system exception number 4..15 */
#define SCB_SHCSR  REG32(0xE000ED24u)
#define SCB_CFSR   REG32(0xE000ED28u)
#define SCB_HFSR   REG32(0xE000ED2Cu)
#define SCB_MMFAR  REG32(0xE000ED34u)
#define SCB_BFAR   REG32(0xE000ED38u)
#define SCB_CPACR  REG32(0xE000ED88u)
#define ICSR_PENDSVSET (1u << 28)
#define ICSR_PENDSTSET (1u << 26)
#define AIRCR_VECTKEY  (0x05FAu << 16)
#define AIRCR_SYSRESETREQ (1u << 2)
#define SHCSR_MEMFAULTENA (1u << 16)
#define SHCSR_BUSFAULTENA (1u << 17)
#define SHCSR_USGFAULTENA (1u << 18)

#define MPU_CTRL REG32(0xE000ED94u)
#define MPU_RNR  REG32(0xE000ED98u)
#define MPU_RBAR REG32(0xE000ED9Cu)
#define MPU_RASR REG32(0xE000EDA0u)

static inline void dsb_isb(void) { __asm volatile("dsb\n isb" ::: "memory"); }
static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void set_basepri(uint32_t v) { __asm volatile("msr basepri, %0" :: "r"(v) : "memory"); }
static inline uint32_t get_msp(void) { uint32_t v; __asm volatile("mrs %0, msp" : "=r"(v)); return v; }
static inline uint32_t get_psp(void) { uint32_t v; __asm volatile("mrs %0, psp" : "=r"(v)); return v; }
static inline uint32_t get_control(void) { uint32_t v; __asm volatile("mrs %0, control" : "=r"(v)); return v; }
static inline uint32_t get_ipsr(void) { uint32_t v; __asm volatile("mrs %0, ipsr" : "=r"(v)); return v; }
static inline void wfi(void) { __asm volatile("wfi" ::: "memory"); }

/* Handler wrappers: call cfn(exc_return, frame_sp) with the frame pointer of the stack in use. */
#define HANDLER(name, cfn)                                                   \
    void cfn(uint32_t exc_return, uint32_t *frame);                          \
    __attribute__((naked)) void name(void)                                   \
    {                                                                        \
        __asm volatile("mov r0, lr\n tst r0, #4\n ite eq\n mrseq r1, msp\n"  \
                       " mrsne r1, psp\n b " #cfn);                          \
    }

#endif
