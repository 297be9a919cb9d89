/* esp32c3_uart.py in C (see esp32c3_uart.h): the same register semantics as regs.py's
 * RegisterBank for this block (RW words with RO and write-trigger registers), the same order of
 * FIFO, interrupt and event operations, so the scheduler sees the same events in the same order. */
#include "esp32c3_uart.h"

#include <string.h>

enum { R_FIFO = 0x00, R_INT_RAW = 0x04, R_INT_ST = 0x08, R_INT_ENA = 0x0C, R_INT_CLR = 0x10,
       R_CLKDIV = 0x14, R_STATUS = 0x1C, R_CONF0 = 0x20, R_CONF1 = 0x24, R_MEM_CONF = 0x60,
       R_FSM_STATUS = 0x6C, R_CLK_CONF = 0x78 };

#define RXFIFO_FULL (1u << 0)
#define TXFIFO_EMPTY (1u << 1)
#define FRM_ERR (1u << 3)
#define RXFIFO_OVF (1u << 4)
#define RXFIFO_TOUT (1u << 8)
#define TX_DONE (1u << 14)
#define INT_ALL 0x7FFFFu
#define STATUS_IDLE_BITS 0xE000C000u
#define PS_PER_S_ 1000000000000LL

#define REG(u, off) ((u)->reg[(off) >> 2])

/* offset, reset value, write mask (RW and trigger bits), bits that read 0 (W1T) */
typedef struct { uint8_t defined; uint32_t reset, wr, read_zero; } regdef;

static const regdef regs[ESPU_NREGS] = {
    [R_FIFO >> 2] = {1, 0, 0xFFFFFFFFu, 0},
    [R_INT_RAW >> 2] = {1, TXFIFO_EMPTY, 0, 0},
    [R_INT_ST >> 2] = {1, 0, 0, 0},
    [R_INT_ENA >> 2] = {1, 0, 0xFFFFFFFFu, 0},
    [R_INT_CLR >> 2] = {1, 0, 0xFFFFFFFFu, 0xFFFFFFFFu},
    [R_CLKDIV >> 2] = {1, 694, 0xFFFFFFFFu, 0},
    [0x18 >> 2] = {1, 8, 0xFFFFFFFFu, 0},                        /* RX_FILT */
    [R_STATUS >> 2] = {1, 0, 0, 0},
    [R_CONF0 >> 2] = {1, 0x1000001Cu, 0xFFFFFFFFu, 0},
    [R_CONF1 >> 2] = {1, 0xC060u, 0xFFFFFFFFu, 0},
    [0x34 >> 2] = {1, 0, 0xFFFFFFFFu, 0},                        /* FLOW_CONF */
    [0x38 >> 2] = {1, 0xF0, 0xFFFFFFFFu, 0},                     /* SLEEP_CONF */
    [0x3C >> 2] = {1, 0x13E0, 0xFFFFFFFFu, 0},                   /* SWFC_CONF0 */
    [0x40 >> 2] = {1, 0x1100, 0xFFFFFFFFu, 0},                   /* SWFC_CONF1 */
    [0x44 >> 2] = {1, 0xA, 0xFFFFFFFFu, 0},                      /* TXBRK_CONF */
    [0x48 >> 2] = {1, 0x40100, 0xFFFFFFFFu, 0},                  /* IDLE_CONF */
    [0x4C >> 2] = {1, 0, 0xFFFFFFFFu, 0},                        /* RS485_CONF */
    [R_MEM_CONF >> 2] = {1, 0x000A0012u, 0xFFFFFFFFu, 0},
    [R_FSM_STATUS >> 2] = {1, 0, 0, 0},
    [R_CLK_CONF >> 2] = {1, 0x03701000u, 0xFFFFFFFFu, 0},
    [0x7C >> 2] = {1, 0x02008270u, 0xFFFFFFFFu, 0},              /* DATE */
    [0x80 >> 2] = {1, 0x40000500u, 0xFFFFFFFFu, 0},              /* ID */
};

void dh_espu_init(dh_espu *u)
{
    dh_espu_env env = u->env;
    memset(u, 0, sizeof *u);
    u->env = env;
    for (int i = 0; i < ESPU_NREGS; i++)
        u->reg[i] = regs[i].reset;
}

/* -- timing ------------------------------------------------------------------------------------- */

int64_t dh_espu_bit_time(const dh_espu *u, int rx)
{
    uint32_t clk = REG(u, R_CLK_CONF), div = REG(u, R_CLKDIV);
    if (rx && !(clk >> 25 & 1))                         /* RX_SCLK_EN */
        return 0;
    int64_t sclk;
    switch (clk >> 20 & 3) {                            /* SCLK_SEL */
    case 1: sclk = 80000000; break;
    case 2: sclk = 17500000; break;
    case 3: sclk = 40000000; break;
    default: return 0;
    }
    uint32_t clkdiv = div & 0xFFF, frag = div >> 20 & 0xF;
    if (!(clk >> 22 & 1) || (clkdiv == 0 && frag == 0))     /* SCLK_EN */
        return 0;
    __int128 b = clk & 0x3F, a = clk >> 6 & 0x3F, num_pre = (clk >> 12 & 0xFF) + 1, den_pre = 1;
    if (b) {
        num_pre = num_pre * b + a;
        den_pre = b;
    }
    /* round(pre * (16 * CLKDIV + FRAG) / 16 * 1e12 / sclk), halves to even (Fraction's round) */
    __int128 num = num_pre * (16 * (__int128)clkdiv + frag) * PS_PER_S_;
    __int128 den = den_pre * 16 * sclk;
    __int128 q = num / den, r = num % den;
    if (2 * r > den || (2 * r == den && (q & 1)))
        q++;
    return (int64_t)q;
}

int dh_espu_frame2(const dh_espu *u)
{
    uint32_t c0 = REG(u, R_CONF0);
    static const int stop2[4] = {2, 2, 3, 4};
    return 2 * (1 + 5 + (int)(c0 >> 2 & 3) + (int)(c0 >> 1 & 1)) + stop2[c0 >> 4 & 3];
}

static int64_t round_half(int64_t x2)        /* round(x2 / 2), halves to even */
{
    int64_t q = x2 >> 1;
    if ((x2 & 1) && (q & 1))
        q++;
    return q;
}

int64_t dh_espu_char_ps(const dh_espu *u)
{
    int64_t bt = dh_espu_bit_time(u, 0);
    return bt ? round_half(bt * dh_espu_frame2(u)) : 0;
}

/* -- status and interrupts ------------------------------------------------------------------------ */

uint32_t dh_espu_status(const dh_espu *u)
{
    return STATUS_IDLE_BITS | (uint32_t)(u->rx_n < 0x3FF ? u->rx_n : 0x3FF) | ((uint32_t)u->tx_n << 16);
}

uint32_t dh_espu_int_raw(const dh_espu *u)
{
    uint32_t c1 = REG(u, R_CONF1), raw = u->latched;
    if (u->rx_n && (uint32_t)u->rx_n >= (c1 & 0x1FF))        /* RXFIFO_FULL_THRHD */
        raw |= RXFIFO_FULL;
    if ((uint32_t)u->tx_n <= (c1 >> 9 & 0x1FF))             /* TXFIFO_EMPTY_THRHD */
        raw |= TXFIFO_EMPTY;
    return raw;
}

int dh_espu_update(dh_espu *u)
{
    return u->env.irq(u->env.ctx, (dh_espu_int_raw(u) & REG(u, R_INT_ENA) & INT_ALL) != 0);
}

static int polled(dh_espu *u)
{
    return u->env.poll_hint(u->env.ctx, u->tx_busy ? u->tx_end_ps : 0, u->tx_busy);
}

/* -- TX ------------------------------------------------------------------------------------------- */

static int tx_start(dh_espu *u, int64_t t)
{
    int64_t bt = dh_espu_bit_time(u, 0);
    int frame2 = dh_espu_frame2(u);
    if (!u->tx_n || !bt || !(REG(u, R_CLK_CONF) >> 24 & 1)) {        /* TX_SCLK_EN */
        u->tx_busy = 0;
        return 0;
    }
    int byte = u->tx[u->tx_head];
    u->tx_head = (u->tx_head + 1) % ESPU_FIFO_LEN;
    u->tx_n--;
    u->tx_busy = 1;
    u->tx_end_ps = t + round_half(bt * frame2);
    if (REG(u, R_CONF0) >> 14 & 1) {                                 /* LOOPBACK */
        if (u->env.at_loopback(u->env.ctx, u->tx_end_ps, byte) < 0)
            return -1;
    } else if (u->env.tx(u->env.ctx, byte, t, bt, frame2) < 0) {
        return -1;
    }
    return u->env.at_tx_done(u->env.ctx, u->tx_end_ps);
}

static int fifo_write(dh_espu *u, uint32_t value)
{
    if (REG(u, R_CONF0) >> 18 & 1)                                  /* TXFIFO_RST */
        return 0;
    if (u->tx_n >= ESPU_FIFO_LEN) {
        u->tx_overflows++;
        return 0;
    }
    u->tx[(u->tx_head + u->tx_n++) % ESPU_FIFO_LEN] = (uint8_t)value;
    if (!u->tx_busy) {
        int64_t t;
        if (u->env.now(u->env.ctx, &t) < 0 || tx_start(u, t) < 0)
            return -1;
    }
    return dh_espu_update(u);
}

static int kick_tx(dh_espu *u)
{
    if (!u->tx_busy && u->tx_n) {
        int64_t t;
        if (u->env.now(u->env.ctx, &t) < 0 || tx_start(u, t) < 0)
            return -1;
        return dh_espu_update(u);
    }
    return 0;
}

int dh_espu_tx_done(dh_espu *u)
{
    u->tx_busy = 0;
    if (u->tx_n) {
        if (tx_start(u, u->tx_end_ps) < 0)
            return -1;
    } else {
        u->latched |= TX_DONE;
    }
    return dh_espu_update(u);
}

/* -- RX ------------------------------------------------------------------------------------------- */

static int arm_timeout(dh_espu *u)
{
    if (u->env.has_timeout(u->env.ctx) && u->env.cancel_timeout(u->env.ctx) < 0)
        return -1;
    int64_t now;
    if (u->env.now(u->env.ctx, &now) < 0)
        return -1;
    if (now < u->rx_busy_until)
        return 0;                       /* another character is already on its way in */
    int64_t thr = REG(u, R_MEM_CONF) >> 16 & 0x3FF;                  /* RX_TOUT_THRHD */
    int64_t bt = dh_espu_bit_time(u, 1);
    if (REG(u, R_CONF1) >> 21 & 1 && thr && bt) {                    /* RX_TOUT_EN */
        if (u->env.now(u->env.ctx, &now) < 0)
            return -1;
        return u->env.at_timeout(u->env.ctx, now + (thr * bt > 0 ? thr * bt : 0));
    }
    return 0;
}

int dh_espu_rx_char(dh_espu *u, int byte, int framing_error)
{
    if (!dh_espu_bit_time(u, 1))
        return 0;
    uint32_t c0 = REG(u, R_CONF0);
    if (framing_error) {
        u->frame_errors++;
        u->latched |= FRM_ERR;
    }
    if ((c0 >> 17 & 1) || (framing_error && (c0 >> 26 & 1))) {       /* RXFIFO_RST, ERR_WR_MASK */
        /* not stored */
    } else if (u->rx_n >= ESPU_FIFO_LEN) {
        u->rx_overruns++;
        if (!(REG(u, R_CONF1) >> 18 & 1))                             /* DIS_RX_DAT_OVF */
            u->latched |= RXFIFO_OVF;
    } else {
        u->rx[(u->rx_head + u->rx_n++) % ESPU_FIFO_LEN] = (uint8_t)byte;
    }
    if (arm_timeout(u) < 0)
        return -1;
    return dh_espu_update(u);
}

int dh_espu_rx_start(dh_espu *u, int64_t arrival_ps)
{
    if (arrival_ps > u->rx_busy_until)
        u->rx_busy_until = arrival_ps;
    if (u->env.has_timeout(u->env.ctx))
        return u->env.cancel_timeout(u->env.ctx);
    return 0;
}

int dh_espu_timeout(dh_espu *u)
{
    if (u->rx_n && REG(u, R_CONF1) >> 21 & 1) {
        u->latched |= RXFIFO_TOUT;
        return dh_espu_update(u);
    }
    return 0;
}

static int fifo_read(dh_espu *u, uint32_t *out)
{
    if (u->env.note_write(u->env.ctx) < 0)     /* a state-changing read: never part of a poll run */
        return -1;
    *out = 0;
    if (!u->rx_n)
        return 0;
    *out = u->rx[u->rx_head];
    u->rx_head = (u->rx_head + 1) % ESPU_FIFO_LEN;
    u->rx_n--;
    return dh_espu_update(u);
}

int dh_espu_reset(dh_espu *u)
{
    for (int i = 0; i < ESPU_NREGS; i++)
        u->reg[i] = regs[i].reset;
    if (u->env.cancel_tx(u->env.ctx) < 0)
        return -1;
    if (u->env.has_timeout(u->env.ctx) && u->env.cancel_timeout(u->env.ctx) < 0)
        return -1;
    u->rx_n = u->tx_n = u->rx_head = u->tx_head = 0;
    u->latched = 0;
    u->tx_busy = 0;
    u->rx_busy_until = 0;
    return dh_espu_update(u);
}

/* -- the bus (regs.py's RegisterBank.read / write for this block) -------------------------------- */

static int reg_read(dh_espu *u, int idx, uint32_t *v)
{
    switch (idx << 2) {
    case R_FIFO:
        return fifo_read(u, v);
    case R_INT_RAW:
        *v = dh_espu_int_raw(u);
        return polled(u);
    case R_INT_ST:
        *v = dh_espu_int_raw(u) & REG(u, R_INT_ENA);
        return polled(u);
    case R_STATUS:
        *v = dh_espu_status(u);
        return polled(u);
    case R_FSM_STATUS:
        *v = u->tx_busy ? 0x10 : 0;
        return polled(u);
    default:
        *v = u->reg[idx];
        return 0;
    }
}

int dh_espu_read(dh_espu *u, uint32_t offset, unsigned size, uint64_t *value)
{
    uint32_t base = offset & ~3u, shift = offset - base;
    int idx = (int)(base >> 2);
    if (base >= ESPU_NREGS * 4 || !regs[idx].defined) {
        u->unmodeled++;
        *value = 0;
        return 0;
    }
    uint32_t v;
    if (reg_read(u, idx, &v) < 0)
        return -1;
    v &= ~regs[idx].read_zero;
    uint64_t r = (uint64_t)v >> (8 * shift);
    *value = size >= 8 ? r : r & ((1ull << (8 * size)) - 1);
    return 0;
}

int dh_espu_write(dh_espu *u, uint32_t offset, unsigned size, uint64_t value)
{
    uint32_t base = offset & ~3u, shift = offset - base;
    int idx = (int)(base >> 2);
    if (base >= ESPU_NREGS * 4 || !regs[idx].defined) {
        u->unmodeled++;
        return 0;
    }
    uint64_t m64 = size >= 8 ? ~0ull : ((1ull << (8 * size)) - 1);
    uint32_t mask = (uint32_t)((m64 << (8 * shift)) & 0xFFFFFFFFu);
    uint32_t data = (uint32_t)((value << (8 * shift)) & mask);
    uint32_t old = u->reg[idx], rw = regs[idx].wr & mask;
    uint32_t nv = (old & ~rw) | (data & rw);
    u->reg[idx] = nv;
    uint32_t seen = (data & mask) | (nv & ~mask);       /* what on_write sees */
    switch (base) {
    case R_FIFO:
        return fifo_write(u, seen & 0xFF);
    case R_INT_ENA:
    case R_CONF1:
        return dh_espu_update(u);
    case R_INT_CLR:
        u->latched &= ~seen;
        return dh_espu_update(u);
    case R_CLKDIV:
    case R_CLK_CONF:
        return kick_tx(u);
    case R_CONF0:
        if (nv >> 17 & 1)
            u->rx_n = u->rx_head = 0;
        if (nv >> 18 & 1)
            u->tx_n = u->tx_head = 0;
        return dh_espu_update(u);
    default:
        return 0;
    }
}
