*** Settings ***
Documentation     CM2 `resync` at the frame level: one corrupted LEN byte. The resync decoder
...               (FIX_RESYNC=1) drops the bad frame at the next idle gap and receives the next
...               frame; the field decoder (FIX_RESYNC=0) trusts the LEN and swallows it.
...               Pure protocol, no emulator: the same decoder the pytest suites hold to frame.c.
Library           ProtocolKeywords.py
Test Tags         protocol    cm2

*** Variables ***
${BAD_LEN}        42    # LEN 10 -> 42 (one bit): the frame claims 46 bytes

*** Test Cases ***
Resync Decoder Recovers The Frame After A Corrupted LEN
    ${first}=    Encode Setpoint Frame    seq=${1}    velocity=${1000}
    ${second}=    Encode Setpoint Frame    seq=${2}    velocity=${1500}
    ${bad}=    Corrupt LEN Of Frame    ${first}    len=${BAD_LEN}
    Start Resync Decoder
    Send Frame    ${bad}
    Send Frame    ${second}
    Decoder Should Not Have Delivered Setpoint 1
    Decoder Should Have Delivered Setpoint 2
    Decoder Counter idle_resets Should Be 1
    Decoder Counter frames_ok Should Be 1

Buggy Decoder Loses The Frame After A Corrupted LEN
    ${first}=    Encode Setpoint Frame    seq=${1}    velocity=${1000}
    ${second}=    Encode Setpoint Frame    seq=${2}    velocity=${1500}
    ${bad}=    Corrupt LEN Of Frame    ${first}    len=${BAD_LEN}
    Start Buggy Decoder
    Send Frame    ${bad}
    Send Frame    ${second}
    Decoder Should Not Have Delivered Setpoint 1
    Decoder Should Not Have Delivered Setpoint 2
    Decoder Counter frames_ok Should Be 0

Both Decoders Receive Clean Frames
    ${first}=    Encode Setpoint Frame    seq=${1}    velocity=${1000}
    ${second}=    Encode Setpoint Frame    seq=${2}    velocity=${1500}
    FOR    ${mode}    IN    Resync    Buggy
        Run Keyword    Start ${mode} Decoder
        Send Frame    ${first}
        Send Frame    ${second}
        Decoder Should Have Delivered Setpoint 1
        Decoder Should Have Delivered Setpoint 2
    END
