using System.Diagnostics;
using System.Text.Json;

namespace Buddy.Tests;

/// <summary>A pinned-array arena in a real memory cgroup (v1) whose limit is below the arena's maximum.</summary>
public class CgroupTests
{
    private const long Limit = 256 * Arenas.MiB;

    /// <summary>A child of this process's own memory cgroup, or null with the reason it cannot be made here.</summary>
    private static string? CreateChildGroup(out string reason)
    {
        reason = "";
        const string root = "/sys/fs/cgroup/memory";
        string? own = File.Exists("/proc/self/cgroup")
            ? File.ReadLines("/proc/self/cgroup").Select(l => l.Split(':', 3)).FirstOrDefault(f => f.Length == 3 && f[1] == "memory")?[2]
            : null;
        if (!OperatingSystem.IsLinux() || own is null || !Directory.Exists(root + own))
        {
            reason = "cgroup v1's memory controller is not mounted at /sys/fs/cgroup/memory here.";
            return null;
        }
        string group = $"{root}{own.TrimEnd('/')}/buddy-test-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            Directory.CreateDirectory(group);
            File.WriteAllText(Path.Combine(group, "memory.limit_in_bytes"), Limit.ToString());
            return group;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            reason = $"this process may not create a child memory cgroup ({e.Message}).";
            if (Directory.Exists(group)) Directory.Delete(group);
            return null;
        }
    }

    [Fact]
    public async Task A_pinned_array_arena_grows_and_gives_memory_back_under_a_limit_below_its_maximum()
    {
        string? group = CreateChildGroup(out string reason);
        Assert.SkipWhen(group is null, reason);
        try
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
        finally
        {
            // The group is empty once the tool has exited; the kernel may take a moment to agree.
            SpinWait.SpinUntil(() =>
            {
                try { Directory.Delete(group!); return true; }
                catch (IOException) { return false; }
            }, TimeSpan.FromSeconds(10));
        }
    }
}
