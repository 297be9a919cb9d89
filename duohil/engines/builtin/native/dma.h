/* STM32H7 DMA1/DMA2 stream controller: the one copy of the model (stm32_dma.py is its Python face).
 *
 * Eight streams with their registers (SxCR, NDTR, PAR, M0AR, M1AR, FCR), LISR/HISR and the
 * counters of each stream. Everything that leaves the model (a bus access, the
 * current time, a scheduler event, an IRQ line, the event log) goes through a dh_dma_host the
 * CPython glue provides, so the decisions below have no Python in them. stm32_dma.py's docstring says what is and is not modelled.
 */
#ifndef DUOHIL_DMA_H
#define DUOHIL_DMA_H

#include <stdint.h>

#define DH_DMA_STREAMS 8
#define DH_DMA_MAX_ITEMS_PER_SERVICE 256
#define DH_DMA_REGS_END 0xD0u            /* first offset past the last stream's FCR */

enum { DH_DMA_FEIF = 0, DH_DMA_DMEIF = 2, DH_DMA_TEIF = 3, DH_DMA_HTIF = 4, DH_DMA_TCIF = 5 };
enum { DH_DMA_P2M = 0, DH_DMA_M2P = 1, DH_DMA_M2M = 2 };

/* What the model asks of its surroundings; every int-returning call: 0 done, -1 error (a Python
 * exception is set; the model hands it on unchanged). */
typedef struct {
    /* one item at a bus address: a peripheral register through the bus, else memory through the
     * DMA port; buf holds size bytes, little-endian */
    int (*bus_read)(void *host, uint32_t address, unsigned size, uint8_t *buf);
    int (*bus_write)(void *host, uint32_t address, unsigned size, const uint8_t *buf);
    /* *ok = a peripheral is mapped at address, or one memory holds [address, address + size) */
    int (*mapped)(void *host, uint32_t address, int64_t size, int *ok);
    int (*now)(void *host, int64_t *t);
    /* an event at now() that calls dh_dma_service(s) (the stream's service event) */
    int (*schedule_service)(void *host, int s);
    int (*cancel_service)(void *host, int s);
    /* an event at t that calls dh_dma_deliver(s, flag, end, gen, 1) */
    int (*schedule_delivery)(void *host, int s, int flag, int end, uint32_t gen, int64_t t);
    /* the stream's IRQ output: set it to level when it is not at that level already */
    int (*irq)(void *host, int s, int level);
    /* the event log's dma_transfer_error */
    int (*transfer_error)(void *host, int s);
} dh_dma_host;

typedef struct {
    uint32_t cr, ndtr, par, m0ar, m1ar, fcr;
    int request;            /* level of the DMAMUX request line */
    int span_ok;            /* the whole programmed span is reachable (checked at start) */
    uint32_t reload;        /* NDT at enable (circular reload value) */
    uint64_t p_off, m_off;  /* bytes advanced on the peripheral / memory side */
    int service;            /* a service event is scheduled */
    int64_t latency_ps;
    int64_t last_delivery;
    int pending;            /* delayed flag deliveries not yet delivered */
    uint64_t transfers;
    uint32_t gen;           /* incremented at each enable: a late EN clear hits only its own */
} dh_dma_stream;

typedef struct {
    uint32_t lisr, hisr;
    uint32_t lifcr, hifcr;  /* what was last written (a byte write reuses the other bytes) */
    dh_dma_stream st[DH_DMA_STREAMS];
    int servicing;          /* inside dh_dma_service: requests are scheduled, not served */
    const dh_dma_host *host;
    void *hctx;
} dh_dma;

void dh_dma_init(dh_dma *d, const dh_dma_host *host, void *hctx);
/* The chip reset: registers and counters; latencies and request levels survive (a harness knob
 * and wires, not chip state). The host cancels the events and lowers the outputs. */
void dh_dma_reset(dh_dma *d);

/* bus side, offset from the block's base: value as the register bank reads/writes it */
uint64_t dh_dma_read(const dh_dma *d, uint32_t offset, unsigned size, int *modelled);
int dh_dma_write(dh_dma *d, uint32_t offset, unsigned size, uint64_t value, int *modelled);

int dh_dma_set_input(dh_dma *d, int line, int level);
int dh_dma_service(dh_dma *d, int s);
int dh_dma_deliver(dh_dma *d, int s, int flag, int end, uint32_t gen, int from_event);

int dh_dma_flag(const dh_dma *d, int s, int flag);
int dh_dma_irq_level(const dh_dma *d, int s);

#endif
