/* Runtime model: heap-allocated messages (gc) or a preallocated pool (pooled). See rt.h. */
#include "rt.h"

#include <string.h>

#if PEER_GC

void rt_init(rt_t *rt, const peer_config_t *cfg, void *arena, gc_burn_fn burn, gc_clock_fn clock,
             void *port_ctx)
{
    memset(rt, 0, sizeof *rt);
    gc_params_t p = {
        .gogc = cfg->gogc,
        .min_trigger = cfg->gc_min_trigger,
        .mark_cycles_per_kib = cfg->mark_cycles_per_kib,
        .fixed_cycles = cfg->gc_fixed_cycles,
    };
    gc_init(&rt->heap, arena, cfg->heap_size, &p, burn, clock, port_ctx);
    gc_set_roots(&rt->heap, rt->roots, 1u + PEER_HISTORY_CAP);

    rt->retain_bytes = cfg->retain_bytes;
    rt->retain_every = cfg->retain_every;
    rt->garbage_per_setpoint = cfg->garbage_per_setpoint;
    if (rt->retain_bytes != 0u && rt->retain_every != 0u) {
        rt->hist_cap = cfg->retain_max_bytes / gc_block_size(rt->retain_bytes);
        if (rt->hist_cap > PEER_HISTORY_CAP) {
            rt->hist_cap = PEER_HISTORY_CAP;
        }
    }
    if (cfg->live_init_bytes != 0u) {
        rt->roots[0] = gc_alloc(&rt->heap, cfg->live_init_bytes);
        if (rt->roots[0] == NULL) {
            rt->failures++;
        }
    }
}

void *rt_obj_new(rt_t *rt, uint32_t size)
{
    void *obj = gc_alloc(&rt->heap, size);
    if (obj == NULL || gc_pin(&rt->heap, obj) != 0) {
        rt->failures++;
        return NULL;
    }
    return obj;
}

void rt_obj_release(rt_t *rt)
{
    gc_unpin_all(&rt->heap);
}

void rt_setpoint_tick(rt_t *rt)
{
    rt->setpoints++;
    if (rt->garbage_per_setpoint != 0u) {
        if (gc_alloc(&rt->heap, rt->garbage_per_setpoint) == NULL) {
            rt->failures++;
        }
    }
    if (rt->hist_cap != 0u && rt->setpoints % rt->retain_every == 0u) {
        /* allocate first (a cycle here still sees the whole history), then link it in */
        void *obj = gc_alloc(&rt->heap, rt->retain_bytes);
        if (obj == NULL) {
            rt->failures++;
            return;
        }
        if (rt->hist_count < rt->hist_cap) {
            rt->roots[1u + rt->hist_count++] = obj;
        } else {
            rt->roots[1u + rt->hist_head] = obj;          /* the oldest becomes garbage */
            rt->hist_head = (rt->hist_head + 1u) % rt->hist_cap;
        }
    }
}

gc_heap_t *rt_heap(rt_t *rt)
{
    return &rt->heap;
}

#else /* pooled */

void rt_init(rt_t *rt, const peer_config_t *cfg, void *arena, gc_burn_fn burn, gc_clock_fn clock,
             void *port_ctx)
{
    (void)cfg; (void)arena; (void)burn; (void)clock; (void)port_ctx;
    memset(rt, 0, sizeof *rt);
}

void *rt_obj_new(rt_t *rt, uint32_t size)
{
    uint32_t need = (size + 7u) & ~7u;
    if (rt->pool_used + need > RT_POOL_SIZE) {
        rt->failures++;
        return NULL;
    }
    void *obj = &rt->pool[rt->pool_used];
    rt->pool_used += need;
    memset(obj, 0, need);
    return obj;
}

void rt_obj_release(rt_t *rt)
{
    rt->pool_used = 0;
}

void rt_setpoint_tick(rt_t *rt)
{
    (void)rt;
}

gc_heap_t *rt_heap(rt_t *rt)
{
    (void)rt;
    return NULL;
}

#endif
