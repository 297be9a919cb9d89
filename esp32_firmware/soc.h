/*
 * ESP32-C3-class peer: memory map, CLINT, PLIC and CSR helpers.
 *
 * Addresses follow platforms/esp32c3_peer.repl. The CLINT and PLIC stand in for the C3's SYSTIMER and
 * interrupt matrix (documented deviation, README.md "Platform"); the UART block is the real C3 one
 * (esp32c3_uart.h).
 */
#ifndef PEER_SOC_H
#define PEER_SOC_H

#include <stdint.h>

/* ---- memory map (ESP32-C3 soc.h) ---- */
#define SOC_IROM_BASE        0x42000000u   /* flash-mapped code, .rodata and .config */
#define SOC_DRAM_BASE        0x3FC80000u   /* SRAM1, data bus alias: .data, .bss, heap, stack */
#define SOC_DRAM_SIZE        0x00060000u
#define SOC_UART0_BASE       0x60000000u   /* console */
#define SOC_UART1_BASE       0x60010000u   /* link to the STM32 */

/* ---- clocks ---- */
#define SOC_CPU_HZ_NOMINAL   160000000u    /* CPU clock; the emulator charges 1 cycle per instruction */
#define SOC_APB_HZ           80000000u     /* APB = UART SCLK source (CLK_CONF.SCLK_SEL = 1) */
#define SOC_MTIME_HZ         16000000u     /* CLINT mtime (same rate as the C3 SYSTIMER) */
#define SOC_MTIME_PER_MS     (SOC_MTIME_HZ / 1000u)
#define SOC_MTIME_PER_US     (SOC_MTIME_HZ / 1000000u)

/* ---- CLINT (stand-in for SYSTIMER) ---- */
#define CLINT_BASE           0x02000000u
#define CLINT_MSIP           (CLINT_BASE + 0x0000u)
#define CLINT_MTIMECMP_LO    (CLINT_BASE + 0x4000u)
#define CLINT_MTIMECMP_HI    (CLINT_BASE + 0x4004u)
#define CLINT_MTIME_LO       (CLINT_BASE + 0xBFF8u)
#define CLINT_MTIME_HI       (CLINT_BASE + 0xBFFCu)

/* ---- PLIC (stand-in for the interrupt matrix), context 0 = hart 0 M-mode ---- */
#define PLIC_BASE            0x0C000000u
#define PLIC_PRIORITY(id)    (PLIC_BASE + 4u * (uint32_t)(id))
#define PLIC_ENABLE0         (PLIC_BASE + 0x002000u)    /* bit n of word n/32 = source n */
#define PLIC_THRESHOLD       (PLIC_BASE + 0x200000u)
#define PLIC_CLAIM           (PLIC_BASE + 0x200004u)    /* read = claim, write = complete */

/* interrupt sources: the C3 interrupt-matrix numbers */
#define IRQ_SRC_UART0        21u
#define IRQ_SRC_UART1        22u

/* ---- RISC-V machine-mode CSR bits ---- */
#define MSTATUS_MIE          (1u << 3)
#define MIE_MTIE             (1u << 7)
#define MIE_MEIE             (1u << 11)
#define MCAUSE_INTERRUPT     0x80000000u
#define MCAUSE_CODE_MASK     0x7FFFFFFFu
#define IRQ_M_TIMER          7u       /* MTIP, from the CLINT */
#define IRQ_M_EXT            11u      /* MEIP, from the PLIC */

#define csr_read(csr) ({ uint32_t v_; __asm__ volatile ("csrr %0, " #csr : "=r"(v_)); v_; })
#define csr_write(csr, val) __asm__ volatile ("csrw " #csr ", %0" :: "rK"((uint32_t)(val)))
#define csr_set(csr, bits) __asm__ volatile ("csrs " #csr ", %0" :: "rK"((uint32_t)(bits)))
#define csr_clear(csr, bits) __asm__ volatile ("csrc " #csr ", %0" :: "rK"((uint32_t)(bits)))

static inline uint32_t mmio_read(uint32_t addr) { return *(volatile uint32_t *)addr; }
static inline void mmio_write(uint32_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

static inline void irq_disable(void) { csr_clear(mstatus, MSTATUS_MIE); }
static inline void irq_enable(void) { csr_set(mstatus, MSTATUS_MIE); }
static inline void cpu_wfi(void) { __asm__ volatile ("wfi" ::: "memory"); }

#endif
