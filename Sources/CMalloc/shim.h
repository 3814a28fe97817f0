#ifndef FEDSWIFT_CMALLOC_SHIM_H
#define FEDSWIFT_CMALLOC_SHIM_H
// glibc's allocator tuning (mallopt), for the coordinator's memory policy.
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif
#endif
