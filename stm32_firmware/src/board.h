/*
 * Board facts in one place: clocks, pins, DMA streams, interrupt priorities. Numbers that matter
 * have one home and a name (STYLE.md).
 */
#ifndef DUOHIL_BOARD_H
#define DUOHIL_BOARD_H

#include "fixes.h"

/* Clocks (clock.c): HSE 8 MHz -> PLL1 (M=1, N=120, P=2) = 480 MHz SYSCLK; HCLK /2 = 240 MHz;
 * APB1..4 /2 = 120 MHz; timer kernel clocks 240 MHz. */
#define HSE_HZ                8000000u
#define SYSCLK_HZ             480000000u
#define HCLK_HZ               240000000u
#define PCLK1_HZ              120000000u     /* USART3 kernel clock */
#define PCLK2_HZ              120000000u     /* USART1 kernel clock */
#define TIMCLK_HZ             240000000u     /* TIM1/2/6 kernel clock */

/* Pins (all AF numbers from the datasheet's AF table):
 *   USART1 console  PA9 TX / PA10 RX  AF7
 *   USART3 link     PD8 TX / PD9 RX   AF7
 *   TIM1_CH1 PWM    PE9               AF1
 *   motor DIR       PE10              GPIO output, 1 = positive direction (counts increase)
 *   TIM2 encoder    PA0 CH1 / PA1 CH2 AF1 */
#define MOTOR_DIR_PORT        GPIOE
#define MOTOR_DIR_PIN         10u

/* PWM: 240 MHz / 12000 = 20 kHz, duty in PWM counts 0..12000 */
#define PWM_PERIOD_COUNTS     12000u

/* Link DMA: DMA1 stream 0 = USART3 RX (circular), stream 1 = USART3 TX (normal). */
#define LINK_RX_STREAM        0u
#define LINK_TX_STREAM        1u

/*
 * NVIC priorities (4 bits, lower = more urgent). Set explicitly for every interrupt used.
 * CM5 (FIX_STACK): the values are the same in every build; the priority *grouping* decides which
 * of them may preempt one another.
 *   FIX_STACK=0: PRIGROUP 3 = 4 preemption bits: every value below is its own preemption level, so
 *                DMA TX (6) <- USART3 (5) <- DMA RX (4) <- SysTick (3) <- TIM6 (2) can all nest.
 *   FIX_STACK=1: PRIGROUP 5 = 2 preemption bits [7:6] + 2 sub-priority bits [5:4]: the link ISRs
 *                (4, 5, 6 = group 1) never nest; TIM6/SysTick (2, 3 = group 0) preempt them but not
 *                each other; the console (8 = group 2) is below both.
 */
#define PRIO_FAULTS           0u    /* MemManage, BusFault, UsageFault */
#define PRIO_TIM6_CONTROL     2u
#define PRIO_SYSTICK          3u
#define PRIO_LINK_DMA_RX      4u
#define PRIO_LINK_USART       5u
#define PRIO_LINK_DMA_TX      6u
#define PRIO_CONSOLE          8u
#define PRIGROUP_FLAT         3u    /* 4 bits preemption, 0 sub-priority */
#define PRIGROUP_LINK_GROUPED 5u    /* 2 bits preemption, 2 sub-priority */

/* IWDG (FIX_FAULT_HANDLER): LSI 32 kHz, /4, reload 319 -> (319+1)*4/32000 = 40 ms. Kicked by the
 * main loop (>= 1 kHz); a fault handler waits for it: reset <= 40 ms after the fault. */
#define IWDG_PR_DIV4          0u
#define IWDG_RELOAD           319u
#define IWDG_TIMEOUT_MS       40u

#endif
