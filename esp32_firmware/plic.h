/* PLIC (stand-in for the C3 interrupt matrix): context 0, machine mode of hart 0. */
#ifndef PEER_PLIC_H
#define PEER_PLIC_H

#include <stdint.h>

void     plic_init(void);                         /* all sources off, threshold 0 */
void     plic_enable(uint32_t source, uint32_t priority);
uint32_t plic_claim(void);                        /* 0 = nothing pending */
void     plic_complete(uint32_t source);

#endif
