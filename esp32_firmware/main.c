/*
 * duohil ESP32-C3-class peer: the behaviour layer's main loop.
 *
 * Boot: load the patched config, bring up UART0/UART1, the 1 ms tick and the PLIC, print BOOT, build
 * the runtime (gc: heap + boot-time live state; pooled: nothing). Then one cooperative loop, as a Go
 * program's main goroutine would run it: every setpoint period step the planner and send a setpoint,
 * every heartbeat / sensor period send those, decode whatever arrived, log, WFI when idle. A GC cycle
 * runs inside an allocation and stops this loop for its whole pause; interrupts keep running.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "behaviour.h"
#include "board.h"
#include "config.h"
#include "console.h"
#include "link.h"
#include "messages.h"
#include "plic.h"
#include "rt.h"
#include "serialize.h"
#include "soc.h"
#include "status.h"
#include "tick.h"

#ifndef PEER_VARIANT_NAME
#error "PEER_VARIANT_NAME must be set by the Makefile (gc-natural, gc-packed, pooled-natural, pooled-packed)"
#endif

#define STACK_PAINT 0xA5A5A5A5u

/* ---- harness-visible blocks ---- */
__attribute__((used)) peer_status_t g_peer_status;

/* ---- board objects ---- */
uart_t g_console_uart;
uart_t g_link_uart;
volatile uint32_t g_wake;

static uint8_t s_console_tx[2048];
static uint8_t s_link_tx[1024];
static uint8_t s_link_rx[1024];

static peer_config_t s_cfg;          /* validated RAM copy of g_peer_config */
static rt_t s_rt;
static behaviour_t s_beh;
static link_t s_link;
#if PEER_GC
static uint8_t s_heap[PEER_HEAP_CAPACITY] __attribute__((aligned(8)));
#endif

extern uint32_t __stack_bottom[], __stack_top[];

/* ---- GC port: real CPU time, mtime clock ---- */
#if PEER_GC
static uint32_t s_burn_carry;

static void port_burn(void *ctx, uint32_t cycles)
{
    (void)ctx;
    uint32_t total = s_burn_carry + cycles;
    s_burn_carry = total & 1u;
    gc_burn_loop(total >> 1);            /* 2 instructions per iteration */
}

static uint64_t port_clock(void *ctx)
{
    (void)ctx;
    return tick_mtime();
}

static void port_phase(void *ctx, int begin)
{
    static uint32_t saved;
    (void)ctx;
    if (begin) {
        saved = g_peer_status.state;
        g_peer_status.state = PEER_STATE_GC;
    } else {
        g_peer_status.state = saved;
    }
}
#endif

static void on_frame(void *ctx, const uint8_t *payload, uint8_t len)
{
    beh_on_frame((behaviour_t *)ctx, payload, len);
}

static uint32_t stack_high_water(void)
{
    const uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

static void log_boot(uint32_t cfg_errors)
{
    line_t l;
    line_start(&l, "BOOT duohil-peer");
    line_kv_str(&l, "variant", PEER_VARIANT_NAME);
    line_kv_u32(&l, "gc", PEER_GC);
    line_kv_str(&l, "layout", PEER_LAYOUT_NATURAL ? "natural" : "packed");
    line_kv_u32(&l, "proto", PROTO_VERSION);
    line_kv_u32(&l, "sp_period_ms", s_cfg.setpoint_period_ms);
    line_kv_i32(&l, "gogc", s_cfg.gogc);
    line_kv_u32(&l, "heap", s_cfg.heap_size);
    line_kv_str(&l, "cfg", cfg_errors == 0u ? "ok" : "fixed");
    console_line_polled(&l);

    if (cfg_errors == PEER_CFG_BAD_HEADER) {
        line_start(&l, "CFG header invalid: defaults used");
        console_line_polled(&l);
    } else {
        for (uint32_t bit = 0; bit < 31u; bit++) {
            if (cfg_errors & (1u << bit)) {
                line_start(&l, "CFG invalid");
                line_kv_str(&l, "field", peer_cfg_field_name(bit));
                line_str(&l, " (default used)");
                console_line_polled(&l);
            }
        }
    }
    if (g_peer_crash.magic == PEER_CRASH_MAGIC) {
        line_start(&l, "PREVTRAP");
        line_kv_hex(&l, "mcause", g_peer_crash.mcause);
        line_kv_hex(&l, "mepc", g_peer_crash.mepc);
        line_kv_hex(&l, "mtval", g_peer_crash.mtval);
        line_kv_u32(&l, "count", g_peer_crash.count);
        console_line_polled(&l);
    }
}

#if PEER_GC
static void gc_account(void)
{
    static uint32_t logged;
    const gc_heap_t *h = rt_heap(&s_rt);
    peer_status_t *st = &g_peer_status;
    st->heap_in_use = h->in_use;
    st->heap_alloc_total = h->alloc_total;
    if (h->st.count == logged) {
        return;
    }
    logged = h->st.count;
    uint32_t pause_us = (uint32_t)((h->st.last_end - h->st.last_start) / SOC_MTIME_PER_US);
    st->gc_count = h->st.count;
    st->gc_forced = h->st.forced;
    st->gc_last_pause_us = pause_us;
    if (pause_us > st->gc_max_pause_us) {
        st->gc_max_pause_us = pause_us;
    }
    st->gc_total_pause_us += pause_us;
    st->gc_last_live_bytes = h->st.last_live;
    st->gc_last_freed_bytes = h->st.last_freed;
    st->gc_last_alloc_since = h->st.last_alloc_since;
    st->gc_last_model_cycles = h->st.last_cycles;
    st->gc_last_start_mtime = h->st.last_start;
    st->gc_last_end_mtime = h->st.last_end;

    if (s_cfg.flags & PEER_CFG_F_LOG_GC) {
        line_t l;
        line_start(&l, "GC");
        line_kv_u32(&l, "n", h->st.count);
        line_kv_u32(&l, "pause_us", pause_us);
        line_kv_u32(&l, "model_us", h->st.last_cycles / (s_cfg.cpu_hz / 1000000u));
        line_kv_u32(&l, "live", h->st.last_live);
        line_kv_u32(&l, "freed", h->st.last_freed);
        line_kv_u32(&l, "alloc", h->st.last_alloc_since);
        line_kv_str(&l, "reason", h->st.last_reason == GC_REASON_FULL ? "full" : "pacer");
        console_line(&l);
    }
}
#endif

static void log_link(uint32_t now)
{
    const peer_status_t *st = &g_peer_status;
    line_t l;
    line_start(&l, "LINK");
    line_kv_u32(&l, "t_ms", now);
    line_kv_u32(&l, "sp", st->setpoints_sent);
    line_kv_u32(&l, "missed", st->setpoint_slots_missed);
    line_kv_u32(&l, "hb", st->heartbeats_sent);
    line_kv_u32(&l, "sr", st->sensor_reports_sent);
    line_kv_u32(&l, "tm", st->telemetry_received);
    line_kv_u32(&l, "tm_rej", st->telemetry_rejected);
    line_kv_u32(&l, "tm_stale", st->telemetry_stale);
    line_kv_u32(&l, "unexp", st->frames_unexpected);
    line_kv_u32(&l, "crc", st->frame_crc_errors);
    line_kv_u32(&l, "rxovf", st->rx_overflows);
    line_kv_u32(&l, "txdrop", st->tx_dropped);
    line_kv_u32(&l, "last_tm", st->last_telemetry_seq);
    line_kv_i32(&l, "pos_err", st->position_error);
    console_line(&l);
}

static void log_stm32_state(void)
{
    line_t l;
    line_start(&l, "STM32");
    line_kv_u32(&l, "state", g_peer_status.tm_state);
    line_kv_i32(&l, "pos", g_peer_status.tm_position);
    line_kv_u32(&l, "tm_seq", g_peer_status.last_telemetry_seq);
    console_line(&l);
}

static void send(uint8_t len, const uint8_t *payload)
{
    if (len != 0u) {
        (void)link_send(&s_link, payload, len);
    }
}

/* Due check on a fixed grid: true when now has reached *next; skips (and counts) missed slots. */
static int due(uint32_t now, uint32_t *next, uint32_t period, uint32_t *missed)
{
    if ((int32_t)(now - *next) < 0) {
        return 0;
    }
    uint32_t late = (now - *next) / period;
    if (missed != NULL) {
        *missed += late;
    }
    *next += (late + 1u) * period;
    return 1;
}

int main(void)
{
    peer_status_t *st = &g_peer_status;
    memset(st, 0, sizeof *st);
    st->version = PEER_STATUS_VERSION;
    st->size = sizeof *st;
    st->variant = (PEER_GC ? PEER_VARIANT_GC : 0u) | (PEER_LAYOUT_NATURAL ? PEER_VARIANT_NATURAL : 0u);
    st->state = PEER_STATE_BOOT;
    st->magic = PEER_STATUS_MAGIC;

    uint32_t cfg_errors = peer_config_load(&s_cfg, &g_peer_config);
    st->config_errors = cfg_errors;

    uart_init(&g_console_uart, SOC_UART0_BASE, s_console_tx, sizeof s_console_tx, NULL, 0u);
    uart_init(&g_link_uart, SOC_UART1_BASE, s_link_tx, sizeof s_link_tx, s_link_rx, sizeof s_link_rx);
    console_init(&g_console_uart);
    log_boot(cfg_errors);

#if PEER_GC
    rt_init(&s_rt, &s_cfg, s_heap, port_burn, port_clock, NULL);
    rt_heap(&s_rt)->phase = port_phase;
    uint32_t per_tick = s_cfg.cpu_hz / SOC_MTIME_HZ;   /* 160 MHz / 16 MHz = 10 */
    rt_heap(&s_rt)->cycles_per_tick = per_tick != 0u ? per_tick : 1u;
#else
    rt_init(&s_rt, &s_cfg, NULL, NULL, NULL, NULL);
#endif
    beh_init(&s_beh, &s_cfg, st, &s_rt);
    link_init(&s_link, &g_link_uart, on_frame, &s_beh);

    plic_init();
    plic_enable(IRQ_SRC_UART0, 1u);
    plic_enable(IRQ_SRC_UART1, 1u);
    tick_init();
    st->state = PEER_STATE_WAIT;
    irq_enable();

    uint32_t next_sp = s_cfg.start_delay_ms;
    uint32_t next_hb = next_sp, next_sr = next_sp;
    uint32_t next_stats = s_cfg.stats_period_ms;
    uint32_t next_hw = 0;

    for (;;) {
        g_wake = 0;                          /* an interrupt from here on makes cpu_idle return */
        uint32_t now = tick_ms();
        st->uptime_ms = now;
        link_poll(&s_link);

        if (st->state == PEER_STATE_WAIT && (int32_t)(now - s_cfg.start_delay_ms) >= 0) {
            st->state = PEER_STATE_RUN;
        }
        if (st->state == PEER_STATE_RUN) {
            uint8_t payload[SER_MAX_LEN];
            if (due(now, &next_sp, s_cfg.setpoint_period_ms, &st->setpoint_slots_missed)) {
                send(beh_setpoint(&s_beh, payload), payload);
            }
            if (due(now, &next_hb, s_cfg.heartbeat_period_ms, NULL)) {
                send(beh_heartbeat(&s_beh, now, payload), payload);
            }
            if (due(now, &next_sr, s_cfg.sensor_period_ms, NULL)) {
                send(beh_sensor(&s_beh, payload), payload);
            }
        }
        link_stats(&s_link, st);
#if PEER_GC
        gc_account();
#endif
        if (s_beh.events & BEH_EV_TM_STATE) {
            s_beh.events &= ~BEH_EV_TM_STATE;
            log_stm32_state();
        }
        if (s_cfg.stats_period_ms != 0u && due(now, &next_stats, s_cfg.stats_period_ms, NULL)) {
            if (s_cfg.flags & PEER_CFG_F_LOG_LINK) {
                log_link(now);
            }
        }
        if (due(now, &next_hw, 100u, NULL)) {
            st->stack_high_water = stack_high_water();
        }

        /* sleep until the next interrupt unless one arrived while we were busy */
        cpu_idle(&g_wake);
    }
}
