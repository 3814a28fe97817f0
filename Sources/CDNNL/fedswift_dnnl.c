#include "fedswift_dnnl.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libgomp, which Debian's oneDNN is built against; declared here because clang ships no omp.h.
 * GOMP_parallel is what gcc compiles `#pragma omp parallel` to. */
extern void omp_set_num_threads(int);
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);
extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        dnnl_status_t status_ = (call);                                                                                \
        if (status_ != dnnl_success) return (int)status_;                                                              \
    } while (0)

/* MARK: - Library */

static dnnl_engine_t engine;
static dnnl_status_t engine_status;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

static dnnl_status_t shared_engine(dnnl_engine_t *out) {
    pthread_once(&engine_once, engine_init);
    *out = engine;
    return engine_status;
}

static char version_text[32];
static pthread_once_t version_once = PTHREAD_ONCE_INIT;

static void version_init(void) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(version_text, sizeof version_text, "%d.%d.%d", v->major, v->minor, v->patch);
}

const char *fs_dnnl_version(void) {
    pthread_once(&version_once, version_init);
    return version_text;
}

const char *fs_dnnl_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_all: return "all";
    default: return "unknown";
    }
}

const char *fs_dnnl_status_string(int status) { return dnnl_status2str((dnnl_status_t)status); }

int fs_dnnl_sgemm(int threads, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    omp_set_num_threads(threads);
    return (int)dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* MARK: - Parallel loops */

typedef struct {
    void *context;
    void (*body)(void *, int, int);
    int workers;
} team_job;

static void team_entry(void *data) {
    const team_job *job = data;
    /* The team can be smaller than asked (nested regions, limits): each thread takes every
     * team-size-th worker, so every worker runs exactly once. */
    int team = omp_get_num_threads();
    for (int w = omp_get_thread_num(); w < job->workers; w += team) job->body(job->context, w, job->workers);
}

void fs_parallel(int workers, void *context, void (*body)(void *context, int worker, int workers)) {
    team_job job = {context, body, workers};
    GOMP_parallel(team_entry, &job, (unsigned)workers, 0);
}

/* MARK: - Primitives */

/* A primitive with its own scratchpad (user-managed, so handles never share library state). */
typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t primitive;
    dnnl_memory_t scratchpad;
} step_t;

static dnnl_status_t user_scratchpad_attr(dnnl_primitive_attr_t *attr) {
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s != dnnl_success) return s;
    return dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
}

/* Takes ownership of `pd`. */
static dnnl_status_t step_init(step_t *step, dnnl_primitive_desc_t pd) {
    step->pd = pd;
    dnnl_status_t s = dnnl_primitive_create(&step->primitive, pd);
    if (s != dnnl_success) return s;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (md && dnnl_memory_desc_get_size(md) > 0) {
        dnnl_engine_t e;
        if ((s = shared_engine(&e)) != dnnl_success) return s;
        s = dnnl_memory_create(&step->scratchpad, md, e, DNNL_MEMORY_ALLOCATE);
    }
    return s;
}

static void step_destroy(step_t *step) {
    if (step->scratchpad) dnnl_memory_destroy(step->scratchpad);
    if (step->primitive) dnnl_primitive_destroy(step->primitive);
    if (step->pd) dnnl_primitive_desc_destroy(step->pd);
    memset(step, 0, sizeof *step);
}

static dnnl_status_t step_run(step_t *step, dnnl_stream_t stream, int nargs, dnnl_exec_arg_t *args) {
    if (step->scratchpad) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, step->scratchpad};
    dnnl_status_t s = dnnl_primitive_execute(step->primitive, stream, nargs, args);
    return s == dnnl_success ? dnnl_stream_wait(stream) : s;
}

/* A reorder from one layout to another; `accumulate` adds to the destination instead. */
static dnnl_status_t reorder_init(step_t *step, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                  int accumulate) {
    dnnl_engine_t e;
    dnnl_status_t s = shared_engine(&e);
    if (s != dnnl_success) return s;
    dnnl_primitive_attr_t attr;
    if ((s = user_scratchpad_attr(&attr)) != dnnl_success) return s;
    dnnl_post_ops_t ops = NULL;
    if (accumulate) {
        if ((s = dnnl_post_ops_create(&ops)) == dnnl_success && (s = dnnl_post_ops_append_sum(ops, 1.0f)) == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (s == dnnl_success) s = dnnl_reorder_primitive_desc_create(&pd, from, e, to, e, attr);
    if (ops) dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    return s == dnnl_success ? step_init(step, pd) : s;
}

/*
 * One operand of a primitive: the caller's plain buffer (`user`, its handle set per call) and,
 * when the primitive wants another layout, a buffer of the library's in that layout (`inner`)
 * with the reorder between the two.
 */
typedef struct {
    dnnl_memory_t user, inner;
    int plain; /* the primitive takes the user's layout: no inner buffer, no reorder */
    step_t reorder;
} operand_t;

/* `toward_primitive`: data flows user -> inner (inputs); otherwise inner -> user (outputs).
 * `accumulate` (outputs): always through an inner buffer, added onto the user's. */
static dnnl_status_t operand_init(operand_t *op, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *prim_md,
                                  int toward_primitive, int accumulate) {
    dnnl_engine_t e;
    dnnl_status_t s = shared_engine(&e);
    if (s != dnnl_success) return s;
    if ((s = dnnl_memory_create(&op->user, user_md, e, DNNL_MEMORY_NONE)) != dnnl_success) return s;
    op->plain = !accumulate && dnnl_memory_desc_equal(user_md, prim_md);
    if (op->plain) return dnnl_success;
    if ((s = dnnl_memory_create(&op->inner, prim_md, e, DNNL_MEMORY_ALLOCATE)) != dnnl_success) return s;
    return toward_primitive ? reorder_init(&op->reorder, user_md, prim_md, 0)
                            : reorder_init(&op->reorder, prim_md, user_md, accumulate);
}

static void operand_destroy(operand_t *op) {
    if (op->user) dnnl_memory_destroy(op->user);
    if (op->inner) dnnl_memory_destroy(op->inner);
    step_destroy(&op->reorder);
    memset(op, 0, sizeof *op);
}

/* The memory a primitive reads for an input operand, reordered from `data` when needed. */
static dnnl_status_t operand_in(operand_t *op, const float *data, dnnl_stream_t stream, dnnl_memory_t *out) {
    dnnl_status_t s = dnnl_memory_set_data_handle(op->user, (void *)data);
    if (s != dnnl_success) return s;
    if (op->plain) {
        *out = op->user;
        return dnnl_success;
    }
    *out = op->inner;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, op->user}, {DNNL_ARG_TO, op->inner}};
    return step_run(&op->reorder, stream, 2, args);
}

/* The memory a primitive writes for an output operand that ends in `data`. */
static dnnl_status_t operand_out(operand_t *op, float *data, dnnl_memory_t *out) {
    dnnl_status_t s = dnnl_memory_set_data_handle(op->user, data);
    *out = op->plain ? op->user : op->inner;
    return s;
}

/* Moves an output from the primitive's buffer into the user's (added when accumulating). */
static dnnl_status_t operand_finish(operand_t *op, dnnl_stream_t stream) {
    if (op->plain) return dnnl_success;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, op->inner}, {DNNL_ARG_TO, op->user}};
    return step_run(&op->reorder, stream, 2, args);
}

/* MARK: - Convolution */

struct fs_conv {
    fs_conv_shape shape;
    int threads;
    dnnl_stream_t stream;
    step_t forward, backward_data, backward_weights;
    /* forward */
    operand_t src, weight, dst;
    dnnl_memory_t bias;
    /* backward data */
    operand_t bd_diff_dst, bd_weight, bd_diff_src;
    /* backward weights */
    operand_t bw_src, bw_diff_dst, bw_diff_weight, bw_diff_bias;
    int bw_src_is_forward, bw_diff_dst_is_bd, bd_weight_is_forward;
};

static const char *impl_name(const step_t *step) {
    const char *name = NULL;
    if (!step->pd || dnnl_primitive_desc_query(step->pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success) return "";
    return name ? name : "";
}

const char *fs_conv_impl(const fs_conv *conv, int pass) {
    switch (pass) {
    case 0: return impl_name(&conv->forward);
    case 1: return impl_name(&conv->backward_data);
    default: return impl_name(&conv->backward_weights);
    }
}

void fs_conv_destroy(fs_conv *conv) {
    if (!conv) return;
    operand_t *ops[] = {&conv->src, &conv->weight, &conv->dst, &conv->bd_diff_dst, &conv->bd_weight,
                        &conv->bd_diff_src, &conv->bw_src, &conv->bw_diff_dst, &conv->bw_diff_weight,
                        &conv->bw_diff_bias};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) operand_destroy(ops[i]);
    if (conv->bias) dnnl_memory_destroy(conv->bias);
    step_destroy(&conv->forward);
    step_destroy(&conv->backward_data);
    step_destroy(&conv->backward_weights);
    if (conv->stream) dnnl_stream_destroy(conv->stream);
    free(conv);
}

static const dnnl_memory_desc_t *query(const step_t *step, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(step->pd, what, 0);
}

static int conv_build(fs_conv *c) {
    const fs_conv_shape *g = &c->shape;
    dnnl_engine_t e;
    CHECK(shared_engine(&e));
    CHECK(dnnl_stream_create(&c->stream, e, dnnl_stream_default_flags));
    int64_t oh = (g->in_height + 2 * g->pad_h - g->kernel_h) / g->stride_h + 1;
    int64_t ow = (g->in_width + 2 * g->pad_w - g->kernel_w) / g->stride_w + 1;
    dnnl_dims_t src_dims = {g->batch, g->in_channels, g->in_height, g->in_width};
    dnnl_dims_t weight_dims = {g->out_channels, g->in_channels, g->kernel_h, g->kernel_w};
    dnnl_dims_t bias_dims = {g->out_channels};
    dnnl_dims_t dst_dims = {g->batch, g->out_channels, oh, ow};
    dnnl_dims_t strides = {g->stride_h, g->stride_w};
    dnnl_dims_t pad_l = {g->pad_h, g->pad_w};
    /* PyTorch drops the rows and columns a stride does not reach; oneDNN wants them as padding. */
    dnnl_dims_t pad_r = {(oh - 1) * g->stride_h + g->kernel_h - g->in_height - g->pad_h,
                         (ow - 1) * g->stride_w + g->kernel_w - g->in_width - g->pad_w};

    dnnl_memory_desc_t src_user, weight_user, bias_user, dst_user, src_any, weight_any, dst_any;
    CHECK(dnnl_memory_desc_init_by_tag(&src_user, 4, src_dims, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&weight_user, 4, weight_dims, dnnl_f32, dnnl_oihw));
    CHECK(dnnl_memory_desc_init_by_tag(&bias_user, 1, bias_dims, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_user, 4, dst_dims, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&weight_any, 4, weight_dims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims, dnnl_f32, dnnl_format_tag_any));
    const dnnl_memory_desc_t *bias_md = g->has_bias ? &bias_user : NULL;

    dnnl_primitive_attr_t attr;
    CHECK(user_scratchpad_attr(&attr));
    dnnl_convolution_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_convolution_forward_desc_init(
        &desc, g->inference ? dnnl_forward_inference : dnnl_forward_training, dnnl_convolution_direct, &src_any,
        &weight_any, bias_md, &dst_any, strides, pad_l, pad_r);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, attr, e, NULL);
    if (s == dnnl_success) s = step_init(&c->forward, pd);
    if (s == dnnl_success) s = operand_init(&c->src, &src_user, query(&c->forward, dnnl_query_src_md), 1, 0);
    if (s == dnnl_success) s = operand_init(&c->weight, &weight_user, query(&c->forward, dnnl_query_weights_md), 1, 0);
    if (s == dnnl_success) s = operand_init(&c->dst, &dst_user, query(&c->forward, dnnl_query_dst_md), 0, 0);
    if (s == dnnl_success && g->has_bias) {
        /* Bias is one plain vector in every implementation; refuse anything else rather than reorder it. */
        s = dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(c->forward.pd, dnnl_query_weights_md, 1), &bias_user)
                ? dnnl_memory_create(&c->bias, &bias_user, e, DNNL_MEMORY_NONE)
                : dnnl_unimplemented;
    }
    if (s != dnnl_success || g->inference) {
        dnnl_primitive_attr_destroy(attr);
        return (int)s;
    }

    /* Backward data */
    pd = NULL;
    s = dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &src_any, &weight_any, &dst_any,
                                                 strides, pad_l, pad_r);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, attr, e, c->forward.pd);
    if (s == dnnl_success) s = step_init(&c->backward_data, pd);
    if (s == dnnl_success)
        s = operand_init(&c->bd_diff_dst, &dst_user, query(&c->backward_data, dnnl_query_diff_dst_md), 1, 0);
    /* Operands that a forward's buffer can serve get none of their own (no unused buffers). */
    if (s == dnnl_success)
        c->bd_weight_is_forward = !c->weight.plain && dnnl_memory_desc_equal(query(&c->backward_data, dnnl_query_weights_md),
                                                                              query(&c->forward, dnnl_query_weights_md));
    if (s == dnnl_success && !c->bd_weight_is_forward)
        s = operand_init(&c->bd_weight, &weight_user, query(&c->backward_data, dnnl_query_weights_md), 1, 0);
    if (s == dnnl_success)
        s = operand_init(&c->bd_diff_src, &src_user, query(&c->backward_data, dnnl_query_diff_src_md), 0, 0);

    /* Backward weights */
    pd = NULL;
    if (s == dnnl_success)
        s = dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &src_any, &weight_any, bias_md,
                                                        &dst_any, strides, pad_l, pad_r);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, attr, e, c->forward.pd);
    if (s == dnnl_success) s = step_init(&c->backward_weights, pd);
    if (s == dnnl_success)
        c->bw_src_is_forward = dnnl_memory_desc_equal(query(&c->backward_weights, dnnl_query_src_md),
                                                      query(&c->forward, dnnl_query_src_md));
    if (s == dnnl_success && !c->bw_src_is_forward)
        s = operand_init(&c->bw_src, &src_user, query(&c->backward_weights, dnnl_query_src_md), 1, 0);
    if (s == dnnl_success)
        s = operand_init(&c->bw_diff_dst, &dst_user, query(&c->backward_weights, dnnl_query_diff_dst_md), 1, 0);
    if (s == dnnl_success)
        s = operand_init(&c->bw_diff_weight, &weight_user, query(&c->backward_weights, dnnl_query_diff_weights_md), 0, 1);
    if (s == dnnl_success && g->has_bias)
        s = operand_init(&c->bw_diff_bias, &bias_user,
                         dnnl_primitive_desc_query_md(c->backward_weights.pd, dnnl_query_diff_weights_md, 1), 0, 1);
    if (s == dnnl_success)
        c->bw_diff_dst_is_bd = !c->bd_diff_dst.plain &&
                               dnnl_memory_desc_equal(query(&c->backward_weights, dnnl_query_diff_dst_md),
                                                      query(&c->backward_data, dnnl_query_diff_dst_md));
    dnnl_primitive_attr_destroy(attr);
    return (int)s;
}

int fs_conv_create(const fs_conv_shape *shape, int threads, fs_conv **out) {
    *out = NULL;
    fs_conv *c = calloc(1, sizeof *c);
    if (!c) return (int)dnnl_out_of_memory;
    c->shape = *shape;
    c->threads = threads < 1 ? 1 : threads;
    omp_set_num_threads(c->threads);
    int s = conv_build(c);
    if (s != 0) {
        fs_conv_destroy(c);
        return s;
    }
    *out = c;
    return 0;
}

int fs_conv_forward(fs_conv *c, const float *src, const float *weight, const float *bias, float *dst) {
    omp_set_num_threads(c->threads);
    dnnl_memory_t src_m, weight_m, dst_m;
    CHECK(operand_in(&c->src, src, c->stream, &src_m));
    CHECK(operand_in(&c->weight, weight, c->stream, &weight_m));
    CHECK(operand_out(&c->dst, dst, &dst_m));
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, weight_m}, {DNNL_ARG_DST, dst_m}};
    int n = 3;
    if (c->bias) {
        CHECK(dnnl_memory_set_data_handle(c->bias, (void *)bias));
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, c->bias};
    }
    CHECK(step_run(&c->forward, c->stream, n, args));
    return operand_finish(&c->dst, c->stream);
}

int fs_conv_backward(fs_conv *c, const float *src, const float *weight, const float *diff_dst, float *diff_src,
                     float *diff_weight, float *diff_bias) {
    if (c->shape.inference) return (int)dnnl_invalid_arguments;
    omp_set_num_threads(c->threads);
    dnnl_memory_t bd_diff_dst_m = NULL;
    if (diff_src) {
        dnnl_memory_t weight_m, diff_src_m;
        CHECK(operand_in(&c->bd_diff_dst, diff_dst, c->stream, &bd_diff_dst_m));
        if (c->bd_weight_is_forward) {
            weight_m = c->weight.inner; /* forward's reorder of the same weights */
        } else {
            CHECK(operand_in(&c->bd_weight, weight, c->stream, &weight_m));
        }
        CHECK(operand_out(&c->bd_diff_src, diff_src, &diff_src_m));
        dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_DIFF_DST, bd_diff_dst_m}, {DNNL_ARG_WEIGHTS, weight_m}, {DNNL_ARG_DIFF_SRC, diff_src_m}};
        CHECK(step_run(&c->backward_data, c->stream, 3, args));
        CHECK(operand_finish(&c->bd_diff_src, c->stream));
    }
    if (!diff_weight) return 0;
    dnnl_memory_t src_m, diff_dst_m, diff_weight_m, diff_bias_m = NULL;
    if (c->bw_src_is_forward) {
        /* forward's reorder of the same input, or the input itself */
        if (c->src.plain) {
            CHECK(dnnl_memory_set_data_handle(c->src.user, (void *)src));
            src_m = c->src.user;
        } else {
            src_m = c->src.inner;
        }
    } else {
        CHECK(operand_in(&c->bw_src, src, c->stream, &src_m));
    }
    if (bd_diff_dst_m && c->bw_diff_dst_is_bd) {
        diff_dst_m = bd_diff_dst_m;
    } else {
        CHECK(operand_in(&c->bw_diff_dst, diff_dst, c->stream, &diff_dst_m));
    }
    CHECK(operand_out(&c->bw_diff_weight, diff_weight, &diff_weight_m));
    dnnl_exec_arg_t args[6] = {
        {DNNL_ARG_SRC, src_m}, {DNNL_ARG_DIFF_DST, diff_dst_m}, {DNNL_ARG_DIFF_WEIGHTS, diff_weight_m}};
    int n = 3;
    if (c->shape.has_bias && diff_bias) {
        CHECK(operand_out(&c->bw_diff_bias, diff_bias, &diff_bias_m));
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, diff_bias_m};
    } else if (c->shape.has_bias) {
        /* The primitive computes the bias gradient whether or not it is wanted: write it to scratch. */
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, c->bw_diff_bias.inner};
    }
    CHECK(step_run(&c->backward_weights, c->stream, n, args));
    CHECK(operand_finish(&c->bw_diff_weight, c->stream));
    if (diff_bias_m) CHECK(operand_finish(&c->bw_diff_bias, c->stream));
    return 0;
}
