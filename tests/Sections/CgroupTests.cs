using System.Diagnostics;
using System.Text.Json;

namespace Buddy.Tests;

/// <summary>
/// Real memory cgroups (v1) with limits: a pinned-array arena whose maximum is above the limit, and a
/// burst that survives the OOM killer only through pressure reporting. Alone, so timers keep their pace.
/// </summary>
[Collection(ResidentSetCollection.Name)]
public class CgroupTests
{
    private const long Limit = 256 * Arenas.MiB;

    [Fact]
    public async Task A_pinned_array_arena_grows_and_gives_memory_back_under_a_limit_below_its_maximum()
    {
        using ChildMemoryCgroup? cgroup = ChildMemoryCgroup.Create(Limit, out string reason);
        Assert.SkipWhen(cgroup is null, reason);
        string group = cgroup.Path;
        {
            // The shell joins the group before it becomes the tool, so every byte the tool touches is charged there.
            var start = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string arg in new[] { "-c", "echo $$ > \"$0/cgroup.procs\" && exec dotnet \"$1\" sections --backing PinnedArray --section 32 --max 1024 --burst 96 --cycles 5 --json",
                         group!, Path.Combine(AppContext.BaseDirectory, "buddy.dll") })
                start.ArgumentList.Add(arg);
            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            string output = process.StandardOutput.ReadToEnd();
            await process.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode} (137 is the OOM killer): {output} {await error}");

            using var json = JsonDocument.Parse(output);
            JsonElement root = json.RootElement;
            Assert.True(root.GetProperty("maximum_bytes").GetInt64() > Limit);
            // .NET caps its heap at 75% of the limit, so a burst that kept its arrays could not repeat.
            Assert.True(root.GetProperty("gc_heap_hard_limit").GetInt64() <= Limit, "the runtime did not see the cgroup's limit");
            var cycles = root.GetProperty("cycles").EnumerateArray().ToList();
            Assert.Equal(5, cycles.Count);
            Assert.All(cycles, c =>
            {
                Assert.Equal(96 * Arenas.MiB, c.GetProperty("burst_bytes").GetInt64());
                Assert.Equal(c.GetProperty("sections_added").GetInt32(), c.GetProperty("sections_removed").GetInt32());
                Assert.True(c.GetProperty("idle_gc_committed_bytes").GetInt64() < c.GetProperty("peak_gc_committed_bytes").GetInt64() - 48 * Arenas.MiB);
            });
            long through = cycles.Sum(c => c.GetProperty("burst_bytes").GetInt64());
            long peakUsage = long.Parse(File.ReadAllText(Path.Combine(group!, "memory.max_usage_in_bytes")));
            Assert.True(through > Limit && peakUsage <= Limit, $"{through >> 20} MiB went through; the group peaked at {peakUsage >> 20} MiB");
        }
    }

    [Fact]
    public async Task In_a_container_sized_group_free_pinned_sections_leave_the_managed_heap_room()
    {
        // 352 MiB: the runtime takes 75% for its heap hard limit, 264 MiB, which the 160 MiB burst and
        // 160 MiB of live arrays exceed together; the group itself has room for either with the runtime.
        using ChildMemoryCgroup? cgroup = ChildMemoryCgroup.Create(352 * Arenas.MiB, out string reason);
        Assert.SkipWhen(cgroup is null, reason);
        var start = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "-c", "echo $$ > \"$0/cgroup.procs\" && exec dotnet \"$1\" gcheap --burst 160 --managed 160 --json",
                     cgroup.Path, Path.Combine(AppContext.BaseDirectory, "buddy.dll") })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        Task<string> error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        string output = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode} (137 is the OOM killer): {output} {await error}");
        using var json = JsonDocument.Parse(output);
        JsonElement root = json.RootElement;
        Assert.True(root.GetProperty("gc_heap_hard_limit").GetInt64() < 352 * Arenas.MiB, "the runtime did not see the group's limit");
        Assert.Equal(160L << 20, root.GetProperty("managed_bytes").GetInt64());
        Assert.True(root.GetProperty("sections_removed").GetInt64() >= 3, output);
    }

    /// <summary>Runs `buddy squeeze` inside the group; returns its exit code and output.</summary>
    private static (int Exit, string Output, string Error) SqueezeIn(ChildMemoryCgroup group, bool pressure, int hintMs = -1)
    {
        var start = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "-c", "echo $$ > \"$0/cgroup.procs\" && exec dotnet \"$1\" squeeze --burst 200 --outside 160 --step 4 --step-ms 20 --json --pressure \"$2\" --hint-ms \"$3\"",
                     group.Path, Path.Combine(AppContext.BaseDirectory, "buddy.dll"), pressure ? "true" : "false", hintMs.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }

    private static long OomKills(ChildMemoryCgroup group) => long.Parse(File.ReadLines(Path.Combine(group.Path, "memory.oom_control"))
        .Single(l => l.StartsWith("oom_kill ", StringComparison.Ordinal))["oom_kill ".Length..]);

    [Fact]
    public void A_burst_that_the_delay_alone_lets_the_OOM_killer_end_survives_with_pressure_reporting()
    {
        // 320 MiB: the runtime, 200 MiB freed in the arena and 160 MiB more from the C heap fit only if the 200 go back in time.
        const long Cap = 320 * Arenas.MiB;
        using (ChildMemoryCgroup? delayOnly = ChildMemoryCgroup.Create(Cap, out string reason))
        {
            Assert.SkipWhen(delayOnly is null, reason);
            (int exit, string output, string error) = SqueezeIn(delayOnly, pressure: false);
            Assert.True(exit == 137, $"with the hour's delay alone the OOM killer should end it (exit 137), got {exit}: {output} {error}");
            Assert.Equal(1, OomKills(delayOnly));
        }

        using ChildMemoryCgroup? withPressure = ChildMemoryCgroup.Create(Cap, out _);
        Assert.NotNull(withPressure);
        (int code, string json, string stderr) = SqueezeIn(withPressure, pressure: true);
        Assert.True(code == 0, $"exit {code}: {json} {stderr}");
        Assert.Equal(0, OomKills(withPressure));
        using var result = JsonDocument.Parse(json);
        Assert.True(result.RootElement.GetProperty("pressure_passes").GetInt64() >= 1);
        Assert.Equal(200 * Arenas.MiB, result.RootElement.GetProperty("reported_bytes").GetInt64());
        long peak = long.Parse(File.ReadAllText(Path.Combine(withPressure.Path, "memory.max_usage_in_bytes")));
        Assert.True(peak <= Cap, $"the group peaked at {peak >> 20} MiB");
    }

    [Fact]
    public void With_the_hint_tier_and_no_pressure_source_the_kernel_takes_the_hinted_burst_itself()
    {
        // The same squeeze the delay alone does not survive: nothing reports, nothing polls; the burst
        // is offered with MADV_FREE 100 ms after it is freed, and the group's reclaim takes it.
        const long Cap = 320 * Arenas.MiB;
        using ChildMemoryCgroup? group = ChildMemoryCgroup.Create(Cap, out string reason);
        Assert.SkipWhen(group is null, reason);
        (int code, string json, string stderr) = SqueezeIn(group, pressure: false, hintMs: 100);
        Assert.True(code == 0, $"exit {code} (137 is the OOM killer): {json} {stderr}");
        Assert.Equal(0, OomKills(group));
        using var result = JsonDocument.Parse(json);
        Assert.Equal(0, result.RootElement.GetProperty("reported_bytes").GetInt64());
        Assert.Equal(0, result.RootElement.GetProperty("pressure_passes").GetInt64());
        Assert.Equal(200 * Arenas.MiB, result.RootElement.GetProperty("hinted_bytes").GetInt64());
        long peak = long.Parse(File.ReadAllText(Path.Combine(group.Path, "memory.max_usage_in_bytes")));
        Assert.True(peak <= Cap, $"the group peaked at {peak >> 20} MiB");
    }
}
