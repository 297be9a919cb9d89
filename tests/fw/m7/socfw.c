/* SoC-model test scenarios for tests/test_soc_models.py: clocks from the RCC model, the blocks a
   Cube-generated image touches before main (SYSCFG, FMC), USART FIFO mode, unmapped accesses.

   The test patches g_test (in .config) before the first step and checks g_out[] / g_done and what
   USART3 sent. Register addresses and bits: RM0433 (stm32h7-registers.md). No RCC write happens
   unless a scenario says so: the core starts on HSI (64 MHz) as after reset. */
#include "m7.h"

#define DONE 0xD0E5D0E5u
enum { T_HAL_CLOCK = 1, T_RESET_CLOCK, T_SYSCFG_FMC, T_FIFO, T_UNMAPPED_READ, T_UNMAPPED_WRITE,
       T_POLL_HOLE };

__attribute__((section(".config"), used)) volatile const uint32_t g_test = 0;

volatile uint32_t g_done;
volatile uint32_t g_out[32];
volatile uint32_t g_ticks;
volatile uint32_t g_faults;
volatile uint32_t g_fault[8];
volatile uint32_t g_echoed;
volatile uint32_t g_progress;

/* ---- registers ------------------------------------------------------------------------------ */
#define RCC_BASE      0x58024400u
#define RCC_CR        REG32(RCC_BASE + 0x00u)
#define RCC_CFGR      REG32(RCC_BASE + 0x10u)
#define RCC_D1CFGR    REG32(RCC_BASE + 0x18u)
#define RCC_D2CFGR    REG32(RCC_BASE + 0x1Cu)
#define RCC_D3CFGR    REG32(RCC_BASE + 0x20u)
#define RCC_PLLCKSELR REG32(RCC_BASE + 0x28u)
#define RCC_PLLCFGR   REG32(RCC_BASE + 0x2Cu)
#define RCC_PLL1DIVR  REG32(RCC_BASE + 0x30u)
#define RCC_APB1LENR  REG32(RCC_BASE + 0xE8u)
#define RCC_APB4ENR   REG32(RCC_BASE + 0xF4u)
#define PWR_CSR1      REG32(0x58024804u)
#define PWR_CR3       REG32(0x5802480Cu)
#define PWR_D3CR      REG32(0x58024818u)
#define FLASH_ACR     REG32(0x52002000u)
#define SYSCFG_PWRCR  REG32(0x5800042Cu)
#define SYSCFG_CCCSR  REG32(0x58000420u)
#define FMC_BCR1      REG32(0x52004000u)
#define FMC_BTR1      REG32(0x52004004u)

#define U3            0x40004800u
#define U3_CR1        REG32(U3 + 0x00u)
#define U3_CR3        REG32(U3 + 0x08u)
#define U3_BRR        REG32(U3 + 0x0Cu)
#define U3_ISR        REG32(U3 + 0x1Cu)
#define U3_RDR        REG32(U3 + 0x24u)
#define U3_TDR        REG32(U3 + 0x28u)
#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_FIFOEN (1u << 29)
#define ISR_RXNE (1u << 5)       /* RXFNE in FIFO mode */
#define ISR_TC   (1u << 6)
#define ISR_TXE  (1u << 7)       /* TXFNF in FIFO mode */
#define ISR_RXFT (1u << 26)

/* every poll is bounded: a model that never sets the flag ends the scenario with a code */
static uint32_t wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t want)
{
    for (uint32_t n = 0; n < 100000u; n++) {
        if ((*reg & mask) == want) return 0;
    }
    return 1;
}

static void put(char c) { while (!(U3_ISR & ISR_TXE)) { } U3_TDR = (uint8_t)c; }
static void puts3(const char *s) { while (*s) put(*s++); }
static void flush3(void) { while (!(U3_ISR & ISR_TC)) { } }

void SysTick_Handler(void) { g_ticks++; }

/* BusFault: record, then resume at the caller of fault_load/fault_store (stacked LR). */
void bus_c(uint32_t exc_return, uint32_t *frame);
HANDLER(BusFault_Handler, bus_c)
HANDLER(HardFault_Handler, bus_c)
void bus_c(uint32_t exc_return, uint32_t *frame)
{
    (void)exc_return;
    g_fault[0] = get_ipsr(); g_fault[1] = SCB_CFSR; g_fault[2] = SCB_BFAR; g_fault[3] = frame[6];
    g_faults++;
    SCB_CFSR = 0xFFFFFFFFu;
    frame[6] = frame[5] & ~1u;           /* return to the caller */
}
/* leaf functions whose only access may fault (the handler resumes at the caller) */
__attribute__((naked, noinline)) uint32_t fault_load(__attribute__((unused)) uint32_t addr)
{
    __asm volatile("ldr r0, [r0]\n bx lr");
}
__attribute__((naked, noinline)) void fault_store(__attribute__((unused)) uint32_t addr,
                                                  __attribute__((unused)) uint32_t v)
{
    __asm volatile("str r1, [r0]\n nop\n bx lr");
}

/* ---- scenarios -------------------------------------------------------------------------------- */
/* HAL's SystemClock_Config for a 25 MHz HSE board: LDO, voltage scale 0 (VOS1 + SYSCFG ODEN),
   PLL1 = 25 / 5 * 160 / 2 = 400 MHz, HCLK 200, APBs 100; SysTick 1 kHz; USART3 115200 at PCLK1. */
static void hal_clock(void)
{
    uint32_t err = 0;
    PWR_CR3 = (PWR_CR3 & ~7u) | (1u << 1);                     /* LDOEN */
    err |= wait_set(&PWR_CSR1, 1u << 13, 1u << 13);            /* ACTVOSRDY */
    PWR_D3CR = 3u << 14;                                       /* VOS scale 1 */
    err |= wait_set(&PWR_D3CR, 1u << 13, 1u << 13);
    RCC_APB4ENR |= 1u << 1;                                    /* SYSCFGEN */
    SYSCFG_PWRCR |= 1u;                                        /* ODEN: scale 0 */
    err |= wait_set(&PWR_D3CR, 1u << 13, 1u << 13);
    RCC_CR |= 1u << 16;                                        /* HSEON */
    err |= wait_set(&RCC_CR, 1u << 17, 1u << 17) << 1;
    RCC_CR &= ~(1u << 24);                                     /* PLL1 off first */
    err |= wait_set(&RCC_CR, 1u << 25, 0) << 2;
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~(3u | (0x3Fu << 4))) | 2u | (5u << 4);   /* HSE, DIVM1=5 */
    RCC_PLLCFGR = (RCC_PLLCFGR & ~0xFu) | (2u << 2) | (7u << 16);          /* 4-8 MHz, P/Q/R en */
    RCC_PLL1DIVR = (160u - 1u) | ((2u - 1u) << 9) | ((4u - 1u) << 16) | ((2u - 1u) << 24);
    RCC_CR |= 1u << 24;
    err |= wait_set(&RCC_CR, 1u << 25, 1u << 25) << 3;
    FLASH_ACR = 2u | (2u << 4);
    err |= wait_set(&FLASH_ACR, 0xFu, 2u) << 4;
    RCC_D1CFGR = 8u | (4u << 4);                               /* HPRE /2, D1PPRE /2 */
    RCC_D2CFGR = (4u << 4) | (4u << 8);                        /* D2PPRE1/2 /2 */
    RCC_D3CFGR = 4u << 4;                                      /* D3PPRE /2 */
    RCC_CFGR = (RCC_CFGR & ~7u) | 3u;                          /* SW = PLL1 */
    err |= wait_set(&RCC_CFGR, 0x38u, 0x18u) << 5;
    g_out[0] = err;
    SYST_RVR = 400000000u / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
    RCC_APB1LENR |= 1u << 18;                                  /* USART3EN */
    U3_BRR = 100000000u / 115200u;                             /* 868 */
    U3_CR1 = CR1_UE | CR1_TE | CR1_RE;
    puts3("HAL400\r\n");
    flush3();
    g_out[1] = g_ticks;
    g_done = DONE;
    for (;;) { wfi(); }
}

/* A bare-metal image that never touches RCC: HSI 64 MHz, SysTick 1 kHz from 64 MHz, USART3 at
   9600 with BRR for 64 MHz; echoes what it receives. */
static void reset_clock(void)
{
    SYST_RVR = 64000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
    U3_BRR = (64000000u + 4800u) / 9600u;                      /* 6667 */
    U3_CR1 = CR1_UE | CR1_TE | CR1_RE;
    puts3("HSI9600\r\n");
    g_done = DONE;
    for (;;) {
        if (U3_ISR & ISR_RXNE) { put((char)U3_RDR); g_echoed++; }
    }
}

/* CMSIS SystemInit's FMC store, SystemClock_Config's SYSCFG_PWRCR read-modify-write,
   HAL_EnableCompensationCell. */
static void syscfg_fmc(void)
{
    g_out[0] = FMC_BCR1;
    FMC_BCR1 = 0x000030D2u;
    g_out[1] = FMC_BCR1;
    g_out[2] = FMC_BTR1;
    g_out[3] = SYSCFG_PWRCR;
    SYSCFG_PWRCR |= 1u;
    g_out[4] = SYSCFG_PWRCR;
    SYSCFG_CCCSR = 1u;
    g_out[5] = wait_set(&SYSCFG_CCCSR, 1u << 8, 1u << 8);
    g_out[6] = SYSCFG_CCCSR;
    g_out[7] = g_faults;
    g_done = DONE;
    for (;;) { wfi(); }
}

/* HAL-style FIFO mode: fill the TX FIFO without waiting for each character, then wait for the RX
   FIFO threshold (1/2 = 8 characters) and send them back reversed. */
static void fifo(void)
{
    static const char msg[] = "ABCDEFGHIJKLMNOPQRST";     /* 20 */
    uint32_t n = 0;
    U3_BRR = 64000000u / 115200u;                             /* 555 */
    U3_CR3 = (2u << 25) | (2u << 29);                         /* RXFTCFG 1/2, TXFTCFG 1/2 */
    U3_CR1 = CR1_FIFOEN | CR1_UE | CR1_TE | CR1_RE;
    while (n < 20u && (U3_ISR & ISR_TXE)) { U3_TDR = (uint8_t)msg[n]; n++; }
    g_out[0] = n;                                             /* 1 shifting + 16 queued */
    while (n < 20u) { put(msg[n]); n++; }
    flush3();
    g_out[1] = 1;
    while (!(U3_ISR & ISR_RXFT)) { }
    char buf[16];
    uint32_t got = 0;
    while ((U3_ISR & ISR_RXNE) && got < 16u) { buf[got++] = (char)U3_RDR; }
    g_out[2] = got;
    while (got) { put(buf[--got]); }
    flush3();
    g_done = DONE;
    for (;;) { wfi(); }
}

static void unmapped(uint32_t write)
{
    SCB_SHCSR |= SHCSR_BUSFAULTENA;
    /* a hole in a page shared with TIM6/TIM7 (TIM12 is not modelled), then a page nothing maps */
    if (write) {
        fault_store(0x40001800u, 0x1234u);
        dsb_isb();
        fault_store(0x40003010u, 0x5678u);
        dsb_isb();
    } else {
        for (uint32_t k = 0; k < 3u; k++) { g_out[0] |= fault_load(0x40001800u); }   /* 3x */
        g_out[1] = g_faults;
        g_out[2] = fault_load(0x40003010u);
    }
    g_out[3] = g_faults;
    g_done = DONE;
    for (;;) { wfi(); }
}

int main(void)
{
    switch (g_test) {
    case T_HAL_CLOCK: hal_clock(); break;
    case T_RESET_CLOCK: reset_clock(); break;
    case T_SYSCFG_FMC: syscfg_fmc(); break;
    case T_FIFO: fifo(); break;
    case T_UNMAPPED_READ: unmapped(0); break;
    case T_UNMAPPED_WRITE: unmapped(1); break;
    case T_POLL_HOLE:                    /* a status register nothing models, polled for ever */
        g_done = DONE;
        while (REG32(0x40001818u) == 0u) { g_progress++; }
        break;
    default: break;
    }
    for (;;) { g_progress++; }
}
