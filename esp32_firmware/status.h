/*
 * Blocks the harness reads through the ELF's symbols (pyelftools; layouts from DWARF):
 *   g_peer_status  (DRAM .bss)   counters, GC measurements, the last messages as the peer meant them
 *   g_peer_crash   (DRAM .noinit) written by the trap handler on an unexpected exception
 * Both start with magic / version / size and hold only fixed-width integers, laid out without
 * implicit padding (checked below).
 */
#ifndef PEER_STATUS_H
#define PEER_STATUS_H

#include <stddef.h>
#include <stdint.h>

#define PEER_STATUS_MAGIC    0x54535050u   /* "PPST" in memory */
#define PEER_STATUS_VERSION  1u
#define PEER_CRASH_MAGIC     0x53524350u   /* "PCRS" in memory; written last */
#define PEER_CRASH_VERSION   1u

/* status.state */
#define PEER_STATE_BOOT      0u
#define PEER_STATE_WAIT      1u   /* start_delay_ms not over yet */
#define PEER_STATE_RUN       2u
#define PEER_STATE_GC        3u   /* inside a stop-the-world pause */
#define PEER_STATE_TRAP      4u

/* status.variant bits */
#define PEER_VARIANT_GC      0x1u /* gc image (else pooled) */
#define PEER_VARIANT_NATURAL 0x2u /* natural serializer (else packed) */

typedef struct {
    uint32_t magic;                   /* PEER_STATUS_MAGIC once boot has initialised the block */
    uint16_t version;
    uint16_t size;
    uint32_t variant;                 /* PEER_VARIANT_* */
    uint32_t state;                   /* PEER_STATE_* */
    uint32_t uptime_ms;               /* 1 ms tick count */
    uint32_t config_errors;           /* peer_config_load result: fields replaced by defaults */
    /* link TX */
    uint32_t setpoints_sent;
    uint32_t setpoint_slots_missed;   /* setpoint periods skipped because the loop was late (GC) */
    uint32_t heartbeats_sent;
    uint32_t sensor_reports_sent;
    uint32_t tx_bytes;                /* link bytes queued */
    uint32_t tx_dropped;              /* link bytes dropped: TX ring full */
    /* link RX */
    uint32_t rx_bytes;
    uint32_t rx_overflows;            /* UART RXFIFO_OVF + software ring overflow */
    uint32_t rx_line_errors;          /* UART FRM_ERR / PARITY_ERR */
    uint32_t frames_ok;               /* frame decoder counters (FIX_RESYNC=1) */
    uint32_t frame_crc_errors;
    uint32_t frame_len_errors;
    uint32_t frame_resyncs;
    uint32_t frame_idle_resets;
    uint32_t telemetry_received;      /* decoded and accepted */
    uint32_t telemetry_rejected;      /* msg_decode_telemetry failed (type / version / length) */
    uint32_t telemetry_stale;         /* sequence did not advance (regression or repeat) */
    uint32_t frames_unexpected;       /* valid frames of another message type */
    /* GC (all 0 in pooled images) */
    uint32_t gc_count;
    uint32_t gc_forced;               /* cycles because an allocation did not fit */
    uint32_t gc_oom;                  /* allocations that failed (message not sent) */
    uint32_t gc_last_pause_us;        /* measured from mtime */
    uint32_t gc_max_pause_us;
    uint32_t gc_total_pause_us;
    uint32_t gc_last_live_bytes;      /* block bytes marked by the last cycle */
    uint32_t gc_last_freed_bytes;
    uint32_t gc_last_alloc_since;     /* bytes allocated since the previous cycle, at trigger */
    uint32_t gc_last_model_cycles;    /* fixed + floor(per_kib * live / 1024) */
    uint64_t gc_last_start_mtime;     /* mtime (16 MHz) at the start / end of the latest pause */
    uint64_t gc_last_end_mtime;
    uint32_t heap_in_use;
    uint32_t heap_alloc_total;        /* block bytes allocated since boot (wraps) */
    /* the last messages as the peer meant them (the CM6 oracle compares with what the STM32 decoded) */
    int32_t  last_setpoint_velocity;
    uint16_t last_setpoint_seq;
    uint16_t last_setpoint_flags;
    uint32_t last_sensor_flags;
    uint16_t last_sensor_id;
    int16_t  last_sensor_temp;
    uint16_t last_sensor_status;      /* uint8 on the wire */
    uint16_t last_heartbeat_seq;
    /* planner */
    int32_t  planned_position;        /* counts, what the peer believes after the last setpoint */
    uint32_t planner_moves;
    /* the last accepted telemetry */
    int32_t  tm_position;
    int32_t  tm_velocity;
    int32_t  position_error;          /* planned_position - tm_position at the last telemetry */
    uint16_t last_telemetry_seq;
    uint16_t tm_last_setpoint_seq;    /* the STM32's last accepted setpoint sequence */
    uint16_t tm_state;                /* CTRL_STATE_* */
    uint16_t tm_fault_flags;
    uint16_t tm_stale;                /* the STM32's own counters */
    uint16_t tm_rejected;
    uint32_t stack_high_water;        /* bytes of stack ever used (painted at boot) */
} peer_status_t;

_Static_assert(offsetof(peer_status_t, gc_last_start_mtime) % 8u == 0u, "u64 field on an 8-byte offset");
_Static_assert(sizeof(peer_status_t) % 8u == 0u, "no tail padding");

typedef struct {
    uint32_t magic;                   /* PEER_CRASH_MAGIC when the record is valid */
    uint16_t version;
    uint16_t size;
    uint32_t mcause;
    uint32_t mepc;
    uint32_t mtval;
    uint32_t mstatus;
    uint32_t ra;
    uint32_t sp;
    uint32_t uptime_ms;
    uint32_t count;                   /* traps recorded since the record was last invalid */
} peer_crash_t;

#ifndef PEER_HOST_TEST
extern peer_status_t g_peer_status;
extern peer_crash_t g_peer_crash;
#endif

#endif
