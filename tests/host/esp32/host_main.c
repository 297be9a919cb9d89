/*
 * Host driver for the peer firmware's hardware-free units (gcheap, rt, behaviour, planner, serialize,
 * config). tests/test_esp32_host.py compiles it with the host gcc against the firmware sources and
 * checks what it prints against the formulas in esp32_firmware/README.md.
 *
 *   host_esp32 layout                     serializer bytes and struct offsets
 *   host_esp32 planner [key=value ...]    one velocity setpoint per line
 *   host_esp32 heapsim [key=value ...]    synthetic allocation pattern straight on gcheap
 *   host_esp32 gcsim [key=value ...]      the firmware's own schedule and message builders, virtual time
 *   host_esp32 telemetry                  telemetry checks (accept, reject, stale)
 *   host_esp32 defaults                   the default config block and its validation
 *   host_esp32 messages [key=value ...]   the first messages built, with the status block's 'meant'
 * Output lines are "word key=value ...", one record per line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "behaviour.h"
#include "config.h"
#include "gcheap.h"
#include "messages.h"
#include "planner.h"
#include "rt.h"
#include "serialize.h"
#include "status.h"

static const peer_config_t k_defaults = PEER_CONFIG_DEFAULTS;

/* key=value overrides on a config block (and a few driver-only keys) */
static long arg_long(int argc, char **argv, const char *key, long dflt)
{
    size_t n = strlen(key);
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') {
            return strtol(argv[i] + n + 1, NULL, 0);
        }
    }
    return dflt;
}

#define CFG_U(field) cfg->field = (uint32_t)arg_long(argc, argv, #field, (long)cfg->field)
#define CFG_I(field) cfg->field = (int32_t)arg_long(argc, argv, #field, (long)cfg->field)

static void config_from_args(peer_config_t *cfg, int argc, char **argv)
{
    *cfg = k_defaults;
    CFG_U(start_delay_ms); CFG_U(setpoint_period_ms); CFG_U(heartbeat_period_ms); CFG_U(sensor_period_ms);
    CFG_I(gogc); CFG_U(heap_size); CFG_U(gc_min_trigger); CFG_U(live_init_bytes); CFG_U(retain_bytes);
    CFG_U(retain_every); CFG_U(retain_max_bytes); CFG_U(garbage_per_setpoint); CFG_U(mark_cycles_per_kib);
    CFG_U(gc_fixed_cycles); CFG_U(cpu_hz); CFG_I(profile_accel); CFG_I(profile_vmax); CFG_I(profile_stroke);
    CFG_I(profile_start); CFG_U(profile_dwell_ms);
}

/* ---- virtual-time GC port: burn advances a cycle counter, the clock reads it ---- */
static uint64_t s_cycles;
static void vt_burn(void *ctx, uint32_t cycles) { (void)ctx; s_cycles += cycles; }
static uint64_t vt_clock(void *ctx) { (void)ctx; return s_cycles; }

static void print_hex(const char *name, const uint8_t *p, unsigned n)
{
    printf("%s len=%u bytes=", name, n);
    for (unsigned i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static int cmd_layout(void)
{
    uint8_t out[SER_MAX_LEN];
    sensor_report_t s;
    setpoint_t sp;

    printf("offsets sensor_size=%zu id=%zu temp=%zu status=%zu flags=%zu\n", sizeof s,
           offsetof(sensor_report_t, id), offsetof(sensor_report_t, temp),
           offsetof(sensor_report_t, status), offsetof(sensor_report_t, flags));
    printf("offsets setpoint_size=%zu seq=%zu velocity=%zu flags=%zu\n", sizeof sp,
           offsetof(setpoint_t, seq), offsetof(setpoint_t, velocity), offsetof(setpoint_t, flags));

    /* fields with distinct bytes; padding pre-filled with 0xA5 to show where it is */
    memset(&s, 0xA5, sizeof s);
    s.id = 0x1234; s.temp = -2; s.status = 0x56; s.flags = 0x89ABCDEFu;
    memset(&sp, 0xA5, sizeof sp);
    sp.seq = 0x0102; sp.velocity = -40000; sp.flags = 0x0304;
    print_hex("sensor_natural", out, ser_sensor_natural(out, &s));
    print_hex("sensor_packed", out, ser_sensor_packed(out, &s));
    print_hex("setpoint_natural", out, ser_setpoint_natural(out, &sp));
    print_hex("setpoint_packed", out, ser_setpoint_packed(out, &sp));
    return 0;
}

static int cmd_planner(int argc, char **argv)
{
    peer_config_t c;
    config_from_args(&c, argc, argv);
    planner_params_t p = {
        .accel = c.profile_accel, .vmax = c.profile_vmax, .stroke = c.profile_stroke,
        .start = c.profile_start, .dwell_ms = c.profile_dwell_ms, .dt_ms = c.setpoint_period_ms,
    };
    planner_t pl;
    planner_init(&pl, &p);
    long steps = arg_long(argc, argv, "steps", 2000);
    printf("plan ta_ms=%u t_move_ms=%u vpeak=%u dmax=%u\n", pl.ta_ms, pl.t_move_ms, pl.vpeak, pl.dmax);
    for (long k = 0; k < steps; k++) {
        int32_t v = planner_step(&pl);
        printf("sp k=%ld v=%d pos=%d moves=%u\n", k, v, pl.position, pl.moves);
    }
    return 0;
}

/* one line per completed cycle (called after every allocation, so none is missed) */
static void heap_note(const gc_heap_t *h, long step)
{
    static uint32_t seen;
    if (h->st.count == seen) {
        return;
    }
    seen = h->st.count;
    printf("gc n=%u step=%ld live=%u alloc_since=%u freed=%u cycles=%u measured=%llu reason=%u\n",
           h->st.count, step, h->st.last_live, h->st.last_alloc_since, h->st.last_freed, h->st.last_cycles,
           (unsigned long long)(h->st.last_end - h->st.last_start), h->st.last_reason);
}

static int cmd_heapsim(int argc, char **argv)
{
    static uint8_t arena[PEER_HEAP_CAPACITY] __attribute__((aligned(8)));
    static void *roots[1 + PEER_HISTORY_CAP];
    gc_params_t p = {
        .gogc = (int32_t)arg_long(argc, argv, "gogc", 100),
        .min_trigger = (uint32_t)arg_long(argc, argv, "min_trigger", 1024),
        .mark_cycles_per_kib = (uint32_t)arg_long(argc, argv, "per_kib", 100000),
        .fixed_cycles = (uint32_t)arg_long(argc, argv, "fixed", 5000),
    };
    uint32_t heap = (uint32_t)arg_long(argc, argv, "heap", 16384);
    uint32_t live_init = (uint32_t)arg_long(argc, argv, "live_init", 1000);
    uint32_t garbage = (uint32_t)arg_long(argc, argv, "garbage", 40);
    uint32_t retain = (uint32_t)arg_long(argc, argv, "retain", 100);
    uint32_t every = (uint32_t)arg_long(argc, argv, "every", 3);
    uint32_t cap = (uint32_t)arg_long(argc, argv, "cap", 20);
    long steps = arg_long(argc, argv, "steps", 1000);

    gc_heap_t h;
    gc_init(&h, arena, heap, &p, vt_burn, vt_clock, NULL);
    memset(roots, 0, sizeof roots);
    gc_set_roots(&h, roots, 1 + cap);
    roots[0] = gc_alloc(&h, live_init);
    heap_note(&h, -1);
    uint32_t head = 0, count = 0;
    for (long k = 0; k < steps; k++) {
        if (gc_alloc(&h, garbage) == NULL) {
            printf("oom step=%ld\n", k);
        }
        heap_note(&h, k);
        if (every != 0 && (k + 1) % every == 0) {
            void *o = gc_alloc(&h, retain);
            heap_note(&h, k);
            if (count < cap) {
                roots[1 + count++] = o;
            } else {
                roots[1 + head] = o;
                head = (head + 1) % cap;
            }
        }
    }
    printf("end count=%u forced=%u oom=%u in_use=%u alloc_total=%u\n", h.st.count, h.st.forced, h.st.oom,
           h.in_use, h.alloc_total);
    return 0;
}

static uint8_t telemetry_payload(uint8_t *out, uint16_t seq, int32_t pos)
{
    telemetry_t t;
    memset(&t, 0, sizeof t);
    t.seq = seq;
    t.position = pos;
    t.state = CTRL_STATE_RUN;
    return msg_encode_telemetry(out, &t);
}

static int cmd_gcsim(int argc, char **argv)
{
    static uint8_t arena[PEER_HEAP_CAPACITY] __attribute__((aligned(8)));
    static peer_config_t cfg;
    static peer_status_t st;
    static rt_t rt;
    static behaviour_t beh;
    config_from_args(&cfg, argc, argv);
    long ms_total = arg_long(argc, argv, "ms", 2000);
    long tm_period = arg_long(argc, argv, "tm_period_ms", 0);
    memset(&st, 0, sizeof st);
    rt_init(&rt, &cfg, arena, vt_burn, vt_clock, NULL);
    beh_init(&beh, &cfg, &st, &rt);

    uint32_t next_sp = cfg.start_delay_ms, next_hb = next_sp, next_sr = next_sp, seen = 0;
    uint16_t tm_seq = 0;
    uint8_t payload[SER_MAX_LEN];
    for (long now = 0; now < ms_total; now++) {
        /* the firmware loop's order: received frames first, then setpoint, heartbeat, sensor */
        if (tm_period > 0 && now % tm_period == 0) {
            uint8_t n = telemetry_payload(payload, ++tm_seq, 0);
            beh_on_frame(&beh, payload, n);
        }
        if ((uint32_t)now >= next_sp) {
            (void)beh_setpoint(&beh, payload);
            next_sp += cfg.setpoint_period_ms;
        }
        if ((uint32_t)now >= next_hb) {
            (void)beh_heartbeat(&beh, (uint32_t)now, payload);
            next_hb += cfg.heartbeat_period_ms;
        }
        if ((uint32_t)now >= next_sr) {
            (void)beh_sensor(&beh, payload);
            next_sr += cfg.sensor_period_ms;
        }
        const gc_heap_t *h = rt_heap(&rt);
        if (h != NULL && h->st.count != seen) {
            seen = h->st.count;
            uint64_t cyc = h->st.last_end - h->st.last_start;
            printf("gc n=%u ms=%ld live=%u alloc_since=%u freed=%u cycles=%u pause_us=%llu reason=%u\n",
                   h->st.count, now, h->st.last_live, h->st.last_alloc_since, h->st.last_freed,
                   h->st.last_cycles, (unsigned long long)(cyc * 1000000u / cfg.cpu_hz), h->st.last_reason);
        }
    }
    const gc_heap_t *h = rt_heap(&rt);
    printf("end sp=%u hb=%u sr=%u tm=%u oom=%u gc=%u forced=%u alloc_total=%u last_seq=%u\n",
           st.setpoints_sent, st.heartbeats_sent, st.sensor_reports_sent, st.telemetry_received, st.gc_oom,
           h != NULL ? h->st.count : 0u, h != NULL ? h->st.forced : 0u, h != NULL ? h->alloc_total : 0u,
           st.last_setpoint_seq);
    return 0;
}

static int cmd_telemetry(void)
{
    static uint8_t arena[PEER_HEAP_CAPACITY] __attribute__((aligned(8)));
    static peer_status_t st;
    static rt_t rt;
    static behaviour_t beh;
    peer_config_t cfg = k_defaults;
    memset(&st, 0, sizeof st);
    rt_init(&rt, &cfg, arena, vt_burn, vt_clock, NULL);
    beh_init(&beh, &cfg, &st, &rt);
    uint8_t p[SER_MAX_LEN + 4];
    uint8_t n;

    n = telemetry_payload(p, 10, 1234); beh_on_frame(&beh, p, n);          /* accepted */
    n = telemetry_payload(p, 11, 1300); beh_on_frame(&beh, p, n);          /* accepted */
    n = telemetry_payload(p, 11, 1300); beh_on_frame(&beh, p, n);          /* repeat: stale */
    n = telemetry_payload(p, 9, 1000);  beh_on_frame(&beh, p, n);          /* regression: stale */
    n = telemetry_payload(p, 12, 1400); beh_on_frame(&beh, p, (uint8_t)(n - 1)); /* short: rejected */
    n = telemetry_payload(p, 12, 1400); p[1] = 2; beh_on_frame(&beh, p, n);    /* version: rejected */
    n = telemetry_payload(p, 12, 1400); p[n] = 0; beh_on_frame(&beh, p, (uint8_t)(n + 1)); /* long */
    n = telemetry_payload(p, 12, 1400); p[0] = MSG_HEARTBEAT; beh_on_frame(&beh, p, n);  /* other type */
    n = telemetry_payload(p, 0, 1500);  beh_on_frame(&beh, p, n);          /* 0 after 11: stale */
    n = telemetry_payload(p, 13, 1500); beh_on_frame(&beh, p, n);          /* accepted */
    printf("telemetry received=%u rejected=%u stale=%u unexpected=%u last_seq=%u tm_position=%d "
           "position_error=%d\n", st.telemetry_received, st.telemetry_rejected, st.telemetry_stale,
           st.frames_unexpected, st.last_telemetry_seq, st.tm_position, st.position_error);
    return 0;
}

/* The first messages the firmware builds, with what the status block says the peer meant. */
static int cmd_messages(int argc, char **argv)
{
    static uint8_t arena[PEER_HEAP_CAPACITY] __attribute__((aligned(8)));
    static peer_config_t cfg;
    static peer_status_t st;
    static rt_t rt;
    static behaviour_t beh;
    config_from_args(&cfg, argc, argv);
    cfg.sensor_flags = (uint32_t)arg_long(argc, argv, "sensor_flags", (long)cfg.sensor_flags);
    memset(&st, 0, sizeof st);
    rt_init(&rt, &cfg, arena, vt_burn, vt_clock, NULL);
    beh_init(&beh, &cfg, &st, &rt);
    uint8_t p[SER_MAX_LEN];
    long n = arg_long(argc, argv, "n", 3);
    for (long i = 0; i < n; i++) {
        print_hex("setpoint", p, beh_setpoint(&beh, p));
        printf("meant_setpoint seq=%u velocity=%d flags=%u\n", st.last_setpoint_seq,
               st.last_setpoint_velocity, st.last_setpoint_flags);
        print_hex("sensor", p, beh_sensor(&beh, p));
        printf("meant_sensor id=%u temp=%d status=%u flags=%u\n", st.last_sensor_id, st.last_sensor_temp,
               st.last_sensor_status, st.last_sensor_flags);
        print_hex("heartbeat", p, beh_heartbeat(&beh, (uint32_t)(1000 + i), p));
        printf("meant_heartbeat seq=%u\n", st.last_heartbeat_seq);
    }
    return 0;
}

static int cmd_defaults(void)
{
    const peer_config_t *c = &k_defaults;
    printf("defaults size=%zu setpoint_period_ms=%u heartbeat_period_ms=%u sensor_period_ms=%u gogc=%d "
           "heap_size=%u gc_min_trigger=%u live_init_bytes=%u retain_bytes=%u retain_every=%u "
           "retain_max_bytes=%u garbage_per_setpoint=%u mark_cycles_per_kib=%u gc_fixed_cycles=%u "
           "cpu_hz=%u profile_accel=%d profile_vmax=%d profile_stroke=%d profile_start=%d "
           "profile_dwell_ms=%u start_delay_ms=%u\n",
           sizeof *c, c->setpoint_period_ms, c->heartbeat_period_ms, c->sensor_period_ms, c->gogc,
           c->heap_size, c->gc_min_trigger, c->live_init_bytes, c->retain_bytes, c->retain_every,
           c->retain_max_bytes, c->garbage_per_setpoint, c->mark_cycles_per_kib, c->gc_fixed_cycles,
           c->cpu_hz, c->profile_accel, c->profile_vmax, c->profile_stroke, c->profile_start,
           c->profile_dwell_ms, c->start_delay_ms);
    peer_config_t loaded;
    printf("validate defaults=%u\n", peer_config_load(&loaded, c));
    peer_config_t bad = *c;
    bad.setpoint_period_ms = 7;   /* does not divide 1000 */
    bad.heap_size = 1u << 20;
    printf("validate bad=%u setpoint_period_ms=%u heap_size=%u\n", peer_config_load(&loaded, &bad),
           loaded.setpoint_period_ms, loaded.heap_size);
    bad = *c;
    bad.magic = 0;
    printf("validate header=%u\n", peer_config_load(&loaded, &bad));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s layout|planner|heapsim|gcsim|telemetry|defaults|messages [k=v ...]\n",
                argv[0]);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "layout") == 0) return cmd_layout();
    if (strcmp(cmd, "planner") == 0) return cmd_planner(argc, argv);
    if (strcmp(cmd, "heapsim") == 0) return cmd_heapsim(argc, argv);
    if (strcmp(cmd, "gcsim") == 0) return cmd_gcsim(argc, argv);
    if (strcmp(cmd, "telemetry") == 0) return cmd_telemetry();
    if (strcmp(cmd, "defaults") == 0) return cmd_defaults();
    if (strcmp(cmd, "messages") == 0) return cmd_messages(argc, argv);
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
