/*
 * USART1 console, 115200 8N1 by default: a TX ring filled by console_write() and drained one byte
 * per TXE interrupt. RX is not used.
 */
#include "console.h"
#include "blocks.h"
#include "board.h"
#include "gpio.h"
#include "../regs/stm32h743.h"

#define CONSOLE_RING_SIZE  1024u           /* power of two */
#define POLL_LIMIT         200000u

static struct {
    char              buf[CONSOLE_RING_SIZE];
    volatile uint32_t head;                /* written by console_write (under a critical section) */
    volatile uint32_t tail;                /* written by the ISR */
    uint32_t          dropped;
} s_con;

uint32_t console_init(uint32_t baud)
{
    RCC->AHB4ENR |= RCC_AHB4ENR_GPIOAEN;
    RCC->APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC->APB2ENR;
    gpio_config(GPIOA, 9u, GPIO_MODE_AF, 7u);
    gpio_config(GPIOA, 10u, GPIO_MODE_AF, 7u);

    USART1->CR1 = 0u;
    USART1->BRR = (PCLK2_HZ + baud / 2u) / baud;
    USART1->CR1 = USART_CR1_TE | USART_CR1_RE;
    USART1->CR1 |= USART_CR1_UE;
    uint32_t n = 0;
    while (!(USART1->ISR & USART_ISR_TEACK) && ++n < POLL_LIMIT) {
    }
    nvic_set_priority(IRQ_USART1, PRIO_CONSOLE);
    nvic_enable(IRQ_USART1);
    return n < POLL_LIMIT ? 0u : BOOTF_USART_TIMEOUT;
}

void console_write(const char *s, uint32_t n)
{
    uint32_t primask = cpu_irq_save();
    uint32_t head = s_con.head;
    for (uint32_t i = 0; i < n; i++) {
        if (head - s_con.tail >= CONSOLE_RING_SIZE) {
            s_con.dropped += n - i;
            break;
        }
        s_con.buf[head % CONSOLE_RING_SIZE] = s[i];
        head++;
    }
    s_con.head = head;
    USART1->CR1 |= USART_CR1_TXEIE;
    cpu_irq_restore(primask);
}

void console_puts(const char *s)
{
    uint32_t n = 0;
    while (s[n]) {
        n++;
    }
    console_write(s, n);
}

uint32_t console_dropped(void) { return s_con.dropped; }

void USART1_IRQHandler(void)
{
    uint32_t isr = USART1->ISR;
    if ((isr & USART_ISR_TXE) && (USART1->CR1 & USART_CR1_TXEIE)) {
        uint32_t tail = s_con.tail;
        if (tail != s_con.head) {
            USART1->TDR = (uint8_t)s_con.buf[tail % CONSOLE_RING_SIZE];
            s_con.tail = tail + 1u;
        }
        if (s_con.tail == s_con.head) {
            USART1->CR1 &= ~USART_CR1_TXEIE;
        }
    }
    if (isr & USART_ISR_ORE) {
        USART1->ICR = USART_ICR_ORECF;     /* console RX is not used */
    }
}

static int wait_txe(void)
{
    for (uint32_t n = 0; n < POLL_LIMIT; n++) {
        if (USART1->ISR & USART_ISR_TXE) {
            return 0;
        }
    }
    return -1;
}

void console_panic_write(const char *s, uint32_t n)
{
    /* The ring is abandoned: it may be corrupted, and draining it (up to 1 KB, ~90 ms) would not fit
     * before the watchdog bites. A leading CR LF puts the line on a line of its own even if the
     * fault cut a queued line in half. */
    USART1->CR1 &= ~USART_CR1_TXEIE;
    static const char crlf[2] = {'\r', '\n'};
    for (uint32_t i = 0; i < 2u + n; i++) {
        if (wait_txe()) {
            return;
        }
        USART1->TDR = (uint8_t)(i < 2u ? crlf[i] : s[i - 2u]);
    }
    for (uint32_t k = 0; k < POLL_LIMIT && !(USART1->ISR & USART_ISR_TC); k++) {
    }
}
