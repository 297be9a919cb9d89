/* How one native unit reaches another without a Python call in between.
 *
 * A native model is a CPython object implemented in C. When another C unit (the MMIO bus, a DMA
 * stream, the link) should call it directly, the model's Python object exposes a capsule attribute
 * holding a `dh_port`: the operations for that role and the model's C state. The caller looks the
 * capsule up once, when it is wired (never per access), keeps a reference to the Python object so
 * the state outlives it, and falls back to the Python method of the same name when the attribute
 * is absent (a model still in Python, or a user's own model).
 *
 * Error convention for every operation that returns int: 0 = done, -1 = a Python exception is set
 * (the caller hands it on as the engine does: kept on the Uc object, emulation stopped).
 */
#ifndef DUOHIL_PORTS_H
#define DUOHIL_PORTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const void *ops;     /* one of the *_ops structs below, by the capsule's name */
    void *self;          /* the model's C state, passed back as the first argument */
} dh_port;

/* Attribute `_native_mmio`, capsule name "duohil.native.mmio": a register block on the bus.
 * offset is relative to the model's base; size is 1, 2, 4 or 8. */
#define DH_MMIO_CAPSULE "duohil.native.mmio"
typedef struct {
    int (*read)(void *self, uint32_t offset, unsigned size, uint64_t *value);
    int (*write)(void *self, uint32_t offset, unsigned size, uint64_t value);
} dh_mmio_ops;

/* Attribute `_native_dma_port`, capsule name "duohil.native.dmaport": memory as a DMA master
 * sees it (the D-cache's bus view when one is installed, else the CPU's memory). */
#define DH_DMAPORT_CAPSULE "duohil.native.dmaport"
typedef struct {
    int (*read)(void *self, uint32_t address, uint8_t *buf, size_t n);
    int (*write)(void *self, uint32_t address, const uint8_t *buf, size_t n);
} dh_dmaport_ops;

/* Attribute `_native_uart_rx`, capsule name "duohil.native.uart_rx": the receiving side of a
 * UART endpoint, as the link delivers a character (link.py's rx_char / bit_time_ps). */
#define DH_UART_RX_CAPSULE "duohil.native.uart_rx"
typedef struct {
    int (*rx_char)(void *self, int byte, int framing_error);
    /* the receiver's programmed bit time in ps; 0 when the receiver is disabled */
    int (*bit_time_ps)(void *self, int64_t *out);
} dh_uart_rx_ops;

/* Attribute `_native_tx_sink`, capsule name "duohil.native.tx_sink": what a UART calls when a
 * character starts leaving its shift register (link.py's tx_sink(src, byte, t_start, bit_time,
 * frame_bits)). `src` is the sending UART's Python object (borrowed). */
#define DH_TX_SINK_CAPSULE "duohil.native.tx_sink"
typedef struct {
    int (*tx)(void *self, void *src, int byte, int64_t t_start_ps, int64_t bit_time_ps,
              double frame_bits);
} dh_tx_sink_ops;

/* Attribute `_native_input`, capsule name "duohil.native.input": a block with numbered inputs
 * (IRQ lines into a controller, DMA request lines into DMAMUX/DMA): peripheral.py's set_input. */
#define DH_INPUT_CAPSULE "duohil.native.input"
typedef struct {
    int (*set_input)(void *self, int line, int level);
} dh_input_ops;

#endif
