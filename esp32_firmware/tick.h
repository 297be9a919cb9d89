/* 1 ms tick from the CLINT machine timer (mtime 16 MHz), the stand-in for the C3's SYSTIMER. */
#ifndef PEER_TICK_H
#define PEER_TICK_H

#include <stdint.h>

void     tick_init(void);
uint64_t tick_mtime(void);        /* the 64-bit mtime, read consistently on RV32 */
uint32_t tick_ms(void);           /* milliseconds since tick_init */
void     tick_isr(void);          /* MTI handler */

#endif
