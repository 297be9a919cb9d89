/*
 * duohil link messages (protocol version 1). Wire layout: little-endian, packed, fixed length per
 * type; payload byte 0 = message type, byte 1 = protocol version. protocol/PROTOCOL.md is the spec
 * and duohil/protocol.py the Python twin; protocol/vectors.json pins the bytes.
 *
 * The encoders/decoders here are the explicit field-by-field ones (the CM6 fix). The field bug of
 * CM6 (a naturally aligned struct on the wire, or a receiver that overlays a packed struct without a
 * length check) lives in the firmware that has it, behind FIX_LAYOUT / the `natural` peer variant.
 */
#ifndef DUOHIL_MESSAGES_H
#define DUOHIL_MESSAGES_H

#include <stdint.h>

#define PROTO_VERSION          1u

/* message types: peer -> STM32 below 0x80, STM32 -> peer from 0x80 */
#define MSG_SETPOINT           0x01u
#define MSG_PID_PARAMS         0x02u
#define MSG_HEARTBEAT          0x03u
#define MSG_SENSOR_REPORT      0x04u
#define MSG_TELEMETRY          0x81u

/* payload lengths, header (type, version) included */
#define MSG_SETPOINT_LEN       10u   /* type ver | seq u16 | velocity i32 | flags u16            */
#define MSG_PID_PARAMS_LEN     14u   /* type ver | kp i32 | ki i32 | kd i32 (Q16.16)              */
#define MSG_HEARTBEAT_LEN       8u   /* type ver | seq u16 | uptime_ms u32                        */
#define MSG_SENSOR_REPORT_LEN  11u   /* type ver | id u16 | temp i16 | status u8 | flags u32      */
#define MSG_TELEMETRY_LEN      24u   /* see telemetry_t                                           */

/* Body sizes of the two messages the CM6 `natural` peer serializes as an aligned struct. */
#define SENSOR_BODY_PACKED      9u
#define SENSOR_BODY_NATURAL    12u   /* id@0 temp@2 status@4 pad@5..7 flags@8 */
#define SETPOINT_BODY_PACKED    8u
#define SETPOINT_BODY_NATURAL  12u   /* seq@0 pad@2..3 velocity@4 flags@8 pad@10..11 */

/* setpoint flags */
#define SETPOINT_F_ENABLE      0x0001u  /* drive enabled; 0 = coast to stop */
#define SETPOINT_F_HOME        0x0002u  /* treat current position as 0 */

/* controller state, as reported in telemetry */
#define CTRL_STATE_BOOT        0u
#define CTRL_STATE_IDLE        1u
#define CTRL_STATE_RUN         2u
#define CTRL_STATE_HOLD        3u   /* setpoint stale: ramped to a safe hold (CM1 fix) */
#define CTRL_STATE_ESTOP       4u
#define CTRL_STATE_FAULT       5u

/* sensor report flags */
#define SENSOR_F_OBSTACLE      0x00000001u
#define SENSOR_F_OVERTEMP      0x00000002u

typedef struct { uint16_t seq; int32_t velocity; uint16_t flags; } setpoint_t;          /* counts/s */
typedef struct { int32_t kp, ki, kd; } pid_params_t;                                       /* Q16.16   */
typedef struct { uint16_t seq; uint32_t uptime_ms; } heartbeat_t;
typedef struct { uint16_t id; int16_t temp; uint8_t status; uint32_t flags; } sensor_report_t;
typedef struct {
    uint16_t seq;            /* telemetry sequence number */
    int32_t  position;       /* encoder counts */
    int32_t  velocity;       /* counts/s */
    uint8_t  state;          /* CTRL_STATE_* */
    uint8_t  fault_flags;
    uint16_t last_seq;       /* last accepted setpoint sequence */
    uint16_t crc_errors;
    uint16_t rejected;       /* frames rejected: bad length, version or type */
    uint16_t stale;          /* setpoints expired by the freshness window */
    uint16_t overruns;       /* USART overruns */
} telemetry_t;               /* wire: type ver seq pos vel state fault last_seq crc rej stale ovr = 24 */

static inline void put_u16le(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint16_t get_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Encoders write exactly MSG_x_LEN bytes and return that length. */
uint8_t msg_encode_setpoint(uint8_t *out, const setpoint_t *m);
uint8_t msg_encode_pid_params(uint8_t *out, const pid_params_t *m);
uint8_t msg_encode_heartbeat(uint8_t *out, const heartbeat_t *m);
uint8_t msg_encode_sensor_report(uint8_t *out, const sensor_report_t *m);
uint8_t msg_encode_telemetry(uint8_t *out, const telemetry_t *m);

/* Decoders check type, version and exact length. Return 0 on success, or a MSG_ERR_* code. */
#define MSG_OK             0
#define MSG_ERR_TYPE       1
#define MSG_ERR_VERSION    2
#define MSG_ERR_LENGTH     3
int msg_decode_setpoint(const uint8_t *p, uint8_t len, setpoint_t *m);
int msg_decode_pid_params(const uint8_t *p, uint8_t len, pid_params_t *m);
int msg_decode_heartbeat(const uint8_t *p, uint8_t len, heartbeat_t *m);
int msg_decode_sensor_report(const uint8_t *p, uint8_t len, sensor_report_t *m);
int msg_decode_telemetry(const uint8_t *p, uint8_t len, telemetry_t *m);

#endif
