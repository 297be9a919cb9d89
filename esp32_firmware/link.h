/*
 * The link to the STM32 on UART1: frames out (protocol/frame.c encoder), frames in (frame decoder,
 * built with FIX_RESYNC=1 on the peer), idle-line markers from the RX timeout fed to the decoder.
 */
#ifndef PEER_LINK_H
#define PEER_LINK_H

#include <stdint.h>
#include "frame.h"
#include "status.h"
#include "uart.h"

typedef void (*link_rx_fn)(void *ctx, const uint8_t *payload, uint8_t len);

typedef struct {
    uart_t          *uart;
    frame_decoder_t  dec;
    link_rx_fn       on_frame;
    void            *ctx;
} link_t;

void link_init(link_t *lk, uart_t *uart, link_rx_fn on_frame, void *ctx);
/* Frame one payload and queue it whole; 0 when the TX ring is full (counted by the UART driver). */
int  link_send(link_t *lk, const uint8_t *payload, uint8_t len);
/* Feed every received byte and idle marker to the decoder (calls on_frame per valid frame). */
void link_poll(link_t *lk);
/* Copy link counters into the status block. */
void link_stats(const link_t *lk, peer_status_t *st);

#endif
