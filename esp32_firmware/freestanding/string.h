/* The part of <string.h> the peer uses; the implementations are in libc.c (no C library is linked). */
#ifndef PEER_FREESTANDING_STRING_H
#define PEER_FREESTANDING_STRING_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int   memcmp(const void *a, const void *b, size_t n);

#endif
