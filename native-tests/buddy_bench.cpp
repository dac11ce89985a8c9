// Google Benchmark: buddy_alloc/buddy_free through the C ABI against malloc/free.
#include <buddy.h>
#include <benchmark/benchmark.h>

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

void BM_MallocFree(benchmark::State& state) {
    size_t size = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        void* block = std::malloc(size);
        benchmark::DoNotOptimize(block);
        std::free(block);
    }
}

}  // namespace

BENCHMARK(BM_BuddyAllocFree)->Arg(4096)->Arg(65536)->Arg(2 << 20);
BENCHMARK(BM_MallocFree)->Arg(4096)->Arg(65536)->Arg(2 << 20);
BENCHMARK_MAIN();
