/* libbuddy's fast path: buddy_alloc and buddy_free served from the calling thread's cache without
 * entering managed code. A thread binds to an arena's cache once (through the managed side, which
 * makes the cache); later calls pop and push on that cache's stacks here, with the ownership
 * handshake ThreadCache.cs describes. Everything else (an empty stack, a full one, a block that
 * needs checks, an error, a destroyed arena) goes to the managed exports, which do the whole call. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../include/buddy.h"

#define EXPORT __attribute__((visibility("default")))

/* Mirrors of src/Allocator (PageDescriptor.cs, ThreadCache.cs); ThreadCacheStateTests checks the
 * managed side against the same offsets. */
enum { NO_PAGE = 0xFFFFFFFFu, TYPES = 3, MAX_STACKS = 48, MAX_ORDERS = MAX_STACKS / TYPES };
enum { FLAG_HEAD = 1u << 1, FLAG_REPORTED = 1u << 2, FLAG_ZEROED = 1u << 4, FLAG_POISONED = 1u << 5,
       FLAG_CACHED = 1u << 6, FLAG_HINTED = 1u << 7 };
enum { MEMORY_FLAGS = FLAG_REPORTED | FLAG_HINTED | FLAG_ZEROED | FLAG_POISONED };
enum { MOVABLE = 1, RECLAIMABLE = 2 };

typedef struct {
    uint32_t next;
    uint32_t prev;
    uint32_t flags;
    uint8_t order;
    uint8_t list;
    uint16_t freed_in_round;
} descriptor;

typedef struct {
    descriptor* descriptors;
    uint8_t* pageblock_types;
    intptr_t* section_bases;
    int32_t* slots_in_use;
    intptr_t reservation_base;
    int64_t section_bytes;
    int64_t cache_bytes_per_thread;
    int32_t page_shift;
    int32_t pageblock_order;
    int32_t section_shift;
    int32_t cached_orders;
    int32_t fast_free;
    uint32_t slow_memory;
    int32_t high[MAX_ORDERS];
} arena_view;

typedef struct {
    _Atomic int32_t inside;
    _Atomic int32_t claimed;
    int64_t cached_bytes;
    int64_t allocations;
    int64_t frees;
    int64_t zero_skipped_bytes;
    int64_t arena_serial;
    _Atomic int32_t references;
    int32_t padding;
    uint32_t heads[MAX_STACKS];
    int32_t counts[MAX_STACKS];
    arena_view view;
} thread_cache;

_Static_assert(sizeof(descriptor) == 16, "PageDescriptor is 16 bytes");
_Static_assert(offsetof(thread_cache, references) == 48, "Hot.References");
_Static_assert(offsetof(thread_cache, heads) == 56, "Hot.Heads");
_Static_assert(offsetof(thread_cache, counts) == 248, "Hot.Counts");
_Static_assert(offsetof(thread_cache, view) == 440, "Hot.View");
_Static_assert(offsetof(arena_view, slow_memory) == 76, "FastPathView.SlowMemory");
_Static_assert(sizeof(thread_cache) == 584, "Hot");

/* The managed exports: each does the whole call, checks and errors included. */
buddy_status buddy_managed_alloc(buddy_arena* arena, size_t size, void** block);
buddy_status buddy_managed_alloc_zeroed(buddy_arena* arena, size_t size, void** block);
buddy_status buddy_managed_alloc_order(buddy_arena* arena, int order, void** block);
buddy_status buddy_managed_free(buddy_arena* arena, void* block);
/* The calling thread's cache of the arena with a reference for the binding, or NULL with BUDDY_OK
 * when the arena keeps no caches. */
buddy_status buddy_managed_bind(buddy_arena* arena, thread_cache** cache);

/* A thread's bindings, direct-mapped by the handle's slot index: arenas alive at once have distinct
 * slots, so up to four of them never evict each other. Initial-exec: a plain load from %fs, no
 * __tls_get_addr call. */
enum { BINDINGS = 4 };
typedef struct {
    buddy_arena* arena;
    thread_cache* cache; /* NULL: the arena keeps no caches */
} binding;

static __thread binding bindings[BINDINGS] __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_made; /* a key of 0 may be someone else's: never set one this library did not make */

static void release(thread_cache* cache) {
    /* The last reference frees: the managed side allocates with NativeMemory.AlignedAlloc, which is
     * aligned_alloc on Unix, so free() matches. */
    if (cache != NULL && atomic_fetch_sub_explicit(&cache->references, 1, memory_order_acq_rel) == 1) free(cache);
}

static void on_thread_exit(void* unused) {
    (void)unused;
    for (int i = 0; i < BINDINGS; i++) {
        release(bindings[i].cache);
        bindings[i] = (binding){0};
    }
}

static void make_exit_key(void) { exit_key_made = pthread_key_create(&exit_key, on_thread_exit) == 0; }

static inline binding* binding_of(buddy_arena* arena) { return &bindings[(uintptr_t)arena & (BINDINGS - 1)]; }

/* The bound cache of this thread for the arena, binding it first if need be. NULL: take the managed path. */
static thread_cache* cache_of(buddy_arena* arena) {
    binding* b = binding_of(arena);
    if (__builtin_expect(b->arena == arena, 1)) return b->cache;
    thread_cache* cache = NULL;
    if (buddy_managed_bind(arena, &cache) != BUDDY_OK) return NULL;
    /* The exit hook releases what the thread still holds; a thread that cannot have one keeps no binding. */
    if (pthread_once(&exit_key_once, make_exit_key) != 0 || !exit_key_made || pthread_setspecific(exit_key, bindings) != 0) {
        release(cache);
        return NULL;
    }
    release(b->cache);
    b->arena = arena;
    b->cache = cache;
    return cache;
}

/* The owner's half of the handshake: a drainer stores claimed, issues a process-wide barrier, then
 * waits for inside to clear. Release then acquire keeps the store before the load on the compiler's
 * side; the drainer's barrier orders them on the processor's. */
static inline int enter(thread_cache* cache) {
    atomic_store_explicit(&cache->inside, 1, memory_order_release);
    if (__builtin_expect(atomic_load_explicit(&cache->claimed, memory_order_acquire) == 0, 1)) return 1;
    atomic_store_explicit(&cache->inside, 0, memory_order_release);
    return 0;
}

static inline void leave(thread_cache* cache) { atomic_store_explicit(&cache->inside, 0, memory_order_release); }

/* Everything below runs inside: the arena cannot be disposed meanwhile, so the view's pointers are valid. */

static inline intptr_t address_of(const arena_view* view, uint32_t page) {
    uint64_t slot = (uint64_t)page >> view->section_shift;
    intptr_t base = atomic_load_explicit((_Atomic intptr_t*)&view->section_bases[slot], memory_order_relaxed);
    return base + ((intptr_t)(page - (uint32_t)(slot << view->section_shift)) << view->page_shift);
}

/* The page of an address at a page boundary in an online section, or NO_PAGE. */
static inline uint32_t page_of(const arena_view* view, uintptr_t address) {
    uint64_t slot;
    intptr_t base;
    if (view->reservation_base != 0) {
        slot = (address - (uintptr_t)view->reservation_base) / (uint64_t)view->section_bytes;
        if (slot >= (uint64_t)atomic_load_explicit((_Atomic int32_t*)view->slots_in_use, memory_order_acquire)) return NO_PAGE;
        base = atomic_load_explicit((_Atomic intptr_t*)&view->section_bases[slot], memory_order_relaxed);
        if (base == 0) return NO_PAGE;
    } else {
        int32_t used = atomic_load_explicit((_Atomic int32_t*)view->slots_in_use, memory_order_acquire);
        for (slot = 0;; slot++) {
            if (slot == (uint64_t)used) return NO_PAGE;
            base = atomic_load_explicit((_Atomic intptr_t*)&view->section_bases[slot], memory_order_relaxed);
            if (base != 0 && address - (uintptr_t)base < (uint64_t)view->section_bytes) break;
        }
    }
    uintptr_t offset = address - (uintptr_t)base;
    if ((offset & (((uintptr_t)1 << view->page_shift) - 1)) != 0) return NO_PAGE;
    return (uint32_t)((slot << view->section_shift) + (offset >> view->page_shift));
}

/* Pops a Movable block of the order (managed ThreadCache.Pop plus TryAllocateCached's hand-out). */
static inline int try_alloc(thread_cache* cache, int order, int zeroed, void** block) {
    if (!enter(cache)) return 0;
    const arena_view* view = &cache->view;
    int stack = order * TYPES + MOVABLE;
    uint32_t page = cache->heads[stack];
    if (page == NO_PAGE) goto miss;
    descriptor* d = &view->descriptors[page];
    uint32_t memory = d->flags & MEMORY_FLAGS;
    if ((memory & view->slow_memory) != 0) goto miss;
    int64_t bytes = (int64_t)1 << (view->page_shift + order);
    cache->heads[stack] = d->next;
    d->next = NO_PAGE;
    cache->counts[stack]--;
    cache->cached_bytes -= bytes;
    d->flags = FLAG_HEAD;
    cache->allocations++;
    void* address = (void*)address_of(view, page);
    /* Memory is touched inside: Dispose waits for the owner to leave before it frees anything. */
    if (zeroed && (memory & FLAG_ZEROED) != 0) cache->zero_skipped_bytes += bytes;
    else if (zeroed) memset(address, 0, (size_t)bytes);
    leave(cache);
    *block = address;
    return 1;
miss:
    leave(cache);
    return 0;
}

/* Pushes an allocated block of a cached order whose stack has room (managed TryFreeCached without the
 * drain: a free that would overflow the stack or the budget goes to the managed path, which drains). */
static inline int try_free(thread_cache* cache, void* block) {
    if (!cache->view.fast_free || !enter(cache)) return 0;
    const arena_view* view = &cache->view;
    uint32_t page = page_of(view, (uintptr_t)block);
    if (page == NO_PAGE) goto miss;
    descriptor* d = &view->descriptors[page];
    int order = d->order;
    /* Only an allocated head: a second free finds Cached and takes the managed path, which refuses it. */
    if (d->flags != FLAG_HEAD || order >= view->cached_orders) goto miss;
    uint8_t type = view->pageblock_types[page >> view->pageblock_order];
    if (type > RECLAIMABLE) goto miss;
    int stack = order * TYPES + type;
    int64_t bytes = (int64_t)1 << (view->page_shift + order);
    if (cache->counts[stack] >= view->high[order] || cache->cached_bytes + bytes > view->cache_bytes_per_thread) goto miss;
    d->flags = FLAG_CACHED;
    d->next = cache->heads[stack];
    cache->heads[stack] = page;
    cache->counts[stack]++;
    cache->cached_bytes += bytes;
    cache->frees++;
    leave(cache);
    return 1;
miss:
    leave(cache);
    return 0;
}

/* The order of a size the cache serves, or -1. */
static inline int cached_order(const arena_view* view, size_t size) {
    if (size == 0) return -1;
    uint64_t pages = ((uint64_t)size + ((uint64_t)1 << view->page_shift) - 1) >> view->page_shift;
    if (pages == 0) return -1; /* the sum wrapped: size is near SIZE_MAX */
    int order = pages <= 1 ? 0 : 64 - __builtin_clzll(pages - 1);
    return order < view->cached_orders ? order : -1;
}

static inline int try_alloc_size(buddy_arena* arena, size_t size, int zeroed, void** block) {
    thread_cache* cache = block != NULL ? cache_of(arena) : NULL;
    if (cache == NULL) return 0;
    int order = cached_order(&cache->view, size);
    return order >= 0 && try_alloc(cache, order, zeroed, block);
}

EXPORT buddy_status buddy_alloc(buddy_arena* arena, size_t size, void** block) {
    if (try_alloc_size(arena, size, 0, block)) return BUDDY_OK;
    return buddy_managed_alloc(arena, size, block);
}

EXPORT buddy_status buddy_alloc_zeroed(buddy_arena* arena, size_t size, void** block) {
    if (try_alloc_size(arena, size, 1, block)) return BUDDY_OK;
    return buddy_managed_alloc_zeroed(arena, size, block);
}

EXPORT buddy_status buddy_alloc_order(buddy_arena* arena, int order, void** block) {
    thread_cache* cache = block != NULL ? cache_of(arena) : NULL;
    if (cache != NULL && order >= 0 && order < cache->view.cached_orders && try_alloc(cache, order, 0, block)) return BUDDY_OK;
    return buddy_managed_alloc_order(arena, order, block);
}

EXPORT buddy_status buddy_free(buddy_arena* arena, void* block) {
    thread_cache* cache = cache_of(arena);
    if (cache != NULL && try_free(cache, block)) return BUDDY_OK;
    return buddy_managed_free(arena, block);
}
