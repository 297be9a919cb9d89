*** Settings ***
Documentation     Your own firmware, first-class: an STM32H743 image that knows nothing of duohil
...               (tests/fw/m7/echo.c: no g_config, no status block, no crash record, no BOOT
...               line) boots alone, talks on its UARTs, and says in words how it ended.
...               Times are virtual. Build the image with `make firmware`.
Library           duohil.robot.DuoHil
Test Tags         own-firmware

*** Variables ***
${ECHO}           build/testfw/m7/echo.elf

*** Test Cases ***
My Image Prints Its Banner And Echoes What It Receives
    Start Firmware    ${ECHO}
    ${banner}=    Wait For Bytes On UART    usart3    ECHO READY\r\n    timeout=20 ms
    Should Be Equal    ${banner}    ECHO READY\r\n
    Write To UART    usart3    hello robot\r\n
    Wait For Bytes On UART    usart3    hello robot\r\n    timeout=5 ms
    UART Output Should Contain    usart1    own firmware: hello on usart1
    Run For    5 ms
    Diagnosis Should Contain    polling usart3.ISR
    Firmware Should Not Have Faulted
    Run Should Be Clean

A Regular Expression Matches The Echo
    Start Firmware    ${ECHO}
    Wait For Bytes On UART    usart3    READY    timeout=20 ms
    Write To UART    usart3    id=42;
    ${got}=    Wait For Bytes On UART    usart3    id=\\d+;    timeout=5 ms    regexp=True
    Should Be Equal    ${got}    id=42;

The Wrong Baud Is Named
    Start Firmware    ${ECHO}
    Wait For Bytes On UART    usart3    READY    timeout=20 ms
    Write To UART    usart3    hi    baud=9600
    Run For    5 ms
    Diagnosis Should Contain    baud mismatch
    ${out}=    Get UART Output    usart3
    Should Not Contain    ${out}    hi

A Fault Is Decoded In Words
    Start Firmware    ${ECHO}
    Wait For Bytes On UART    usart3    READY    timeout=20 ms
    Write To UART    usart3    !
    Run For    5 ms
    Diagnosis Should Contain    PRECISERR: precise data bus error at 0x90000000
    Crash Record Should Name Function    main
    Run Keyword And Expect Error    *the stm32 faulted*    Firmware Should Not Have Faulted
    Outcome Should Be    hardfault
