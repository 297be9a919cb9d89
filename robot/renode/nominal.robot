*** Settings ***
Documentation     Both firmwares boot in Renode and talk over duohil's link model (no faults).
...               Run with renode-test (ci/workflows/renode.yml); excluded from `make test`.
Resource          duohil.resource
Test Tags         renode    nominal

*** Test Cases ***
Both Machines Boot And The Link Carries Frames
    Create Duohil Machines    fixed    pooled-packed
    Wait For Line On Uart    BOOT    testerId=${STM32_CONSOLE}    timeout=1
    Wait For Line On Uart    BOOT    testerId=${PEER_CONSOLE}    timeout=1
    Execute Command    emulation RunFor "${RUN_TIME}"
    ${to_stm32}=    Monitor Integer    link FramesSent "peer->stm32"
    Should Be True    ${to_stm32} > 0    the peer sent no frame in ${RUN_TIME} s
