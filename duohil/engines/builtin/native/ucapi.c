/* Binding the unicorn C API (see ucapi.h). */
#define _GNU_SOURCE
#include "ucapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

duohil_ucapi UC;

#define STR_(x) #x
#define STR(x) STR_(x)

const char *duohil_uc_built_for(void)
{
    return STR(UC_API_MAJOR) "." STR(UC_API_MINOR) "." STR(UC_API_PATCH);
}

int duohil_uc_bind(void *handle, char *why, size_t why_len)
{
    duohil_ucapi t;
    memset(&t, 0, sizeof t);
#define RESOLVE(field, sym)                                                                    \
    do {                                                                                       \
        *(void **)&t.field = dlsym(handle, #sym);                                              \
        if (!t.field) {                                                                        \
            snprintf(why, why_len, "the loaded libunicorn has no %s (built for unicorn %s)",   \
                     #sym, duohil_uc_built_for());                                             \
            return -1;                                                                         \
        }                                                                                      \
    } while (0)
    RESOLVE(version, uc_version);
    RESOLVE(strerror, uc_strerror);
    RESOLVE(emu_start, uc_emu_start);
    RESOLVE(emu_stop, uc_emu_stop);
    RESOLVE(reg_read, uc_reg_read);
    RESOLVE(reg_write, uc_reg_write);
    RESOLVE(reg_read_batch, uc_reg_read_batch);
    RESOLVE(reg_write_batch, uc_reg_write_batch);
    RESOLVE(mem_read, uc_mem_read);
    RESOLVE(mem_write, uc_mem_write);
    RESOLVE(hook_add, uc_hook_add);
    RESOLVE(hook_del, uc_hook_del);
    RESOLVE(mmio_map, uc_mmio_map);               /* [cbus] */
    RESOLVE(mem_unmap, uc_mem_unmap);             /* [cbus] */
    RESOLVE(ctl, uc_ctl);                         /* [vtlb] */
    RESOLVE(mem_protect, uc_mem_protect);         /* [vtlb] */
#undef RESOLVE
    /* uc_version() gives major and minor only; the patch level sits in bits 15..8 of its result
     * (UC_VERSION_PATCH << 8 in unicorn's uc.c), and 2.1.3 -> 2.1.4 changed register ids. */
    unsigned int major = 0, minor = 0;
    unsigned int combined = t.version(&major, &minor);
    unsigned int patch = (combined >> 8) & 0xff;
    if (major != UC_API_MAJOR || minor != UC_API_MINOR || patch != UC_API_PATCH) {
        snprintf(why, why_len,
                 "the native core was built for unicorn %s but the loaded libunicorn is %u.%u.%u: "
                 "reinstall duohil (make setup) against the installed unicorn",
                 duohil_uc_built_for(), major, minor, patch);
        return -1;
    }
    UC = t;
    return 0;
}
