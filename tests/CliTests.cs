using System.Diagnostics;
using System.Text.Json;

namespace Buddy.Tests;

/// <summary>Runs the real `buddy` tool as a child process.</summary>
public class CliTests
{
    internal static (int ExitCode, string Output, string Error) RunBuddy(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "buddy.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }

    [Fact]
    public void Demo_json_reports_the_burst_and_the_free_memory_by_order()
    {
        var (exit, output, error) = RunBuddy("demo", "--peak-mib", "64", "--live-mib", "8", "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        JsonElement root = json.RootElement;
        Assert.InRange(root.GetProperty("live_bytes").GetInt64(), 1, 8L << 20);
        Assert.True(root.GetProperty("peak_rss_bytes").GetInt64() >= root.GetProperty("start_rss_bytes").GetInt64() + (56L << 20));
        Assert.Equal(11, root.GetProperty("free_blocks_by_order").GetArrayLength());
        Assert.Equal(root.GetProperty("arena_bytes").GetInt64(),
            root.GetProperty("live_bytes").GetInt64() + root.GetProperty("free_bytes").GetInt64());
    }

    [Fact]
    public void Demo_table_names_each_figure()
    {
        var (exit, output, error) = RunBuddy("demo", "--peak-mib", "32", "--live-mib", "4");
        Assert.True(exit == 0, error);
        Assert.Contains("RSS at peak", output);
        Assert.Contains("free blocks", output);
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
