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
    BUDDY_FLAG_REPORT_IN_PLACE = 4 /* report in place instead of isolating blocks */
};

enum {
    BUDDY_DEVICE_DEFAULT = 0,   /* MADV_DONTNEED on Linux, DiscardVirtualMemory on Windows */
    BUDDY_DEVICE_MADV_FREE = 1, /* MADV_FREE: RSS falls only under pressure */
    BUDDY_DEVICE_NONE = 2       /* marks blocks reported without telling the OS; keeps nothing */
};

typedef struct buddy_options {
    uint64_t size;                  /* bytes, a multiple of 4 MiB */
    uint32_t zone_count;            /* 0: automatic */
    uint32_t backing;               /* BUDDY_BACKING_*; any other value is refused */
    uint32_t flags;                 /* BUDDY_FLAG_*; unknown bits are refused */
    uint32_t report_delay_ms;       /* reporter delay after a free, at most 3600000; 0: 2000 */
    uint32_t device;                /* BUDDY_DEVICE_*; any other value is refused */
    uint32_t device_delay_ms;       /* added latency per report (testing); 0: none */
    uint32_t report_wait_timeout_ms;/* longest wait for a block mid-report; 0: 30000 */
    uint32_t maximum_size_mib;      /* 0: never grows (this field was `reserved`, always 0); else the arena
                                       grows in sections of `size` up to this many MiB, a multiple of
                                       `size`, and added sections free for 30 s go offline */
} buddy_options;

typedef struct buddy_stats {
    uint64_t total_bytes;
    uint64_t free_bytes;
    uint64_t allocated_bytes;
    uint64_t reported_bytes;  /* free and handed back to the OS */
    uint64_t reporting_bytes; /* free and mid-report */
    uint64_t allocations;
    uint64_t frees;
    uint64_t failed_allocations;
    uint64_t spin_waits;
    uint64_t zero_skipped_bytes;
    uint64_t reporter_passes;
    uint64_t reporter_device_calls;
    uint32_t page_size;
    uint32_t max_order;
    uint64_t free_blocks_by_order[21];
    uint64_t reporter_failed_reports; /* scatterlists the device refused */
} buddy_stats;

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

buddy_status buddy_get_stats(buddy_arena* arena, buddy_stats* stats);

/* The last failure on this thread, UTF-8; "" if none. Valid until the next failure on this thread. */
const char* buddy_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
