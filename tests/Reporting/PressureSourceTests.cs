using System.Diagnostics;
using Buddy.Reporting;
using Buddy.Reporting.Pressure;
using Buddy.Reporting.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Buddy.Tests;

/// <summary>The pressure sources against the real thing: a child memory cgroup with a limit, and the kernel's PSI.</summary>
public sealed class PressureSourceTests
{
    private const long Limit = 64 * Arenas.MiB;

    /// <summary>Charges <paramref name="mib"/> MiB of tmpfs to the group: a shell joins it and writes a file, which stays charged after it exits.</summary>
    private static string Charge(ChildMemoryCgroup group, int mib)
    {
        string file = $"/dev/shm/buddy-pressure-{Guid.NewGuid():N}";
        var start = new ProcessStartInfo("sh") { RedirectStandardError = true };
        foreach (string a in new[] { "-c", "echo $$ > \"$0/cgroup.procs\" && head -c $1 /dev/zero > \"$2\"", group.Path, $"{mib}M", file })
            start.ArgumentList.Add(a);
        using Process shell = Process.Start(start)!;
        string error = shell.StandardError.ReadToEnd();
        shell.WaitForExit();
        Assert.True(shell.ExitCode == 0, $"charging the group failed: {error}");
        return file;
    }

    /// <summary>The monitor reads its sources only while the arena holds free memory: here it always holds a byte.</summary>
    private static long AByteHeld() => 1;

    private static PageReporterOptions CgroupOnly => new() { PressureSources = PressureSources.Cgroup, PressurePercent = 90 };

    [Fact]
    public void A_cgroup_near_its_limit_is_pressure_and_one_well_below_it_is_not()
    {
        using ChildMemoryCgroup? group = ChildMemoryCgroup.Create(Limit, out string reason);
        Assert.SkipWhen(group is null, reason);
        CgroupMemory memory = CgroupMemory.ForDirectory(group.Path, ChildMemoryCgroup.Root)!;
        Assert.False(memory.IsV2);
        Assert.Equal(Limit, memory.Limit());
        int signals = 0;
        using var monitor = MemoryPressureMonitor.ForGroup(memory, CgroupOnly, TimeProvider.System, AByteHeld, () => Interlocked.Increment(ref signals), (_, _) => { });

        string low = Charge(group, 16);
        string high = "";
        try
        {
            Assert.InRange(memory.Usage(), 16 * Arenas.MiB, 40 * Arenas.MiB);
            Assert.False(monitor.Poll(), "a quarter of the limit is not pressure");

            high = Charge(group, 44);
            Assert.True(memory.Usage() >= Limit / 100 * 90, $"usage {memory.Usage() >> 20} MiB of {Limit >> 20} MiB");
            Assert.True(monitor.Poll(), "above 90% of the limit is pressure");
            Assert.True(signals >= 1);
            using var holdingNothing = MemoryPressureMonitor.ForGroup(memory, CgroupOnly, TimeProvider.System, () => 0, () => { }, (_, _) => { });
            Assert.False(holdingNothing.Poll(), "an arena holding nothing free has nothing to hand back");
        }
        finally
        {
            File.Delete(low);
            if (high.Length > 0) File.Delete(high);
        }
    }

    [Fact]
    public void A_cgroup_with_less_room_left_than_the_arena_holds_free_is_pressure()
    {
        using ChildMemoryCgroup? group = ChildMemoryCgroup.Create(Limit, out string reason);
        Assert.SkipWhen(group is null, reason);
        CgroupMemory memory = CgroupMemory.ForDirectory(group.Path, ChildMemoryCgroup.Root)!;
        long held = 8 * Arenas.MiB;
        using var monitor = MemoryPressureMonitor.ForGroup(memory, CgroupOnly, TimeProvider.System, () => held, () => { }, (_, _) => { });
        string charged = Charge(group, 16);
        try
        {
            // About 48 MiB left, far below 90% of the limit: only what the arena holds decides.
            Assert.False(monitor.Poll(), "8 MiB held fits in the room left");
            held = 56 * Arenas.MiB;
            Assert.True(monitor.Poll(), "56 MiB held does not fit in the room left");
        }
        finally
        {
            File.Delete(charged);
        }
    }

    [Fact]
    public void A_reporter_holding_more_than_its_group_has_room_for_reports_as_it_wakes_not_after_its_delay_or_poll()
    {
        using ChildMemoryCgroup? group = ChildMemoryCgroup.Create(Limit, out string reason);
        Assert.SkipWhen(group is null, reason);
        using var arena = new BuddyArena(new ArenaOptions { Size = 64 * Arenas.MiB, ZoneCount = 1, ThreadCaches = false });
        var blocks = Enumerable.Range(0, 28).Select(_ => arena.AllocateBytes(2 * Arenas.MiB)).ToList();
        blocks.ForEach(arena.Free);
        var device = new RecordingDevice();
        // A clock that never moves: neither the delay nor the poll timer fires, only the poll the waking thread makes.
        using var reporter = new PageReporter(arena, device, new PageReporterOptions
        {
            Delay = TimeSpan.FromHours(1), IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.Cgroup,
        }, new FakeTimeProvider());
        reporter.WatchedGroup = CgroupMemory.ForDirectory(group.Path, ChildMemoryCgroup.Root)!;
        string charged = Charge(group, 16);
        try
        {
            // About 48 MiB left under the limit, 56 MiB held free: a neighbour doing as this arena did would not fit.
            reporter.Start();
            Wait.Until(() => reporter.GetStatistics().PressurePasses == 1, "the pressure pass");
            Assert.Equal(56 * Arenas.MiB, arena.GetStatistics().ReportedBytes);
        }
        finally
        {
            File.Delete(charged);
        }
    }

    [Fact]
    public void A_reporter_watching_a_cgroup_near_its_limit_reports_long_before_its_delay()
    {
        using ChildMemoryCgroup? group = ChildMemoryCgroup.Create(Limit, out string reason);
        Assert.SkipWhen(group is null, reason);
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, ZoneCount = 1, ThreadCaches = false });
        var blocks = Enumerable.Range(0, 256).Select(_ => arena.Allocate(4)).ToList();
        blocks.Where((_, i) => i % 2 == 1).ToList().ForEach(arena.Free);
        var device = new RecordingDevice();
        // A delay of an hour and no idle reporting: only pressure can report these fragments today.
        using var reporter = new PageReporter(arena, device, new PageReporterOptions
        {
            Delay = TimeSpan.FromHours(1), IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.None,
            PressurePollInterval = TimeSpan.FromMilliseconds(50),
        });
        reporter.Start();
        CgroupMemory memory = CgroupMemory.ForDirectory(group.Path, ChildMemoryCgroup.Root)!;
        using var monitor = MemoryPressureMonitor.ForGroup(memory, reporter.Options with { PressureSources = PressureSources.Cgroup },
            TimeProvider.System, AByteHeld, reporter.SignalPressure, (_, _) => { });
        string charged = Charge(group, 60);
        try
        {
            // Within Wait's deadline, so on pressure: the delay is an hour.
            Wait.Until(() => arena.GetStatistics().ReportedPages == 128 * 16L, "the pressure pass");
            Assert.True(reporter.GetStatistics().PressurePasses >= 1);
            Assert.All(device.Calls.SelectMany(c => c), b => Assert.Equal(64 << 10, b.Length));
        }
        finally
        {
            File.Delete(charged);
        }
    }

    [Fact]
    public void The_kernel_accepts_a_memory_stall_trigger_on_the_system_PSI_file()
    {
        Assert.SkipUnless(File.Exists("/proc/pressure/memory"), "this kernel has no PSI (/proc/pressure/memory).");
        using var monitor = MemoryPressureMonitor.Start(new PageReporterOptions { PressureSources = PressureSources.Psi },
            TimeProvider.System, () => 0, () => { }, (_, _) => { })!;
        Assert.Contains("/proc/pressure/memory", monitor.TriggerFiles);
    }

    [Fact]
    public void No_source_named_means_no_monitor()
    {
        Assert.Null(MemoryPressureMonitor.Start(new PageReporterOptions { PressureSources = PressureSources.None }, TimeProvider.System, () => 0, () => { }, (_, _) => { }));
    }
}
