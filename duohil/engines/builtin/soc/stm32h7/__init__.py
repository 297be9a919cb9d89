"""STM32H743 peripherals (RM0433): USART, DMA, DMAMUX, RCC, PWR, flash, FMC, GPIO, IWDG, SYSCFG, timers."""
