/*
 * duohil link framing, shared by the STM32H743 and the ESP32-C3-class peer firmware.
 *
 *   SOF 0xFE | LEN (payload bytes, 0..252) | PAYLOAD[LEN] | CRC16 (low byte first)
 *
 * CRC-16/MODBUS (reflected poly 0xA001, init 0xFFFF, no final xor) over LEN and PAYLOAD.
 * The spec is protocol/PROTOCOL.md; protocol/vectors.json pins C and Python to the same bytes.
 *
 * No heap, no libc beyond what freestanding code has: both firmwares link this file.
 *
 * FIX_RESYNC selects the decoder behaviour (crash mode CM2, CRASH_MODES.md):
 *   0 (field bug)  trusts LEN whatever it says (0..255), ignores idle-line signals, and after a CRC
 *                  failure discards the whole span it buffered before hunting for the next SOF.
 *   1 (fix)        rejects LEN > FRAME_MAX_PAYLOAD at once, drops a partial frame on an idle-line
 *                  signal from the driver, and after any rejection rescans the buffered bytes from
 *                  the byte after the bad SOF, so a frame hidden inside the bad span is still found.
 */
#ifndef DUOHIL_FRAME_H
#define DUOHIL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifndef FIX_RESYNC
#define FIX_RESYNC 1
#endif

#define FRAME_SOF          0xFEu
#define FRAME_MAX_PAYLOAD  252u
#define FRAME_OVERHEAD     4u                                  /* SOF, LEN, CRC lo, CRC hi */
#define FRAME_MAX_SIZE     (FRAME_MAX_PAYLOAD + FRAME_OVERHEAD)  /* 256 */

/* A span big enough for the buggy decoder's worst case: LEN up to 255 plus SOF, LEN and CRC. */
#define FRAME_RAW_CAP      (255u + FRAME_OVERHEAD)

uint16_t crc16_modbus(const uint8_t *data, size_t len);
/* Continue a CRC over more data (start with crc = 0xFFFF). */
uint16_t crc16_modbus_update(uint16_t crc, const uint8_t *data, size_t len);

/* Encode one frame into out (capacity cap). Returns the frame size, or 0 if len > 252 or the
 * frame does not fit. */
size_t frame_encode(uint8_t *out, size_t cap, const uint8_t *payload, size_t len);

/* Called once per complete, CRC-valid frame. payload points into the decoder: copy what you keep. */
typedef void (*frame_handler_t)(void *ctx, const uint8_t *payload, uint8_t len);

typedef struct {
    /* counters, monotonic, for status blocks and tests */
    uint32_t frames_ok;
    uint32_t crc_errors;       /* complete frames whose CRC did not match */
    uint32_t len_errors;       /* LEN > FRAME_MAX_PAYLOAD (fixed decoder only) */
    uint32_t resyncs;          /* rescans started (fixed decoder) */
    uint32_t idle_resets;      /* partial frames dropped on an idle-line signal (fixed decoder) */
    uint32_t bytes_discarded;  /* bytes that ended up in no valid frame */
    /* internal state */
    uint8_t  state;
    uint8_t  len;
    uint16_t n;                /* bytes buffered in raw[] (SOF included) */
    uint8_t  raw[FRAME_RAW_CAP];
} frame_decoder_t;

void frame_decoder_init(frame_decoder_t *d);
/* Feed one received byte; on_frame is called for each frame this byte completes (the fixed decoder
 * can complete several at once when a rescan finds frames inside a rejected span). */
void frame_decoder_feed(frame_decoder_t *d, uint8_t byte, frame_handler_t on_frame, void *ctx);
/* Feed a buffer: the same as calling frame_decoder_feed for each byte. */
void frame_decoder_feed_buf(frame_decoder_t *d, const uint8_t *buf, size_t len,
                            frame_handler_t on_frame, void *ctx);
/* The line has been idle for one character time (USART IDLE / RX timeout). The fixed decoder
 * rescans and then drops any partial frame; the buggy decoder ignores it. */
void frame_decoder_idle(frame_decoder_t *d, frame_handler_t on_frame, void *ctx);

#endif
