*** Settings ***
Documentation     CM2 `resync` on Renode: one flipped bit in a frame's LEN (10 -> 138). The patched
...               parser bounds LEN and rescans from SOF+1 (frames lost <= 2); the field parser waits
...               for 138 bytes and loses the frames inside them. Observed inside the first lap of the
...               STM32's 256-byte RX ring, because stock Renode's STM32DMA stops there (no CIRC).
...               Oracle (CRASH_MODES.md): frames lost <= 2.
Resource          duohil.resource
Test Tags         renode    cm2

*** Keywords ***
Run CM2
    [Arguments]    ${stm32_image}
    Create Duohil Machines    ${stm32_image}    pooled-packed
    Execute Command    link FrameFault "peer->stm32" 3 "LEN" "flip" 128
    Boot Both And Run
    Require STM32 Link RX
    ${lost}=    Frames Lost In First Ring Lap
    RETURN    ${lost}

*** Test Cases ***
CM2 Reproduces On Buggy
    ${lost}=    Run CM2    buggy
    Should Be True    ${lost} > 2    buggy lost only ${lost} frames: CM2 did not reproduce

CM2 Holds On Fixed
    ${lost}=    Run CM2    fixed
    Should Be True    ${lost} <= 2    fixed lost ${lost} frames after one corrupted LEN

CM2 Reproduces On Fixed Without The Resync Fix
    ${lost}=    Run CM2    fixed-no-resync
    Should Be True    ${lost} > 2    fixed-no-resync lost only ${lost} frames: FIX_RESYNC looks unnecessary
