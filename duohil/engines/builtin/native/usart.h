/* The STM32H7 USART: the one copy of the model (stm32_usart.py's Stm32Usart is its Python face).
 *
 * Plain C, no Python: one dh_usart per USART/UART/LPUART instance, owned by _core.c's Usart
 * binding (stm32_usart.py's docstring says what is modelled): the register bank's bus
 * semantics (byte/halfword accesses, read-only ISR/RDR, write-only-trigger RQR/ICR), UE/TE/RE,
 * the baud rate from kernel_hz/PRESC/BRR/OVER8 (LPUART: 256 x f_ck / BRR), paced TX through TDR
 * or the 16-deep TX FIFO, RX into RDR or the RX FIFO with ORE/FE, IDLE once per burst, the
 * receiver timeout, the IRQ and the two DMA request lines.
 *
 * What the model needs from the rest of the machine goes through dh_usart_host (the binding's
 * callbacks): the time, the scheduler (three events: TX done, IDLE, RTO), the three output
 * lines, the TX sink, the CPU's poll hint and the event log's "DMA request not wired" warning.
 * Every host callback and every model function that returns int: 0 = done, -1 = error (the
 * host's error is set and the model hands it on at once, as the Python model's exception would).
 */
#ifndef DUOHIL_USART_H
#define DUOHIL_USART_H

#include <stdint.h>

typedef __int128 dh_i128;

#define DH_USART_FIFO 16

enum { DH_USART_EV_TX, DH_USART_EV_IDLE, DH_USART_EV_RTO, DH_USART_EV_N };
enum { DH_USART_OUT_IRQ, DH_USART_OUT_RXREQ, DH_USART_OUT_TXREQ, DH_USART_OUT_N };

/* register index = offset / 4 */
enum { DH_CR1, DH_CR2, DH_CR3, DH_BRR, DH_GTPR, DH_RTOR, DH_RQR, DH_ISR, DH_ICR, DH_RDR, DH_TDR,
       DH_PRESC, DH_USART_NREG };

typedef struct {
    int (*now)(void *host, int64_t *out);
    /* schedule event `which` at t (replacing none: the model cancels first) */
    int (*schedule)(void *host, int which, dh_i128 t);
    /* cancel event `which` if there is one, and forget it */
    int (*cancel)(void *host, int which);
    /* forget event `which` without cancelling it (it is firing) */
    void (*forget)(void *host, int which);
    /* 1 and its time when event `which` is held and not cancelled, 0 when not, -1 on error */
    int (*live)(void *host, int which, int64_t *t);
    /* drive output `which` to level (the host skips it when the line is already there) */
    int (*output)(void *host, int which, int level);
    /* a character starts leaving the shift register; frame_half = frame bits x 2 */
    int (*tx)(void *host, int byte, int64_t t0, dh_i128 bit_ps, int frame_half);
    /* ISR read that cannot change before wake (has_wake = 0: not before some event fires) */
    int (*poll_hint)(void *host, int has_wake, int64_t wake);
    /* CR3.DMAR (which = RXREQ) / DMAT (TXREQ) rose: warn once when the line is not wired */
    int (*dma_rising)(void *host, int which);
} dh_usart_host;

typedef struct {
    uint32_t reg[DH_USART_NREG];
    int low_power;
    int64_t kernel_hz;
    int tdr_full;
    uint16_t txq[DH_USART_FIFO];
    int ntx;
    uint16_t rxq[DH_USART_FIFO];
    uint8_t rxfe[DH_USART_FIFO];
    int nrx;
    int64_t shift_free_at;
    uint64_t tx_count, rx_count, rx_overruns, rx_framing_errors, rx_dropped;
    const dh_usart_host *host;
    void *hctx;
} dh_usart;

typedef struct {
    int bit_valid;       /* 0: no valid divider (Python's None) */
    dh_i128 bit_ps;
    int frame_half;      /* frame bits x 2 (21 for 10.5) */
    dh_i128 char_ps;     /* meaningful when bit_valid */
    int data_bits;
} dh_usart_timing;

void dh_usart_init(dh_usart *u, int low_power, int64_t kernel_hz, const dh_usart_host *host,
                   void *hctx);
/* The register bank: offset relative to the base, size 1, 2, 4 or 8. */
int dh_usart_read(dh_usart *u, uint32_t offset, unsigned size, uint64_t *value);
int dh_usart_write(dh_usart *u, uint32_t offset, unsigned size, uint64_t value);
/* reset(): events cancelled, registers and state to reset, kernel_hz to the repl frequency */
int dh_usart_reset(dh_usart *u, int64_t kernel_hz);
/* a character whose stop bit arrives now; byte9 = byte & 0x1FF (the bits the model keeps) */
int dh_usart_rx_char(dh_usart *u, unsigned byte9, int framing_error);
int dh_usart_tx_done(dh_usart *u);
int dh_usart_idle_elapsed(dh_usart *u);
int dh_usart_rto_elapsed(dh_usart *u);
void dh_usart_timing_of(const dh_usart *u, dh_usart_timing *t);
/* bit_time_ps(): 0 when UE/RE are not both set or the divider is invalid (Python: None) */
int dh_usart_rx_bit_valid(const dh_usart *u, dh_i128 *bit_ps);

#endif
