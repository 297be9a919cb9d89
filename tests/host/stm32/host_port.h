/*
 * Forced-included (-include) when tests/test_stm32_host.py compiles the STM32 firmware's pure units
 * with the host gcc: no registers (port.h takes its DUOHIL_HOST branch), and the CM4 snapshot hook
 * becomes a call the test can use to play an interrupt between the two reads.
 */
#ifndef DUOHIL_HOST_PORT_H
#define DUOHIL_HOST_PORT_H

#define DUOHIL_HOST 1

void host_snapshot_hook(void);
#define LINK_RX_SNAPSHOT_HOOK() host_snapshot_hook()

#endif
