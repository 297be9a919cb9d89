/*
 * Axis drivers. PWM: TIM1 CH1 (PE9, AF1), PWM mode 1, 20 kHz (ARR = 11999, duty = CCR1 counts),
 * main output enabled (BDTR.MOE). Direction: PE10 push-pull, 1 = positive (encoder counts up).
 * Encoder: TIM2 (PA0/PA1, AF1) in encoder mode 3 (x4), 32-bit CNT = position in counts.
 * Control tick: TIM6 at 1 kHz (240 MHz / 240 / 1000).
 */
#include "motor.h"
#include "board.h"
#include "control.h"
#include "gpio.h"
#include "../regs/stm32h743.h"

void motor_init(void)
{
    RCC->AHB4ENR |= RCC_AHB4ENR_GPIOAEN | RCC_AHB4ENR_GPIOEEN;
    RCC->APB2ENR |= RCC_APB2ENR_TIM1EN;
    RCC->APB1LENR |= RCC_APB1LENR_TIM2EN;
    (void)RCC->APB1LENR;

    /* direction pin low before it becomes an output; PWM pin on AF1 */
    MOTOR_DIR_PORT->BSRR = 1u << (MOTOR_DIR_PIN + 16u);
    gpio_config(MOTOR_DIR_PORT, MOTOR_DIR_PIN, GPIO_MODE_OUTPUT, 0u);
    gpio_config(GPIOE, 9u, GPIO_MODE_AF, 1u);

    TIM1->CR1 = 0u;
    TIM1->PSC = 0u;
    TIM1->ARR = PWM_PERIOD_COUNTS - 1u;
    TIM1->CCR1 = 0u;
    TIM1->CCMR1 = TIM_CCMR1_OC1M_PWM1 | TIM_CCMR1_OC1PE;
    TIM1->CCER = TIM_CCER_CC1E;
    TIM1->BDTR = TIM_BDTR_MOE;
    TIM1->EGR = TIM_EGR_UG;
    TIM1->CR1 = TIM_CR1_ARPE | TIM_CR1_CEN;

    gpio_config(GPIOA, 0u, GPIO_MODE_AF, 1u);
    gpio_config(GPIOA, 1u, GPIO_MODE_AF, 1u);
    TIM2->CR1 = 0u;
    TIM2->SMCR = TIM_SMCR_SMS_ENCODER3;
    TIM2->CCMR1 = TIM_CCMR1_CC1S_TI1 | TIM_CCMR1_CC2S_TI2;
    TIM2->CCER = 0u;
    TIM2->ARR = 0xFFFFFFFFu;
    TIM2->CNT = 0u;
    TIM2->CR1 = TIM_CR1_CEN;
}

void motor_set_duty(int32_t duty)
{
    uint32_t mag = duty < 0 ? (uint32_t)0 - (uint32_t)duty : (uint32_t)duty;
    if (mag > PWM_PERIOD_COUNTS) {
        mag = PWM_PERIOD_COUNTS;
    }
    if (duty < 0) {
        MOTOR_DIR_PORT->BSRR = 1u << (MOTOR_DIR_PIN + 16u);
    } else {
        MOTOR_DIR_PORT->BSRR = 1u << MOTOR_DIR_PIN;
    }
    TIM1->CCR1 = mag;
}

int32_t encoder_read(void) { return (int32_t)TIM2->CNT; }

void encoder_zero(void) { TIM2->CNT = 0u; }

void control_timer_init(void)
{
    RCC->APB1LENR |= RCC_APB1LENR_TIM6EN;
    (void)RCC->APB1LENR;
    TIM6->CR1 = TIM_CR1_URS;
    TIM6->PSC = TIMCLK_HZ / 1000000u - 1u;          /* 1 MHz */
    TIM6->ARR = 1000000u / CTRL_RATE_HZ - 1u;        /* 1 kHz */
    TIM6->EGR = TIM_EGR_UG;
    TIM6->SR = ~TIM_SR_UIF;
    TIM6->DIER = TIM_DIER_UIE;
    nvic_set_priority(IRQ_TIM6_DAC, PRIO_TIM6_CONTROL);
    nvic_enable(IRQ_TIM6_DAC);
    TIM6->CR1 = TIM_CR1_URS | TIM_CR1_CEN;
}

void control_timer_ack(void) { TIM6->SR = ~TIM_SR_UIF; }
