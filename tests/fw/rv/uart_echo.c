/* uart_echo.elf: UART1 at 115200 (APB clock), RX interrupts through the PLIC, echo of every byte.
 * Prints "BOOT uart_echo" on UART0 with polled TX first (exercises poll-skip and the console sink).
 * ISR: claim; drain RX while RXFIFO_CNT; echo each byte into the TX FIFO; INT_CLR; complete. */
#include "rt.h"
#include "esp32c3_uart.h"

#define U1(off) (SOC_UART1_BASE + (off))
#define U0(off) (SOC_UART0_BASE + (off))
#define RX_FULL_THRESHOLD 16u
#define RX_TOUT_BITS 10u

struct echo_status {
    uint32_t irqs, full, tout, ovf, frm, rx_bytes, tx_bytes, other;
};
volatile struct echo_status g_echo;

static void uart_init(uint32_t base)
{
    mmio_write(base + UART_CLK_CONF_REG, (UART_CLK_CONF_SCLK_SEL_APB << UART_CLK_CONF_SCLK_SEL_S) |
               UART_CLK_CONF_SCLK_EN | UART_CLK_CONF_TX_SCLK_EN | UART_CLK_CONF_RX_SCLK_EN);
    mmio_write(base + UART_CLKDIV_REG, (694u << UART_CLKDIV_S) | (7u << UART_CLKDIV_FRAG_S));
    mmio_write(base + UART_CONF0_REG, UART_CONF0_MEM_CLK_EN | (3u << UART_CONF0_BIT_NUM_S) |
               (1u << UART_CONF0_STOP_BIT_NUM_S) | UART_CONF0_RXFIFO_RST | UART_CONF0_TXFIFO_RST);
    mmio_write(base + UART_CONF0_REG, UART_CONF0_MEM_CLK_EN | (3u << UART_CONF0_BIT_NUM_S) |
               (1u << UART_CONF0_STOP_BIT_NUM_S));
}

static void console_puts(const char *s)
{
    while (*s) {
        while (((mmio_read(U0(UART_STATUS_REG)) & UART_STATUS_TXFIFO_CNT_M) >> UART_STATUS_TXFIFO_CNT_S)
               >= UART_HW_FIFO_LEN)
            ;
        mmio_write(U0(UART_FIFO_REG), (uint8_t)*s++);
    }
}

void trap_handler(uint32_t mcause, uint32_t mepc, uint32_t slot)
{
    (void)mepc; (void)slot;
    if (mcause != (MCAUSE_INTERRUPT | IRQ_M_EXT)) {
        g_echo.other++;
        for (;;) { }
    }
    uint32_t id = mmio_read(PLIC_CLAIM);
    g_echo.irqs++;
    if (id == IRQ_SRC_UART1) {
        uint32_t st = mmio_read(U1(UART_INT_ST_REG));
        if (st & UART_INT_RXFIFO_FULL) g_echo.full++;
        if (st & UART_INT_RXFIFO_TOUT) g_echo.tout++;
        if (st & UART_INT_RXFIFO_OVF) g_echo.ovf++;
        if (st & UART_INT_FRM_ERR) g_echo.frm++;
        while (mmio_read(U1(UART_STATUS_REG)) & UART_STATUS_RXFIFO_CNT_M) {
            uint32_t b = mmio_read(U1(UART_FIFO_REG)) & 0xFFu;
            g_echo.rx_bytes++;
            if (((mmio_read(U1(UART_STATUS_REG)) & UART_STATUS_TXFIFO_CNT_M) >> UART_STATUS_TXFIFO_CNT_S)
                < UART_HW_FIFO_LEN) {
                mmio_write(U1(UART_FIFO_REG), b);
                g_echo.tx_bytes++;
            }
        }
        mmio_write(U1(UART_INT_CLR_REG), st);
    }
    if (id)
        mmio_write(PLIC_CLAIM, id);
}

int main(void)
{
    uart_init(SOC_UART0_BASE);
    uart_init(SOC_UART1_BASE);
    console_puts("BOOT uart_echo\r\n");
    mmio_write(U1(UART_CONF1_REG), (RX_FULL_THRESHOLD << UART_CONF1_RXFIFO_FULL_THRHD_S) |
               (96u << UART_CONF1_TXFIFO_EMPTY_THRHD_S) | UART_CONF1_RX_TOUT_EN);
    mmio_write(U1(UART_MEM_CONF_REG), (mmio_read(U1(UART_MEM_CONF_REG)) & ~UART_MEM_CONF_RX_TOUT_THRHD_M) |
               (RX_TOUT_BITS << UART_MEM_CONF_RX_TOUT_THRHD_S));
    mmio_write(U1(UART_INT_CLR_REG), UART_INT_ALL);
    mmio_write(U1(UART_INT_ENA_REG), UART_INT_RXFIFO_FULL | UART_INT_RXFIFO_TOUT | UART_INT_RXFIFO_OVF |
               UART_INT_FRM_ERR);
    mmio_write(PLIC_PRIORITY(IRQ_SRC_UART1), 1);
    mmio_write(PLIC_ENABLE0, 1u << IRQ_SRC_UART1);
    mmio_write(PLIC_THRESHOLD, 0);
    csr_set(mie, MIE_MEIE);
    irq_enable();
    console_puts("READY\r\n");
    for (;;)
        cpu_wfi();
}
