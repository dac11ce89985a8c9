using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Buddy.Native;

/// <summary>
/// The C ABI (buddy.h). Every export returns a status and catches everything: no exception
/// crosses the boundary. The message of the last failure on a thread is in buddy_last_error.
/// Handles come from <see cref="ArenaHandles"/>: a call on a destroyed arena gets BUDDY_E_DISPOSED,
/// checked before any other argument, and destroyed arenas leave nothing behind.
/// </summary>
internal static unsafe class NativeExports
{
    /// <summary>
    /// The last failure's message, NUL-terminated, in a pinned array the thread owns: when a thread
    /// exits, the GC takes it back, where malloc'd memory would stay for good.
    /// </summary>
    [ThreadStatic] private static byte[]? lastError;

    [UnmanagedCallersOnly(EntryPoint = "buddy_arena_create")]
    public static Status ArenaCreate(NativeOptions* options, nint* arena)
    {
        try
        {
            if (options is null || arena is null) return Fail(Status.InvalidArgument, "options and arena must not be NULL.");
            *arena = 0;
            // Before anything is built: a handle packs a 32-bit slot and a 32-bit generation.
            if (IntPtr.Size < 8) return Fail(Status.Internal, "libbuddy needs a 64-bit process.");
            *arena = ArenaHandles.Add(new NativeArena(NativeOptions.Read(options)));
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "buddy_arena_destroy")]
    public static Status ArenaDestroy(nint arena)
    {
        try
        {
            if (!TryGet(arena, out NativeArena? holder, out Status status)) return status;
            try
            {
                holder.Destroy();
            }
            finally
            {
                // Once the arena is gone its handle is retired, even if a later step of Destroy failed.
                if (holder.Arena.IsDisposed) ArenaHandles.Remove(arena, holder);
            }
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // Where the build links the C fast path (fastpath/buddy_fast.c), buddy_alloc, buddy_alloc_zeroed,
    // buddy_alloc_order and buddy_free are C: they serve cache hits themselves and call these for
    // everything else, and the build keeps these out of the library's exported symbols.
#if FAST_PATH_IN_C
    private const string Prefix = "buddy_managed_";
#else
    private const string Prefix = "buddy_";
#endif

    [UnmanagedCallersOnly(EntryPoint = Prefix + "alloc")]
    public static Status Alloc(nint arena, nuint size, void** block) => Allocate(arena, size, -1, zeroed: false, block);

    [UnmanagedCallersOnly(EntryPoint = Prefix + "alloc_zeroed")]
    public static Status AllocZeroed(nint arena, nuint size, void** block) => Allocate(arena, size, -1, zeroed: true, block);

    [UnmanagedCallersOnly(EntryPoint = Prefix + "alloc_order")]
    public static Status AllocOrder(nint arena, int order, void** block) => Allocate(arena, 0, order, zeroed: false, block);

    /// <summary>The calling thread's cache of the arena, with a reference the C binding drops; null when the arena keeps none.</summary>
    [UnmanagedCallersOnly(EntryPoint = "buddy_managed_bind")]
    public static Status Bind(nint arena, void** cache)
    {
        try
        {
            *cache = null;
            if (ArenaHandles.Find(arena) is not { } holder) return Missing(arena);
            *cache = holder.Arena.BindThreadCache();
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = Prefix + "free")]
    public static Status Free(nint arena, void* block)
    {
        try
        {
            if (ArenaHandles.Find(arena) is not { } holder) return Missing(arena);
            holder.Arena.Free((nint)block);
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "buddy_reporter_start")]
    public static Status ReporterStart(nint arena)
    {
        try
        {
            if (!TryGet(arena, out NativeArena? holder, out Status status)) return status;
            holder.Reporter.Start();
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "buddy_reporter_stop")]
    public static Status ReporterStop(nint arena)
    {
        try
        {
            if (!TryGet(arena, out NativeArena? holder, out Status status)) return status;
            ObjectDisposedException.ThrowIf(holder.Arena.IsDisposed, holder.Arena);
            holder.ExistingReporter?.Stop();
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "buddy_signal_pressure")]
    public static Status SignalPressure(nint arena)
    {
        try
        {
            if (!TryGet(arena, out NativeArena? holder, out Status status)) return status;
            holder.Reporter.SignalPressure();
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "buddy_report_now")]
    public static Status ReportNow(nint arena, ulong* reportedBytes)
    {
        try
        {
            if (!TryGet(arena, out NativeArena? holder, out Status status)) return status;
            // Read once: a destroy racing this call must not turn a finished pass into BUDDY_E_DISPOSED.
            Reporting.PageReporter reporter = holder.Reporter;
            Reporting.ReportingPassResult pass = reporter.ReportNow();
            if (reportedBytes is not null) *reportedBytes = (ulong)pass.ReportedBytes;
            return pass.FailedReports == 0 ? Status.Ok
                : Fail(Status.DeviceFailed, $"The device failed {pass.FailedReports} of {pass.DeviceCalls} scatterlists: {reporter.GetStatistics().LastError}");
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "buddy_get_stats")]
    public static Status GetStats(nint arena, NativeStats* stats)
    {
        try
        {
            if (!TryGet(arena, out NativeArena? holder, out Status status)) return status;
            if (stats is null) return Fail(Status.InvalidArgument, "stats must not be NULL.");
            ArenaStatistics s = holder.Arena.GetStatistics();
            ReporterStatisticsView reporter = ReporterStatisticsView.Of(holder.ExistingReporter);
            var snapshot = new NativeStats
            {
                PageSize = (uint)s.PageSize,
                TotalBytes = (ulong)(s.TotalPages * s.PageSize),
                FreeBytes = (ulong)s.FreeBytes,
                AllocatedBytes = (ulong)s.AllocatedBytes,
                ReportedBytes = (ulong)s.ReportedBytes,
                ReportingBytes = (ulong)(s.ReportingPages * s.PageSize),
                HintedBytes = (ulong)s.HintedBytes,
                CachedBytes = (ulong)(s.CachedPages * s.PageSize),
                Allocations = (ulong)s.Allocations,
                Frees = (ulong)s.Frees,
                FailedAllocations = (ulong)s.FailedAllocations,
                SpinWaits = (ulong)s.SpinWaits,
                ZeroSkippedBytes = (ulong)s.ZeroSkippedBytes,
                ReporterPasses = reporter.Passes,
                ReporterDeviceCalls = reporter.DeviceCalls,
                ReporterFailedReports = reporter.FailedReports,
                MaxOrder = (uint)s.MaxOrder,
            };
            for (int order = 0; order <= s.MaxOrder; order++) snapshot.FreeBlocksByOrder[order] = (ulong)s.FreeBlocks(order);
            snapshot.WriteTo(stats);
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    /// <summary>The message of the last failure on this thread, or "" if there was none. Valid until the next failure on the thread.</summary>
    [UnmanagedCallersOnly(EntryPoint = "buddy_last_error")]
    public static byte* LastError() => lastError is { } message ? (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(message)) : Empty;

    private static readonly byte* Empty = (byte*)NativeMemory.AllocZeroed(1);

    private static Status Allocate(nint arena, nuint size, int order, bool zeroed, void** block)
    {
        try
        {
            if (block is not null) *block = null;
            if (ArenaHandles.Find(arena) is not { } holder) return Missing(arena);
            if (block is null) return Fail(Status.InvalidArgument, "block must not be NULL.");
            if (order < 0)
            {
                if (size > long.MaxValue) return Fail(Status.InvalidArgument, $"Size {size} is too large.");
                order = holder.Arena.OrderForSize((long)size);
            }
            if (!holder.Arena.TryAllocate(order, out nint address, Migratetype.Movable, zeroed))
                return Fail(Status.OutOfMemory,
                    $"No free block of order {order} ({holder.Arena.BytesOfOrder(order)} bytes) in {holder.Arena.OnlineBytes} bytes online; maximum size of {holder.Arena.MaximumSize} bytes.");
            *block = (void*)address;
            return Status.Ok;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    private static bool TryGet(nint arena, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out NativeArena? holder, out Status status)
    {
        holder = ArenaHandles.Find(arena);
        status = holder is null ? Missing(arena) : Status.Ok;
        return holder is not null;
    }

    /// <summary>Says why a handle has no arena: destroyed, or never one.</summary>
    private static Status Missing(nint arena) => ArenaHandles.TryGet(arena, out _) == ArenaHandles.Lookup.Destroyed
        ? Fail(Status.Disposed, "The arena has been destroyed.")
        : Fail(Status.InvalidArgument, "arena is NULL or not an arena handle.");

    private static Status Fail(Exception e) => Fail(e switch
    {
        InvalidAddressException => Status.InvalidPointer,
        ArgumentException or OverflowException => Status.InvalidArgument,
        ArenaExhaustedException or OutOfMemoryException => Status.OutOfMemory,
        ObjectDisposedException => Status.Disposed,
        TimeoutException => Status.Timeout,
        ArenaCorruptionException => Status.Corruption,
        _ => Status.Internal,
    }, $"{e.GetType().Name}: {e.Message}");

    private static Status Fail(Status status, string message)
    {
        int length = Encoding.UTF8.GetByteCount(message);
        // Reused while it fits: the contract keeps a message only until the thread's next failure.
        byte[] buffer = lastError is { } kept && kept.Length > length
            ? kept
            : GC.AllocateUninitializedArray<byte>(Math.Max(length + 1, 256), pinned: true);
        Encoding.UTF8.GetBytes(message, buffer);
        buffer[length] = 0;
        lastError = buffer;
        return status;
    }

    /// <summary>Reporter counters, zero when no reporter was built.</summary>
    private readonly record struct ReporterStatisticsView(ulong Passes, ulong DeviceCalls, ulong FailedReports)
    {
        public static ReporterStatisticsView Of(Reporting.PageReporter? reporter)
            => reporter?.GetStatistics() is { } s ? new((ulong)s.Passes, (ulong)s.DeviceCalls, (ulong)s.FailedReports) : default;
    }
}
