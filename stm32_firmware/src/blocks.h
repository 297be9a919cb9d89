/*
 * The three blocks the harness reads or patches through the ELF symbols (DWARF gives it the layout):
 *   g_config        stm32_config_t, `volatile const`, own flash output section `.config`;
 *                   the harness patches it in the loaded image before reset.
 *   g_status        stm32_status_t in RAM (.bss, DTCM), re-initialised at every boot.
 *   g_crash_record  crash_record_t in `.noinit` (DTCM, not touched by startup), survives reset.
 * Every block starts with magic u32, version u16, size u16. Plain fixed-width integers only; every
 * field is naturally aligned so the packed and natural layouts are the same (no hidden padding).
 * stm32_firmware/README.md documents each field; keep the two in step.
 */
#ifndef DUOHIL_BLOCKS_H
#define DUOHIL_BLOCKS_H

#include <stdint.h>

#define CONFIG_MAGIC          0x434E4647u   /* 'CNFG' */
#define CONFIG_VERSION        1u
#define STATUS_MAGIC          0x53544154u   /* 'STAT' */
#define STATUS_VERSION        1u
#define CRASH_MAGIC           0x43525348u   /* 'CRSH': a record not yet reported at boot */
#define CRASH_MAGIC_REPORTED  0x43525352u   /* 'CRSR': reported by CRASHREC; `count` still valid */
#define CRASH_VERSION         1u

typedef struct {
    uint32_t magic;                 /* CONFIG_MAGIC */
    uint16_t version;               /* CONFIG_VERSION */
    uint16_t size;                  /* sizeof(stm32_config_t) */
    uint32_t link_baud;             /* USART3 to the peer, 8N1 (default 115200) */
    uint32_t console_baud;          /* USART1 console (default 115200) */
    uint32_t freshness_ms;          /* CM1: a setpoint older than this is stale (FIX_CMD_TIMEOUT) */
    int32_t  soft_limit_min;        /* counts; crossing it -> ESTOP reason=soft_limit */
    int32_t  soft_limit_max;        /* counts */
    int32_t  max_velocity;          /* counts/s; setpoints are clamped to +-this */
    int32_t  max_accel;             /* counts/s^2; velocity-reference ramp */
    int32_t  following_error_max;   /* counts; |ref - pos| beyond it -> ESTOP reason=following_error */
    int32_t  kp;                    /* Q16.16, PWM counts per count of position error */
    int32_t  ki;                    /* Q16.16, PWM counts per (count * s) */
    int32_t  kd;                    /* Q16.16, PWM counts per count/s of velocity error */
    int32_t  kff;                   /* Q16.16, PWM counts per count/s of reference velocity */
    int32_t  duty_max;              /* PWM counts, <= PWM period (12000 = 100 %) */
    uint32_t telemetry_period_ms;   /* default 10 (100 Hz) */
    uint32_t stat_period_ms;        /* STAT console line period, 0 = off (default 1000) */
    uint32_t link_timeout_ms;       /* no valid frame for this long -> `LINK down` (default 500) */
    int32_t  hold_decel;            /* counts/s^2; CM1 fix: ramp to zero velocity when a setpoint is stale */
} stm32_config_t;

/* status.state / telemetry state use CTRL_STATE_* of protocol/messages.h */
typedef struct {
    uint32_t magic;                 /* STATUS_MAGIC */
    uint16_t version;               /* STATUS_VERSION */
    uint16_t size;                  /* sizeof(stm32_status_t) */
    uint32_t fix_mask;              /* FIX_MASK compiled in (bit FIXBIT_x) */
    uint32_t boot_flags;            /* BOOTF_* */
    uint32_t reset_flags;           /* RCC_RSR at boot */
    uint32_t uptime_ms;             /* SysTick count */
    /* link, frame layer (protocol/frame.c counters) */
    uint32_t frames_ok;
    uint32_t crc_errors;
    uint32_t resyncs;
    uint32_t len_errors;
    uint32_t idle_resets;
    uint32_t bytes_discarded;
    /* link, message layer */
    uint32_t rejected;              /* bad type / length / version (FIX_LAYOUT) or unknown type */
    uint32_t setpoints;             /* setpoints applied */
    uint32_t seq_regressions;       /* applied setpoints whose seq was older than the previous one */
    uint32_t heartbeats;
    uint32_t pid_updates;
    uint32_t sensor_reports;
    /* link, driver */
    uint32_t rx_bytes;              /* bytes taken out of the RX ring */
    uint32_t rx_idle_events;        /* USART3 IDLE interrupts */
    uint32_t rx_ring_overruns;      /* RX spans longer than the ring, dropped (FIX_ATOMIC) */
    uint32_t rx_sof_seen;           /* SOF bytes seen by the RX DMA half/full ISR */
    uint32_t overruns;              /* USART3 ORE */
    uint32_t usart_errors;          /* USART3 FE + NE + PE */
    uint32_t dma_errors;            /* DMA TE/DME/FE on the link streams */
    uint32_t telemetry_sent;
    uint32_t telemetry_dropped;     /* a telemetry frame was due while the previous one was queued */
    /* control */
    uint32_t ctrl_ticks;            /* 1 kHz control-loop runs */
    uint32_t stale_setpoints;       /* RUN -> HOLD transitions (FIX_CMD_TIMEOUT) */
    uint32_t estops;
    uint32_t stack_guard_trips;     /* canary found overwritten (FIX_STACK) */
    uint32_t stack_size;            /* bytes of main stack (linker symbol) */
    uint32_t stack_high_water;      /* bytes of main stack ever used (painted at boot, measured 100 Hz) */
    uint32_t console_dropped;       /* console bytes dropped, TX ring full */
    uint32_t last_setpoint_ms;      /* uptime when the last setpoint was applied */
    uint16_t last_seq;              /* last applied setpoint sequence number */
    uint8_t  state;                 /* CTRL_STATE_* */
    uint8_t  estop_reason;          /* ESTOP_REASON_* */
    int32_t  position;              /* counts (TIM2 CNT) */
    int32_t  velocity;              /* counts/s, filtered */
    int32_t  ref_position;          /* counts */
    int32_t  duty;                  /* signed PWM counts applied */
    int32_t  estop_position;        /* position at the last ESTOP */
    /* last setpoint as decoded (CM6 oracle) */
    uint16_t sp_seq;
    uint16_t sp_flags;
    int32_t  sp_velocity;
    /* last sensor report as decoded (CM6 oracle) */
    uint16_t sensor_id;
    int16_t  sensor_temp;
    uint8_t  sensor_status;
    uint8_t  link_up;               /* 1 after a valid frame, 0 after link_timeout_ms of silence */
    uint16_t telemetry_seq;         /* seq of the last telemetry frame sent */
    uint32_t sensor_flags;
    /* active gains (Q16.16), config defaults or the last PID_PARAMS */
    int32_t  kp;
    int32_t  ki;
    int32_t  kd;
} stm32_status_t;

#define BOOTF_CONFIG_INVALID  (1u << 0)   /* g_config magic/version/size wrong: built-in defaults used */
#define BOOTF_CLOCK_TIMEOUT   (1u << 1)   /* a clock-init handshake timed out */
#define BOOTF_USART_TIMEOUT   (1u << 2)   /* TEACK/REACK did not come */
#define BOOTF_IWDG_TIMEOUT    (1u << 3)   /* IWDG SR did not clear */
#define BOOTF_CRASH_REPORTED  (1u << 4)   /* a crash record was found and printed */
#define BOOTF_DCACHE_ON       (1u << 5)
#define BOOTF_ICACHE_ON       (1u << 6)
#define BOOTF_MPU_GUARD       (1u << 7)   /* MPU stack guard region active (FIX_STACK) */
#define BOOTF_IWDG_ON         (1u << 8)   /* watchdog running (FIX_FAULT_HANDLER) */

#define ESTOP_REASON_NONE             0u
#define ESTOP_REASON_SOFT_LIMIT       1u
#define ESTOP_REASON_FOLLOWING_ERROR  2u
#define ESTOP_REASON_SENSOR           3u

typedef struct {
    uint32_t magic;                 /* CRASH_MAGIC (unreported) / CRASH_MAGIC_REPORTED / anything else */
    uint16_t version;
    uint16_t size;
    uint32_t count;                 /* crashes recorded since the record was first initialised */
    uint32_t exception;             /* IPSR at entry: 3 HardFault, 4 MemManage, 5 BusFault, 6 UsageFault,
                                       other = unexpected IRQ (16 + n); CRASH_EXC_STACK_GUARD = canary */
    uint32_t cfsr;
    uint32_t hfsr;
    uint32_t mmfar;
    uint32_t bfar;
    uint32_t r0;
    uint32_t r1;
    uint32_t r2;
    uint32_t r3;
    uint32_t r12;
    uint32_t lr;                    /* stacked LR */
    uint32_t pc;                    /* stacked return address (faulting instruction for a fault) */
    uint32_t xpsr;
    uint32_t exc_return;            /* LR at handler entry */
    uint32_t sp;                    /* address of the stacked frame */
    uint32_t uptime_ms;
    uint32_t fix_mask;
} crash_record_t;

#define CRASH_EXC_STACK_GUARD  0x100u      /* software: stack canary overwritten */

extern volatile const stm32_config_t g_config;
extern stm32_status_t g_status;
extern crash_record_t g_crash_record;

#endif
