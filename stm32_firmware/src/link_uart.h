/*
 * The link to the peer on USART3 (link_uart.c): RX by DMA1 stream 0 in circular mode (DMAMUX1
 * request 45) with IDLE-line, half- and full-transfer interrupts; TX by DMA1 stream 1 in normal
 * mode (request 46). Both DMA buffers live in cacheable AXI SRAM (.dma_buffers): DMA1 cannot reach
 * DTCM. Frames are decoded by protocol/frame.c and handed to dispatch.c.
 */
#ifndef DUOHIL_LINK_UART_H
#define DUOHIL_LINK_UART_H

#include <stdint.h>
#include "dispatch.h"
#include "../../protocol/frame.h"

/* Returns 0 or BOOTF_USART_TIMEOUT. ops receive the decoded messages (main-loop context). */
uint32_t link_init(uint32_t baud, const dispatch_ops_t *ops);
/* Main loop: parse what the RX DMA has written since the last call. Returns frames accepted. */
uint32_t link_poll(void);
/* Main loop: send a telemetry frame now if the TX stream is idle, else queue it (one slot, the newest
 * wins) for the TX-complete ISR to encode and start. */
void link_send_telemetry(const telemetry_t *t);

typedef struct {
    uint32_t frames_ok, crc_errors, resyncs, len_errors, idle_resets, bytes_discarded;
    uint32_t rx_bytes, rx_idle_events, rx_ring_overruns, rx_sof_seen;
    uint32_t overruns, usart_errors, dma_errors, telemetry_sent, telemetry_dropped;
    dispatch_stats_t dispatch;
} link_stats_t;
void link_get_stats(link_stats_t *out);

#endif
