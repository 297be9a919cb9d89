/* USART1 console: human-readable log lines, interrupt-driven TX ring (console.c). */
#ifndef DUOHIL_CONSOLE_H
#define DUOHIL_CONSOLE_H

#include <stdint.h>

/* Returns 0 or BOOTF_USART_TIMEOUT. */
uint32_t console_init(uint32_t baud);
/* Queue bytes (any context; drops and counts what does not fit). */
void console_write(const char *s, uint32_t n);
void console_puts(const char *s);
/* Fault path: interrupts are unusable; CR LF + the line by polling TXE (bounded). Drops the ring. */
void console_panic_write(const char *s, uint32_t n);
uint32_t console_dropped(void);

#endif
