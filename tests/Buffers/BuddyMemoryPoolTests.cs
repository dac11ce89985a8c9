using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.InteropServices;

namespace Buddy.Tests;

/// <summary>The MemoryPool contract over an arena: sizes, disposal from anywhere, arrays, pins, and a real Pipe.</summary>
public class BuddyMemoryPoolTests
{
    [Theory]
    [InlineData(-1, 4096)]
    [InlineData(0, 4096)]
    [InlineData(1, 4096)]
    [InlineData(4097, 8192)]
    [InlineData(65536, 65536)]
    [InlineData(65537, 131072)]
    [InlineData(4 << 20, 4 << 20)]
    public void A_rent_gets_the_smallest_block_that_holds_it_and_its_memory_is_the_whole_block(int request, int expected)
    {
        using var arena = Arenas.Small();
        using var pool = new BuddyMemoryPool(arena);
        Assert.Equal(4 << 20, pool.MaxBufferSize);
        using (IMemoryOwner<byte> owner = pool.Rent(request))
        {
            Assert.Equal(expected, owner.Memory.Length);
            Assert.Equal(expected / Arenas.Page, arena.GetStatistics().AllocatedPages);
            owner.Memory.Span.Fill(7);
        }
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
    }

    [Theory]
    [InlineData(-2)]
    [InlineData((4 << 20) + 1)]
    [InlineData(int.MaxValue)]
    public void A_size_outside_the_range_is_refused_by_name_and_changes_nothing(int request)
    {
        using var arena = Arenas.Small();
        using var pool = new BuddyMemoryPool(arena);
        var e = Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => pool.Rent(request), "minBufferSize");
        Assert.Equal("minBufferSize", e.ParamName);
    }

    [Fact]
    public void Pool_metrics_are_observed_per_arena_and_owner_with_their_units_and_sum_every_pool_of_the_owner()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, Name = "pool-metrics" });
        using var first = new BuddyMemoryPool(arena, owner: "web");
        using var second = new BuddyMemoryPool(arena, owner: "web");
        using var other = new BuddyMemoryPool(arena, owner: "batch");
        var seen = new Dictionary<(string Instrument, string? Owner), (long Value, string? Unit)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name.StartsWith("buddy.pool.", StringComparison.Ordinal)) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? arenaName = null, owner = null;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == ArenaMetrics.ArenaTag) arenaName = (string?)tag.Value;
                if (tag.Key == ArenaMetrics.PoolOwnerTag) owner = (string?)tag.Value;
            }
            if (arenaName == "pool-metrics") seen[(instrument.Name, owner)] = (value, instrument.Unit);
        });
        listener.Start();

        IMemoryOwner<byte> a = first.Rent(4096), b = second.Rent(65536), c = other.Rent(8192);
        listener.RecordObservableInstruments();
        Assert.Equal((4096 + 65536, "By"), seen[("buddy.pool.rented", "web")]);
        Assert.Equal((2, "{rent}"), seen[("buddy.pool.rents", "web")]);
        Assert.Equal((8192, "By"), seen[("buddy.pool.rented", "batch")]);
        Assert.Equal((0, "{block}"), seen[("buddy.pool.abandoned", "web")]);

        // Returned on another thread than the rent: the sum is still exact, and the rent count stays.
        Threads.Run(1, _ =>
        {
            a.Dispose();
            b.Dispose();
        });
        c.Dispose();
        listener.RecordObservableInstruments();
        Assert.Equal(0, seen[("buddy.pool.rented", "web")].Value);
        Assert.Equal(0, seen[("buddy.pool.rented", "batch")].Value);
        Assert.Equal(2, seen[("buddy.pool.rents", "web")].Value);
        Assert.Equal(1, seen[("buddy.pool.rents", "batch")].Value);
    }

    [Fact]
    public void An_owner_dropped_without_a_dispose_has_its_block_freed_by_the_GC_and_counted()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, Backing = ArenaBacking.PinnedArray });
        using var pool = new BuddyMemoryPool(arena, owner: "abandoning");
        long counted = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "buddy.pool.abandoned") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
                if (tag.Key == ArenaMetrics.PoolOwnerTag && (string?)tag.Value == "abandoning") Interlocked.Add(ref counted, value);
        });
        listener.Start();
        using (IMemoryOwner<byte> kept = pool.Rent(4096))
        {
            RentAndDrop(pool, 3);
            Assert.Equal(1 + 3 * 16, arena.GetStatistics().AllocatedPages);

            GC.Collect();
            GC.WaitForPendingFinalizers();
            listener.RecordObservableInstruments();

            // The three dropped blocks are back; the one still owned is not touched.
            Assert.Equal(1, arena.GetStatistics().AllocatedPages);
            Assert.Equal(3, pool.AbandonedBlocks);
            Assert.Equal(3, Interlocked.Read(ref counted));
            kept.Memory.Span.Fill(1);
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
        Assert.Equal(3, pool.AbandonedBlocks); // a disposed owner is never finalized
        arena.CheckInvariants();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void RentAndDrop(BuddyMemoryPool pool, int count)
    {
        for (int i = 0; i < count; i++)
        {
            IMemoryOwner<byte> dropped = pool.Rent(64 << 10);
            dropped.Memory.Span.Fill(2);
            GC.KeepAlive(dropped);
        }
    }

    [Fact]
    public void With_ValidateOnFree_owners_are_not_reused_so_a_stale_second_dispose_never_frees_the_block_someone_else_now_owns()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, ValidateOnFree = true });
        using var pool = new BuddyMemoryPool(arena);
        IMemoryOwner<byte> first = pool.Rent(8192);
        nint address = Address(first);
        first.Dispose();
        using IMemoryOwner<byte> second = pool.Rent(8192);
        Assert.NotSame(first, second);
        Assert.Equal(address, Address(second)); // the thread cache hands the same block back
        first.Dispose();
        Assert.Equal(2, arena.GetStatistics().AllocatedPages);
        Assert.Throws<ObjectDisposedException>(() => first.Memory.Span[0] = 1);
        arena.CheckInvariants();
    }

    [Fact]
    public void Owners_are_reused_so_a_rent_allocates_nothing_and_a_second_dispose_before_the_next_rent_does_nothing()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, Backing = ArenaBacking.PinnedArray });
        using var pool = new BuddyMemoryPool(arena);
        IMemoryOwner<byte> first = pool.Rent(8192);
        first.Dispose();
        first.Dispose();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
        Assert.Throws<ObjectDisposedException>(() => first.Memory.Span[0] = 1);
        // A thread's spare owners are a stack: on a fresh thread the next rent takes the owner just returned.
        Threads.Run(1, _ =>
        {
            IMemoryOwner<byte> returned = pool.Rent(8192);
            returned.Dispose();
            using IMemoryOwner<byte> again = pool.Rent(4096);
            Assert.Same(returned, again);
        });

        for (int i = 0; i < 1000; i++) pool.Rent(65536).Dispose(); // past first use of every path
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            IMemoryOwner<byte> owner = pool.Rent(i % 2 == 0 ? 4096 : 65536);
            owner.Memory.Span[0] = 1;
            owner.Dispose();
        }
        // Under a byte per rent: one owner each (the old design's 48 B) would be 480,000 bytes. A stray
        // runtime allocation on this thread (a queue segment, a counter cell) may still land in the window.
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 9_999);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_returned_owner_waiting_for_reuse_keeps_no_section_array_alive()
    {
        // On this thread, whose spare stack (or the shared queue) keeps the returned owner reachable.
        WeakReference sectionArray = RentReturnAndDisposeArena();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(sectionArray.IsAlive, "a spare owner kept the pinned section alive");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference RentReturnAndDisposeArena()
    {
        var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, Backing = ArenaBacking.PinnedArray });
        var pool = new BuddyMemoryPool(arena, ownsArena: true);
        IMemoryOwner<byte> owner = pool.Rent(4096);
        Assert.True(MemoryMarshal.TryGetArray<byte>(owner.Memory, out ArraySegment<byte> segment));
        var array = new WeakReference(segment.Array);
        owner.Dispose();
        pool.Dispose();
        return array;
    }

    [Fact]
    public void A_reused_owner_that_is_dropped_is_still_freed_by_the_GC()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB }); // no ValidateOnFree: owners are reused
        using var pool = new BuddyMemoryPool(arena, owner: "reused-then-dropped");
        Threads.Run(1, _ => RentDisposeRentAndDrop(pool)); // a fresh thread: its spare stack starts empty
        Assert.Equal(16, arena.GetStatistics().AllocatedPages);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
        Assert.Equal(1, pool.AbandonedBlocks);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void RentDisposeRentAndDrop(BuddyMemoryPool pool)
    {
        IMemoryOwner<byte> first = pool.Rent(4096);
        first.Dispose();
        IMemoryOwner<byte> second = pool.Rent(65536);
        Assert.Same(first, second);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // owners reused
    public void Owners_disposed_from_two_threads_at_once_free_their_block_once(bool validateOnFree)
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, ValidateOnFree = validateOnFree });
        using var pool = new BuddyMemoryPool(arena);
        for (int round = 0; round < 500; round++)
        {
            IMemoryOwner<byte> owner = pool.Rent(round % 3 == 0 ? 4096 : 65536);
            using var start = new Barrier(2);
            Threads.Run(2, _ =>
            {
                start.SignalAndWait();
                owner.Dispose();
            });
            Assert.Equal(0, arena.GetStatistics().AllocatedPages);
        }
        arena.CheckInvariants();
    }

    [Fact]
    public void Rent_after_dispose_throws_and_a_late_return_is_harmless()
    {
        using var arena = Arenas.Small();
        var pool = new BuddyMemoryPool(arena);
        IMemoryOwner<byte> late = pool.Rent();
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
        late.Dispose();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
        Assert.False(arena.IsDisposed);
    }

    [Fact]
    public void A_pool_that_owns_its_arena_disposes_it_and_late_returns_do_nothing()
    {
        var arena = Arenas.Small();
        var pool = new BuddyMemoryPool(arena, ownsArena: true);
        IMemoryOwner<byte> late = pool.Rent();
        pool.Dispose();
        Assert.True(arena.IsDisposed);
        late.Dispose();
        late.Dispose();
    }

    [Fact]
    public void Over_a_pinned_array_arena_every_block_is_array_backed()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, Backing = ArenaBacking.PinnedArray, ValidateOnFree = true });
        using var pool = new BuddyMemoryPool(arena);
        foreach (int size in new[] { -1, 100, 65536, 4 << 20 })
        {
            using IMemoryOwner<byte> owner = pool.Rent(size);
            Assert.True(MemoryMarshal.TryGetArray(owner.Memory, out ArraySegment<byte> segment));
            Assert.Equal(owner.Memory.Length, segment.Count);
            owner.Memory.Span[^1] = 0x5A;
            Assert.Equal(0x5A, segment.Array![segment.Offset + segment.Count - 1]);
        }
    }

    [Fact]
    public unsafe void Over_native_memory_a_block_pins_to_its_own_address_and_is_not_an_array()
    {
        using var arena = Arenas.Small();
        using var pool = new BuddyMemoryPool(arena);
        using IMemoryOwner<byte> owner = pool.Rent(65536);
        Assert.False(MemoryMarshal.TryGetArray<byte>(owner.Memory, out _));
        using MemoryHandle handle = owner.Memory.Slice(100).Pin();
        Assert.Equal(Address(owner) + 100, (nint)handle.Pointer);
    }

    [Fact]
    public async Task A_pipe_moves_hundreds_of_mebibytes_through_the_pool_intact()
    {
        using var arena = Arenas.Small(size: 64 * Arenas.MiB);
        using var pool = new BuddyMemoryPool(arena);
        var pipe = new Pipe(new PipeOptions(pool, minimumSegmentSize: 4096, pauseWriterThreshold: 4 << 20, resumeWriterThreshold: 2 << 20, useSynchronizationContext: false));
        const long Total = 256L << 20;
        CancellationToken cancel = TestContext.Current.CancellationToken;
        Task writer = Task.Run(async () =>
        {
            var random = new Random(9);
            long written = 0;
            while (written < Total)
            {
                int hint = random.Next(1, 256 << 10);
                Memory<byte> memory = pipe.Writer.GetMemory(hint);
                int count = (int)Math.Min(Math.Min(memory.Length, hint), Total - written);
                for (int i = 0; i < count; i++) memory.Span[i] = (byte)((written + i) * 31 >> 3);
                pipe.Writer.Advance(count);
                written += count;
                await pipe.Writer.FlushAsync(cancel);
            }
            await pipe.Writer.CompleteAsync();
        }, cancel);
        long read = 0, segments = 0;
        while (true)
        {
            ReadResult result = await pipe.Reader.ReadAsync(cancel);
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                ReadOnlySpan<byte> span = segment.Span;
                for (int i = 0; i < span.Length; i++)
                    if (span[i] != (byte)((read + i) * 31 >> 3)) Assert.Fail($"byte {read + i} differs");
                read += span.Length;
                segments++;
            }
            pipe.Reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted) break;
        }
        await pipe.Reader.CompleteAsync();
        await writer;
        Assert.Equal(Total, read);
        Assert.True(segments > 1000, $"{segments} segments");
        Assert.True(arena.GetStatistics().Allocations > 1000);
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
        arena.CheckInvariants();
    }

    private static unsafe nint Address(IMemoryOwner<byte> owner)
    {
        using MemoryHandle handle = owner.Memory.Pin();
        return (nint)handle.Pointer;
    }
}
