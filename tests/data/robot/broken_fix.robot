*** Settings ***
Documentation     The broken-fix demonstration, run from tests/test_pytest_plugin.py (not part of
...               robot/, since one test here fails on purpose): a scenario's `fixed`
...               expectation holds on fixed.elf and fails, naming the label and its evidence, on
...               an image built without that one fix.
Library           duohil.robot.DuoHil
Test Tags         broken-fix-demo

*** Variables ***
${SCENARIO}       ${CURDIR}/cm6_short.yaml

*** Test Cases ***
Fixed Holds
    Run Scenario ${SCENARIO} With Variant fixed
    Outcome Should Match The Scenario

Fixed Holds On A Build Without FIX_LAYOUT
    Run Scenario ${SCENARIO} With Variant fixed On Image fixed-no-layout
    Outcome Should Match The Scenario
