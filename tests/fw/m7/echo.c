/* A firmware that knows nothing of duohil (no g_config, g_status, g_crash_record, no BOOT lines):
   the "own image" of tests/test_own_firmware.py, docs/own-firmware.md and robot/own_firmware.robot.
   USART1 prints one greeting; USART3 prints "ECHO READY" and then echoes every byte it receives,
   polling ISR.RXNE. A '!' makes it read an address no memory or peripheral answers (0x90000000, the
   QUADSPI window, not modelled): a BusFault escalated to HardFault, which the weak handler spins in.
   Clocks: it never touches RCC beyond the peripheral enables, so the USART kernel clock is the reset
   tree's (HSI 64 MHz through D2PPRE1 = 1): BRR = 556 gives 115108 baud, 0.08 % under 115200, as a
   bare-metal image written for reset clocks would program it. */
#include "m7.h"

#define RCC_APB1LENR REG32(0x580244E8u)
#define RCC_APB2ENR  REG32(0x580244F0u)
#define USART1 0x40011000u
#define USART3 0x40004800u
#define U_CR1(u) REG32((u) + 0x00u)
#define U_BRR(u) REG32((u) + 0x0Cu)
#define U_ISR(u) REG32((u) + 0x1Cu)
#define U_RDR(u) REG32((u) + 0x24u)
#define U_TDR(u) REG32((u) + 0x28u)
#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE  (1u << 7)
#define BRR_115200 556u              /* 64 MHz / 115200, rounded */

volatile uint32_t echoed;           /* bytes echoed so far (a plain global, not a contract block) */

static void uart_init(uint32_t u)
{
    U_BRR(u) = BRR_115200;
    U_CR1(u) = CR1_UE | CR1_RE | CR1_TE;
}

static void put(uint32_t u, char c)
{
    while (!(U_ISR(u) & ISR_TXE)) { }
    U_TDR(u) = (uint8_t)c;
}

static void puts_(uint32_t u, const char *s)
{
    while (*s) put(u, *s++);
}

static char get(uint32_t u)
{
    while (!(U_ISR(u) & ISR_RXNE)) { }         /* the poll loop a run ends in while idle */
    return (char)U_RDR(u);
}

int main(void)
{
    RCC_APB1LENR |= 1u << 18;                 /* USART3EN */
    RCC_APB2ENR |= 1u << 4;                   /* USART1EN */
    uart_init(USART1);
    uart_init(USART3);
    puts_(USART1, "own firmware: hello on usart1\r\n");
    puts_(USART3, "ECHO READY\r\n");
    for (;;) {
        char c = get(USART3);
        if (c == '!')
            (void)REG32(0x90000000u);         /* nothing answers there: BusFault -> HardFault */
        put(USART3, c);
        echoed++;
    }
}
