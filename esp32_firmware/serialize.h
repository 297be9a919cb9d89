/*
 * Serializers for the two messages the CM6 variants differ on (CRASH_MODES.md, CM6 `layout`).
 *
 *   natural  the message struct's memory as a Go (or C) compiler lays it out, copied after the
 *            type/version header: 12-byte bodies with padding (the field bug)
 *              sensor_report_t: id@0 temp@2 status@4 pad@5..7 flags@8          (payload 14 bytes)
 *              setpoint_t:      seq@0 pad@2..3 velocity@4 flags@8 pad@10..11   (payload 14 bytes)
 *   packed   explicit little-endian field-by-field encoding, the protocol's msg_encode_* (the fix):
 *              sensor body 9 bytes (payload 11), setpoint body 8 bytes (payload 10)
 *
 * A natural body's padding bytes are whatever the object holds there; the firmware's objects are
 * zeroed at allocation (gc_alloc, as Go's allocator; the pooled images clear their slots), so the peer
 * sends zeros in the padding. Hardware-free: the host unit tests compile this file.
 */
#ifndef PEER_SERIALIZE_H
#define PEER_SERIALIZE_H

#include <stdint.h>
#include "messages.h"

#define SER_HDR_LEN               2u     /* type, version */
#define SER_SENSOR_NATURAL_LEN    (SER_HDR_LEN + SENSOR_BODY_NATURAL)     /* 14 */
#define SER_SETPOINT_NATURAL_LEN  (SER_HDR_LEN + SETPOINT_BODY_NATURAL)   /* 14 */
#define SER_MAX_LEN               MSG_TELEMETRY_LEN

uint8_t ser_sensor_natural(uint8_t *out, const sensor_report_t *m);
uint8_t ser_setpoint_natural(uint8_t *out, const setpoint_t *m);
uint8_t ser_sensor_packed(uint8_t *out, const sensor_report_t *m);
uint8_t ser_setpoint_packed(uint8_t *out, const setpoint_t *m);

/* The variant the image was built with (PEER_LAYOUT_NATURAL = 1: natural, 0: packed). */
#ifndef PEER_LAYOUT_NATURAL
#define PEER_LAYOUT_NATURAL 0
#endif
#if PEER_LAYOUT_NATURAL
#define ser_sensor   ser_sensor_natural
#define ser_setpoint ser_setpoint_natural
#define SER_SENSOR_LEN   SER_SENSOR_NATURAL_LEN
#define SER_SETPOINT_LEN SER_SETPOINT_NATURAL_LEN
#else
#define ser_sensor   ser_sensor_packed
#define ser_setpoint ser_setpoint_packed
#define SER_SENSOR_LEN   MSG_SENSOR_REPORT_LEN
#define SER_SETPOINT_LEN MSG_SETPOINT_LEN
#endif

#endif
