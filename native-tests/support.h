// Helpers the native suites share: options, an owning arena handle, statistics.
#pragma once

#include <buddy.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr uint64_t MiB = 1ull << 20;

inline buddy_options Options(uint64_t size, uint32_t flags = 0) {
    buddy_options options{};
    options.struct_size = sizeof(buddy_options);
    options.size = size;
    options.zone_count = 1;
    options.backing = BUDDY_BACKING_RESERVE;
    options.flags = flags | BUDDY_FLAG_VALIDATE;
    return options;
}

struct Arena {
    buddy_arena* handle = nullptr;
    explicit Arena(const buddy_options& options) { EXPECT_EQ(BUDDY_OK, buddy_arena_create(&options, &handle)) << buddy_last_error(); }
    explicit Arena(uint64_t size, uint32_t flags = 0) : Arena(Options(size, flags)) {}
    ~Arena() { buddy_arena_destroy(handle); }
    operator buddy_arena*() const { return handle; }
};

inline buddy_stats Stats(buddy_arena* arena) {
    buddy_stats stats{};
    stats.struct_size = sizeof(buddy_stats);
    EXPECT_EQ(BUDDY_OK, buddy_get_stats(arena, &stats)) << buddy_last_error();
    return stats;
}

inline void ExpectError(buddy_status expected, buddy_status actual, const char* subject) {
    EXPECT_EQ(expected, actual);
    EXPECT_NE(nullptr, std::strstr(buddy_last_error(), subject)) << buddy_last_error();
}

struct ChurnResult {
    int damaged = 0;  // blocks whose words changed while their thread held them: a block was shared
    int failed = 0;   // allocations or frees that did not return BUDDY_OK
};

/* Runs `threads` pthreads that allocate blocks of 4 KiB << (i % orders), write their tag into every
 * word, check the words before freeing, and hold up to `max_live` at once, while `go_on(i)` is true;
 * then each frees what it holds. */
template <typename GoOn>
ChurnResult Churn(buddy_arena* arena, int threads, int orders, size_t max_live, GoOn go_on) {
    std::atomic<int> damaged{0}, failed{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; t++) {
        workers.emplace_back([&, t] {
            std::vector<std::pair<uint64_t*, size_t>> live;
            uint64_t tag = static_cast<uint64_t>(t + 1) << 40;
            auto release = [&] {
                auto [words, size] = live.back();
                live.pop_back();
                for (size_t w = 1; w < size / 8; w++) if (words[w] != words[0]) { damaged++; break; }
                if (buddy_free(arena, words) != BUDDY_OK) failed++;
            };
            for (uint64_t i = 0; go_on(i); i++) {
                if (live.size() < max_live && (i % 3 != 0 || live.empty())) {
                    size_t size = size_t{4096} << (i % orders);
                    void* block = nullptr;
                    if (buddy_alloc(arena, size, &block) != BUDDY_OK) { failed++; continue; }
                    auto* words = static_cast<uint64_t*>(block);
                    for (size_t w = 0; w < size / 8; w++) words[w] = tag + i;
                    live.emplace_back(words, size);
                } else {
                    release();
                }
            }
            while (!live.empty()) release();
        });
    }
    for (auto& worker : workers) worker.join();
    return {damaged.load(), failed.load()};
}

}  // namespace
