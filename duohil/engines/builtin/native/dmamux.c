/* STM32H7 DMAMUX1: registers and routing (see dmamux.h). */
#include "dmamux.h"

#include <string.h>

void dh_dmamux_init(dh_dmamux *m, int n_channels, int n_generators, const dh_dmamux_host *host,
                    void *hctx)
{
    memset(m, 0, sizeof *m);
    m->n_channels = n_channels;
    m->n_generators = n_generators;
    m->host = host;
    m->hctx = hctx;
}

int dh_dmamux_reset(dh_dmamux *m)
{
    memset(m->ccr, 0, sizeof m->ccr);
    memset(m->rgcr, 0, sizeof m->rgcr);
    m->cfr = m->rgcfr = 0;
    for (int c = 0; c < m->n_channels; c++)
        if (m->host->output(m->hctx, c, 0) < 0)
            return -1;
    return 0;
}

int dh_dmamux_set_input(dh_dmamux *m, int line, int level)
{
    level = level != 0;
    if (line < 0 || line >= DH_DMAMUX_IDS)
        return 0;                                /* no channel can select it */
    m->level[line] = (uint8_t)level;
    if (line == 0)
        return 0;
    for (int c = 0; c < m->n_channels; c++)       /* the channels that select it, in order */
        if ((m->ccr[c] & 0xFFu) == (uint32_t)line && m->host->output(m->hctx, c, level) < 0)
            return -1;
    return 0;
}

/* the register at a word offset: its word and whether reads give 0 (W1T) or writes are ignored
 * (CSR and RGSR: read-only and never set, so their word is any word reading as 0: cfr is read as 0
 * through *read_zero) */
static uint32_t *find(dh_dmamux *m, uint32_t base, int *read_zero, int *read_only)
{
    *read_zero = *read_only = 0;
    if (base < 4u * (uint32_t)m->n_channels)
        return &m->ccr[base / 4];
    if (base == 0x80 || base == 0x140) {
        *read_only = *read_zero = 1;
        return &m->cfr;
    }
    if (base == 0x84 || base == 0x144) {
        *read_zero = 1;
        return base == 0x84 ? &m->cfr : &m->rgcfr;
    }
    if (base >= 0x100 && base < 0x100 + 4u * (uint32_t)m->n_generators)
        return &m->rgcr[(base - 0x100) / 4];
    return NULL;
}

uint64_t dh_dmamux_read(const dh_dmamux *m, uint32_t offset, unsigned size, int *modelled)
{
    int rz, ro;
    uint32_t *w = find((dh_dmamux *)m, offset & ~3u, &rz, &ro);
    *modelled = w != NULL;
    if (!w || rz)
        return 0;
    uint64_t mask = size >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (8 * size)) - 1);
    return ((uint64_t)*w >> (8 * (offset & 3u))) & mask;
}

int dh_dmamux_write(dh_dmamux *m, uint32_t offset, unsigned size, uint64_t value, int *modelled)
{
    int rz, ro;
    uint32_t base = offset & ~3u;
    uint32_t *w = find(m, base, &rz, &ro);
    *modelled = w != NULL;
    if (!w || ro)
        return 0;
    unsigned bits = 8 * (offset & 3u);
    uint64_t szmask = size >= 4 ? 0xFFFFFFFFu : (((uint64_t)1 << (8 * size)) - 1);
    uint32_t bm = (uint32_t)((szmask << bits) & 0xFFFFFFFFu);
    *w = (*w & ~bm) | (uint32_t)((value << bits) & bm);
    if (base < 4u * (uint32_t)m->n_channels) {     /* CxCR: re-route output c */
        int c = (int)(base / 4);
        uint32_t rid = m->ccr[c] & 0xFFu;
        return m->host->output(m->hctx, c, rid != 0 && m->level[rid]);
    }
    return 0;
}
