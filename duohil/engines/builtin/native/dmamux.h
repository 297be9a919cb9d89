/* STM32H7 DMAMUX1: the one copy of its state and routing (stm32_dmamux.py is its Python face).
 *
 * Routing only: request line DMAREQ_ID of channel CxCR drives output x. The other registers are
 * stored with their access types (synchronisation, event generation, request generators: no
 * behaviour). Outputs go through a dh_dmamux_host the glue provides.
 */
#ifndef DUOHIL_DMAMUX_H
#define DUOHIL_DMAMUX_H

#include <stdint.h>

#define DH_DMAMUX_MAX_CHANNELS 32        /* CSR sits at 0x80 */
#define DH_DMAMUX_MAX_GENERATORS 16      /* RGSR sits at 0x140 */
#define DH_DMAMUX_IDS 256                /* DMAREQ_ID is 8 bits: higher lines are never routed */

typedef struct {
    /* output c of the multiplexer (a Signal: it ignores a set to the level it has) */
    int (*output)(void *host, int c, int level);
} dh_dmamux_host;

typedef struct {
    int n_channels, n_generators;
    uint32_t ccr[DH_DMAMUX_MAX_CHANNELS];
    uint32_t cfr, rgcr[DH_DMAMUX_MAX_GENERATORS], rgcfr;   /* CSR and RGSR are read-only 0 */
    uint8_t level[DH_DMAMUX_IDS];        /* request id -> current level */
    const dh_dmamux_host *host;
    void *hctx;
} dh_dmamux;

void dh_dmamux_init(dh_dmamux *m, int n_channels, int n_generators, const dh_dmamux_host *host,
                    void *hctx);
/* registers to their reset values, every output low; the input levels are wires and stay */
int dh_dmamux_reset(dh_dmamux *m);
int dh_dmamux_set_input(dh_dmamux *m, int line, int level);
uint64_t dh_dmamux_read(const dh_dmamux *m, uint32_t offset, unsigned size, int *modelled);
int dh_dmamux_write(dh_dmamux *m, uint32_t offset, unsigned size, uint64_t value, int *modelled);

#endif
