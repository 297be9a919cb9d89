/*
 * Message dispatch (pure logic): one CRC-valid frame payload -> the typed handler. CM6 lives here.
 *   FIX_LAYOUT=0 (field bug): overlays the packed wire struct on the payload, looks at the type byte
 *                only: no length or version check, so a 12-byte natural-layout body from the peer is
 *                misparsed (velocity and flags read from padding).
 *   FIX_LAYOUT=1 (fix): msg_decode_* (type, version, exact length); anything else is rejected and
 *                counted, never misparsed.
 */
#ifndef DUOHIL_DISPATCH_H
#define DUOHIL_DISPATCH_H

#include <stdint.h>
#include "fixes.h"
#include "../../protocol/messages.h"

typedef struct {
    void (*setpoint)(void *ctx, const setpoint_t *m);
    void (*pid_params)(void *ctx, const pid_params_t *m);
    void (*heartbeat)(void *ctx, const heartbeat_t *m);
    void (*sensor_report)(void *ctx, const sensor_report_t *m);
    void *ctx;
} dispatch_ops_t;

typedef struct {
    uint32_t accepted;
    uint32_t rejected;            /* sum of the three below */
    uint32_t rejected_type;       /* unknown or STM32->peer type */
    uint32_t rejected_length;
    uint32_t rejected_version;
} dispatch_stats_t;

/* Returns MSG_OK, or the MSG_ERR_* it rejected the payload for. */
int dispatch_payload(const uint8_t *payload, uint8_t len, const dispatch_ops_t *ops, dispatch_stats_t *st);

#endif
