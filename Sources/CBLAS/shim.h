#ifndef FEDSWIFT_CBLAS_SHIM_H
#define FEDSWIFT_CBLAS_SHIM_H
#include <cblas.h>
#endif
