using System.Diagnostics;
using System.Text.Json;

namespace Buddy.Tests;

/// <summary>Runs the real `buddy` tool as a child process.</summary>
public class CliTests
{
    internal static (int ExitCode, string Output, string Error) RunBuddy(params string[] args) => RunBuddy(new Dictionary<string, string>(), args);

    internal static (int ExitCode, string Output, string Error) RunBuddy(Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach ((string name, string value) in environment) start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "buddy.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }

    [Fact]
    public void A_pinned_array_arena_stops_growing_at_the_GC_heap_hard_limit_and_says_why()
    {
        // 256 MiB of GC heap: the burst of 512 MiB of pinned sections cannot fit, and the refusal names the limit.
        var (exit, output, error) = RunBuddy(new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x10000000" },
            "sections", "--backing", "PinnedArray", "--section", "32", "--max", "1024", "--burst", "512", "--cycles", "1", "--json");
        Assert.True(exit == 1, $"exit {exit}: {output} {error}");
        using var json = JsonDocument.Parse(output);
        JsonElement cycle = json.RootElement.GetProperty("cycles")[0];
        long burst = cycle.GetProperty("burst_bytes").GetInt64();
        Assert.InRange(burst, 32L << 20, (256L << 20) - 1);
        string failure = cycle.GetProperty("failure").GetString()!;
        Assert.Contains("PinnedArray sections count toward the GC heap", failure);
        Assert.Contains("268435456", failure); // the limit, in bytes
    }

    [Fact]
    public void Free_pinned_sections_make_room_for_the_managed_heap_under_the_GC_heap_hard_limit()
    {
        // 256 MiB of GC heap: 160 MiB of free pinned sections and 160 MiB of live arrays cannot both fit.
        var (exit, output, error) = RunBuddy(new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x10000000" },
            "gcheap", "--burst", "160", "--managed", "160", "--json");
        Assert.True(exit == 0, $"exit {exit}: {output} {error}");
        using var json = JsonDocument.Parse(output);
        JsonElement root = json.RootElement;
        Assert.Equal(160L << 20, root.GetProperty("burst_bytes").GetInt64());
        Assert.Equal(160L << 20, root.GetProperty("managed_bytes").GetInt64());
        Assert.True(root.GetProperty("sections_removed").GetInt64() >= 3, output);
    }

    [Fact]
    public void Demo_json_shows_rss_falling_back_with_reporting_and_staying_without()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "The demo's figures come from statm and MADV_DONTNEED.");
        var (exit, output, error) = RunBuddy("demo", "--peak-mib", "256", "--live-mib", "16", "--delay-ms", "200", "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        JsonElement root = json.RootElement;
        long live = root.GetProperty("live_bytes").GetInt64();
        long peak = root.GetProperty("peak_rss_bytes").GetInt64();
        long idle = root.GetProperty("idle_rss_bytes").GetInt64();
        Assert.InRange(live, 1, 16L << 20);
        Assert.True(peak >= root.GetProperty("start_rss_bytes").GetInt64() + (200L << 20), $"peak {peak}");
        Assert.True(idle <= live + (64L << 20) + root.GetProperty("start_rss_bytes").GetInt64(), $"idle {idle}, live {live}");
        Assert.True(root.GetProperty("reported_bytes").GetInt64() >= 200L << 20);
        Assert.True(root.GetProperty("seconds_to_idle").ValueKind == JsonValueKind.Number);
        Assert.Equal(11, root.GetProperty("free_blocks_by_order").GetArrayLength());
        JsonElement without = root.GetProperty("without_reporting");
        Assert.True(without.GetProperty("idle_rss_bytes").GetInt64() >= without.GetProperty("peak_rss_bytes").GetInt64() * 9 / 10);
    }

    [Fact]
    public void Demo_table_compares_the_runs_with_and_without_reporting()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "The demo's figures come from statm and MADV_DONTNEED.");
        var (exit, output, error) = RunBuddy("demo", "--peak-mib", "64", "--live-mib", "4", "--delay-ms", "100");
        Assert.True(exit == 0, error);
        Assert.Contains("with reporting", output);
        Assert.Contains("RSS after idle", output);
        Assert.Contains("seconds until RSS fell", output);
    }

    [Fact]
    public void Demo_rejects_a_live_set_larger_than_the_peak()
    {
        var (exit, _, error) = RunBuddy("demo", "--peak-mib", "8", "--live-mib", "16");
        Assert.Equal(2, exit);
        Assert.Contains("--live-mib", error);
    }

    [Fact]
    public void Fragmentation_json_shows_grouping_keeps_more_pageblocks_free()
    {
        var (exit, output, error) = RunBuddy("fragmentation", "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        var rows = json.RootElement.EnumerateArray().ToList();
        Assert.True(rows[0].GetProperty("group_by_mobility").GetBoolean());
        Assert.True(rows[0].GetProperty("free_pages_in_pageblocks").GetInt64() > rows[1].GetProperty("free_pages_in_pageblocks").GetInt64());
    }
}

public class StressCliTests
{
    [Fact]
    public void Stress_json_reports_a_clean_run_and_exits_zero()
    {
        var (exit, output, error) = CliTests.RunBuddy("stress", "--seconds", "3", "--threads", "2", "--seed", "5", "--arena", "64", "--json");
        Assert.True(exit == 0, output + error);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal(5, root.GetProperty("seed").GetInt32());
        Assert.Equal(0, root.GetProperty("corruptions").GetInt64());
        Assert.Equal(0, root.GetProperty("lost_pages").GetInt64());
        Assert.True(root.GetProperty("ops").GetInt64() > 0);
        Assert.True(root.GetProperty("ops_per_sec").GetDouble() > 0);
        Assert.True(root.GetProperty("invariant_checks").GetInt64() > 0);
        Assert.True(root.GetProperty("reports").GetInt64() > 0, "the reporter never called its device");
    }

    [Fact]
    public void Stress_with_sections_grows_and_removes_sections_while_threads_allocate_and_loses_nothing()
    {
        var (exit, output, error) = CliTests.RunBuddy("stress", "--seconds", "4", "--threads", "3", "--seed", "11", "--arena", "64", "--section", "4", "--json");
        Assert.True(exit == 0, output + error);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal(0, root.GetProperty("corruptions").GetInt64());
        Assert.Equal(0, root.GetProperty("lost_pages").GetInt64());
        Assert.True(root.GetProperty("invariant_checks").GetInt64() > 0);
        Assert.True(root.GetProperty("sections_added").GetInt64() > 0, "the arena never grew");
        Assert.True(root.GetProperty("sections_removed").GetInt64() > 0, "no section ever went offline");
    }

    [Fact]
    public void Stress_rejects_an_arena_that_is_not_a_multiple_of_4_mib()
    {
        var (exit, _, error) = CliTests.RunBuddy("stress", "--arena", "10");
        Assert.Equal(2, exit);
        Assert.Contains("--arena", error);
    }
}
