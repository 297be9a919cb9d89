/*
 * The few CPU primitives the pure units (link_rx, control, ...) need, so they compile both for the
 * target and, in tests/test_stm32_host.py, with the host gcc (DUOHIL_HOST, no registers).
 */
#ifndef DUOHIL_PORT_H
#define DUOHIL_PORT_H

#include <stdint.h>

#if defined(DUOHIL_HOST)
static inline uint32_t port_irq_save(void) { return 0u; }
static inline void port_irq_restore(uint32_t s) { (void)s; }
static inline void port_dmb(void) { __sync_synchronize(); }
#else
#include "../regs/cm7.h"
static inline uint32_t port_irq_save(void) { return cpu_irq_save(); }
static inline void port_irq_restore(uint32_t s) { cpu_irq_restore(s); }
static inline void port_dmb(void) { cpu_dmb(); }
#endif

#endif
