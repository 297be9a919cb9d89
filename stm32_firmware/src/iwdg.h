/* IWDG1 (iwdg.c): started at boot in FIX_FAULT_HANDLER builds, kicked by the main loop. */
#ifndef DUOHIL_IWDG_H
#define DUOHIL_IWDG_H
#include <stdint.h>
/* Returns 0 or BOOTF_IWDG_TIMEOUT. */
uint32_t iwdg_start(void);
void iwdg_kick(void);
#endif
