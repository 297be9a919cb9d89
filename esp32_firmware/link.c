/* Link layer (link.h). */
#include "link.h"

void link_init(link_t *lk, uart_t *uart, link_rx_fn on_frame, void *ctx)
{
    lk->uart = uart;
    lk->on_frame = on_frame;
    lk->ctx = ctx;
    frame_decoder_init(&lk->dec);
}

int link_send(link_t *lk, const uint8_t *payload, uint8_t len)
{
    uint8_t frame[FRAME_MAX_SIZE];
    size_t n = frame_encode(frame, sizeof frame, payload, len);
    if (n == 0u) {
        return 0;
    }
    return uart_write(lk->uart, frame, (uint32_t)n);
}

static void handler(void *ctx, const uint8_t *payload, uint8_t len)
{
    link_t *lk = (link_t *)ctx;
    lk->on_frame(lk->ctx, payload, len);
}

void link_poll(link_t *lk)
{
    uart_t *u = lk->uart;
    for (;;) {
        uint32_t idle_at;
        int idle = uart_idle_peek(u, &idle_at);
        /* the line went idle after byte number idle_at: deliver bytes up to there, then the idle */
        if (idle && (int32_t)(idle_at - u->rx_tail) <= 0) {
            frame_decoder_idle(&lk->dec, handler, lk);
            uart_idle_pop(u);
            continue;
        }
        uint8_t b;
        if (!uart_read(u, &b)) {
            break;
        }
        frame_decoder_feed(&lk->dec, b, handler, lk);
    }
}

void link_stats(const link_t *lk, peer_status_t *st)
{
    const uart_t *u = lk->uart;
    st->tx_bytes = u->tx_head;
    st->tx_dropped = u->tx_dropped;
    st->rx_bytes = u->rx_head;
    st->rx_overflows = u->rx_overflows;
    st->rx_line_errors = u->line_errors;
    st->frames_ok = lk->dec.frames_ok;
    st->frame_crc_errors = lk->dec.crc_errors;
    st->frame_len_errors = lk->dec.len_errors;
    st->frame_resyncs = lk->dec.resyncs;
    st->frame_idle_resets = lk->dec.idle_resets;
}
