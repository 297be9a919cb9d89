/* GPIO pin set-up shared by the drivers (one place for the MODER/OSPEEDR/AFR arithmetic). */
#ifndef DUOHIL_GPIO_H
#define DUOHIL_GPIO_H

#include <stdint.h>
#include "../regs/stm32h743.h"

/* mode: GPIO_MODE_*; af: alternate function number (used when mode is GPIO_MODE_AF). */
static inline void gpio_config(gpio_t *port, uint32_t pin, uint32_t mode, uint32_t af)
{
    port->MODER = (port->MODER & ~(3u << (2u * pin))) | (mode << (2u * pin));
    port->OSPEEDR = (port->OSPEEDR & ~(3u << (2u * pin))) | (2u << (2u * pin));   /* high speed */
    port->AFR[pin >> 3] = (port->AFR[pin >> 3] & ~(0xFu << (4u * (pin & 7u)))) | (af << (4u * (pin & 7u)));
}

#endif
