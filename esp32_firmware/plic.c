/* PLIC driver (plic.h). */
#include "plic.h"

#include "soc.h"

#define PLIC_MAX_SOURCES 64u

void plic_init(void)
{
    for (uint32_t w = 0; w < PLIC_MAX_SOURCES / 32u; w++) {
        mmio_write(PLIC_ENABLE0 + 4u * w, 0u);
    }
    mmio_write(PLIC_THRESHOLD, 0u);
    csr_set(mie, MIE_MEIE);
}

void plic_enable(uint32_t source, uint32_t priority)
{
    mmio_write(PLIC_PRIORITY(source), priority);
    uint32_t reg = PLIC_ENABLE0 + 4u * (source / 32u);
    mmio_write(reg, mmio_read(reg) | (1u << (source % 32u)));
}

uint32_t plic_claim(void)
{
    return mmio_read(PLIC_CLAIM);
}

void plic_complete(uint32_t source)
{
    mmio_write(PLIC_CLAIM, source);
}
