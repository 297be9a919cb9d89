# duohil top-level build. The two commands a user needs:
#   make demo   - set up, build every firmware image, run the crash-mode A/B matrix
#   make test   - set up, build every firmware image, run pytest + Robot, JUnit XML in reports/
# Both are idempotent: a second run reinstalls nothing and rebuilds nothing that is up to date.

PY      := .venv/bin/python
BUILD   := build
REPORTS := reports

FIRMWARE_DIRS := $(dir $(wildcard stm32_firmware/Makefile esp32_firmware/Makefile tests/fw/Makefile))

.PHONY: all setup firmware test demo bench bench-campaign clean help

all: firmware

help:
	@sed -n '2,5p' Makefile

setup:
	@bash ci/setup.sh

firmware: setup
	@set -e; for d in $(FIRMWARE_DIRS); do $(MAKE) --no-print-directory -C $$d; done

test: firmware
	@bash ci/test.sh

demo: firmware
	@bash ci/demo.sh

bench: firmware
	@$(PY) -m duohil.bench

bench-campaign: firmware
	@$(PY) -m duohil.bench --campaign

clean:
	rm -rf $(BUILD) $(REPORTS)
