using System.Diagnostics;
using System.Text.Json;

namespace Buddy.Tests;

/// <summary>A pinned-array arena in a real memory cgroup (v1) whose limit is below the arena's maximum.</summary>
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
}
