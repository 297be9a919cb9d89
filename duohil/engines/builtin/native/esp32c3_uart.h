/* The ESP32-C3 UART of esp32c3_uart.py in C: register block, 128-byte FIFOs, INT_RAW / INT_ENA /
 * INT_ST, the RX timeout, TX pacing at the programmed baud, poll hints and the IRQ level (the
 * one copy: esp32c3_uart.py's ESP32C3Uart builds it).
 *
 * Plain C, no Python: what the model needs from the machine (time, scheduler events, the IRQ
 * wire, the TX wire, the CPU's poll-skip) comes through dh_espu_env, which _core.c's Esp32c3Uart
 * fills. Every operation returns 0, or -1 when an env callback failed (a Python error is set). */
#ifndef DUOHIL_ESP32C3_UART_H
#define DUOHIL_ESP32C3_UART_H

#include <stdint.h>

#define ESPU_FIFO_LEN 128
#define ESPU_NREGS 33                 /* word offsets 0x00..0x80 */

typedef struct {
    void *ctx;
    int (*now)(void *ctx, int64_t *t);
    int (*at_tx_done)(void *ctx, int64_t t);            /* schedule the TX-done event */
    int (*at_loopback)(void *ctx, int64_t t, int byte);  /* schedule rx_char(byte, False) at t */
    int (*at_timeout)(void *ctx, int64_t t);            /* schedule the RX timeout event */
    int (*cancel_tx)(void *ctx);                        /* cancel the pending TX-done event */
    int (*cancel_timeout)(void *ctx);                   /* cancel the pending RX timeout */
    int (*has_timeout)(void *ctx);                      /* an RX timeout event is pending */
    int (*irq)(void *ctx, int level);                   /* set the IRQ output if it differs */
    /* a character starts leaving: frame2 = frame bits * 2 (1.5 stop bits are a half) */
    int (*tx)(void *ctx, int byte, int64_t t, int64_t bit_time, int frame2);
    int (*poll_hint)(void *ctx, int64_t wake, int has_wake);
    /* a state-changing read (a FIFO pop): the glue counts it as a bus write (mmio_writes) */
    int (*note_write)(void *ctx);
} dh_espu_env;

typedef struct {
    uint32_t reg[ESPU_NREGS];
    uint8_t rx[ESPU_FIFO_LEN], tx[ESPU_FIFO_LEN];
    int rx_head, rx_n, tx_head, tx_n;
    uint32_t latched;                 /* latched INT_RAW bits (TOUT, OVF, FRM_ERR, TX_DONE...) */
    int tx_busy;
    int64_t tx_end_ps;
    int64_t rx_busy_until;            /* stop-bit time of a character being received */
    int64_t rx_overruns, tx_overflows, frame_errors;
    int64_t unmodeled;                /* accesses to holes in the block */
    dh_espu_env env;
} dh_espu;

void dh_espu_init(dh_espu *u);                  /* register reset values, empty FIFOs */
int dh_espu_reset(dh_espu *u);                  /* esp32c3_uart.py's reset() */

/* bit time in ps (0: None); rx = 1 also needs CLK_CONF.RX_SCLK_EN (bit_time_ps), 0 does not */
int64_t dh_espu_bit_time(const dh_espu *u, int rx);
int dh_espu_frame2(const dh_espu *u);           /* frame bits * 2 */
int64_t dh_espu_char_ps(const dh_espu *u);      /* round(frame * bit time); 0: None */
uint32_t dh_espu_int_raw(const dh_espu *u);
uint32_t dh_espu_status(const dh_espu *u);

int dh_espu_read(dh_espu *u, uint32_t offset, unsigned size, uint64_t *value);
int dh_espu_write(dh_espu *u, uint32_t offset, unsigned size, uint64_t value);
int dh_espu_rx_char(dh_espu *u, int byte, int framing_error);
int dh_espu_rx_start(dh_espu *u, int64_t arrival_ps);
int dh_espu_tx_done(dh_espu *u);
int dh_espu_timeout(dh_espu *u);
int dh_espu_update(dh_espu *u);

#endif
