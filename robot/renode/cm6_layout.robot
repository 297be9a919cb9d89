*** Settings ***
Documentation     CM6 `layout` on Renode: the peer built with the natural-layout serializer sends a
...               12-byte sensor report (flags at offset 8); a receiver expecting the packed 11-byte
...               layout reads flags from padding. The patch checks the payload length per type, so
...               the frame is rejected and counted, never misparsed. Needs nothing beyond the link.
Resource          duohil.resource
Test Tags         renode    cm6

*** Keywords ***
Run CM6
    [Arguments]    ${stm32_image}    ${peer_image}
    Create Duohil Machines    ${stm32_image}    ${peer_image}
    Boot Both And Run
    Require STM32 Link RX

*** Test Cases ***
CM6 Reproduces On Buggy
    Run CM6    buggy    pooled-natural
    Sensor Report Should Be Misparsed

CM6 Holds On Fixed
    Run CM6    fixed    pooled-natural
    Sensor Reports Should Never Be Misparsed
    ${rejected}=    Status Field    rejected
    Should Be True    ${rejected} > 0    the natural-layout frames were neither rejected nor misparsed

CM6 Reproduces On Fixed Without The Layout Fix
    Run CM6    fixed-no-layout    pooled-natural
    Sensor Report Should Be Misparsed

CM6 Packed Peer Is Decoded Correctly By Buggy
    Run CM6    buggy    pooled-packed
    Sensor Reports Should Never Be Misparsed
