/*
 * The runtime model: how the behaviour layer gets memory for its messages.
 *
 *   gc images (PEER_GC=1)      like a Go runtime that lets messages escape: every message object and
 *                              its serialized payload are heap objects (gcheap.c), kept alive (pinned)
 *                              while the message is built and garbage afterwards. The behaviour layer
 *                              also keeps long-lived state: one object of live_init_bytes allocated at
 *                              boot, and a history of retained objects (retain_bytes every retain_every
 *                              setpoints, the oldest dropped beyond retain_max_bytes), which is how the
 *                              live heap - and so the pause - grows after boot.
 *   pooled images (PEER_GC=0)  preallocated buffers, GOGC off: the same calls hand out zeroed slots of
 *                              a static pool; nothing is ever collected.
 *
 * Allocation pattern per message (gc images; block sizes from gc_block_size):
 *   setpoint    setpoint_t (12 -> 24) + payload (10 or 14 -> 24) [+ garbage_per_setpoint]
 *               [+ retained object every retain_every setpoints]
 *   heartbeat   heartbeat_t (8 -> 16) + payload (8 -> 16)
 *   sensor      sensor_report_t (12 -> 24) + payload (11 or 14 -> 24)
 *   telemetry   telemetry_t (24 -> 32) per received MSG_TELEMETRY frame
 * Hardware-free: the host unit tests compile it.
 */
#ifndef PEER_RT_H
#define PEER_RT_H

#include <stdint.h>
#include "config.h"
#include "gcheap.h"

#ifndef PEER_GC
#define PEER_GC 1
#endif

#define RT_POOL_SIZE 256u

typedef struct {
#if PEER_GC
    gc_heap_t heap;
    void     *roots[1u + PEER_HISTORY_CAP];  /* [0] boot state, [1..] retained history ring */
    uint32_t  hist_cap;
    uint32_t  hist_head;                     /* oldest entry once the ring is full */
    uint32_t  hist_count;
    uint32_t  retain_bytes;
    uint32_t  retain_every;
    uint32_t  garbage_per_setpoint;
    uint32_t  setpoints;
#else
    uint8_t   pool[RT_POOL_SIZE] __attribute__((aligned(8)));
    uint32_t  pool_used;
#endif
    uint32_t  failures;                      /* rt_obj_new returned NULL */
} rt_t;

/* arena: PEER_HEAP_CAPACITY bytes, 8-aligned (gc images; ignored by pooled ones). */
void  rt_init(rt_t *rt, const peer_config_t *cfg, void *arena, gc_burn_fn burn, gc_clock_fn clock,
              void *port_ctx);
/* A zeroed object that stays valid until rt_obj_release. NULL when out of memory. */
void *rt_obj_new(rt_t *rt, uint32_t size);
/* Drop every object from rt_obj_new since the last release (they become garbage / pool slots). */
void  rt_obj_release(rt_t *rt);
/* The per-setpoint extra allocations: garbage_per_setpoint and the retained history. */
void  rt_setpoint_tick(rt_t *rt);
/* NULL in pooled images. */
gc_heap_t *rt_heap(rt_t *rt);

#endif
