/* Buddy: a native-memory buddy allocator with free page reporting. C ABI of libbuddy.so.
 *
 * Every function returns a buddy_status; on failure buddy_last_error() describes it. No call
 * throws or aborts. A handle is checked first: every call on a destroyed arena returns
 * BUDDY_E_DISPOSED, whatever its other arguments, and keeps doing so after a new arena has taken
 * its place (handles carry a generation). A destroyed arena leaves nothing behind.
 * All functions are thread-safe, lifecycle calls included. */
#ifndef BUDDY_H
#define BUDDY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct buddy_arena buddy_arena;

typedef enum buddy_status {
    BUDDY_OK = 0,
    BUDDY_E_INVALID_ARGUMENT = 1, /* NULL pointer, size or order out of range, bad option */
    BUDDY_E_OUT_OF_MEMORY = 2,    /* no free block large enough */
    BUDDY_E_INVALID_POINTER = 3,  /* free of a pointer that is not an allocated block: foreign, double free, interior */
    BUDDY_E_DISPOSED = 4,         /* the arena was destroyed */
    BUDDY_E_TIMEOUT = 5,          /* waited too long for a block that is being reported */
    BUDDY_E_CORRUPTION = 6,       /* poisoning found a write after free, or descriptors are damaged */
    BUDDY_E_INTERNAL = 7,         /* a failure the library did not expect; see buddy_last_error */
    BUDDY_E_DEVICE_FAILED = 8     /* buddy_report_now: the device refused a scatterlist; nothing was lost */
} buddy_status;

enum {
    BUDDY_BACKING_ALIGNED_ALLOC = 0, /* heap memory */
    BUDDY_BACKING_RESERVE = 1        /* reserved address space: larger than RAM is fine */
};

enum {
    BUDDY_FLAG_POISON = 1,         /* fill freed blocks, check on reuse */
    BUDDY_FLAG_VALIDATE = 2,       /* validate descriptors on every free */
    BUDDY_FLAG_REPORT_IN_PLACE = 4, /* report in place instead of isolating blocks */
    BUDDY_FLAG_HUGE_PAGES = 8,     /* back the arena with transparent huge pages (MADV_HUGEPAGE); report
                                      and hint nothing below 2 MiB */
    BUDDY_FLAG_POPULATE = 16       /* fault a reported block of 2 MiB or more back in with one
                                      MADV_POPULATE_WRITE when it is handed out */
};

enum {
    BUDDY_DEVICE_DEFAULT = 0,   /* MADV_DONTNEED on Linux, DiscardVirtualMemory on Windows */
    BUDDY_DEVICE_MADV_FREE = 1, /* MADV_FREE: RSS falls only under pressure */
    BUDDY_DEVICE_NONE = 2       /* marks blocks reported without telling the OS; keeps nothing */
};

enum {
    BUDDY_PRESSURE_DEFAULT = 0, /* every source this machine has (cgroup, PSI, GC memory load) */
    BUDDY_PRESSURE_CGROUP = 1,  /* the process's cgroup: usage near its limit, less room left than the arena
                                   holds free, memory.events (v2) */
    BUDDY_PRESSURE_PSI = 2,     /* pressure stall triggers: the cgroup's memory.pressure, /proc/pressure/memory */
    BUDDY_PRESSURE_GC = 4,      /* the runtime's memory load against its high-load threshold */
    BUDDY_PRESSURE_OFF = 8      /* no source; buddy_signal_pressure still works */
};

/* Versioned by struct_size, as Linux's extensible syscall structs are: set it to sizeof(buddy_options).
 * A caller built against an older header passes a smaller size and its missing fields take their
 * defaults; a newer one may pass a larger size if every byte past this layout is zero. */
typedef struct buddy_options {
    uint32_t struct_size;           /* sizeof(buddy_options); at least BUDDY_OPTIONS_SIZE_V1 */
    uint32_t zone_count;            /* 0: automatic */
    uint64_t size;                  /* bytes, a multiple of 4 MiB */
    uint32_t backing;               /* BUDDY_BACKING_*; any other value is refused */
    uint32_t flags;                 /* BUDDY_FLAG_*; unknown bits are refused */
    uint32_t report_delay_ms;       /* reporter delay after a free, at most 3600000; 0: 2000 */
    uint32_t device;                /* BUDDY_DEVICE_*; any other value is refused */
    uint32_t device_delay_ms;       /* added latency per report (testing), at most 3600000; 0: none */
    uint32_t report_wait_timeout_ms;/* longest wait for a block mid-report; 0: 30000 */
    uint32_t maximum_size_mib;      /* 0: never grows; else the arena grows in sections of `size` up to
                                       this many MiB, a multiple of `size`, and added sections free for
                                       30 s go offline */
    /* BUDDY_OPTIONS_SIZE_V1 ends here. */
    uint32_t floor_kib;             /* smallest block reported when idle or under pressure, KiB, a power
                                       of two of at least a page and at most 2 MiB; 0: 64 */
    uint32_t idle_ms;               /* report down to floor_kib after this long with no alloc or free;
                                       0: 10000; UINT32_MAX: only under pressure */
    uint32_t pressure;              /* BUDDY_PRESSURE_* bits */
    uint32_t hint_delay_ms;         /* the hint tier: free memory is offered to the kernel (MADV_FREE) this
                                       long after it is freed, at most 3600000, and reported only once it
                                       stayed hinted for report_delay_ms; 0: no hint tier */
    uint32_t reserved;              /* must be 0: names the padding, so a later field never lands in it */
} buddy_options;

#define BUDDY_OPTIONS_SIZE_V1 44u

/* Versioned like buddy_options: set struct_size to sizeof(buddy_stats) before the call. The library
 * fills as many bytes as it knows of the caller's size (an older caller's smaller struct gets its
 * prefix) and zeroes any bytes past what it knows. */
typedef struct buddy_stats {
    uint32_t struct_size;             /* in: sizeof(buddy_stats), at least BUDDY_STATS_SIZE_V1 */
    uint32_t page_size;
    uint64_t total_bytes;             /* online */
    uint64_t free_bytes;              /* thread caches' blocks included */
    uint64_t allocated_bytes;
    uint64_t reported_bytes;          /* free and handed back to the OS */
    uint64_t reporting_bytes;         /* free and mid-report */
    uint64_t hinted_bytes;            /* free and offered to the OS (the hint tier), not reported yet */
    uint64_t cached_bytes;            /* free in threads' caches */
    uint64_t allocations;
    uint64_t frees;
    uint64_t failed_allocations;
    uint64_t spin_waits;
    uint64_t zero_skipped_bytes;
    uint64_t reporter_passes;
    uint64_t reporter_device_calls;
    uint64_t reporter_failed_reports; /* scatterlists the device refused */
    uint32_t max_order;
    uint32_t reserved;                /* 0 */
    uint64_t free_blocks_by_order[21];
} buddy_stats;

#define BUDDY_STATS_SIZE_V1 304u

/* Every option is checked here: a refused create leaves nothing behind. BUDDY_E_OUT_OF_MEMORY when the
 * backing cannot be had (BUDDY_BACKING_RESERVE serves arenas larger than the commit limit). */
buddy_status buddy_arena_create(const buddy_options* options, buddy_arena** arena);
buddy_status buddy_arena_destroy(buddy_arena* arena);

/* Blocks are page_size << order bytes, aligned to their size. */
buddy_status buddy_alloc(buddy_arena* arena, size_t size, void** block);
buddy_status buddy_alloc_zeroed(buddy_arena* arena, size_t size, void** block);
buddy_status buddy_alloc_order(buddy_arena* arena, int order, void** block);
buddy_status buddy_free(buddy_arena* arena, void* block);

/* Free page reporting: a background thread, or one pass now. */
buddy_status buddy_reporter_start(buddy_arena* arena);
buddy_status buddy_reporter_stop(buddy_arena* arena);
/* One pass now. BUDDY_E_DEVICE_FAILED when the device refused a scatterlist: those blocks are back,
 * unreported, and *reported_bytes still counts what was reported. */
buddy_status buddy_report_now(buddy_arena* arena, uint64_t* reported_bytes);
/* Memory is short, says the host: the running reporter reports at once, down to floor_kib, every
 * thread's cache included and with no budget, and keeps doing so for frees that follow for a moment. */
buddy_status buddy_signal_pressure(buddy_arena* arena);

/* BUDDY_E_INVALID_ARGUMENT when stats is NULL or its struct_size is below BUDDY_STATS_SIZE_V1 (or over 4096). */
buddy_status buddy_get_stats(buddy_arena* arena, buddy_stats* stats);

/* The last failure on this thread, UTF-8; "" if none. Valid until the next failure on this thread. */
const char* buddy_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
