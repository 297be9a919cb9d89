/* The link's per-byte path (see link.h). Same order of fault application, same
 * "+"-joined fault names, same noise draws (one per frame bit, only for bytes inside a window). */
#include "link.h"

#include <stdlib.h>
#include <string.h>

const char *const dh_link_fault_names[LF_NKINDS] = {
    "flip", "drop", "insert", "duplicate", "delay", "truncate", "noise",
};

#define BAUD_TOLERANCE 0.03

void dh_link_dir_init(dh_link_dir *d)
{
    memset(d, 0, sizeof *d);
}

void dh_link_dir_free(dh_link_dir *d)
{
    free(d->faults);
    d->faults = NULL;
    d->nfaults = d->cap = 0;
}

int dh_link_set_faults(dh_link_dir *d, const dh_link_fault *f, size_t n)
{
    if (n > d->cap) {
        dh_link_fault *v = realloc(d->faults, n * sizeof *v);
        if (!v)
            return -1;
        d->faults = v;
        d->cap = n;
    }
    if (n)
        memcpy(d->faults, f, n * sizeof *f);
    d->nfaults = n;
    return 0;
}

static int covers(const dh_link_fault *f, int64_t k)
{
    if (f->kind == LF_TRUNCATE)
        return k >= f->index && (!f->has_end || k < f->end);
    return f->kind != LF_NOISE && k == f->index;
}

static void name_add(char *buf, size_t cap, const char *name)
{
    size_t n = strlen(buf);
    if (n && n + 1 < cap)
        buf[n++] = '+', buf[n] = 0;
    strncat(buf, name, cap - n - 1);
}

int dh_link_tx(dh_link_dir *d, int64_t k, int byte, int64_t t_start, int64_t frame_ps, int nbits,
               dh_link_draw draw, void *draw_ctx, dh_link_emit emit, void *emit_ctx)
{
    if (!d->nfaults) {                                   /* fast path: a clean wire */
        int64_t arrive = t_start + frame_ps + d->shift_ps;
        if (arrive < d->line_free + frame_ps)
            arrive = d->line_free + frame_ps;
        d->line_free = arrive;
        return emit(emit_ctx, k, arrive, byte, byte, 0, NULL);
    }
    /* every kind once per fault, "+" between: at most nfaults * 10 characters */
    size_t cap = d->nfaults * 10 + 8;
    char stackbuf[256];
    char *touched = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!touched)
        return -2;                                       /* out of memory */
    touched[0] = 0;
    int value = byte, framing = 0, dropped = 0, rc = -1;
    size_t nextra = 0;
    for (size_t i = 0; i < d->nfaults; i++) {
        const dh_link_fault *f = &d->faults[i];
        if (f->kind == LF_NOISE || !covers(f, k))
            continue;
        if (f->kind != LF_INSERT && f->kind != LF_DUPLICATE)   /* those name the extra byte only */
            name_add(touched, cap, dh_link_fault_names[f->kind]);
        switch (f->kind) {
        case LF_FLIP: value ^= (int)(f->mask & 0xFF); break;
        case LF_DROP: case LF_TRUNCATE: dropped = 1; break;
        case LF_INSERT: case LF_DUPLICATE: nextra++; break;
        case LF_DELAY: d->shift_ps += f->delay_ps; break;
        default: break;
        }
    }
    int64_t arrive = t_start + frame_ps + d->shift_ps;
    if (arrive < d->line_free + frame_ps)
        arrive = d->line_free + frame_ps;
    for (size_t i = 0; i < d->nfaults; i++) {
        const dh_link_fault *f = &d->faults[i];
        if (f->kind != LF_NOISE || !(f->t_start <= arrive && arrive < f->t_end))
            continue;
        int flipped = 0;
        for (int b = 0; b < nbits; b++) {
            double x;
            if (draw(draw_ctx, &x) < 0)
                goto out;
            if (x < f->ber) {
                flipped = 1;
                if (1 <= b && b <= 8)
                    value ^= 1 << (b - 1);
                else
                    framing = 1;
            }
        }
        if (flipped)
            name_add(touched, cap, "noise");
    }
    d->line_free = arrive;
    if (emit(emit_ctx, k, arrive, byte, dropped ? -1 : value, framing, touched[0] ? touched : NULL) < 0)
        goto out;
    if (nextra) {
        /* in table order, as link.py's `extra` list (emit only schedules: the table is as it was) */
        for (size_t i = 0; i < d->nfaults; i++) {
            const dh_link_fault *f = &d->faults[i];
            if ((f->kind != LF_INSERT && f->kind != LF_DUPLICATE) || !covers(f, k))
                continue;
            int ev = f->kind == LF_INSERT ? (int)(f->value & 0xFF) : value;
            const char *nm = dh_link_fault_names[f->kind];
            arrive += frame_ps;
            d->line_free = arrive;
            if (emit(emit_ctx, k, arrive, byte, ev, framing, nm) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    if (touched != stackbuf)
        free(touched);
    return rc;
}

static int level(int byte, int64_t t2, int64_t tx_bit)     /* t2: twice the time since the edge */
{
    int64_t j = t2 / (2 * tx_bit);
    if (j == 0)
        return 0;
    if (1 <= j && j <= 8)
        return (byte >> (j - 1)) & 1;
    return 1;
}

int dh_link_sample_mismatched(int byte, int64_t tx_bit, int64_t rx_bit)
{
    int value = 0;
    for (int i = 1; i <= 8; i++)
        value |= level(byte, (2 * i + 1) * rx_bit, tx_bit) << (i - 1);
    return value;
}

int dh_link_baud_mismatch(int64_t rx_bt, int64_t tx_bt)
{
    int64_t diff = rx_bt > tx_bt ? rx_bt - tx_bt : tx_bt - rx_bt;
    double thr = BAUD_TOLERANCE * (double)tx_bt;
    /* an int against a float: exact while diff < 2**53 (bit times are far below) */
    return (double)diff > thr;
}

void dh_frame_track_init(dh_frame_track *t, int sof)
{
    memset(t, 0, sizeof *t);
    t->sof = sof;
    t->state = DH_FR_NONE;
}

int dh_frame_track_byte(dh_frame_track *t, int byte)
{
    switch (t->state) {
    case DH_FR_NONE:
        if (byte != t->sof)
            return DH_FR_NONE;
        t->state = DH_FR_LEN;
        return DH_FR_SOF;
    case DH_FR_LEN:
        t->len = byte;
        t->npay = 0;
        t->state = byte ? DH_FR_PAYLOAD : DH_FR_CRC_LO;
        return DH_FR_LEN;
    case DH_FR_PAYLOAD:
        t->payload[t->npay++] = (uint8_t)byte;
        if (t->npay == t->len)
            t->state = DH_FR_CRC_LO;
        return DH_FR_PAYLOAD;
    case DH_FR_CRC_LO:
        t->state = DH_FR_CRC_HI;
        return DH_FR_CRC_LO;
    default:
        t->state = DH_FR_NONE;
        return DH_FR_CRC_HI;
    }
}

void dh_frame_track_done(dh_frame_track *t)
{
    t->frames++;
}
