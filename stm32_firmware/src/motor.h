/* The axis hardware (motor.c): TIM1 CH1 PWM + DIR GPIO (PE10), TIM2 encoder, TIM6 1 kHz tick. */
#ifndef DUOHIL_MOTOR_H
#define DUOHIL_MOTOR_H

#include <stdint.h>

void motor_init(void);
/* Signed duty in PWM counts (|duty| <= PWM_PERIOD_COUNTS); 0 = motor off. */
void motor_set_duty(int32_t duty);
int32_t encoder_read(void);
void encoder_zero(void);
/* TIM6 update interrupt at CTRL_RATE_HZ; the handler is TIM6_DAC_IRQHandler (main.c). */
void control_timer_init(void);
void control_timer_ack(void);

#endif
