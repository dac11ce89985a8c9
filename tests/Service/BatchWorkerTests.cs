using System.Globalization;
using System.Text.RegularExpressions;

namespace Buddy.Tests.Service;

/// <summary>The worker-service sample in a child process: RSS falls between its bursts of Arrow batches.</summary>
[Collection(ResidentSetCollection.Name)]
public sealed partial class BatchWorkerTests
{
    [Fact]
    public void The_batch_worker_hands_each_burst_back_to_the_OS_before_the_next()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "The worker reads its resident set from /proc.");
        string worker = PackedFeed.Metadata("BatchWorker");
        Shell.Output run = Shell.Run("dotnet", Path.GetDirectoryName(worker)!, TimeSpan.FromMinutes(2),
            worker, "--BatchWorker:Bursts=3", "--BatchWorker:IntervalMs=3000", "--Buddy:Reporter:Delay=00:00:00.500");
        Assert.True(run.ExitCode == 0, run.Text);
        var bursts = BurstLine().Matches(run.Stdout).Select(m => (
            Peak: long.Parse(m.Groups["peak"].Value, CultureInfo.InvariantCulture),
            Next: long.Parse(m.Groups["next"].Value, CultureInfo.InvariantCulture),
            HandedBack: long.Parse(m.Groups["back"].Value, CultureInfo.InvariantCulture))).ToList();
        Assert.True(bursts.Count == 3, run.Text);
        // Each burst holds 16 batches of 4 MiB; what is left before the next burst is far below the peak.
        Assert.All(bursts, b =>
        {
            Assert.True(b.Next <= b.Peak - 40, $"RSS {b.Peak} MiB at the peak, {b.Next} MiB before the next burst");
            Assert.True(b.HandedBack >= 32, $"{b.HandedBack} MiB handed back");
        });
    }

    [GeneratedRegex(@"peak (?<peak>\d+) MiB, before the next burst (?<next>\d+) MiB; (?<back>\d+) MiB handed back")]
    private static partial Regex BurstLine();
}
