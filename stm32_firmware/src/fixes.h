/*
 * Build-variant switches, one per crash mode of /work/shared/design/CRASH_MODES.md. FIX_x = 0 is the
 * field bug, FIX_x = 1 the shipped patch. The Makefile passes every switch explicitly for each image
 * (buggy, fixed, fixed-no-<name>); the defaults below (all fixes on) only serve ad-hoc compiles.
 * `grep -n FIX_ src/` lists every patch and both sides of it.
 */
#ifndef DUOHIL_FIXES_H
#define DUOHIL_FIXES_H

#ifndef FIX_CMD_TIMEOUT
#define FIX_CMD_TIMEOUT     1   /* CM1: setpoints expire after the freshness window -> ramp to HOLD */
#endif
#ifndef FIX_RESYNC
#define FIX_RESYNC          1   /* CM2: protocol/frame.c bounded LEN, idle reset, rescan from SOF+1 */
#endif
#ifndef FIX_DCACHE
#define FIX_DCACHE          1   /* CM3: 32-byte aligned DMA buffers, invalidate after RX, clean before TX */
#endif
#ifndef FIX_ATOMIC
#define FIX_ATOMIC          1   /* CM4: single-word RX write index published by the ISRs */
#endif
#ifndef FIX_STACK
#define FIX_STACK           1   /* CM5: priority grouping, ISR locals off the stack, stack guard */
#endif
#ifndef FIX_LAYOUT
#define FIX_LAYOUT          1   /* CM6: msg_decode_* (exact length + version), reject and count */
#endif
#ifndef FIX_FAULT_HANDLER
#define FIX_FAULT_HANDLER   1   /* CM7: crash record + console + IWDG reset */
#endif

/* Bit positions of the fix mask (status block `fix_mask`, BOOT line `fixes=0x..`). */
#define FIXBIT_CMD_TIMEOUT    0u
#define FIXBIT_RESYNC         1u
#define FIXBIT_DCACHE         2u
#define FIXBIT_ATOMIC         3u
#define FIXBIT_STACK          4u
#define FIXBIT_LAYOUT         5u
#define FIXBIT_FAULT_HANDLER  6u

#define FIX_MASK                                                                                 \
    ((uint32_t)(FIX_CMD_TIMEOUT != 0) << FIXBIT_CMD_TIMEOUT | (uint32_t)(FIX_RESYNC != 0) << FIXBIT_RESYNC | \
     (uint32_t)(FIX_DCACHE != 0) << FIXBIT_DCACHE | (uint32_t)(FIX_ATOMIC != 0) << FIXBIT_ATOMIC |          \
     (uint32_t)(FIX_STACK != 0) << FIXBIT_STACK | (uint32_t)(FIX_LAYOUT != 0) << FIXBIT_LAYOUT |            \
     (uint32_t)(FIX_FAULT_HANDLER != 0) << FIXBIT_FAULT_HANDLER)

#ifndef BUILD_VARIANT
#define BUILD_VARIANT "dev"
#endif

#endif
