using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Buddy.ServiceLoad;

/// <summary>One variant: the sample in its own process, warmed up, idle, one wrk burst, idle again.</summary>
internal static class ServiceRun
{
    public static async Task<VariantRun> RunAsync(string sampleDll, Variant variant, LoadShape load)
    {
        string work = Directory.CreateTempSubdirectory("buddy-service-load-").FullName;
        try
        {
            string samples = Path.Combine(work, "samples.csv");
            string script = WriteWrkScript(work, load.UploadBytes);
            int port = FreePort();
            string url = $"http://127.0.0.1:{port}";
            var start = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = Path.GetDirectoryName(Path.GetFullPath(sampleDll))!,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (string a in new[] { Path.GetFullPath(sampleDll), "--urls", url, "--BufferService:SampleFile=" + samples, "--Logging:LogLevel:Default=Warning" }.Concat(variant.Arguments))
                start.ArgumentList.Add(a);
            using Process service = Process.Start(start) ?? throw new InvalidOperationException("could not start the sample");
            var log = new System.Text.StringBuilder();
            service.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            service.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            service.BeginOutputReadLine();
            service.BeginErrorReadLine();
            try
            {
                await WaitUntilServingAsync(url, service, log);
                // Warm-up: JIT, thread pool and connection setup belong to the baseline, not the burst.
                await Wrk.RunAsync(url, script, load.ResponseBytes, connections: 8, TimeSpan.FromSeconds(3));
                await Task.Delay(TimeSpan.FromSeconds(6));
                long burstStart = NowMs();
                WrkResult wrk = await Wrk.RunAsync(url, script, load.ResponseBytes, load.Connections, load.Burst);
                long burstEnd = NowMs();
                await Task.Delay(load.Idle + TimeSpan.FromSeconds(1));
                return new VariantRun(variant, wrk, Samples.Read(samples, burstStart), (burstEnd - burstStart) / 1000.0, load.Idle.TotalSeconds);
            }
            finally
            {
                if (!service.HasExited) service.Kill(entireProcessTree: true);
                await service.WaitForExitAsync();
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string WriteWrkScript(string dir, int uploadBytes)
    {
        string body = Path.Combine(dir, "upload.bin");
        var bytes = new byte[uploadBytes];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(i % 251);
        File.WriteAllBytes(body, bytes);
        string script = Path.Combine(dir, "post.lua");
        File.WriteAllText(script, $$"""
            local f = io.open("{{body}}", "rb"); local body = f:read("*all"); f:close()
            wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/octet-stream"
            """);
        return script;
    }

    private static async Task WaitUntilServingAsync(string url, Process service, System.Text.StringBuilder log)
    {
        using var client = new HttpClient();
        for (int attempt = 0; attempt < 300; attempt++)
        {
            if (service.HasExited) throw new InvalidOperationException($"the sample exited with {service.ExitCode}:\n{log}");
            try
            {
                if ((await client.GetAsync(url + "/")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"the sample did not answer within 30 s:\n{log}");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static long NowMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}

/// <summary>The sample's CSV, one row per 100 ms, with time in seconds since the burst began.</summary>
internal sealed record Sample(double Seconds, long Rss, long GcCommitted, long ArenaOnline, long ArenaReported, long BuddyRented, long KestrelPooled, long KestrelEvicted);

internal static class Samples
{
    public static List<Sample> Read(string path, long burstStartMs)
    {
        var rows = new List<Sample>();
        foreach (string line in File.ReadLines(path).Skip(1))
        {
            long[] v = line.Split(',').Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            // unix_ms,rss,gc_committed,gc_heap,arena_online,arena_allocated,arena_reported,buddy_rented,kestrel_pooled,kestrel_allocated,kestrel_evicted
            rows.Add(new Sample((v[0] - burstStartMs) / 1000.0, v[1], v[2], v[4], v[6], v[7], v[8], v[10]));
        }
        return rows;
    }
}

internal sealed record VariantRun(Variant Variant, WrkResult Wrk, List<Sample> Samples, double BurstSeconds, double IdleSeconds)
{
    /// <summary>Mean RSS over the 3 s before the burst.</summary>
    public long PreBurstRss => (long)Samples.Where(s => s.Seconds is > -3 and < 0).Average(s => s.Rss);

    public long PeakRss => Samples.Where(s => s.Seconds >= 0).Max(s => s.Rss);

    /// <summary>RSS at <paramref name="afterBurst"/> seconds past the burst's end (the nearest sample).</summary>
    public long RssAt(double afterBurst) => Nearest(BurstSeconds + afterBurst).Rss;

    public Sample Nearest(double seconds) => Samples.MinBy(s => Math.Abs(s.Seconds - seconds))!;

    /// <summary>Peak RSS less RSS at the run's end.</summary>
    public long GivenBack => Math.Max(0, PeakRss - Samples[^1].Rss);

    /// <summary>Seconds from the burst's end until RSS had fallen by <paramref name="share"/> of <see cref="GivenBack"/>; null: nothing given back.</summary>
    public double? SecondsToGiveBack(double share)
    {
        if (GivenBack == 0) return null;
        long target = PeakRss - (long)(share * GivenBack);
        Sample? reached = Samples.FirstOrDefault(s => s.Seconds >= BurstSeconds && s.Rss <= target);
        return reached is null ? null : Math.Max(0, reached.Seconds - BurstSeconds);
    }

    /// <summary>
    /// GC committed bytes outside the pools 5 s after the burst, less the same before it. Measured
    /// then, not at the end: sections that go offline leave their arrays to the GC, uncounted by the arena.
    /// </summary>
    public long ManagedHeapGrowth
    {
        get
        {
            static long Outside(Sample s) => s.GcCommitted - s.ArenaOnline - s.KestrelPooled;
            Sample before = Samples.Last(s => s.Seconds < 0);
            return Outside(Nearest(BurstSeconds + 5)) - Outside(before);
        }
    }

    /// <summary>Seconds from the burst's end until RSS is within 10% of its pre-burst value; null: not within the run.</summary>
    public double? SecondsToRecover()
    {
        long limit = PreBurstRss + PreBurstRss / 10;
        Sample? back = Samples.FirstOrDefault(s => s.Seconds >= BurstSeconds && s.Rss <= limit);
        return back is null ? null : Math.Max(0, back.Seconds - BurstSeconds);
    }
}
