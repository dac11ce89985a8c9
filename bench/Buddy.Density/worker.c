/* One bursty service for the density benchmark. Each cycle: allocate and touch a burst of blocks
 * of 64 KiB - 4 MiB (log-uniform sizes), free the blocks kept from the cycle before, keep about
 * `keep` percent of the new ones, free the rest, then idle until the period ends.
 *
 *   worker malloc|buddy LIBBUDDY BURST_MIB KEEP_PERCENT PERIOD_MS CYCLES START_DELAY_MS SEED [REPORT_DELAY_MS]
 *
 * "malloc" uses the process's malloc (glibc, or whatever LD_PRELOAD puts in its place); "buddy"
 * loads LIBBUDDY and allocates from a reserved arena with its reporter running on the library's
 * defaults (floor 64 KiB, every pressure source) and the given delay (0 or none: the default,
 * 2 s); BUDDY_HINT_DELAY_MS turns the hint tier on, BUDDY_FLAGS adds buddy_options flags (8: huge
 * pages) and BUDDY_PRESSURE sets the pressure sources (8: none). Prints one line per cycle,
 * "burst_ms <milliseconds>"; exits 2 when an allocation fails, 1 on bad arguments. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../../src/Native/include/buddy.h"

#define MIN_SHIFT 16 /* 64 KiB */
#define MAX_SHIFT 22 /* 4 MiB */
#define PAGE 4096

typedef struct block { void* p; size_t size; } block;

static buddy_arena* arena;
static buddy_status (*arena_create)(const buddy_options*, buddy_arena**);
static buddy_status (*alloc_block)(buddy_arena*, size_t, void**);
static buddy_status (*free_block)(buddy_arena*, void*);
static buddy_status (*reporter_start)(buddy_arena*);
static const char* (*last_error)(void);

static uint64_t rng;
static uint64_t next_random(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void sleep_until(double ms)
{
    double left = ms - now_ms();
    if (left <= 0) return;
    struct timespec t = { (time_t)(left / 1e3), (long)((left - (time_t)(left / 1e3) * 1e3) * 1e6) };
    nanosleep(&t, NULL);
}

static void* allocate(size_t size)
{
    if (!arena) return malloc(size);
    void* p = NULL;
    return alloc_block(arena, size, &p) == BUDDY_OK ? p : NULL;
}

static void release(void* p)
{
    if (!arena) free(p);
    else if (free_block(arena, p) != BUDDY_OK) { fprintf(stderr, "buddy_free: %s\n", last_error()); exit(3); }
}

static void open_buddy(const char* library, uint32_t report_delay_ms)
{
    void* handle = dlopen(library, RTLD_NOW);
    if (!handle) { fprintf(stderr, "%s\n", dlerror()); exit(1); }
    arena_create = dlsym(handle, "buddy_arena_create");
    alloc_block = dlsym(handle, "buddy_alloc");
    free_block = dlsym(handle, "buddy_free");
    reporter_start = dlsym(handle, "buddy_reporter_start");
    last_error = dlsym(handle, "buddy_last_error");
    if (!arena_create || !alloc_block || !free_block || !reporter_start || !last_error) { fprintf(stderr, "%s lacks the buddy ABI\n", library); exit(1); }
    /* Reserved address space: only touched pages count, as with the other allocators. */
    buddy_options options = { .struct_size = sizeof options, .size = 4ull << 30, .backing = BUDDY_BACKING_RESERVE,
                              .report_delay_ms = report_delay_ms };
    const char* hint = getenv("BUDDY_HINT_DELAY_MS");
    const char* flags = getenv("BUDDY_FLAGS");
    const char* pressure = getenv("BUDDY_PRESSURE");
    if (hint) options.hint_delay_ms = (uint32_t)strtoul(hint, NULL, 10);
    if (flags) options.flags = (uint32_t)strtoul(flags, NULL, 10);
    if (pressure) options.pressure = (uint32_t)strtoul(pressure, NULL, 10);
    if (arena_create(&options, &arena) != BUDDY_OK || reporter_start(arena) != BUDDY_OK) { fprintf(stderr, "buddy: %s\n", last_error()); exit(1); }
}

int main(int argc, char** argv)
{
    if (argc != 9 && argc != 10) { fprintf(stderr, "usage: worker malloc|buddy LIBBUDDY BURST_MIB KEEP_PERCENT PERIOD_MS CYCLES START_DELAY_MS SEED [REPORT_DELAY_MS]\n"); return 1; }
    size_t burst = strtoull(argv[3], NULL, 10) << 20;
    unsigned keep = (unsigned)atoi(argv[4]);
    double period = atof(argv[5]);
    int cycles = atoi(argv[6]);
    rng = strtoull(argv[8], NULL, 10) * 0x9E3779B97F4A7C15ull | 1;
    if (strcmp(argv[1], "buddy") == 0) open_buddy(argv[2], argc == 10 ? (uint32_t)strtoul(argv[9], NULL, 10) : 0);
    else if (strcmp(argv[1], "malloc") != 0) { fprintf(stderr, "unknown allocator %s\n", argv[1]); return 1; }

    size_t capacity = burst >> MIN_SHIFT; /* no burst holds more blocks than this */
    block* burst_blocks = calloc(capacity, sizeof(block));
    block* kept = calloc(capacity, sizeof(block));
    size_t kept_count = 0;
    double start = now_ms() + atof(argv[7]);
    for (int cycle = 0; cycle < cycles; cycle++)
    {
        sleep_until(start + cycle * period);
        double began = now_ms();
        size_t count = 0;
        for (size_t total = 0; total < burst; count++)
        {
            unsigned shift = MIN_SHIFT + (unsigned)(next_random() % (MAX_SHIFT - MIN_SHIFT));
            size_t size = ((size_t)1 << shift) + (size_t)(next_random() % ((size_t)1 << shift));
            if (size > burst - total) size = burst - total < ((size_t)1 << MIN_SHIFT) ? (size_t)1 << MIN_SHIFT : burst - total;
            unsigned char* p = allocate(size);
            if (!p) { fprintf(stderr, "allocation of %zu bytes failed in cycle %d\n", size, cycle); return 2; }
            for (size_t offset = 0; offset < size; offset += PAGE) p[offset] = (unsigned char)offset;
            burst_blocks[count] = (block){ p, size };
            total += size;
        }
        printf("burst_ms %.3f\n", now_ms() - began);
        fflush(stdout);
        for (size_t i = 0; i < kept_count; i++) release(kept[i].p);
        kept_count = 0;
        for (size_t i = 0; i < count; i++)
        {
            if (next_random() % 100 < keep) kept[kept_count++] = burst_blocks[i];
            else release(burst_blocks[i].p);
        }
    }
    sleep_until(start + cycles * period);
    return 0;
}
