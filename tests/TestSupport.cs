namespace Buddy.Tests;

internal static class Arenas
{
    public const int Page = 4096;
    public const long MiB = 1L << 20;

    /// <summary>A small single-zone arena: deterministic zone choice for tests that reason about layout.</summary>
    /// <param name="threadCaches">Off for tests that reason about where the zone path puts each block.</param>
    public static BuddyArena Small(long size = 16 * MiB, int zones = 1, bool groupByMobility = true, int atomicReservePercent = 0, bool threadCaches = true)
        => new(new ArenaOptions
        {
            ValidateOnFree = true, Size = size, ZoneCount = zones, GroupByMobility = groupByMobility,
            AtomicReservePercent = atomicReservePercent, ThreadCaches = threadCaches,
        });

    /// <summary>
    /// One section of <paramref name="size"/>, or (<paramref name="sectioned"/>) a start of one section of
    /// an eighth of it that grows to <paramref name="size"/>, with free sections going offline as soon as
    /// the idle timer looks: the same workload then runs across hot-add and hot-remove.
    /// </summary>
    public static BuddyArena OneOrSectioned(bool sectioned, long size, int zones)
        => new(new ArenaOptions
        {
            ValidateOnFree = true, ZoneCount = zones, Backing = ArenaBacking.Reserve,
            Size = sectioned ? size / 8 : size, SectionSize = sectioned ? size / 8 : 0, MaximumSize = size,
            SectionIdleTime = TimeSpan.Zero,
        });

    /// <summary>
    /// Runs a call that must be rejected, and asserts the exception type, that its message names
    /// <paramref name="subject"/>, and that the allocator is exactly as it was.
    /// </summary>
    public static TException AssertRejected<TException>(BuddyArena arena, Action call, string subject) where TException : Exception
    {
        ArenaStatistics before = arena.GetStatistics();
        var e = Assert.Throws<TException>(call);
        Assert.Contains(subject, e.Message, StringComparison.OrdinalIgnoreCase);
        arena.CheckInvariants();
        Assert.Equal(before, arena.GetStatistics(), SameStatistics.Instance);
        return e;
    }
}

internal static class Wait
{
    /// <summary>Polls until <paramref name="condition"/> holds; fails after a generous deadline (not a speed check).</summary>
    public static void Until(Func<bool> condition, string what, int seconds = 30)
    {
        Assert.True(SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(seconds)), $"gave up waiting: {what}");
    }
}

internal static class Threads
{
    /// <summary>Runs <paramref name="body"/> on <paramref name="count"/> dedicated threads and rethrows the first failure.</summary>
    public static void Run(int count, Action<int> body)
    {
        Exception? failure = null;
        var threads = Enumerable.Range(0, count).Select(i => new Thread(() =>
        {
            try { body(i); }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (failure is not null) throw new AggregateException(failure);
    }
}

/// <summary>Tests that read the process RSS run alone, so other tests' allocations do not blur the figures.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ResidentSetCollection
{
    public const string Name = "resident set";
}

/// <summary>A call on its own thread, for lifecycle races; Join rethrows its failure.</summary>
internal sealed class Background<T>
{
    private readonly Thread thread;
    private T result = default!;
    private Exception? failure;

    private Background(Func<T> body)
    {
        thread = new Thread(() =>
        {
            try { result = body(); }
            catch (Exception e) { failure = e; }
        }) { IsBackground = true };
        thread.Start();
    }

    public static Background<T> Run(Func<T> body) => new(body);

    public bool IsCompleted => !thread.IsAlive;

    /// <summary>True while the call is blocked (waiting for a lock, a join or an event).</summary>
    public bool IsBlocked => (thread.ThreadState & ThreadState.WaitSleepJoin) != 0;

    /// <summary>Waits for the call; a generous deadline turns a hang into a failure rather than a stuck run.</summary>
    public T Join(int seconds = 120)
    {
        Assert.True(thread.Join(TimeSpan.FromSeconds(seconds)), "the call hung");
        if (failure is not null) throw new AggregateException(failure);
        return result;
    }
}

internal static class Background
{
    public static Background<bool> Run(Action body) => Background<bool>.Run(() =>
    {
        body();
        return true;
    });
}

/// <summary>A child of this process's own v1 memory cgroup with a limit; removed on dispose.</summary>
internal sealed class ChildMemoryCgroup : IDisposable
{
    public const string Root = "/sys/fs/cgroup/memory";

    private ChildMemoryCgroup(string path) => Path = path;

    public string Path { get; }

    /// <summary>The group, or null with the reason it cannot be made here.</summary>
    public static ChildMemoryCgroup? Create(long limit, out string reason)
    {
        reason = "";
        string? own = File.Exists("/proc/self/cgroup")
            ? File.ReadLines("/proc/self/cgroup").Select(l => l.Split(':', 3)).FirstOrDefault(f => f.Length == 3 && f[1] == "memory")?[2]
            : null;
        if (!OperatingSystem.IsLinux() || own is null || !Directory.Exists(Root + own))
        {
            reason = "cgroup v1's memory controller is not mounted at /sys/fs/cgroup/memory here.";
            return null;
        }
        string group = $"{Root}{own.TrimEnd('/')}/buddy-test-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            Directory.CreateDirectory(group);
            File.WriteAllText(System.IO.Path.Combine(group, "memory.limit_in_bytes"), limit.ToString());
            return new ChildMemoryCgroup(group);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            reason = $"this process may not create a child memory cgroup ({e.Message}).";
            if (Directory.Exists(group)) Directory.Delete(group);
            return null;
        }
    }

    public void Dispose()
    {
        // The group is empty once its processes have exited; the kernel may take a moment to agree.
        SpinWait.SpinUntil(() =>
        {
            try
            {
                Directory.Delete(Path);
                return true;
            }
            catch (IOException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(10));
    }
}

/// <summary>Statistics compared counter by counter: what a refused call must leave as it was.</summary>
internal sealed class SameStatistics : IEqualityComparer<ArenaStatistics>
{
    public static readonly SameStatistics Instance = new();

    public bool Equals(ArenaStatistics? x, ArenaStatistics? y) => x is null ? y is null : x.SameAs(y);

    public int GetHashCode(ArenaStatistics obj) => HashCode.Combine(obj.TotalPages, obj.FreePages, obj.Allocations);
}
