/* Natural (struct image) and packed (field by field) serializers: see serialize.h. */
#include "serialize.h"

#include <stddef.h>
#include <string.h>

/* The natural layout is the compiler's: pin it so a toolchain change cannot move it silently. */
_Static_assert(sizeof(sensor_report_t) == SENSOR_BODY_NATURAL, "sensor_report_t is 12 bytes");
_Static_assert(offsetof(sensor_report_t, id) == 0, "id@0");
_Static_assert(offsetof(sensor_report_t, temp) == 2, "temp@2");
_Static_assert(offsetof(sensor_report_t, status) == 4, "status@4");
_Static_assert(offsetof(sensor_report_t, flags) == 8, "flags@8 after 3 bytes of padding");
_Static_assert(sizeof(setpoint_t) == SETPOINT_BODY_NATURAL, "setpoint_t is 12 bytes");
_Static_assert(offsetof(setpoint_t, seq) == 0, "seq@0");
_Static_assert(offsetof(setpoint_t, velocity) == 4, "velocity@4 after 2 bytes of padding");
_Static_assert(offsetof(setpoint_t, flags) == 8, "flags@8, 2 bytes of tail padding");

static uint8_t natural(uint8_t *out, uint8_t type, const void *obj, size_t size)
{
    out[0] = type;
    out[1] = (uint8_t)PROTO_VERSION;
    memcpy(out + SER_HDR_LEN, obj, size);     /* the struct's bytes, padding included */
    return (uint8_t)(SER_HDR_LEN + size);
}

uint8_t ser_sensor_natural(uint8_t *out, const sensor_report_t *m)
{
    return natural(out, (uint8_t)MSG_SENSOR_REPORT, m, sizeof *m);
}

uint8_t ser_setpoint_natural(uint8_t *out, const setpoint_t *m)
{
    return natural(out, (uint8_t)MSG_SETPOINT, m, sizeof *m);
}

uint8_t ser_sensor_packed(uint8_t *out, const sensor_report_t *m)
{
    return msg_encode_sensor_report(out, m);
}

uint8_t ser_setpoint_packed(uint8_t *out, const setpoint_t *m)
{
    return msg_encode_setpoint(out, m);
}
