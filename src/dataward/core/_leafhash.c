/* RFC 6962 leaf hashes and Merkle roots in bulk, with the GIL released and the work split over threads.
 *
 * The pure-Python twin is dataward/core/leafhash.py (used when this extension is not built); both give
 * byte-identical results, which tests/core/test_leafhash.py checks with hypothesis. No library is linked:
 * the SHA-256 compression function is below (x86 SHA extensions where the CPU has them, else portable C).
 *
 *   leaf = SHA-256(0x00 || record)        node = SHA-256(0x01 || left || right)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define HASH 32
#define MAX_THREADS 64
/* below this many bytes (or leaves) one thread does it all: starting threads would cost more */
#define MIN_PARALLEL_BYTES (1 << 20)
#define MIN_PARALLEL_LEAVES 8192
#define CHUNK_LEVEL 12 /* Merkle work unit: perfect subtrees of 4096 leaves (128 KiB of hashes) */

/* ---------------------------------------------------------------------------------------- SHA-256 */
/* FIPS 180-4 SHA-256. The inputs here are short (a record, or 65 bytes for a node), where a library's
   per-call set-up costs more than the hashing; so the compression function is called directly: the x86
   SHA extensions where the CPU has them, else portable C. Checked against hashlib (tests/core). */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* SHA-256(b""), the root of the empty tree */
static const unsigned char EMPTY_ROOT[HASH] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t st[8], const unsigned char *block, size_t nblocks) {
    for (; nblocks--; block += 64) {
        uint32_t w[64], a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
        for (int t = 0; t < 16; t++)
            w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 | (uint32_t)block[4 * t + 2] << 8 |
                   (uint32_t)block[4 * t + 3];
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        st[0] += a;
        st[1] += b;
        st[2] += c;
        st[3] += d;
        st[4] += e;
        st[5] += f;
        st[6] += g;
        st[7] += h;
    }
}

#ifdef HAVE_X86
/* The SHA-NI form of the same function (the published pattern of Intel's SHA extensions reference). */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t st[8], const unsigned char *block,
                                                                     size_t nblocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&st[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&st[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);          /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);            /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);    /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);         /* CDGH */
    for (; nblocks--; block += 64) {
        __m128i abef = s0, cdgh = s1, x[4], msg;
        for (int j = 0; j < 16; j++) {
            __m128i cur;
            if (j < 4) {
                cur = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * j)), mask);
            } else {
                /* W[t] = W[t-16] + s0(W[t-15]) + W[t-7] + s1(W[t-2]) for four t at a time */
                __m128i a = _mm_sha256msg1_epu32(x[j & 3], x[(j + 1) & 3]);
                a = _mm_add_epi32(a, _mm_alignr_epi8(x[(j + 3) & 3], x[(j + 2) & 3], 4));
                cur = _mm_sha256msg2_epu32(a, x[(j + 3) & 3]);
            }
            x[j & 3] = cur;
            msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&K[4 * j]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            msg = _mm_shuffle_epi32(msg, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);   /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);    /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0); /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);    /* ABEF */
    _mm_storeu_si128((__m128i *)&st[0], s0);
    _mm_storeu_si128((__m128i *)&st[4], s1);
}

/* Two independent messages of the same block count at once: sha256rnds2 is latency-bound, so a second
   stream fills the pipeline (about 1.6-1.9x the blocks per second of one stream for short records). */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani_x2(uint32_t sta[8], uint32_t stb[8],
                                                                        const unsigned char *ba,
                                                                        const unsigned char *bb, size_t nblocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i ta = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sta[0]), 0xB1);
    __m128i a1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sta[4]), 0x1B);
    __m128i a0 = _mm_alignr_epi8(ta, a1, 8);
    a1 = _mm_blend_epi16(a1, ta, 0xF0);
    __m128i tb = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&stb[0]), 0xB1);
    __m128i b1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&stb[4]), 0x1B);
    __m128i b0 = _mm_alignr_epi8(tb, b1, 8);
    b1 = _mm_blend_epi16(b1, tb, 0xF0);
    for (; nblocks--; ba += 64, bb += 64) {
        __m128i sa0 = a0, sa1 = a1, sb0 = b0, sb1 = b1, xa[4], xb[4];
        for (int j = 0; j < 16; j++) {
            __m128i ca, cb;
            if (j < 4) {
                ca = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(ba + 16 * j)), mask);
                cb = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(bb + 16 * j)), mask);
            } else {
                __m128i u = _mm_sha256msg1_epu32(xa[j & 3], xa[(j + 1) & 3]);
                __m128i v = _mm_sha256msg1_epu32(xb[j & 3], xb[(j + 1) & 3]);
                u = _mm_add_epi32(u, _mm_alignr_epi8(xa[(j + 3) & 3], xa[(j + 2) & 3], 4));
                v = _mm_add_epi32(v, _mm_alignr_epi8(xb[(j + 3) & 3], xb[(j + 2) & 3], 4));
                ca = _mm_sha256msg2_epu32(u, xa[(j + 3) & 3]);
                cb = _mm_sha256msg2_epu32(v, xb[(j + 3) & 3]);
            }
            xa[j & 3] = ca;
            xb[j & 3] = cb;
            const __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * j]);
            __m128i ma = _mm_add_epi32(ca, k), mb = _mm_add_epi32(cb, k);
            a1 = _mm_sha256rnds2_epu32(a1, a0, ma);
            b1 = _mm_sha256rnds2_epu32(b1, b0, mb);
            ma = _mm_shuffle_epi32(ma, 0x0E);
            mb = _mm_shuffle_epi32(mb, 0x0E);
            a0 = _mm_sha256rnds2_epu32(a0, a1, ma);
            b0 = _mm_sha256rnds2_epu32(b0, b1, mb);
        }
        a0 = _mm_add_epi32(a0, sa0);
        a1 = _mm_add_epi32(a1, sa1);
        b0 = _mm_add_epi32(b0, sb0);
        b1 = _mm_add_epi32(b1, sb1);
    }
    ta = _mm_shuffle_epi32(a0, 0x1B);
    a1 = _mm_shuffle_epi32(a1, 0xB1);
    _mm_storeu_si128((__m128i *)&sta[0], _mm_blend_epi16(ta, a1, 0xF0));
    _mm_storeu_si128((__m128i *)&sta[4], _mm_alignr_epi8(a1, ta, 8));
    tb = _mm_shuffle_epi32(b0, 0x1B);
    b1 = _mm_shuffle_epi32(b1, 0xB1);
    _mm_storeu_si128((__m128i *)&stb[0], _mm_blend_epi16(tb, b1, 0xF0));
    _mm_storeu_si128((__m128i *)&stb[4], _mm_alignr_epi8(b1, tb, 8));
}

/* Four independent messages of the same block count at once: on the AMD EPYC measured (ADR 0058) two
   streams still leave the SHA unit idle part of the time (one stream 36-37 ns a block, two 27-29, four 20,
   same run). The message schedule of four streams does not fit the 16 XMM registers the SHA instructions
   can use; the spills go to L1 and cost less than the idle rounds. */
#define LANES 4
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani_x4(uint32_t *st[LANES],
                                                                        const unsigned char *b[LANES],
                                                                        size_t nblocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i s0[LANES], s1[LANES];
    for (int i = 0; i < LANES; i++) {
        __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[i][0]), 0xB1);
        s1[i] = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[i][4]), 0x1B);
        s0[i] = _mm_alignr_epi8(t, s1[i], 8);
        s1[i] = _mm_blend_epi16(s1[i], t, 0xF0);
    }
    for (size_t blk = 0; blk < nblocks; blk++) {
        __m128i a0[LANES], a1[LANES], x[LANES][4];
        for (int i = 0; i < LANES; i++) {
            a0[i] = s0[i];
            a1[i] = s1[i];
        }
        for (int j = 0; j < 16; j++) {
            const __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * j]);
            __m128i m[LANES];
            for (int i = 0; i < LANES; i++) {
                __m128i c;
                if (j < 4) {
                    c = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b[i] + 64 * blk + 16 * j)), mask);
                } else {
                    __m128i u = _mm_sha256msg1_epu32(x[i][j & 3], x[i][(j + 1) & 3]);
                    u = _mm_add_epi32(u, _mm_alignr_epi8(x[i][(j + 3) & 3], x[i][(j + 2) & 3], 4));
                    c = _mm_sha256msg2_epu32(u, x[i][(j + 3) & 3]);
                }
                x[i][j & 3] = c;
                m[i] = _mm_add_epi32(c, k);
            }
            for (int i = 0; i < LANES; i++)
                s1[i] = _mm_sha256rnds2_epu32(s1[i], s0[i], m[i]);
            for (int i = 0; i < LANES; i++)
                m[i] = _mm_shuffle_epi32(m[i], 0x0E);
            for (int i = 0; i < LANES; i++)
                s0[i] = _mm_sha256rnds2_epu32(s0[i], s1[i], m[i]);
        }
        for (int i = 0; i < LANES; i++) {
            s0[i] = _mm_add_epi32(s0[i], a0[i]);
            s1[i] = _mm_add_epi32(s1[i], a1[i]);
        }
    }
    for (int i = 0; i < LANES; i++) {
        __m128i t = _mm_shuffle_epi32(s0[i], 0x1B);
        __m128i u = _mm_shuffle_epi32(s1[i], 0xB1);
        _mm_storeu_si128((__m128i *)&st[i][0], _mm_blend_epi16(t, u, 0xF0));
        _mm_storeu_si128((__m128i *)&st[i][4], _mm_alignr_epi8(u, t, 8));
    }
}

static int cpu_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
}
#endif

typedef void (*compress_fn)(uint32_t st[8], const unsigned char *block, size_t nblocks);
static compress_fn compress = compress_portable;

static void compress_portable_x2(uint32_t sta[8], uint32_t stb[8], const unsigned char *ba, const unsigned char *bb,
                                 size_t nblocks) {
    compress_portable(sta, ba, nblocks);
    compress_portable(stb, bb, nblocks);
}

typedef void (*compress2_fn)(uint32_t sta[8], uint32_t stb[8], const unsigned char *ba, const unsigned char *bb,
                             size_t nblocks);
static compress2_fn compress2 = compress_portable_x2;

#ifndef LANES
#define LANES 4
#endif
static void compress_portable_x4(uint32_t *st[LANES], const unsigned char *b[LANES], size_t nblocks) {
    for (int i = 0; i < LANES; i++)
        compress_portable(st[i], b[i], nblocks);
}

typedef void (*compress4_fn)(uint32_t *st[LANES], const unsigned char *b[LANES], size_t nblocks);
static compress4_fn compress4 = compress_portable_x4;

/* SHA-256(prefix || data) for a one-byte prefix, written to out */
static void sha256_prefixed(unsigned char prefix, const unsigned char *data, size_t len, unsigned char *out) {
    uint32_t st[8];
    unsigned char buf[128];
    memcpy(st, H0, sizeof st);
    uint64_t bits = ((uint64_t)len + 1) * 8;
    buf[0] = prefix;
    size_t head = len < 63 ? len : 63;
    memcpy(buf + 1, data, head);
    size_t used = 1 + head;
    if (used == 64) {
        compress(st, buf, 1);
        data += 63;
        len -= 63;
        size_t full = len / 64;
        if (full)
            compress(st, data, full);
        data += 64 * full;
        len -= 64 * full;
        memcpy(buf, data, len);
        used = len;
    }
    /* padding: 0x80, zeros, 64-bit big-endian bit length; one or two blocks */
    buf[used++] = 0x80;
    size_t total = used + 8 <= 64 ? 64 : 128;
    memset(buf + used, 0, total - 8 - used);
    for (int i = 0; i < 8; i++)
        buf[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    compress(st, buf, total / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(st[i] >> 24);
        out[4 * i + 1] = (unsigned char)(st[i] >> 16);
        out[4 * i + 2] = (unsigned char)(st[i] >> 8);
        out[4 * i + 3] = (unsigned char)st[i];
    }
}

static void leaf(const unsigned char *data, size_t len, unsigned char *out) { sha256_prefixed(0, data, len, out); }

static void node(const unsigned char *left, const unsigned char *right, unsigned char *out) {
    unsigned char buf[2 * HASH];
    memcpy(buf, left, HASH);
    memcpy(buf + HASH, right, HASH);
    sha256_prefixed(1, buf, sizeof buf, out);
}

static void store_digest(const uint32_t st[8], unsigned char *out) {
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(st[i] >> 24);
        out[4 * i + 1] = (unsigned char)(st[i] >> 16);
        out[4 * i + 2] = (unsigned char)(st[i] >> 8);
        out[4 * i + 3] = (unsigned char)st[i];
    }
}

/* A short message (prefix || data, len <= SHORT_MAX) padded into buf: returns its block count (1 or 2). */
#define SHORT_MAX 118
static int pad_short(unsigned char prefix, const unsigned char *data, size_t len, unsigned char buf[128]) {
    uint64_t bits = ((uint64_t)len + 1) * 8;
    buf[0] = prefix;
    memcpy(buf + 1, data, len);
    size_t used = len + 1;
    buf[used++] = 0x80;
    size_t total = used + 8 <= 64 ? 64 : 128;
    memset(buf + used, 0, total - 8 - used);
    for (int i = 0; i < 8; i++)
        buf[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    return (int)(total / 64);
}

/* Leaf hashes four at a time: a short record waits, padded, with others of the same block count (one or
   two) until there are LANES of them, which are compressed together; at the end the rest go two and one at a
   time. Outputs are offsets into a caller's buffer (which may move between calls, so it is passed each
   time). */
typedef struct {
    unsigned char buf[2][LANES][128]; /* by block count - 1 */
    size_t at[2][LANES];              /* output offsets of the waiting records */
    int n[2];                         /* how many wait */
} batcher;

static void batch_run(batcher *bt, int cls, unsigned char *base) {
    const size_t nb = (size_t)cls + 1;
    int k = bt->n[cls], i = 0;
    uint32_t st[LANES][8];
    for (int j = 0; j < k; j++)
        memcpy(st[j], H0, sizeof st[j]);
    if (k == LANES) {
        uint32_t *sp[LANES];
        const unsigned char *bp[LANES];
        for (int j = 0; j < LANES; j++) {
            sp[j] = st[j];
            bp[j] = bt->buf[cls][j];
        }
        compress4(sp, bp, nb);
        i = LANES;
    }
    for (; i + 1 < k; i += 2)
        compress2(st[i], st[i + 1], bt->buf[cls][i], bt->buf[cls][i + 1], nb);
    if (i < k)
        compress(st[i], bt->buf[cls][i], nb);
    for (int j = 0; j < k; j++)
        store_digest(st[j], base + bt->at[cls][j]);
    bt->n[cls] = 0;
}

static void batch_flush(batcher *bt, unsigned char *base) {
    for (int cls = 0; cls < 2; cls++)
        if (bt->n[cls])
            batch_run(bt, cls, base);
}

static void batch_leaf(batcher *bt, const unsigned char *data, size_t len, unsigned char *base, size_t at) {
    if (len > SHORT_MAX) {
        leaf(data, len, base + at);
        return;
    }
    int cls = len + 10 <= 64 ? 0 : 1; /* 0x00, the record, 0x80 and the 8-byte length in one block or two */
    int k = bt->n[cls];
    pad_short(0, data, len, bt->buf[cls][k]);
    bt->at[cls][k] = at;
    if ((bt->n[cls] = k + 1) == LANES)
        batch_run(bt, cls, base);
}

/* An interior node's message, 0x01 || left || right, is 65 bytes: two blocks whose last 63 bytes (padding
   and the bit length 520) are always the same. A node buffer is set up once and then takes only the 64
   bytes of each pair of children. */
static void node_buffer(unsigned char b[128]) {
    memset(b, 0, 128);
    b[0] = 1;
    b[1 + 2 * HASH] = 0x80;
    b[126] = 0x02; /* 520 = 0x0208 bits */
    b[127] = 0x08;
}

/* two interior nodes at once, in buffers made by node_buffer */
static void node_x2(const unsigned char *l1, const unsigned char *l2, unsigned char *out1, unsigned char *out2,
                    unsigned char b1[128], unsigned char b2[128]) {
    memcpy(b1 + 1, l1, 2 * HASH); /* left and right are adjacent in a level */
    memcpy(b2 + 1, l2, 2 * HASH);
    uint32_t sa[8], sb[8];
    memcpy(sa, H0, sizeof sa);
    memcpy(sb, H0, sizeof sb);
    compress2(sa, sb, b1, b2, 2);
    store_digest(sa, out1);
    store_digest(sb, out2);
}

/* four interior nodes at once: children at l (4 adjacent pairs), parents to out (4 adjacent hashes), in
   buffers made by node_buffer */
static void node_x4(const unsigned char *l, unsigned char *out, unsigned char b[LANES][128]) {
    uint32_t st[LANES][8];
    uint32_t *sp[LANES];
    const unsigned char *bp[LANES];
    for (int i = 0; i < LANES; i++) {
        memcpy(b[i] + 1, l + 2 * HASH * i, 2 * HASH);
        memcpy(st[i], H0, sizeof st[i]);
        sp[i] = st[i];
        bp[i] = b[i];
    }
    compress4(sp, bp, 2);
    for (int i = 0; i < LANES; i++)
        store_digest(st[i], out + HASH * i);
}

/* ------------------------------------------------------------------------------------------ threads */

typedef void *(*work_fn)(void *);

/* Run fn(args[i]) for i < n: n - 1 new threads, the last in the calling thread. A thread that cannot be
   started has its share done by the calling thread: results stay correct, only slower. */
static void run_parallel(work_fn fn, void *args, size_t stride, int n) {
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS];
    for (int i = 0; i < n - 1; i++)
        started[i] = pthread_create(&tid[i], NULL, fn, (char *)args + (size_t)i * stride) == 0;
    fn((char *)args + (size_t)(n - 1) * stride);
    for (int i = 0; i < n - 1; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            fn((char *)args + (size_t)i * stride);
    }
}

static int clamp_threads(int threads) {
    if (threads < 1)
        return 1;
    return threads > MAX_THREADS ? MAX_THREADS : threads;
}

/* ------------------------------------------------------------------------------------- line records */

typedef struct {
    const unsigned char *begin, *end; /* a range of lines; end is a line start or the block's end */
    unsigned char *out;               /* malloc'ed leaf hashes */
    size_t count, cap;
    int oom;
    /* checks of a delimited file (delim < 0: none): the first line (in this range) that is not valid UTF-8,
       that has another number of delimiters than ndelims, or that holds the quote byte or a lone CR
       (not plain: the range stops there, the caller parses such a file another way) */
    int delim, quote;
    size_t ndelims, shape_got;
    const unsigned char *bad_utf8, *bad_shape, *not_plain;
    size_t newlines; /* LF bytes passed */
} lines_job;

/* strict UTF-8 as Python decodes it: no overlong forms, no surrogates, nothing above U+10FFFF */
static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (!(v & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
        } else if (c < 0xC2) {
            return 0;
        } else if (c < 0xE0) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c < 0xF0) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0))
                return 0;
            i += 3;
        } else if (c < 0xF5) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] >= 0x90))
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* the checks of one record line [p, p + len) (its trailing CR already dropped); 1: not plain, stop */
static int check_line(lines_job *j, const unsigned char *p, size_t len) {
    const unsigned char d = (unsigned char)j->delim, q = (unsigned char)(j->quote >= 0 ? j->quote : '\r');
    size_t nd = 0;
    unsigned char acc = 0, odd = 0;
    for (size_t k0 = 0; k0 < len; k0 += 255) { /* byte counters: the compiler vectorises this */
        size_t k1 = len - k0 > 255 ? k0 + 255 : len;
        unsigned char c = 0;
        for (size_t k = k0; k < k1; k++) {
            unsigned char b = p[k];
            c += b == d;
            odd |= (b == q) | (b == '\r');
            acc |= b;
        }
        nd += c;
    }
    if (odd) {
        j->not_plain = p;
        return 1;
    }
    if ((acc & 0x80) && !j->bad_utf8 && !utf8_valid(p, len))
        j->bad_utf8 = p;
    if (nd != j->ndelims && !j->bad_shape) {
        j->bad_shape = p;
        j->shape_got = nd;
    }
    return 0;
}

#ifdef HAVE_X86
#include <emmintrin.h>
/* The LF search and the checks of a delimited line in one SSE2 pass (a memchr then a byte loop read each
   line twice: 15 % of the records path, ADR 0095). Scans from p to the first LF (or end) and returns it,
   with the counts of delimiters and CRs before it and whether a quote or a byte >= 0x80 occurs there. */
typedef struct {
    size_t delims, crs;
    unsigned quotes, high;
} line_scan;

__attribute__((target("popcnt"))) static const unsigned char *scan_line_sse2(const unsigned char *p,
                                                                           const unsigned char *end,
                                                                           unsigned char d, unsigned char q,
                                                                           line_scan *out) {
    const __m128i vn = _mm_set1_epi8('\n'), vd = _mm_set1_epi8((char)d), vq = _mm_set1_epi8((char)q),
                  vr = _mm_set1_epi8('\r');
    size_t nd = 0, ncr = 0;
    unsigned mq_all = 0, mh_all = 0;
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        unsigned mn = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vn));
        unsigned md = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vd));
        unsigned mr = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vr));
        unsigned mq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vq));
        unsigned mh = (unsigned)_mm_movemask_epi8(x);
        if (mn) {
            unsigned before = (mn & (0u - mn)) - 1u; /* the bytes before the first LF */
            nd += (size_t)__builtin_popcount(md & before);
            ncr += (size_t)__builtin_popcount(mr & before);
            mq_all |= mq & before;
            mh_all |= mh & before;
            p += __builtin_ctz(mn);
            goto found;
        }
        nd += (size_t)__builtin_popcount(md);
        ncr += (size_t)__builtin_popcount(mr);
        mq_all |= mq;
        mh_all |= mh;
        p += 16;
    }
    for (; p < end && *p != '\n'; p++) {
        nd += *p == d;
        ncr += *p == '\r';
        mq_all |= *p == q;
        mh_all |= *p & 0x80;
    }
found:
    out->delims = nd;
    out->crs = ncr;
    out->quotes = mq_all;
    out->high = mh_all;
    return p;
}

static int cpu_has_popcnt(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_POPCNT);
}
/* 1: the SSE2 scan (x86 with POPCNT); 0: memchr and check_line. set_line_scan() switches (tests run both). */
static int simd_scan = -1;
#endif

/* grow a job's leaf buffer for one more leaf; 0: out of memory */
static int room_for_leaf(lines_job *j) {
    if (j->count < j->cap)
        return 1;
    size_t cap = j->cap ? 2 * j->cap : 4096;
    unsigned char *grown = realloc(j->out, cap * HASH);
    if (!grown) {
        j->oom = 1;
        return 0;
    }
    j->out = grown;
    j->cap = cap;
    return 1;
}

/* A line is [p, newline or end), one trailing CR dropped (CRLF folded to LF); empty lines are not records. */
static void *hash_lines(void *arg) {
    lines_job *j = arg;
    const unsigned char *p = j->begin, *end = j->end;
    batcher bt = {.n = {0, 0}};
#ifdef HAVE_X86
    /* the fused scan reads a CR as a CRLF's or a lone one by its position: not for LF or CR as the
       delimiter or the quote (then the byte loop below, which gives the same results) */
    if (j->delim >= 0 && simd_scan == 1 && j->delim != '\n' && j->delim != '\r' && j->quote != '\n' &&
        j->quote != '\r') {
        const unsigned char d = (unsigned char)j->delim;
        const int quoted = j->quote >= 0;
        const unsigned char q = quoted ? (unsigned char)j->quote : (unsigned char)'\n';
        while (p < end) {
            line_scan sc;
            const unsigned char *stop = scan_line_sse2(p, end, d, q, &sc);
            size_t len = (size_t)(stop - p);
            size_t trailing_cr = len && p[len - 1] == '\r';
            len -= trailing_cr;
            if (len) {
                if ((quoted && sc.quotes) || sc.crs != trailing_cr) {
                    j->not_plain = p;
                    break;
                }
                if (sc.high && !j->bad_utf8 && !utf8_valid(p, len))
                    j->bad_utf8 = p;
                if (sc.delims != j->ndelims && !j->bad_shape) {
                    j->bad_shape = p;
                    j->shape_got = sc.delims;
                }
                if (!room_for_leaf(j))
                    return NULL;
                batch_leaf(&bt, p, len, j->out, HASH * j->count++);
            }
            j->newlines += stop < end;
            p = stop < end ? stop + 1 : end;
        }
        batch_flush(&bt, j->out);
        return NULL;
    }
#endif
    while (p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        const unsigned char *stop = nl ? nl : end;
        size_t len = (size_t)(stop - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len) {
            if (j->delim >= 0 && check_line(j, p, len))
                break;
            if (!room_for_leaf(j))
                return NULL;
            batch_leaf(&bt, p, len, j->out, HASH * j->count++);
        }
        j->newlines += nl != NULL;
        p = nl ? nl + 1 : end;
    }
    batch_flush(&bt, j->out);
    return NULL;
}

typedef struct {
    unsigned char *dst;
    const unsigned char *src;
    size_t len;
} copy_job;

static void *copy_leaves(void *arg) {
    copy_job *c = arg;
    if (c->len)
        memcpy(c->dst, c->src, c->len);
    return NULL;
}

static PyObject *line_leaves_impl(PyObject *args, int checked) {
    Py_buffer view;
    int skip_header, threads, delim = -1, quote = -1;
    Py_ssize_t ndelims = 0;
    if (checked ? !PyArg_ParseTuple(args, "y*piini", &view, &skip_header, &threads, &delim, &ndelims, &quote)
                : !PyArg_ParseTuple(args, "y*pi", &view, &skip_header, &threads))
        return NULL;
    if (checked && (delim < 0 || delim > 255 || quote > 255 || ndelims < 0)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "delimiter and quote must be byte values, ndelims >= 0");
        return NULL;
    }
    const unsigned char *base = view.buf, *start = base, *end = start + view.len;
    int skipped = 0;
    lines_job jobs[MAX_THREADS];
    int n = 0, oom = 0;
    size_t header_newlines = 0;
    Py_BEGIN_ALLOW_THREADS
    if (skip_header) {
        /* the header is the first non-blank line */
        while (start < end) {
            const unsigned char *nl = memchr(start, '\n', (size_t)(end - start));
            const unsigned char *stop = nl ? nl : end;
            size_t len = (size_t)(stop - start);
            int blank = len == 0 || (len == 1 && start[0] == '\r');
            header_newlines += nl != NULL;
            start = nl ? nl + 1 : end;
            if (!blank) {
                skipped = 1;
                break;
            }
        }
    }
    size_t total = (size_t)(end - start);
    n = total < MIN_PARALLEL_BYTES ? 1 : clamp_threads(threads);
    const unsigned char *p = start;
    for (int i = 0; i < n; i++) {
        const unsigned char *cut = end;
        if (i < n - 1) {
            cut = start + total / (size_t)n * (size_t)(i + 1);
            if (cut < p)
                cut = p;
            const unsigned char *nl = cut < end ? memchr(cut, '\n', (size_t)(end - cut)) : NULL;
            cut = nl ? nl + 1 : end;
        }
        jobs[i] = (lines_job){p, cut, NULL, 0, 0, 0, checked ? delim : -1, quote, (size_t)ndelims, 0, NULL, NULL, NULL, 0};
        p = cut;
    }
    run_parallel(hash_lines, jobs, sizeof jobs[0], n);
    for (int i = 0; i < n; i++)
        oom |= jobs[i].oom;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    size_t count = 0, newlines = header_newlines;
    Py_ssize_t bad_utf8 = -1, bad_shape = -1, shape_got = 0, not_plain = -1;
    for (int i = 0; i < n; i++) {
        count += jobs[i].count;
        newlines += jobs[i].newlines;
        if (bad_utf8 < 0 && jobs[i].bad_utf8)
            bad_utf8 = jobs[i].bad_utf8 - base;
        if (bad_shape < 0 && jobs[i].bad_shape) {
            bad_shape = jobs[i].bad_shape - base;
            shape_got = (Py_ssize_t)jobs[i].shape_got;
        }
        if (not_plain < 0 && jobs[i].not_plain)
            not_plain = jobs[i].not_plain - base;
    }
    PyObject *out = oom ? NULL : PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * HASH));
    if (out) {
        /* each range's leaves to their place, in the threads that made them (the copy faults in fresh pages) */
        copy_job copies[MAX_THREADS];
        unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out);
        for (int i = 0; i < n; i++) {
            copies[i] = (copy_job){w, jobs[i].out, jobs[i].count * HASH};
            w += jobs[i].count * HASH;
        }
        Py_BEGIN_ALLOW_THREADS
        run_parallel(copy_leaves, copies, sizeof copies[0], n);
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < n; i++)
        free(jobs[i].out);
    if (oom)
        return PyErr_NoMemory();
    if (!out)
        return NULL;
    if (checked)
        return Py_BuildValue("(NnOnnnnn)", out, (Py_ssize_t)count, skipped ? Py_True : Py_False, bad_utf8, bad_shape,
                             shape_got, not_plain, (Py_ssize_t)newlines);
    return Py_BuildValue("(NnO)", out, (Py_ssize_t)count, skipped ? Py_True : Py_False);
}

/* line_leaves(block, skip_header, threads) -> (leaves, count, header_skipped) */
static PyObject *py_line_leaves(PyObject *self, PyObject *args) { return line_leaves_impl(args, 0); }

/* line_leaves_checked(block, skip_header, threads, delimiter, ndelims, quote) ->
   (leaves, count, header_skipped, bad_utf8, bad_shape, shape_got, not_plain, newlines): offsets into block of
   the first record line with invalid UTF-8, with a delimiter count other than ndelims (and that count), and
   with the quote byte (quote < 0: none) or a lone CR, each -1 if none; and the block's LF count. Past a
   not-plain line the results are partial. */
static PyObject *py_line_leaves_checked(PyObject *self, PyObject *args) { return line_leaves_impl(args, 1); }

/* ------------------------------------------------------------------------------ records by offsets */

typedef struct {
    const unsigned char *data;
    const int64_t *offsets;
    size_t first, last; /* records [first, last) */
    unsigned char *out;
} offsets_job;

static void *hash_offsets(void *arg) {
    offsets_job *j = arg;
    batcher bt = {.n = {0, 0}};
    for (size_t i = j->first; i < j->last; i++)
        batch_leaf(&bt, j->data + j->offsets[i], (size_t)(j->offsets[i + 1] - j->offsets[i]), j->out, HASH * i);
    batch_flush(&bt, j->out);
    return NULL;
}

/* leaf_hashes_offsets(data, offsets, threads) -> leaves; record i is data[offsets[i]:offsets[i + 1]]
   (the layout of an Arrow binary array), offsets native-endian int64. */
static PyObject *py_leaf_hashes_offsets(PyObject *self, PyObject *args) {
    Py_buffer data, offs;
    int threads;
    if (!PyArg_ParseTuple(args, "y*y*i", &data, &offs, &threads))
        return NULL;
    PyObject *out = NULL;
    if (offs.len % 8 || offs.len < 8) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold n + 1 int64 values");
        goto done;
    }
    const int64_t *o = offs.buf;
    size_t n = (size_t)offs.len / 8 - 1;
    for (size_t i = 0; i < n; i++) {
        if (o[i] < 0 || o[i + 1] < o[i] || o[i + 1] > data.len) {
            PyErr_Format(PyExc_ValueError, "offsets[%zu..%zu] = %lld..%lld is not a range of the %zd-byte buffer",
                         i, i + 1, (long long)o[i], (long long)o[i + 1], data.len);
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * HASH));
    if (!out)
        goto done;
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    int t = (n < MIN_PARALLEL_LEAVES && data.len < MIN_PARALLEL_BYTES) ? 1 : clamp_threads(threads);
    offsets_job jobs[MAX_THREADS];
    for (int i = 0; i < t; i++)
        jobs[i] = (offsets_job){data.buf, o, n * (size_t)i / (size_t)t, n * (size_t)(i + 1) / (size_t)t, w};
    run_parallel(hash_offsets, jobs, sizeof jobs[0], t);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offs);
    return out;
}

/* ------------------------------------------------------------------------------------- Merkle root */

/* Root of the RFC 6962 tree over n >= 1 leaf hashes, level by level in scratch (n * HASH bytes); an odd
   last node of a level is on the ragged right edge and folds into carry (always a right child). */
static void subtree_root(const unsigned char *leaves, size_t n, unsigned char *scratch, unsigned char *out) {
    unsigned char carry[HASH], b1[128], b2[128], b4[LANES][128];
    int has_carry = 0;
    const unsigned char *level = leaves;
    node_buffer(b1);
    node_buffer(b2);
    for (int i = 0; i < LANES; i++)
        node_buffer(b4[i]);
    size_t m = n;
    for (;;) {
        if (m & 1) {
            const unsigned char *last = level + HASH * (m - 1);
            if (has_carry)
                node(last, carry, carry);
            else
                memcpy(carry, last, HASH);
            has_carry = 1;
        }
        if (m <= 1)
            break;
        /* in place: nodes i .. i + 3 are written after nodes 2i .. 2i + 7 are read */
        size_t half = m / 2, i = 0;
        for (; i + LANES <= half; i += LANES)
            node_x4(level + HASH * 2 * i, scratch + HASH * i, b4);
        for (; i + 1 < half; i += 2)
            node_x2(level + HASH * 2 * i, level + HASH * (2 * i + 2), scratch + HASH * i, scratch + HASH * (i + 1), b1,
                    b2);
        if (i < half)
            node(level + HASH * 2 * i, level + HASH * (2 * i + 1), scratch + HASH * i);
        level = scratch;
        m /= 2;
    }
    memcpy(out, carry, HASH);
}

typedef struct {
    const unsigned char *leaves;
    size_t first, last; /* chunks [first, last) of 2**CHUNK_LEVEL leaves */
    unsigned char *roots;
    unsigned char *scratch;
} root_job;

static void *chunk_roots(void *arg) {
    root_job *j = arg;
    const size_t c = (size_t)1 << CHUNK_LEVEL;
    for (size_t i = j->first; i < j->last; i++)
        subtree_root(j->leaves + HASH * c * i, c, j->scratch, j->roots + HASH * i);
    return NULL;
}

/* merkle_root(leaves, threads) -> root. Every split point of the tree over n > C leaves falls on a multiple
   of C = 2**CHUNK_LEVEL, so the root is the RFC 6962 fold of the chunks' roots (the last one may be short). */
static PyObject *py_merkle_root(PyObject *self, PyObject *args) {
    Py_buffer view;
    int threads;
    if (!PyArg_ParseTuple(args, "y*i", &view, &threads))
        return NULL;
    if (view.len % HASH) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "leaf hashes must be a multiple of 32 bytes");
        return NULL;
    }
    size_t n = (size_t)view.len / HASH;
    unsigned char root[HASH];
    int oom = 0;
    Py_BEGIN_ALLOW_THREADS
    if (n == 0) {
        memcpy(root, EMPTY_ROOT, HASH);
    } else {
        const size_t c = (size_t)1 << CHUNK_LEVEL;
        size_t full = n / c, rest = n % c, parts = full + (rest != 0);
        int t = n < MIN_PARALLEL_LEAVES ? 1 : clamp_threads(threads);
        if ((size_t)t > full)
            t = full ? (int)full : 1;
        unsigned char *roots = malloc(HASH * parts);
        unsigned char *scratch = malloc(HASH * c * (size_t)t);
        if (!roots || !scratch) {
            oom = 1;
        } else {
            root_job jobs[MAX_THREADS];
            for (int i = 0; i < t; i++)
                jobs[i] = (root_job){view.buf, full * (size_t)i / (size_t)t, full * (size_t)(i + 1) / (size_t)t, roots,
                                     scratch + HASH * c * (size_t)i};
            if (full)
                run_parallel(chunk_roots, jobs, sizeof jobs[0], t);
            if (rest)
                subtree_root((const unsigned char *)view.buf + HASH * c * full, rest, scratch, roots + HASH * full);
            subtree_root(roots, parts, roots, root); /* in place over the chunk roots */
        }
        free(roots);
        free(scratch);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (oom)
        return PyErr_NoMemory();
    return PyBytes_FromStringAndSize((const char *)root, HASH);
}

/* set_line_scan(name) -> previous name; "sse2" raises ValueError where it is not available */
static PyObject *py_set_line_scan(PyObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
#ifdef HAVE_X86
    const char *previous = simd_scan == 1 ? "sse2" : "bytes";
    if (strcmp(name, "bytes") == 0) {
        simd_scan = 0;
    } else if (strcmp(name, "sse2") == 0 && cpu_has_popcnt()) {
        simd_scan = 1;
    } else {
        PyErr_Format(PyExc_ValueError, "line scan %s is not available on this CPU", name);
        return NULL;
    }
    return PyUnicode_FromString(previous);
#else
    if (strcmp(name, "bytes") != 0) {
        PyErr_Format(PyExc_ValueError, "line scan %s is not available on this CPU", name);
        return NULL;
    }
    return PyUnicode_FromString("bytes");
#endif
}

/* backend() -> "sha-ni" | "portable"; set_backend(name) -> previous name (tests run both) */
static PyObject *py_backend(PyObject *self, PyObject *args) {
#ifdef HAVE_X86
    if (compress == compress_shani)
        return PyUnicode_FromString("sha-ni");
#endif
    return PyUnicode_FromString("portable");
}

static PyObject *py_set_backend(PyObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    PyObject *previous = py_backend(self, NULL);
    if (strcmp(name, "portable") == 0) {
        compress = compress_portable;
        compress2 = compress_portable_x2;
        compress4 = compress_portable_x4;
#ifdef HAVE_X86
    } else if (strcmp(name, "sha-ni") == 0 && cpu_has_shani()) {
        compress = compress_shani;
        compress2 = compress_shani_x2;
        compress4 = compress_shani_x4;
#endif
    } else {
        Py_XDECREF(previous);
        PyErr_Format(PyExc_ValueError, "SHA-256 backend %s is not available on this CPU", name);
        return NULL;
    }
    return previous;
}

/* ------------------------------------------------------------------------------ audit log entry leaves */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* standard base64 with padding (Python's base64.b64encode) of n bytes into out; returns its length */
static size_t b64_encode(const unsigned char *in, size_t n, unsigned char *out) {
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

static const char ENTRY_HEAD[] = "{\"entry\":";
static const char ENTRY_MID[] = ",\"signature\":\"";
static const char ENTRY_TAIL[] = "\"}";

/* entry_leaves(bodies, signatures) -> leaves: for each i the leaf hash of the audit log entry record
   {"entry":<body>,"signature":"<base64 of signature>"} (dataward.log.auditlog.entry_leaf_hash), concatenated.
   Both are lists of bytes of the same length (anything else raises TypeError / ValueError). */
static PyObject *py_entry_leaves(PyObject *self, PyObject *args) {
    PyObject *bodies, *sigs;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &bodies, &PyList_Type, &sigs))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(bodies);
    if (PyList_GET_SIZE(sigs) != n) {
        PyErr_SetString(PyExc_ValueError, "bodies and signatures must have the same length");
        return NULL;
    }
    size_t cap = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PyList_GET_ITEM(bodies, i), *s = PyList_GET_ITEM(sigs, i);
        if (!PyBytes_CheckExact(b) || !PyBytes_CheckExact(s)) {
            PyErr_Format(PyExc_TypeError, "entry %zd: bodies and signatures must be bytes", i);
            return NULL;
        }
        size_t need = (size_t)PyBytes_GET_SIZE(b) + 4 * (((size_t)PyBytes_GET_SIZE(s) + 2) / 3);
        if (need > cap)
            cap = need;
    }
    cap += sizeof ENTRY_HEAD + sizeof ENTRY_MID + sizeof ENTRY_TAIL;
    unsigned char *buf = PyMem_Malloc(cap);
    if (!buf)
        return PyErr_NoMemory();
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * HASH);
    if (!out) {
        PyMem_Free(buf);
        return NULL;
    }
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out);
    /* the lists cannot change meanwhile: no Python code runs in this loop */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PyList_GET_ITEM(bodies, i), *s = PyList_GET_ITEM(sigs, i);
        size_t len = 0, bl = (size_t)PyBytes_GET_SIZE(b);
        memcpy(buf, ENTRY_HEAD, sizeof ENTRY_HEAD - 1);
        len += sizeof ENTRY_HEAD - 1;
        memcpy(buf + len, PyBytes_AS_STRING(b), bl);
        len += bl;
        memcpy(buf + len, ENTRY_MID, sizeof ENTRY_MID - 1);
        len += sizeof ENTRY_MID - 1;
        len += b64_encode((const unsigned char *)PyBytes_AS_STRING(s), (size_t)PyBytes_GET_SIZE(s), buf + len);
        memcpy(buf + len, ENTRY_TAIL, sizeof ENTRY_TAIL - 1);
        len += sizeof ENTRY_TAIL - 1;
        leaf(buf, len, w + HASH * (size_t)i);
    }
    PyMem_Free(buf);
    return out;
}

static PyMethodDef methods[] = {
    {"backend", py_backend, METH_NOARGS, "backend() -> name of the SHA-256 compression function in use"},
    {"set_backend", py_set_backend, METH_VARARGS, "set_backend(name) -> previous backend name"},
    {"set_line_scan", py_set_line_scan, METH_VARARGS,
     "set_line_scan(name) -> previous: 'sse2' (one pass per line, x86) or 'bytes' (memchr, then a byte loop)"},
    {"line_leaves", py_line_leaves, METH_VARARGS,
     "line_leaves(block, skip_header, threads) -> (leaves, count, header_skipped)"},
    {"line_leaves_checked", py_line_leaves_checked, METH_VARARGS,
     "line_leaves_checked(block, skip_header, threads, delimiter, ndelims, quote) -> (leaves, count, header_skipped, "
     "bad_utf8, bad_shape, shape_got, not_plain, newlines)"},
    {"leaf_hashes_offsets", py_leaf_hashes_offsets, METH_VARARGS, "leaf_hashes_offsets(data, offsets, threads) -> leaves"},
    {"merkle_root", py_merkle_root, METH_VARARGS, "merkle_root(leaves, threads) -> root"},
    {"entry_leaves", py_entry_leaves, METH_VARARGS, "entry_leaves(bodies, signatures) -> leaves"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "dataward.core._leafhash", NULL, -1, methods};

PyMODINIT_FUNC PyInit__leafhash(void) {
#ifdef HAVE_X86
    simd_scan = cpu_has_popcnt();
    if (cpu_has_shani()) {
        compress = compress_shani;
        compress2 = compress_shani_x2;
        compress4 = compress_shani_x4;
    }
#endif
    return PyModule_Create(&module);
}
