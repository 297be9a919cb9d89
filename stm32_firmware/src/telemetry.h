/*
 * Telemetry (pure logic): the 100 Hz STM32 -> peer report, from the controller state and the status
 * counters, encoded as a complete frame (messages.c + frame.c). Counters are 32-bit in the status
 * block and saturate at 0xFFFF on the wire.
 */
#ifndef DUOHIL_TELEMETRY_H
#define DUOHIL_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>
#include "../../protocol/messages.h"
#include "blocks.h"

#define TELEMETRY_FRAME_SIZE   (MSG_TELEMETRY_LEN + 4u)     /* SOF LEN payload CRC16 = 28 */

/* Telemetry fault_flags bits */
#define TLM_FAULT_ESTOP_SOFT_LIMIT  (1u << 0)
#define TLM_FAULT_ESTOP_FOLLOWING   (1u << 1)
#define TLM_FAULT_ESTOP_SENSOR      (1u << 2)
#define TLM_FAULT_LINK_DOWN         (1u << 3)
#define TLM_FAULT_STACK_GUARD       (1u << 4)
#define TLM_FAULT_CRASH_AT_BOOT     (1u << 5)   /* a crash record was reported at this boot */

static inline uint16_t sat_u16(uint32_t v) { return v > 0xFFFFu ? (uint16_t)0xFFFFu : (uint16_t)v; }

/* Fill t from the status block (state, position, velocity, last_seq, counters). */
void telemetry_fill(telemetry_t *t, uint16_t seq, const stm32_status_t *st);
/* Encode t as a frame into out; returns the frame size (28) or 0 if cap is too small. */
size_t telemetry_encode_frame(uint8_t *out, size_t cap, const telemetry_t *t);

#endif
