using System.Diagnostics;
using System.Text.Json;
using Buddy.Cli.Monitoring;

namespace Buddy.Tests;

/// <summary>
/// The meter as dotnet-counters sees it: a real child process, an EventPipe session on the
/// System.Diagnostics.Metrics provider, and the real `buddy monitor` command.
/// </summary>
public sealed class EventPipeTests : IDisposable
{
    private readonly Process churn;

    public EventPipeTests()
    {
        churn = StartBuddy("churn", "--seconds", "60", "--peak-mib", "64");
        string? banner = churn.StandardOutput.ReadLine();
        Assert.NotNull(banner);
        Assert.Contains($"pid {churn.Id}", banner);
    }

    public void Dispose()
    {
        if (!churn.HasExited) churn.Kill();
        churn.WaitForExit();
        churn.Dispose();
    }

    private static Process StartBuddy(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "buddy.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    [Fact]
    public void Instruments_arrive_over_eventpipe_and_change_as_the_child_allocates_and_reports()
    {
        var snapshots = new List<IReadOnlyList<MetricValue>>();
        using var monitor = new MetricsMonitor(churn.Id, TimeSpan.FromSeconds(1));
        using var done = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        monitor.Run(values =>
        {
            snapshots.Add(values);
            double Allocations(IReadOnlyList<MetricValue> s) => s.FirstOrDefault(v => v.Instrument == "buddy.allocations")?.Value ?? 0;
            double Reported(IReadOnlyList<MetricValue> s) => s.FirstOrDefault(v => v.Instrument == "buddy.report.bytes")?.Value ?? 0;
            if (snapshots.Count >= 2 && Allocations(snapshots[^1]) > Allocations(snapshots[0]) && Reported(snapshots[^1]) > 0) done.Cancel();
        }, done.Token);

        IReadOnlyList<MetricValue> last = snapshots[^1];
        string[] expected =
        [
            "buddy.arena.size", "buddy.memory.free", "buddy.memory.allocated", "buddy.memory.reported",
            "buddy.memory.free_by_order", "buddy.allocations", "buddy.frees", "buddy.allocation.failures",
            "buddy.spin.waits", "buddy.sections.online", "buddy.report.passes", "buddy.report.device_calls", "buddy.report.bytes",
        ];
        foreach (string name in expected) Assert.Contains(last, v => v.Instrument == name);
        Assert.All(last.Where(v => v.Instrument.StartsWith("buddy.memory.free", StringComparison.Ordinal)), v => Assert.Contains("buddy.arena=churn", v.Tags));
        Assert.Equal(128L << 20, last.Single(v => v.Instrument == "buddy.arena.size").Value);
        Assert.True(last.Single(v => v.Instrument == "buddy.report.bytes").Value > 0, "no bytes reported yet");
        Assert.Equal("By", last.Single(v => v.Instrument == "buddy.memory.reported").Unit);
    }

    [Fact]
    public void Buddy_monitor_once_json_prints_the_child_instruments()
    {
        var (exit, output, error) = CliTests.RunBuddy("monitor", churn.Id.ToString(), "--once", "--json", "--timeout", "30");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output.Trim().Split('\n')[0]);
        Assert.Equal(churn.Id, json.RootElement.GetProperty("pid").GetInt32());
        var names = json.RootElement.GetProperty("instruments").EnumerateArray().Select(i => i.GetProperty("name").GetString()).ToList();
        Assert.Contains("buddy.memory.allocated", names);
        Assert.Contains("buddy.report.bytes", names);
    }

    [Fact]
    public void Buddy_monitor_says_so_when_a_dotnet_process_has_no_arena()
    {
        // A monitor is a .NET process without a Buddy arena of its own.
        using Process other = StartBuddy("monitor", churn.Id.ToString(), "--json", "--timeout", "30");
        Assert.NotNull(other.StandardOutput.ReadLine());
        var (exit, _, error) = CliTests.RunBuddy("monitor", other.Id.ToString(), "--once", "--timeout", "3");
        other.Kill();
        Assert.Equal(1, exit);
        Assert.Contains("no Buddy arena", error);
    }

    [Fact]
    public void Buddy_monitor_refuses_a_pid_that_does_not_exist()
    {
        var (exit, _, error) = CliTests.RunBuddy("monitor", "2147483000", "--once");
        Assert.Equal(1, exit);
        Assert.Contains("no process with id 2147483000", error);
    }
}
