// GoogleTest suite for the C ABI, against the real libbuddy.so.
#include "support.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>
#include <vector>

namespace {

long ResidentBytes() {
    long size = 0, resident = 0;
    FILE* statm = std::fopen("/proc/self/statm", "r");
    if (statm == nullptr || std::fscanf(statm, "%ld %ld", &size, &resident) != 2) resident = -1;
    if (statm != nullptr) std::fclose(statm);
    return resident * sysconf(_SC_PAGESIZE);
}

/* Allocates count blocks of 4 MiB, touches every byte, and frees them: resident, free and unreported. */
void FreeTouchedBlocks(buddy_arena* arena, int count) {
    std::vector<void*> blocks;
    for (int i = 0; i < count; i++) {
        void* block = nullptr;
        ASSERT_EQ(BUDDY_OK, buddy_alloc_order(arena, 10, &block));
        std::memset(block, 0x5A, 4 * MiB);
        blocks.push_back(block);
    }
    for (void* block : blocks) ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
}


}  // namespace

TEST(Allocation, AllocatesAlignedBlocksAndFreesThem) {
    Arena arena(64 * MiB);
    void* block = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc(arena, 100000, &block));
    ASSERT_NE(nullptr, block);
    EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(block) % (128 * 1024));
    std::memset(block, 0xAB, 100000);
    EXPECT_EQ(32u * 4096, Stats(arena).allocated_bytes);
    EXPECT_EQ(BUDDY_OK, buddy_free(arena, block));
    EXPECT_EQ(0u, Stats(arena).allocated_bytes);
}

TEST(Allocation, AllocatesByOrder) {
    Arena arena(8 * MiB);
    void* block = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc_order(arena, 10, &block));
    EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(block) % (4 * MiB));
    EXPECT_EQ(BUDDY_OK, buddy_free(arena, block));
}

TEST(Allocation, ZeroedBlocksReadZeroAfterDirtyReuse) {
    Arena arena(8 * MiB);
    void* dirty = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc(arena, 65536, &dirty));
    std::memset(dirty, 0xFF, 65536);
    ASSERT_EQ(BUDDY_OK, buddy_free(arena, dirty));
    void* clean = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc_zeroed(arena, 65536, &clean));
    EXPECT_EQ(dirty, clean);
    const auto* bytes = static_cast<const unsigned char*>(clean);
    for (int i = 0; i < 65536; i++) ASSERT_EQ(0, bytes[i]) << "byte " << i;
    EXPECT_EQ(BUDDY_OK, buddy_free(arena, clean));
}

TEST(Statistics, DescribeTheArena) {
    Arena arena(16 * MiB);
    buddy_stats stats = Stats(arena);
    EXPECT_EQ(16 * MiB, stats.total_bytes);
    EXPECT_EQ(16 * MiB, stats.free_bytes);
    EXPECT_EQ(4096u, stats.page_size);
    EXPECT_EQ(10u, stats.max_order);
    EXPECT_EQ(4u, stats.free_blocks_by_order[10]);
    EXPECT_EQ(BUDDY_E_INVALID_ARGUMENT, buddy_get_stats(arena, nullptr));
}

// buddy_stats is versioned like buddy_options; every byte is a named field.
static_assert(sizeof(buddy_stats) == BUDDY_STATS_SIZE_V1, "this header's stats are the first versioned layout");
static_assert(offsetof(buddy_stats, free_blocks_by_order) == 136, "no padding before the per-order counts");

TEST(Statistics, StructSizeVersionsTheStatistics) {
    Arena arena(16 * MiB);
    buddy_stats unset{};
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_get_stats(arena, &unset), "struct_size");
    EXPECT_EQ(0u, unset.total_bytes) << "a refused call writes nothing";
    // A caller built against a newer header: the bytes this library does not know come back zero.
    struct {
        buddy_stats stats;
        uint64_t future[2];
    } newer;
    std::memset(&newer, 0xFF, sizeof newer);
    newer.stats.struct_size = sizeof newer;
    ASSERT_EQ(BUDDY_OK, buddy_get_stats(arena, &newer.stats)) << buddy_last_error();
    EXPECT_EQ(16 * MiB, newer.stats.total_bytes);
    EXPECT_EQ(0u, newer.stats.reserved);
    EXPECT_EQ(0u, newer.future[0]);
    EXPECT_EQ(0u, newer.future[1]);
}

TEST(Statistics, CachedAndHintedBytesAreCounted) {
    buddy_options options = Options(16 * MiB);
    options.flags = 0;  // frees go to the thread's cache
    options.hint_delay_ms = 20;
    options.report_delay_ms = 3600000;  // hinted memory stays hinted for the test
    options.idle_ms = UINT32_MAX;
    options.pressure = BUDDY_PRESSURE_OFF;
    Arena arena(options);
    void* small = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc(arena, 4096, &small));
    ASSERT_EQ(BUDDY_OK, buddy_free(arena, small));
    buddy_stats cached = Stats(arena);
    EXPECT_GE(cached.cached_bytes, 4096u);
    EXPECT_EQ(cached.total_bytes, cached.free_bytes);
    EXPECT_EQ(0u, cached.hinted_bytes);
    // A 4 MiB block is not cached: freed, it is hinted by the reporter after the hint delay.
    FreeTouchedBlocks(arena, 1);
    ASSERT_EQ(BUDDY_OK, buddy_reporter_start(arena));
    for (int i = 0; i < 3000 && Stats(arena).hinted_bytes < 4 * MiB; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    buddy_stats hinted = Stats(arena);
    EXPECT_GE(hinted.hinted_bytes, 4 * MiB);
    EXPECT_EQ(0u, hinted.reported_bytes);
    EXPECT_EQ(BUDDY_OK, buddy_reporter_stop(arena));
}

TEST(Errors, InvalidArgument) {
    buddy_arena* none = nullptr;
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_arena_create(nullptr, &none), "NULL");
    buddy_options bad = Options(5 * MiB);
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_arena_create(&bad, &none), "Size");
    EXPECT_EQ(nullptr, none);
    buddy_options maximum = Options(8 * MiB);
    maximum.maximum_size_mib = 12;
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_arena_create(&maximum, &none), "MaximumSize");
    EXPECT_EQ(nullptr, none);
    Arena arena(8 * MiB);
    void* block = nullptr;
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_alloc(arena, 0, &block), "Size");
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_alloc(arena, 8 * MiB, &block), "Size");
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_alloc_order(arena, 11, &block), "Order");
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_alloc(arena, 4096, nullptr), "block");
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_alloc(nullptr, 4096, &block), "arena");
    EXPECT_EQ(0u, Stats(arena).allocated_bytes);
}

TEST(Sections, AnArenaGrowsSectionBySectionToItsMaximumThenRunsOutOfMemory) {
    buddy_options options = Options(4 * MiB);
    options.maximum_size_mib = 16;
    Arena arena(options);
    EXPECT_EQ(4 * MiB, Stats(arena).total_bytes);
    std::vector<void*> blocks(4);
    for (void*& block : blocks) {
        ASSERT_EQ(BUDDY_OK, buddy_alloc_order(arena, 10, &block));
        std::memset(block, 0x5A, 4 * MiB);
    }
    EXPECT_EQ(16 * MiB, Stats(arena).total_bytes);
    void* more = nullptr;
    ExpectError(BUDDY_E_OUT_OF_MEMORY, buddy_alloc(arena, 4096, &more), "maximum size of 16777216 bytes");
    for (void* block : blocks) EXPECT_EQ(BUDDY_OK, buddy_free(arena, block));
    EXPECT_EQ(16 * MiB, Stats(arena).free_bytes);
}

TEST(Errors, OutOfMemory) {
    Arena arena(4 * MiB);
    void* all = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc_order(arena, 10, &all));
    void* more = reinterpret_cast<void*>(1);
    ExpectError(BUDDY_E_OUT_OF_MEMORY, buddy_alloc(arena, 4096, &more), "No free block");
    EXPECT_EQ(nullptr, more);
    EXPECT_EQ(1u, Stats(arena).failed_allocations);
    EXPECT_EQ(BUDDY_OK, buddy_free(arena, all));
}

TEST(Errors, InvalidPointer) {
    Arena arena(8 * MiB);
    void* block = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc(arena, 16384, &block));
    int on_stack = 0;
    ExpectError(BUDDY_E_INVALID_POINTER, buddy_free(arena, &on_stack), "outside the arena");
    ExpectError(BUDDY_E_INVALID_POINTER, buddy_free(arena, static_cast<char*>(block) + 4096), "not the start");
    ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
    ExpectError(BUDDY_E_INVALID_POINTER, buddy_free(arena, block), "Double free");
}

TEST(Errors, DisposedComesBeforeEveryOtherCheck) {
    buddy_options options = Options(8 * MiB);
    buddy_arena* arena = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_arena_create(&options, &arena));
    ASSERT_EQ(BUDDY_OK, buddy_arena_destroy(arena));
    void* block = nullptr;
    ExpectError(BUDDY_E_DISPOSED, buddy_alloc(arena, 4096, &block), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_alloc(arena, 4096, nullptr), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_alloc(arena, 0, &block), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_alloc_order(arena, 99, &block), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_free(arena, nullptr), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_get_stats(arena, nullptr), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_report_now(arena, nullptr), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_arena_destroy(arena), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_reporter_start(arena), "destroyed");
    ExpectError(BUDDY_E_DISPOSED, buddy_reporter_stop(arena), "destroyed");
}

TEST(Errors, ADestroyedHandleStaysDisposedWhenANewArenaTakesItsSlot) {
    buddy_options options = Options(8 * MiB);
    buddy_arena* old_arena = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_arena_create(&options, &old_arena));
    ASSERT_EQ(BUDDY_OK, buddy_arena_destroy(old_arena));
    Arena fresh(options);
    void* block = nullptr;
    ExpectError(BUDDY_E_DISPOSED, buddy_alloc(old_arena, 4096, &block), "destroyed");
    ASSERT_EQ(BUDDY_OK, buddy_alloc(fresh, 4096, &block));
    EXPECT_EQ(BUDDY_OK, buddy_free(fresh, block));
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_alloc(reinterpret_cast<buddy_arena*>(0x7777), 4096, &block), "not an arena handle");
}

/* Creates an arena from valid options with one change; expects it refused, naming `field`, and nothing made. */
template <typename Change>
void ExpectRefused(Change change, const char* field) {
    buddy_options options = Options(8 * MiB);
    change(options);
    buddy_arena* none = nullptr;
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_arena_create(&options, &none), field);
    EXPECT_EQ(nullptr, none);
}

TEST(Errors, UnknownOptionsAreRefusedAtCreate) {
    ExpectRefused([](buddy_options& o) { o.flags |= 0x80; }, "flag");
    ExpectRefused([](buddy_options& o) { o.device = 7; }, "Device");
    ExpectRefused([](buddy_options& o) { o.backing = 5; }, "Backing");
    ExpectRefused([](buddy_options& o) { o.report_delay_ms = 4000000; }, "Delay");
}

TEST(Options, StructSizeVersionsTheOptions) {
    buddy_arena* none = nullptr;
    buddy_options unset = Options(8 * MiB);
    unset.struct_size = 0;
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_arena_create(&unset, &none), "struct_size");
    EXPECT_EQ(nullptr, none);

    // A caller built against the first versioned header: the fields it lacks take their defaults.
    buddy_options older = Options(8 * MiB);
    older.struct_size = BUDDY_OPTIONS_SIZE_V1;
    older.floor_kib = 3;  // past its size, so never read
    Arena first(older);
    EXPECT_NE(nullptr, static_cast<buddy_arena*>(first));

    // A caller built against a newer header: accepted while the fields this library does not know are zero.
    struct {
        buddy_options options;
        uint64_t future;  // 8 bytes, so the struct has no padding the library would read
    } newer{Options(8 * MiB), 0};
    newer.options.struct_size = sizeof newer;
    Arena second(newer.options);
    EXPECT_NE(nullptr, static_cast<buddy_arena*>(second));
    newer.future = 1;
    ExpectError(BUDDY_E_INVALID_ARGUMENT, buddy_arena_create(&newer.options, &none), "does not know");
    EXPECT_EQ(nullptr, none);
}

// Every byte of buddy_options is a named field: a later field can never hide in padding.
static_assert(sizeof(buddy_options) == 64, "buddy_options is 64 bytes");
static_assert(offsetof(buddy_options, reserved) == 60, "reserved names the last 4 bytes");

TEST(Options, ReservedAndOutOfRangeFieldsAreRefusedByName) {
    ExpectRefused([](buddy_options& o) { o.reserved = 1; }, "reserved");
    ExpectRefused([](buddy_options& o) { o.device_delay_ms = 4000000; }, "device_delay_ms");
    ExpectRefused([](buddy_options& o) { o.size = UINT64_MAX; }, "size");
    // A reporter option is refused before the backing is asked for: no 1 TiB allocation is tried first.
    ExpectRefused([](buddy_options& o) {
        o.size = 1ull << 40;
        o.backing = BUDDY_BACKING_ALIGNED_ALLOC;
        o.hint_delay_ms = 4000000;
    }, "HintDelay");
}

TEST(Options, FloorAndPressureAreChecked) {
    ExpectRefused([](buddy_options& o) { o.floor_kib = 48; }, "floor_kib");
    ExpectRefused([](buddy_options& o) { o.pressure = 0x40; }, "pressure");
}

TEST(Reporting, SignalledPressureReportsFragmentsAtOnce) {
    buddy_options options = Options(8 * MiB);
    options.report_delay_ms = 3600000;  // an hour: only pressure reports within the test
    options.idle_ms = UINT32_MAX;
    options.pressure = BUDDY_PRESSURE_OFF;
    Arena arena(options);
    std::vector<void*> blocks;
    for (int i = 0; i < 128; i++) {
        void* block = nullptr;
        ASSERT_EQ(BUDDY_OK, buddy_alloc(arena, 64 * 1024, &block));
        blocks.push_back(block);
    }
    // Every other 64 KiB block freed: fragments no buddy can merge, all below the 2 MiB report order.
    for (size_t i = 1; i < blocks.size(); i += 2) ASSERT_EQ(BUDDY_OK, buddy_free(arena, blocks[i]));
    ASSERT_EQ(BUDDY_OK, buddy_reporter_start(arena));
    ASSERT_EQ(BUDDY_OK, buddy_signal_pressure(arena));
    for (int i = 0; i < 3000 && Stats(arena).reported_bytes < 64 * 64 * 1024; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(64u * 64 * 1024, Stats(arena).reported_bytes);
    EXPECT_EQ(BUDDY_OK, buddy_reporter_stop(arena));
}

TEST(Errors, AnArenaLargerThanTheCommitLimitIsOutOfMemory) {
    buddy_options huge = Options(1ull << 40);
    huge.backing = BUDDY_BACKING_ALIGNED_ALLOC;
    buddy_arena* none = nullptr;
    ExpectError(BUDDY_E_OUT_OF_MEMORY, buddy_arena_create(&huge, &none), "AlignedAlloc");
    EXPECT_EQ(nullptr, none);
}

TEST(Errors, TimeoutWaitingForABlockMidReport) {
    buddy_options options = Options(4 * MiB);
    options.device = BUDDY_DEVICE_NONE;
    options.device_delay_ms = 1500;
    options.report_wait_timeout_ms = 100;
    Arena arena(options);
    void* block = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc_order(arena, 10, &block));
    ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
    std::thread report([&] { buddy_report_now(arena, nullptr); });
    while (Stats(arena).reporting_bytes == 0) std::this_thread::yield();
    ExpectError(BUDDY_E_TIMEOUT, buddy_alloc(arena, 4096, &block), "come back from a report");
    report.join();
    EXPECT_EQ(4 * MiB, Stats(arena).reported_bytes);
}

TEST(Errors, CorruptionFoundByPoisoning) {
    Arena arena(4 * MiB, BUDDY_FLAG_POISON);
    void* block = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc(arena, 4096, &block));
    ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
    static_cast<char*>(block)[10] = 1;  // write after free
    ExpectError(BUDDY_E_CORRUPTION, buddy_alloc(arena, 4096, &block), "written after it was freed");
}

// BUDDY_E_INTERNAL is the catch-all for failures the library does not expect; no input provokes it.

namespace {

long OpenDescriptors() {
    long count = 0;
    for (int fd = 0; fd < 65536; fd++)
        if (fcntl(fd, F_GETFD) != -1) count++;
    return count;
}

}  // namespace

TEST(Lifecycle, CreateAndDestroyCyclesKeepNothing) {
    buddy_options options = Options(4 * MiB);
    auto cycles = [&](int count) {
        for (int i = 0; i < count; i++) {
            buddy_arena* arena = nullptr;
            ASSERT_EQ(BUDDY_OK, buddy_arena_create(&options, &arena));
            ASSERT_EQ(BUDDY_OK, buddy_reporter_start(arena));
            ASSERT_EQ(BUDDY_OK, buddy_arena_destroy(arena));
        }
    };
    cycles(2000);  // warm up: the runtime's heaps reach their working size
    long descriptors = OpenDescriptors();
    long before = ResidentBytes();
    cycles(20000);
    long grown = ResidentBytes() - before;
    EXPECT_EQ(descriptors, OpenDescriptors());
    // A leak of even 1 KB per arena would show as 20 MB.
    EXPECT_LT(grown, static_cast<long>(12 * MiB)) << grown << " bytes kept by 20000 destroyed arenas";
}

/* Bytes malloc has handed out and not taken back, in the whole process. */
long MallocInUse() { return static_cast<long>(mallinfo2().uordblks); }

/* Runs `body` on `count` pthreads, one after another, each exiting when its body returns. */
template <typename Body>
void OnExitingThreads(int count, Body body) {
    for (int i = 0; i < count; i++) std::thread(body).join();
}

TEST(Lifecycle, ThreadsThatExitLeaveNoMallocBehind) {
    Arena arena(8 * MiB);
    auto refused = [&] {
        void* block = nullptr;
        // A size over the largest block: a message of over 100 bytes.
        EXPECT_EQ(BUDDY_E_INVALID_ARGUMENT, buddy_alloc(arena, 64 * MiB, &block));
        EXPECT_GT(std::strlen(buddy_last_error()), 100u);
    };
    auto allocating = [&] {
        void* block = nullptr;
        EXPECT_EQ(BUDDY_OK, buddy_alloc(arena, 4096, &block));
        EXPECT_EQ(BUDDY_OK, buddy_free(arena, block));
    };
    // Warm up: the runtime's own thread and heap bookkeeping reach their working size.
    OnExitingThreads(2000, refused);
    OnExitingThreads(2000, allocating);
    constexpr int threads = 8000;
    long before = MallocInUse();
    OnExitingThreads(threads, refused);
    long perRefusingThread = (MallocInUse() - before) / threads;
    before = MallocInUse();
    OnExitingThreads(threads, allocating);
    long perAllocatingThread = (MallocInUse() - before) / threads;
    // A message kept per exited thread would be its length and malloc's header: over 100 bytes.
    EXPECT_LT(perRefusingThread, 16) << "malloc'd bytes kept per exited thread that had a refused call";
    EXPECT_LT(perAllocatingThread, 16) << "malloc'd bytes kept per exited thread that allocated and freed";
}

TEST(Lifecycle, RefusedCreatesOpenNothing) {
    buddy_options delay = Options(8 * MiB);
    delay.report_delay_ms = 4000000;
    buddy_arena* warm = nullptr;
    ASSERT_EQ(BUDDY_E_INVALID_ARGUMENT, buddy_arena_create(&delay, &warm));  // the runtime opens what it keeps
    long descriptors = OpenDescriptors();
    for (int i = 0; i < 3000; i++) {
        buddy_arena* none = nullptr;
        ASSERT_EQ(BUDDY_E_INVALID_ARGUMENT, buddy_arena_create(&delay, &none));
    }
    EXPECT_EQ(descriptors, OpenDescriptors());
}

TEST(Lifecycle, StartAndStopRacingFromTwoPthreadsEndStopped) {
    buddy_options options = Options(8 * MiB);
    options.report_delay_ms = 1;
    Arena arena(options);
    std::atomic<int> failures{0};
    std::thread starter([&] { for (int i = 0; i < 500; i++) if (buddy_reporter_start(arena) != BUDDY_OK) failures++; });
    std::thread stopper([&] { for (int i = 0; i < 500; i++) if (buddy_reporter_stop(arena) != BUDDY_OK) failures++; });
    starter.join();
    stopper.join();
    EXPECT_EQ(0, failures.load());
    EXPECT_EQ(BUDDY_OK, buddy_reporter_stop(arena));
}

TEST(Lifecycle, DestroyWaitsForAReportInProgress) {
    buddy_options options = Options(8 * MiB);
    options.device_delay_ms = 300;
    buddy_arena* arena = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_arena_create(&options, &arena));
    void* block = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc_order(arena, 10, &block));
    std::memset(block, 1, 4 * MiB);
    ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
    std::atomic<buddy_status> reported{BUDDY_E_INTERNAL};
    std::thread report([&] { reported = buddy_report_now(arena, nullptr); });
    while (Stats(arena).reporting_bytes == 0) std::this_thread::yield();
    EXPECT_EQ(BUDDY_OK, buddy_arena_destroy(arena));
    report.join();
    EXPECT_EQ(BUDDY_OK, reported.load());
}

TEST(Reporting, DeviceNoneMarksBlocksReportedAndLeavesThemResident) {
    buddy_options options = Options(64 * MiB);
    options.device = BUDDY_DEVICE_NONE;
    Arena arena(options);
    FreeTouchedBlocks(arena, 8);
    long before = ResidentBytes();
    uint64_t reported = 0;
    ASSERT_EQ(BUDDY_OK, buddy_report_now(arena, &reported));
    EXPECT_EQ(32 * MiB, reported);
    EXPECT_GT(ResidentBytes(), before - static_cast<long>(8 * MiB));
    buddy_stats stats = Stats(arena);
    EXPECT_EQ(32 * MiB, stats.reported_bytes);
    EXPECT_EQ(0u, stats.reporter_failed_reports);
}

TEST(Reporting, ReportNowLowersResidentMemory) {
    Arena arena(512 * MiB);
    FreeTouchedBlocks(arena, 64);
    long before = ResidentBytes();
    uint64_t reported = 0;
    ASSERT_EQ(BUDDY_OK, buddy_report_now(arena, &reported));
    long after = ResidentBytes();
    EXPECT_EQ(256 * MiB, reported);
    EXPECT_GE(before - after, static_cast<long>(256 * MiB * 9 / 10));
    EXPECT_EQ(256 * MiB, Stats(arena).reported_bytes);
}

TEST(Reporting, BackgroundThreadReportsAfterTheDelay) {
    buddy_options options = Options(16 * MiB);
    options.report_delay_ms = 50;
    Arena arena(options);
    ASSERT_EQ(BUDDY_OK, buddy_reporter_start(arena));
    void* block = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc_order(arena, 10, &block));
    std::memset(block, 1, 4 * MiB);
    ASSERT_EQ(BUDDY_OK, buddy_free(arena, block));
    for (int i = 0; i < 3000 && Stats(arena).reported_bytes == 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(Stats(arena).reported_bytes, 0u);
    EXPECT_GT(Stats(arena).reporter_passes, 0u);
    EXPECT_EQ(BUDDY_OK, buddy_reporter_stop(arena));
}

TEST(Reporting, WithTheHintTierFreedMemoryIsHintedAndThenReported) {
    // The timed report tier takes only hinted memory: a report means the hint pass ran first.
    buddy_options options = Options(16 * MiB, BUDDY_FLAG_HUGE_PAGES | BUDDY_FLAG_POPULATE);
    options.report_delay_ms = 100;
    options.hint_delay_ms = 20;
    options.idle_ms = UINT32_MAX;
    options.pressure = BUDDY_PRESSURE_OFF;
    Arena arena(options);
    ASSERT_EQ(BUDDY_OK, buddy_reporter_start(arena));
    FreeTouchedBlocks(arena, 2);
    for (int i = 0; i < 3000 && Stats(arena).reported_bytes < 8 * MiB; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(8 * MiB, Stats(arena).reported_bytes);
    EXPECT_EQ(BUDDY_OK, buddy_reporter_stop(arena));
    // Reported blocks come back faulted in at once (BUDDY_FLAG_POPULATE), and read as zero.
    void* block = nullptr;
    ASSERT_EQ(BUDDY_OK, buddy_alloc_order(arena, 10, &block));
    EXPECT_EQ(0, static_cast<unsigned char*>(block)[4 * MiB - 1]);
    EXPECT_EQ(BUDDY_OK, buddy_free(arena, block));
}

TEST(Threads, ManyPthreadsAllocateAtOnceWithoutSharingABlock) {
    buddy_options options = Options(128 * MiB);
    options.zone_count = 2;
    Arena arena(options);
    ChurnResult churn = Churn(arena, 4, 6, 64, [](uint64_t i) { return i < 20000; });
    EXPECT_EQ(0, churn.damaged);
    EXPECT_EQ(0, churn.failed);
    buddy_stats stats = Stats(arena);
    EXPECT_EQ(0u, stats.allocated_bytes);
    EXPECT_EQ(stats.allocations, stats.frees);
}
