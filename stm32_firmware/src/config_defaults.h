/*
 * The defaults of the config block (g_config, blocks.h), in one place: main.c initialises g_config
 * and its fallback copy from it, the host tests build their controller from it.
 *
 * The numbers fit the emulator's default DC-motor plant (duohil/engines/builtin/board/plant.py
 * MotorParams: 20000 counts/s at 100 % duty, tau 20 ms, mechanical end stops at +-50000 counts):
 * soft limits inside the end stops, a maximum velocity below the plant's top speed (headroom for
 * the loop), feed-forward = 12000 PWM counts / 20000 counts/s. A scenario with another plant patches
 * the gains and limits in g_config.
 */
#ifndef DUOHIL_CONFIG_DEFAULTS_H
#define DUOHIL_CONFIG_DEFAULTS_H

#include "blocks.h"

#define CONFIG_DEFAULTS                                                                          \
    {                                                                                            \
        .magic = CONFIG_MAGIC, .version = CONFIG_VERSION, .size = (uint16_t)sizeof(stm32_config_t), \
        .link_baud = 115200u,                                                                    \
        .console_baud = 115200u,                                                                 \
        .freshness_ms = 20u,                                                                     \
        .soft_limit_min = -40000,                                                                \
        .soft_limit_max = 40000,                                                                 \
        .max_velocity = 15000,                                                                   \
        .max_accel = 100000,                                                                     \
        .following_error_max = 2000,                                                             \
        .kp = 786432,   /* 12.0 PWM counts per count */                                          \
        .ki = 3276800,  /* 50.0 PWM counts per count*s (i-term limited to duty_max / 8) */       \
        .kd = 39322,    /* 0.6 PWM counts per count/s */                                         \
        .kff = 39322,   /* 0.6 = 12000 PWM counts / 20000 counts/s */                            \
        .duty_max = 12000,                                                                       \
        .telemetry_period_ms = 10u,                                                              \
        .stat_period_ms = 1000u,                                                                 \
        .link_timeout_ms = 500u,                                                                 \
        .hold_decel = 400000,                                                                    \
    }

#endif
