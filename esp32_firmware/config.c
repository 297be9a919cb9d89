/* The configuration block and its validation (config.h). */
#include "config.h"

#include <string.h>

#ifndef PEER_HOST_TEST
/* Patched by the harness in the loaded image; `volatile` so the defaults are never folded in. */
__attribute__((section(".config"), used))
volatile const peer_config_t g_peer_config = PEER_CONFIG_DEFAULTS;
#endif

static const peer_config_t k_defaults = PEER_CONFIG_DEFAULTS;

/* Field checks, in the order of the bits returned by peer_config_load. */
enum {
    F_SETPOINT_PERIOD, F_HEARTBEAT_PERIOD, F_SENSOR_PERIOD, F_GOGC, F_HEAP_SIZE, F_RETAIN_MAX,
    F_CPU_HZ, F_ACCEL, F_VMAX, F_STROKE, F_COUNT
};
static const char *const k_field_names[F_COUNT] = {
    "setpoint_period_ms", "heartbeat_period_ms", "sensor_period_ms", "gogc", "heap_size",
    "retain_max_bytes", "cpu_hz", "profile_accel", "profile_vmax", "profile_stroke",
};

const char *peer_cfg_field_name(uint32_t bit)
{
    return bit < F_COUNT ? k_field_names[bit] : "?";
}

static int period_ok(uint32_t ms) { return ms >= 1u && ms <= 60000u; }

uint32_t peer_config_load(peer_config_t *dst, const volatile peer_config_t *src)
{
    if (src->magic != PEER_CONFIG_MAGIC || src->version != PEER_CONFIG_VERSION ||
        src->size != sizeof(peer_config_t)) {
        *dst = k_defaults;
        return PEER_CFG_BAD_HEADER;
    }
    /* volatile source: copy word by word (memcpy would discard the qualifier) */
    const volatile uint32_t *s = (const volatile uint32_t *)src;
    uint32_t *d = (uint32_t *)(void *)dst;
    for (uint32_t i = 0; i < sizeof(peer_config_t) / 4u; i++) {
        d[i] = s[i];
    }

    uint32_t bad = 0;
    if (!period_ok(dst->setpoint_period_ms) || 1000u % dst->setpoint_period_ms != 0u) {
        dst->setpoint_period_ms = k_defaults.setpoint_period_ms;
        bad |= 1u << F_SETPOINT_PERIOD;
    }
    if (!period_ok(dst->heartbeat_period_ms)) {
        dst->heartbeat_period_ms = k_defaults.heartbeat_period_ms;
        bad |= 1u << F_HEARTBEAT_PERIOD;
    }
    if (!period_ok(dst->sensor_period_ms)) {
        dst->sensor_period_ms = k_defaults.sensor_period_ms;
        bad |= 1u << F_SENSOR_PERIOD;
    }
    if (dst->gogc > PEER_GOGC_MAX) {
        dst->gogc = k_defaults.gogc;
        bad |= 1u << F_GOGC;
    }
    if (dst->heap_size < 1024u || dst->heap_size > PEER_HEAP_CAPACITY || (dst->heap_size & 7u) != 0u) {
        dst->heap_size = k_defaults.heap_size;
        bad |= 1u << F_HEAP_SIZE;
    }
    if (dst->retain_max_bytes > dst->heap_size) {
        dst->retain_max_bytes = dst->heap_size / 2u;
        bad |= 1u << F_RETAIN_MAX;
    }
    if (dst->cpu_hz < 1000000u) {
        dst->cpu_hz = k_defaults.cpu_hz;
        bad |= 1u << F_CPU_HZ;
    }
    if (dst->profile_accel <= 0 || dst->profile_accel > 100000000) {
        dst->profile_accel = k_defaults.profile_accel;
        bad |= 1u << F_ACCEL;
    }
    if (dst->profile_vmax <= 0 || dst->profile_vmax > 10000000) {
        dst->profile_vmax = k_defaults.profile_vmax;
        bad |= 1u << F_VMAX;
    }
    if (dst->profile_stroke == 0 || dst->profile_stroke > 10000000 || dst->profile_stroke < -10000000) {
        dst->profile_stroke = k_defaults.profile_stroke;
        bad |= 1u << F_STROKE;
    }
    return bad;
}
