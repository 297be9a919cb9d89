/* Behaviour layer: planner, message builders, telemetry checks. See behaviour.h. */
#include "behaviour.h"

#include <string.h>
#include "messages.h"
#include "serialize.h"

void beh_init(behaviour_t *b, const peer_config_t *cfg, peer_status_t *st, rt_t *rt)
{
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    b->st = st;
    b->rt = rt;
    planner_params_t pp = {
        .accel = cfg->profile_accel, .vmax = cfg->profile_vmax, .stroke = cfg->profile_stroke,
        .start = cfg->profile_start, .dwell_ms = cfg->profile_dwell_ms, .dt_ms = cfg->setpoint_period_ms,
    };
    planner_init(&b->pl, &pp);
    st->planned_position = b->pl.position;
}

/* Copy the payload out of the (heap) object and let the temporaries go. */
static uint8_t finish(behaviour_t *b, uint8_t *out, const uint8_t *payload, uint8_t len)
{
    memcpy(out, payload, len);
    rt_obj_release(b->rt);
    return len;
}

static uint8_t out_of_memory(behaviour_t *b)
{
    rt_obj_release(b->rt);
    b->st->gc_oom++;
    return 0;
}

uint8_t beh_setpoint(behaviour_t *b, uint8_t *out)
{
    setpoint_t *m = rt_obj_new(b->rt, sizeof *m);
    if (m == NULL) {
        return out_of_memory(b);
    }
    m->seq = (uint16_t)(b->sp_seq + 1u);
    m->velocity = planner_step(&b->pl);
    m->flags = SETPOINT_F_ENABLE;
    uint8_t *payload = rt_obj_new(b->rt, SER_SETPOINT_LEN);
    if (payload == NULL) {
        return out_of_memory(b);      /* the planner step is lost, like a panicking goroutine's */
    }
    uint8_t len = ser_setpoint(payload, m);
    b->sp_seq = m->seq;

    peer_status_t *st = b->st;
    st->setpoints_sent++;
    st->last_setpoint_seq = m->seq;
    st->last_setpoint_velocity = m->velocity;
    st->last_setpoint_flags = m->flags;
    st->planned_position = b->pl.position;
    st->planner_moves = b->pl.moves;
    len = finish(b, out, payload, len);
    rt_setpoint_tick(b->rt);
    return len;
}

uint8_t beh_heartbeat(behaviour_t *b, uint32_t uptime_ms, uint8_t *out)
{
    heartbeat_t *m = rt_obj_new(b->rt, sizeof *m);
    uint8_t *payload = m != NULL ? rt_obj_new(b->rt, MSG_HEARTBEAT_LEN) : NULL;
    if (payload == NULL) {
        return out_of_memory(b);
    }
    m->seq = ++b->hb_seq;
    m->uptime_ms = uptime_ms;
    uint8_t len = msg_encode_heartbeat(payload, m);
    b->st->heartbeats_sent++;
    b->st->last_heartbeat_seq = m->seq;
    return finish(b, out, payload, len);
}

uint8_t beh_sensor(behaviour_t *b, uint8_t *out)
{
    const peer_config_t *c = b->cfg;
    sensor_report_t *m = rt_obj_new(b->rt, sizeof *m);
    uint8_t *payload = m != NULL ? rt_obj_new(b->rt, SER_SENSOR_LEN) : NULL;
    if (payload == NULL) {
        return out_of_memory(b);
    }
    uint32_t n = b->sensor_n++;
    m->id = c->sensor_id;
    m->temp = (int16_t)(c->sensor_temp + (int16_t)(n % 8u));
    m->status = (uint8_t)n;
    m->flags = c->sensor_flags | ((n % 255u + 1u) << 16);   /* sample counter 1..255: never 0 */
    uint8_t len = ser_sensor(payload, m);

    peer_status_t *st = b->st;
    st->sensor_reports_sent++;
    st->last_sensor_id = m->id;
    st->last_sensor_temp = m->temp;
    st->last_sensor_status = m->status;
    st->last_sensor_flags = m->flags;
    return finish(b, out, payload, len);
}

void beh_on_frame(behaviour_t *b, const uint8_t *payload, uint8_t len)
{
    peer_status_t *st = b->st;
    if (len == 0u || payload[0] != MSG_TELEMETRY) {
        st->frames_unexpected++;
        return;
    }
    telemetry_t local;
    telemetry_t *tm = rt_obj_new(b->rt, sizeof *tm);   /* the decoded message escapes, too */
    if (tm == NULL) {
        tm = &local;
    }
    if (msg_decode_telemetry(payload, len, tm) != MSG_OK) {
        st->telemetry_rejected++;
    } else if (b->have_tm && (int16_t)(uint16_t)(tm->seq - st->last_telemetry_seq) <= 0) {
        st->telemetry_stale++;                          /* regression or repeat: old data */
    } else {
        b->have_tm = 1u;
        st->telemetry_received++;
        st->last_telemetry_seq = tm->seq;
        st->tm_position = tm->position;
        st->tm_velocity = tm->velocity;
        st->position_error = b->pl.position - tm->position;
        st->tm_last_setpoint_seq = tm->last_seq;
        if (st->tm_state != tm->state) {
            b->events |= BEH_EV_TM_STATE;
        }
        st->tm_state = tm->state;
        st->tm_fault_flags = tm->fault_flags;
        st->tm_stale = tm->stale;
        st->tm_rejected = tm->rejected;
    }
    rt_obj_release(b->rt);
}
