/* The STM32H7 GPIO port (stm32_gpio.py's STM32_GPIOPort; the one copy).
 *
 * Plain C, no Python: one dh_gpio per port, owned by _core.c's Gpio binding. The model is the one
 * stm32_gpio.py documents (RM0433 s.11): the register bank's bus semantics (MODER, OSPEEDR,
 * PUPDR, AFRL, AFRH read/write over 32 bits; OTYPER and ODR over 16 bits, the upper half
 * read-only; IDR read-only, reading the pin levels; BSRR write-only, reading 0, set winning over
 * reset; LCKR's LCK[15:0] and LCKK read/write through the key sequence, bits 31:17 read-only;
 * byte and halfword accesses merge into the word; holes read 0 and ignore writes), the pin levels
 * (analog 0; a push-pull output ODR; an open-drain output 0 while ODR is 0; otherwise the level
 * driven from outside, else the pull-up, else 0), the outside drive (kept across a reset) and
 * the LCKR sequence (LCKK=1, 0, 1 with the same LCK[15:0]; a write out of sequence starts over,
 * at step 1 when it carries LCKK=1), after which the configuration (MODER, OTYPER, OSPEEDR,
 * PUPDR, AFRL/AFRH) of the pins in LCK is frozen and LCKR itself ignores writes until reset.
 *
 * What the model needs from the machine is one callback, made only when a write, a drive or a
 * reset changed the pin levels (the new word is already in `levels` when it is called, as the
 * listeners may write the port again). Functions returning int: 0 = done, -1 = the host's error
 * is set and handed on.
 */
#ifndef DUOHIL_STM32_GPIO_H
#define DUOHIL_STM32_GPIO_H

#include <stdint.h>

#define DH_GPIO_PINS 16
#define DH_GPIO_LCKK (1u << 16)

/* register index = offset / 4 */
enum {
    DH_GPIO_MODER, DH_GPIO_OTYPER, DH_GPIO_OSPEEDR, DH_GPIO_PUPDR, DH_GPIO_IDR, DH_GPIO_ODR,
    DH_GPIO_BSRR, DH_GPIO_LCKR, DH_GPIO_AFRL, DH_GPIO_AFRH, DH_GPIO_NREG
};

enum { DH_GPIO_MODE_INPUT, DH_GPIO_MODE_OUTPUT, DH_GPIO_MODE_AF, DH_GPIO_MODE_ANALOG };

typedef struct {
    /* the levels went from `old` to `levels` (differing in at least one pin) */
    int (*levels_changed)(void *host, uint32_t old, uint32_t levels);
} dh_gpio_host;

typedef struct {
    uint32_t reg[DH_GPIO_NREG];     /* raw words; IDR and BSRR stay 0 (IDR reads `levels`) */
    uint32_t reset[DH_GPIO_NREG];   /* reset values (MODER, OSPEEDR, PUPDR differ per port) */
    uint32_t ext_driven;            /* pins driven from outside (set_input) */
    uint32_t ext_level;             /* their levels */
    int lock_step;                  /* LCKR key sequence: writes accepted so far (0..2) */
    uint32_t lock_value;            /* the LCKR word the sequence started with */
    uint32_t levels;                /* the pin levels now */
    const dh_gpio_host *host;
    void *hctx;
} dh_gpio;

/* A port at reset with these MODER, OSPEEDR, PUPDR reset values, not driven from outside. */
void dh_gpio_init(dh_gpio *g, uint32_t moder, uint32_t ospeedr, uint32_t pupdr,
                  const dh_gpio_host *host, void *hctx);
/* The pin levels of a configuration (a pure function of these six words). */
uint32_t dh_gpio_levels_of(uint32_t moder, uint32_t pupdr, uint32_t odr, uint32_t otyper,
                           uint32_t ext_driven, uint32_t ext_level);
/* The locked pins (LCK[15:0] once LCKK reads 1), 0 before. */
uint32_t dh_gpio_locked(const dh_gpio *g);
/* The register bank: offset relative to the base, size 1, 2, 4 or 8. */
int dh_gpio_read(const dh_gpio *g, uint32_t offset, unsigned size, uint64_t *value);
int dh_gpio_write(dh_gpio *g, uint32_t offset, unsigned size, uint64_t value);
/* Drive pin `pin` (0..15) from outside / stop driving it. */
int dh_gpio_set_input(dh_gpio *g, unsigned pin, int level);
int dh_gpio_release_input(dh_gpio *g, unsigned pin);
/* Registers and the lock to reset; the outside drive stays; changed levels are reported. */
int dh_gpio_reset(dh_gpio *g);

#endif
