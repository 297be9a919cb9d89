/* Message dispatch: see dispatch.h (CM6). */
#include "dispatch.h"

#if !FIX_LAYOUT
/* CM6 field bug: the receiver's view of the wire, a packed struct overlaid on the payload. It is
 * right for the packed 9/8-byte bodies and silently wrong for anything else. */
typedef struct __attribute__((packed)) {
    uint8_t type, version;
    uint16_t seq;
    int32_t velocity;
    uint16_t flags;
} setpoint_wire_t;
typedef struct __attribute__((packed)) {
    uint8_t type, version;
    int32_t kp, ki, kd;
} pid_params_wire_t;
typedef struct __attribute__((packed)) {
    uint8_t type, version;
    uint16_t seq;
    uint32_t uptime_ms;
} heartbeat_wire_t;
typedef struct __attribute__((packed)) {
    uint8_t type, version;
    uint16_t id;
    int16_t temp;
    uint8_t status;
    uint32_t flags;
} sensor_report_wire_t;
#endif

static int reject(dispatch_stats_t *st, int why)
{
    st->rejected++;
    if (why == MSG_ERR_LENGTH) {
        st->rejected_length++;
    } else if (why == MSG_ERR_VERSION) {
        st->rejected_version++;
    } else {
        st->rejected_type++;
    }
    return why;
}

int dispatch_payload(const uint8_t *p, uint8_t len, const dispatch_ops_t *ops, dispatch_stats_t *st)
{
    if (len == 0u) {
        return reject(st, MSG_ERR_LENGTH);
    }
#if FIX_LAYOUT
    /* CM6 fix: explicit little-endian field-by-field decoding with the exact length and the
     * protocol version checked per type; a mismatch is rejected and counted. */
    int rc;
    switch (p[0]) {
    case MSG_SETPOINT: {
        setpoint_t m;
        if ((rc = msg_decode_setpoint(p, len, &m)) != MSG_OK) {
            return reject(st, rc);
        }
        ops->setpoint(ops->ctx, &m);
        break;
    }
    case MSG_PID_PARAMS: {
        pid_params_t m;
        if ((rc = msg_decode_pid_params(p, len, &m)) != MSG_OK) {
            return reject(st, rc);
        }
        ops->pid_params(ops->ctx, &m);
        break;
    }
    case MSG_HEARTBEAT: {
        heartbeat_t m;
        if ((rc = msg_decode_heartbeat(p, len, &m)) != MSG_OK) {
            return reject(st, rc);
        }
        ops->heartbeat(ops->ctx, &m);
        break;
    }
    case MSG_SENSOR_REPORT: {
        sensor_report_t m;
        if ((rc = msg_decode_sensor_report(p, len, &m)) != MSG_OK) {
            return reject(st, rc);
        }
        ops->sensor_report(ops->ctx, &m);
        break;
    }
    default:
        return reject(st, MSG_ERR_TYPE);
    }
#else
    /* CM6 field bug: trust the type byte, overlay the packed layout, never look at len or version. */
    switch (p[0]) {
    case MSG_SETPOINT: {
        const setpoint_wire_t *w = (const setpoint_wire_t *)(const void *)p;
        setpoint_t m = {.seq = w->seq, .velocity = w->velocity, .flags = w->flags};
        ops->setpoint(ops->ctx, &m);
        break;
    }
    case MSG_PID_PARAMS: {
        const pid_params_wire_t *w = (const pid_params_wire_t *)(const void *)p;
        pid_params_t m = {.kp = w->kp, .ki = w->ki, .kd = w->kd};
        ops->pid_params(ops->ctx, &m);
        break;
    }
    case MSG_HEARTBEAT: {
        const heartbeat_wire_t *w = (const heartbeat_wire_t *)(const void *)p;
        heartbeat_t m = {.seq = w->seq, .uptime_ms = w->uptime_ms};
        ops->heartbeat(ops->ctx, &m);
        break;
    }
    case MSG_SENSOR_REPORT: {
        const sensor_report_wire_t *w = (const sensor_report_wire_t *)(const void *)p;
        sensor_report_t m = {.id = w->id, .temp = w->temp, .status = w->status, .flags = w->flags};
        ops->sensor_report(ops->ctx, &m);
        break;
    }
    default:
        return reject(st, MSG_ERR_TYPE);
    }
#endif
    st->accepted++;
    return MSG_OK;
}
