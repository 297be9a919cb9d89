/*
 * Console log lines on UART0 (README.md "Console lines" is the grammar). A line is built in a small
 * buffer and queued whole (non-blocking; dropped and counted when the ring is full) or, at boot and in
 * the trap handler, written by polling.
 */
#ifndef PEER_CONSOLE_H
#define PEER_CONSOLE_H

#include <stdint.h>
#include "uart.h"

#define LINE_MAX 224u   /* the longest line (LINK with 10-digit counters) is about 200 */

typedef struct {
    char     buf[LINE_MAX];
    uint32_t n;
} line_t;

void line_start(line_t *l, const char *word);
void line_str(line_t *l, const char *s);
void line_kv_u32(line_t *l, const char *key, uint32_t v);   /* " key=123" */
void line_kv_i32(line_t *l, const char *key, int32_t v);    /* " key=-12" */
void line_kv_hex(line_t *l, const char *key, uint32_t v);   /* " key=0x0000abcd" */
void line_kv_str(line_t *l, const char *key, const char *v);

void console_init(uart_t *u);
void console_line(line_t *l);          /* queue (non-blocking) */
void console_line_polled(line_t *l);   /* poll: boot and trap only */
uart_t *console_uart(void);

#endif
