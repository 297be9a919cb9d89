/* Telemetry: see telemetry.h. */
#include "telemetry.h"
#include "../../protocol/frame.h"

void telemetry_fill(telemetry_t *t, uint16_t seq, const stm32_status_t *st)
{
    uint8_t ff = 0u;
    if (st->state == CTRL_STATE_ESTOP) {
        ff |= st->estop_reason == ESTOP_REASON_SOFT_LIMIT        ? TLM_FAULT_ESTOP_SOFT_LIMIT
              : st->estop_reason == ESTOP_REASON_FOLLOWING_ERROR ? TLM_FAULT_ESTOP_FOLLOWING
              : st->estop_reason == ESTOP_REASON_SENSOR          ? TLM_FAULT_ESTOP_SENSOR
                                                                 : 0u;
    }
    if (!st->link_up) {
        ff |= TLM_FAULT_LINK_DOWN;
    }
    if (st->stack_guard_trips != 0u) {
        ff |= TLM_FAULT_STACK_GUARD;
    }
    if (st->boot_flags & BOOTF_CRASH_REPORTED) {
        ff |= TLM_FAULT_CRASH_AT_BOOT;
    }
    t->seq = seq;
    t->position = st->position;
    t->velocity = st->velocity;
    t->state = st->state;
    t->fault_flags = ff;
    t->last_seq = st->last_seq;
    t->crc_errors = sat_u16(st->crc_errors);
    t->rejected = sat_u16(st->rejected);
    t->stale = sat_u16(st->stale_setpoints);
    t->overruns = sat_u16(st->overruns);
}

size_t telemetry_encode_frame(uint8_t *out, size_t cap, const telemetry_t *t)
{
    uint8_t payload[MSG_TELEMETRY_LEN];
    uint8_t n = msg_encode_telemetry(payload, t);
    return frame_encode(out, cap, payload, n);
}
