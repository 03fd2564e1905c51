/*
 * Hides AVX-512 (and AMX) from CPUID for one process, so that runtimes
 * which pick their kernels by CPUID (ONNX Runtime's MLAS, sld-core) run
 * their AVX2 code on an AVX-512 host: one machine can then compare both
 * at AVX2, as on the AVX2-only CPUs of most robot PCs.
 *
 * Build and use (bench/forward_ort.py --no-avx512 does both):
 *   gcc -O2 -shared -fPIC bench/cpuid_mask.c -o target/cpuid_mask.so
 *   LD_PRELOAD=target/cpuid_mask.so python3 ...
 *
 * How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID, inherited by
 * threads created later) turns every CPUID instruction into SIGSEGV; the
 * handler runs the real CPUID with faulting briefly off, clears the
 * AVX-512/AMX feature bits of leaf 7, and steps over the instruction.
 * Where the kernel or hypervisor lacks CPUID faulting, nothing is masked
 * and sld_cpuid_masked() returns 0.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static int masked;

static int faulting(int on) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void on_segv(int sig, siginfo_t *info, void *context) {
    (void)info;
    ucontext_t *uc = context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) {
        /* A real fault: let it kill the process as usual. */
        signal(sig, SIG_DFL);
        return;
    }
    unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
    faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    faulting(1);
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL. */
        b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* ECX: VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ. */
        c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8. */
        d &= ~((1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        a &= ~(1u << 5); /* AVX512-BF16 */
    }
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSEGV, &sa, NULL) == 0 && faulting(1) == 0) {
        masked = 1;
    }
}

/* 1 when CPUID faulting is on in this process (AVX-512 hidden). */
int sld_cpuid_masked(void) { return masked; }
