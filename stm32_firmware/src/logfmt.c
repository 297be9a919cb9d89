/* Console log lines: see logfmt.h. */
#include "logfmt.h"
#include "../../protocol/messages.h"

void line_init(line_t *l, char *buf, uint16_t cap)
{
    l->buf = buf;
    l->cap = cap;
    l->len = 0u;
    if (cap) {
        buf[0] = '\0';
    }
}

static void put(line_t *l, char c)
{
    /* keep 3 bytes for "\r\n\0" so line_end always fits */
    if ((uint32_t)l->len + 3u < l->cap) {
        l->buf[l->len++] = c;
        l->buf[l->len] = '\0';
    }
}

void line_str(line_t *l, const char *s)
{
    while (*s) {
        put(l, *s++);
    }
}

void line_u32(line_t *l, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) {
        put(l, tmp[--n]);
    }
}

void line_i32(line_t *l, int32_t v)
{
    if (v < 0) {
        put(l, '-');
        line_u32(l, (uint32_t)0 - (uint32_t)v);
    } else {
        line_u32(l, (uint32_t)v);
    }
}

void line_hex(line_t *l, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    put(l, '0');
    put(l, 'x');
    for (int shift = 28; shift >= 0; shift -= 4) {
        put(l, digits[(v >> shift) & 0xFu]);
    }
}

void line_kv_u32(line_t *l, const char *key, uint32_t v)
{
    put(l, ' ');
    line_str(l, key);
    put(l, '=');
    line_u32(l, v);
}

void line_kv_i32(line_t *l, const char *key, int32_t v)
{
    put(l, ' ');
    line_str(l, key);
    put(l, '=');
    line_i32(l, v);
}

void line_kv_hex(line_t *l, const char *key, uint32_t v)
{
    put(l, ' ');
    line_str(l, key);
    put(l, '=');
    line_hex(l, v);
}

void line_end(line_t *l)
{
    if ((uint32_t)l->len + 2u < l->cap) {
        l->buf[l->len++] = '\r';
        l->buf[l->len++] = '\n';
        l->buf[l->len] = '\0';
    }
}

const char *estop_reason_name(uint8_t reason)
{
    switch (reason) {
    case ESTOP_REASON_SOFT_LIMIT:
        return "soft_limit";
    case ESTOP_REASON_FOLLOWING_ERROR:
        return "following_error";
    case ESTOP_REASON_SENSOR:
        return "sensor";
    default:
        return "none";
    }
}

const char *ctrl_state_name(uint8_t state)
{
    static const char *const names[] = {"boot", "idle", "run", "hold", "estop", "fault"};
    return state < sizeof names / sizeof names[0] ? names[state] : "?";
}

uint16_t logfmt_boot(char *buf, uint16_t cap, const char *variant, uint32_t fix_mask)
{
    line_t l;
    line_init(&l, buf, cap);
    line_str(&l, "BOOT fw=stm32 build=");
    line_str(&l, variant);
    line_str(&l, " fixes=0x");
    static const char digits[] = "0123456789abcdef";
    put(&l, digits[(fix_mask >> 4) & 0xFu]);
    put(&l, digits[fix_mask & 0xFu]);
    line_end(&l);
    return l.len;
}

uint16_t logfmt_estop(char *buf, uint16_t cap, uint8_t reason, int32_t pos)
{
    line_t l;
    line_init(&l, buf, cap);
    line_str(&l, "ESTOP reason=");
    line_str(&l, estop_reason_name(reason));
    line_kv_i32(&l, "pos", pos);
    line_end(&l);
    return l.len;
}

static void fault_fields(line_t *l, const crash_record_t *r)
{
    line_kv_hex(l, "pc", r->pc);
    line_kv_hex(l, "lr", r->lr);
    line_kv_hex(l, "cfsr", r->cfsr);
    line_kv_hex(l, "hfsr", r->hfsr);
    line_kv_hex(l, "bfar", r->bfar);
    line_kv_hex(l, "mmfar", r->mmfar);
}

uint16_t logfmt_hardfault(char *buf, uint16_t cap, const crash_record_t *r)
{
    line_t l;
    line_init(&l, buf, cap);
    line_str(&l, "HARDFAULT");
    fault_fields(&l, r);
    line_kv_u32(&l, "exc", r->exception);
    line_end(&l);
    return l.len;
}

uint16_t logfmt_crashrec(char *buf, uint16_t cap, const crash_record_t *r)
{
    line_t l;
    line_init(&l, buf, cap);
    line_str(&l, "CRASHREC");
    line_kv_u32(&l, "n", r->count);
    line_kv_u32(&l, "exc", r->exception);
    fault_fields(&l, r);
    line_kv_hex(&l, "xpsr", r->xpsr);
    line_kv_hex(&l, "sp", r->sp);
    line_kv_u32(&l, "t", r->uptime_ms);
    line_end(&l);
    return l.len;
}
