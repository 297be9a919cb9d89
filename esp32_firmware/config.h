/*
 * The peer's configuration block: one ELF serves many scenarios because the harness patches
 * g_peer_config in the loaded image before reset (ARCHITECTURE.md "Firmware <-> harness contract").
 * g_peer_config is `volatile const` in its own output section `.config` (IROM); the firmware reads it
 * once at boot, validates it and runs from a RAM copy.
 */
#ifndef PEER_CONFIG_H
#define PEER_CONFIG_H

#include <stdint.h>

#define PEER_CONFIG_MAGIC    0x47464350u   /* "PCFG" in memory */
#define PEER_CONFIG_VERSION  1u

#define PEER_HEAP_CAPACITY   65536u        /* compile-time arena; config heap_size uses a prefix of it */
#define PEER_HISTORY_CAP     256u          /* retained-history root slots */
#define PEER_GOGC_MAX        10000         /* keeps live * GOGC within 32 bits */

/* flags */
#define PEER_CFG_F_LOG_GC    0x00000001u   /* print a GC line per cycle */
#define PEER_CFG_F_LOG_LINK  0x00000002u   /* print LINK statistics every stats_period_ms */

typedef struct {
    uint32_t magic;                 /* PEER_CONFIG_MAGIC */
    uint16_t version;               /* PEER_CONFIG_VERSION */
    uint16_t size;                  /* sizeof(peer_config_t) */
    /* link schedule */
    uint32_t start_delay_ms;        /* quiet time after boot before the first setpoint */
    uint32_t setpoint_period_ms;    /* 5 = 200 Hz; must divide 1000 */
    uint32_t heartbeat_period_ms;
    uint32_t sensor_period_ms;
    uint32_t stats_period_ms;       /* LINK console line; 0 = never */
    /* GC model (gc images; pooled images never allocate) */
    int32_t  gogc;                  /* percent, < 0 = off (collect only when the heap is full) */
    uint32_t heap_size;             /* bytes of the arena in use, 1024..PEER_HEAP_CAPACITY */
    uint32_t gc_min_trigger;        /* bytes: smallest trigger (Go's minimum heap) */
    uint32_t live_init_bytes;       /* one long-lived object allocated at boot (0 = none) */
    uint32_t retain_bytes;          /* live-heap growth: retain one object of this size ... */
    uint32_t retain_every;          /* ... every N setpoints (0 = no growth) */
    uint32_t retain_max_bytes;      /* history cap in block bytes; the oldest object is dropped */
    uint32_t garbage_per_setpoint;  /* extra short-lived bytes per setpoint (0 = none) */
    uint32_t mark_cycles_per_kib;   /* pause cost per KiB of live heap, CPU cycles */
    uint32_t gc_fixed_cycles;       /* pause cost per cycle, CPU cycles */
    uint32_t cpu_hz;                /* nominal CPU clock for model_us in logs */
    /* motion profile: repeating out-and-back trapezoid */
    int32_t  profile_accel;         /* counts/s^2, > 0 */
    int32_t  profile_vmax;          /* counts/s, > 0 */
    int32_t  profile_stroke;        /* counts; sign = direction of the first move */
    int32_t  profile_start;         /* counts: axis position at boot (planner origin) */
    uint32_t profile_dwell_ms;      /* standstill at each end */
    /* sensor report contents */
    uint16_t sensor_id;
    int16_t  sensor_temp;           /* 0.1 degC; the report adds (n % 8) */
    uint32_t sensor_flags;          /* OR-ed with ((n % 255 + 1) << 16), n = report number */
    uint32_t flags;                 /* PEER_CFG_F_* */
} peer_config_t;

#define PEER_CONFIG_DEFAULTS {                                                                    \
    .magic = PEER_CONFIG_MAGIC, .version = PEER_CONFIG_VERSION, .size = sizeof(peer_config_t),   \
    .start_delay_ms = 10u,                                                                        \
    .setpoint_period_ms = 5u, .heartbeat_period_ms = 100u, .sensor_period_ms = 50u,               \
    .stats_period_ms = 1000u,                                                                     \
    .gogc = 100, .heap_size = 16384u, .gc_min_trigger = 4096u,                                     \
    .live_init_bytes = 2048u, .retain_bytes = 56u, .retain_every = 4u, .retain_max_bytes = 4096u, \
    .garbage_per_setpoint = 64u,                                                                  \
    .mark_cycles_per_kib = 240000u, .gc_fixed_cycles = 160000u, .cpu_hz = 160000000u,             \
    .profile_accel = 60000, .profile_vmax = 12000, .profile_stroke = 20000, .profile_start = 0,   \
    .profile_dwell_ms = 50u,                                                                      \
    .sensor_id = 7u, .sensor_temp = 235, .sensor_flags = 0u,                                      \
    .flags = PEER_CFG_F_LOG_GC | PEER_CFG_F_LOG_LINK,                                             \
}

/* Validation result bits (which fields were replaced); 1u << 31 = whole block replaced by defaults. */
#define PEER_CFG_BAD_HEADER  0x80000000u

/* Copy *src (the patched block) into *dst, replacing invalid fields by defaults. Returns a bit per
 * replaced field (bit i = field index i in peer_cfg_field_name) or PEER_CFG_BAD_HEADER. */
uint32_t peer_config_load(peer_config_t *dst, const volatile peer_config_t *src);
const char *peer_cfg_field_name(uint32_t bit);

#ifndef PEER_HOST_TEST
extern volatile const peer_config_t g_peer_config;
#endif

#endif
