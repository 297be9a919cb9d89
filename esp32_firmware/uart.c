/* ESP32-C3 UART driver (uart.h). Register names follow ESP-IDF uart_reg.h (esp32c3_uart.h). */
#include "uart.h"

#include <stddef.h>
#include "esp32c3_uart.h"
#include "soc.h"

static inline uint32_t reg_rd(const uart_t *u, uint32_t off) { return mmio_read(u->base + off); }
static inline void reg_wr(const uart_t *u, uint32_t off, uint32_t v) { mmio_write(u->base + off, v); }

static uint32_t tx_fifo_room(const uart_t *u)
{
    uint32_t cnt = (reg_rd(u, UART_STATUS_REG) & UART_STATUS_TXFIFO_CNT_M) >> UART_STATUS_TXFIFO_CNT_S;
    return cnt < UART_HW_FIFO_LEN ? UART_HW_FIFO_LEN - cnt : 0u;
}

static uint32_t rx_fifo_count(const uart_t *u)
{
    return (reg_rd(u, UART_STATUS_REG) & UART_STATUS_RXFIFO_CNT_M) >> UART_STATUS_RXFIFO_CNT_S;
}

void uart_init(uart_t *u, uint32_t base, uint8_t *tx_buf, uint32_t tx_size,
               uint8_t *rx_buf, uint32_t rx_size)
{
    u->base = base;
    u->tx_buf = tx_buf;
    u->tx_mask = tx_size - 1u;
    u->tx_head = u->tx_tail = 0;
    u->rx_buf = rx_buf;
    u->rx_mask = rx_size - 1u;
    u->rx_head = u->rx_tail = 0;
    u->idle_head = u->idle_tail = 0;
    u->rx_overflows = u->line_errors = u->tx_dropped = 0;

    /* SCLK = APB (80 MHz), divide by 1; 115200 baud from CLKDIV.FRAG (uart_ll_set_baudrate) */
    reg_wr(u, UART_CLK_CONF_REG, (UART_CLK_CONF_SCLK_SEL_APB << UART_CLK_CONF_SCLK_SEL_S) |
                                 (0u << UART_CLK_CONF_SCLK_DIV_NUM_S) | UART_CLK_CONF_SCLK_EN |
                                 UART_CLK_CONF_TX_SCLK_EN | UART_CLK_CONF_RX_SCLK_EN);
    reg_wr(u, UART_CLKDIV_REG, (UART_CLKDIV_115200 << UART_CLKDIV_S) |
                               (UART_FRAG_115200 << UART_CLKDIV_FRAG_S));
    /* 8N1, then pulse both FIFO resets */
    uint32_t conf0 = (3u << UART_CONF0_BIT_NUM_S) | (1u << UART_CONF0_STOP_BIT_NUM_S) |
                     UART_CONF0_MEM_CLK_EN;
    reg_wr(u, UART_CONF0_REG, conf0 | UART_CONF0_RXFIFO_RST | UART_CONF0_TXFIFO_RST);
    reg_wr(u, UART_CONF0_REG, conf0);
    /* thresholds; RX timeout threshold in MEM_CONF, its enable in CONF1 */
    uint32_t conf1 = (UART_RX_FULL_THRHD << UART_CONF1_RXFIFO_FULL_THRHD_S) |
                     (UART_TX_EMPTY_THRHD << UART_CONF1_TXFIFO_EMPTY_THRHD_S);
    uint32_t ena = 0;
    if (rx_buf != NULL) {
        uint32_t mem = reg_rd(u, UART_MEM_CONF_REG) & ~UART_MEM_CONF_RX_TOUT_THRHD_M;
        reg_wr(u, UART_MEM_CONF_REG, mem | (UART_RX_TOUT_BITS << UART_MEM_CONF_RX_TOUT_THRHD_S));
        conf1 |= UART_CONF1_RX_TOUT_EN;
        ena = UART_INT_RXFIFO_FULL | UART_INT_RXFIFO_TOUT | UART_INT_RXFIFO_OVF |
              UART_INT_FRM_ERR | UART_INT_PARITY_ERR;
    }
    reg_wr(u, UART_CONF1_REG, conf1);
    reg_wr(u, UART_INT_CLR_REG, UART_INT_ALL);
    reg_wr(u, UART_INT_ENA_REG, ena);
}

/* Move ring bytes into the FIFO and arm/disarm TXFIFO_EMPTY. Interrupts must be off. */
static void tx_kick(uart_t *u)
{
    uint32_t room = tx_fifo_room(u);
    uint32_t tail = u->tx_tail, head = u->tx_head;
    while (room != 0u && tail != head) {
        reg_wr(u, UART_FIFO_REG, u->tx_buf[tail & u->tx_mask]);   /* 32-bit write, as on silicon */
        tail++;
        room--;
    }
    u->tx_tail = tail;
    uint32_t ena = reg_rd(u, UART_INT_ENA_REG);
    ena = tail != head ? (ena | UART_INT_TXFIFO_EMPTY) : (ena & ~UART_INT_TXFIFO_EMPTY);
    reg_wr(u, UART_INT_ENA_REG, ena);
}

int uart_write(uart_t *u, const uint8_t *p, uint32_t n)
{
    uint32_t head = u->tx_head;
    uint32_t used = head - u->tx_tail;
    if (n > u->tx_mask + 1u - used) {
        u->tx_dropped += n;
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        u->tx_buf[(head + i) & u->tx_mask] = p[i];
    }
    u->tx_head = head + n;
    uint32_t mstatus = csr_read(mstatus);
    irq_disable();
    tx_kick(u);
    if (mstatus & MSTATUS_MIE) {
        irq_enable();
    }
    return 1;
}

void uart_write_polled(uart_t *u, const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        while (tx_fifo_room(u) == 0u) {
        }
        reg_wr(u, UART_FIFO_REG, p[i]);
    }
}

void uart_flush_polled(uart_t *u)
{
    while (u->tx_tail != u->tx_head) {
        while (tx_fifo_room(u) == 0u) {
        }
        reg_wr(u, UART_FIFO_REG, u->tx_buf[u->tx_tail & u->tx_mask]);
        u->tx_tail++;
    }
}

int uart_read(uart_t *u, uint8_t *byte)
{
    uint32_t tail = u->rx_tail;
    if (tail == u->rx_head) {
        return 0;
    }
    *byte = u->rx_buf[tail & u->rx_mask];
    u->rx_tail = tail + 1u;
    return 1;
}

int uart_rx_pending(const uart_t *u)
{
    return u->rx_tail != u->rx_head || u->idle_tail != u->idle_head;
}

int uart_idle_peek(uart_t *u, uint32_t *pos)
{
    if (u->idle_tail == u->idle_head) {
        return 0;
    }
    *pos = u->idle_pos[u->idle_tail % UART_IDLE_QUEUE];
    return 1;
}

void uart_idle_pop(uart_t *u)
{
    u->idle_tail++;
}

static void rx_drain(uart_t *u)
{
    uint32_t n;
    while ((n = rx_fifo_count(u)) != 0u) {
        while (n-- != 0u) {
            uint8_t b = (uint8_t)reg_rd(u, UART_FIFO_REG);
            uint32_t head = u->rx_head;
            if (head - u->rx_tail > u->rx_mask) {
                u->rx_overflows++;        /* software ring full: the byte is lost */
            } else {
                u->rx_buf[head & u->rx_mask] = b;
                u->rx_head = head + 1u;
            }
        }
    }
}

void uart_isr(uart_t *u)
{
    uint32_t st = reg_rd(u, UART_INT_ST_REG);
    if (st & (UART_INT_RXFIFO_FULL | UART_INT_RXFIFO_TOUT | UART_INT_RXFIFO_OVF)) {
        rx_drain(u);
    }
    if (st & UART_INT_RXFIFO_OVF) {
        u->rx_overflows++;
    }
    if (st & (UART_INT_FRM_ERR | UART_INT_PARITY_ERR)) {
        u->line_errors++;
    }
    if (st & UART_INT_RXFIFO_TOUT) {
        if (u->idle_head - u->idle_tail < UART_IDLE_QUEUE) {
            u->idle_pos[u->idle_head % UART_IDLE_QUEUE] = u->rx_head;
            u->idle_head++;
        }
    }
    reg_wr(u, UART_INT_CLR_REG, st & ~UART_INT_TXFIFO_EMPTY);
    if (st & UART_INT_TXFIFO_EMPTY) {
        tx_kick(u);                       /* refill (or disarm when the ring is empty), then clear */
        reg_wr(u, UART_INT_CLR_REG, UART_INT_TXFIFO_EMPTY);
    }
}
