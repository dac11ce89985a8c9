using System.Globalization;
using Buddy.ServiceLoad;

// Buddy.ServiceLoad --sample DLL [--out DIR] [--quick]: samples/BufferService under wrk bursts, then
// idle, three variants in one run: Kestrel's own pool, Buddy with its reporter, Buddy without.
string? Option(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
string? sample = Option("--sample");
if (sample is null || !File.Exists(sample))
{
    Console.Error.WriteLine("usage: Buddy.ServiceLoad --sample path/to/BufferService.dll [--out DIR] [--quick]");
    return 2;
}
bool quick = args.Contains("--quick");
string outDir = Option("--out") ?? Directory.GetCurrentDirectory();
Directory.CreateDirectory(outDir);
var load = new LoadShape(
    Connections: quick ? 64 : 256,
    Burst: TimeSpan.FromSeconds(quick ? 5 : 20),
    Idle: TimeSpan.FromSeconds(quick ? 15 : 60),
    UploadBytes: 1 << 20,
    ResponseBytes: 256 << 10);

Variant[] variants =
[
    new("Kestrel pool", "kestrel", ["--BufferService:UseBuddy=false"]),
    new("Buddy, reporter on", "buddy", ["--BufferService:UseBuddy=true"]),
    new("Buddy, reporter off", "buddy-no-reporter", ["--BufferService:UseBuddy=true", "--Buddy:ReporterEnabled=false"]),
];
var runs = new List<VariantRun>();
foreach (Variant variant in variants)
{
    Console.Error.WriteLine($"[service-load] {variant.Name}...");
    runs.Add(await ServiceRun.RunAsync(sample, variant, load));
}
string stem = quick ? "service-load-quick" : "service-load";
Report.Write(outDir, stem, load, runs, string.Join(' ', args.Select(a => a.Contains(' ') ? $"'{a}'" : a)));
Console.WriteLine(File.ReadAllText(Path.Combine(outDir, stem + ".md")));
return 0;

internal sealed record LoadShape(int Connections, TimeSpan Burst, TimeSpan Idle, int UploadBytes, int ResponseBytes)
{
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"wrk -t2 -c{Connections} for {Burst.TotalSeconds:0} s, each request posting {UploadBytes >> 10} KiB (buffered whole) and reading {ResponseBytes >> 10} KiB; then {Idle.TotalSeconds:0} s idle");
}

internal sealed record Variant(string Name, string Key, string[] Arguments);
