/*
 * The latest velocity setpoint from the peer and when it arrived (pure logic). CM1 (FIX_CMD_TIMEOUT)
 * asks one question of it: is it still fresh? Times are the 1 ms uptime tick, wrap-safe.
 */
#ifndef DUOHIL_SETPOINT_H
#define DUOHIL_SETPOINT_H

#include <stdint.h>
#include "../../protocol/messages.h"

typedef struct {
    setpoint_t sp;          /* as decoded */
    uint32_t   rx_ms;       /* uptime when it was accepted */
    uint8_t    valid;       /* a setpoint has been received since boot */
} setpoint_slot_t;

static inline void setpoint_store(setpoint_slot_t *s, const setpoint_t *sp, uint32_t now_ms)
{
    s->sp = *sp;
    s->rx_ms = now_ms;
    s->valid = 1u;
}

/* Age in ms (wrap-safe); UINT32_MAX when nothing was ever received. */
static inline uint32_t setpoint_age_ms(const setpoint_slot_t *s, uint32_t now_ms)
{
    return s->valid ? (uint32_t)(now_ms - s->rx_ms) : UINT32_MAX;
}

/* Fresh = received, and no older than the freshness window (an age equal to the window is fresh). */
static inline int setpoint_is_fresh(const setpoint_slot_t *s, uint32_t now_ms, uint32_t window_ms)
{
    return s->valid && (uint32_t)(now_ms - s->rx_ms) <= window_ms;
}

#endif
