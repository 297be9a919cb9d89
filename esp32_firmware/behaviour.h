/*
 * The behaviour layer: what the Go code of the field systems does, minus the Go. It plans motion,
 * builds the outgoing messages (through the runtime model, rt.h) and checks incoming telemetry.
 * It fills the status block but touches no hardware, so the host unit tests drive it directly.
 */
#ifndef PEER_BEHAVIOUR_H
#define PEER_BEHAVIOUR_H

#include <stdint.h>
#include "config.h"
#include "planner.h"
#include "rt.h"
#include "status.h"

#define BEH_EV_TM_STATE   0x1u   /* the STM32's reported state changed */

typedef struct {
    const peer_config_t *cfg;
    peer_status_t       *st;
    rt_t                *rt;
    planner_t            pl;
    uint16_t             sp_seq;      /* sequence of the last setpoint built (first = 1) */
    uint16_t             hb_seq;
    uint32_t             sensor_n;    /* reports built so far */
    uint32_t             have_tm;     /* a telemetry frame has been accepted */
    uint32_t             events;      /* BEH_EV_*, cleared by the caller */
} behaviour_t;

void    beh_init(behaviour_t *b, const peer_config_t *cfg, peer_status_t *st, rt_t *rt);
/* Each builder writes one message payload into out (SER_MAX_LEN bytes) and returns its length, or 0
 * when the runtime is out of memory (nothing to send; counted in status gc_oom). */
uint8_t beh_setpoint(behaviour_t *b, uint8_t *out);
uint8_t beh_heartbeat(behaviour_t *b, uint32_t uptime_ms, uint8_t *out);
uint8_t beh_sensor(behaviour_t *b, uint8_t *out);
/* One valid frame from the link (the frame decoder's callback). */
void    beh_on_frame(behaviour_t *b, const uint8_t *payload, uint8_t len);

#endif
