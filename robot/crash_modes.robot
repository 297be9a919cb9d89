*** Settings ***
Documentation     Every crash mode of CRASH_MODES.md, both ways: each scenario file
...               (scenarios/*.yaml, found by its `crash_mode`) reproduces its crash on `buggy`,
...               holds on `fixed`, and reproduces again on `fixed-no-<fix>` (all fixes but that
...               one), so each patch is shown necessary and sufficient. The expected outcomes come
...               from the scenario's `expect`; a failure names the outcome, its evidence, the
...               decoded crash record and the run's timeline.
Library           duohil.robot.DuoHil
Test Tags         crash-mode

*** Test Cases ***
CM1 cmd_timeout: Reproduces On Buggy
    [Documentation]    a stale setpoint after a GC pause crashes the unpatched firmware
    [Tags]    cm1    buggy
    Run Crash Mode CM1 With Variant buggy
    Outcome Should Match The Scenario

CM1 cmd_timeout: Holds On Fixed
    [Tags]    cm1    fixed
    Run Crash Mode CM1 With Variant fixed
    Outcome Should Match The Scenario

CM1 cmd_timeout: Reproduces Without FIX_CMD_TIMEOUT
    [Tags]    cm1    fixed-no-fix
    Run Crash Mode CM1 With Variant fixed-no-cmd_timeout
    Outcome Should Match The Scenario

CM2 resync: Reproduces On Buggy
    [Documentation]    a corrupted frame crashes the unpatched firmware
    [Tags]    cm2    buggy
    Run Crash Mode CM2 With Variant buggy
    Outcome Should Match The Scenario

CM2 resync: Holds On Fixed
    [Tags]    cm2    fixed
    Run Crash Mode CM2 With Variant fixed
    Outcome Should Match The Scenario

CM2 resync: Reproduces Without FIX_RESYNC
    [Tags]    cm2    fixed-no-fix
    Run Crash Mode CM2 With Variant fixed-no-resync
    Outcome Should Match The Scenario

CM3 dcache: Reproduces On Buggy
    [Documentation]    DMA buffers in cacheable SRAM crashes the unpatched firmware
    [Tags]    cm3    buggy
    Run Crash Mode CM3 With Variant buggy
    Outcome Should Match The Scenario

CM3 dcache: Holds On Fixed
    [Tags]    cm3    fixed
    Run Crash Mode CM3 With Variant fixed
    Outcome Should Match The Scenario

CM3 dcache: Reproduces Without FIX_DCACHE
    [Tags]    cm3    fixed-no-fix
    Run Crash Mode CM3 With Variant fixed-no-dcache
    Outcome Should Match The Scenario

CM4 atomic: Reproduces On Buggy
    [Documentation]    a torn DMA position read crashes the unpatched firmware
    [Tags]    cm4    buggy
    Run Crash Mode CM4 With Variant buggy
    Outcome Should Match The Scenario

CM4 atomic: Holds On Fixed
    [Tags]    cm4    fixed
    Run Crash Mode CM4 With Variant fixed
    Outcome Should Match The Scenario

CM4 atomic: Reproduces Without FIX_ATOMIC
    [Tags]    cm4    fixed-no-fix
    Run Crash Mode CM4 With Variant fixed-no-atomic
    Outcome Should Match The Scenario

CM5 stack: Reproduces On Buggy
    [Documentation]    nested ISRs on a small stack crashes the unpatched firmware
    [Tags]    cm5    buggy
    Run Crash Mode CM5 With Variant buggy
    Outcome Should Match The Scenario

CM5 stack: Holds On Fixed
    [Tags]    cm5    fixed
    Run Crash Mode CM5 With Variant fixed
    Outcome Should Match The Scenario

CM5 stack: Reproduces Without FIX_STACK
    [Tags]    cm5    fixed-no-fix
    Run Crash Mode CM5 With Variant fixed-no-stack
    Outcome Should Match The Scenario

CM6 layout: Reproduces On Buggy
    [Documentation]    a naturally aligned peer struct crashes the unpatched firmware
    [Tags]    cm6    buggy
    Run Crash Mode CM6 With Variant buggy
    Outcome Should Match The Scenario

CM6 layout: Holds On Fixed
    [Tags]    cm6    fixed
    Run Crash Mode CM6 With Variant fixed
    Outcome Should Match The Scenario

CM6 layout: Reproduces Without FIX_LAYOUT
    [Tags]    cm6    fixed-no-fix
    Run Crash Mode CM6 With Variant fixed-no-layout
    Outcome Should Match The Scenario

CM7 fault_handler: Reproduces On Buggy
    [Documentation]    a silent fault handler crashes the unpatched firmware
    [Tags]    cm7    buggy
    Run Crash Mode CM7 With Variant buggy
    Outcome Should Match The Scenario

CM7 fault_handler: Holds On Fixed
    [Tags]    cm7    fixed
    Run Crash Mode CM7 With Variant fixed
    Outcome Should Match The Scenario
    Crash Record Should Name Function    main

CM7 fault_handler: Reproduces Without FIX_FAULT_HANDLER
    [Tags]    cm7    fixed-no-fix
    Run Crash Mode CM7 With Variant fixed-no-fault_handler
    Outcome Should Match The Scenario
