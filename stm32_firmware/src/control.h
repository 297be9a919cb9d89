/*
 * The axis controller (pure logic, no registers): state machine, velocity-reference ramp, position
 * loop with velocity feed-forward, soft limits and following-error ESTOP. Runs at 1 kHz from the
 * TIM6 ISR (main.c); the main loop hands it setpoints under a critical section.
 *
 * Units: position in encoder counts, velocity in counts/s, output in signed PWM counts
 * (|duty| <= duty_max, sign = direction).
 *
 * States (CTRL_STATE_* of messages.h): IDLE (motor off) -> RUN on a setpoint with ENABLE;
 * RUN/HOLD -> IDLE on a setpoint without ENABLE; any drive state -> ESTOP on a soft limit, a
 * following error or a sensor report; ESTOP (motor off, latched) -> IDLE on a setpoint without
 * ENABLE while the position is inside the soft limits.
 * CM1 (FIX_CMD_TIMEOUT=1): RUN -> HOLD when the setpoint is older than the freshness window (the
 * reference ramps to zero velocity at hold_decel and the position is held); HOLD -> RUN on a fresh
 * setpoint. FIX_CMD_TIMEOUT=0 applies the last setpoint for ever.
 */
#ifndef DUOHIL_CONTROL_H
#define DUOHIL_CONTROL_H

#include <stdint.h>
#include "fixes.h"
#include "setpoint.h"

#define CTRL_RATE_HZ        1000u
#define CTRL_DT_S           (1.0f / (float)CTRL_RATE_HZ)

typedef struct {
    int32_t  soft_limit_min, soft_limit_max;   /* counts */
    int32_t  max_velocity;                     /* counts/s */
    int32_t  max_accel;                        /* counts/s^2 */
    int32_t  hold_decel;                       /* counts/s^2, HOLD ramp (FIX_CMD_TIMEOUT) */
    int32_t  following_error_max;              /* counts */
    uint32_t freshness_ms;
    int32_t  kp, ki, kd, kff;                  /* Q16.16 (see blocks.h) */
    int32_t  duty_max;                         /* PWM counts */
} ctrl_params_t;

/* events for the main loop to log (ctrl_take_events) */
#define CTRL_EV_ESTOP       (1u << 0)
#define CTRL_EV_HOLD        (1u << 1)
#define CTRL_EV_RESUME      (1u << 2)
#define CTRL_EV_RUN         (1u << 3)
#define CTRL_EV_IDLE        (1u << 4)

typedef struct {
    ctrl_params_t p;
    float   kp, ki, kd, kff;                   /* gains as floats */
    setpoint_slot_t sp;
    uint8_t state;                             /* CTRL_STATE_* */
    uint8_t estop_reason;                      /* ESTOP_REASON_* of blocks.h */
    int32_t pos;                               /* last measured position */
    int32_t pos_prev;
    float   vel;                               /* filtered measured velocity */
    float   v_ref;                             /* ramped reference velocity */
    float   ref_pos;                           /* reference position */
    float   integ;                             /* integral of the position error (count*s) */
    int32_t duty;                              /* last output */
    int32_t estop_pos;
    uint32_t events;                           /* CTRL_EV_* not yet taken by the main loop */
    uint32_t stale_count;                      /* RUN -> HOLD transitions */
    uint32_t estop_count;
    uint32_t ticks;
} ctrl_t;

void ctrl_init(ctrl_t *c, const ctrl_params_t *p, int32_t pos);
void ctrl_set_gains(ctrl_t *c, int32_t kp, int32_t ki, int32_t kd);
/* A setpoint accepted from the link at now_ms. */
void ctrl_command(ctrl_t *c, const setpoint_t *sp, uint32_t now_ms);
/* The encoder was zeroed (SETPOINT_F_HOME): move the references with it. */
void ctrl_rehome(ctrl_t *c, int32_t new_pos);
/* Motor off, latched, logged. */
void ctrl_estop(ctrl_t *c, uint8_t reason);
/* One 1 kHz step with the measured position; returns the signed PWM duty to apply. */
int32_t ctrl_step(ctrl_t *c, int32_t pos, uint32_t now_ms);
/* Events since the last call (clears them). */
uint32_t ctrl_take_events(ctrl_t *c);

#endif
