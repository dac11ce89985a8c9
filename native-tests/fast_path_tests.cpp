// The C fast path (src/Native/fastpath/buddy_fast.c): thread-cache hits served in C, everything else
// handed to the managed side. These arenas leave BUDDY_FLAG_VALIDATE off, so frees take the fast path.
#include "support.h"

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

buddy_options FastOptions(uint64_t size) {
    buddy_options options = Options(size);
    options.flags = 0;
    options.pressure = BUDDY_PRESSURE_OFF;
    return options;
}

void* Alloc(buddy_arena* arena, size_t size) {
    void* block = nullptr;
    EXPECT_EQ(BUDDY_OK, buddy_alloc(arena, size, &block)) << buddy_last_error();
    return block;
}

}  // namespace

TEST(FastPath, PairsAreCountedAndLeaveNothingAllocated) {
    Arena arena(FastOptions(64 * MiB));
    constexpr int pairs = 20000;
    for (int i = 0; i < pairs; i++) {
        void* block = Alloc(arena, 4096u << (i % 4));
        ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
    }
    buddy_stats stats = Stats(arena);
    EXPECT_EQ(static_cast<uint64_t>(pairs), stats.allocations);
    EXPECT_EQ(static_cast<uint64_t>(pairs), stats.frees);
    EXPECT_EQ(0u, stats.allocated_bytes);
    EXPECT_EQ(stats.total_bytes, stats.free_bytes);
}

TEST(FastPath, ASecondFreeOfACachedBlockIsRefusedAndChangesNothing) {
    Arena arena(FastOptions(16 * MiB));
    void* block = Alloc(arena, 4096);
    ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
    buddy_stats before = Stats(arena);
    ExpectError(BUDDY_E_INVALID_POINTER, buddy_free(arena, block), "Double free");
    buddy_stats after = Stats(arena);
    EXPECT_EQ(before.frees, after.frees);
    EXPECT_EQ(before.free_bytes, after.free_bytes);
    // The cache still hands the block out once, and only once.
    void* again = Alloc(arena, 4096);
    void* other = Alloc(arena, 4096);
    EXPECT_EQ(block, again);
    EXPECT_NE(again, other);
}

TEST(FastPath, InteriorForeignAndUnalignedPointersAreRefused) {
    Arena arena(FastOptions(16 * MiB));
    Arena other(FastOptions(16 * MiB));
    auto* block = static_cast<char*>(Alloc(arena, 16384));
    void* foreign = Alloc(other, 4096);
    void* heap = std::malloc(4096);
    ExpectError(BUDDY_E_INVALID_POINTER, buddy_free(arena, block + 4096), "not the start of an allocated block");
    ExpectError(BUDDY_E_INVALID_POINTER, buddy_free(arena, block + 8), "");
    ExpectError(BUDDY_E_INVALID_POINTER, buddy_free(arena, foreign), "");
    ExpectError(BUDDY_E_INVALID_POINTER, buddy_free(arena, heap), "");
    std::free(heap);
    EXPECT_EQ(16384u, Stats(arena).allocated_bytes);
    EXPECT_EQ(BUDDY_OK, buddy_free(arena, block));
    EXPECT_EQ(BUDDY_OK, buddy_free(other, foreign));
    EXPECT_EQ(0u, Stats(arena).allocated_bytes);
}

TEST(FastPath, FiveArenasOnOneThreadKeepTheirBlocksApart) {
    // A thread binds up to four arenas at once; the fifth shares a binding and evicts, back and forth.
    std::vector<Arena*> arenas;
    for (int i = 0; i < 5; i++) arenas.push_back(new Arena(FastOptions(8 * MiB)));
    std::vector<std::vector<void*>> live(arenas.size());
    for (int round = 0; round < 200; round++) {
        for (size_t a = 0; a < arenas.size(); a++) {
            live[a].push_back(Alloc(*arenas[a], 4096));
            if (round % 3 == 2) {
                ASSERT_EQ(BUDDY_OK, buddy_free(*arenas[a], live[a].front()));
                live[a].erase(live[a].begin());
            }
        }
    }
    for (size_t a = 0; a < arenas.size(); a++) {
        // A block freed to the wrong arena is refused, whichever bindings are cached.
        buddy_arena* wrong = *arenas[(a + 1) % arenas.size()];
        EXPECT_EQ(BUDDY_E_INVALID_POINTER, buddy_free(wrong, live[a].back()));
        EXPECT_EQ(live[a].size() * 4096, Stats(*arenas[a]).allocated_bytes);
        for (void* block : live[a]) ASSERT_EQ(BUDDY_OK, buddy_free(*arenas[a], block));
        buddy_stats stats = Stats(*arenas[a]);
        EXPECT_EQ(0u, stats.allocated_bytes);
        EXPECT_EQ(stats.allocations, stats.frees);
    }
    for (Arena* arena : arenas) delete arena;
}

TEST(FastPath, ZeroedAllocationsReadZeroAfterADirtyFree) {
    Arena arena(FastOptions(16 * MiB));
    for (int i = 0; i < 100; i++) {
        auto* dirty = static_cast<unsigned char*>(Alloc(arena, 8192));
        std::memset(dirty, 0xEE, 8192);
        ASSERT_EQ(BUDDY_OK, buddy_free(arena, dirty));
        void* block = nullptr;
        ASSERT_EQ(BUDDY_OK, buddy_alloc_zeroed(arena, 8192, &block));
        ASSERT_EQ(dirty, block) << "the cache hands back the block just freed";
        auto* bytes = static_cast<unsigned char*>(block);
        for (int b = 0; b < 8192; b++) ASSERT_EQ(0, bytes[b]) << "byte " << b;
        ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
    }
}

/* Growing arenas: sections lie anywhere (aligned alloc, searched) or in one reservation (computed). */
class GrowingFastPath : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GrowingFastPath, BlocksOfAddedSectionsAreFoundOnFree) {
    buddy_options options = FastOptions(4 * MiB);
    options.backing = GetParam();
    options.maximum_size_mib = 16;
    Arena arena(options);
    std::vector<void*> blocks;
    // Three sections' worth of 4 KiB blocks: the arena adds sections as it runs dry.
    for (int i = 0; i < 3 * 1024 - 64; i++) blocks.push_back(Alloc(arena, 4096));
    ASSERT_GT(Stats(arena).total_bytes, 8 * MiB);
    for (void* block : blocks) ASSERT_EQ(BUDDY_OK, buddy_free(arena, block)) << buddy_last_error();
    buddy_stats stats = Stats(arena);
    EXPECT_EQ(0u, stats.allocated_bytes);
    EXPECT_EQ(stats.allocations, stats.frees);
}

INSTANTIATE_TEST_SUITE_P(Backings, GrowingFastPath,
                         ::testing::Values(BUDDY_BACKING_ALIGNED_ALLOC, BUDDY_BACKING_RESERVE));

TEST(FastPath, ThreadsChurnWhileReportsDrainTheirCaches) {
    buddy_options options = FastOptions(64 * MiB);
    options.zone_count = 2;
    Arena arena(options);
    std::atomic<bool> stop{false};
    ChurnResult churn;
    std::thread churning([&] { churn = Churn(arena, 3, 5, 32, [&](uint64_t) { return !stop.load(std::memory_order_relaxed); }); });
    // Each pass claims every cache and sends its blocks home while the owners pop and push.
    for (int i = 0; i < 300; i++) {
        uint64_t reported = 0;
        ASSERT_EQ(BUDDY_OK, buddy_report_now(arena, &reported)) << buddy_last_error();
        buddy_stats stats = Stats(arena);
        ASSERT_EQ(stats.total_bytes, stats.free_bytes + stats.allocated_bytes);
    }
    stop = true;
    churning.join();
    EXPECT_EQ(0, churn.damaged);
    EXPECT_EQ(0, churn.failed);
    buddy_stats stats = Stats(arena);
    EXPECT_EQ(0u, stats.allocated_bytes);
    EXPECT_EQ(stats.allocations, stats.frees);
}

TEST(FastPath, DestroyRacingBoundThreadsLeavesThemDisposed) {
    for (int round = 0; round < 20; round++) {
        buddy_arena* arena = nullptr;
        buddy_options options = FastOptions(16 * MiB);
        ASSERT_EQ(BUDDY_OK, buddy_arena_create(&options, &arena));
        std::atomic<int> bound{0}, unexpected{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 2; t++) {
            threads.emplace_back([&] {
                bool counted = false;
                while (true) {
                    void* block = nullptr;
                    buddy_status status = buddy_alloc(arena, 4096, &block);
                    if (status == BUDDY_OK) status = buddy_free(arena, block);
                    if (status == BUDDY_E_DISPOSED) break;
                    if (status != BUDDY_OK) unexpected++;
                    if (!counted) { counted = true; bound++; }
                }
                // Bound to a destroyed arena, the thread keeps getting DISPOSED, never a stale block.
                void* block = nullptr;
                if (buddy_alloc(arena, 4096, &block) != BUDDY_E_DISPOSED || block != nullptr) unexpected++;
            });
        }
        while (bound.load() < 2) std::this_thread::yield();
        ASSERT_EQ(BUDDY_OK, buddy_arena_destroy(arena));
        for (auto& thread : threads) thread.join();
        EXPECT_EQ(0, unexpected.load());
    }
}
