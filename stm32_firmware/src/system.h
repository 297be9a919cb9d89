/* Core and clock bring-up (system.c): clock tree, caches, SysTick, NVIC grouping, MPU stack guard. */
#ifndef DUOHIL_SYSTEM_H
#define DUOHIL_SYSTEM_H

#include <stdint.h>

/* Returns 0, or BOOTF_CLOCK_TIMEOUT if a handshake timed out (the clock then stays on HSI). */
uint32_t clock_init(void);
void icache_enable(void);
void dcache_enable(void);          /* CMSIS way: invalidate by set/way, then CCR.DC */
void systick_init(void);           /* 1 ms, core clock */
void mpu_stack_guard_init(void);   /* FIX_STACK: no-access region over the guard below the stack */

/* linker symbols */
extern uint32_t _sstack_guard[], _estack_guard[], _sstack[], _estack[];
#define STACK_PAINT   0xA5A5A5A5u  /* startup paints the stack with this */
#define STACK_CANARY  0x5CA1AB1Eu  /* lowest stack word (FIX_STACK checks it every tick) */

/* Bytes of the main stack ever used: scan the paint from the bottom. */
uint32_t stack_high_water(void);

#endif
