/*
 * Console log lines (pure logic): a bounded line builder and the formatters of the lines whose
 * grammar the harness depends on (stm32_firmware/README.md, "Console"). No printf: newlib-nano's
 * would pull in a heap and floats; these are a few hundred bytes.
 */
#ifndef DUOHIL_LOGFMT_H
#define DUOHIL_LOGFMT_H

#include <stdint.h>
#include "blocks.h"

#define LOG_LINE_MAX  192u

typedef struct {
    char    *buf;
    uint16_t cap;   /* including the terminating NUL */
    uint16_t len;
} line_t;

void line_init(line_t *l, char *buf, uint16_t cap);
void line_str(line_t *l, const char *s);
void line_u32(line_t *l, uint32_t v);
void line_i32(line_t *l, int32_t v);
void line_hex(line_t *l, uint32_t v);            /* 0x%08x */
void line_kv_u32(line_t *l, const char *key, uint32_t v);   /* " key=v" */
void line_kv_i32(line_t *l, const char *key, int32_t v);
void line_kv_hex(line_t *l, const char *key, uint32_t v);   /* " key=0x%08x" */
void line_end(line_t *l);                        /* "\r\n" (always fits: space is reserved) */

const char *estop_reason_name(uint8_t reason);   /* soft_limit | following_error | sensor | none */
const char *ctrl_state_name(uint8_t state);      /* boot idle run hold estop fault */

/* The stable lines. Each writes a complete line ending in "\r\n" and returns its length. */
uint16_t logfmt_boot(char *buf, uint16_t cap, const char *variant, uint32_t fix_mask);
uint16_t logfmt_estop(char *buf, uint16_t cap, uint8_t reason, int32_t pos);
uint16_t logfmt_hardfault(char *buf, uint16_t cap, const crash_record_t *r);
uint16_t logfmt_crashrec(char *buf, uint16_t cap, const crash_record_t *r);

#endif
