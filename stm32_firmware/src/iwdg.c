/* IWDG1: the HAL_IWDG_Init order (reference section 8). Timeout IWDG_TIMEOUT_MS (board.h). */
#include "iwdg.h"
#include "blocks.h"
#include "board.h"
#include "../regs/stm32h743.h"

uint32_t iwdg_start(void)
{
    IWDG1_KR = IWDG_KEY_START;
    IWDG1_KR = IWDG_KEY_UNLOCK;
    IWDG1_PR = IWDG_PR_DIV4;
    IWDG1_RLR = IWDG_RELOAD;
    uint32_t n = 0;
    while (IWDG1_SR != 0u && ++n < 100000u) {
    }
    IWDG1_KR = IWDG_KEY_RELOAD;
    return n < 100000u ? 0u : BOOTF_IWDG_TIMEOUT;
}

void iwdg_kick(void) { IWDG1_KR = IWDG_KEY_RELOAD; }
