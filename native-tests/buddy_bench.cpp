// Google Benchmark: buddy_alloc/buddy_free through the C ABI against malloc/free, mimalloc and tcmalloc.
// The peers are loaded with dlopen and called by their own names (mi_malloc, tc_malloc), so each one
// serves only its own calls in this process; a peer that is not installed is skipped.
#include <buddy.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

namespace {

buddy_arena* SharedArena() {
    static buddy_arena* arena = [] {
        buddy_options options{};
        options.struct_size = sizeof(buddy_options);
        options.size = 1ull << 30;
        options.backing = BUDDY_BACKING_RESERVE;
        buddy_arena* created = nullptr;
        if (buddy_arena_create(&options, &created) != BUDDY_OK) std::abort();
        return created;
    }();
    return arena;
}

void BM_BuddyAllocFree(benchmark::State& state) {
    buddy_arena* arena = SharedArena();
    size_t size = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        void* block = nullptr;
        buddy_alloc(arena, size, &block);
        benchmark::DoNotOptimize(block);
        buddy_free(arena, block);
    }
}

struct Peer {
    void* (*allocate)(size_t) = nullptr;
    void (*release)(void*) = nullptr;
};

Peer LoadPeer(const char* library, const char* allocate, const char* release) {
    Peer peer;
    if (void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL)) {
        peer.allocate = reinterpret_cast<void* (*)(size_t)>(dlsym(handle, allocate));
        peer.release = reinterpret_cast<void (*)(void*)>(dlsym(handle, release));
    }
    return peer;
}

void PeerAllocFree(benchmark::State& state, const Peer& peer) {
    if (peer.allocate == nullptr || peer.release == nullptr) {
        state.SkipWithError("not installed");
        return;
    }
    size_t size = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        void* block = peer.allocate(size);
        benchmark::DoNotOptimize(block);
        peer.release(block);
    }
}

void BM_MallocFree(benchmark::State& state) { PeerAllocFree(state, Peer{std::malloc, std::free}); }

void BM_MimallocFree(benchmark::State& state) {
    static Peer peer = LoadPeer("libmimalloc.so.2", "mi_malloc", "mi_free");
    PeerAllocFree(state, peer);
}

void BM_TcmallocFree(benchmark::State& state) {
    static Peer peer = LoadPeer("libtcmalloc_minimal.so.4", "tc_malloc", "tc_free");
    PeerAllocFree(state, peer);
}

}  // namespace

BENCHMARK(BM_BuddyAllocFree)->Arg(4096)->Arg(65536)->Arg(2 << 20);
BENCHMARK(BM_MallocFree)->Arg(4096)->Arg(65536)->Arg(2 << 20);
BENCHMARK(BM_MimallocFree)->Arg(4096)->Arg(65536)->Arg(2 << 20);
BENCHMARK(BM_TcmallocFree)->Arg(4096)->Arg(65536)->Arg(2 << 20);
BENCHMARK_MAIN();
