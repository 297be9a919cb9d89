/*
 * duohil link messages, protocol version 1: explicit little-endian field-by-field encoders and
 * decoders (the CM6 fix). Never memcpy a struct to or from the wire: its in-memory layout depends on
 * the compiler and target (padding, endianness), the wire layout does not.
 * Spec and byte-offset tables: protocol/PROTOCOL.md.
 */
#include "messages.h"

static void put_header(uint8_t *out, uint8_t type)
{
    out[0] = type;
    out[1] = (uint8_t)PROTO_VERSION;
}

/* Check order (shared with duohil/protocol.py): type, then version, then exact length. A payload too
 * short to hold the byte being checked is a length error. */
static int check_header(const uint8_t *p, uint8_t len, uint8_t type, uint8_t want_len)
{
    if (len < 1u) {
        return MSG_ERR_LENGTH;
    }
    if (p[0] != type) {
        return MSG_ERR_TYPE;
    }
    if (len < 2u) {
        return MSG_ERR_LENGTH;
    }
    if (p[1] != PROTO_VERSION) {
        return MSG_ERR_VERSION;
    }
    if (len != want_len) {
        return MSG_ERR_LENGTH;
    }
    return MSG_OK;
}

/* --- setpoint: type ver | seq u16 @2 | velocity i32 @4 | flags u16 @8 --------------------------- */

uint8_t msg_encode_setpoint(uint8_t *out, const setpoint_t *m)
{
    put_header(out, (uint8_t)MSG_SETPOINT);
    put_u16le(&out[2], m->seq);
    put_u32le(&out[4], (uint32_t)m->velocity);
    put_u16le(&out[8], m->flags);
    return (uint8_t)MSG_SETPOINT_LEN;
}

int msg_decode_setpoint(const uint8_t *p, uint8_t len, setpoint_t *m)
{
    int rc = check_header(p, len, (uint8_t)MSG_SETPOINT, (uint8_t)MSG_SETPOINT_LEN);
    if (rc != MSG_OK) {
        return rc;
    }
    m->seq = get_u16le(&p[2]);
    m->velocity = (int32_t)get_u32le(&p[4]);
    m->flags = get_u16le(&p[8]);
    return MSG_OK;
}

/* --- PID parameters: type ver | kp i32 @2 | ki i32 @6 | kd i32 @10 (Q16.16) ---------------------- */

uint8_t msg_encode_pid_params(uint8_t *out, const pid_params_t *m)
{
    put_header(out, (uint8_t)MSG_PID_PARAMS);
    put_u32le(&out[2], (uint32_t)m->kp);
    put_u32le(&out[6], (uint32_t)m->ki);
    put_u32le(&out[10], (uint32_t)m->kd);
    return (uint8_t)MSG_PID_PARAMS_LEN;
}

int msg_decode_pid_params(const uint8_t *p, uint8_t len, pid_params_t *m)
{
    int rc = check_header(p, len, (uint8_t)MSG_PID_PARAMS, (uint8_t)MSG_PID_PARAMS_LEN);
    if (rc != MSG_OK) {
        return rc;
    }
    m->kp = (int32_t)get_u32le(&p[2]);
    m->ki = (int32_t)get_u32le(&p[6]);
    m->kd = (int32_t)get_u32le(&p[10]);
    return MSG_OK;
}

/* --- heartbeat: type ver | seq u16 @2 | uptime_ms u32 @4 ----------------------------------------- */

uint8_t msg_encode_heartbeat(uint8_t *out, const heartbeat_t *m)
{
    put_header(out, (uint8_t)MSG_HEARTBEAT);
    put_u16le(&out[2], m->seq);
    put_u32le(&out[4], m->uptime_ms);
    return (uint8_t)MSG_HEARTBEAT_LEN;
}

int msg_decode_heartbeat(const uint8_t *p, uint8_t len, heartbeat_t *m)
{
    int rc = check_header(p, len, (uint8_t)MSG_HEARTBEAT, (uint8_t)MSG_HEARTBEAT_LEN);
    if (rc != MSG_OK) {
        return rc;
    }
    m->seq = get_u16le(&p[2]);
    m->uptime_ms = get_u32le(&p[4]);
    return MSG_OK;
}

/* --- sensor report: type ver | id u16 @2 | temp i16 @4 | status u8 @6 | flags u32 @7 ------------- */

uint8_t msg_encode_sensor_report(uint8_t *out, const sensor_report_t *m)
{
    put_header(out, (uint8_t)MSG_SENSOR_REPORT);
    put_u16le(&out[2], m->id);
    put_u16le(&out[4], (uint16_t)m->temp);
    out[6] = m->status;
    put_u32le(&out[7], m->flags);
    return (uint8_t)MSG_SENSOR_REPORT_LEN;
}

int msg_decode_sensor_report(const uint8_t *p, uint8_t len, sensor_report_t *m)
{
    int rc = check_header(p, len, (uint8_t)MSG_SENSOR_REPORT, (uint8_t)MSG_SENSOR_REPORT_LEN);
    if (rc != MSG_OK) {
        return rc;
    }
    m->id = get_u16le(&p[2]);
    m->temp = (int16_t)get_u16le(&p[4]);
    m->status = p[6];
    m->flags = get_u32le(&p[7]);
    return MSG_OK;
}

/* --- telemetry: type ver | seq u16 @2 | position i32 @4 | velocity i32 @8 | state u8 @12 |
 *     fault_flags u8 @13 | last_seq u16 @14 | crc_errors u16 @16 | rejected u16 @18 |
 *     stale u16 @20 | overruns u16 @22 ------------------------------------------------------------ */

uint8_t msg_encode_telemetry(uint8_t *out, const telemetry_t *m)
{
    put_header(out, (uint8_t)MSG_TELEMETRY);
    put_u16le(&out[2], m->seq);
    put_u32le(&out[4], (uint32_t)m->position);
    put_u32le(&out[8], (uint32_t)m->velocity);
    out[12] = m->state;
    out[13] = m->fault_flags;
    put_u16le(&out[14], m->last_seq);
    put_u16le(&out[16], m->crc_errors);
    put_u16le(&out[18], m->rejected);
    put_u16le(&out[20], m->stale);
    put_u16le(&out[22], m->overruns);
    return (uint8_t)MSG_TELEMETRY_LEN;
}

int msg_decode_telemetry(const uint8_t *p, uint8_t len, telemetry_t *m)
{
    int rc = check_header(p, len, (uint8_t)MSG_TELEMETRY, (uint8_t)MSG_TELEMETRY_LEN);
    if (rc != MSG_OK) {
        return rc;
    }
    m->seq = get_u16le(&p[2]);
    m->position = (int32_t)get_u32le(&p[4]);
    m->velocity = (int32_t)get_u32le(&p[8]);
    m->state = p[12];
    m->fault_flags = p[13];
    m->last_seq = get_u16le(&p[14]);
    m->crc_errors = get_u16le(&p[16]);
    m->rejected = get_u16le(&p[18]);
    m->stale = get_u16le(&p[20]);
    m->overruns = get_u16le(&p[22]);
    return MSG_OK;
}
