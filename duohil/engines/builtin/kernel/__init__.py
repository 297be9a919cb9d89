"""Time and dispatch: the scheduler (virtual time, events, the event log), the machine (one MCU's
bus: memories, MMIO dispatch, unmapped accesses, reset), the model base classes (Peripheral,
Signal, register banks), the chips' memory maps and the engine's limits."""
