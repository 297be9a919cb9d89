/*
 * STM32H743 peripheral registers used by the duohil motor-controller firmware. Our own header (no
 * vendor HAL/CMSIS device file); block layouts, offsets and bit positions follow RM0433 /
 * stm32h743xx.h as summarised in /work/shared/reference/stm32h7-registers.md (section numbers in
 * the comments). Only the registers and fields this firmware touches are named.
 */
#ifndef DUOHIL_REGS_STM32H743_H
#define DUOHIL_REGS_STM32H743_H

#include <stdint.h>
#include "cm7.h"

/* ---- RCC (0x58024400), section 2 --------------------------------------------------------------- */
typedef struct {
    volatile uint32_t CR;          /* 0x00 */
    volatile uint32_t HSICFGR;     /* 0x04 */
    volatile uint32_t CRRCR;       /* 0x08 */
    volatile uint32_t CSICFGR;     /* 0x0C */
    volatile uint32_t CFGR;        /* 0x10 */
    uint32_t          _r14;
    volatile uint32_t D1CFGR;      /* 0x18 */
    volatile uint32_t D2CFGR;      /* 0x1C */
    volatile uint32_t D3CFGR;      /* 0x20 */
    uint32_t          _r24;
    volatile uint32_t PLLCKSELR;   /* 0x28 */
    volatile uint32_t PLLCFGR;     /* 0x2C */
    volatile uint32_t PLL1DIVR;    /* 0x30 */
    volatile uint32_t PLL1FRACR;   /* 0x34 */
    uint32_t          _r38[5];     /* 0x38..0x48: PLL2DIVR, PLL2FRACR, PLL3DIVR, PLL3FRACR, reserved */
    volatile uint32_t D1CCIPR;     /* 0x4C */
    volatile uint32_t D2CCIP1R;    /* 0x50 */
    volatile uint32_t D2CCIP2R;    /* 0x54 */
    volatile uint32_t D3CCIPR;     /* 0x58 */
    uint32_t          _r5c;
    volatile uint32_t CIER;        /* 0x60 */
    volatile uint32_t CIFR;        /* 0x64 */
    volatile uint32_t CICR;        /* 0x68 */
    uint32_t          _r6c;
    volatile uint32_t BDCR;        /* 0x70 */
    volatile uint32_t CSR;         /* 0x74 */
    uint32_t          _r78[22];    /* 0x78..0xCC */
    volatile uint32_t RSR;         /* 0xD0 */
    volatile uint32_t AHB3ENR;     /* 0xD4 */
    volatile uint32_t AHB1ENR;     /* 0xD8 */
    volatile uint32_t AHB2ENR;     /* 0xDC */
    volatile uint32_t AHB4ENR;     /* 0xE0 */
    volatile uint32_t APB3ENR;     /* 0xE4 */
    volatile uint32_t APB1LENR;    /* 0xE8 */
    volatile uint32_t APB1HENR;    /* 0xEC */
    volatile uint32_t APB2ENR;     /* 0xF0 */
    volatile uint32_t APB4ENR;     /* 0xF4 */
} rcc_t;
#define RCC                    ((rcc_t *)0x58024400u)

#define RCC_CR_HSION           (1u << 0)
#define RCC_CR_HSIRDY          (1u << 2)
#define RCC_CR_HSEON           (1u << 16)
#define RCC_CR_HSERDY          (1u << 17)
#define RCC_CR_HSEBYP          (1u << 18)
#define RCC_CR_PLL1ON          (1u << 24)
#define RCC_CR_PLL1RDY         (1u << 25)

#define RCC_CFGR_SW_Msk        (7u << 0)
#define RCC_CFGR_SW_PLL1       (3u << 0)
#define RCC_CFGR_SWS_Msk       (7u << 3)
#define RCC_CFGR_SWS_PLL1      (3u << 3)           /* reads 0x18 */

#define RCC_D1CFGR_HPRE_DIV2   (8u << 0)
#define RCC_D1CFGR_D1PPRE_DIV2 (4u << 4)
#define RCC_D1CFGR_D1CPRE_DIV1 (0u << 8)
#define RCC_D2CFGR_D2PPRE1_DIV2 (4u << 4)
#define RCC_D2CFGR_D2PPRE2_DIV2 (4u << 8)
#define RCC_D3CFGR_D3PPRE_DIV2 (4u << 4)

#define RCC_PLLCKSELR_PLLSRC_HSE (2u << 0)
#define RCC_PLLCKSELR_PLLSRC_Msk (3u << 0)
#define RCC_PLLCKSELR_DIVM1_Pos  4u
#define RCC_PLLCKSELR_DIVM1_Msk  (0x3Fu << 4)

#define RCC_PLLCFGR_PLL1FRACEN (1u << 0)
#define RCC_PLLCFGR_PLL1VCOSEL (1u << 1)            /* 0 = wide VCO 192..960 MHz */
#define RCC_PLLCFGR_PLL1RGE_8_16 (3u << 2)
#define RCC_PLLCFGR_PLL1RGE_Msk  (3u << 2)
#define RCC_PLLCFGR_DIVP1EN    (1u << 16)
#define RCC_PLLCFGR_DIVQ1EN    (1u << 17)
#define RCC_PLLCFGR_DIVR1EN    (1u << 18)

/* PLL1DIVR holds value - 1 */
#define RCC_PLL1DIVR(n, p, q, r) \
    ((((n) - 1u) << 0) | (((p) - 1u) << 9) | (((q) - 1u) << 16) | (((r) - 1u) << 24))

#define RCC_AHB1ENR_DMA1EN     (1u << 0)
#define RCC_AHB4ENR_GPIOAEN    (1u << 0)
#define RCC_AHB4ENR_GPIODEN    (1u << 3)
#define RCC_AHB4ENR_GPIOEEN    (1u << 4)
#define RCC_APB1LENR_TIM2EN    (1u << 0)
#define RCC_APB1LENR_TIM6EN    (1u << 4)
#define RCC_APB1LENR_USART3EN  (1u << 18)
#define RCC_APB2ENR_TIM1EN     (1u << 0)
#define RCC_APB2ENR_USART1EN   (1u << 4)
#define RCC_APB4ENR_SYSCFGEN   (1u << 1)

#define RCC_RSR_RMVF           (1u << 16)
#define RCC_RSR_CPURSTF        (1u << 17)
#define RCC_RSR_BORRSTF        (1u << 21)
#define RCC_RSR_PINRSTF        (1u << 22)
#define RCC_RSR_PORRSTF        (1u << 23)
#define RCC_RSR_SFTRSTF        (1u << 24)
#define RCC_RSR_IWDG1RSTF      (1u << 26)
#define RCC_RSR_WWDG1RSTF      (1u << 28)

/* ---- PWR (0x58024800), SYSCFG_PWRCR, FLASH_ACR, DBGMCU, section 2.3 ------------------------------ */
#define PWR_CR3                REG32(0x5802480Cu)
#define PWR_CSR1               REG32(0x58024804u)
#define PWR_D3CR               REG32(0x58024818u)
#define PWR_CR3_BYPASS         (1u << 0)
#define PWR_CR3_LDOEN          (1u << 1)
#define PWR_CR3_SCUEN          (1u << 2)
#define PWR_CSR1_ACTVOSRDY     (1u << 13)
#define PWR_D3CR_VOSRDY        (1u << 13)
#define PWR_D3CR_VOS_Msk       (3u << 14)
#define PWR_D3CR_VOS_SCALE1    (3u << 14)

#define SYSCFG_PWRCR           REG32(0x5800042Cu)
#define SYSCFG_PWRCR_ODEN      (1u << 0)            /* VOS0 = scale 1 + ODEN */

#define FLASH_ACR              REG32(0x52002000u)
#define FLASH_ACR_LATENCY_Msk  (0xFu << 0)
#define FLASH_ACR_WRHIGHFREQ_Msk (3u << 4)
#define FLASH_ACR_LATENCY(ws)  ((uint32_t)(ws) << 0)
#define FLASH_ACR_WRHIGHFREQ(x) ((uint32_t)(x) << 4)

#define DBGMCU_IDCODE          REG32(0x5C001000u)

/* ---- USART (section 3) --------------------------------------------------------------------------- */
typedef struct {
    volatile uint32_t CR1;    /* 0x00 */
    volatile uint32_t CR2;    /* 0x04 */
    volatile uint32_t CR3;    /* 0x08 */
    volatile uint32_t BRR;    /* 0x0C */
    volatile uint32_t GTPR;   /* 0x10 */
    volatile uint32_t RTOR;   /* 0x14 */
    volatile uint32_t RQR;    /* 0x18 */
    volatile uint32_t ISR;    /* 0x1C */
    volatile uint32_t ICR;    /* 0x20 */
    volatile uint32_t RDR;    /* 0x24 */
    volatile uint32_t TDR;    /* 0x28 */
    volatile uint32_t PRESC;  /* 0x2C */
} usart_t;
#define USART1                 ((usart_t *)0x40011000u)
#define USART3                 ((usart_t *)0x40004800u)

#define USART_CR1_UE           (1u << 0)
#define USART_CR1_RE           (1u << 2)
#define USART_CR1_TE           (1u << 3)
#define USART_CR1_IDLEIE       (1u << 4)
#define USART_CR1_RXNEIE       (1u << 5)
#define USART_CR1_TCIE         (1u << 6)
#define USART_CR1_TXEIE        (1u << 7)
#define USART_CR1_FIFOEN       (1u << 29)
#define USART_CR3_EIE          (1u << 0)
#define USART_CR3_DMAR         (1u << 6)
#define USART_CR3_DMAT         (1u << 7)
#define USART_CR3_OVRDIS       (1u << 12)
#define USART_ISR_PE           (1u << 0)
#define USART_ISR_FE           (1u << 1)
#define USART_ISR_NE           (1u << 2)
#define USART_ISR_ORE          (1u << 3)
#define USART_ISR_IDLE         (1u << 4)
#define USART_ISR_RXNE         (1u << 5)
#define USART_ISR_TC           (1u << 6)
#define USART_ISR_TXE          (1u << 7)
#define USART_ISR_TEACK        (1u << 21)
#define USART_ISR_REACK        (1u << 22)
#define USART_ICR_PECF         (1u << 0)
#define USART_ICR_FECF         (1u << 1)
#define USART_ICR_NECF         (1u << 2)
#define USART_ICR_ORECF        (1u << 3)
#define USART_ICR_IDLECF       (1u << 4)
#define USART_ICR_TCCF         (1u << 6)

/* ---- DMA1 (0x40020000) and DMAMUX1 (0x40020800), sections 4 and 5 -------------------------------- */
typedef struct {
    volatile uint32_t CR;     /* +0x00 */
    volatile uint32_t NDTR;   /* +0x04 */
    volatile uint32_t PAR;    /* +0x08 */
    volatile uint32_t M0AR;   /* +0x0C */
    volatile uint32_t M1AR;   /* +0x10 */
    volatile uint32_t FCR;    /* +0x14 */
} dma_stream_t;
typedef struct {
    volatile uint32_t LISR;   /* 0x00 */
    volatile uint32_t HISR;   /* 0x04 */
    volatile uint32_t LIFCR;  /* 0x08 */
    volatile uint32_t HIFCR;  /* 0x0C */
    dma_stream_t      S[8];   /* 0x10 + 0x18 * n */
} dma_t;
#define DMA1                   ((dma_t *)0x40020000u)

#define DMA_SxCR_EN            (1u << 0)
#define DMA_SxCR_DMEIE         (1u << 1)
#define DMA_SxCR_TEIE          (1u << 2)
#define DMA_SxCR_HTIE          (1u << 3)
#define DMA_SxCR_TCIE          (1u << 4)
#define DMA_SxCR_DIR_P2M       (0u << 6)
#define DMA_SxCR_DIR_M2P       (1u << 6)
#define DMA_SxCR_CIRC          (1u << 8)
#define DMA_SxCR_MINC          (1u << 10)
#define DMA_SxCR_PL_MEDIUM     (1u << 16)
#define DMA_SxCR_PL_HIGH       (2u << 16)
#define DMA_SxCR_TRBUFF        (1u << 20)

/* per-stream flags in LISR/LIFCR (streams 0..3; HISR/HIFCR for 4..7), relative to the stream's
 * base bit: stream 0 at bit 0, stream 1 at bit 6, stream 2 at 16, stream 3 at 22 */
#define DMA_FLAG_FEIF          (1u << 0)
#define DMA_FLAG_DMEIF         (1u << 2)
#define DMA_FLAG_TEIF          (1u << 3)
#define DMA_FLAG_HTIF          (1u << 4)
#define DMA_FLAG_TCIF          (1u << 5)
#define DMA_FLAG_ALL           (DMA_FLAG_FEIF | DMA_FLAG_DMEIF | DMA_FLAG_TEIF | DMA_FLAG_HTIF | DMA_FLAG_TCIF)
/* stream 0 and stream 1 positions, spelled out for the two streams this firmware uses */
#define DMA_LISR_S0(flag)      ((uint32_t)(flag) << 0)
#define DMA_LISR_S1(flag)      ((uint32_t)(flag) << 6)

#define DMAMUX1_CCR(ch)        REG32(0x40020800u + 4u * (ch))
#define DMAMUX_REQ_USART3_RX   45u
#define DMAMUX_REQ_USART3_TX   46u

/* ---- timers (section 6) ------------------------------------------------------------------------ */
typedef struct {
    volatile uint32_t CR1;    /* 0x00 */
    volatile uint32_t CR2;    /* 0x04 */
    volatile uint32_t SMCR;   /* 0x08 */
    volatile uint32_t DIER;   /* 0x0C */
    volatile uint32_t SR;     /* 0x10 */
    volatile uint32_t EGR;    /* 0x14 */
    volatile uint32_t CCMR1;  /* 0x18 */
    volatile uint32_t CCMR2;  /* 0x1C */
    volatile uint32_t CCER;   /* 0x20 */
    volatile uint32_t CNT;    /* 0x24 */
    volatile uint32_t PSC;    /* 0x28 */
    volatile uint32_t ARR;    /* 0x2C */
    volatile uint32_t RCR;    /* 0x30 */
    volatile uint32_t CCR1;   /* 0x34 */
    volatile uint32_t CCR2;   /* 0x38 */
    volatile uint32_t CCR3;   /* 0x3C */
    volatile uint32_t CCR4;   /* 0x40 */
    volatile uint32_t BDTR;   /* 0x44 */
} tim_t;
#define TIM1                   ((tim_t *)0x40010000u)
#define TIM2                   ((tim_t *)0x40000000u)
#define TIM6                   ((tim_t *)0x40001000u)

#define TIM_CR1_CEN            (1u << 0)
#define TIM_CR1_URS            (1u << 2)
#define TIM_CR1_ARPE           (1u << 7)
#define TIM_DIER_UIE           (1u << 0)
#define TIM_SR_UIF             (1u << 0)
#define TIM_EGR_UG             (1u << 0)
#define TIM_SMCR_SMS_ENCODER3  (3u << 0)           /* x4, counts on TI1 and TI2 edges */
#define TIM_CCMR1_CC1S_TI1     (1u << 0)
#define TIM_CCMR1_CC2S_TI2     (1u << 8)
#define TIM_CCMR1_OC1PE        (1u << 3)
#define TIM_CCMR1_OC1M_PWM1    (6u << 4)
#define TIM_CCER_CC1E          (1u << 0)
#define TIM_BDTR_MOE           (1u << 15)

/* ---- GPIO (section 7) ---------------------------------------------------------------------------- */
typedef struct {
    volatile uint32_t MODER;    /* 0x00 */
    volatile uint32_t OTYPER;   /* 0x04 */
    volatile uint32_t OSPEEDR;  /* 0x08 */
    volatile uint32_t PUPDR;    /* 0x0C */
    volatile uint32_t IDR;      /* 0x10 */
    volatile uint32_t ODR;      /* 0x14 */
    volatile uint32_t BSRR;     /* 0x18 */
    volatile uint32_t LCKR;     /* 0x1C */
    volatile uint32_t AFR[2];   /* 0x20, 0x24 */
} gpio_t;
#define GPIOA                  ((gpio_t *)0x58020000u)
#define GPIOD                  ((gpio_t *)0x58020C00u)
#define GPIOE                  ((gpio_t *)0x58021000u)

#define GPIO_MODE_INPUT        0u
#define GPIO_MODE_OUTPUT       1u
#define GPIO_MODE_AF           2u
#define GPIO_MODE_ANALOG       3u

/* ---- IWDG1 (0x58004800), section 8 --------------------------------------------------------------- */
#define IWDG1_KR               REG32(0x58004800u)
#define IWDG1_PR               REG32(0x58004804u)
#define IWDG1_RLR              REG32(0x58004808u)
#define IWDG1_SR               REG32(0x5800480Cu)
#define IWDG_KEY_START         0xCCCCu
#define IWDG_KEY_UNLOCK        0x5555u
#define IWDG_KEY_RELOAD        0xAAAAu

/* ---- IRQ numbers (section 3, 4, 6) --------------------------------------------------------------- */
#define IRQ_DMA1_STREAM0       11u
#define IRQ_DMA1_STREAM1       12u
#define IRQ_USART1             37u
#define IRQ_USART3             39u
#define IRQ_TIM6_DAC           54u
#define IRQ_COUNT              150u

/* layout checks against the offsets of the reference (cheap insurance for a hand-written header) */
_Static_assert(__builtin_offsetof(rcc_t, PLL1DIVR) == 0x30u, "RCC_PLL1DIVR");
_Static_assert(__builtin_offsetof(rcc_t, D2CCIP2R) == 0x54u, "RCC_D2CCIP2R");
_Static_assert(__builtin_offsetof(rcc_t, RSR) == 0xD0u, "RCC_RSR");
_Static_assert(__builtin_offsetof(rcc_t, APB4ENR) == 0xF4u, "RCC_APB4ENR");
_Static_assert(__builtin_offsetof(dma_t, S[1].CR) == 0x28u, "DMA_S1CR");
_Static_assert(__builtin_offsetof(tim_t, BDTR) == 0x44u, "TIM_BDTR");
_Static_assert(__builtin_offsetof(usart_t, PRESC) == 0x2Cu, "USART_PRESC");

#endif
