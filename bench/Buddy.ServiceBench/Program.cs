using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Buddy.Bench;
using Buddy.ServiceLoad;

// Buddy.ServiceBench --sample DLL [--out DIR] [--rounds N] [--seconds S]: the aspnet/Benchmarks
// shapes (plaintext pipelined, JSON, 60 KiB and 2 MiB responses and uploads) against
// samples/BufferService, Kestrel's pool and Buddy's, each with metrics collected and not: four
// services started once, and every round runs each scenario on each of them in a rotated order, so
// drift on a shared machine hits every variant alike. Medians and spread per cell.
string? Option(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
string? sample = Option("--sample");
if (sample is null || !File.Exists(sample))
{
    Console.Error.WriteLine("usage: Buddy.ServiceBench --sample path/to/BufferService.dll [--out DIR] [--rounds 5] [--seconds 5]");
    return 2;
}
int rounds = int.Parse(Option("--rounds") ?? "5", CultureInfo.InvariantCulture);
int seconds = int.Parse(Option("--seconds") ?? "5", CultureInfo.InvariantCulture);
string outDir = Option("--out") ?? Directory.GetCurrentDirectory();
Directory.CreateDirectory(outDir);
string work = Directory.CreateTempSubdirectory("buddy-service-bench-").FullName;

Scenario[] scenarios =
[
    new("plaintext, 16 pipelined", "/plaintext", Connections: 64, Pipeline: 16, UploadBytes: 0),
    new("JSON", "/json", Connections: 64, Pipeline: 1, UploadBytes: 0),
    new("60 KiB response", "/bytes/61440", Connections: 64, Pipeline: 1, UploadBytes: 0),
    new("2 MiB response", "/bytes/2097152", Connections: 16, Pipeline: 1, UploadBytes: 0),
    new("60 KiB upload", "/upload", Connections: 64, Pipeline: 1, UploadBytes: 60 << 10),
    new("2 MiB upload", "/upload", Connections: 16, Pipeline: 1, UploadBytes: 2 << 20),
];
Variant[] variants =
[
    new("Kestrel pool", ["--BufferService:UseBuddy=false", "--BufferService:Metrics=false"]),
    new("Kestrel pool, metrics", ["--BufferService:UseBuddy=false", "--BufferService:Metrics=true"]),
    new("Buddy", ["--BufferService:UseBuddy=true", "--BufferService:Metrics=false"]),
    new("Buddy, metrics", ["--BufferService:UseBuddy=true", "--BufferService:Metrics=true"]),
];

var services = new List<Service>();
var results = new List<Result>();
try
{
    foreach (Variant variant in variants) services.Add(await Service.StartAsync(sample, variant));
    foreach (Scenario scenario in scenarios)
    {
        string script = Scripts.Write(work, scenario);
        foreach (Service service in services) await Wrk.RunAsync(scenario.WrkArguments(service.Url, script, 2));
    }
    for (int round = 0; round < rounds; round++)
    {
        foreach (Scenario scenario in scenarios)
        {
            string script = Scripts.Write(work, scenario);
            for (int k = 0; k < services.Count; k++)
            {
                Service service = services[(k + round) % services.Count];
                Console.Error.WriteLine($"[service-bench] round {round + 1}/{rounds}: {scenario.Name}, {service.Variant.Name}");
                WrkResult wrk = await Wrk.RunAsync(scenario.WrkArguments(service.Url, script, seconds));
                (long rss, long gcCommitted, long arenaOnline) = await service.MemoryAsync();
                results.Add(new Result(scenario, service.Variant, round, wrk, rss, gcCommitted, arenaOnline));
            }
        }
    }
}
finally
{
    foreach (Service service in services) service.Dispose();
    Directory.Delete(work, recursive: true);
}
string command = "Buddy.ServiceBench " + string.Join(' ', args);
File.WriteAllText(Path.Combine(outDir, "service-bench.md"), ServiceBenchReport.Markdown(scenarios, variants, results, rounds, seconds, command));
Console.WriteLine(File.ReadAllText(Path.Combine(outDir, "service-bench.md")));
return 0;

internal sealed record Scenario(string Name, string Path, int Connections, int Pipeline, int UploadBytes)
{
    public string[] WrkArguments(string url, string script, int seconds)
        => ["-t1", $"-c{Connections}", $"-d{seconds}s", "--timeout", "30s", "--latency", "-s", script, url + Path];
}

internal sealed record Variant(string Name, string[] Arguments);

internal sealed record Result(Scenario Scenario, Variant Variant, int Round, WrkResult Wrk, long Rss, long GcCommitted, long ArenaOnline);

/// <summary>The wrk scripts: pipelining as aspnet/Benchmarks' pipeline.lua does it, and upload bodies.</summary>
internal static class Scripts
{
    public static string Write(string dir, Scenario scenario)
    {
        string script = System.IO.Path.Combine(dir, $"{scenario.Name.Replace(' ', '-').Replace(',', '-')}.lua");
        if (scenario.UploadBytes > 0)
        {
            string body = System.IO.Path.Combine(dir, $"upload-{scenario.UploadBytes}.bin");
            var bytes = new byte[scenario.UploadBytes];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(i % 251);
            File.WriteAllBytes(body, bytes);
            File.WriteAllText(script, $$"""
                local f = io.open("{{body}}", "rb"); local body = f:read("*all"); f:close()
                wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/octet-stream"
                """);
        }
        else
        {
            File.WriteAllText(script, $$"""
                init = function(args)
                  local r = {}
                  for i = 1, {{scenario.Pipeline}} do r[i] = wrk.format(nil) end
                  req = table.concat(r)
                end
                request = function() return req end
                """);
        }
        return script;
    }
}

/// <summary>One sample process, started once for the whole run.</summary>
internal sealed class Service : IDisposable
{
    private readonly Process process;
    private readonly HttpClient client = new();

    private Service(Process process, Variant variant, string url)
    {
        this.process = process;
        Variant = variant;
        Url = url;
    }

    public Variant Variant { get; }
    public string Url { get; }

    public static async Task<Service> StartAsync(string sampleDll, Variant variant)
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        string url = $"http://127.0.0.1:{port}";
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(sampleDll))!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in new[] { System.IO.Path.GetFullPath(sampleDll), "--urls", url, "--Logging:LogLevel:Default=Warning" }.Concat(variant.Arguments))
            start.ArgumentList.Add(a);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the sample");
        var log = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var service = new Service(process, variant, url);
        for (int attempt = 0; attempt < 300; attempt++)
        {
            if (process.HasExited) throw new InvalidOperationException($"the sample exited with {process.ExitCode}:\n{log}");
            try
            {
                if ((await service.client.GetAsync(url + "/")).IsSuccessStatusCode) return service;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(100);
        }
        service.Dispose();
        throw new TimeoutException($"the sample did not answer within 30 s:\n{log}");
    }

    /// <summary>The service's RSS and GC committed bytes, from its /stats.</summary>
    public async Task<(long Rss, long GcCommitted, long ArenaOnline)> MemoryAsync()
    {
        using JsonDocument stats = JsonDocument.Parse(await client.GetStringAsync(Url + "/stats"));
        JsonElement root = stats.RootElement;
        return (root.GetProperty("rss").GetInt64(), root.GetProperty("gcCommitted").GetInt64(), root.GetProperty("arenaOnline").GetInt64());
    }

    public void Dispose()
    {
        client.Dispose();
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit();
        process.Dispose();
    }
}

internal static class ServiceBenchReport
{
    public static string Markdown(Scenario[] scenarios, Variant[] variants, List<Result> results, int rounds, int seconds, string command)
    {
        static double Median(IEnumerable<double> values)
        {
            double[] sorted = [.. values.Order()];
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine("# Service benchmarks: Buddy's pool against Kestrel's, with metrics collected and not");
        md.AppendLine();
        md.AppendLine(inv, $"- Date: {DateTime.UtcNow:yyyy-MM-dd}");
        md.AppendLine(inv, $"- Machine: {BenchMachine.Describe()}. wrk (one thread) and the services share the cores.");
        md.AppendLine(inv, $"- Command: `./scripts/bench.sh --service-bench` (`{command}`)");
        md.AppendLine(inv, $"- {rounds} rounds; each round runs every scenario for {seconds} s against each of the four services in a rotated order. Cells are medians over the rounds, with the range in brackets. RSS and GC committed are read from the service's /stats right after each run.");
        md.AppendLine("- \"metrics\": a MeterListener in the service enables every instrument of the runtime's, Kestrel's, hosting's, the memory pools' and Buddy's meters and reads the observable ones every second, as an attached dotnet-counters or OpenTelemetry exporter does.");
        md.AppendLine();
        md.AppendLine("| scenario | variant | requests/s | vs Kestrel pool, same metrics | p99 ms | RSS after, MiB | GC committed after, MiB | of it, arena sections | errors |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (Scenario scenario in scenarios)
        {
            foreach (Variant variant in variants)
            {
                Result[] cell = [.. results.Where(r => r.Scenario == scenario && r.Variant == variant)];
                if (cell.Length == 0) continue;
                double rps = Median(cell.Select(r => r.Wrk.RequestsPerSecond));
                bool metrics = variant.Name.EndsWith("metrics", StringComparison.Ordinal);
                Variant baseline = variants.First(v => v.Name.StartsWith("Kestrel", StringComparison.Ordinal) && v.Name.EndsWith("metrics", StringComparison.Ordinal) == metrics);
                // Round by round against the baseline's run of the same round, then the median of those ratios.
                double ratio = Median(cell.Select(r => r.Wrk.RequestsPerSecond
                    / results.First(b => b.Scenario == scenario && b.Variant == baseline && b.Round == r.Round).Wrk.RequestsPerSecond));
                md.AppendLine(inv, $"| {scenario.Name} | {variant.Name} | {rps:F0} [{cell.Min(r => r.Wrk.RequestsPerSecond):F0}-{cell.Max(r => r.Wrk.RequestsPerSecond):F0}] | {ratio:F2}x | {Median(cell.Select(r => r.Wrk.P99Ms)):F2} [{cell.Min(r => r.Wrk.P99Ms):F2}-{cell.Max(r => r.Wrk.P99Ms):F2}] | {Median(cell.Select(r => r.Rss / 1048576.0)):F1} | {Median(cell.Select(r => r.GcCommitted / 1048576.0)):F1} | {Median(cell.Select(r => r.ArenaOnline / 1048576.0)):F1} | {cell.Sum(r => r.Wrk.Errors)} |");
            }
        }
        return md.ToString();
    }
}
