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
int dh_link_sample_mismatched(int byte, int64_t tx_bit, int64_t rx_bit);

/* abs(rx_bt - tx_bt) > BAUD_TOLERANCE * tx_bt, as Python compares an int with a float */
int dh_link_baud_mismatch(int64_t rx_bt, int64_t tx_bt);

#endif
