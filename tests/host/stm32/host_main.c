/*
 * Host driver for the STM32 firmware's pure units (control, setpoint freshness, link RX snapshot,
 * telemetry, dispatch, log lines). One subcommand per scenario; output is `key=value` lines that
 * tests/test_stm32_host.py parses. Built once per FIX_* combination.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_defaults.h"
#include "control.h"
#include "dispatch.h"
#include "link_rx.h"
#include "logfmt.h"
#include "setpoint.h"
#include "telemetry.h"
#include "../../protocol/frame.h"

/* ---- CM4: a simulated DMA stream and the interrupt played at the snapshot window ---------------- */
static volatile uint32_t g_ndtr = LINK_RX_BUF_SIZE;
static link_rx_t g_rx;
static int g_tc_pending;                 /* the DMA model's TCIF, not yet handled by the "ISR" */
static void (*g_window_irq)(void);       /* what happens at link_rx_snapshot_window, once */

void host_snapshot_hook(void)
{
    void (*irq)(void) = g_window_irq;
    g_window_irq = 0;
    if (irq) {
        irq();
    }
}

static void dma_write(uint32_t n)        /* the DMA stores n bytes; NDTR counts down and reloads */
{
    while (n--) {
        g_ndtr = g_ndtr - 1u;
        if (g_ndtr == 0u) {
            g_ndtr = LINK_RX_BUF_SIZE;   /* circular: reload, TC flag set */
            g_tc_pending = 1;
        }
    }
}

static void isr_dma_tc(void)             /* DMA1 stream 0 ISR taking the pending TC */
{
    if (g_tc_pending) {
        g_tc_pending = 0;
        link_rx_on_tc(&g_rx);
    }
}

static void print_rx(const char *tag)
{
    uint32_t head = link_rx_snapshot(&g_rx);
    uint32_t n = link_rx_pending(&g_rx, head);
    printf("%s_head=%" PRIu32 "\n%s_pending=%" PRIu32 "\n", tag, head, tag, n);
    if (n <= LINK_RX_BUF_SIZE) {
        link_rx_consume(&g_rx, n);
    }
}

static int cmd_snapshot(void)
{
    link_rx_init(&g_rx, &g_ndtr);
    /* a first burst of 250 bytes: HT at 128, then the IDLE line at 250 */
    dma_write(128);
    link_rx_on_ht(&g_rx);
    dma_write(122);
    link_rx_on_idle(&g_rx);
    print_rx("first");
    /* 10 more bytes wrap the ring (offset 4); the TC interrupt is taken at the snapshot window */
    dma_write(10);
    g_window_irq = isr_dma_tc;
    link_rx_on_idle(&g_rx);      /* IDLE after the burst, before the TC is handled (TC held back) */
    print_rx("torn");
    print_rx("after");
    printf("wraps=%" PRIu32 "\noverruns=%" PRIu32 "\nrd=%" PRIu32 "\n", g_rx.wraps, g_rx.overruns, g_rx.rd);
    return 0;
}

static int cmd_snapshot_quiet(void)      /* the same traffic, but every ISR runs before the reader */
{
    link_rx_init(&g_rx, &g_ndtr);
    dma_write(128);
    link_rx_on_ht(&g_rx);
    dma_write(122);
    link_rx_on_idle(&g_rx);
    print_rx("first");
    dma_write(10);
    isr_dma_tc();
    link_rx_on_idle(&g_rx);
    print_rx("second");
    return 0;
}

/* ---- setpoint freshness ---------------------------------------------------------------------- */
static int cmd_fresh(int argc, char **argv)
{
    if (argc < 5) {
        return 2;
    }
    setpoint_slot_t s = {0};
    uint32_t rx = (uint32_t)strtoul(argv[2], 0, 0), now = (uint32_t)strtoul(argv[3], 0, 0);
    uint32_t window = (uint32_t)strtoul(argv[4], 0, 0);
    if (strcmp(argv[2], "none") != 0) {
        setpoint_t sp = {.seq = 1, .velocity = 1000, .flags = SETPOINT_F_ENABLE};
        setpoint_store(&s, &sp, rx);
    }
    printf("fresh=%d\nage=%" PRIu32 "\n", setpoint_is_fresh(&s, now, window), setpoint_age_ms(&s, now));
    return 0;
}

/* ---- control loop against a simple DC-motor plant --------------------------------------------- */
/* the emulator's default plant (duohil/engines/builtin/board/plant.py MotorParams), no friction */
#define PLANT_VMAX   20000.0     /* counts/s at 100 % duty */
#define PLANT_TAU_S  0.02        /* mechanical time constant */

typedef struct { double pos, vel; } plant_t;

static void plant_step(plant_t *p, int32_t duty)
{
    double v_inf = (double)duty / 12000.0 * PLANT_VMAX;
    p->vel += (v_inf - p->vel) * (0.001 / PLANT_TAU_S);
    p->pos += p->vel * 0.001;
}

static ctrl_params_t default_params(void)
{
    static const stm32_config_t d = CONFIG_DEFAULTS;     /* g_config's defaults (main.c) */
    return (ctrl_params_t){.soft_limit_min = d.soft_limit_min, .soft_limit_max = d.soft_limit_max,
                           .max_velocity = d.max_velocity, .max_accel = d.max_accel, .hold_decel = d.hold_decel,
                           .following_error_max = d.following_error_max, .freshness_ms = d.freshness_ms,
                           .kp = d.kp, .ki = d.ki, .kd = d.kd, .kff = d.kff, .duty_max = d.duty_max};
}

static int cmd_defaults(void)
{
    ctrl_params_t p = default_params();
    printf("soft_limit_min=%" PRId32 "\nsoft_limit_max=%" PRId32 "\nmax_velocity=%" PRId32 "\nmax_accel=%" PRId32
           "\nhold_decel=%" PRId32 "\nfollowing_error_max=%" PRId32 "\nfreshness_ms=%" PRIu32 "\n",
           p.soft_limit_min, p.soft_limit_max, p.max_velocity, p.max_accel, p.hold_decel, p.following_error_max,
           p.freshness_ms);
    return 0;
}

static const char *state_name(uint8_t s) { return ctrl_state_name(s); }

/* The peer commands `vel` every 10 ms; from stall_ms it stops for stall_len ms (a GC pause), then
 * resumes with `vel_after` (default: vel); the run lasts run_ms. An optional soft_limit_max.
 * Reports what an oracle would look at. */
static int cmd_ctrl_stall(int argc, char **argv)
{
    if (argc < 6) {
        return 2;
    }
    int32_t vel = (int32_t)strtol(argv[2], 0, 0);
    uint32_t stall_ms = (uint32_t)strtoul(argv[3], 0, 0), stall_len = (uint32_t)strtoul(argv[4], 0, 0);
    uint32_t run_ms = (uint32_t)strtoul(argv[5], 0, 0);
    ctrl_params_t p = default_params();
    if (argc > 6) {
        p.soft_limit_max = (int32_t)strtol(argv[6], 0, 0);
    }
    int32_t vel_after = argc > 7 ? (int32_t)strtol(argv[7], 0, 0) : vel;
    ctrl_t c;
    plant_t pl = {0};
    ctrl_init(&c, &p, 0);
    uint16_t seq = 0;
    double max_pos = 0, max_ferr = 0, vel_at_stall = 0;
    uint32_t hold_at = 0, resume_at = 0, estop_at = 0;
    for (uint32_t t = 0; t < run_ms; t++) {
        int stalled = t >= stall_ms && t < stall_ms + stall_len;
        if (t % 10u == 0u && !stalled) {
            setpoint_t sp = {.seq = seq++, .velocity = t < stall_ms ? vel : vel_after, .flags = SETPOINT_F_ENABLE};
            ctrl_command(&c, &sp, t);
        }
        int32_t duty = ctrl_step(&c, (int32_t)pl.pos, t);
        plant_step(&pl, duty);
        uint32_t ev = ctrl_take_events(&c);
        if ((ev & CTRL_EV_HOLD) && !hold_at) hold_at = t;
        if ((ev & CTRL_EV_RESUME) && !resume_at) resume_at = t;
        if ((ev & CTRL_EV_ESTOP) && !estop_at) estop_at = t;
        if (pl.pos > max_pos) max_pos = pl.pos;
        if (t == stall_ms) vel_at_stall = c.vel;
        double ferr = c.ref_pos - pl.pos;
        if (c.state == CTRL_STATE_RUN && ferr < 0) ferr = -ferr;
        if (c.state == CTRL_STATE_RUN && t > 50 && ferr > max_ferr) max_ferr = ferr;
    }
    printf("state=%s\nestop_reason=%s\nestop_at=%" PRIu32 "\nestop_pos=%" PRId32 "\n", state_name(c.state),
           estop_reason_name(c.estop_reason), estop_at, c.estop_pos);
    printf("hold_at=%" PRIu32 "\nresume_at=%" PRIu32 "\nstale=%" PRIu32 "\nestops=%" PRIu32 "\n", hold_at,
           resume_at, c.stale_count, c.estop_count);
    printf("pos=%.0f\nmax_pos=%.0f\nvel=%.0f\nvel_at_stall=%.0f\nmax_ferr=%.0f\nduty=%" PRId32 "\n", pl.pos,
           max_pos, c.vel, vel_at_stall, max_ferr, c.duty);
    return 0;
}

/* The axis is blocked (the position never moves): the reference runs away -> following error. */
static int cmd_ctrl_blocked(int argc, char **argv)
{
    int32_t vel = argc > 2 ? (int32_t)strtol(argv[2], 0, 0) : 10000;
    ctrl_params_t p = default_params();
    ctrl_t c;
    ctrl_init(&c, &p, 0);
    uint32_t estop_at = 0;
    for (uint32_t t = 0; t < 2000 && !estop_at; t++) {
        if (t % 10u == 0u) {
            setpoint_t sp = {.seq = (uint16_t)t, .velocity = vel, .flags = SETPOINT_F_ENABLE};
            ctrl_command(&c, &sp, t);
        }
        (void)ctrl_step(&c, 0, t);
        if (ctrl_take_events(&c) & CTRL_EV_ESTOP) {
            estop_at = t;
        }
    }
    printf("state=%s\nestop_reason=%s\nestop_at=%" PRIu32 "\nref=%.0f\nduty=%" PRId32 "\n", state_name(c.state),
           estop_reason_name(c.estop_reason), estop_at, (double)c.ref_pos, c.duty);
    return 0;
}

/* ESTOP latch and acknowledge: an enable setpoint does not clear it; a disable inside limits does. */
static int cmd_ctrl_estop_ack(void)
{
    ctrl_params_t p = default_params();
    ctrl_t c;
    ctrl_init(&c, &p, 0);
    setpoint_t run = {.seq = 1, .velocity = 1000, .flags = SETPOINT_F_ENABLE};
    setpoint_t off = {.seq = 2, .velocity = 0, .flags = 0};
    ctrl_command(&c, &run, 0);
    (void)ctrl_step(&c, 0, 0);
    (void)ctrl_step(&c, p.soft_limit_max + 1, 1);         /* beyond soft_limit_max */
    printf("s1=%s\nreason=%s\nestop_pos=%" PRId32 "\n", state_name(c.state), estop_reason_name(c.estop_reason),
           c.estop_pos);
    printf("d1=%" PRId32 "\n", ctrl_step(&c, p.soft_limit_max + 1, 2));
    ctrl_command(&c, &run, 3);
    printf("s2=%s\n", state_name(c.state));               /* still estop */
    ctrl_command(&c, &off, 4);
    printf("s3=%s\n", state_name(c.state));               /* outside limits: still estop */
    (void)ctrl_step(&c, p.soft_limit_max - 1000, 5);
    ctrl_command(&c, &off, 6);
    printf("s4=%s\n", state_name(c.state));               /* inside: idle */
    ctrl_command(&c, &run, 7);
    printf("s5=%s\nestops=%" PRIu32 "\n", state_name(c.state), c.estop_count);
    return 0;
}

/* ---- telemetry --------------------------------------------------------------------------------- */
static int cmd_telemetry(void)
{
    stm32_status_t st = {0};
    st.position = -123456;
    st.velocity = 4321;
    st.state = CTRL_STATE_ESTOP;
    st.estop_reason = ESTOP_REASON_FOLLOWING_ERROR;
    st.link_up = 1;
    st.last_seq = 0xBEEF;
    st.crc_errors = 7;
    st.rejected = 70000;          /* saturates to 0xFFFF on the wire */
    st.stale_setpoints = 3;
    st.overruns = 0x10000;
    telemetry_t t;
    telemetry_fill(&t, 0x1234, &st);
    uint8_t frame[64];
    size_t n = telemetry_encode_frame(frame, sizeof frame, &t);
    printf("len=%zu\nframe=", n);
    for (size_t i = 0; i < n; i++) {
        printf("%02x", frame[i]);
    }
    printf("\nsmall=%zu\n", telemetry_encode_frame(frame, 27, &t));
    return 0;
}

/* ---- dispatch ----------------------------------------------------------------------------------- */
static void h_setpoint(void *ctx, const setpoint_t *m)
{
    (void)ctx;
    printf("kind=setpoint\nseq=%u\nvelocity=%" PRId32 "\nflags=%u\n", m->seq, m->velocity, m->flags);
}
static void h_pid(void *ctx, const pid_params_t *m)
{
    (void)ctx;
    printf("kind=pid\nkp=%" PRId32 "\nki=%" PRId32 "\nkd=%" PRId32 "\n", m->kp, m->ki, m->kd);
}
static void h_heartbeat(void *ctx, const heartbeat_t *m)
{
    (void)ctx;
    printf("kind=heartbeat\nseq=%u\nuptime_ms=%" PRIu32 "\n", m->seq, m->uptime_ms);
}
static void h_sensor(void *ctx, const sensor_report_t *m)
{
    (void)ctx;
    printf("kind=sensor\nid=%u\ntemp=%d\nstatus=%u\nflags=%" PRIu32 "\n", m->id, m->temp, m->status, m->flags);
}

static int cmd_dispatch(int argc, char **argv)
{
    if (argc < 3) {
        return 2;
    }
    /* the payload sits in a frame decoder's buffer in the firmware: give it the same slack */
    uint8_t buf[FRAME_RAW_CAP] = {0};
    size_t n = strlen(argv[2]) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(argv[2] + 2 * i, "%2x", &v);
        buf[i] = (uint8_t)v;
    }
    dispatch_ops_t ops = {h_setpoint, h_pid, h_heartbeat, h_sensor, 0};
    dispatch_stats_t st = {0};
    int rc = dispatch_payload(buf, (uint8_t)n, &ops, &st);
    printf("rc=%d\naccepted=%" PRIu32 "\nrejected=%" PRIu32 "\nrej_len=%" PRIu32 "\nrej_ver=%" PRIu32
           "\nrej_type=%" PRIu32 "\n",
           rc, st.accepted, st.rejected, st.rejected_length, st.rejected_version, st.rejected_type);
    return 0;
}

/* ---- log lines ---------------------------------------------------------------------------------- */
static int cmd_logfmt(void)
{
    char buf[LOG_LINE_MAX];
    crash_record_t r = {.magic = CRASH_MAGIC, .count = 3, .exception = 3, .cfsr = 0x8200, .hfsr = 0x40000000,
                        .mmfar = 0xE000EDF8, .bfar = 0x20020000, .lr = 0x08001b75, .pc = 0x08001e7c,
                        .xpsr = 0x61000000, .sp = 0x20000d40, .uptime_ms = 1234};
    logfmt_boot(buf, sizeof buf, "fixed-no-atomic", 0x77);
    printf("boot=%s", buf);
    logfmt_estop(buf, sizeof buf, ESTOP_REASON_SOFT_LIMIT, -100007);
    printf("estop=%s", buf);
    logfmt_hardfault(buf, sizeof buf, &r);
    printf("hardfault=%s", buf);
    logfmt_crashrec(buf, sizeof buf, &r);
    printf("crashrec=%s", buf);
    uint16_t n = logfmt_estop(buf, 24, ESTOP_REASON_FOLLOWING_ERROR, 5);   /* truncated, still a line */
    printf("short_len=%u\nshort=%s", n, buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "snapshot")) return cmd_snapshot();
    if (!strcmp(cmd, "snapshot_quiet")) return cmd_snapshot_quiet();
    if (!strcmp(cmd, "fresh")) return cmd_fresh(argc, argv);
    if (!strcmp(cmd, "defaults")) return cmd_defaults();
    if (!strcmp(cmd, "ctrl_stall")) return cmd_ctrl_stall(argc, argv);
    if (!strcmp(cmd, "ctrl_blocked")) return cmd_ctrl_blocked(argc, argv);
    if (!strcmp(cmd, "ctrl_estop_ack")) return cmd_ctrl_estop_ack();
    if (!strcmp(cmd, "telemetry")) return cmd_telemetry();
    if (!strcmp(cmd, "dispatch")) return cmd_dispatch(argc, argv);
    if (!strcmp(cmd, "logfmt")) return cmd_logfmt();
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
