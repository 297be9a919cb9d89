/* The unicorn C API as the Python `unicorn` package loaded it.
 *
 * Nothing here links against libunicorn: every function is resolved with dlsym() on the handle of
 * the library the `unicorn` package already loaded (one copy of the library, one uc_engine), and
 * the prototypes come from the unicorn headers shipped in the wheel we were built against.
 */
#ifndef DUOHIL_UCAPI_H
#define DUOHIL_UCAPI_H

#include <unicorn/unicorn.h>

typedef struct {
    __typeof__(uc_version) *version;
    __typeof__(uc_strerror) *strerror;
    __typeof__(uc_emu_start) *emu_start;
    __typeof__(uc_emu_stop) *emu_stop;
    __typeof__(uc_reg_read) *reg_read;
    __typeof__(uc_reg_write) *reg_write;
    __typeof__(uc_reg_read_batch) *reg_read_batch;
    __typeof__(uc_reg_write_batch) *reg_write_batch;
    __typeof__(uc_mem_read) *mem_read;
    __typeof__(uc_mem_write) *mem_write;
    __typeof__(uc_hook_add) *hook_add;
    __typeof__(uc_hook_del) *hook_del;
    /* [cbus] the MMIO bus (bus.c): runs of MMIO pages with C callbacks */
    __typeof__(uc_mmio_map) *mmio_map;
    __typeof__(uc_mem_unmap) *mem_unmap;
    /* [vtlb] the TLB fill (vtlb.c) */
    __typeof__(uc_ctl) *ctl;
    __typeof__(uc_mem_protect) *mem_protect;
} duohil_ucapi;

/* The table, valid once duohil_uc_bind() returned 0. */
extern duohil_ucapi UC;

/* Resolve the table on `handle` (a dlopen() handle) and check uc_version() against the headers'
 * UC_API_MAJOR/MINOR/PATCH. Returns 0, or -1 with a one-line reason in `why`. */
int duohil_uc_bind(void *handle, char *why, size_t why_len);

/* The version the headers describe, "major.minor.patch". */
const char *duohil_uc_built_for(void);

#endif
