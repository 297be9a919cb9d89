/* The axis controller: see control.h. CM1 (FIX_CMD_TIMEOUT) lives in ctrl_step(). */
#include "control.h"
#include "blocks.h"

#define Q16_TO_F(q)          ((float)(q) * (1.0f / 65536.0f))
#define VEL_FILTER_ALPHA     0.125f          /* IIR on the 1 ms position difference */
#define ITERM_SHARE          8.0f            /* anti-windup: |ki * integral| <= duty_max / 8 */

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void ctrl_set_gains(ctrl_t *c, int32_t kp, int32_t ki, int32_t kd)
{
    c->p.kp = kp;
    c->p.ki = ki;
    c->p.kd = kd;
    c->kp = Q16_TO_F(kp);
    c->ki = Q16_TO_F(ki);
    c->kd = Q16_TO_F(kd);
}

void ctrl_init(ctrl_t *c, const ctrl_params_t *p, int32_t pos)
{
    *c = (ctrl_t){0};
    c->p = *p;
    ctrl_set_gains(c, p->kp, p->ki, p->kd);
    c->kff = Q16_TO_F(p->kff);
    c->state = CTRL_STATE_IDLE;
    c->pos = pos;
    c->pos_prev = pos;
    c->ref_pos = (float)pos;
}

static void enter_run(ctrl_t *c)
{
    if (c->state == CTRL_STATE_IDLE) {
        /* start from where the axis is: no jump in the reference */
        c->ref_pos = (float)c->pos;
        c->v_ref = 0.0f;
        c->integ = 0.0f;
        c->events |= CTRL_EV_RUN;
    } else if (c->state == CTRL_STATE_HOLD) {
        c->events |= CTRL_EV_RESUME;
    }
    c->state = CTRL_STATE_RUN;
}

static int inside_limits(const ctrl_t *c)
{
    return c->pos >= c->p.soft_limit_min && c->pos <= c->p.soft_limit_max;
}

void ctrl_command(ctrl_t *c, const setpoint_t *sp, uint32_t now_ms)
{
    setpoint_store(&c->sp, sp, now_ms);
    int enable = (sp->flags & SETPOINT_F_ENABLE) != 0u;
    switch (c->state) {
    case CTRL_STATE_IDLE:
        if (enable) {
            enter_run(c);
        }
        break;
    case CTRL_STATE_RUN:
    case CTRL_STATE_HOLD:
        if (enable) {
            enter_run(c);          /* HOLD -> RUN: a fresh command resumes (CM1 fix path) */
        } else {
            c->state = CTRL_STATE_IDLE;
            c->events |= CTRL_EV_IDLE;
        }
        break;
    case CTRL_STATE_ESTOP:
        if (!enable && inside_limits(c)) {   /* acknowledge: drive disabled, axis back in range */
            c->state = CTRL_STATE_IDLE;
            c->estop_reason = ESTOP_REASON_NONE;
            c->events |= CTRL_EV_IDLE;
        }
        break;
    default:
        break;
    }
}

void ctrl_rehome(ctrl_t *c, int32_t new_pos)
{
    float shift = (float)new_pos - (float)c->pos;
    c->ref_pos += shift;
    c->pos = new_pos;
    c->pos_prev = new_pos;
}

void ctrl_estop(ctrl_t *c, uint8_t reason)
{
    if (c->state == CTRL_STATE_ESTOP) {
        return;
    }
    c->state = CTRL_STATE_ESTOP;
    c->estop_reason = reason;
    c->estop_pos = c->pos;
    c->estop_count++;
    c->events |= CTRL_EV_ESTOP;
    c->duty = 0;
    c->v_ref = 0.0f;
    c->integ = 0.0f;
}

uint32_t ctrl_take_events(ctrl_t *c)
{
    uint32_t ev = c->events;
    c->events = 0u;
    return ev;
}

int32_t ctrl_step(ctrl_t *c, int32_t pos, uint32_t now_ms)
{
    c->ticks++;
    c->pos = pos;
    float raw_vel = (float)(int32_t)(pos - c->pos_prev) * (float)CTRL_RATE_HZ;
    c->pos_prev = pos;
    c->vel += (raw_vel - c->vel) * VEL_FILTER_ALPHA;

    if (c->state != CTRL_STATE_RUN && c->state != CTRL_STATE_HOLD) {
        c->ref_pos = (float)pos;
        c->v_ref = 0.0f;
        c->integ = 0.0f;
        c->duty = 0;
        return 0;
    }

#if FIX_CMD_TIMEOUT
    /* CM1 fix: a setpoint older than the freshness window is not a command any more. Ramp to
     * zero velocity and hold position until a fresh setpoint arrives (ctrl_command resumes). */
    if (c->state == CTRL_STATE_RUN && !setpoint_is_fresh(&c->sp, now_ms, c->p.freshness_ms)) {
        c->state = CTRL_STATE_HOLD;
        c->stale_count++;
        c->events |= CTRL_EV_HOLD;
    }
#else
    /* CM1 field bug: the last setpoint is applied however old it is. */
    (void)now_ms;
#endif

    float vmax = (float)c->p.max_velocity;
    float v_target = c->state == CTRL_STATE_HOLD ? 0.0f : clampf((float)c->sp.sp.velocity, -vmax, vmax);
    float dv = (float)(c->state == CTRL_STATE_HOLD ? c->p.hold_decel : c->p.max_accel) * CTRL_DT_S;
    c->v_ref += clampf(v_target - c->v_ref, -dv, dv);
    c->ref_pos += c->v_ref * CTRL_DT_S;

    if (pos > c->p.soft_limit_max || pos < c->p.soft_limit_min) {
        ctrl_estop(c, ESTOP_REASON_SOFT_LIMIT);
        return 0;
    }
    float err = c->ref_pos - (float)pos;
    if (err > (float)c->p.following_error_max || err < -(float)c->p.following_error_max) {
        ctrl_estop(c, ESTOP_REASON_FOLLOWING_ERROR);
        return 0;
    }

    c->integ += err * CTRL_DT_S;
    if (c->ki > 0.0f) {
        float ilim = (float)c->p.duty_max / ITERM_SHARE / c->ki;
        c->integ = clampf(c->integ, -ilim, ilim);
    }
    float u = c->kff * c->v_ref + c->kp * err + c->ki * c->integ + c->kd * (c->v_ref - c->vel);
    float dmax = (float)c->p.duty_max;
    c->duty = (int32_t)clampf(u, -dmax, dmax);
    return c->duty;
}
