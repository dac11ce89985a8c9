using System.Buffers;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Buddy.Benchmarks;

/// <summary>
/// Rent and return through <see cref="BuddyMemoryPool"/> against <c>MemoryPool&lt;byte&gt;.Shared</c> and
/// Kestrel's own pool (the one its default pool factory makes): time and managed bytes per rent, and
/// the <c>.Span</c> of the rented memory touched once, as a writer does.
/// </summary>
[MemoryDiagnoser]
public class MemoryPoolBenchmarks
{
    private BuddyArena native = null!;
    private BuddyArena pinned = null!;
    private BuddyMemoryPool nativePool = null!;
    private BuddyMemoryPool pinnedPool = null!;
    private MemoryPool<byte> kestrelPool = null!;
    private WebApplication kestrel = null!;

    [Params(4096, 65536)]
    public int Bytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        native = new BuddyArena(new ArenaOptions { Size = 256L << 20, Backing = ArenaBacking.Reserve });
        pinned = new BuddyArena(new ArenaOptions { Size = 256L << 20, Backing = ArenaBacking.PinnedArray });
        nativePool = new BuddyMemoryPool(native);
        pinnedPool = new BuddyMemoryPool(pinned);
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        kestrel = builder.Build();
        kestrelPool = kestrel.Services.GetRequiredService<IMemoryPoolFactory<byte>>().Create();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        nativePool.Dispose();
        pinnedPool.Dispose();
        kestrelPool.Dispose();
        ((IDisposable)kestrel).Dispose();
        native.Dispose();
        pinned.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Shared() => RentTouchReturn(MemoryPool<byte>.Shared);

    /// <summary>Kestrel's pool has 4 KiB blocks only and refuses larger rents: at 64 KiB this row rents 4 KiB.</summary>
    [Benchmark]
    public void Kestrel() => RentTouchReturn(kestrelPool, Math.Min(Bytes, kestrelPool.MaxBufferSize));

    [Benchmark]
    public void Buddy_Reserve() => RentTouchReturn(nativePool);

    [Benchmark]
    public void Buddy_PinnedArray() => RentTouchReturn(pinnedPool);

    private void RentTouchReturn(MemoryPool<byte> pool) => RentTouchReturn(pool, Bytes);

    private static void RentTouchReturn(MemoryPool<byte> pool, int bytes)
    {
        IMemoryOwner<byte> owner = pool.Rent(bytes);
        owner.Memory.Span[0] = 1;
        owner.Dispose();
    }
}
