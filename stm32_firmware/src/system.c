/*
 * Core and clock bring-up. The clock sequence is the CubeMX/HAL one with every handshake polled
 * (reference section 2.3): supply (LDO) + ACTVOSRDY, VOS0 + VOSRDY, FLASH latency read-back, HSE
 * ready, PLL1 off/ready, bus prescalers, switch and SWS. Every poll is bounded: a timeout is
 * reported in the status block, never an infinite loop.
 */
#include "system.h"
#include "blocks.h"
#include "board.h"
#include "../regs/stm32h743.h"

#define POLL_LIMIT  100000u

static int wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t n = 0; n < POLL_LIMIT; n++) {
        if ((*reg & mask) == value) {
            return 0;
        }
    }
    return -1;
}

uint32_t clock_init(void)
{
    int err = 0;

    /* Supply: LDO on, bypass off; the first write to CR3 locks the configuration (SCUEN -> 0). */
    PWR_CR3 = (PWR_CR3 & ~(PWR_CR3_BYPASS | PWR_CR3_SCUEN)) | PWR_CR3_LDOEN;
    err |= wait_set(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY);

    /* Core voltage for 480 MHz: VOS = 11, then wait for VOSRDY. This is LL's SCALE0 (the LL example
     * the reference follows); the HAL additionally sets SYSCFG_PWRCR.ODEN, a block the platform
     * description does not map, so we leave it out. */
    PWR_D3CR = (PWR_D3CR & ~PWR_D3CR_VOS_Msk) | PWR_D3CR_VOS_SCALE1;
    err |= wait_set(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY);

    /* Flash: 4 wait states, WRHIGHFREQ 2 for 240 MHz AXI; must read back before going faster. */
    uint32_t acr = (FLASH_ACR & ~(FLASH_ACR_LATENCY_Msk | FLASH_ACR_WRHIGHFREQ_Msk)) |
                   FLASH_ACR_LATENCY(4u) | FLASH_ACR_WRHIGHFREQ(2u);
    FLASH_ACR = acr;
    err |= wait_set(&FLASH_ACR, FLASH_ACR_LATENCY_Msk | FLASH_ACR_WRHIGHFREQ_Msk,
                    acr & (FLASH_ACR_LATENCY_Msk | FLASH_ACR_WRHIGHFREQ_Msk));

    /* HSE 8 MHz (bypass: the ST-LINK MCO clock on a Nucleo). */
    RCC->CR |= RCC_CR_HSEBYP | RCC_CR_HSEON;
    err |= wait_set(&RCC->CR, RCC_CR_HSERDY, RCC_CR_HSERDY);
    if (err) {
        return BOOTF_CLOCK_TIMEOUT;      /* stay on HSI 64 MHz: slow, but alive and reporting */
    }

    /* PLL1: HSE / 1 * 120 / 2 = 480 MHz (P), Q = 48 MHz, R = 480 MHz. Off before reprogramming. */
    RCC->CR &= ~RCC_CR_PLL1ON;
    err |= wait_set(&RCC->CR, RCC_CR_PLL1RDY, 0u);
    RCC->PLLCKSELR = (RCC->PLLCKSELR & ~(RCC_PLLCKSELR_PLLSRC_Msk | RCC_PLLCKSELR_DIVM1_Msk)) |
                     RCC_PLLCKSELR_PLLSRC_HSE | (1u << RCC_PLLCKSELR_DIVM1_Pos);
    RCC->PLL1DIVR = RCC_PLL1DIVR(120u, 2u, 20u, 2u);
    RCC->PLLCFGR = (RCC->PLLCFGR & ~(RCC_PLLCFGR_PLL1RGE_Msk | RCC_PLLCFGR_PLL1VCOSEL | RCC_PLLCFGR_PLL1FRACEN)) |
                   RCC_PLLCFGR_PLL1RGE_8_16 | RCC_PLLCFGR_DIVP1EN | RCC_PLLCFGR_DIVQ1EN | RCC_PLLCFGR_DIVR1EN;
    RCC->CR |= RCC_CR_PLL1ON;
    err |= wait_set(&RCC->CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY);
    if (err) {
        return BOOTF_CLOCK_TIMEOUT;
    }

    /* Prescalers before the switch: HCLK = SYSCLK / 2, every APB = HCLK / 2. */
    RCC->D1CFGR = RCC_D1CFGR_D1CPRE_DIV1 | RCC_D1CFGR_HPRE_DIV2 | RCC_D1CFGR_D1PPRE_DIV2;
    RCC->D2CFGR = RCC_D2CFGR_D2PPRE1_DIV2 | RCC_D2CFGR_D2PPRE2_DIV2;
    RCC->D3CFGR = RCC_D3CFGR_D3PPRE_DIV2;

    RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW_Msk) | RCC_CFGR_SW_PLL1;
    if (wait_set(&RCC->CFGR, RCC_CFGR_SWS_Msk, RCC_CFGR_SWS_PLL1)) {
        return BOOTF_CLOCK_TIMEOUT;
    }
    return 0u;
}

void icache_enable(void)
{
    if (SCB->CCR & SCB_CCR_IC) {
        return;
    }
    cpu_dsb();
    cpu_isb();
    SCB_ICIALLU = 0u;
    cpu_dsb();
    cpu_isb();
    SCB->CCR |= SCB_CCR_IC;
    cpu_dsb();
    cpu_isb();
}

void dcache_enable(void)
{
    if (SCB->CCR & SCB_CCR_DC) {
        return;
    }
    SCB->CSSELR = 0u;                      /* level 1 data cache */
    cpu_dsb();
    uint32_t ccsidr = SCB->CCSIDR;
    uint32_t sets = SCB_CCSIDR_NUMSETS(ccsidr);
    do {
        uint32_t ways = SCB_CCSIDR_ASSOC(ccsidr);
        do {
            SCB_DCISW = (sets << SCB_DCISW_SET_Pos) | (ways << SCB_DCISW_WAY_Pos);
        } while (ways-- != 0u);
    } while (sets-- != 0u);
    cpu_dsb();
    SCB->CCR |= SCB_CCR_DC;
    cpu_dsb();
    cpu_isb();
}

void systick_init(void)
{
    SYST_RVR = SYSCLK_HZ / 1000u - 1u;
    SYST_CVR = 0u;
    scb_set_system_priority(EXC_SYSTICK, PRIO_SYSTICK);
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

void mpu_stack_guard_init(void)
{
    /* Region 0: the guard right below the stack (linker script: a power of two >= 32 bytes, aligned
     * to its size), no access, never executable. Everything else keeps the default memory map
     * (PRIVDEFENA). A push into it is a MemManage fault. */
    uint32_t size = (uint32_t)((uintptr_t)_estack_guard - (uintptr_t)_sstack_guard);
    uint32_t log2 = 31u - (uint32_t)__builtin_clz(size);
    cpu_dmb();
    MPU_CTRL = 0u;
    MPU_RNR = 0u;
    MPU_RBAR = (uint32_t)(uintptr_t)_sstack_guard;
    MPU_RASR = MPU_RASR_XN | MPU_RASR_AP(0u) | MPU_RASR_SIZE(log2 - 1u) | MPU_RASR_ENABLE;
    MPU_CTRL = MPU_CTRL_PRIVDEFENA | MPU_CTRL_ENABLE;
    SCB->SHCSR |= SCB_SHCSR_MEMFAULTENA;
    cpu_dsb();
    cpu_isb();
}

uint32_t stack_high_water(void)
{
    const uint32_t *p = _sstack + 1;        /* word 0 is the canary */
    while (p < _estack && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)_estack - (uintptr_t)p);
}
