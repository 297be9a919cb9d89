/* The UART wire per byte, the one copy (link.py's UartLink is its Python face): arrival times,
 * the fault table of one direction, seeded noise and the baud-mismatch sampling.
 *
 * Plain C, no Python: _core.c's UartLink owns two dh_link_dir (one per direction) and hands
 * this file two callbacks, one drawing the next number of the link's random.Random (the link's
 * own random.Random(seed), so a seed always draws the same numbers) and one that schedules
 * an arrival.
 */
#ifndef DUOHIL_LINK_H
#define DUOHIL_LINK_H

#include <stddef.h>
#include <stdint.h>

enum { LF_FLIP, LF_DROP, LF_INSERT, LF_DUPLICATE, LF_DELAY, LF_TRUNCATE, LF_NOISE, LF_NKINDS };

extern const char *const dh_link_fault_names[LF_NKINDS];

typedef struct {
    int kind;
    int64_t index;
    int64_t mask, value;        /* flip, insert (the low 8 bits are used) */
    int64_t delay_ps;           /* delay */
    int has_end;                /* truncate: end given (else every later byte) */
    int64_t end;
    int64_t t_start, t_end;     /* noise window [t_start, t_end) */
    double ber;                 /* noise bit-error rate */
} dh_link_fault;

typedef struct {
    int64_t sent;               /* bytes sent so far (the next one's index) */
    int64_t shift_ps;           /* accumulated delay faults */
    int64_t line_free;          /* arrival time of the last character on this side */
    dh_link_fault *faults;
    size_t nfaults, cap;
} dh_link_dir;

/* one uniform double in [0, 1) from the link's generator; -1 on error */
typedef int (*dh_link_draw)(void *ctx, double *out);
/* schedule one arrival: value -1 = dropped; fault NULL = none; -1 on error */
typedef int (*dh_link_emit)(void *ctx, int64_t k, int64_t t, int sent, int value, int framing,
                            const char *fault);

void dh_link_dir_init(dh_link_dir *d);
void dh_link_dir_free(dh_link_dir *d);
/* replace the fault table (n entries copied); -1 when out of memory */
int dh_link_set_faults(dh_link_dir *d, const dh_link_fault *f, size_t n);

/* A character starts, after the tx observers: byte k = d->sent - 1 already counted by the caller.
 * frame_ps = round(frame_bits * bit_time), nbits = int(frame_bits + 0.5). Emits the arrivals in
 * time order; 0, -1 (an error from draw or emit) or -2 (out of memory). */
int dh_link_tx(dh_link_dir *d, int64_t k, int byte, int64_t t_start, int64_t frame_ps, int nbits,
               dh_link_draw draw, void *draw_ctx, dh_link_emit emit, void *emit_ctx);

/* the byte a receiver with bit time rx_bit reads from one 8-bit character sent with tx_bit */
/* The sender's framing, followed byte by byte as bytes leave (before any fault touches them):
 * SOF, LEN, LEN payload bytes, CRC low, CRC high. Senders emit whole frames, so no resync is
 * needed; a byte outside a frame is DH_FR_NONE. inject.py's frame-aware faults listen to it. */
enum { DH_FR_NONE, DH_FR_SOF, DH_FR_LEN, DH_FR_PAYLOAD, DH_FR_CRC_LO, DH_FR_CRC_HI };

typedef struct {
    int sof;                    /* the start-of-frame byte (protocol.py's SOF) */
    int state;                  /* the field the next byte is, but DH_FR_NONE = idle */
    int len;                    /* the current frame's LEN (the last one while idle) */
    int npay;                   /* payload bytes so far */
    uint8_t payload[256];
    int64_t frames;             /* frames completed (the current one's index) */
} dh_frame_track;

void dh_frame_track_init(dh_frame_track *t, int sof);
/* the field ``byte`` is (DH_FR_*); for DH_FR_PAYLOAD its index is t->npay - 1. After
 * DH_FR_CRC_HI the frame's payload is t->payload[0..npay) until the next byte, and frames has
 * not been counted yet: the caller calls dh_frame_track_done once it has told its listeners */
int dh_frame_track_byte(dh_frame_track *t, int byte);
void dh_frame_track_done(dh_frame_track *t);

int dh_link_sample_mismatched(int byte, int64_t tx_bit, int64_t rx_bit);

/* abs(rx_bt - tx_bt) > BAUD_TOLERANCE * tx_bt, as Python compares an int with a float */
int dh_link_baud_mismatch(int64_t rx_bt, int64_t tx_bt);

#endif
