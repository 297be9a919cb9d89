"""The Cortex-M7: the core (exceptions, faults, hang detection), the NVIC with the SCS (SysTick,
MPU, fault status) and the L1 D-cache's DMA coherency."""
