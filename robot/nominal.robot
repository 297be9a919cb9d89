*** Settings ***
Documentation     Both firmwares boot and run together without faults; the motor controller
...               follows the peer's commands inside its limits. Then a short GC pause on the
...               fixed firmware, which must be harmless. Runs on whichever engine is chosen
...               (DUOHIL_ENGINE, default builtin); times are virtual.
Library           duohil.robot.DuoHil
Test Tags         nominal

*** Test Cases ***
Both MCUs Boot And The Motor Controller Stays Within Limits
    Start Dual MCU Simulation    stm32=fixed    peer=pooled-packed
    Wait For Line On Console    BOOT    machine=stm32    timeout=100 ms
    Wait For Line On Console    BOOT    machine=peer    timeout=100 ms
    Run For    500 ms
    Motor Controller Should Stay Within Limits
    No Crash Should Be Recorded
    Run Should Be Clean

A Short GC Pause Does Not Disturb The Fixed Controller
    Start Dual MCU Simulation    stm32=fixed    peer=gc-packed
    Wait For Line On Console    LINK up    machine=stm32    timeout=100 ms
    Inject GC Pause Of 5 ms On Peer
    Run For    200 ms
    Motor Controller Should Stay Within Limits
    Status Field Should Be    estops    0
    No Crash Should Be Recorded

The Fixed Parser Rides Out A Corrupted Frame And A Late DMA Completion
    Start Dual MCU Simulation    stm32=fixed    peer=pooled-packed
    Corrupt Frame    3    field=LEN    bit=7
    Delay DMA Completion    stream=1    us=40
    Wait For Line On Console    LINK up    machine=stm32    timeout=100 ms
    Run For    150 ms
    Status Field Should Be At Least    resyncs    1
    Motor Controller Should Stay Within Limits
    Outcome Should Not Include    desync    hang    hardfault
    No Crash Should Be Recorded

The Fixed Fault Handler Records The Crash And Recovers
    Start Dual MCU Simulation    stm32=fixed    peer=pooled-packed
    Wait For Line On Console    LINK up    machine=stm32    timeout=100 ms
    Inject Bus Fault On STM32
    Wait For Line On Console    HARDFAULT    machine=stm32    timeout=20 ms
    Wait For Line On Console    BOOT    machine=stm32    timeout=100 ms
    Run For    50 ms
    Crash Record Should Name Function    main
    Outcome Should Not Include    hang
