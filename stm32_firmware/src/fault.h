/*
 * Faults and the crash record (fault.c). CM7 (FIX_FAULT_HANDLER):
 *   0 (field bug): every fault handler spins silently; no watchdog runs; the device is dead.
 *   1 (fix): a naked entry picks the stacked frame (MSP or PSP from EXC_RETURN), moves SP onto a
 *     private fault stack (the main stack may be what overflowed), stores g_crash_record in .noinit,
 *     prints HARDFAULT on the console by polling, and waits for the IWDG to reset the chip.
 *     At boot, fault_report_previous() prints CRASHREC for an unreported record and marks it reported.
 */
#ifndef DUOHIL_FAULT_H
#define DUOHIL_FAULT_H

#include <stdint.h>

/* Boot: report (CRASHREC line) and mark an unreported crash record. Returns 1 if one was found. */
int fault_report_previous(void);
/* The main loop/ISRs found a broken invariant (e.g. the stack canary): treat it as a crash. */
__attribute__((noreturn)) void fault_panic(uint32_t reason);
/* Enable MemManage/BusFault/UsageFault as separate handlers with their priorities. */
void fault_init(void);
/* The IWDG runs: the fault path can wait for it (otherwise it resets by SYSRESETREQ). */
void fault_set_watchdog_running(void);

#endif
