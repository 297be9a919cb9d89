/*
 * duohil STM32H743 motor controller: boot, the 1 kHz control interrupt, the 1 ms tick and the main
 * loop (link RX parsing, telemetry at 100 Hz, console lines, status block, watchdog), sleeping in
 * WFI between interrupts.
 */
#include <string.h>
#include "fixes.h"
#include "board.h"
#include "blocks.h"
#include "config_defaults.h"
#include "system.h"
#include "console.h"
#include "logfmt.h"
#include "link_uart.h"
#include "telemetry.h"
#include "control.h"
#include "motor.h"
#include "iwdg.h"
#include "fault.h"
#include "../regs/stm32h743.h"

/* The harness patches this in the loaded image before reset; `volatile` so nothing is folded. */
__attribute__((section(".config"), used)) volatile const stm32_config_t g_config = CONFIG_DEFAULTS;
static const stm32_config_t k_config_defaults = CONFIG_DEFAULTS;

__attribute__((used)) stm32_status_t g_status;

static stm32_config_t s_cfg;        /* the validated copy the firmware runs with */
static char s_log[LOG_LINE_MAX];    /* main-loop log line (static: keeps the main stack shallow) */
static ctrl_t s_ctrl;               /* owned by the TIM6 ISR; the main loop touches it under a lock */

/* ---- 1 ms tick and the 1 kHz control loop ------------------------------------------------------ */
void SysTick_Handler(void)
{
    g_status.uptime_ms++;
#if FIX_STACK
    /* CM5 fix (guard): the lowest stack word must still hold the canary. */
    if (_sstack[0] != STACK_CANARY) {
        g_status.stack_guard_trips++;
        fault_panic(CRASH_EXC_STACK_GUARD);
    }
#endif
}

void TIM6_DAC_IRQHandler(void)
{
    control_timer_ack();
    int32_t duty = ctrl_step(&s_ctrl, encoder_read(), g_status.uptime_ms);
    motor_set_duty(duty);
}

/* ---- message handlers (main-loop context, called from link_poll) ------------------------------- */
static void on_setpoint(void *ctx, const setpoint_t *m)
{
    (void)ctx;
    uint32_t now = g_status.uptime_ms;
    g_status.sp_seq = m->seq;
    g_status.sp_velocity = m->velocity;
    g_status.sp_flags = m->flags;
    if (g_status.setpoints != 0u && (int16_t)(uint16_t)(m->seq - g_status.last_seq) < 0) {
        g_status.seq_regressions++;
    }
    uint32_t primask = cpu_irq_save();
    if (m->flags & SETPOINT_F_HOME) {
        encoder_zero();
        ctrl_rehome(&s_ctrl, 0);
    }
    ctrl_command(&s_ctrl, m, now);
    cpu_irq_restore(primask);
    g_status.setpoints++;
    g_status.last_seq = m->seq;
    g_status.last_setpoint_ms = now;
}

static void on_pid_params(void *ctx, const pid_params_t *m)
{
    (void)ctx;
    uint32_t primask = cpu_irq_save();
    ctrl_set_gains(&s_ctrl, m->kp, m->ki, m->kd);
    cpu_irq_restore(primask);
    g_status.kp = m->kp;
    g_status.ki = m->ki;
    g_status.kd = m->kd;
    g_status.pid_updates++;
}

static void on_heartbeat(void *ctx, const heartbeat_t *m)
{
    (void)ctx;
    (void)m;
    g_status.heartbeats++;
}

static void on_sensor_report(void *ctx, const sensor_report_t *m)
{
    (void)ctx;
    g_status.sensor_id = m->id;
    g_status.sensor_temp = m->temp;
    g_status.sensor_status = m->status;
    g_status.sensor_flags = m->flags;
    g_status.sensor_reports++;
    if (m->flags & (SENSOR_F_OBSTACLE | SENSOR_F_OVERTEMP)) {
        uint32_t primask = cpu_irq_save();
        if (s_ctrl.state == CTRL_STATE_RUN || s_ctrl.state == CTRL_STATE_HOLD) {
            ctrl_estop(&s_ctrl, ESTOP_REASON_SENSOR);
        }
        cpu_irq_restore(primask);
    }
}

static const dispatch_ops_t k_ops = {
    .setpoint = on_setpoint,
    .pid_params = on_pid_params,
    .heartbeat = on_heartbeat,
    .sensor_report = on_sensor_report,
    .ctx = 0,
};

/* ---- boot helpers ------------------------------------------------------------------------------- */
__attribute__((noinline)) static uint32_t load_config(void)
{
    /* word copy: g_config is volatile (patched in the image), a struct assignment would drop that */
    uint32_t *dst = (uint32_t *)&s_cfg;
    const volatile uint32_t *src = (const volatile uint32_t *)&g_config;
    for (uint32_t i = 0; i < sizeof s_cfg / 4u; i++) {
        dst[i] = src[i];
    }
    int ok = s_cfg.magic == CONFIG_MAGIC && s_cfg.version == CONFIG_VERSION && s_cfg.size == sizeof s_cfg &&
             s_cfg.link_baud >= 1200u && s_cfg.link_baud <= 7500000u && s_cfg.console_baud >= 1200u &&
             s_cfg.console_baud <= 7500000u && s_cfg.soft_limit_min < s_cfg.soft_limit_max &&
             s_cfg.max_velocity > 0 && s_cfg.max_accel > 0 && s_cfg.hold_decel > 0 && s_cfg.following_error_max > 0 &&
             s_cfg.duty_max > 0 && s_cfg.duty_max <= (int32_t)PWM_PERIOD_COUNTS && s_cfg.telemetry_period_ms > 0u;
    if (!ok) {
        s_cfg = k_config_defaults;
        return BOOTF_CONFIG_INVALID;
    }
    return 0u;
}

__attribute__((noinline)) static void log_reset_cause(uint32_t rsr)
{
    char *buf = s_log;
    line_t l;
    line_init(&l, buf, LOG_LINE_MAX);
    line_str(&l, "RESET cause=");
    line_str(&l, (rsr & RCC_RSR_IWDG1RSTF)  ? "iwdg"
                 : (rsr & RCC_RSR_SFTRSTF)  ? "software"
                 : (rsr & RCC_RSR_PORRSTF)  ? "power_on"
                 : (rsr & RCC_RSR_BORRSTF)  ? "brown_out"
                 : (rsr & RCC_RSR_PINRSTF)  ? "pin"
                                            : "unknown");
    line_kv_hex(&l, "rsr", rsr);
    line_end(&l);
    console_write(buf, l.len);
}

__attribute__((noinline)) static void log_boot(uint32_t rsr)
{
    char *buf = s_log;
    console_write(buf, logfmt_boot(buf, LOG_LINE_MAX, BUILD_VARIANT, FIX_MASK));   /* the first line */
    log_reset_cause(rsr);
}

__attribute__((noinline)) static void log_config(void)
{
    char *buf = s_log;
    line_t l;
    line_init(&l, buf, LOG_LINE_MAX);
    line_str(&l, "CONFIG");
    line_kv_u32(&l, "baud", s_cfg.link_baud);
    line_kv_u32(&l, "fresh_ms", s_cfg.freshness_ms);
    line_kv_i32(&l, "soft_min", s_cfg.soft_limit_min);
    line_kv_i32(&l, "soft_max", s_cfg.soft_limit_max);
    line_kv_i32(&l, "vmax", s_cfg.max_velocity);
    line_kv_i32(&l, "ferr", s_cfg.following_error_max);
    line_kv_hex(&l, "flags", g_status.boot_flags);
    line_kv_u32(&l, "stack", g_status.stack_size);
    line_end(&l);
    console_write(buf, l.len);
}

/* ---- main-loop helpers -------------------------------------------------------------------------- */
__attribute__((noinline)) static void publish_status(void)
{
    link_stats_t ls;
    link_get_stats(&ls);
    g_status.frames_ok = ls.frames_ok;
    g_status.crc_errors = ls.crc_errors;
    g_status.resyncs = ls.resyncs;
    g_status.len_errors = ls.len_errors;
    g_status.idle_resets = ls.idle_resets;
    g_status.bytes_discarded = ls.bytes_discarded;
    g_status.rejected = ls.dispatch.rejected;
    g_status.rx_bytes = ls.rx_bytes;
    g_status.rx_idle_events = ls.rx_idle_events;
    g_status.rx_ring_overruns = ls.rx_ring_overruns;
    g_status.rx_sof_seen = ls.rx_sof_seen;
    g_status.overruns = ls.overruns;
    g_status.usart_errors = ls.usart_errors;
    g_status.dma_errors = ls.dma_errors;
    g_status.telemetry_sent = ls.telemetry_sent;
    g_status.telemetry_dropped = ls.telemetry_dropped;
    g_status.console_dropped = console_dropped();

    uint32_t primask = cpu_irq_save();
    g_status.state = s_ctrl.state;
    g_status.estop_reason = s_ctrl.estop_reason;
    g_status.position = s_ctrl.pos;
    g_status.velocity = (int32_t)s_ctrl.vel;
    g_status.ref_position = (int32_t)s_ctrl.ref_pos;
    g_status.duty = s_ctrl.duty;
    g_status.estop_position = s_ctrl.estop_pos;
    g_status.ctrl_ticks = s_ctrl.ticks;
    g_status.stale_setpoints = s_ctrl.stale_count;
    g_status.estops = s_ctrl.estop_count;
    uint32_t events = ctrl_take_events(&s_ctrl);
    cpu_irq_restore(primask);

    char *buf = s_log;
    if (events & CTRL_EV_ESTOP) {
        console_write(buf, logfmt_estop(buf, LOG_LINE_MAX, g_status.estop_reason, g_status.estop_position));
    }
    if (events & (CTRL_EV_HOLD | CTRL_EV_RESUME | CTRL_EV_RUN | CTRL_EV_IDLE)) {
        line_t l;
        line_init(&l, buf, LOG_LINE_MAX);
        line_str(&l, "STATE ");
        line_str(&l, ctrl_state_name(g_status.state));
        line_kv_i32(&l, "pos", g_status.position);
        line_kv_u32(&l, "sp_age_ms", g_status.uptime_ms - g_status.last_setpoint_ms);
        line_end(&l);
        console_write(buf, l.len);
    }
}

static void update_link_state(uint32_t frames, uint32_t now, uint32_t *last_rx_ms)
{
    if (frames != 0u) {
        *last_rx_ms = now;
        if (!g_status.link_up) {
            g_status.link_up = 1u;
            console_puts("LINK up\r\n");
        }
    } else if (g_status.link_up && now - *last_rx_ms > s_cfg.link_timeout_ms) {
        g_status.link_up = 0u;
        console_puts("LINK down\r\n");
    }
}

__attribute__((noinline)) static void log_stat(void)
{
    char *buf = s_log;
    line_t l;
    line_init(&l, buf, LOG_LINE_MAX);
    line_str(&l, "STAT");
    line_kv_u32(&l, "t", g_status.uptime_ms);
    line_str(&l, " state=");
    line_str(&l, ctrl_state_name(g_status.state));
    line_kv_i32(&l, "pos", g_status.position);
    line_kv_i32(&l, "vel", g_status.velocity);
    line_kv_u32(&l, "ok", g_status.frames_ok);
    line_kv_u32(&l, "crc", g_status.crc_errors);
    line_kv_u32(&l, "rsy", g_status.resyncs);
    line_kv_u32(&l, "rej", g_status.rejected);
    line_kv_u32(&l, "stale", g_status.stale_setpoints);
    line_kv_u32(&l, "estop", g_status.estops);
    line_kv_u32(&l, "ovr", g_status.overruns);
    line_kv_u32(&l, "hw", g_status.stack_high_water);
    line_end(&l);
    console_write(buf, l.len);
}

__attribute__((noinline)) static void boot(void)
{
    uint32_t rsr = RCC->RSR;
    RCC->RSR = rsr | RCC_RSR_RMVF;                   /* clear the reset flags for the next boot */

    uint32_t boot_flags = clock_init();
    icache_enable();
    dcache_enable();
    boot_flags |= BOOTF_ICACHE_ON | BOOTF_DCACHE_ON;
#if FIX_STACK
    /* CM5 fix: link ISRs share one preemption level (sub-priorities only): they never nest. */
    scb_set_priority_grouping(PRIGROUP_LINK_GROUPED);
#else
    /* CM5 field bug: "NVIC_PRIORITYGROUP_4": every priority value is its own preemption level. */
    scb_set_priority_grouping(PRIGROUP_FLAT);
#endif
    fault_init();
#if FIX_STACK
    /* CM5 fix: an MPU no-access region right below the stack turns an overflow into a MemManage. */
    mpu_stack_guard_init();
    boot_flags |= BOOTF_MPU_GUARD;
#endif
    boot_flags |= load_config();

    g_status.magic = STATUS_MAGIC;
    g_status.version = STATUS_VERSION;
    g_status.size = (uint16_t)sizeof g_status;
    g_status.fix_mask = FIX_MASK;
    g_status.reset_flags = rsr;
    g_status.stack_size = (uint32_t)((uintptr_t)_estack - (uintptr_t)_sstack);
    g_status.kp = s_cfg.kp;
    g_status.ki = s_cfg.ki;
    g_status.kd = s_cfg.kd;
    g_status.state = CTRL_STATE_BOOT;

    systick_init();
    boot_flags |= console_init(s_cfg.console_baud);
    log_boot(rsr);
    if (fault_report_previous()) {
        boot_flags |= BOOTF_CRASH_REPORTED;
    }

    motor_init();
    ctrl_params_t params = {
        .soft_limit_min = s_cfg.soft_limit_min, .soft_limit_max = s_cfg.soft_limit_max,
        .max_velocity = s_cfg.max_velocity, .max_accel = s_cfg.max_accel, .hold_decel = s_cfg.hold_decel,
        .following_error_max = s_cfg.following_error_max, .freshness_ms = s_cfg.freshness_ms,
        .kp = s_cfg.kp, .ki = s_cfg.ki, .kd = s_cfg.kd, .kff = s_cfg.kff, .duty_max = s_cfg.duty_max,
    };
    ctrl_init(&s_ctrl, &params, encoder_read());
    boot_flags |= link_init(s_cfg.link_baud, &k_ops);
#if FIX_FAULT_HANDLER
    /* CM7 fix: a watchdog, so a fault (or a hang) ends in a reset, not a dead device. */
    boot_flags |= iwdg_start();
    if (!(boot_flags & BOOTF_IWDG_TIMEOUT)) {
        boot_flags |= BOOTF_IWDG_ON;
        fault_set_watchdog_running();
    }
#endif
    g_status.boot_flags = boot_flags;
    log_config();
    control_timer_init();
}

int main(void)
{
    boot();
    uint32_t last_tlm = g_status.uptime_ms;
    uint32_t last_stat = g_status.uptime_ms;
    uint32_t last_rx = g_status.uptime_ms;
    uint16_t tlm_seq = 0u;
    for (;;) {
        uint32_t frames = link_poll();
        uint32_t now = g_status.uptime_ms;
        update_link_state(frames, now, &last_rx);
        publish_status();

        if (now - last_tlm >= s_cfg.telemetry_period_ms) {
            last_tlm = now;
            g_status.stack_high_water = stack_high_water();
            telemetry_t t;
            telemetry_fill(&t, tlm_seq, &g_status);
            g_status.telemetry_seq = tlm_seq++;
            link_send_telemetry(&t);
        }
        if (s_cfg.stat_period_ms != 0u && now - last_stat >= s_cfg.stat_period_ms) {
            last_stat = now;
            log_stat();
        }
#if FIX_FAULT_HANDLER
        iwdg_kick();
#endif
        /* Sleep until the next interrupt. An interrupt that did its work after the checks above
         * is seen one wake-up later: TIM6 wakes the loop every ms, which bounds that latency. (The
         * cpsid/wfi/cpsie idiom would close the window, but the builtin engine takes an interrupt
         * unmasked by CPSIE only at its next slice boundary, so it would never get in there.) */
        cpu_wfi();
    }
}
