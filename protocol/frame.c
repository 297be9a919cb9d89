/*
 * duohil link framing: CRC-16/MODBUS, frame encoder and the byte-at-a-time decoder.
 * Spec: protocol/PROTOCOL.md. Python twin: duohil/protocol.py (byte-identical behaviour, pinned by
 * protocol/vectors.json and tests/test_protocol_c.py).
 *
 * Freestanding: no heap, no libc calls in the source (the RISC-V peer firmware has no libc). GCC may
 * still turn a copy loop into memmove/memcpy at -O2; firmware builds that lack them compile with
 * -fno-tree-loop-distribute-patterns or provide them.
 */
#include "frame.h"

/* The handler may be NULL (count only). It must not call back into the same decoder. */

/* Decoder states, kept in d->state for status blocks; the decoder itself works from d->n. */
#define ST_HUNT  0u   /* waiting for SOF */
#define ST_LEN   1u   /* SOF seen, waiting for LEN */
#define ST_BODY  2u   /* waiting for LEN + 2 more bytes (payload and CRC) */

/* ------------------------------------------------------------------------------------------------ */
/* CRC-16/MODBUS: reflected polynomial 0xA001, init 0xFFFF, no final xor.                            */
/* Nibble-table form: 32 bytes of flash, two look-ups per byte, same result as the bitwise loop.    */
/* ------------------------------------------------------------------------------------------------ */

static const uint16_t crc_nibble[16] = {
    0x0000u, 0xCC01u, 0xD801u, 0x1400u, 0xF001u, 0x3C00u, 0x2800u, 0xE401u,
    0xA001u, 0x6C00u, 0x7800u, 0xB401u, 0x5000u, 0x9C01u, 0x8801u, 0x4400u,
};

uint16_t crc16_modbus_update(uint16_t crc, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        crc = (uint16_t)(crc ^ data[i]);
        crc = (uint16_t)((crc >> 4) ^ crc_nibble[crc & 0x0Fu]);
        crc = (uint16_t)((crc >> 4) ^ crc_nibble[crc & 0x0Fu]);
    }
    return crc;
}

uint16_t crc16_modbus(const uint8_t *data, size_t len)
{
    return crc16_modbus_update(0xFFFFu, data, len);
}

/* ------------------------------------------------------------------------------------------------ */
/* Encoder                                                                                          */
/* ------------------------------------------------------------------------------------------------ */

size_t frame_encode(uint8_t *out, size_t cap, const uint8_t *payload, size_t len)
{
    if (len > FRAME_MAX_PAYLOAD || cap < len + FRAME_OVERHEAD) {
        return 0;
    }
    out[0] = (uint8_t)FRAME_SOF;
    out[1] = (uint8_t)len;
    /* Forward copy: also correct when encoding in place (payload == out + 2). */
    for (size_t i = 0; i < len; i++) {
        out[2 + i] = payload[i];
    }
    uint16_t crc = crc16_modbus(&out[1], len + 1u);
    out[len + 2u] = (uint8_t)crc;
    out[len + 3u] = (uint8_t)(crc >> 8);
    return len + FRAME_OVERHEAD;
}

/* ------------------------------------------------------------------------------------------------ */
/* Decoder                                                                                          */
/* ------------------------------------------------------------------------------------------------ */

void frame_decoder_init(frame_decoder_t *d)
{
    d->frames_ok = 0;
    d->crc_errors = 0;
    d->len_errors = 0;
    d->resyncs = 0;
    d->idle_resets = 0;
    d->bytes_discarded = 0;
    d->state = ST_HUNT;
    d->len = 0;
    d->n = 0;
}

/* f[0 .. len+4) is a complete candidate frame (SOF first): does its CRC match? */
static int candidate_crc_ok(const uint8_t *f, uint8_t len)
{
    uint16_t crc = crc16_modbus(&f[1], (size_t)len + 1u);
    uint16_t got = (uint16_t)(f[len + 2u] | (f[len + 3u] << 8));
    return crc == got;
}

static void set_state(frame_decoder_t *d)
{
    d->state = (d->n == 0u) ? ST_HUNT : (d->n == 1u) ? ST_LEN : ST_BODY;
}

#if FIX_RESYNC
/*
 * CM2 fix. Process the bytes raw[0 .. end): raw[s .. s+n) is the candidate frame being built and
 * raw[s+n .. end) the bytes still to be (re)scanned, always contiguous. Scanning a byte is just n++
 * (it is already in place). Rejecting a candidate drops only its SOF (s++, n = 0): the bytes after
 * it become the bytes to scan again, so a frame hidden inside a rejected span is still found.
 * Iterative, bounded by FRAME_RAW_CAP, no recursion; every candidate ends here or stays partial.
 * At the end the partial candidate is moved to raw[0 .. n) so that n keeps its header meaning.
 */
static void scan(frame_decoder_t *d, uint16_t s, uint16_t end, frame_handler_t on_frame, void *ctx)
{
    uint8_t *raw = d->raw;
    uint16_t n = d->n;

    while ((uint16_t)(s + n) < end) {
        uint8_t b = raw[s + n];
        if (n == 0u) {                              /* hunting */
            if (b == FRAME_SOF) {
                n = 1u;
            } else {
                d->bytes_discarded++;
                s++;
            }
        } else if (n == 1u) {                       /* LEN */
            n = 2u;
            d->len = b;
            if (b > FRAME_MAX_PAYLOAD) {            /* impossible LEN: reject at once, rescan LEN */
                d->len_errors++;
                d->resyncs++;
                d->bytes_discarded++;               /* the bad SOF */
                s++;
                n = 0u;
            }
        } else {
            n++;
            if (n == (uint16_t)(d->len + FRAME_OVERHEAD)) {
                if (candidate_crc_ok(&raw[s], d->len)) {
                    d->frames_ok++;
                    d->n = 0u;                      /* consistent state if the handler looks */
                    if (on_frame != NULL) {
                        on_frame(ctx, &raw[s + 2u], d->len);
                    }
                    s = (uint16_t)(s + n);
                } else {                            /* rescan from the byte after the bad SOF */
                    d->crc_errors++;
                    d->resyncs++;
                    d->bytes_discarded++;
                    s++;
                }
                n = 0u;
            }
        }
    }

    if (s != 0u) {                                  /* compact the partial candidate to raw[0] */
        for (uint16_t i = 0; i < n; i++) {
            raw[i] = raw[s + i];
        }
    }
    d->n = n;
    set_state(d);
}
#endif

void frame_decoder_feed(frame_decoder_t *d, uint8_t byte, frame_handler_t on_frame, void *ctx)
{
#if FIX_RESYNC
    if (d->n == 0u && byte != FRAME_SOF) {          /* fast path while hunting */
        d->bytes_discarded++;
        return;
    }
    d->raw[d->n] = byte;
    scan(d, 0u, (uint16_t)(d->n + 1u), on_frame, ctx);
#else
    /* CM2 field bug: LEN is trusted whatever it says (up to 255), and a CRC failure throws away the
     * whole span, including any real frame that started inside it. */
    if (d->n == 0u) {
        if (byte == FRAME_SOF) {
            d->raw[0] = byte;
            d->n = 1u;
        } else {
            d->bytes_discarded++;
        }
    } else if (d->n == 1u) {
        d->raw[1] = byte;
        d->len = byte;
        d->n = 2u;
    } else {
        d->raw[d->n++] = byte;
        if (d->n == (uint16_t)(d->len + FRAME_OVERHEAD)) {
            if (candidate_crc_ok(d->raw, d->len)) {
                d->frames_ok++;
                d->n = 0u;
                if (on_frame != NULL) {
                    on_frame(ctx, &d->raw[2], d->len);
                }
            } else {
                d->crc_errors++;
                d->bytes_discarded += d->n;
                d->n = 0u;
            }
        }
    }
    set_state(d);
#endif
}

void frame_decoder_feed_buf(frame_decoder_t *d, const uint8_t *buf, size_t len,
                            frame_handler_t on_frame, void *ctx)
{
    for (size_t i = 0; i < len; i++) {
        frame_decoder_feed(d, buf[i], on_frame, ctx);
    }
}

void frame_decoder_idle(frame_decoder_t *d, frame_handler_t on_frame, void *ctx)
{
#if FIX_RESYNC
    /* CM2 fix: an idle line means no more bytes of the partial frame are coming. Abandon it like a
     * rejected frame (drop its SOF, rescan the rest); repeat until nothing partial is left, so a
     * complete frame buffered behind a second partial candidate is still delivered. Each pass
     * drops at least one byte, so this ends within d->n passes. */
    while (d->n != 0u) {
        d->idle_resets++;
        d->resyncs++;
        d->bytes_discarded++;
        uint16_t end = d->n;
        d->n = 0u;
        scan(d, 1u, end, on_frame, ctx);
    }
#else
    (void)d;            /* CM2 field bug: the idle-line signal is ignored */
    (void)on_frame;
    (void)ctx;
#endif
}
