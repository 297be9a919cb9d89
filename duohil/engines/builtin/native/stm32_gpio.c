/* The STM32H7 GPIO port: see stm32_gpio.h. */
#include "stm32_gpio.h"

/* The bits a bus write may change, per register (regs.py's RW/WO masks of the Python bank). */
static const uint32_t write_mask[DH_GPIO_NREG] = {
    [DH_GPIO_MODER] = 0xFFFFFFFFu, [DH_GPIO_OTYPER] = 0xFFFFu, [DH_GPIO_OSPEEDR] = 0xFFFFFFFFu,
    [DH_GPIO_PUPDR] = 0xFFFFFFFFu, [DH_GPIO_IDR] = 0, [DH_GPIO_ODR] = 0xFFFFu,
    [DH_GPIO_BSRR] = 0xFFFFFFFFu, [DH_GPIO_LCKR] = DH_GPIO_LCKK | 0xFFFFu,
    [DH_GPIO_AFRL] = 0xFFFFFFFFu, [DH_GPIO_AFRH] = 0xFFFFFFFFu,
};

void dh_gpio_init(dh_gpio *g, uint32_t moder, uint32_t ospeedr, uint32_t pupdr,
                  const dh_gpio_host *host, void *hctx)
{
    for (int r = 0; r < DH_GPIO_NREG; r++)
        g->reset[r] = 0;
    g->reset[DH_GPIO_MODER] = moder;
    g->reset[DH_GPIO_OSPEEDR] = ospeedr;
    g->reset[DH_GPIO_PUPDR] = pupdr;
    for (int r = 0; r < DH_GPIO_NREG; r++)
        g->reg[r] = g->reset[r];
    g->ext_driven = g->ext_level = 0;
    g->lock_step = 0;
    g->lock_value = 0;
    g->host = host;
    g->hctx = hctx;
    g->levels = dh_gpio_levels_of(moder, pupdr, 0, 0, 0, 0);
}

uint32_t dh_gpio_levels_of(uint32_t moder, uint32_t pupdr, uint32_t odr, uint32_t otyper,
                           uint32_t ext_driven, uint32_t ext_level)
{
    uint32_t levels = 0;
    for (unsigned pin = 0; pin < DH_GPIO_PINS; pin++) {
        uint32_t bit = 1u << pin;
        unsigned mode = (moder >> (2 * pin)) & 3u;
        unsigned pull = (pupdr >> (2 * pin)) & 3u;
        uint32_t level;
        if (mode == DH_GPIO_MODE_ANALOG)
            level = 0;
        else if (mode == DH_GPIO_MODE_OUTPUT && (!(otyper & bit) || !(odr & bit)))
            level = odr & bit;                          /* push-pull, or open drain pulling low */
        else if (ext_driven & bit)
            level = ext_level & bit;
        else
            level = pull == 1 ? bit : 0;
        levels |= level;
    }
    return levels;
}

uint32_t dh_gpio_locked(const dh_gpio *g)
{
    uint32_t lckr = g->reg[DH_GPIO_LCKR];
    return lckr & DH_GPIO_LCKK ? lckr & 0xFFFFu : 0;
}

/* Recompute the levels; tell the host when they changed. */
static int update(dh_gpio *g)
{
    const uint32_t *r = g->reg;
    uint32_t levels = dh_gpio_levels_of(r[DH_GPIO_MODER], r[DH_GPIO_PUPDR], r[DH_GPIO_ODR],
                                        r[DH_GPIO_OTYPER], g->ext_driven, g->ext_level);
    uint32_t old = g->levels;
    if (levels == old)
        return 0;
    g->levels = levels;
    return g->host->levels_changed(g->hctx, old, levels);
}

/* regs.py's _find for this map: one register per word at 0x00..0x24; -1 for a hole */
static int find_reg(uint32_t offset)
{
    uint32_t base = offset & ~3u;
    return base < 4u * DH_GPIO_NREG ? (int)(base >> 2) : -1;
}

int dh_gpio_read(const dh_gpio *g, uint32_t offset, unsigned size, uint64_t *value)
{
    int r = find_reg(offset);
    uint64_t v;
    if (r < 0 || r == DH_GPIO_BSRR)                     /* a hole; BSRR is write-only */
        v = 0;
    else if (r == DH_GPIO_IDR)
        v = g->levels;
    else
        v = g->reg[r];
    v >>= 8 * (offset & 3u);
    if (size < 8)
        v &= (1ull << (8 * size)) - 1;
    *value = v;
    return 0;
}

/* The frozen bits of a configuration register: the fields of the locked pins. */
static uint32_t frozen_bits(int r, uint32_t locked)
{
    unsigned width = r == DH_GPIO_OTYPER ? 1 : (r == DH_GPIO_AFRL || r == DH_GPIO_AFRH) ? 4 : 2;
    unsigned first = r == DH_GPIO_AFRH ? 8 : 0;
    unsigned pins = width == 4 ? 8 : DH_GPIO_PINS;
    uint32_t field = (1u << width) - 1, frozen = 0;
    for (unsigned k = 0; k < pins; k++)
        if (locked >> (first + k) & 1u)
            frozen |= field << (width * k);
    return frozen;
}

/* LCKR: `old` the word before the write, `data` the word as written (bytes merged). */
static void lckr_written(dh_gpio *g, uint32_t old, uint32_t data)
{
    if (old & DH_GPIO_LCKK) {                           /* locked until reset: writes ignored */
        g->reg[DH_GPIO_LCKR] = old;
        return;
    }
    uint32_t value = data & (DH_GPIO_LCKK | 0xFFFFu);
    uint32_t key = value & DH_GPIO_LCKK;
    if (g->lock_step == 0 && key) {
        g->lock_step = 1;
        g->lock_value = value;
    } else if (g->lock_step == 1 && !key && (value | DH_GPIO_LCKK) == g->lock_value) {
        g->lock_step = 2;
    } else if (g->lock_step == 2 && key && value == g->lock_value) {
        g->lock_step = 0;
        g->reg[DH_GPIO_LCKR] = value;                   /* LCKK reads 1 from now on */
        return;
    } else {
        g->lock_step = key ? 1 : 0;
        g->lock_value = value;
    }
    g->reg[DH_GPIO_LCKR] = value & 0xFFFFu;             /* LCKK reads 1 only once locked */
}

int dh_gpio_write(dh_gpio *g, uint32_t offset, unsigned size, uint64_t value)
{
    int r = find_reg(offset);
    if (r < 0)
        return 0;
    unsigned bits = 8 * (offset & 3u);
    uint64_t full = size < 8 ? (1ull << (8 * size)) - 1 : ~0ull;
    uint32_t mask = (uint32_t)((full << bits) & 0xFFFFFFFFu);
    uint32_t data = (uint32_t)((value << bits) & mask);
    uint32_t wr = write_mask[r] & mask;
    uint32_t old = g->reg[r];
    uint32_t new = (old & ~wr) | (data & wr);
    uint32_t written = data | (new & ~mask);            /* what the handler sees (regs.py) */
    g->reg[r] = new;
    switch (r) {
    case DH_GPIO_IDR:                                   /* read-only */
        return 0;
    case DH_GPIO_ODR:
        return update(g);
    case DH_GPIO_BSRR: {
        uint32_t odr = g->reg[DH_GPIO_ODR];
        g->reg[DH_GPIO_ODR] = ((odr & ~(written >> 16)) | written) & 0xFFFFu;   /* set wins */
        g->reg[DH_GPIO_BSRR] = 0;
        return update(g);
    }
    case DH_GPIO_LCKR:
        lckr_written(g, old, written);
        return 0;
    default: {                                          /* the configuration registers */
        uint32_t locked = dh_gpio_locked(g);
        if (locked) {
            uint32_t frozen = frozen_bits(r, locked);
            g->reg[r] = (g->reg[r] & ~frozen) | (old & frozen);
        }
        return update(g);
    }
    }
}

int dh_gpio_set_input(dh_gpio *g, unsigned pin, int level)
{
    uint32_t bit = 1u << pin;
    g->ext_driven |= bit;
    g->ext_level = level ? g->ext_level | bit : g->ext_level & ~bit;
    return update(g);
}

int dh_gpio_release_input(dh_gpio *g, unsigned pin)
{
    g->ext_driven &= ~(1u << pin);
    return update(g);
}

int dh_gpio_reset(dh_gpio *g)
{
    for (int r = 0; r < DH_GPIO_NREG; r++)
        g->reg[r] = g->reset[r];
    g->lock_step = 0;
    g->lock_value = 0;
    return update(g);
}
