/* Console line formatting (console.h): no printf, no libc. */
#include "console.h"

#include <stddef.h>

static uart_t *s_uart;

void console_init(uart_t *u) { s_uart = u; }
uart_t *console_uart(void) { return s_uart; }

static void put(line_t *l, char c)
{
    if (l->n < LINE_MAX - 2u) {           /* keep room for "\r\n" */
        l->buf[l->n++] = c;
    }
}

void line_str(line_t *l, const char *s)
{
    while (*s != '\0') {
        put(l, *s++);
    }
}

void line_start(line_t *l, const char *word)
{
    l->n = 0;
    line_str(l, word);
}

static void put_u32(line_t *l, uint32_t v)
{
    char tmp[10];
    uint32_t i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (i != 0u) {
        put(l, tmp[--i]);
    }
}

static void key(line_t *l, const char *k)
{
    put(l, ' ');
    line_str(l, k);
    put(l, '=');
}

void line_kv_u32(line_t *l, const char *k, uint32_t v)
{
    key(l, k);
    put_u32(l, v);
}

void line_kv_i32(line_t *l, const char *k, int32_t v)
{
    key(l, k);
    if (v < 0) {
        put(l, '-');
        put_u32(l, 0u - (uint32_t)v);
    } else {
        put_u32(l, (uint32_t)v);
    }
}

void line_kv_hex(line_t *l, const char *k, uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    key(l, k);
    put(l, '0');
    put(l, 'x');
    for (int s = 28; s >= 0; s -= 4) {
        put(l, hex[(v >> (uint32_t)s) & 0xFu]);
    }
}

void line_kv_str(line_t *l, const char *k, const char *v)
{
    key(l, k);
    line_str(l, v);
}

static void terminate(line_t *l)
{
    l->buf[l->n++] = '\r';
    l->buf[l->n++] = '\n';
}

void console_line(line_t *l)
{
    terminate(l);
    (void)uart_write(s_uart, (const uint8_t *)l->buf, l->n);
}

void console_line_polled(line_t *l)
{
    terminate(l);
    uart_flush_polled(s_uart);
    uart_write_polled(s_uart, (const uint8_t *)l->buf, l->n);
}
