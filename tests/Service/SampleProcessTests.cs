using System.Diagnostics;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace Buddy.Tests.Service;

/// <summary>samples/BufferService in a process of its own: a burst of uploads, then idle, and its RSS read from /proc.</summary>
[Collection(ResidentSetCollection.Name)]
public sealed partial class SampleProcessTests
{
    private const long MiB = 1L << 20;

    internal static string SamplePath => typeof(SampleProcessTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BufferService").Value!;

    [Fact]
    public async Task After_a_burst_and_idle_the_sample_gives_its_memory_back()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "RSS is read from /proc/PID/status, which only Linux has.");
        // Workstation GC: the server GC's large allocation budgets would move RSS by more than the arena does.
        await using var sample = await SampleProcess.StartAsync(new() { ["DOTNET_gcServer"] = "0" },
            // No pressure source: other tests squeeze memory meanwhile, and pressure would take the added section offline at once.
            "--Buddy:Reporter:Delay=00:00:00.5", "--Buddy:Reporter:IdleTime=00:00:02", "--Buddy:Reporter:PressureSources=None");
        using var client = new HttpClient { BaseAddress = sample.Address, Timeout = TimeSpan.FromMinutes(2) };
        byte[] upload = new byte[MiB];
        for (int i = 0; i < upload.Length; i++) upload[i] = (byte)(i % 251);
        long before = sample.ResidentBytes();

        // 64 connections, each posting 1 MiB (held whole in Kestrel's pipe) and reading 256 KiB, six times
        // over, with RSS read every 20 ms meanwhile for its peak.
        long peak = before;
        using var burstOver = new CancellationTokenSource();
        Task sampling = Task.Run(async () =>
        {
            while (!burstOver.IsCancellationRequested)
            {
                long rss = sample.ResidentBytes();
                if (rss > Interlocked.Read(ref peak)) Interlocked.Exchange(ref peak, rss);
                await Task.Delay(20);
            }
        }, TestContext.Current.CancellationToken);
        for (int round = 0; round < 6; round++)
        {
            // Every upload holds back its last byte until all 64 have sent the rest: 64 MiB is in the
            // server's pipes at once however the machine schedules, past the arena's 32 MiB section.
            var allSent = new Arrivals(64);
            await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
            {
                using var content = new HeldLastByteContent(upload, allSent);
                using HttpResponseMessage response = await client.PostAsync("/exchange/262144", content, TestContext.Current.CancellationToken);
                response.EnsureSuccessStatusCode();
                Assert.Equal(256 << 10, (await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken)).Length);
            }));
        }
        await burstOver.CancelAsync();
        await sampling;
        Stats afterBurst = (await client.GetFromJsonAsync<Stats>("/stats", TestContext.Current.CancellationToken))!;

        // Idle: the reporter (delay 0.5 s) drains the idle threads' caches and reports, and once nothing
        // has been allocated or freed for its idle time (2 s), reports the fragments too. RSS is read from
        // /proc alone while it waits: a request would rent from the pool and keep the arena from idling.
        long idle = peak;
        // A child process keeps its own time: poll it, at most 120 times a quarter second apart.
        for (int poll = 0; poll < 120; poll++, await Task.Delay(250, TestContext.Current.CancellationToken))
        {
            idle = sample.ResidentBytes();
            if (idle <= peak - 12 * MiB) break;
        }
        Stats stats = (await client.GetFromJsonAsync<Stats>("/stats", TestContext.Current.CancellationToken))!;

        string figures = $"RSS before {before / MiB} MiB, peak {peak / MiB} MiB, idle {idle / MiB} MiB; arena {afterBurst.ArenaOnline / MiB} MiB online after the burst, {stats.ArenaSectionsAdded} sections added, {stats.ArenaReported / MiB} MiB reported idle";
        Assert.True(stats.ArenaSectionsAdded >= 1, "the burst grew the arena past its first section: " + figures);
        Assert.True(stats.ArenaReported >= 16 * MiB, "the reporter gave the burst's blocks back: " + figures);
        Assert.True(idle <= peak - 12 * MiB, "RSS fell: " + figures);
    }

    /// <summary>A body sent whole but for its last byte, which waits until every upload of the round has got that far.</summary>
    private sealed class HeldLastByteContent(byte[] data, Arrivals allSent) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.WriteAsync(data.AsMemory(0, data.Length - 1));
            await stream.FlushAsync();
            await allSent.ArriveAndWait().WaitAsync(TimeSpan.FromMinutes(1));
            await stream.WriteAsync(data.AsMemory(data.Length - 1));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = data.Length;
            return true;
        }
    }

    /// <summary>An async barrier: the task of each arrival completes once all have arrived, without blocking a thread.</summary>
    private sealed class Arrivals(int count)
    {
        private readonly TaskCompletionSource all = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int arrived;

        public Task ArriveAndWait()
        {
            if (Interlocked.Increment(ref arrived) == count) all.SetResult();
            return all.Task;
        }
    }

    private sealed record Stats(long Rss, long ArenaOnline, long ArenaAllocated, long ArenaReported, long ArenaSectionsAdded);

    /// <summary>The sample, started on a free loopback port; killed on dispose.</summary>
    internal sealed partial class SampleProcess : IAsyncDisposable
    {
        private readonly Process process;
        private readonly StringBuilder output = new();

        private SampleProcess(Process process, Uri address)
        {
            this.process = process;
            Address = address;
        }

        public Uri Address { get; }

        public static async Task<SampleProcess> StartAsync(Dictionary<string, string> environment, params string[] arguments)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = Path.GetDirectoryName(SamplePath)!,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var (key, value) in environment) start.Environment[key] = value;
            foreach (string a in new[] { SamplePath, "--urls", "http://127.0.0.1:0" }.Concat(arguments)) start.ArgumentList.Add(a);
            var process = Process.Start(start)!;
            var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
            var log = new StringBuilder();
            process.OutputDataReceived += (_, e) =>
            {
                lock (log) log.AppendLine(e.Data);
                if (e.Data is not null && Listening().Match(e.Data) is { Success: true } m) listening.TrySetResult(new Uri(m.Groups[1].Value));
            };
            process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _ = process.WaitForExitAsync().ContinueWith(_ => listening.TrySetException(new InvalidOperationException($"the sample exited with {process.ExitCode}:\n{log}")), TaskScheduler.Default);
            Uri address = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            return new SampleProcess(process, address);
        }

        public long ResidentBytes()
        {
            string status = File.ReadAllText($"/proc/{process.Id}/status");
            return long.Parse(VmRss().Match(status).Groups[1].Value) * 1024;
        }

        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            process.Dispose();
        }

        [GeneratedRegex(@"Now listening on: (http://\S+)")]
        private static partial Regex Listening();

        [GeneratedRegex(@"VmRSS:\s+(\d+) kB")]
        private static partial Regex VmRss();
    }
}
