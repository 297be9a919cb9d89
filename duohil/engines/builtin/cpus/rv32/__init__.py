"""The RV32IMC peer core: the core (traps, CSRs, hang detection), the CLINT (mtime/mtimecmp,
MSIP) and the PLIC."""
