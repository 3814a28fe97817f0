#ifndef FEDSWIFT_DNNL_H
#define FEDSWIFT_DNNL_H
/*
 * The small C face of oneDNN that FedTensor uses: sgemm and cached 2-D convolution primitives on
 * plain NCHW / OIHW / [O] buffers. oneDNN's C API (2.x) needs a dozen objects per operation; this
 * shim keeps them behind one opaque handle per convolution shape, with the layout reorders that
 * let the JIT kernels run on their blocked formats while callers keep PyTorch's layouts.
 *
 * Threads: Debian's oneDNN runs on OpenMP. Every call takes the thread count it may use and sets
 * it for the calling thread only (omp_set_num_threads), so simulator workers stay single-threaded.
 * Every function returns 0 on success, or a oneDNN status (see fs_dnnl_status_string).
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** oneDNN's version as "major.minor.patch" and the ISA its JIT dispatches to on this CPU. */
const char *fs_dnnl_version(void);
const char *fs_dnnl_isa(void);
const char *fs_dnnl_status_string(int status);

/** Row-major C = alpha op(A) op(B) + beta C, as cblas_sgemm with CblasRowMajor. */
int fs_dnnl_sgemm(int threads, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/** Runs body(context, worker, workers) for worker = 0 ..< workers on the OpenMP team oneDNN's
 *  primitives use, so the engine's own parallel loops and the library's share one pool of threads
 *  (two pools on the same cores would spin against each other). Returns when every worker is done. */
void fs_parallel(int workers, void *context, void (*body)(void *context, int worker, int workers));

/** Shape of one convolution (groups 1, dilation 1), NCHW input, OIHW weight. */
typedef struct fs_conv_shape {
    int64_t batch, in_channels, in_height, in_width;
    int64_t out_channels, kernel_h, kernel_w;
    int64_t stride_h, stride_w, pad_h, pad_w;
    int has_bias;
    /** 1: forward for inference only; 0: forward training plus both backward passes. */
    int inference;
} fs_conv_shape;

typedef struct fs_conv fs_conv;

/** Creates the primitives for `shape` with `threads` OpenMP threads. *out is NULL on failure. */
int fs_conv_create(const fs_conv_shape *shape, int threads, fs_conv **out);
void fs_conv_destroy(fs_conv *conv);
/** Implementation name of the forward primitive, e.g. "jit:avx512_core". */
const char *fs_conv_impl(const fs_conv *conv, int pass);

/** dst[N,O,OH,OW] = conv(src, weight) + bias. */
int fs_conv_forward(fs_conv *conv, const float *src, const float *weight, const float *bias, float *dst);
/** Backward through the convolution of the last fs_conv_forward (same src and weight, unchanged
 *  since): diff_src[N,C,H,W] = dL/dx (overwritten; NULL to skip), diff_weight += dL/dW and
 *  diff_bias += dL/db (NULL to skip; diff_bias NULL without bias). */
int fs_conv_backward(fs_conv *conv, const float *src, const float *weight, const float *diff_dst, float *diff_src,
                     float *diff_weight, float *diff_bias);

#ifdef __cplusplus
}
#endif
#endif
