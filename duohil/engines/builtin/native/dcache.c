/* Cortex-M7 D-cache line bookkeeping (dcache.h): the model dcache.py's module docstring describes,
 * the one implementation (tests/test_native_dcache.py states its rules). */
#include "dcache.h"

#include <stdlib.h>
#include <string.h>

/* -- Python's random.Random(int).randint, exactly ------------------------------------------------ */

#define MT_N 624
#define MT_M 397

typedef struct {
    uint32_t mt[MT_N];
    int idx;
} mt_state;

static void mt_init_genrand(mt_state *s, uint32_t seed)
{
    s->mt[0] = seed;
    for (int i = 1; i < MT_N; i++)
        s->mt[i] = 1812433253U * (s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) + (uint32_t)i;
    s->idx = MT_N;
}

/* CPython's init_by_array (Modules/_randommodule.c), the seeding of Random(n) for an int n with
 * the 32-bit words of |n|, least significant first. */
static void mt_init_by_array(mt_state *s, const uint32_t *key, size_t klen)
{
    mt_init_genrand(s, 19650218U);
    size_t i = 1, j = 0;
    for (size_t k = MT_N > klen ? MT_N : klen; k; k--) {
        s->mt[i] = (s->mt[i] ^ ((s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) * 1664525U)) + key[j]
                   + (uint32_t)j;
        i++;
        j++;
        if (i >= MT_N) {
            s->mt[0] = s->mt[MT_N - 1];
            i = 1;
        }
        if (j >= klen)
            j = 0;
    }
    for (size_t k = MT_N - 1; k; k--) {
        s->mt[i] = (s->mt[i] ^ ((s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) * 1566083941U)) - (uint32_t)i;
        i++;
        if (i >= MT_N) {
            s->mt[0] = s->mt[MT_N - 1];
            i = 1;
        }
    }
    s->mt[0] = 0x80000000U;
}

static uint32_t mt_next(mt_state *s)
{
    uint32_t y;
    if (s->idx >= MT_N) {
        int kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (s->mt[kk] & 0x80000000U) | (s->mt[kk + 1] & 0x7fffffffU);
            s->mt[kk] = s->mt[kk + MT_M] ^ (y >> 1) ^ ((y & 1) ? 0x9908b0dfU : 0);
        }
        for (; kk < MT_N - 1; kk++) {
            y = (s->mt[kk] & 0x80000000U) | (s->mt[kk + 1] & 0x7fffffffU);
            s->mt[kk] = s->mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ ((y & 1) ? 0x9908b0dfU : 0);
        }
        y = (s->mt[MT_N - 1] & 0x80000000U) | (s->mt[0] & 0x7fffffffU);
        s->mt[MT_N - 1] = s->mt[MT_M - 1] ^ (y >> 1) ^ ((y & 1) ? 0x9908b0dfU : 0);
        s->idx = 0;
    }
    y = s->mt[s->idx++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

/* Random.getrandbits(k), 1 <= k <= 64: 32-bit words least significant first, the last one
 * shifted right to keep its k mod 32 high bits. */
static uint64_t mt_bits(mt_state *s, int k)
{
    if (k <= 32)
        return mt_next(s) >> (32 - k);
    uint64_t lo = mt_next(s);
    uint64_t hi = mt_next(s) >> (64 - k);
    return lo | hi << 32;
}

int64_t dc_draw(const uint32_t *key, size_t nkey, int64_t lo, int64_t hi)
{
    mt_state s;
    mt_init_by_array(&s, key, nkey);
    /* randint(lo, hi) = randrange(lo, hi + 1) = lo + _randbelow(n): k = n.bit_length(), draw k
     * bits until below n */
    uint64_t n = (uint64_t)hi - (uint64_t)lo + 1;
    int k = 64 - __builtin_clzll(n);
    uint64_t r = mt_bits(&s, k);
    while (r >= n)
        r = mt_bits(&s, k);
    return lo + (int64_t)r;
}

/* -- geometry -------------------------------------------------------------------------------------- */

static size_t line_index(const dc_region *r, uint64_t la)
{
    return (size_t)((la - r->base) / DC_LINE);
}

dc_region *dc_wanted_of(const dc_cache *c, uint64_t address)
{
    for (size_t k = 0; k < c->nrg; k++)
        if (c->rg[k].base <= address && address < c->rg[k].end)
            return &c->rg[k];
    return NULL;
}

/* the tracked, active region holding an address */
dc_region *dc_region_of(dc_cache *c, uint64_t address)
{
    dc_region *r = c->last;
    if (r && r->active && r->base <= address && address < r->end)
        return r;
    for (size_t k = 0; k < c->nrg; k++) {
        r = &c->rg[k];
        if (r->active && r->base <= address && address < r->end)
            return c->last = r;
    }
    return NULL;
}

static uint64_t next_region_base(const dc_cache *c, uint64_t a, uint64_t dflt)
{
    uint64_t nxt = dflt;
    for (size_t k = 0; k < c->nrg; k++)
        if (c->rg[k].active && c->rg[k].base > a && c->rg[k].base < nxt)
            nxt = c->rg[k].base;
    return nxt;
}

/* -- the CPU view (host memory, else unicorn) ------------------------------------------------------- */

static uint8_t *host_ptr(const dc_cache *c, uint64_t a, size_t n)
{
    for (size_t i = 0; i < c->nviews; i++) {
        const dc_view *v = &c->views[i];
        if (v->base <= a && a + n <= v->end)
            return v->ptr + (a - v->base);
    }
    return NULL;
}

static int need_uc(dc_cache *c)
{
    return c->uc ? 0 : c->env.need_uc(c->env.ctx, &c->uc);
}

static int cpu_read(dc_cache *c, uint64_t a, uint8_t *out, size_t n)
{
    if (!n)
        return 0;
    uint8_t *p = host_ptr(c, a, n);
    if (p) {
        memcpy(out, p, n);
        return 0;
    }
    if (need_uc(c) < 0)
        return -1;
    uc_err e = UC.mem_read(c->uc, a, out, n);
    return e == UC_ERR_OK ? 0 : c->env.uc_error(c->env.ctx, (int)e);
}

static int cpu_write(dc_cache *c, uint64_t a, const uint8_t *data, size_t n)
{
    if (!n)
        return 0;
    uint8_t *p = host_ptr(c, a, n);
    if (p) {
        memmove(p, data, n);
        return 0;
    }
    if (need_uc(c) < 0)
        return -1;
    uc_err e = UC.mem_write(c->uc, a, data, n);
    return e == UC_ERR_OK ? 0 : c->env.uc_error(c->env.ctx, (int)e);
}

/* -- life cycle ---------------------------------------------------------------------------------------- */

static void region_free(dc_region *r)
{
    free(r->bus);
    free(r->stale_base);
    free(r->stale);
    free(r->nc);
    free(r->nc_gen);
    free(r->alloc);
    free(r->alloc_gen);
    free(r->r);
    free(r->r_gen);
    free(r->ev);
}

int dc_init(dc_cache *c, const dc_env *env, const uint64_t *bases, const uint64_t *sizes, size_t n,
            const char **why)
{
    memset(c, 0, sizeof *c);
    c->env = *env;
    c->alloc_gen = c->r_gen = c->nc_gen = 1;
    *why = NULL;
    for (size_t k = 0; k < n; k++) {
        if (bases[k] % DC_LINE || sizes[k] % DC_LINE || bases[k] + sizes[k] > ((uint64_t)1 << 32)) {
            *why = "regions must be 32-byte aligned and below 4 GiB";
            return -1;
        }
        for (size_t j = 0; j < k; j++)
            if (bases[j] < bases[k] + sizes[k] && bases[k] < bases[j] + sizes[j]) {
                *why = "regions must not overlap";
                return -1;
            }
    }
    c->key = calloc(1, sizeof *c->key);           /* seed 0: the key is the line address alone */
    c->rg = calloc(n ? n : 1, sizeof *c->rg);
    c->by_base = calloc(n ? n : 1, sizeof *c->by_base);
    if (!c->key || !c->rg || !c->by_base)
        goto nomem;
    c->nrg = n;
    for (size_t k = 0; k < n; k++) {
        dc_region *r = &c->rg[k];
        size_t nl = (size_t)(sizes[k] / DC_LINE), sz = (size_t)sizes[k];
        r->base = bases[k];
        r->size = sizes[k];
        r->end = bases[k] + sizes[k];
        r->nlines = nl;
        r->bus = calloc(sz ? sz : 1, 1);
        r->stale_base = calloc(sz ? sz : 1, 1);
        r->stale = calloc(nl ? nl : 1, 1);
        r->nc = calloc(nl ? nl : 1, 1);
        r->nc_gen = calloc(nl ? nl : 1, sizeof *r->nc_gen);
        r->alloc = calloc(nl ? nl : 1, sizeof *r->alloc);
        r->alloc_gen = calloc(nl ? nl : 1, sizeof *r->alloc_gen);
        r->r = calloc(nl ? nl : 1, sizeof *r->r);
        r->r_gen = calloc(nl ? nl : 1, sizeof *r->r_gen);
        r->ev = calloc(nl ? nl : 1, sizeof *r->ev);
        if (!r->bus || !r->stale_base || !r->stale || !r->nc || !r->nc_gen || !r->alloc
            || !r->alloc_gen || !r->r || !r->r_gen || !r->ev)
            goto nomem;
        /* insertion sort by base */
        size_t j = k;
        while (j > 0 && c->rg[c->by_base[j - 1]].base > bases[k]) {
            c->by_base[j] = c->by_base[j - 1];
            j--;
        }
        c->by_base[j] = k;
    }
    return 0;
nomem:
    *why = "out of memory";
    dc_free(c);
    return -1;
}

/* The events still held are the binding's to drop (it walks the regions first). */
void dc_free(dc_cache *c)
{
    for (size_t k = 0; k < c->nrg; k++)
        region_free(&c->rg[k]);
    free(c->rg);
    free(c->by_base);
    free(c->views);
    free(c->key);
    c->rg = NULL;
    c->by_base = NULL;
    c->views = NULL;
    c->key = NULL;
    c->nrg = c->nviews = c->nz = 0;
    c->last = NULL;
}

/* the wanted regions the machine's memories map (dcache.py's `regions`). */
int dc_set_layout(dc_cache *c, const uint64_t *mem_base, const uint64_t *mem_size, size_t nmems,
                  const dc_view *views, size_t nviews)
{
    dc_view *v = NULL;
    if (nviews) {
        v = malloc(nviews * sizeof *v);
        if (!v)
            return c->env.nomem(c->env.ctx);
        memcpy(v, views, nviews * sizeof *v);
    }
    free(c->views);
    c->views = v;
    c->nviews = nviews;
    c->last = NULL;
    for (size_t k = 0; k < c->nrg; k++) {
        dc_region *r = &c->rg[k];
        int on = 0;
        for (size_t m = 0; m < nmems && !on; m++)
            on = mem_base[m] <= r->base && r->base + r->size <= mem_base[m] + mem_size[m];
        if (!on && r->active)                 /* dropped: a later one starts from a fresh buffer */
            memset(r->bus, 0, (size_t)r->size);
        int appears = on && !r->active;
        r->active = on;
        if (appears && c->enabled && cpu_read(c, r->base, r->bus, (size_t)r->size) < 0)
            return -1;
    }
    return 0;
}

/* -- residency -------------------------------------------------------------------------------------- */

static int64_t draw_line(dc_cache *c, uint64_t la)
{
    c->key[0] = (uint32_t)la;     /* residency_key: (z << 32) | (line & 0xFFFF_FFFF) */
    return dc_draw(c->key, 1 + c->nz, c->r_lo, c->r_hi);
}

int64_t dc_residency_of(dc_cache *c, uint32_t line, int *none)
{
    *none = !c->timed;
    if (!c->timed)
        return 0;
    uint64_t la = line & ~(uint64_t)(DC_LINE - 1);
    dc_region *w = dc_wanted_of(c, la);
    if (!w)
        return draw_line(c, la);
    size_t i = line_index(w, la);
    if (w->r_gen[i] != c->r_gen) {
        w->r[i] = draw_line(c, la);
        w->r_gen[i] = c->r_gen;
    }
    return w->r[i];
}

int64_t dc_alloc_time(const dc_cache *c, uint32_t line)
{
    uint64_t la = line & ~(uint64_t)(DC_LINE - 1);
    const dc_region *w = dc_wanted_of(c, la);
    if (!w)
        return c->epoch;
    size_t i = line_index(w, la);
    return w->alloc_gen[i] == c->alloc_gen ? w->alloc[i] : c->epoch;
}

static void set_alloc(dc_cache *c, dc_region *r, size_t i, int64_t t)
{
    r->alloc[i] = t;
    r->alloc_gen[i] = c->alloc_gen;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* deadline: 1 with *t = alloc_time + r(line), 0 when resident for ever */
static int deadline(dc_cache *c, dc_region *r, size_t i, uint64_t la, int64_t *t)
{
    int none;
    int64_t rr = dc_residency_of(c, (uint32_t)la, &none);
    if (none)
        return 0;
    int64_t a = r->alloc_gen[i] == c->alloc_gen ? r->alloc[i] : c->epoch;
    *t = sat_add(a, rr);
    return 1;
}

static int layout_sync(dc_cache *c)
{
    return c->env.sync(c->env.ctx);
}

static int now(dc_cache *c, int64_t *t)
{
    return c->env.now(c->env.ctx, t);
}

/* -- eviction events ---------------------------------------------------------------------------------- */

static int drop_event(dc_cache *c, dc_region *r, size_t i, int cancel)
{
    void *ev = r->ev[i];
    if (!ev)
        return 0;
    r->ev[i] = NULL;
    r->nev--;
    int rc = cancel ? c->env.cancel(c->env.ctx, ev) : 0;
    c->env.drop(c->env.ctx, ev);
    return rc;
}

/* schedule_line: (re)place the eviction event of stale line la at its deadline */
static int schedule_line(dc_cache *c, dc_region *r, size_t i, uint64_t la)
{
    int64_t t = 0;
    int has = deadline(c, r, i, la, &t);
    void *ev = r->ev[i];
    if (ev) {
        if (has) {
            int64_t et;
            int cancelled;
            if (c->env.ev_state(c->env.ctx, ev, &et, &cancelled) < 0)
                return -1;
            if (et == t && !cancelled)
                return 0;
        }
        if (drop_event(c, r, i, 1) < 0)
            return -1;
    }
    if (has && c->enabled) {
        void *nev;
        if (c->env.schedule(c->env.ctx, (uint32_t)la, t, &nev) < 0)
            return -1;
        r->ev[i] = nev;
        r->nev++;
    }
    return 0;
}

/* reschedule_all: cancel every event, then schedule the stale lines in address order */
static int reschedule_all(dc_cache *c)
{
    for (size_t k = 0; k < c->nrg; k++) {
        dc_region *r = &c->rg[k];
        for (size_t i = 0; r->nev && i < r->nlines; i++)
            if (drop_event(c, r, i, 1) < 0)
                return -1;
    }
    for (size_t kk = 0; kk < c->nrg; kk++) {
        dc_region *r = &c->rg[c->by_base[kk]];
        for (size_t i = 0; r->nstale && i < r->nlines; i++)
            if (r->stale[i] && schedule_line(c, r, i, r->base + i * DC_LINE) < 0)
                return -1;
    }
    return 0;
}

/* evict_line: the stale line's CPU copy leaves the cache at t */
static int evict_line(dc_cache *c, dc_region *r, size_t i, uint64_t la, int64_t t)
{
    if (drop_event(c, r, i, 1) < 0)
        return -1;
    uint8_t cpu[DC_LINE];
    size_t off = (size_t)(la - r->base);
    r->stale[i] = 0;
    r->nstale--;
    if (cpu_read(c, la, cpu, DC_LINE) < 0)
        return -1;
    if (memcmp(cpu, r->stale_base + off, DC_LINE) != 0) {
        memcpy(r->bus + off, cpu, DC_LINE);
        c->writebacks++;
    } else if (cpu_write(c, la, r->bus + off, DC_LINE) < 0) {
        return -1;
    }
    c->stale_evictions++;
    set_alloc(c, r, i, t);
    return 0;
}

/* expire: 1 when line la is not resident at `now` (evicted, dirty bytes written back), 0 when it
 * is, -1 on error */
static int expire(dc_cache *c, dc_region *r, size_t i, uint64_t la, int64_t t_now)
{
    int64_t t;
    if (!deadline(c, r, i, la, &t) || t_now < t)
        return 0;
    if (r->stale[i]) {
        if (evict_line(c, r, i, la, t) < 0)
            return -1;
        deadline(c, r, i, la, &t);
        if (t_now < t)
            return 0;
    }
    uint8_t cpu[DC_LINE];
    size_t off = (size_t)(la - r->base);
    if (cpu_read(c, la, cpu, DC_LINE) < 0)
        return -1;
    if (memcmp(r->bus + off, cpu, DC_LINE) != 0) {
        memcpy(r->bus + off, cpu, DC_LINE);
        c->writebacks++;
    }
    return 1;
}

/* the eviction event of a line fired */
int dc_on_evict(dc_cache *c, uint64_t la)
{
    if (la % DC_LINE)
        return 0;
    dc_region *w = dc_wanted_of(c, la);
    if (!w)
        return 0;
    size_t i = line_index(w, la);
    drop_event(c, w, i, 0);               /* the event that fires: popped, not cancelled */
    if (!c->enabled || !w->stale[i])
        return 0;
    if (layout_sync(c) < 0)
        return -1;
    dc_region *r = dc_region_of(c, la);
    int64_t t, t_now;
    if (!r || !deadline(c, r, i, la, &t))
        return 0;
    if (now(c, &t_now) < 0)
        return -1;
    if (t_now < t)                        /* moved without cancelling (should not happen) */
        return schedule_line(c, r, i, la);
    return evict_line(c, r, i, la, t);
}

/* flush_due: the evictions due at or before now whose events have not fired yet */
static int flush_due(dc_cache *c)
{
    int64_t t_now;
    if (now(c, &t_now) < 0)
        return -1;
    for (size_t kk = 0; kk < c->nrg; kk++) {
        dc_region *w = &c->rg[c->by_base[kk]];
        for (size_t i = 0; w->nev && i < w->nlines; i++) {
            if (!w->ev[i])
                continue;
            int64_t et;
            int cancelled;
            if (c->env.ev_state(c->env.ctx, w->ev[i], &et, &cancelled) < 0)
                return -1;
            if (et > t_now)
                continue;
            uint64_t la = w->base + i * DC_LINE;
            dc_region *r = dc_region_of(c, la);
            int64_t t;
            if (r && deadline(c, r, i, la, &t) && r->stale[i] && t <= t_now
                && evict_line(c, r, i, la, t) < 0)
                return -1;
        }
    }
    return 0;
}

/* all_allocated: every line was resolved, allocated now */
static int all_allocated(dc_cache *c)
{
    if (now(c, &c->epoch) < 0)
        return -1;
    if (++c->alloc_gen == 0) {            /* wrapped: forget every line's own time for real */
        for (size_t k = 0; k < c->nrg; k++)
            memset(c->rg[k].alloc_gen, 0, c->rg[k].nlines * sizeof *c->rg[k].alloc_gen);
        c->alloc_gen = 1;
    }
    return reschedule_all(c);
}

static void forget_draws(dc_cache *c)
{
    if (++c->r_gen == 0) {
        for (size_t k = 0; k < c->nrg; k++)
            memset(c->rg[k].r_gen, 0, c->rg[k].nlines * sizeof *c->rg[k].r_gen);
        c->r_gen = 1;
    }
}

static void forget_attributes(dc_cache *c)
{
    if (++c->nc_gen == 0) {
        for (size_t k = 0; k < c->nrg; k++)
            memset(c->rg[k].nc_gen, 0, c->rg[k].nlines * sizeof *c->rg[k].nc_gen);
        c->nc_gen = 1;
    }
}

int dc_set_seed(dc_cache *c, const uint32_t *zwords, size_t nz)
{
    uint32_t *k = malloc((1 + nz) * sizeof *k);
    if (!k)
        return c->env.nomem(c->env.ctx);
    k[0] = 0;
    if (nz)
        memcpy(k + 1, zwords, nz * sizeof *k);
    free(c->key);
    c->key = k;
    c->nz = nz;
    forget_draws(c);
    return reschedule_all(c);
}

int dc_set_residency(dc_cache *c, int timed, int64_t lo, int64_t hi)
{
    c->timed = timed;
    c->r_lo = lo;
    c->r_hi = hi;
    forget_draws(c);
    return reschedule_all(c);
}

/* -- DMA side -------------------------------------------------------------------------------------------- */

/* cacheable: not marked non-cacheable by the MPU (memoised per line until mpu_changed) */
static int cacheable(dc_cache *c, dc_region *r, size_t i, uint64_t la, int *out)
{
    if (r->nc_gen[i] == c->nc_gen) {
        *out = !r->nc[i];
        return 0;
    }
    int memo;
    if (c->env.cacheable(c->env.ctx, (uint32_t)la, out, &memo) < 0)
        return -1;
    if (memo) {
        r->nc[i] = !*out;
        r->nc_gen[i] = c->nc_gen;
    }
    return 0;
}

/* read_line: what a DMA read of bytes [off, off+m) of line la sees */
static int read_line(dc_cache *c, dc_region *r, uint64_t la, size_t off, size_t m, int64_t t_now,
                     uint8_t *out)
{
    size_t i = line_index(r, la);
    int ok;
    if (cacheable(c, r, i, la, &ok) < 0)
        return -1;
    if (!ok)
        return cpu_read(c, la + off, out, m);
    if (c->timed) {
        int x = expire(c, r, i, la, t_now);
        if (x < 0)
            return -1;
        if (x)
            set_alloc(c, r, i, t_now);      /* written back, then cached again */
    }
    memcpy(out, r->bus + (la - r->base) + off, m);
    return 0;
}

/* write_line: a DMA write of part[0:m] at byte off of line la */
static int write_line(dc_cache *c, dc_region *r, uint64_t la, size_t off, const uint8_t *part, size_t m,
                      int64_t t_now)
{
    size_t i = line_index(r, la), pos = (size_t)(la - r->base);
    int ok;
    if (cacheable(c, r, i, la, &ok) < 0)
        return -1;
    if (!ok) {                            /* non-cacheable: both views (bus view kept in step) */
        if (cpu_write(c, la + off, part, m) < 0)
            return -1;
        memcpy(r->bus + pos + off, part, m);
        return 0;
    }
    if (c->timed) {
        int x = expire(c, r, i, la, t_now);
        if (x < 0)
            return -1;
        if (x) {                          /* not resident: the CPU fetches the line anew */
            if (cpu_write(c, la + off, part, m) < 0)
                return -1;
            memcpy(r->bus + pos + off, part, m);
            set_alloc(c, r, i, t_now);
            c->fresh_writes++;
            return 0;
        }
    }
    if (!r->stale[i]) {
        memcpy(r->stale_base + pos, r->bus + pos, DC_LINE);
        r->stale[i] = 1;
        r->nstale++;
        if (c->timed && schedule_line(c, r, i, la) < 0)
            return -1;
    }
    memcpy(r->bus + pos + off, part, m);
    c->dma_stale_writes++;
    return 0;
}

int dc_read(dc_cache *c, uint64_t address, uint8_t *out, size_t n)
{
    int64_t t_now = 0;
    if (!n)
        return 0;
    if (address + n < address)            /* past 2**64: nothing is mapped there */
        return c->env.uc_error(c->env.ctx, UC_ERR_READ_UNMAPPED);
    if (c->timed && now(c, &t_now) < 0)
        return -1;
    if (layout_sync(c) < 0)
        return -1;
    uint64_t a = address, end = address + n;
    while (a < end) {                     /* runs of one region or none */
        dc_region *r = dc_region_of(c, a);
        uint64_t pn = r ? (end < r->end ? end : r->end) - a : next_region_base(c, a, end) - a;
        if (!r || !c->enabled) {
            if (cpu_read(c, a, out + (a - address), (size_t)pn) < 0)
                return -1;
        } else {
            for (uint64_t b = a, pe = a + pn; b < pe;) {     /* lines */
                uint64_t la = b & ~(uint64_t)(DC_LINE - 1);
                uint64_t m = (pe < la + DC_LINE ? pe : la + DC_LINE) - b;
                if (read_line(c, r, la, (size_t)(b - la), (size_t)m, t_now, out + (b - address)) < 0)
                    return -1;
                b += m;
            }
        }
        a += pn;
    }
    return 0;
}

int dc_write(dc_cache *c, uint64_t address, const uint8_t *data, size_t n)
{
    int64_t t_now = 0;
    if (!n)
        return 0;
    if (address + n < address)
        return c->env.uc_error(c->env.ctx, UC_ERR_WRITE_UNMAPPED);
    if (c->timed && now(c, &t_now) < 0)
        return -1;
    if (layout_sync(c) < 0)
        return -1;
    uint64_t a = address, end = address + n;
    while (a < end) {
        dc_region *r = dc_region_of(c, a);
        uint64_t pn = r ? (end < r->end ? end : r->end) - a : next_region_base(c, a, end) - a;
        if (!r || !c->enabled) {
            if (cpu_write(c, a, data + (a - address), (size_t)pn) < 0)
                return -1;
        } else {
            c->gen++;
            for (uint64_t b = a, pe = a + pn; b < pe;) {
                uint64_t la = b & ~(uint64_t)(DC_LINE - 1);
                uint64_t m = (pe < la + DC_LINE ? pe : la + DC_LINE) - b;
                if (write_line(c, r, la, (size_t)(b - la), data + (b - address), (size_t)m, t_now) < 0)
                    return -1;
                b += m;
            }
        }
        a += pn;
    }
    return 0;
}

/* -- per-line maintenance -------------------------------------------------------------------------------- */

static int clean_line(dc_cache *c, dc_region *r, size_t i, uint64_t la)
{
    uint8_t cpu[DC_LINE];
    size_t off = (size_t)(la - r->base);
    if (cpu_read(c, la, cpu, DC_LINE) < 0)
        return -1;
    if (!r->stale[i]) {
        if (memcmp(r->bus + off, cpu, DC_LINE) != 0) {
            memcpy(r->bus + off, cpu, DC_LINE);
            c->lines_written_back++;
        }
    } else if (memcmp(cpu, r->stale_base + off, DC_LINE) != 0) {   /* the CPU dirtied it too */
        memcpy(r->bus + off, cpu, DC_LINE);
        r->stale[i] = 0;
        r->nstale--;
        c->lines_written_back++;
    }
    /* else: clean line, DMA data stays in the bus view and the CPU keeps its old copy */
    return 0;
}

static int invalidate_line(dc_cache *c, dc_region *r, size_t i, uint64_t la)
{
    if (cpu_write(c, la, r->bus + (la - r->base), DC_LINE) < 0)
        return -1;
    if (r->stale[i]) {
        r->stale[i] = 0;
        r->nstale--;
    }
    c->lines_invalidated++;
    return 0;
}

/* mva: 1 with the (region, line) a by-address operation hits, 0 when it is a no-op */
static int mva(dc_cache *c, uint64_t address, dc_region **rp, size_t *ip, uint64_t *lap)
{
    if (!c->enabled)
        return 0;
    if (layout_sync(c) < 0)
        return -1;
    uint64_t la = address & ~(uint64_t)(DC_LINE - 1);
    dc_region *r = dc_region_of(c, la);
    if (!r)
        return 0;
    size_t i = line_index(r, la);
    int ok;
    if (cacheable(c, r, i, la, &ok) < 0)
        return -1;
    if (!ok)
        return 0;
    c->gen++;
    if (r->stale[i]) {                    /* run the line's eviction if it was due */
        int64_t t, t_now;
        if (deadline(c, r, i, la, &t)) {
            if (now(c, &t_now) < 0)
                return -1;
            if (t <= t_now && evict_line(c, r, i, la, t) < 0)
                return -1;
        }
    }
    *rp = r;
    *ip = i;
    *lap = la;
    return 1;
}

/* allocated: resolved by a maintenance operation: allocated now, event moved */
static int allocated(dc_cache *c, dc_region *r, size_t i, uint64_t la)
{
    if (!c->timed)
        return 0;
    int64_t t_now;
    if (now(c, &t_now) < 0)
        return -1;
    set_alloc(c, r, i, t_now);
    if (r->stale[i])
        return schedule_line(c, r, i, la);
    return drop_event(c, r, i, 1);
}

int dc_invalidate(dc_cache *c, uint64_t address)
{
    dc_region *r;
    size_t i;
    uint64_t la;
    int hit = mva(c, address, &r, &i, &la);
    if (hit <= 0)
        return hit;
    if (invalidate_line(c, r, i, la) < 0)
        return -1;
    return allocated(c, r, i, la);
}

int dc_clean(dc_cache *c, uint64_t address)
{
    dc_region *r;
    size_t i;
    uint64_t la;
    int hit = mva(c, address, &r, &i, &la);
    if (hit <= 0)
        return hit;
    if (clean_line(c, r, i, la) < 0)
        return -1;
    return allocated(c, r, i, la);
}

int dc_clean_invalidate(dc_cache *c, uint64_t address)
{
    dc_region *r;
    size_t i;
    uint64_t la;
    int hit = mva(c, address, &r, &i, &la);
    if (hit <= 0)
        return hit;
    if (clean_line(c, r, i, la) < 0)
        return -1;
    if (r->stale[i] && invalidate_line(c, r, i, la) < 0)
        return -1;
    return allocated(c, r, i, la);
}

/* -- set/way ------------------------------------------------------------------------------------------------ */

/* set_way: 1 when this set/way write must act (the first of a burst, or after a change) */
static int set_way(dc_cache *c, int kind)
{
    c->set_way_ops++;
    if (!c->enabled)
        return 0;
    if (c->burst_kind == kind && c->burst_gen == c->gen && c->burst_calls < DC_SET_WAY_OPS) {
        c->burst_calls++;
        return 0;
    }
    c->gen++;
    c->burst_kind = kind;
    c->burst_gen = c->gen;
    c->burst_calls = 1;
    c->set_way_runs++;
    if (layout_sync(c) < 0 || flush_due(c) < 0)
        return -1;
    return 1;
}

/* resolve_all: stale lines take the bus view (unless dirty_wins and the CPU dirtied them), every
 * other line is treated as written back (bus := CPU) */
static int resolve_all(dc_cache *c, int dirty_wins)
{
    for (size_t k = 0; k < c->nrg; k++) {
        dc_region *r = &c->rg[k];
        if (!r->active)
            continue;
        for (size_t i = 0; r->nstale && i < r->nlines; i++) {
            if (!r->stale[i])
                continue;
            uint64_t la = r->base + i * DC_LINE;
            size_t off = i * DC_LINE;
            r->stale[i] = 0;
            r->nstale--;
            if (dirty_wins) {
                uint8_t cpu[DC_LINE];
                if (cpu_read(c, la, cpu, DC_LINE) < 0)
                    return -1;
                if (memcmp(cpu, r->stale_base + off, DC_LINE) != 0)
                    continue;
            }
            if (cpu_write(c, la, r->bus + off, DC_LINE) < 0)
                return -1;
            c->lines_invalidated++;
        }
        if (cpu_read(c, r->base, r->bus, (size_t)r->size) < 0)
            return -1;
    }
    return 0;
}

int dc_invalidate_all(dc_cache *c)
{
    int act = set_way(c, DC_BURST_INV);
    if (act <= 0)
        return act;
    if (resolve_all(c, 0) < 0)
        return -1;
    return all_allocated(c);
}

int dc_clean_all(dc_cache *c)
{
    int act = set_way(c, DC_BURST_CLEAN);
    if (act <= 0)
        return act;
    for (size_t k = 0; k < c->nrg; k++) {
        dc_region *r = &c->rg[k];
        if (!r->active)
            continue;
        uint8_t *cpu = malloc((size_t)r->size ? (size_t)r->size : 1);
        if (!cpu)
            return c->env.nomem(c->env.ctx);
        if (cpu_read(c, r->base, cpu, (size_t)r->size) < 0) {
            free(cpu);
            return -1;
        }
        for (size_t i = 0; r->nstale && i < r->nlines; i++) {
            if (!r->stale[i])
                continue;
            size_t off = i * DC_LINE;
            if (memcmp(cpu + off, r->stale_base + off, DC_LINE) == 0) {
                memcpy(cpu + off, r->bus + off, DC_LINE);    /* clean stale lines keep the DMA's data */
            } else {
                r->stale[i] = 0;                              /* dirty stale lines: written back */
                r->nstale--;
            }
        }
        memcpy(r->bus, cpu, (size_t)r->size);
        free(cpu);
    }
    return all_allocated(c);
}

int dc_clean_invalidate_all(dc_cache *c)
{
    int act = set_way(c, DC_BURST_CLEANINV);
    if (act <= 0)
        return act;
    if (resolve_all(c, 1) < 0)
        return -1;
    return all_allocated(c);
}

/* -- CCR.DC, MPU, reset ------------------------------------------------------------------------------------- */

int dc_set_enabled(dc_cache *c, int on)
{
    on = !!on;
    if (on == c->enabled)
        return 0;
    if (layout_sync(c) < 0)
        return -1;
    c->gen++;
    if (on) {
        for (size_t k = 0; k < c->nrg; k++) {
            dc_region *r = &c->rg[k];
            if (r->active && cpu_read(c, r->base, r->bus, (size_t)r->size) < 0)
                return -1;
        }
        for (size_t k = 0; k < c->nrg; k++) {
            memset(c->rg[k].stale, 0, c->rg[k].nlines);
            c->rg[k].nstale = 0;
        }
        c->enabled = 1;
    } else {
        if (flush_due(c) < 0 || resolve_all(c, 1) < 0)
            return -1;
        c->enabled = 0;
    }
    return all_allocated(c);
}

int dc_mpu_changed(dc_cache *c)
{
    forget_attributes(c);
    c->gen++;
    if (!c->enabled)
        return 0;
    if (layout_sync(c) < 0 || flush_due(c) < 0 || resolve_all(c, 1) < 0)
        return -1;
    return all_allocated(c);
}

int dc_on_reset(dc_cache *c)
{
    if (dc_set_enabled(c, 0) < 0)
        return -1;
    forget_attributes(c);
    return 0;
}
