using Buddy.Reporting.FaultInjection;
using Buddy.Cli.Workloads;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

public unsafe class ReportingConcurrencyTests
{
    public static TheoryData<ReportingMode, string, bool> Devices => new()
    {
        { ReportingMode.Isolate, "dontneed", false },
        { ReportingMode.InPlace, "dontneed", false },
        { ReportingMode.Isolate, "failing", false },
        { ReportingMode.InPlace, "slow", false },
        { ReportingMode.Isolate, "dontneed", true },
        { ReportingMode.InPlace, "failing", true },
    };

    private static IReportingDevice Create(string name) => name switch
    {
        "dontneed" => new MadviseDontNeedDevice(),
        "failing" => new FailingDevice(failEvery: 3, throwOnFailure: true, inner: new MadviseDontNeedDevice()),
        _ => new SlowDevice(TimeSpan.FromMilliseconds(2), new MadviseDontNeedDevice()),
    };

    [Theory]
    [MemberData(nameof(Devices))]
    public void Threads_churn_while_the_reporter_runs_and_nothing_is_lost_or_overwritten(ReportingMode mode, string deviceName, bool sectioned)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "The devices under test are Linux facilities.");
        using var arena = Arenas.OneOrSectioned(sectioned, 64 * Arenas.MiB, zones: 2);
        IReportingDevice device = Create(deviceName);
        using var reporter = new PageReporter(arena, device,
            new PageReporterOptions { Delay = TimeSpan.FromMilliseconds(1), Capacity = 4, ReportOrder = 6, Mode = mode });
        reporter.Start();
        var deadline = DateTime.UtcNow.AddSeconds(2);
        long operations = 0;
        Threads.Run(3, id =>
        {
            var random = new Random(id);
            var live = new List<LiveBlock>();
            long sequence = 0;
            while (DateTime.UtcNow < deadline)
            {
                if (live.Count < 48 && random.Next(2) == 0)
                {
                    int order = random.Next(0, 9);
                    bool zeroed = random.Next(4) == 0;
                    if (!arena.TryAllocate(order, out nint block, (Migratetype)random.Next(0, 3), zeroed)) continue;
                    long bytes = arena.BytesOfOrder(order);
                    if (zeroed) Assert.True(new Span<byte>((void*)block, (int)bytes).IndexOfAnyExcept((byte)0) < 0, "a zeroed block was not zero");
                    var stamped = new LiveBlock(block, bytes, ((long)id << 48) | ++sequence);
                    BlockPattern.Stamp(stamped);
                    live.Add(stamped);
                }
                else if (live.Count > 0)
                {
                    int i = random.Next(live.Count);
                    Assert.True(BlockPattern.Verify(live[i], out string? damage), damage);
                    arena.Free(live[i].Address);
                    live[i] = live[^1];
                    live.RemoveAt(live.Count - 1);
                }
                Interlocked.Increment(ref operations);
            }
            foreach (LiveBlock block in live)
            {
                Assert.True(BlockPattern.Verify(block, out string? damage), damage);
                arena.Free(block.Address);
            }
        });
        reporter.Stop();
        arena.CheckInvariants();
        // One snapshot: an idle section may go offline between two reads of a sectioned arena.
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(stats.TotalPages, stats.FreePages);
        Assert.Equal(0, stats.ReportingPages);
        Assert.True(reporter.GetStatistics().DeviceCalls > 0, "the reporter never ran");
        Assert.True(operations > 1000, $"only {operations} operations");
        (device as IDisposable)?.Dispose();
    }
}
